//! Outgoing HTTP over standard `wasi:http` (the `wasip2` crate's bindings).
//!
//! The host lets a plugin reach only the hosts the operator listed for it (`allowed_hosts`): a
//! request to any other host fails at once with [`Error::Denied`] ("denied: host not allowed"),
//! permanent, which a plugin can match on. The host also bounds the time a request may take.
//!
//! # The retry policy
//!
//! One table, the contract's (`delivery-error` in the WIT), followed by [`post_json`],
//! [`post_form`] and [`check_status`], and by every bundled plugin:
//!
//! | outcome of the request | [`Error`] | with `?` in `deliver` |
//! |---|---|---|
//! | status 2xx | — (`Ok`) | delivered |
//! | status 408, 425, 429 | [`Error::Status`], retryable | [`DeliveryError::Retryable`] |
//! | status 5xx | [`Error::Status`], retryable | [`DeliveryError::Retryable`] |
//! | any other status (1xx, 3xx, other 4xx) | [`Error::Status`], permanent | [`DeliveryError::Permanent`] |
//! | refused, reset, timeout, DNS failure | [`Error::Transport`] | [`DeliveryError::Retryable`] |
//! | host not in `allowed_hosts` | [`Error::Denied`] | [`DeliveryError::Permanent`] |
//! | malformed URL, header or method | [`Error::Invalid`] | [`DeliveryError::Permanent`] |
//!
//! [`classify`] gives a status's outcome. A plugin whose receiver gives a status another
//! meaning overrides it for the rest of the call with [`treat_status`] (a 409 "already open"
//! as delivered, say). [`send`] returns any response as it is, for plugins that judge the status
//! themselves.

use std::cell::RefCell;
use std::fmt;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

use crate::DeliveryError;

/// The largest response body kept (the rest is read and dropped).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// A response: status, headers (names lower-case) and body (at most [`MAX_RESPONSE_BODY`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The headers, in the order received, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, cut at [`MAX_RESPONSE_BODY`] bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request failed (see the retry policy above). `?` turns it into a [`DeliveryError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host refused the request: its host is not in this plugin's `allowed_hosts`. The
    /// operator has to change the configuration; retrying cannot help.
    Denied(String),
    /// The request could not be made as written (URL, header, method). Permanent.
    Invalid(String),
    /// Connecting, sending or receiving failed (refused, reset, timeout, DNS). Retryable.
    Transport(String),
    /// The server answered with a status the policy counts as a failure.
    Status {
        /// The status.
        status: u16,
        /// Whether retrying may succeed (see [`classify`]).
        retryable: bool,
        /// `URL answered STATUS: first 200 bytes of the body`.
        message: String,
    },
}

impl Error {
    /// Whether retrying with backoff may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Status { retryable, .. } => *retryable,
            Error::Denied(_) | Error::Invalid(_) => false,
        }
    }

    /// Whether the host refused the destination.
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Denied(_))
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m) | Error::Invalid(m) | Error::Transport(m) => m,
            Error::Status { message, .. } => message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for DeliveryError {
    fn from(e: Error) -> Self {
        if e.is_retryable() {
            DeliveryError::Retryable(e.message().to_owned())
        } else {
            DeliveryError::Permanent(e.message().to_owned())
        }
    }
}

/// What a status means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Delivered,
    /// Failed; retrying with backoff may succeed.
    Retryable,
    /// Failed; retrying cannot help.
    Permanent,
}

thread_local! {
    /// The statuses this call treats otherwise ([`treat_status`]).
    static OVERRIDES: RefCell<Vec<(u16, Outcome)>> = const { RefCell::new(Vec::new()) };
}

/// What `status` means under the retry policy (and this call's [`treat_status`] overrides).
pub fn classify(status: u16) -> Outcome {
    if let Some(o) = OVERRIDES.with(|o| {
        o.borrow()
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, o)| *o)
    }) {
        return o;
    }
    match status {
        200..=299 => Outcome::Delivered,
        408 | 425 | 429 | 500..=599 => Outcome::Retryable,
        _ => Outcome::Permanent,
    }
}

