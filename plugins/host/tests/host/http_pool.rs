//! Plain-HTTP requests of a plugin on kept-alive connections (`src/pool.rs`), against a loopback
//! HTTP/1.1 server that counts the TCP connections it accepts: reuse, the allowlist before any
//! reuse, servers that close idle connections or stall, and responses the guest did not read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;
use vigilo::alert::{Alert, Channel, DeliveryError};
use vigilo_plugin_host::{ChannelPlugin, PluginError, PluginHost};

use crate::common::{alert, host, settings};
use crate::peers::{WAIT, load_channel, sample_alert};

/// What the server does with the next request.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `200` with a body of `body` bytes; then closes the connection if `close`, without saying
    /// so beforehand (a server whose idle timeout is zero).
    Answer { body: usize, close: bool },
    /// Reads the request and never answers.
    Stall,
}

/// A loopback HTTP/1.1 server keeping connections alive, one thread per connection.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    /// One message each time the server closed a connection after answering on it.
    closed: Receiver<()>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, closed) = mpsc::channel();
        let (acc, ans, m, st) = (
            Arc::clone(&accepted),
            Arc::clone(&answered),
            Arc::clone(&mode),
            Arc::clone(&stop),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                // Relaxed: a flag, and counters read after the requests they count returned.
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                acc.fetch_add(1, Ordering::Relaxed);
                let (ans, m, tx) = (Arc::clone(&ans), Arc::clone(&m), tx.clone());
                thread::spawn(move || serve(stream, &ans, &m, &tx));
            }
        });
        Server {
            addr,
            accepted,
            answered,
            mode,
            closed,
            stop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answers the requests of one connection until the client closes it (or the mode says to).
fn serve(stream: TcpStream, answered: &AtomicUsize, mode: &Mutex<Mode>, closed: &Sender<()>) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() && !first {
                break;
            }
            first = false;
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let now = *mode.lock().unwrap();
        match now {
            Mode::Stall => {
                // Until the client gives up and closes.
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return;
            }
            Mode::Answer { body, close } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {body}\r\n\r\n");
                let mut answer = head.into_bytes();
                answer.resize(answer.len() + body, b'x');
                // Counted before the answer is written: the client returns as soon as it has
                // read the answer, and the test reads the count then (counted after the write,
                // a loaded machine showed 1 of 2 answers).
                answered.fetch_add(1, Ordering::Relaxed);
                if stream.write_all(&answer).is_err() {
                    return;
                }
                if close {
                    let _ = stream.shutdown(Shutdown::Both);
                    let _ = closed.send(());
                    return;
                }
            }
        }
    }
}

/// The bundled webhook (which reads every response to its end) pointed at `server`.
fn webhook(server: &Server, http_timeout: Option<Duration>) -> (PluginHost, ChannelPlugin) {
    load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![server.addr.to_string()];
        s.config = json!({ "url": server.url("/alerts") });
        if let Some(t) = http_timeout {
            s.http_timeout = t;
        }
    })
}

/// The `http-get` test guest (which never reads a response's body) allowed to reach `server`
/// only under its address, pointed at `url` unless an alert's `url` label says otherwise.
fn http_get(server: &Server, url: &str) -> (PluginHost, ChannelPlugin) {
    let host = host(0);
    let mut s = settings("http-get", "http-get");
    s.allowed_hosts = vec![server.addr.to_string()];
    s.config = json!({ "url": url });
    let plugin = host.load_channel(s).unwrap();
    (host, plugin)
}

fn to(url: &str) -> Alert {
    let mut a = alert();
    a.labels.insert("url".into(), url.into());
    a
}

#[test]
fn deliveries_reuse_one_kept_alive_connection() {
    let server = Server::start(Mode::Answer {
        body: 2,
        close: false,
    });
    let (_host, webhook) = webhook(&server, None);
    for i in 0..20 {
        webhook
            .deliver(&sample_alert())
            .unwrap_or_else(|e| panic!("delivery {i}: {e}"));
    }
    assert_eq!(server.answered(), 20);
    assert_eq!(
        server.accepted(),
        1,
        "20 deliveries one after the other must share one TCP connection"
    );
}

