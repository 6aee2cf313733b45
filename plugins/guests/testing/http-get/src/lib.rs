//! Sends `GET` to the `url` of its config (`{"url":"http://127.0.0.1:8080/x"}`), or to the
//! alert's `url` label when it has one (so one loaded plugin can be pointed anywhere), through
//! `wasi:http`. It never reads the response's body. Ok on a 2xx answer; otherwise Retryable with the status or the error code the
//! host gave (`HttpRequestDenied` for a host that is not allowed, a timeout code for one that
//! never answers).
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

impl Guest for Plugin {
    fn deliver(config: String, alert: Alert) -> Result<(), DeliveryError> {
        let label = alert.labels.into_iter().find(|(k, _)| k == "url");
        let url = label
            .map(|(_, v)| v)
            .or_else(|| field(&config, "url"))
            .ok_or_else(|| DeliveryError::Permanent("no url".into()))?;
        let (scheme, rest) = match url.split_once("://") {
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", rest)) => (Scheme::Https, rest),
            _ => return Err(DeliveryError::Permanent(format!("bad url {url}"))),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let req = OutgoingRequest::new(Fields::new());
        let set = req.set_method(&Method::Get).is_ok()
            && req.set_scheme(Some(&scheme)).is_ok()
            && req.set_authority(Some(authority)).is_ok()
            && req.set_path_with_query(Some(path)).is_ok();
        if !set {
            return Err(DeliveryError::Permanent(format!("bad url {url}")));
        }
        let pending = outgoing_handler::handle(req, None)
            .map_err(|code| DeliveryError::Retryable(format!("handle: {code:?}")))?;
        pending.subscribe().block();
        match pending.get() {
            Some(Ok(Ok(resp))) if (200..300).contains(&resp.status()) => Ok(()),
            Some(Ok(Ok(resp))) => Err(DeliveryError::Retryable(format!(
                "status {}",
                resp.status()
            ))),
            Some(Ok(Err(code))) => Err(DeliveryError::Retryable(format!("error code: {code:?}"))),
            other => Err(DeliveryError::Retryable(format!("no response: {other:?}"))),
        }
    }
}

/// The string value of `"name":"…"` in a flat JSON object (enough for a test guest).
fn field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":\"");
    let start = json.find(&key)? + key.len();
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_owned())
}
