//! The opt-in HTTP endpoint of a monitor (`[http]` in the configuration): the exposition for
//! Prometheus, the live status board with a chart of every item, and the status API behind it.
//!
//! | path | method | what |
//! |---|---|---|
//! | `/metrics` | GET | every series and the monitor's own state, Prometheus text or OpenMetrics by `Accept` ([`crate::exposition`]) |
//! | `/` | GET | the status board: one HTML page, its script `/board.js` and style `/board.css`, no outside resources, updated live |
//! | `/api/status` | GET | [`MonitorStatus`](crate::monitor::MonitorStatus) as JSON: items worst first (each value and threshold also as text with its unit), incidents, silences, coverage, counters |
//! | `/api/history?limit=N` | GET | the latest N events (default 50, at most 1000), newest first |
//! | `/api/events` | GET | server-sent events: one `event` message per pipeline event, as JSON |
//! | `/api/charts` | GET | every item's recent values (at most 120 points each, the first 200 items), thresholds and severity changes, labelled with its unit |
//! | `/api/charts/{id}` | GET | one item's chart at full resolution (an hour at the default tick), with its latest transitions and incident events; `id` as `/api/charts` gives it |
//! | `/api/incidents/{id}/ack` | POST | `{"by": "…", "comment": "…", "expires_after": "1h", "sticky": false}` |
//! | `/api/silences` | POST | `{"created_by": "…", "comment": "…", "duration": "2h", "rules": […], "matchers": {"label": "value"}}` |
//!
//! **Who may read.** On a loopback address (the default), whoever reaches it: the processes of
//! this machine. On any other address, reads need the operator token too (`Authorization:
//! Bearer <token>`; Prometheus: `authorization: { credentials: … }` in the scrape config; the
//! board asks for it), unless `public_read = true` says that every item, label, annotation,
//! ack comment and history entry may be read by the network. A non-loopback address with
//! neither a token nor `public_read` is refused at start. At start the monitor logs what is
//! exposed to whom ([`HttpConfig::access`]; a warning when reads are public).
//!
//! **Who may write.** Writes need the operator token of `[http] token` as `Authorization:
//! Bearer <token>`, a JSON body, and, when the browser sends an `Origin` (or
//! `Sec-Fetch-Site`), the endpoint's own origin: a page on another site can neither read the
//! token nor send it, so it cannot ack or silence (no cross-site request forgery). Without a
//! token the endpoint is read-only (writes get 403). On a loopback address it answers only
//! requests whose `Host` is `localhost` or a loopback address (421 otherwise), so a page that
//! rebinds its own domain to 127.0.0.1 cannot read it either.
//!
//! **Headers.** Every answer carries a `Content-Security-Policy` allowing only the endpoint's
//! own script, style and connections (no inline script) and `frame-ancestors 'none'`, and
//! `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer`, `Cross-Origin-Opener-Policy` and `Cross-Origin-Resource-Policy:
//! same-origin`, a `Permissions-Policy` and `Cache-Control: no-store`.
//!
//! **Limits, and a slow flood.** One request per connection. A connection *waits* until its
//! request head has arrived: at most `header_timeout` (5 s; 408), at most 16 KiB (431). A
//! client (an IPv4 address or an IPv6 /64) holds at most `max_per_client` connections (64),
//! all clients together at most `max_waiting` waiting ones (512); past either, a connection
//! that has waited long is closed with a 503 (the client's own first, once it has waited a
//! second), so a client whose head arrives at once (a scrape, the board) always gets in,
//! however many slow ones are held, even from the same address. Then at most `max_connections` requests are answered at once (64; more
//! get 503), plus 8 places kept for `GET /metrics` and `GET /api/status` only; an answer must
//! be read within 30 s (event streams excepted: at most 16, and one that cannot keep up is
//! dropped), a write's body arrive within `header_timeout` (408) and weigh at most 64 KiB
//! (413). The endpoint runs on its own threads; a scrape reads a snapshot and never delays a
//! record call.
//!
//! **Charts.** Each item keeps one value per slot (the evaluator's tick, at least 5 s) in a
//! fixed ring of 720 (an hour at the default tick; the worst value sampled in the slot) and
//! its last 16 severity changes: about 3.4 KiB per item, for at most 10,000 items. Items are
//! read once per tick (at most once a second), and again before a chart is answered.

mod admission;
mod capacity;
mod chart;
mod events;
mod head;
mod listen;
mod respond;
mod sampler;
mod serve;
mod trends;

pub(crate) use trends::{Reading, Readings};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::exposition::Exposition;
use crate::metrics::Registry;
use crate::pipeline::{AckRequest, Event, SilenceRequest};

/// `[http]`: where the endpoint listens, who may read and who may write.
///
/// ```toml
/// [http]
/// listen = "127.0.0.1:9187"     # the default; 0.0.0.0:9187 to serve other machines
/// token = "change-me"           # acks and silences; off loopback, reads too
/// # public_read = true          # off loopback: reads open to the network, no token needed
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The address to listen on. Default `127.0.0.1:9187` (loopback only); port 0 picks a
    /// free one ([`Monitor::http_address`](crate::monitor::Monitor::http_address) tells).
    pub listen: String,
    /// The operator token that write requests must carry (and, on a non-loopback address
    /// without `public_read`, read requests too); none: read-only.
    pub token: Option<String>,
    /// On a non-loopback address, reads (the board, the status, the history, the charts,
    /// `/metrics`) are open to whoever reaches the address, without the token. Default false:
    /// there, reads need the token, and an address without a token is refused at start.
    pub public_read: bool,
    /// The `le` bounds of exported histograms. Default
    /// [`DEFAULT_BUCKETS`](crate::exposition::DEFAULT_BUCKETS).
    pub buckets: Vec<f64>,
    /// Requests answered at once (event streams and writes included); more are answered 503
    /// and closed (8 more places are kept for `GET /metrics` and `GET /api/status`). Default
    /// 64.
    pub max_connections: usize,
    /// Connections one client (an IPv4 address, an IPv6 /64) holds at once; past it, its
    /// connection waiting longest for its head is closed (503) once that has waited a second,
    /// or the new one refused if none of its connections waits. Default 64.
    pub max_per_client: usize,
    /// Connections still sending their request head, all clients together; past it, the one
    /// waiting longest is closed (503). Default 512.
    pub max_waiting: usize,
    /// Time for a client to send its request head (408 after), and then a write request's
    /// body. Default 5 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub header_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9187".to_owned(),
            token: None,
            public_read: false,
            buckets: crate::exposition::DEFAULT_BUCKETS.to_vec(),
            max_connections: 64,
            max_per_client: 64,
            max_waiting: 512,
            header_timeout: Duration::from_secs(5),
        }
    }
}

