//! Keep-alive connections for one plugin's plain-HTTP requests.
//!
//! Each loaded plugin (each [`Policy`](crate::policy::Policy)) has a [`Pool`] of idle TCP
//! connections keyed by the address its request was pinned to (the scheme is always `http`
//! here: HTTPS requests are not pooled, see `http.rs`). Only requests that passed the plugin's
//! allowlist ever reach [`send`], so a pooled connection can only be picked for an address an
//! allowed host resolved to in this very request.
//!
//! An idle connection is a bare socket, not a hyper connection: each request runs its own
//! HTTP/1.1 exchange (hyper's `client::conn::http1`) over it on the call's runtime, and gives
//! the socket back only when that exchange ended cleanly. So no background task watches the
//! idle connections and none is tied to a runtime (calls run on runtimes of their own, see
//! `runtime.rs`). A connection goes back to the pool only if:
//! - the response's body was read to its end, without error or timeout, and the request's body
//!   was sent in full (hyper's connection then finished on its own);
//! - the response is HTTP/1.1 without `Connection: close`;
//! - nothing is left unread: hyper's read buffer is empty and the socket has no byte waiting
//!   and was not closed by the server.
//!
//! Otherwise the socket is closed. An idle connection is dropped after [`IDLE_TIMEOUT`]; a
//! plugin keeps at most `max_concurrent_calls` idle per address and [`MAX_IDLE`] in all. At
//! checkout, a connection the server closed meanwhile (its end of stream is waiting) is dropped;
//! and if the server closes one just as a request is put on it, so that hyper hands the request
//! back unsent, the request goes once more on a new connection. A request already written when
//! the connection fails is not resent (its body was the guest's stream): the guest gets the error.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// How long an idle connection is kept: below the 5 s idle timeout of Node.js and Apache, the
/// shortest common defaults, so that a server rarely closes a connection just as it is reused.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// The most idle connections one plugin keeps, all addresses together.
pub(crate) const MAX_IDLE: usize = 16;

/// The idle connections of one plugin.
pub(crate) struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    per_address: usize,
}

struct Idle {
    socket: std::net::TcpStream,
    since: Instant,
}

impl Pool {
    /// A pool keeping at most `per_address` idle connections to one address.
    pub(crate) fn new(per_address: usize) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            per_address: per_address.clamp(1, MAX_IDLE),
        }
    }

    /// The most recently used idle connection to `addr` that is still open, if any.
    fn checkout(&self, addr: SocketAddr) -> Option<std::net::TcpStream> {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let found = {
            let mut idle = self.idle.lock();
            let list = idle.get_mut(&addr)?;
            let mut found = None;
            while let Some(c) = list.pop() {
                if now.duration_since(c.since) < IDLE_TIMEOUT && quiet(&c.socket) {
                    found = Some(c.socket);
                    break;
                }
                dropped.push(c);
            }
            if list.is_empty() {
                idle.remove(&addr);
            }
            found
        };
        // Closed outside the lock.
        drop(dropped);
        found
    }

    /// Keeps `socket` for the next request to `addr`, if it is still open and there is room.
    fn checkin(&self, addr: SocketAddr, socket: std::net::TcpStream) {
        if !quiet(&socket) {
            return;
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut idle = self.idle.lock();
        let mut total = 0;
        idle.retain(|_, list| {
            let (keep, old): (Vec<Idle>, Vec<Idle>) = list
                .drain(..)
                .partition(|c| now.duration_since(c.since) < IDLE_TIMEOUT);
            *list = keep;
            expired.extend(old);
            total += list.len();
            !list.is_empty()
        });
        let list = idle.entry(addr).or_default();
        if list.len() < self.per_address && total < MAX_IDLE {
            list.push(Idle { socket, since: now });
        }
        drop(idle);
        drop(expired);
    }

    /// Idle connections kept now (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().values().map(Vec::len).sum()
    }
}

