//! The collector thread: refreshes the host items every interval until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use super::sampler::{HostSampler, RefreshStats};
use super::{HostConfig, HostError, names};
use crate::{Counter, Registry};

/// The outcome of one refresh of the collector thread, as sent to [`HostCollector::notices`].
#[derive(Debug, Clone)]
pub struct RefreshNotice {
    /// The refresh's number, from 1.
    pub seq: u64,
    /// What it did, or why it failed (other items were still written, see
    /// [`HostSampler::refresh`]).
    pub result: Result<RefreshStats, Arc<HostError>>,
}

/// What the thread and the handle share.
#[derive(Default)]
struct Shared {
    refreshes: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<Arc<HostError>>>,
}

/// A thread that refreshes the host items every [`HostConfig::interval`] and writes them into a
/// registry.
///
/// The first refresh runs as soon as the thread starts (rates appear from the second one, see
/// [`HostSampler`]); the next ones follow at a fixed rate, skipping ticks when a refresh takes
/// longer than the interval. A failed refresh is counted in
/// [`errors`](Self::errors), kept as [`last_error`](Self::last_error) and in the counter
/// `vigilo_host_refresh_errors_total`; the thread goes on.
///
/// [`stop`](Self::stop), or dropping the handle, wakes the thread at once and waits for it to
/// finish (at most the time of one refresh in progress).
///
/// ```no_run
/// use vigilo::Registry;
/// use vigilo::host::{HostCollector, HostConfig};
///
/// let registry = Registry::new();
/// let collector = HostCollector::start(&registry, HostConfig::default())?;
/// let first = collector.notices().recv().expect("the thread sends one notice per refresh");
/// assert_eq!(first.seq, 1);
/// collector.stop()?;
/// # Ok::<(), vigilo::host::HostError>(())
/// ```
pub struct HostCollector {
    /// Dropping it wakes the thread and tells it to stop.
    stop_tx: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    notices: Receiver<RefreshNotice>,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector")
            .field("refreshes", &self.refreshes())
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

impl HostCollector {
    /// Validates `config`, takes the first reading (see [`HostSampler::new`]) and starts the
    /// thread `vigilo-host`. Configuration and system errors are returned here, not later.
    pub fn start(registry: &Registry, config: HostConfig) -> Result<HostCollector, HostError> {
        let interval = config.interval;
        let mut sampler = HostSampler::new(registry, config)?;
        let error_counter = registry.counter(names::REFRESH_ERRORS_TOTAL, &[])?;
        for (name, unit, help) in names::DESCRIPTIONS {
            registry.describe(name, *unit, help)?;
        }
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let (notice_tx, notices) = crossbeam_channel::bounded(1);
        let thread_shared = Arc::clone(&shared);
        let newest_only = notices.clone();
        let thread = std::thread::Builder::new()
            .name("vigilo-host".to_owned())
            .spawn(move || {
                let mut next = Instant::now();
                loop {
                    let result = sampler.refresh().map_err(Arc::new);
                    let notice = thread_shared.record(result, &error_counter);
                    send_newest(&notice_tx, &newest_only, notice);
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        // Fell behind: skip the missed ticks rather than refresh in a burst.
                        next = now + interval;
                    }
                    match stop_rx.recv_timeout(next.saturating_duration_since(now)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // A message or a dropped sender: stop.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(HostError::Spawn)?;
        Ok(HostCollector {
            stop_tx: Some(stop_tx),
            thread: Some(thread),
            shared,
            notices,
        })
    }

    /// A receiver of the outcome of each refresh. It holds the newest notice only: one not
    /// taken before the next refresh is replaced, so a slow reader sees gaps in `seq`. Clones
    /// share the same notices (each goes to one reader).
    pub fn notices(&self) -> Receiver<RefreshNotice> {
        self.notices.clone()
    }

    /// Refreshes done so far, failed ones included.
    pub fn refreshes(&self) -> u64 {
        // Relaxed: a statistic; no other memory is read on its account.
        self.shared.refreshes.load(Ordering::Relaxed)
    }

    /// Refreshes that failed so far.
    pub fn errors(&self) -> u64 {
        // Relaxed: a statistic.
        self.shared.errors.load(Ordering::Relaxed)
    }

    /// The error of the most recent failed refresh.
    pub fn last_error(&self) -> Option<Arc<HostError>> {
        self.shared.last_error.lock().clone()
    }

    /// True while the thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread and waits for it. Fails only if the thread panicked.
    pub fn stop(mut self) -> Result<(), HostError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), HostError> {
        // Dropping the only sender disconnects the channel, which wakes the thread's wait.
        drop(self.stop_tx.take());
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| HostError::Panicked),
            None => Ok(()),
        }
    }
}

impl Drop for HostCollector {
    fn drop(&mut self) {
        // A panic of the thread has nowhere to go from here; `stop` reports it.
        let _ = self.shutdown();
    }
}

impl Shared {
    /// Counts a refresh and turns it into a notice.
    fn record(
        &self,
        result: Result<RefreshStats, Arc<HostError>>,
        error_counter: &Counter,
    ) -> RefreshNotice {
        if let Err(e) = &result {
            // Relaxed: a statistic.
            self.errors.fetch_add(1, Ordering::Relaxed);
            error_counter.increment();
            *self.last_error.lock() = Some(Arc::clone(e));
        }
        // Relaxed: a statistic; the notice carries the result itself.
        let seq = self.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
        RefreshNotice { seq, result }
    }
}

/// Sends `notice`, first dropping an older one nobody took.
fn send_newest(tx: &Sender<RefreshNotice>, rx: &Receiver<RefreshNotice>, notice: RefreshNotice) {
    match tx.try_send(notice) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(notice)) => {
            let _ = rx.try_recv();
            // A reader may have taken the old one meanwhile; either way there is room unless
            // another refresh raced in, which cannot happen: this thread is the only sender.
            let _ = tx.try_send(notice);
        }
    }
}
