//! A guest's stdout or stderr: an in-memory pipe that keeps the last `capacity` bytes and
//! counts the rest, never blocking and never failing the guest's writes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The capped tail of one output stream, shared by the WASI context and the host.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    inner: Arc<Mutex<Tail>>,
}

struct Tail {
    capacity: usize,
    buf: Vec<u8>,
    dropped: u64,
}

impl CappedPipe {
    pub(crate) fn new(capacity: usize) -> Self {
        CappedPipe {
            inner: Arc::new(Mutex::new(Tail {
                capacity,
                buf: Vec::new(),
                dropped: 0,
            })),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut t = self.inner.lock();
        let cap = t.capacity;
        if bytes.len() >= cap {
            let skip = bytes.len() - cap;
            t.dropped += (t.buf.len() + skip) as u64;
            t.buf.clear();
            t.buf.extend_from_slice(&bytes[skip..]);
            return;
        }
        let over = (t.buf.len() + bytes.len()).saturating_sub(cap);
        if over > 0 {
            t.buf.drain(..over);
            t.dropped += over as u64;
        }
        t.buf.extend_from_slice(bytes);
    }

    /// The text kept (lossy UTF-8) and how many earlier bytes were dropped.
    pub(crate) fn take(&self) -> (String, u64) {
        let mut t = self.inner.lock();
        let text = String::from_utf8_lossy(&t.buf).into_owned();
        let dropped = t.dropped;
        t.buf.clear();
        t.dropped = 0;
        (text, dropped)
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: a full tail discards its oldest bytes.
        Ok(64 << 10)
    }
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let p = CappedPipe::new(8);
        p.push(b"hello ");
        p.push(b"world");
        assert_eq!(p.take(), ("lo world".to_owned(), 3));
        p.push(&[b'a'; 20]);
        p.push(b"xyz");
        assert_eq!(p.take(), ("aaaaaxyz".to_owned(), 15));
        assert_eq!(p.take(), (String::new(), 0));
    }
}
