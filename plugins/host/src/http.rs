//! Outgoing `wasi:http`: only to the plugin's allowed hosts, with the plugin's timeouts.
//!
//! The check reads the request's authority strictly: user information (`user@host`) and a port
//! that is empty, not a number or out of range are refused, never read leniently. A plain-HTTP
//! request to a host name is resolved once, here, and sent to that address (the `Host` header
//! keeps the name), so a name that resolves elsewhere a moment later (DNS rebinding) cannot
//! redirect it. HTTPS requests are checked against the name the certificate must carry.
//!
//! Plain-HTTP requests reuse the plugin's kept-alive connections to the pinned address
//! (`pool.rs`); the allowlist is checked, and the name resolved, for every request before a
//! connection is picked. HTTPS requests get a new connection each (TLS by rustls with the webpki
//! roots, as `wasmtime-wasi-http` does it).
//!
//! Every request carries connect, first-byte and between-bytes timeouts no longer than the
//! plugin's `http_timeout` (the guest may ask for shorter), the wait for the response head is
//! bounded as a whole (twice `http_timeout`), and the body by a total time and a size shared by
//! the call (`budget.rs`), never past the call's own wall-clock bound, which bounds everything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::budget::CallBudget;
use crate::policy::Policy;
use crate::pool::{Pool, Timeouts};

/// The `log` target of the line each outgoing request of a plugin writes (at debug level):
/// `plugin NAME: METHOD URL -> STATUS (TIME)`.
pub const HTTP_LOG_TARGET: &str = "vigilo::plugin::http";

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
    /// The call's end and its response-body budget.
    budget: Arc<CallBudget>,
    /// The first request refused during this call.
    pub(crate) denied: Option<String>,
}

/// A request's target, read strictly from its authority.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or address, IPv6 without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) default_port: u16,
}

/// Reads `uri`'s target, refusing what a lenient reader would guess at.
pub(crate) fn target(uri: &http::Uri) -> Result<Target, String> {
    let authority = uri
        .authority()
        .ok_or_else(|| format!("request to {uri} has no host"))?;
    let text = authority.as_str();
    if text.contains('@') {
        return Err(format!(
            "request to {text:?} refused: user information in the URL is not allowed"
        ));
    }
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let default_port = if https { 443 } else { 80 };
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("request to {text:?} refused: unclosed '['"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("request to {text:?} refused: junk after ']'"))?,
                ),
            ),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port_text {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("request to {text:?} refused: invalid port {p:?}"))?,
    };
    if host.is_empty() {
        return Err(format!("request to {text:?} refused: no host"));
    }
    Ok(Target {
        host: host.to_ascii_lowercase(),
        port,
        default_port,
    })
}

impl HttpPolicy {
    pub(crate) fn new(policy: Arc<Policy>, budget: Arc<CallBudget>) -> Self {
        HttpPolicy {
            policy,
            budget,
            denied: None,
        }
    }

    fn check(&self, uri: &http::Uri) -> Result<Target, String> {
        let t = target(uri)?;
        if self
            .policy
            .allowed_hosts
            .iter()
            .any(|a| a.allows(&t.host, t.port, t.default_port))
        {
            Ok(t)
        } else {
            Err(format!(
                "HTTP request to {}:{} refused: not in the allowed_hosts of plugin {}",
                t.host, t.port, self.policy.name
            ))
        }
    }
}

fn clamp(
    asked: Option<std::time::Duration>,
    cap: std::time::Duration,
) -> Option<std::time::Duration> {
    Some(asked.map_or(cap, |a| a.min(cap)))
}

/// The address a plain-HTTP request goes to: its host's, resolved once for this request when it
/// is a name (the request is sent there; its `Host` header keeps the name).
async fn pin(t: &Target) -> Result<SocketAddr, HttpError> {
    if let Ok(ip) = t.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, t.port));
    }
    tokio::net::lookup_host((t.host.as_str(), t.port))
        .await
        .map_err(|_| HttpError::DestinationNotFound)?
        .next()
        .ok_or(HttpError::DestinationNotFound)
}

