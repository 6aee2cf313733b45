//! The epoch ticker: one thread advancing the engine's epoch every tick while any call runs,
//! the clock of every compute deadline. With no call running it sleeps, so an idle host costs
//! nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use wasmtime::Engine;

use crate::PluginHostError;

/// The thread that advances the engine's epoch. Stops when the last reference goes (the host
/// and every loaded generation hold one, so a plugin handle that outlives its host still has
/// working deadlines).
pub(crate) struct Ticker {
    pub(crate) tick: Duration,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    /// Calls running now: the ticker ticks only while this is above zero.
    active: AtomicUsize,
}

/// A running call's claim on the ticker; released on drop.
pub(crate) struct Ticking<'a>(&'a Shared);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        // Release: the ticker's Acquire load sees the call gone; it then parks.
        self.0.active.fetch_sub(1, Ordering::Release);
    }
}

impl Ticker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<Ticker, PluginHostError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("vigilo-epoch".into())
            .spawn(move || {
                // Acquire (both loads): pair with the Release stores of `drop` and `enter`.
                while !s.stop.load(Ordering::Acquire) {
                    if s.active.load(Ordering::Acquire) == 0 {
                        // `enter` unparks after its increment: if that happened between the
                        // load and here, the unpark token makes this return at once.
                        thread::park();
                        continue;
                    }
                    thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(PluginHostError::Ticker)?;
        Ok(Ticker {
            tick,
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a call as running (the epoch advances until the returned claim is dropped).
    pub(crate) fn enter(&self) -> Ticking<'_> {
        // Release: pairs with the ticker's Acquire load, which then ticks.
        self.shared.active.fetch_add(1, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        Ticking(&self.shared)
    }

    fn thread(&self) -> Option<&Thread> {
        self.thread.as_ref().map(JoinHandle::thread)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Release: see the thread's loop.
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread() {
            t.unpark();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
