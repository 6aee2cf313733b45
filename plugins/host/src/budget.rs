//! The response-body budget of one call: a total time and a total size, not only a timer
//! between bytes.
//!
//! A between-bytes timeout alone lets a server trickle a body one byte at a time, each just in
//! time, for as long as the call lives. So every response body a guest reads is also bounded
//!
//! - in time: it must end within the plugin's `http_timeout` of its head, and never after the
//!   call's own wall-clock bound (`call_timeout`, by default a multiple of the deadline);
//! - in size: all the response bodies of one call together may bring at most
//!   [`BODY_BYTES_PER_CALL`] bytes.
//!
//! Past either, the body fails (`HttpResponseTimeout` or `HttpResponseBodySize`, errors the
//! guest sees as a failed read) and its connection is closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// The most response-body bytes one call may read, all responses together.
pub(crate) const BODY_BYTES_PER_CALL: u64 = 16 << 20;

/// The budget shared by the response bodies of one call.
pub(crate) struct CallBudget {
    /// When the call's wall-clock bound ends it.
    pub(crate) ends: tokio::time::Instant,
    /// Response-body bytes left for this call.
    bytes_left: AtomicU64,
}

impl CallBudget {
    /// The budget of a call that ends at `ends`.
    pub(crate) fn new(ends: tokio::time::Instant) -> Arc<CallBudget> {
        Arc::new(CallBudget {
            ends,
            bytes_left: AtomicU64::new(BODY_BYTES_PER_CALL),
        })
    }

    /// Takes `n` bytes from the budget; false (and nothing taken) if fewer are left.
    fn take(&self, n: u64) -> bool {
        // Relaxed: the count is the only state, and each update is one atomic step.
        self.bytes_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }

    /// `body`, failing once it runs past `ends` (or this call's end, if sooner) or past the
    /// call's byte budget.
    pub(crate) fn limit(self: &Arc<Self>, body: WasiBody, ends: tokio::time::Instant) -> WasiBody {
        Budgeted {
            inner: body,
            budget: Arc::clone(self),
            timer: Box::pin(tokio::time::sleep_until(ends.min(self.ends))),
            ended: false,
        }
        .boxed_unsync()
    }
}

struct Budgeted {
    inner: WasiBody,
    budget: Arc<CallBudget>,
    timer: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl Body for Budgeted {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.ended = true;
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if this.budget.take(n) {
                    Poll::Ready(Some(Ok(frame)))
                } else {
                    this.ended = true;
                    Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                        BODY_BYTES_PER_CALL,
                    )))))
                }
            }
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_budget_is_shared_by_the_call() {
        let b = CallBudget::new(tokio::time::Instant::now());
        assert!(b.take(BODY_BYTES_PER_CALL - 10));
        assert!(!b.take(11), "past the budget");
        assert!(b.take(10));
        assert!(!b.take(1));
    }
}