/// Treats `status` as `outcome` in [`classify`], [`check_status`], [`post_json`] and
/// [`post_form`] for the rest of this call (each call of the plugin starts afresh). For a
/// receiver that answers 409 when an incident is already open:
///
/// ```ignore
/// http::treat_status(409, http::Outcome::Delivered);
/// ```
pub fn treat_status(status: u16, outcome: Outcome) {
    OVERRIDES.with(|o| {
        let mut o = o.borrow_mut();
        o.retain(|(s, _)| *s != status);
        o.push((status, outcome));
    });
}

/// POSTs `body` as `application/json` to `url` with the extra `headers`, and checks the status
/// (see the retry policy above).
pub fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Result<Response, Error> {
    let body = serde_json::to_vec(body)
        .map_err(|e| Error::Invalid(format!("cannot encode the JSON body: {e}")))?;
    check_status(
        url,
        send("POST", url, headers, Some("application/json"), &body)?,
    )
}

/// POSTs `fields` as `application/x-www-form-urlencoded` to `url` with the extra `headers`,
/// and checks the status (see the retry policy above).
pub fn post_form(
    url: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Result<Response, Error> {
    let body = form_encode(fields);
    check_status(
        url,
        send(
            "POST",
            url,
            headers,
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )?,
    )
}

/// Applies the retry policy to a response: one [`classify`] calls delivered is returned as it
/// is, any other becomes [`Error::Status`].
pub fn check_status(url: &str, response: Response) -> Result<Response, Error> {
    let status = response.status;
    let retryable = match classify(status) {
        Outcome::Delivered => return Ok(response),
        Outcome::Retryable => true,
        Outcome::Permanent => false,
    };
    let mut detail = response.text();
    if detail.len() > 200 {
        let mut cut = 200;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    Err(Error::Status {
        status,
        retryable,
        message: format!("{url} answered {status}: {}", detail.trim()),
    })
}

/// Sends one request and returns the response, whatever its status. `method` is `GET`, `POST`,
/// `PUT`, `PATCH`, `DELETE`, … ; `content_type`, if any, is sent as `Content-Type`. Control
/// characters in header values (line breaks …) are sent as spaces.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response, Error> {
    let target = Url::parse(url).map_err(Error::Invalid)?;

    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 1);
    if let Some(ct) = content_type {
        entries.push(("content-type".to_owned(), ct.as_bytes().to_vec()));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "get" | "head") {
        // A known length, not chunked encoding: some gateways accept nothing else.
        entries.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    for (name, value) in headers {
        // A control character (a line break from an alert label, say) would let a value forge
        // headers: it becomes a space.
        let value: String = value
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        entries.push((name.to_ascii_lowercase(), value.into_bytes()));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| Error::Invalid(format!("invalid request header for {url}: {e:?}")))?;

    let request = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    };
    let invalid = |what: &str| Error::Invalid(format!("invalid {what} in {url}"));
    request
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&target.scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| invalid("path"))?;

    let outgoing_body = request
        .body()
        .map_err(|()| Error::Invalid("request body already taken".to_owned()))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| transport_error(url, &e))?;
    // A request the host refuses (a host outside `allowed_hosts`) fails its response at once;
    // the body stream then closes. Report why the request failed, not that the stream closed.
    let sent = write_body(url, &outgoing_body, body).and_then(|()| {
        OutgoingBody::finish(outgoing_body, None).map_err(|e| transport_error(url, &e))
    });
    if let Err(e) = sent {
        return Err(response_error(url, &pending).unwrap_or(e));
    }

    let response = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(e))) => return Err(transport_error(url, &e)),
            Some(Err(())) => {
                return Err(Error::Transport(format!("{url}: response already taken")));
            }
            None => pending.subscribe().block(),
        }
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    if let Ok(incoming) = response.consume()
        && let Ok(stream) = incoming.stream()
    {
        loop {
            match stream.blocking_read(16 * 1024) {
                Ok(bytes) => {
                    let room = MAX_RESPONSE_BODY.saturating_sub(body.len());
                    body.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(url, "reading the response", e)),
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn write_body(url: &str, outgoing_body: &OutgoingBody, body: &[u8]) -> Result<(), Error> {
    let stream = outgoing_body
        .write()
        .map_err(|()| Error::Invalid("request body stream already taken".to_owned()))?;
    // `blocking-write-and-flush` takes at most 4096 bytes per call.
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| stream_error(url, "sending the body", e))?;
    }
    Ok(())
}

/// The request's own failure once sending its body failed: a denied request fails its
/// response (the host decides as soon as the request is handed over), which is then the error
/// to report rather than the closed stream. Waits for the response's outcome, which the host
/// bounds by the plugin's HTTP timeout.
fn response_error(url: &str, pending: &FutureIncomingResponse) -> Option<Error> {
    loop {
        match pending.get() {
            Some(Ok(Err(e))) => return Some(transport_error(url, &e)),
            Some(_) => return None,
            None => pending.subscribe().block(),
        }
    }
}

/// `a=1&b=x+y`: form-urlencodes name/value pairs.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode_into(&mut out, name);
        out.push('=');
        form_encode_into(&mut out, value);
    }
    out
}