/// Whether an idle socket is open with nothing waiting: the server has not closed it (a read
/// would see the end of the stream) nor sent anything unasked.
fn quiet(socket: &std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // The socket is non-blocking (it comes from tokio): `WouldBlock` means open and quiet.
    matches!(socket.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The timeouts of one request (already clamped to the plugin's `http_timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) first_byte: Duration,
    pub(crate) between_bytes: Duration,
}

/// How a request's head exchange ended without a response.
enum Failed {
    /// Hyper handed the request back unsent: the connection was closed before it was written.
    Unsent(http::Request<WasiBody>),
    Error(HttpError),
}

/// Sends a plain-HTTP `request` to `addr` (the address its host was pinned to) on an idle
/// connection of `pool` or a new one, and returns the response head; its body drives the rest
/// of the exchange and gives the connection back at its end.
pub(crate) async fn send(
    pool: Arc<Pool>,
    mut request: http::Request<WasiBody>,
    addr: SocketAddr,
    timeouts: Timeouts,
) -> Result<http::Response<WasiBody>, HttpError> {
    // Origin form on the wire: the `Host` header (set by `wasi:http`) keeps the name.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let mut fresh_only = false;
    loop {
        let idle = if fresh_only {
            None
        } else {
            pool.checkout(addr)
        };
        let reused = idle.is_some();
        let stream = match idle {
            Some(socket) => TcpStream::from_std(socket).map_err(HttpError::Connect)?,
            None => connect(addr, timeouts.connect).await?,
        };
        match exchange(stream, request, timeouts).await {
            Ok((response, conn)) => {
                let reusable = reusable(&response);
                return Ok(response.map(|incoming| {
                    PooledBody {
                        incoming,
                        conn: conn.conn,
                        conn_done: conn.done,
                        give_back: reusable.then(|| (Arc::clone(&pool), addr)),
                        between_bytes: timeouts.between_bytes,
                        timer: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
                        ended: false,
                    }
                    .boxed_unsync()
                }));
            }
            // A kept connection the server closed just now: once more on a new one.
            Err(Failed::Unsent(back)) if reused => {
                request = back;
                fresh_only = true;
            }
            Err(Failed::Unsent(_)) => return Err(HttpError::ConnectionTerminated),
            Err(Failed::Error(e)) => return Err(e),
        }
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, HttpError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    // The head and the body go out as separate writes: no waiting for an ACK in between.
    stream.set_nodelay(true).map_err(HttpError::Connect)?;
    Ok(stream)
}

type Conn = Connection<TokioIo<TcpStream>, WasiBody>;

/// One request on `stream`: writes it and waits for the response head (within `first_byte`),
/// driving the connection meanwhile.
async fn exchange(
    stream: TcpStream,
    request: http::Request<WasiBody>,
    timeouts: Timeouts,
) -> Result<(http::Response<Incoming>, Exchange), Failed> {
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failed::Error(e.into()))?;
    let mut sending = pin!(sender.try_send_request(request));
    let mut conn = Some(conn);
    let mut done = false;
    let head = poll_fn(|cx| {
        if let Poll::Ready(r) = sending.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !done
            && let Some(c) = conn.as_mut()
            && c.poll_without_shutdown(cx).is_ready()
        {
            // The connection ended: with the answer read (a server that closes after it), or
            // before it, and then dropping the connection hands the request back (unsent) or
            // fails it.
            done = true;
            if let Poll::Ready(r) = sending.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            conn = None;
            return sending.as_mut().poll(cx);
        }
        Poll::Pending
    });
    let head = tokio::time::timeout(timeouts.first_byte, head)
        .await
        .map_err(|_| Failed::Error(HttpError::ConnectionReadTimeout))?;
    match head {
        Ok(response) => Ok((response, Exchange { conn, done })),
        Err(mut e) => match e.take_message() {
            Some(request) => Err(Failed::Unsent(request)),
            None => Err(Failed::Error(e.into_error().into())),
        },
    }
}

/// The connection of an exchange whose response head arrived.
struct Exchange {
    /// `None` if it ended without the request being answered (not the case here; kept typed).
    conn: Option<Conn>,
    /// Hyper already finished it (the whole response read, nothing more to send).
    done: bool,
}

/// Whether the server lets the connection live on after this response.
fn reusable(response: &http::Response<Incoming>) -> bool {
    response.version() == http::Version::HTTP_11
        && !response.status().is_informational()
        && !response
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            })
}

