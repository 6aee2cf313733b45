//! Accepting connections (bounded), routing requests, the write checks.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::events::Clients;
use super::{HttpConfig, Source};
use crate::exposition::{Exposition, Format};
use crate::pipeline::{AckRequest, SilenceRequest};

/// The board: one page, its style and script inline.
const BOARD: &str = include_str!("board.html");
/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body.
const MAX_BODY: usize = 64 * 1024;
/// What is read and dropped past [`MAX_BODY`] before answering 413.
const DRAIN: usize = 1024 * 1024;

type Body = BoxBody<Bytes, Infallible>;

/// What every connection shares.
pub(super) struct Context {
    source: Arc<dyn Source>,
    token: Option<String>,
    buckets: Vec<f64>,
    header_timeout: Duration,
    connections: Arc<Semaphore>,
    streams: Clients,
    /// Listening on a loopback address: only loopback names are accepted in `Host`, so a web
    /// page that rebinds its own name to 127.0.0.1 (DNS rebinding) cannot read the endpoint.
    loopback: bool,
}

impl Context {
    pub(super) fn new(config: &HttpConfig, source: Arc<dyn Source>, streams: Clients) -> Self {
        let loopback = config
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        Context {
            loopback,
            source,
            token: config.token.clone(),
            buckets: config.buckets.clone(),
            header_timeout: config.header_timeout,
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            streams,
        }
    }
}

pub(super) async fn accept_loop(
    listener: std::net::TcpListener,
    context: Arc<Context>,
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
        let Ok((mut stream, _)) = accepted else {
            // Out of descriptors, say: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&context.connections).try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\
                          retry-after: 1\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let context = Arc::clone(&context);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service_context = Arc::clone(&context);
            let service = hyper::service::service_fn(move |req| {
                let context = Arc::clone(&service_context);
                async move { Ok::<_, Infallible>(handle(&context, req).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(context.header_timeout)
                .max_buf_size(MAX_HEAD);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopped.changed() => {}
            }
            drop(permit);
        });
    }
}

async fn handle(context: &Context, req: Request<Incoming>) -> Response<Body> {
    if context.loopback && !loopback_host(req.headers()) {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "this endpoint listens on loopback and answers only to localhost, 127.0.0.1 or [::1]",
        );
    }
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["metrics"]) => metrics(context, req.headers()),
        (&Method::GET, [""]) => respond(StatusCode::OK, "text/html; charset=utf-8", BOARD),
        (&Method::GET, ["api", "status"]) => json_result(context.source.status_json()),
        (&Method::GET, ["api", "history"]) => {
            let limit = query(req.uri().query(), "limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 1000);
            json_result(context.source.history_json(limit))
        }
        (&Method::GET, ["api", "events"]) => match context.streams.open() {
            Some(stream) => Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-store")
                .body(stream.boxed())
                .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response")),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "too many event streams"),
        },
        (&Method::POST, ["api", "incidents", id, "ack"]) => {
            let Ok(id) = id.parse::<u64>() else {
                return error(StatusCode::NOT_FOUND, "no such incident");
            };
            match write_body::<AckBody>(context, req).await {
                Ok(ack) => match ack.into_request() {
                    Ok(request) => match context.source.ack(id, request) {
                        Ok(()) => respond(StatusCode::OK, "application/json", "{\"ok\":true}"),
                        Err(e) => error(StatusCode::CONFLICT, &e),
                    },
                    Err(e) => error(StatusCode::BAD_REQUEST, &e),
                },
                Err(response) => response,
            }
        }
        (&Method::POST, ["api", "silences"]) => match write_body::<SilenceBody>(context, req).await
        {
            Ok(silence) => match silence.into_request() {
                Ok(request) => match context.source.silence(request) {
                    Ok(id) => respond(
                        StatusCode::OK,
                        "application/json",
                        format!("{{\"ok\":true,\"id\":{id}}}"),
                    ),
                    Err(e) => error(StatusCode::BAD_REQUEST, &e),
                },
                Err(e) => error(StatusCode::BAD_REQUEST, &e),
            },
            Err(response) => response,
        },
        (_, ["metrics"] | [""] | ["api", "status" | "history" | "events" | "silences"])
        | (_, ["api", "incidents", _, "ack"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn metrics(context: &Context, headers: &HeaderMap) -> Response<Body> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let mut out = Exposition::new(format, &context.buckets);
    out.registry(context.source.registry());
    context.source.state(&mut out);
    respond(StatusCode::OK, format.content_type(), out.finish())
}

/// The checks of a write request, then its JSON body.
async fn write_body<T: serde::de::DeserializeOwned>(
    context: &Context,
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    let Some(token) = &context.token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "this endpoint is read-only: set [http] token to allow acks and silences",
        ));
    };
    let headers = req.headers();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes())) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong operator token (Authorization: Bearer <token>)",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same = host.is_some_and(|h| {
            origin.to_str().is_ok_and(|o| {
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
                    == Some(h)
            })
        });
        if !same {
            return Err(error(StatusCode::FORBIDDEN, "cross-origin write refused"));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"));
    }
    // Read up to the limit; past it, go on reading (and dropping) up to DRAIN more, so that a
    // client that streams a large body gets the 413 rather than a reset connection.
    // The body gets the head's time limit too, so a client trickling it cannot hold one of
    // the `max_connections` for ever.
    let mut body = req.into_body();
    let mut data = Vec::new();
    let mut total = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(error(StatusCode::BAD_REQUEST, "malformed body"));
            };
            if let Ok(chunk) = frame.into_data() {
                total = total.saturating_add(chunk.len());
                if total <= MAX_BODY {
                    data.extend_from_slice(&chunk);
                } else if total > MAX_BODY + DRAIN {
                    break;
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(context.header_timeout, read)
        .await
        .map_err(|_| error(StatusCode::REQUEST_TIMEOUT, "the body took too long"))??;
    if total > MAX_BODY {
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"));
    }
    serde_json::from_slice(&data)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))
}

/// An ack as the API takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
    #[serde(default)]
    comment: String,
    expires_after: Option<String>,
    #[serde(default)]
    sticky: bool,
}

impl AckBody {
    fn into_request(self) -> Result<AckRequest, String> {
        if self.by.trim().is_empty() {
            return Err("by: say who acknowledges".to_owned());
        }
        let expires_after = self
            .expires_after
            .as_deref()
            .map(crate::duration::parse_duration)
            .transpose()
            .map_err(|e| format!("expires_after: {e}"))?;
        Ok(AckRequest {
            by: self.by,
            comment: self.comment,
            expires_after,
            sticky: self.sticky,
        })
    }
}

/// A silence as the API takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    created_by: String,
    #[serde(default)]
    comment: String,
    duration: String,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    matchers: BTreeMap<String, String>,
}

impl SilenceBody {
    fn into_request(self) -> Result<SilenceRequest, String> {
        if self.created_by.trim().is_empty() {
            return Err("created_by: say who silences".to_owned());
        }
        let duration = crate::duration::parse_duration(&self.duration)
            .map_err(|e| format!("duration: {e}"))?;
        let mut request = SilenceRequest::new(&self.created_by, &self.comment, duration);
        request.rules = self.rules;
        request.matchers = self.matchers;
        Ok(request)
    }
}

/// Whether the `Host` header (absent counts as yes) names this machine by a loopback name.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn json_result(result: Result<String, String>) -> Response<Body> {
    match result {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    respond(status, "application/json", body)
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    response
}
