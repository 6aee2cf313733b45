//! Outgoing HTTP over standard `wasi:http` (the `wasip2` crate's bindings).
//!
//! The host lets a plugin reach only the hosts the operator listed for it (`allowed_hosts`);
//! any other destination fails with [`DeliveryError::Permanent`]. The host also bounds the time
//! a request may take.
//!
//! [`post_json`] and [`post_form`] check the status for you: 2xx is `Ok`; 408, 429 and 5xx are
//! [`DeliveryError::Retryable`]; anything else (3xx, other 4xx) is
//! [`DeliveryError::Permanent`]. Transport failures (refused, reset, timeout, DNS) are
//! retryable; a request the host denies or a malformed URL is permanent. [`send`] returns any
//! response as it is, for plugins that want to judge the status themselves.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
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

/// POSTs `body` as `application/json` to `url` with the extra `headers`, and checks the status
/// (see the module documentation).
pub fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Result<Response, DeliveryError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| DeliveryError::Permanent(format!("cannot encode the JSON body: {e}")))?;
    check_status(
        url,
        send("POST", url, headers, Some("application/json"), &body)?,
    )
}

/// POSTs `fields` as `application/x-www-form-urlencoded` to `url` with the extra `headers`,
/// and checks the status (see the module documentation).
pub fn post_form(
    url: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Result<Response, DeliveryError> {
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

/// Turns a non-2xx response into the matching [`DeliveryError`] (408, 429 and 5xx retryable,
/// anything else permanent); a 2xx response is returned as it is.
pub fn check_status(url: &str, response: Response) -> Result<Response, DeliveryError> {
    let status = response.status;
    if response.is_success() {
        return Ok(response);
    }
    let mut detail = response.text();
    if detail.len() > 200 {
        let mut cut = 200;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    let message = format!("{url} answered {status}: {}", detail.trim());
    if status == 408 || status == 429 || (500..600).contains(&status) {
        Err(DeliveryError::Retryable(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
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
) -> Result<Response, DeliveryError> {
    let target = Url::parse(url).map_err(DeliveryError::Permanent)?;

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
    let fields = Fields::from_list(&entries).map_err(|e| {
        DeliveryError::Permanent(format!("invalid request header for {url}: {e:?}"))
    })?;

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
    let invalid = |what: &str| DeliveryError::Permanent(format!("invalid {what} in {url}"));
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
        .map_err(|()| DeliveryError::Permanent("request body already taken".to_owned()))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| transport_error(url, &e))?;
    {
        let stream = outgoing_body.write().map_err(|()| {
            DeliveryError::Permanent("request body stream already taken".to_owned())
        })?;
        // `blocking-write-and-flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(url, "sending the body", e))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| transport_error(url, &e))?;

    let response = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(e))) => return Err(transport_error(url, &e)),
            Some(Err(())) => {
                return Err(DeliveryError::Retryable(format!(
                    "{url}: response already taken"
                )));
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

fn transport_error(url: &str, e: &ErrorCode) -> DeliveryError {
    let message = format!("{url}: {e:?}");
    match e {
        ErrorCode::HttpRequestDenied
        | ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::TlsCertificateError
        | ErrorCode::ConfigurationError => DeliveryError::Permanent(message),
        _ => DeliveryError::Retryable(message),
    }
}

fn stream_error(url: &str, doing: &str, e: StreamError) -> DeliveryError {
    match e {
        StreamError::Closed => {
            DeliveryError::Retryable(format!("{url}: connection closed while {doing}"))
        }
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) => transport_error(url, &code),
            None => DeliveryError::Retryable(format!(
                "{url}: {doing} failed: {}",
                err.to_debug_string()
            )),
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
    fn statuses() {
        let r = |status| Response {
            status,
            headers: vec![],
            body: b"nope".to_vec(),
        };
        assert!(check_status("u", r(204)).is_ok());
        assert!(check_status("u", r(503)).unwrap_err().is_retryable());
        assert!(check_status("u", r(429)).unwrap_err().is_retryable());
        let e = check_status("u", r(404)).unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(e.message(), "u answered 404: nope");
    }
}
