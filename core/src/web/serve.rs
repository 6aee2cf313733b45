//! Routing requests, the read and write checks, the board's files and the charts' answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use super::events::Clients;
use super::respond::{Body, error, json_result, respond, secure};
use super::sampler::Charts;
use super::{HttpConfig, Source, chart};
use crate::exposition::{Exposition, Format};
use crate::pipeline::{AckRequest, SilenceRequest};

/// The board: a page, its script and its style (no inline script or style, so the
/// Content-Security-Policy can forbid them).
const BOARD_HTML: &str = include_str!("board/board.html");
const BOARD_JS: &str = include_str!("board/board.js");
const BOARD_CSS: &str = include_str!("board/board.css");
/// Largest request body.
const MAX_BODY: usize = 64 * 1024;
/// What is read and dropped past [`MAX_BODY`] before answering 413.
const DRAIN: usize = 1024 * 1024;
/// Events of an item in its large chart.
const ITEM_EVENTS: usize = 50;

/// What every request shares.
pub(super) struct Context {
    source: Arc<dyn Source>,
    token: Option<String>,
    /// Reads need the token too (a non-loopback address without `public_read`).
    reads_need_token: bool,
    buckets: Vec<f64>,
    header_timeout: Duration,
    streams: Clients,
    charts: Arc<Charts>,
    /// Listening on a loopback address: only loopback names are accepted in `Host`, so a web
    /// page that rebinds its own name to 127.0.0.1 (DNS rebinding) cannot read the endpoint.
    loopback: bool,
}

impl Context {
    pub(super) fn new(
        config: &HttpConfig,
        source: Arc<dyn Source>,
        streams: Clients,
        charts: Arc<Charts>,
    ) -> Self {
        let loopback = config
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        Context {
            loopback,
            source,
            token: config.token.clone(),
            reads_need_token: config.reads_need_token(),
            buckets: config.buckets.clone(),
            header_timeout: config.header_timeout,
            streams,
            charts,
        }
    }

    /// The request carries the operator token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes()))
    }
}

pub(super) async fn handle(context: &Context, req: Request<Incoming>) -> Response<Body> {
    if context.loopback && !loopback_host(req.headers()) {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "this endpoint listens on loopback and answers only to localhost, 127.0.0.1 or [::1]",
        );
    }
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The board's files hold no data: served to anyone, so the page can ask for the token.
    match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => {
            return respond(StatusCode::OK, "text/html; charset=utf-8", BOARD_HTML);
        }
        (&Method::GET, ["board.js"]) => {
            return respond(StatusCode::OK, "text/javascript; charset=utf-8", BOARD_JS);
        }
        (&Method::GET, ["board.css"]) => {
            return respond(StatusCode::OK, "text/css; charset=utf-8", BOARD_CSS);
        }
        _ => {}
    }
    if context.reads_need_token && !context.authorized(req.headers()) {
        let mut answer = error(
            StatusCode::UNAUTHORIZED,
            "this endpoint is not on loopback: reads need the operator token \
             (Authorization: Bearer <token>)",
        );
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"vigilo\""),
        );
        return answer;
    }
    match (&method, segments.as_slice()) {
        (&Method::GET, ["metrics"]) => metrics(context, req.headers()),
        (&Method::GET, ["api", "status"]) => json_result(context.source.status_json()),
        (&Method::GET, ["api", "history"]) => {
            let limit = query(req.uri().query(), "limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 1000);
            json_result(context.source.history_json(limit))
        }
        (&Method::GET, ["api", "events"]) => match context.streams.open() {
            Some(stream) => {
                let mut answer = Response::new(stream.boxed());
                answer.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/event-stream"),
                );
                secure(answer.headers_mut());
                answer
            }
            None => error(StatusCode::SERVICE_UNAVAILABLE, "too many event streams"),
        },
        (&Method::GET, ["api", "charts"]) => charts(context),
        (&Method::GET, ["api", "charts", id]) => item_chart(context, id),
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
        (
            _,
            ["metrics"]
            | [""]
            | ["board.js" | "board.css"]
            | [
                "api",
                "status" | "history" | "events" | "silences" | "charts",
            ],
        )
        | (_, ["api", "incidents", _, "ack"] | ["api", "charts", _]) => {
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

/// Every item's small chart.
fn charts(context: &Context) -> Response<Body> {
    context.charts.sample();
    json_result(
        context
            .charts
            .with(|t| serde_json::to_string(&chart::sparklines(t)))
            .map_err(|e| e.to_string()),
    )
}

/// One item's large chart, with its events.
fn item_chart(context: &Context, id: &str) -> Response<Body> {
    context.charts.sample();
    let Some(item) = context
        .charts
        .with(|t| t.get(id).map(super::trends::Trend::item))
    else {
        return error(StatusCode::NOT_FOUND, "no such item");
    };
    let events = context.charts.source().item_events(&item, ITEM_EVENTS).ok();
    let json = context.charts.with(|t| {
        t.get(id).map(|trend| {
            serde_json::to_string(&chart::chart(t, trend, super::trends::SLOTS, events))
        })
    });
    match json {
        Some(r) => json_result(r.map_err(|e| e.to_string())),
        None => error(StatusCode::NOT_FOUND, "no such item"),
    }
}

/// The checks of a write request, then its JSON body.
async fn write_body<T: serde::de::DeserializeOwned>(
    context: &Context,
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    if context.token.is_none() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "this endpoint is read-only: set [http] token to allow acks and silences",
        ));
    }
    let headers = req.headers();
    if !context.authorized(headers) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong operator token (Authorization: Bearer <token>)",
        ));
    }
    // A browser says where a request comes from: only the board's own page may write.
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
        return Err(error(StatusCode::FORBIDDEN, "cross-origin write refused"));
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
