//! The `vigilo-logs` thread: polls every `[[log]]` at its interval until stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use parking_lot::Mutex;

use super::checkpoint::LogCheckpoint;
use super::spec::LogSpec;
use super::watcher::LogWatcher;
use crate::metrics::Registry;

/// The watchers, shared between their thread and whoever asks for a checkpoint.
type Shared = Arc<Mutex<Vec<(LogWatcher, Instant)>>>;

/// Every `[[log]]` of a configuration, polled on a thread of its own.
pub struct LogRunner {
    watchers: Shared,
    stop: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogRunner {
    /// Starts following `specs`, resuming each from its checkpoint in `restored` (by name).
    pub fn start(
        specs: &[LogSpec],
        registry: &Registry,
        restored: Vec<LogCheckpoint>,
    ) -> std::io::Result<LogRunner> {
        let now = Instant::now();
        let mut restored = restored;
        let watchers: Vec<(LogWatcher, Instant)> = specs
            .iter()
            .map(|spec| {
                let saved = restored
                    .iter()
                    .position(|c| c.log == spec.name)
                    .map(|i| restored.swap_remove(i));
                (LogWatcher::new(spec.clone(), registry, saved), now)
            })
            .collect();
        let watchers = Arc::new(Mutex::new(watchers));
        let (stop, stopped) = bounded::<()>(1);
        let shared = Arc::clone(&watchers);
        let thread = std::thread::Builder::new()
            .name("vigilo-logs".into())
            .spawn(move || {
                loop {
                    let next = {
                        let mut all = shared.lock();
                        let now = Instant::now();
                        for (w, due) in all.iter_mut() {
                            if *due <= now {
                                w.poll();
                                *due = now + w.spec().poll.max(Duration::from_millis(10));
                            }
                        }
                        all.iter().map(|(_, due)| *due).min()
                    };
                    let wait = next.map_or(Duration::from_secs(1), |d| {
                        d.saturating_duration_since(Instant::now())
                    });
                    match stopped.recv_timeout(wait) {
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(LogRunner {
            watchers,
            stop,
            thread: Some(thread),
        })
    }

    /// Polls every log now (whatever their interval), on the caller's thread.
    pub fn poll_now(&self) {
        for (w, _) in self.watchers.lock().iter_mut() {
            w.poll();
        }
    }

    /// Where each log stands, with its counts.
    pub fn checkpoints(&self) -> Vec<LogCheckpoint> {
        self.watchers
            .lock()
            .iter()
            .map(|(w, _)| w.checkpoint())
            .collect()
    }

    /// Stops the thread; returns the last checkpoints.
    pub fn stop(mut self) -> Vec<LogCheckpoint> {
        self.halt();
        self.checkpoints()
    }

    fn halt(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LogRunner {
    fn drop(&mut self) {
        self.halt();
    }
}

impl std::fmt::Debug for LogRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRunner").finish_non_exhaustive()
    }
}