/// A response body that drives its connection (the guest reads it on the call's runtime) and,
/// read to its end, gives the connection back to the pool.
struct PooledBody {
    incoming: Incoming,
    /// The exchange's connection; `None` once given back or given up.
    conn: Option<Conn>,
    /// Hyper finished the exchange (request sent, response read, no more requests).
    conn_done: bool,
    /// Where the connection goes back to, if the response allows it.
    give_back: Option<(Arc<Pool>, SocketAddr)>,
    between_bytes: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl PooledBody {
    /// Polls the connection; a failure (or an end that is not the response's) means it is not
    /// reused.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if self.conn_done {
            return;
        }
        if let Some(c) = self.conn.as_mut() {
            match c.poll_without_shutdown(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => self.conn_done = true,
                Poll::Ready(Err(_)) => self.give_up(),
            }
        }
    }

    fn give_up(&mut self) {
        self.give_back = None;
        self.conn = None;
    }

    /// At the body's end: the connection back to the pool if the exchange finished cleanly.
    fn finish(&mut self, cx: &mut Context<'_>) {
        self.ended = true;
        self.drive(cx);
        let (Some((pool, addr)), Some(conn), true) =
            (self.give_back.take(), self.conn.take(), self.conn_done)
        else {
            self.give_up();
            return;
        };
        let parts = conn.into_parts();
        if !parts.read_buf.is_empty() {
            return;
        }
        if let Ok(socket) = parts.io.into_inner().into_std() {
            pool.checkin(addr, socket);
        }
    }
}

impl Body for PooledBody {
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
        this.drive(cx);
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.between_bytes;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.give_up();
                this.ended = true;
                Poll::Ready(Some(Err(if e.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    e.into()
                })))
            }
            Poll::Ready(None) => {
                this.finish(cx);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.give_up();
                    this.ended = true;
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left to read (a 204, say) that the guest never read to its end
        // still gives its connection back if the exchange is over; a look, never a wait.
        if !self.ended && self.incoming.is_end_stream() && self.conn.is_some() {
            self.finish(&mut Context::from_waker(Waker::noop()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_or_chatty_sockets_are_not_kept() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = Pool::new(2);
        let connect = || {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            let (peer, _) = listener.accept().unwrap();
            (s, peer)
        };
        let (open, _peer_a) = connect();
        pool.checkin(addr, open);
        assert_eq!(pool.idle(), 1);
        let (closed, peer_b) = connect();
        drop(peer_b);
        // The end of stream arrives at once on loopback, but wait for it without a sleep.
        let mut byte = [0u8; 1];
        closed.set_nonblocking(false).unwrap();
        assert_eq!(closed.peek(&mut byte).unwrap(), 0);
        closed.set_nonblocking(true).unwrap();
        pool.checkin(addr, closed);
        assert_eq!(pool.idle(), 1, "a socket the server closed is not kept");
        let (chatty, mut peer_c) = connect();
        std::io::Write::write_all(&mut peer_c, b"x").unwrap();
        chatty.set_nonblocking(false).unwrap();
        assert_eq!(chatty.peek(&mut byte).unwrap(), 1);
        chatty.set_nonblocking(true).unwrap();
        pool.checkin(addr, chatty);
        assert_eq!(pool.idle(), 1, "a socket with unasked bytes is not kept");
        assert!(pool.checkout(addr).is_some());
        assert!(pool.checkout(addr).is_none());
    }

    #[test]
    fn idle_connections_are_bounded_per_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = Pool::new(2);
        let mut peers = Vec::new();
        for _ in 0..4 {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            peers.push(listener.accept().unwrap());
            pool.checkin(addr, s);
        }
        assert_eq!(pool.idle(), 2);
    }
}
