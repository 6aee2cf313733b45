//! The opt-in HTTP endpoint of a monitor (`[http]` in the configuration): the exposition for
//! Prometheus, the live status board, and the status API behind it.
//!
//! | path | method | what |
//! |---|---|---|
//! | `/metrics` | GET | every series and the monitor's own state, Prometheus text or OpenMetrics by `Accept` ([`crate::exposition`]) |
//! | `/` | GET | the status board: one HTML page, no outside resources, updated live |
//! | `/api/status` | GET | [`MonitorStatus`](crate::monitor::MonitorStatus) as JSON: items worst first, incidents, silences, coverage, counters |
//! | `/api/history?limit=N` | GET | the latest N events (default 50, at most 1000), newest first |
//! | `/api/events` | GET | server-sent events: one `event` message per pipeline event, as JSON |
//! | `/api/incidents/{id}/ack` | POST | `{"by": "…", "comment": "…", "expires_after": "1h", "sticky": false}` |
//! | `/api/silences` | POST | `{"created_by": "…", "comment": "…", "duration": "2h", "rules": […], "matchers": {"label": "value"}}` |
//!
//! Reads are open to whoever reaches the address (loopback by default). Writes need the
//! operator token of `[http] token` as `Authorization: Bearer <token>`, a JSON body, and, when
//! the browser sends an `Origin`, the endpoint's own origin: a page on another site can neither
//! read the token nor send it, so it cannot ack or silence (no cross-site request forgery).
//! Without a token the endpoint is read-only (writes get 403). On a loopback address it answers
//! only requests whose `Host` is `localhost` or a loopback address (421 otherwise), so a page
//! that rebinds its own domain to 127.0.0.1 cannot read it either.
//!
//! Limits: `max_connections` connections at once (more get 503 at once), 16 event streams,
//! request heads of at most 16 KiB (431), bodies of at most 64 KiB (413), a head must arrive
//! within `header_timeout` (slow clients are cut) and a write's body within the same time
//! after it (408). The endpoint runs on its own threads; a
//! scrape reads a snapshot and never delays a record call.

mod events;
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::exposition::Exposition;
use crate::metrics::Registry;
use crate::pipeline::{AckRequest, Event, SilenceRequest};

/// `[http]`: where the endpoint listens and who may write.
///
/// ```toml
/// [http]
/// listen = "127.0.0.1:9187"     # the default; 0.0.0.0:9187 to serve other machines
/// token = "change-me"           # enables ack and silence from the board and the API
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to listen on. Default `127.0.0.1:9187` (loopback only); port 0 picks a
    /// free one ([`Monitor::http_address`](crate::monitor::Monitor::http_address) tells).
    pub listen: String,
    /// The operator token that write requests must carry; none: read-only.
    pub token: Option<String>,
    /// The `le` bounds of exported histograms. Default
    /// [`DEFAULT_BUCKETS`](crate::exposition::DEFAULT_BUCKETS).
    pub buckets: Vec<f64>,
    /// Connections served at once; more are answered 503 and closed. Default 64.
    pub max_connections: usize,
    /// Time for a client to send a request head, and then a write request's body. Default
    /// 10 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub header_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9187".to_owned(),
            token: None,
            buckets: crate::exposition::DEFAULT_BUCKETS.to_vec(),
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpConfig {
    /// Checks what serde cannot: the address parses, the buckets increase, the token is not
    /// empty. The message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            format!(
                "listen: {:?} is not an address such as 127.0.0.1:9187: {e}",
                self.listen
            )
        })?;
        if self.buckets.is_empty()
            || self.buckets.iter().any(|b| !b.is_finite())
            || self.buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("buckets: must be finite numbers in increasing order".to_owned());
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(
                "token: must not be empty (leave it out for a read-only endpoint)".to_owned(),
            );
        }
        if self.max_connections == 0 {
            return Err("max_connections: must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address is taken or not allowed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// Its thread or runtime could not start.
    #[error("cannot start the HTTP endpoint: {0}")]
    Start(std::io::Error),
}

/// What the endpoint serves; the monitor implements it (so this module never names the
/// monitor: data flows from the monitor into the endpoint).
pub(crate) trait Source: Send + Sync + 'static {
    fn registry(&self) -> &Registry;
    /// The monitor's own state as families (item severities, incidents, deliveries, lag).
    fn state(&self, out: &mut Exposition<'_>);
    fn status_json(&self) -> Result<String, String>;
    fn history_json(&self, limit: usize) -> Result<String, String>;
    fn subscribe(&self) -> Option<crossbeam_channel::Receiver<Event>>;
    fn ack(&self, incident: u64, request: AckRequest) -> Result<(), String>;
    fn silence(&self, request: SilenceRequest) -> Result<u64, String>;
}

/// The running endpoint. Stopping it (or dropping it) closes the listener and every
/// connection and joins its threads, so it holds nothing of the monitor afterwards.
pub(crate) struct Server {
    address: SocketAddr,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    events: Option<events::Fanout>,
}

impl Server {
    pub(crate) fn start(config: &HttpConfig, source: Arc<dyn Source>) -> Result<Server, HttpError> {
        let bind = |source| HttpError::Bind {
            address: config.listen.clone(),
            source,
        };
        let address: SocketAddr = config
            .listen
            .parse()
            .map_err(|e| bind(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let listener = std::net::TcpListener::bind(address).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let address = listener.local_addr().map_err(bind)?;
        let events = events::Fanout::start(source.subscribe()).map_err(HttpError::Start)?;
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let context = Arc::new(serve::Context::new(config, source, events.clients()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vigilo-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(HttpError::Start)?;
        let thread = std::thread::Builder::new()
            .name("vigilo-http".into())
            .spawn(move || {
                runtime.block_on(serve::accept_loop(listener, context, stopped));
                // Open connections (event streams) end with the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(HttpError::Start)?;
        Ok(Server {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
            events: Some(events),
        })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(e) = self.events.take() {
            e.stop();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
