//! Accepting connections and taking each through its life: admitted (or refused), its head
//! read within `header_timeout`, a place to answer taken, the request answered by hyper within
//! [`ANSWER_TIMEOUT`] (an event stream for as long as it stays open), closed. One request per
//! connection (no keep-alive), so a connection is waiting only before its one head.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::admission::{Admission, Ticket};
use super::capacity::Capacity;
use super::head::{self, MAX_HEAD, NoHead, Prefixed};
use super::respond::security_lines;
use super::serve::{self, Context};

/// Time to answer once the head has arrived (a client that reads its answer slowly is cut).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// A refused client may go on sending what it had started (its head, a body): it is read and
/// dropped for this long, up to [`DRAIN`] bytes, so it reads the refusal instead of a reset.
const DRAIN_TIME: Duration = Duration::from_millis(500);
const DRAIN: usize = 2 * 1024 * 1024;
/// Refused connections being drained at once; more are closed at once.
const DRAINING: usize = 256;

/// What the connections share beyond the request handler's context.
pub(super) struct Limits {
    pub(super) admission: Arc<Admission>,
    pub(super) capacity: Capacity,
    pub(super) header_timeout: Duration,
    draining: Arc<Semaphore>,
}

impl Limits {
    pub(super) fn new(
        admission: Arc<Admission>,
        capacity: Capacity,
        header_timeout: Duration,
    ) -> Self {
        Limits {
            admission,
            capacity,
            header_timeout,
            draining: Arc::new(Semaphore::new(DRAINING)),
        }
    }
}

pub(super) async fn accept_loop(
    listener: std::net::TcpListener,
    context: Arc<Context>,
    limits: Arc<Limits>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of descriptors, say: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        match limits.admission.admit(peer.ip(), std::time::Instant::now()) {
            Some(ticket) => {
                let context = Arc::clone(&context);
                let limits = Arc::clone(&limits);
                let stopped = stopped.clone();
                tokio::spawn(connection(stream, ticket, context, limits, stopped));
            }
            None => {
                let limits = Arc::clone(&limits);
                tokio::spawn(async move {
                    refuse(stream, Refusal::Busy, &limits.draining).await;
                });
            }
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    mut ticket: Ticket,
    context: Arc<Context>,
    limits: Arc<Limits>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let head = tokio::select! {
        h = tokio::time::timeout(limits.header_timeout, head::read(&mut stream)) => h,
        // Let go to make room: tell it, without waiting for the rest of its head.
        _ = &mut ticket.evicted => {
            drop(ticket);
            return refuse_now(stream, Refusal::Busy).await;
        }
        _ = stopped.changed() => return,
    };
    let head = match head {
        Ok(Ok(head)) => head,
        Ok(Err(NoHead::TooLarge)) => {
            drop(ticket);
            return refuse(stream, Refusal::HeadTooLarge, &limits.draining).await;
        }
        Ok(Err(NoHead::Malformed)) => {
            drop(ticket);
            return refuse(stream, Refusal::Malformed, &limits.draining).await;
        }
        Ok(Err(NoHead::Closed)) => return,
        Err(_elapsed) => {
            drop(ticket);
            return refuse_now(stream, Refusal::TooSlow).await;
        }
    };
    if !ticket.head_arrived() {
        return refuse_now(stream, Refusal::Busy).await;
    }
    let Some(permit) = limits.capacity.take(head.scrape_or_status) else {
        drop(ticket);
        return refuse(stream, Refusal::Busy, &limits.draining).await;
    };
    let event_stream = head.event_stream;
    let service_context = Arc::clone(&context);
    let service = hyper::service::service_fn(move |req| {
        let context = Arc::clone(&service_context);
        async move { Ok::<_, Infallible>(serve::handle(&context, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(limits.header_timeout)
        // hyper refuses a buffer under 8 KiB (it panics); the head is at most MAX_HEAD anyway.
        .max_buf_size(MAX_HEAD.max(8192));
    let io = TokioIo::new(Prefixed::new(head.bytes, stream));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let answer_time = if event_stream {
        Duration::MAX
    } else {
        ANSWER_TIMEOUT
    };
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = tokio::time::sleep(answer_time) => {}
        _ = stopped.changed() => {}
    }
    drop(permit);
    drop(ticket);
}

/// Why a connection is answered before hyper sees it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// 503: no place now (the client's limit, the waiting limit, the answer capacity).
    Busy,
    /// 408: the head did not arrive within `header_timeout`.
    TooSlow,
    /// 431: the head is over 16 KiB, or has over 100 fields.
    HeadTooLarge,
    /// 400: the head is not an HTTP/1 request head.
    Malformed,
}

impl Refusal {
    fn answer(self) -> String {
        let (status, retry) = match self {
            Refusal::Busy => ("503 Service Unavailable", "retry-after: 1\r\n"),
            Refusal::TooSlow => ("408 Request Timeout", ""),
            Refusal::HeadTooLarge => ("431 Request Header Fields Too Large", ""),
            Refusal::Malformed => ("400 Bad Request", ""),
        };
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n{retry}{}\r\n",
            security_lines()
        )
    }
}

/// Answers and closes at once (a slow client: nothing of it is worth waiting for).
async fn refuse_now(mut stream: TcpStream, why: Refusal) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(why.answer().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Answers, then reads and drops what the client still sends for a moment, so that it reads
/// the answer rather than a reset (closing with unread input resets the connection).
async fn refuse(mut stream: TcpStream, why: Refusal, draining: &Arc<Semaphore>) {
    let Ok(_place) = Arc::clone(draining).try_acquire_owned() else {
        return refuse_now(stream, why).await;
    };
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        if stream.write_all(why.answer().as_bytes()).await.is_err() {
            return;
        }
        let _ = stream.shutdown().await;
        let mut buf = [0u8; 8192];
        let mut total = 0usize;
        while total < DRAIN {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}