#[test]
fn a_host_not_allowed_is_refused_though_a_connection_to_its_address_is_kept() {
    let server = Server::start(Mode::Answer {
        body: 0,
        close: false,
    });
    let allowed = server.url("/x");
    let (_host, plugin) = http_get(&server, &allowed);
    plugin.deliver(&to(&allowed)).unwrap();
    plugin.deliver(&to(&allowed)).unwrap();
    assert_eq!(
        (server.accepted(), server.answered()),
        (1, 2),
        "the empty answers are reused"
    );
    // `localhost` resolves to the kept connection's very address, but only `127.0.0.1:PORT`
    // is allowed: refused before any connection is looked at.
    let other = format!("http://localhost:{}/x", server.addr.port());
    match plugin.try_deliver(&to(&other)) {
        Err(PluginError::Denied { detail, .. }) => {
            assert!(detail.contains("not in the allowed_hosts"), "{detail}")
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(server.answered(), 2, "nothing reached the server");
    plugin.deliver(&to(&allowed)).unwrap();
    assert_eq!((server.accepted(), server.answered()), (1, 3));
}

#[test]
fn a_server_that_closes_idle_connections_does_not_fail_the_next_delivery() {
    let server = Server::start(Mode::Answer {
        body: 2,
        close: true,
    });
    let (_host, webhook) = webhook(&server, None);
    for i in 0..5 {
        webhook
            .deliver(&sample_alert())
            .unwrap_or_else(|e| panic!("delivery {i}: {e}"));
        // The server has closed the connection the pool may have kept.
        server
            .closed
            .recv_timeout(WAIT)
            .expect("the server closed the connection");
    }
    assert_eq!((server.accepted(), server.answered()), (5, 5));
}

#[test]
fn a_stalling_server_hits_the_http_timeout_on_a_kept_connection() {
    let server = Server::start(Mode::Answer {
        body: 2,
        close: false,
    });
    let (_host, webhook) = webhook(&server, Some(Duration::from_millis(300)));
    webhook.deliver(&sample_alert()).unwrap();
    server.set(Mode::Stall);
    let started = std::time::Instant::now();
    match webhook.deliver(&sample_alert()) {
        Err(DeliveryError::Retryable(m)) => {
            assert!(m.to_ascii_lowercase().contains("timeout"), "{m}")
        }
        other => panic!("expected a retryable timeout, got {other:?}"),
    }
    // Far below the 30 s call_timeout: the plugin's http_timeout ended it.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        server.accepted(),
        1,
        "the stalled request was on the kept connection"
    );
    // And a stalled connection is not kept: the next delivery gets a new one.
    server.set(Mode::Answer {
        body: 2,
        close: false,
    });
    webhook.deliver(&sample_alert()).unwrap();
    assert_eq!(server.accepted(), 2);
}

#[test]
fn a_response_body_left_unread_does_not_poison_the_pool() {
    // Larger than any socket buffer hyper reads at once: most of it is still on the wire.
    let server = Server::start(Mode::Answer {
        body: 256 * 1024,
        close: false,
    });
    let url = server.url("/big");
    let (_host, plugin) = http_get(&server, &url);
    for i in 0..3 {
        plugin
            .deliver(&to(&url))
            .unwrap_or_else(|e| panic!("delivery {i}: {e}"));
    }
    assert_eq!(
        server.accepted(),
        3,
        "a connection whose answer was not read to its end is never reused"
    );
    // A small body, also unread: no connection with bytes left is reused either.
    server.set(Mode::Answer {
        body: 2,
        close: false,
    });
    for i in 0..3 {
        plugin
            .deliver(&to(&url))
            .unwrap_or_else(|e| panic!("small delivery {i}: {e}"));
    }
    assert_eq!(server.accepted(), 6);
}
