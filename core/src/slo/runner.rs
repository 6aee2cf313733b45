//! The monitor's SLO thread: ticks the engine on the monitor's clock and saves its rings.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::{SloEngine, SloError, SloReport, SloSnapshot};
use crate::clock::Clock;

/// Where the rings are saved (the pipeline's store, in the monitor).
pub(crate) type Save = Box<dyn Fn(Vec<SloSnapshot>) + Send>;

/// Runs an [`SloEngine`] on a thread named `vigilo-slo`: a tick every `tick` (of real time,
/// reading the clock's time; skipped if the clock has not moved since the last tick), the
/// rings saved every `checkpoint` and at stop.
pub(crate) struct SloRunner {
    engine: Arc<Mutex<SloEngine>>,
    clock: Arc<dyn Clock>,
    stop: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SloRunner {
    pub(crate) fn start(
        engine: SloEngine,
        clock: Arc<dyn Clock>,
        tick: Duration,
        checkpoint: Duration,
        save: Save,
    ) -> std::io::Result<SloRunner> {
        let engine = Arc::new(Mutex::new(engine));
        engine.lock().tick(clock.now());
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let tick = tick.max(Duration::from_millis(10));
        let checkpoint = checkpoint.max(tick);
        let (e, c) = (Arc::clone(&engine), Arc::clone(&clock));
        let thread = std::thread::Builder::new()
            .name("vigilo-slo".into())
            .spawn(move || {
                let mut since_save = Duration::ZERO;
                loop {
                    let done =
                        !matches!(stopped.recv_timeout(tick), Err(RecvTimeoutError::Timeout));
                    let snapshots = {
                        let mut engine = e.lock();
                        // Not again at the same instant: on a manual clock that moves only
                        // between a test's records, a tick between two of them would split
                        // one step's good and total events across slots.
                        let now = c.now();
                        if engine.last_tick() != Some(now) {
                            engine.tick(now);
                        }
                        since_save += tick;
                        (done || since_save >= checkpoint).then(|| engine.snapshots())
                    };
                    if let Some(s) = snapshots {
                        since_save = Duration::ZERO;
                        save(s);
                    }
                    if done {
                        return;
                    }
                }
            })?;
        Ok(SloRunner {
            engine,
            clock,
            stop,
            thread: Some(thread),
        })
    }

    /// The runner for the SLOs `slos` (none without any), their rings restored from `restored`,
    /// ticking every `tick` and saving every `checkpoint`.
    pub(crate) fn for_slos(
        slos: &[super::Slo],
        (tick, checkpoint): (Duration, Duration),
        registry: &crate::metrics::Registry,
        clock: &Arc<dyn Clock>,
        restored: Vec<SloSnapshot>,
        save: Save,
    ) -> Result<Option<SloRunner>, SloError> {
        if slos.is_empty() {
            return Ok(None);
        }
        let mut engine = SloEngine::new(registry.clone(), slos.to_vec())?;
        engine.restore(restored);
        SloRunner::start(engine, Arc::clone(clock), tick, checkpoint, save)
            .map(Some)
            .map_err(|e| SloError::Spawn(e.to_string()))
    }

    /// Ticks now, on the clock's time, and returns the reports.
    pub(crate) fn tick_now(&self) -> Vec<SloReport> {
        let mut engine = self.engine.lock();
        engine.tick(self.clock.now());
        engine.reports()
    }

    /// The reports of the last tick.
    pub(crate) fn reports(&self) -> Vec<SloReport> {
        self.engine.lock().reports()
    }

    /// A reader of the reports, for the status board.
    pub(crate) fn board(&self) -> SloBoard {
        SloBoard(Arc::clone(&self.engine))
    }

    /// A last tick, a last save, and the thread ends.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads the SLO reports of a running [`SloRunner`] (what the status shows).
pub(crate) struct SloBoard(Arc<Mutex<SloEngine>>);

impl SloBoard {
    /// The reports of the last tick.
    pub(crate) fn reports(&self) -> Vec<SloReport> {
        self.0.lock().reports()
    }
}

impl Drop for SloRunner {
    fn drop(&mut self) {
        self.halt();
    }
}
