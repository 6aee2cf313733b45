//! The agent's inbox: a loopback HTTP receiver (tiny_http) that the default webhook channel
//! posts to, so a newcomer sees alerts arrive with nothing else installed. It keeps the latest
//! ones for the board and hands each to a callback.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

/// One alert as the webhook plugin posted it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The alert (the webhook plugin's JSON body).
    pub alert: serde_json::Value,
    /// Its idempotency key.
    pub key: String,
}

impl Received {
    /// `critical  cpu{…}  firing  summary`, for printing.
    pub fn line(&self) -> String {
        let a = &self.alert;
        let labels = a["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let mut line = format!(
            "{:<8} {:<8} {}{{{labels}}}  {}",
            a["status"].as_str().unwrap_or("?"),
            a["severity"].as_str().unwrap_or("?"),
            a["rule"].as_str().unwrap_or("?"),
            a["annotations"]["summary"].as_str().unwrap_or("")
        );
        if let Some(r) = a["annotations"]["recovery"].as_str() {
            line.push_str(&format!("  [recovery: {r}]"));
        }
        line.push_str(&format!("  (key {})", self.key));
        line
    }
}

/// The receiver, running until the process ends.
pub struct Inbox {
    addr: SocketAddr,
    latest: Arc<Mutex<VecDeque<Received>>>,
}

impl Inbox {
    /// Listens on `addr` (port 0: any free port); `each` sees every alert received.
    pub fn start(
        addr: SocketAddr,
        each: impl Fn(&Received) + Send + Sync + 'static,
    ) -> std::io::Result<Inbox> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let latest = Arc::new(Mutex::new(VecDeque::new()));
        let keep = Arc::clone(&latest);
        thread::Builder::new()
            .name("agent-inbox".into())
            .spawn(move || {
                for mut request in server.incoming_requests() {
                    let key = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Idempotency-Key"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default();
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(
                        &mut std::io::Read::take(request.as_reader(), 1 << 20),
                        &mut body,
                    );
                    let _ = request.respond(tiny_http::Response::empty(204));
                    let Ok(alert) = serde_json::from_str(&body) else {
                        continue;
                    };
                    let received = Received { alert, key };
                    each(&received);
                    if let Ok(mut q) = keep.lock() {
                        q.push_back(received);
                        while q.len() > 8 {
                            q.pop_front();
                        }
                    }
                }
            })?;
        Ok(Inbox { addr, latest })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The latest alerts received, oldest first.
    pub fn latest(&self) -> Vec<Received> {
        self.latest
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}