impl HttpConfig {
    /// Checks what serde cannot: the address parses, the buckets increase, the token is not
    /// empty, the limits are at least 1, and a non-loopback address has a token or says
    /// `public_read = true`. The message names the key. The configuration file's `[http]` is
    /// checked when it is read; call this after changing the section in code (the monitor
    /// refuses to start the endpoint otherwise).
    pub fn validate(&self) -> Result<(), String> {
        let address = self.listen.parse::<SocketAddr>().map_err(|e| {
            format!(
                "listen: {:?} is not an address such as 127.0.0.1:9187: {e}",
                self.listen
            )
        })?;
        if !address.ip().is_loopback() && self.token.is_none() && !self.public_read {
            return Err(format!(
                "listen: {address} is not a loopback address, and there is no token: every \
                 item, label, annotation, ack comment and history entry would be readable by \
                 anyone who reaches it. Set `token` (reads and writes then need it), or \
                 `public_read = true` if the network may read all of it"
            ));
        }
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
        for (key, value) in [
            ("max_connections", self.max_connections),
            ("max_per_client", self.max_per_client),
            ("max_waiting", self.max_waiting),
        ] {
            if value == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        if self.header_timeout.is_zero() {
            return Err("header_timeout: must be more than 0".to_owned());
        }
        Ok(())
    }

    /// Whether reads need the operator token: on a non-loopback address without
    /// `public_read`.
    pub fn reads_need_token(&self) -> bool {
        !self.loopback() && !self.public_read
    }

    fn loopback(&self) -> bool {
        self.listen
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback())
    }

    /// What the endpoint exposes to whom, for the start-up line: e.g. `reads open to this
    /// machine only (loopback); writes refused (no token)`, or `on the network: reads PUBLIC
    /// (public_read = true: every item, label, annotation, ack comment and history entry);
    /// writes need the operator token`.
    pub fn access(&self) -> String {
        let writes = if self.token.is_some() {
            "writes (ack, silence) need the operator token"
        } else {
            "writes refused (no token)"
        };
        let reads = if self.loopback() {
            "reads open to this machine only (loopback)"
        } else if self.public_read {
            "on the network: reads PUBLIC (public_read = true: every item, label, annotation, \
             ack comment and history entry)"
        } else {
            "on the network: reads need the operator token"
        };
        format!("{reads}; {writes}")
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
    /// The configuration is invalid (see [`HttpConfig::validate`]), e.g. a public address
    /// without a token or `public_read`.
    #[error("[http] {0}")]
    Invalid(String),
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
    /// Every item's value and severity now, worst first, for the charts.
    fn readings(&self) -> Result<Readings, String>;
    /// The latest `limit` events of `item` (`rule{labels}`), newest first.
    fn item_events(&self, item: &str, limit: usize) -> Result<Vec<Event>, String>;
    /// How often the evaluator sweeps (the charts' resolution).
    fn resolution(&self) -> Duration;
}

/// The running endpoint. Stopping it (or dropping it) closes the listener and every
/// connection and joins its threads, so it holds nothing of the monitor afterwards.
pub(crate) struct Server {
    address: SocketAddr,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    events: Option<events::Fanout>,
    sampler: Option<sampler::Sampler>,
}

impl Server {
    pub(crate) fn start(config: &HttpConfig, source: Arc<dyn Source>) -> Result<Server, HttpError> {
        config.validate().map_err(HttpError::Invalid)?;
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
        // The start-up line: what is exposed, to whom.
        if config.public_read && !address.ip().is_loopback() {
            log::warn!("HTTP endpoint on http://{address}/: {}", config.access());
        } else {
            log::info!("HTTP endpoint on http://{address}/: {}", config.access());
        }
        let events = events::Fanout::start(source.subscribe()).map_err(HttpError::Start)?;
        let charts = sampler::Charts::new(Arc::clone(&source));
        let sampler = sampler::Sampler::start(Arc::clone(&charts)).map_err(HttpError::Start)?;
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let context = Arc::new(serve::Context::new(
            config,
            source,
            events.clients(),
            charts,
        ));
        let limits = Arc::new(listen::Limits::new(
            admission::Admission::new(admission::Limits {
                max_waiting: config.max_waiting,
                max_per_client: config.max_per_client,
            }),
            capacity::Capacity::new(config.max_connections),
            config.header_timeout,
        ));
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
                runtime.block_on(listen::accept_loop(listener, context, limits, stopped));
                // Open connections (event streams) end with the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(HttpError::Start)?;
        Ok(Server {
            address,
            shutdown: Some(shutdown),
            thread: Some(thread),
            events: Some(events),
            sampler: Some(sampler),
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
        self.sampler.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
