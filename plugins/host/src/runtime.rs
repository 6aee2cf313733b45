//! Driving a call: every guest call is an async wasmtime call on a fiber with a stack of its own
//! (so the caller's thread stack never matters), driven to completion from the caller's thread
//! on a current-thread tokio runtime of its own for the call's duration, under a hard
//! wall-clock limit; and the meter that counts only the time the guest actually runs against
//! its compute deadline.
//!
//! **Why a runtime per call.** Everything a call waits for (its HTTP requests, their timers, the
//! guest's pollables) is then polled by the one thread that polls the guest: a request the guest
//! makes is spawned (by `wasi:http`) onto the call's runtime, not onto another thread, and its
//! answer needs no cross-thread wake-up. (With the I/O on a shared multi-thread runtime, each
//! step of a request woke a worker thread and then the caller's; on a loaded machine each such
//! hand-off is a trip through the scheduler.) The runtimes are kept in a small free list, so a
//! call does not build one. Blocking work that may outlive a call (commands,
//! mail) goes to the host's shared runtime ([`IoRuntime::blocking`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::PluginHostError;

/// Idle call runtimes kept for reuse (more are built when more calls run at once, and shut
/// down when they come back to a full list).
const SPARE_RUNTIMES: usize = 16;

/// The host's runtimes: a shared multi-thread one for blocking work (commands, mail), and the
/// current-thread ones calls are driven on, through [`IoRuntime::block_on`].
pub(crate) struct IoRuntime {
    shared: Option<tokio::runtime::Runtime>,
    /// Current-thread runtimes not driving a call now.
    spare: Mutex<Vec<tokio::runtime::Runtime>>,
}

impl IoRuntime {
    pub(crate) fn new() -> Result<IoRuntime, PluginHostError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vigilo-plugin-io")
            .enable_all()
            .build()
            .map_err(PluginHostError::Runtime)?;
        // One call runtime now, so that a host that cannot build them fails here, not later.
        let first = call_runtime().map_err(PluginHostError::Runtime)?;
        Ok(IoRuntime {
            shared: Some(rt),
            spare: Mutex::new(vec![first]),
        })
    }

    /// The shared runtime's handle, for blocking work that may outlive the call that started it
    /// (a command being killed, a mail being finished): `None` once the host shut down.
    pub(crate) fn blocking(&self) -> Option<tokio::runtime::Handle> {
        self.shared.as_ref().map(|rt| rt.handle().clone())
    }

    /// Runs `fut` to completion on the calling thread, on a current-thread runtime of its own.
    /// From inside another tokio runtime (where blocking the thread is not allowed) it runs on
    /// a scoped helper thread instead. Fails only if a runtime or that thread cannot be started.
    pub(crate) fn block_on<F>(&self, fut: F) -> std::io::Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        if self.shared.is_none() {
            return Err(std::io::Error::other(
                "the plugin host's runtime has shut down",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return self.drive(fut);
        }
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("vigilo-plugin-call".into())
                .spawn_scoped(scope, || self.drive(fut))?;
            match helper.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    fn drive<F: Future>(&self, fut: F) -> std::io::Result<F::Output> {
        let spare = self.spare.lock().pop();
        let rt = match spare {
            Some(rt) => rt,
            None => call_runtime()?,
        };
        let driven = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async move {
                let out = fut.await;
                // Whatever the call left behind (a request's tasks, aborted when the call's
                // store was dropped inside `fut`) runs to its end now, not at the runtime's
                // next call.
                tokio::task::yield_now().await;
                out
            })
        }));
        let out = match driven {
            Ok(out) => out,
            Err(panic) => {
                // Not dropped in place: that would wait for its blocking threads (a name
                // lookup, say).
                rt.shutdown_background();
                std::panic::resume_unwind(panic)
            }
        };
        let mut spare = self.spare.lock();
        if spare.len() < SPARE_RUNTIMES {
            spare.push(rt);
        } else {
            drop(spare);
            // Never block: a task of the call could still be waiting on something.
            rt.shutdown_background();
        }
        Ok(out)
    }
}

/// Runs `f` on a blocking thread of the host's shared runtime (`shared`, from
/// [`IoRuntime::blocking`]), or of the current runtime when there is none.
pub(crate) fn spawn_blocking<F, R>(
    shared: Option<&tokio::runtime::Handle>,
    f: F,
) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match shared {
        Some(h) => h.spawn_blocking(f),
        None => tokio::task::spawn_blocking(f),
    }
}

/// A runtime for one call at a time: timers and network I/O, driven by the thread in
/// `block_on`.
fn call_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // Never block on drop: the last handle may go inside someone else's runtime.
        if let Some(rt) = self.shared.take() {
            rt.shutdown_background();
        }
        for rt in self.spare.get_mut().drain(..) {
            rt.shutdown_background();
        }
    }
}

/// How long a call's guest has been running: the sum of the time spent inside polls of the
/// call's future (the guest computing, and the host's synchronous work for it), excluding
/// the time between polls, when the guest is blocked waiting for I/O, a command or a sleep.
/// Blocked time can therefore never be counted twice, nor exceed the real elapsed time.
pub(crate) struct Meter {
    origin: Instant,
    /// Nanoseconds spent in finished polls.
    busy: AtomicU64,
    /// When the current poll started (nanoseconds since `origin`, plus one); 0 when not polling.
    polling_since: AtomicU64,
}

impl Meter {
    pub(crate) fn new() -> Arc<Meter> {
        Arc::new(Meter {
            origin: Instant::now(),
            busy: AtomicU64::new(0),
            polling_since: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Guest time so far, the current poll included.
    pub(crate) fn busy(&self) -> Duration {
        // Relaxed everywhere: the meter is written by the thread polling the call and read by
        // the epoch callback, which wasmtime runs inside that same poll on that same thread.
        let done = self.busy.load(Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Relaxed);
        let current = if since == 0 {
            0
        } else {
            self.now().saturating_sub(since - 1)
        };
        Duration::from_nanos(done.saturating_add(current))
    }

    fn start_poll(&self) {
        // Relaxed: see `busy`.
        self.polling_since
            .store(self.now().saturating_add(1), Ordering::Relaxed);
    }

    fn end_poll(&self) {
        // Relaxed: see `busy`.
        let since = self.polling_since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let spent = self.now().saturating_sub(since - 1);
            self.busy.fetch_add(spent, Ordering::Relaxed);
        }
    }
}

/// A future whose polls are timed into a [`Meter`].
pub(crate) struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Arc<Meter>,
}

impl<F> Metered<F> {
    pub(crate) fn new(inner: F, meter: Arc<Meter>) -> Self {
        Metered {
            inner: Box::pin(inner),
            meter,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.meter.start_poll();
        let r = self.inner.as_mut().poll(cx);
        self.meter.end_poll();
        r
    }
}
