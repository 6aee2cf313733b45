//! Responses: every one carries the same security headers, so no path can forget them.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// The headers of every response, what a review of a small admin page expects:
///
/// - `Content-Security-Policy`: scripts, styles and connections from the endpoint itself only
///   (the board's script and style are files it serves, `/board.js` and `/board.css`; no
///   inline script or style, no `eval`), nothing else loaded, no `<base>`, no form posts, and
///   `frame-ancestors 'none'`: no other page may frame the board (clickjacking);
/// - `X-Frame-Options: DENY`: the same for browsers without CSP level 2;
/// - `X-Content-Type-Options: nosniff`: a JSON or text answer is never run as script or
///   rendered as HTML;
/// - `Referrer-Policy: no-referrer`: a link followed from the board tells nothing of it;
/// - `Cross-Origin-Opener-Policy` and `Cross-Origin-Resource-Policy: same-origin`: another
///   site can neither keep a handle on the board's window nor embed its answers;
/// - `Permissions-Policy`: no camera, microphone, location, payment, USB;
/// - `Cache-Control: no-store`: live data, and nothing of it kept by a shared cache.
pub(super) const SECURITY_HEADERS: [(header::HeaderName, &str); 8] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
    (
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
    (header::CACHE_CONTROL, "no-store"),
];

/// Adds [`SECURITY_HEADERS`] (keeping a `Cache-Control` already set).
pub(super) fn secure(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        if name == header::CACHE_CONTROL && headers.contains_key(&name) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The same headers as raw lines, for the answers written before hyper takes a connection.
pub(super) fn security_lines() -> String {
    SECURITY_HEADERS
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

/// A response with `body` of `content_type`.
pub(super) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    secure(response.headers_mut());
    response
}

/// `{"error": message}` with `status`.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    respond(status, "application/json", body)
}

/// A JSON answer, or 503 with the reason.
pub(super) fn json_result(result: Result<String, String>) -> Response<Body> {
    match result {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
