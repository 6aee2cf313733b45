//! Driving a call: every guest call is an async wasmtime call on a fiber with a stack of its own
//! (so the caller's thread stack never matters), driven to completion from the caller's thread
//! on the host's tokio runtime, under a hard wall-clock limit; and the meter that counts only
//! the time the guest actually runs against its compute deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::PluginHostError;

/// The host's tokio runtime: its worker threads drive timers and network I/O; calls are driven
/// by their callers through [`IoRuntime::block_on`].
pub(crate) struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    pub(crate) fn new() -> Result<IoRuntime, PluginHostError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vigilo-plugin-io")
            .enable_all()
            .build()
            .map_err(PluginHostError::Runtime)?;
        Ok(IoRuntime(Some(rt)))
    }

    /// Runs `fut` to completion on the calling thread. From inside another tokio runtime (where
    /// blocking the thread is not allowed) it runs on a scoped helper thread instead. Fails only
    /// if that thread cannot be started.
    pub(crate) fn block_on<F>(&self, fut: F) -> std::io::Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = &self.0 else {
            return Err(std::io::Error::other(
                "the plugin host's runtime has shut down",
            ));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(rt.block_on(fut));
        }
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("vigilo-plugin-call".into())
                .spawn_scoped(scope, || rt.block_on(fut))?;
            match helper.join() {
                Ok(out) => Ok(out),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // Never block on drop: the last handle may go inside someone else's runtime.
        if let Some(rt) = self.0.take() {
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