fn form_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn transport_error(url: &str, e: &ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => Error::Denied(
            format!("denied: host not allowed: {url} is not in this plugin's allowed_hosts"),
        ),
        ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::TlsCertificateError
        | ErrorCode::ConfigurationError => Error::Invalid(format!("{url}: {e:?}")),
        _ => Error::Transport(format!("{url}: {e:?}")),
    }
}

fn stream_error(url: &str, doing: &str, e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Transport(format!("{url}: connection closed while {doing}")),
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) => transport_error(url, &code),
            None => Error::Transport(format!("{url}: {doing} failed: {}", err.to_debug_string())),
        },
    }
}

/// The parts of an `http://` or `https://` URL that `wasi:http` wants.
#[derive(Debug)]
struct Url {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(format!(
                "`{url}` has no valid host (user:password@ is not supported)"
            ));
        }
        let path_with_query = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Url {
            scheme,
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert!(matches!(u.scheme, Scheme::Http));
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path_with_query, "/a/b?x=1");
        assert_eq!(
            Url::parse("https://h.example").unwrap().path_with_query,
            "/"
        );
        assert_eq!(
            Url::parse("https://h.example?q").unwrap().path_with_query,
            "/?q"
        );
        assert!(Url::parse("ftp://h").is_err());
        assert!(Url::parse("http://u:p@h/").is_err());
        assert!(Url::parse("http:///x").is_err());
    }

    #[test]
    fn forms() {
        assert_eq!(
            form_encode(&[("to", "+82 10"), ("text", "a&b=é")]),
            "to=%2B82+10&text=a%26b%3D%C3%A9"
        );
    }

    #[test]
    fn statuses_follow_the_one_table() {
        let r = |status| Response {
            status,
            headers: vec![],
            body: b"nope".to_vec(),
        };
        for ok in [200, 201, 204, 299] {
            assert!(check_status("u", r(ok)).is_ok(), "{ok}");
        }
        for retry in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(
                check_status("u", r(retry)).unwrap_err().is_retryable(),
                "{retry}"
            );
        }
        for permanent in [100, 301, 304, 400, 401, 403, 404, 409, 410, 422] {
            assert!(
                !check_status("u", r(permanent)).unwrap_err().is_retryable(),
                "{permanent}"
            );
        }
        let e = check_status("u", r(404)).unwrap_err();
        assert_eq!(e.message(), "u answered 404: nope");
        assert!(matches!(
            DeliveryError::from(e),
            DeliveryError::Permanent(_)
        ));
        // A plugin may treat a status otherwise, for the rest of its call.
        treat_status(409, Outcome::Delivered);
        treat_status(404, Outcome::Retryable);
        assert!(check_status("u", r(409)).is_ok());
        assert!(check_status("u", r(404)).unwrap_err().is_retryable());
        assert_eq!(classify(500), Outcome::Retryable);
    }

    #[test]
    fn a_denied_request_is_its_own_permanent_error() {
        let e = transport_error("http://x/", &ErrorCode::HttpRequestDenied);
        assert!(e.is_denied() && !e.is_retryable());
        assert!(e.message().starts_with("denied: host not allowed"));
        assert!(transport_error("u", &ErrorCode::ConnectionRefused).is_retryable());
    }
}