/// Sends `request` (already allowed) with `options`: plain HTTP on the plugin's pool of kept
/// connections, to the pinned address; HTTPS on a new connection each time, as
/// `wasmtime-wasi-http` does it (rustls, the webpki roots).
async fn dispatch(
    pool: Arc<Pool>,
    request: http::Request<WasiBody>,
    target: &Target,
    options: RequestOptions,
    cap: Duration,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
> {
    if request.uri().scheme() == Some(&Scheme::HTTPS) {
        let (response, io) =
            wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
        return Ok((
            response.map(BodyExt::boxed_unsync),
            Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
        ));
    }
    let addr = pin(target).await?;
    let timeouts = Timeouts {
        connect: options.connect_timeout.unwrap_or(cap),
        first_byte: options.first_byte_timeout.unwrap_or(cap),
        between_bytes: options.between_bytes_timeout.unwrap_or(cap),
    };
    let response = crate::pool::send(pool, request, addr, timeouts).await?;
    // The response's body drives the rest of the exchange (see `pool.rs`).
    Ok((response, Box::new(async { Ok(()) })))
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let target = match self.check(request.uri()) {
            Ok(t) => t,
            Err(why) => {
                log::warn!(target: HTTP_LOG_TARGET, "plugin {}: {why}", self.policy.name);
                self.denied.get_or_insert(crate::limits::head(why));
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let cap = self.policy.http_timeout;
        let asked = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: clamp(asked.connect_timeout, cap),
            first_byte_timeout: clamp(asked.first_byte_timeout, cap),
            between_bytes_timeout: clamp(asked.between_bytes_timeout, cap),
        };
        let name = self.policy.name.clone();
        let what = format!("{} {}", request.method(), request.uri());
        let pool = Arc::clone(&self.policy.http_pool);
        let budget = Arc::clone(&self.budget);
        Box::new(async move {
            let started = std::time::Instant::now();
            // Connect and first byte each have `cap`; the head as a whole gets both, and never
            // more than the call has left.
            let head_ends = (tokio::time::Instant::now() + cap.saturating_mul(2)).min(budget.ends);
            let sent =
                tokio::time::timeout_at(head_ends, dispatch(pool, request, &target, options, cap))
                    .await
                    .map_err(|_| HttpError::ConnectionReadTimeout)
                    .and_then(|r| r)
                    // The body: within `cap` of the head, and within the call's byte budget.
                    .map(|(response, io)| {
                        let body_ends = tokio::time::Instant::now() + cap;
                        (response.map(|b| budget.limit(b, body_ends)), io)
                    });
            // Each request the plugin makes, for whoever traces plugins (`host-agent
            // try-plugin` prints these).
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &sent {
                Ok((response, _)) => log::debug!(
                    target: HTTP_LOG_TARGET,
                    "plugin {name}: {what} -> {} ({ms:.1} ms)",
                    response.status().as_u16()
                ),
                Err(e) => log::debug!(
                    target: HTTP_LOG_TARGET,
                    "plugin {name}: {what} -> failed: {e:?} ({ms:.1} ms)"
                ),
            }
            sent
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Result<Target, String> {
        target(&s.parse::<http::Uri>().map_err(|e| e.to_string())?)
    }

    #[test]
    fn authorities_are_read_strictly() {
        assert_eq!(t("http://127.0.0.1:9000/x").unwrap().port, 9000);
        assert_eq!(
            t("https://Hooks.Example.com/").unwrap().host,
            "hooks.example.com"
        );
        assert_eq!(t("https://hooks.example.com/").unwrap().port, 443);
        assert_eq!(t("http://[::1]:8080/").unwrap().host, "::1");
        for bad in [
            "http://user@127.0.0.1:9000/",
            "http://127.0.0.1:9001@127.0.0.1:9000/",
            "http://127.0.0.1:105543/",
            "http://127.0.0.1:/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:+80/",
        ] {
            assert!(t(bad).is_err(), "{bad} must be refused");
        }
    }
}
