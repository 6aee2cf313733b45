//! A loopback HTTP/1.1 receiver and a plain hyper client for the plugin benches (included with
//! `#[path]`): the receiver answers 204 to everything, keeps connections alive, counts the
//! connections it accepted and keeps the last request; the client POSTs the same bytes from the
//! host with nothing in between, the baseline a sandboxed `deliver` is compared with.

#![allow(dead_code)] // each bench target uses part of it

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request as received: its head and its body.
pub type Captured = (http::request::Parts, Bytes);

/// The receiver, serving on its own thread and current-thread runtime until the process ends.
pub struct Receiver {
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// The last request received.
    pub last: Arc<Mutex<Option<Captured>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let (count, keep) = (Arc::clone(&accepted), Arc::clone(&last));
        std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"));
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("{e}"));
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        // Relaxed: a plain counter, read after the requests it counts returned.
                        count.fetch_add(1, Ordering::Relaxed);
                        let keep = Arc::clone(&keep);
                        tokio::spawn(async move {
                            let service =
                                hyper::service::service_fn(move |r: Request<Incoming>| {
                                    let keep = Arc::clone(&keep);
                                    async move {
                                        let (parts, body) = r.into_parts();
                                        let body = body
                                            .collect()
                                            .await
                                            .map(|b| b.to_bytes())
                                            .unwrap_or_default();
                                        *keep.lock().unwrap_or_else(|e| e.into_inner()) =
                                            Some((parts, body));
                                        let mut response = Response::new(Full::new(Bytes::new()));
                                        *response.status_mut() = http::StatusCode::NO_CONTENT;
                                        Ok::<_, Infallible>(response)
                                    }
                                });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Receiver {
            addr,
            accepted,
            last,
        }
    }

    /// The last request received.
    pub fn last(&self) -> Option<Captured> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A plain hyper HTTP/1.1 client on a current-thread runtime driven by the calling thread:
/// `post` sends `captured`'s method, path, headers and body to `addr`, on one kept-alive
/// connection (`fresh = false`) or on a new connection each time (`fresh = true`).
pub struct PlainPost {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    captured: Captured,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl PlainPost {
    pub fn new(addr: SocketAddr, captured: Captured) -> PlainPost {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        PlainPost {
            rt,
            addr,
            captured,
            sender: None,
        }
    }

    pub fn post(&mut self, fresh: bool) {
        let (parts, body) = &self.captured;
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        if fresh {
            self.sender = None;
        }
        let addr = self.addr;
        let slot = &mut self.sender;
        self.rt.block_on(async move {
            if slot.as_ref().is_none_or(|s| s.is_closed()) {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let _ = stream.set_nodelay(true);
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                tokio::spawn(conn);
                *slot = Some(sender);
            }
            let Some(sender) = slot.as_mut() else {
                unreachable!("set above")
            };
            sender.ready().await.unwrap_or_else(|e| panic!("{e}"));
            let response = sender
                .send_request(request)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(response.status().is_success(), "{}", response.status());
            let _ = response.into_body().collect().await;
        });
    }
}
