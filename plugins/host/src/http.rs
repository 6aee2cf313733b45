//! Outgoing `wasi:http`: only to the plugin's allowed hosts, with the plugin's timeouts.
//!
//! An epoch deadline cannot interrupt a host call, so every request carries connect,
//! first-byte and between-bytes timeouts no longer than the plugin's `http_timeout` (the guest
//! may ask for shorter), and the wait for the response head is also bounded as a whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::policy::Policy;

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// The per-store `wasi:http` hooks of one plugin call.
pub(crate) struct HttpPolicy {
    policy: Arc<Policy>,
    /// The first request refused during this call.
    pub(crate) denied: Option<String>,
    /// Nanoseconds spent waiting for response heads, shared with the futures (created on the
    /// first request only).
    waited: Option<Arc<AtomicU64>>,
}

impl HttpPolicy {
    pub(crate) fn new(policy: Arc<Policy>) -> Self {
        HttpPolicy {
            policy,
            denied: None,
            waited: None,
        }
    }

    /// Time spent waiting on the network so far in this call (not counted against the
    /// plugin's compute deadline).
    pub(crate) fn waited(&self) -> Duration {
        // Relaxed: a statistic read after (or racing with) the futures' updates; a slightly
        // stale value only delays a deadline decision to the next epoch tick.
        self.waited.as_ref().map_or(Duration::ZERO, |w| {
            Duration::from_nanos(w.load(Ordering::Relaxed))
        })
    }

    fn check(&self, uri: &http::Uri) -> Result<(), String> {
        let Some(host) = uri.host() else {
            return Err(format!("request to {uri} has no host"));
        };
        let default_port = if uri.scheme() == Some(&Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = uri.port_u16().unwrap_or(default_port);
        if self
            .policy
            .allowed_hosts
            .iter()
            .any(|a| a.allows(host, port, default_port))
        {
            Ok(())
        } else {
            Err(format!(
                "HTTP request to {host}:{port} refused: not in the allowed_hosts of plugin {}",
                self.policy.name
            ))
        }
    }
}

fn clamp(asked: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(asked.map_or(cap, |a| a.min(cap)))
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        if let Err(why) = self.check(request.uri()) {
            log::warn!(target: "vigilo::plugin", "plugin {}: {why}", self.policy.name);
            self.denied.get_or_insert(why);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let cap = self.policy.http_timeout;
        let asked = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: clamp(asked.connect_timeout, cap),
            first_byte_timeout: clamp(asked.first_byte_timeout, cap),
            between_bytes_timeout: clamp(asked.between_bytes_timeout, cap),
        };
        let waited = Arc::clone(self.waited.get_or_insert_with(Arc::default));
        Box::new(async move {
            let started = Instant::now();
            // Connect and first byte each have `cap`; the head as a whole gets both.
            let sent = tokio::time::timeout(
                cap.saturating_mul(2),
                wasmtime_wasi_http::default_send_request(request, Some(options)),
            )
            .await;
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // Relaxed: see `waited`.
            waited.fetch_add(nanos, Ordering::Relaxed);
            let (response, io) = sent.map_err(|_| HttpError::ConnectionReadTimeout)??;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}
