//! Reading a request head before hyper sees the connection, so the endpoint knows when a
//! connection stops *waiting* (see [`super::admission`]) and what it asks for (a scrape or a
//! status read may use the reserved capacity), then handing hyper the bytes already read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Largest request head (request line and headers).
pub(super) const MAX_HEAD: usize = 16 * 1024;

/// Most header fields in a head (hyper's own default).
const MAX_HEADERS: usize = 100;

/// A complete head (and whatever followed it in the same reads).
pub(super) struct Head {
    /// Everything read so far, the head first.
    pub(super) bytes: Vec<u8>,
    /// `GET /metrics` or `GET /api/status`: may use the reserved capacity.
    pub(super) scrape_or_status: bool,
    /// `GET /api/events`: an event stream, answered for as long as it stays open.
    pub(super) event_stream: bool,
}

/// Why no head came.
#[derive(Debug)]
pub(super) enum NoHead {
    /// Over [`MAX_HEAD`] without its end, or over [`MAX_HEADERS`] fields (431).
    TooLarge,
    /// Not an HTTP/1 request head (400): a bad request line, a field without a name or with
    /// bytes no field may hold.
    Malformed,
    /// The client closed, or the connection failed.
    Closed,
}

/// Reads until the end of the head (an empty line). The caller bounds the time.
pub(super) async fn read(stream: &mut TcpStream) -> Result<Head, NoHead> {
    let mut bytes = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| NoHead::Closed)?;
        if n == 0 {
            return Err(NoHead::Closed);
        }
        let searched = bytes.len().saturating_sub(3);
        bytes.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let end = bytes
            .get(searched..)
            .and_then(|tail| tail.windows(4).position(|w| w == b"\r\n\r\n"))
            .map(|p| searched + p + 4);
        match end {
            Some(end) if end <= MAX_HEAD => {
                let (scrape_or_status, event_stream) = parse(bytes.get(..end).unwrap_or_default())?;
                return Ok(Head {
                    bytes,
                    scrape_or_status,
                    event_stream,
                });
            }
            Some(_) => return Err(NoHead::TooLarge),
            None if bytes.len() > MAX_HEAD => return Err(NoHead::TooLarge),
            None => {}
        }
    }
}

/// Parses a complete head as hyper will (its parser, httparse, and its field limit), so that
/// what hyper would refuse with a bare answer is refused here with the endpoint's own; says
/// what it asks for: (a scrape or a status read, an event stream).
fn parse(head: &[u8]) -> Result<(bool, bool), NoHead> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(NoHead::TooLarge),
        // The head ends with an empty line, so a partial parse is a malformed one too.
        Ok(httparse::Status::Partial) | Err(_) => return Err(NoHead::Malformed),
    }
    let get = request.method == Some("GET");
    let path = request
        .path
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    Ok((
        get && (path == "/metrics" || path == "/api/status"),
        get && path == "/api/events",
    ))
}

/// A stream that first gives back bytes already read from it.
pub(super) struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl Prefixed {
    pub(super) fn new(prefix: Vec<u8>, inner: TcpStream) -> Self {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_hyper_would_refuse_are_refused_here() {
        assert!(parse(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").is_ok());
        assert!(matches!(
            parse(b"GET /metrics HTTP/9\r\n\r\n"),
            Err(NoHead::Malformed)
        ));
        assert!(matches!(
            parse(b"\x01\x02 / HTTP/1.1\r\n\r\n"),
            Err(NoHead::Malformed)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n: no name\r\n\r\n"),
            Err(NoHead::Malformed)
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse(head.as_bytes()), Err(NoHead::TooLarge)));
    }

    #[test]
    fn the_request_line_says_what_is_asked() {
        let asks = |line: &str| parse(format!("{line}\r\n\r\n").as_bytes()).ok();
        assert_eq!(asks("GET /metrics HTTP/1.1"), Some((true, false)));
        assert_eq!(asks("GET /api/status?x=1 HTTP/1.1"), Some((true, false)));
        assert_eq!(asks("GET /api/events HTTP/1.1"), Some((false, true)));
        assert_eq!(asks("POST /metrics HTTP/1.1"), Some((false, false)));
        assert_eq!(asks("GET / HTTP/1.1"), Some((false, false)));
    }
}
