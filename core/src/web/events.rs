//! Server-sent events: one thread reads the pipeline's events and hands each, as an SSE
//! message, to every connected stream; a stream that cannot keep up is dropped (the board
//! reconnects and reloads its state), so a slow browser never holds the pipeline back.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::pipeline::Event;

/// Streams open at once; more are refused with 503.
pub(super) const MAX_STREAMS: usize = 16;
/// Messages a stream may have waiting before it is dropped.
const STREAM_BUFFER: usize = 256;
/// A comment line this often keeps proxies and the browser from closing an idle stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The connected streams.
#[derive(Clone, Default)]
pub(super) struct Clients(Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>);

impl Clients {
    /// A new stream, or `None` at [`MAX_STREAMS`].
    pub(super) fn open(&self) -> Option<EventStream> {
        let mut clients = self.0.lock();
        clients.retain(|c| !c.is_closed());
        if clients.len() >= MAX_STREAMS {
            return None;
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        // Tells the browser to reconnect after 1 s if the stream ends.
        let _ = tx.try_send(Bytes::from_static(b"retry: 1000\n\n"));
        clients.push(tx);
        Some(EventStream(rx))
    }

    fn send(&self, message: &Bytes) {
        // A full stream is dropped rather than waited for.
        self.0
            .lock()
            .retain(|c| c.try_send(message.clone()).is_ok());
    }

    fn close_all(&self) {
        self.0.lock().clear();
    }
}

/// The thread that fans events out.
pub(super) struct Fanout {
    clients: Clients,
    stop: crossbeam_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fanout {
    pub(super) fn start(
        events: Option<crossbeam_channel::Receiver<Event>>,
    ) -> std::io::Result<Fanout> {
        let clients = Clients::default();
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let out = clients.clone();
        let thread = std::thread::Builder::new()
            .name("vigilo-http-events".into())
            .spawn(move || {
                let events = events.unwrap_or_else(crossbeam_channel::never);
                loop {
                    crossbeam_channel::select! {
                        recv(events) -> e => match e {
                            Ok(e) => out.send(&message(&e)),
                            Err(_) => break,
                        },
                        recv(stopped) -> _ => break,
                        default(KEEPALIVE) => out.send(&Bytes::from_static(b": keep-alive\n\n")),
                    }
                }
                out.close_all();
            })?;
        Ok(Fanout {
            clients,
            stop,
            thread: Some(thread),
        })
    }

    pub(super) fn clients(&self) -> Clients {
        self.clients.clone()
    }

    pub(super) fn stop(mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `event: <kind>` and the event as JSON (one line: JSON strings escape newlines).
fn message(e: &Event) -> Bytes {
    let json = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: pipeline\ndata: {json}\n\n"))
}

/// The body of an event-stream response.
pub(super) struct EventStream(mpsc::Receiver<Bytes>);

impl Body for EventStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}
