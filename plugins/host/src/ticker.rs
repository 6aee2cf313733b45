//! The epoch ticker: one thread advancing the engine's epoch every tick, the clock of every
//! compute deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wasmtime::Engine;

use crate::HostError;

/// The thread that advances the engine's epoch. Stops when the last reference goes (the host
/// and every loaded generation hold one, so a plugin handle that outlives its host still has
/// working deadlines).
pub(crate) struct Ticker {
    pub(crate) tick: Duration,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<Ticker, HostError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("vigilo-epoch".into())
            .spawn(move || {
                // Acquire: pairs with the Release in `drop`.
                while !flag.load(Ordering::Acquire) {
                    thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(HostError::Ticker)?;
        Ok(Ticker {
            tick,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Release: see the thread's loop.
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
