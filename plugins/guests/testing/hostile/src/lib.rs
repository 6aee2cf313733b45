//! A channel that attacks the host in the way its config's `mode` names, for the sandbox's
//! tests (each mode is one point of the sandbox's promise):
//!
//! | `mode` | what it does |
//! |---|---|
//! | `recurse` | recurses without bound (the native stack must not overflow) |
//! | `sleep` | sleeps `ms` milliseconds (default one hour) through `wasi:clocks` |
//! | `http-loop` | requests `url` again and again, whatever happens |
//! | `burst-then-spin` | sends `count` requests to `url` at once, waits for all, then spins |
//! | `big-error` | fails with an error message of `mb` MiB |
//! | `headers` | builds header maps of 8 KiB values until the host refuses, keeping them all |
//! | `forge` | writes forged log lines (line breaks, CR, ESC sequences) through its log import, stdout and stderr, then fails with such a message |
//! | `read-body` | GETs `url` and reads the whole response body, however slowly it comes |
//! | `io-error` | GETs `url`, reads the body until a read fails, and fails with the host's `to-debug-string` of that error |

wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

impl Guest for Plugin {
    fn deliver(config: String, _alert: Alert) -> Result<(), DeliveryError> {
        let config: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| DeliveryError::Permanent(format!("bad config: {e}")))?;
        let url = config["url"].as_str().unwrap_or("").to_owned();
        match config["mode"].as_str().unwrap_or("") {
            "recurse" => Err(DeliveryError::Permanent(format!("depth {}", recurse(1)))),
            "sleep" => {
                let ms = config["ms"].as_u64().unwrap_or(3_600_000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(())
            }
            "http-loop" => loop {
                if let Ok(pending) = get(&url) {
                    pending.subscribe().block();
                    let _ = pending.get();
                }
            },
            "burst-then-spin" => {
                let count = config["count"].as_u64().unwrap_or(40);
                let pending: Vec<_> = (0..count).filter_map(|_| get(&url).ok()).collect();
                for p in &pending {
                    p.subscribe().block();
                }
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "big-error" => {
                let mb = config["mb"].as_u64().unwrap_or(100) as usize;
                Err(DeliveryError::Permanent("x".repeat(mb << 20)))
            }
            "headers" => {
                let value = vec![b'v'; 8 * 1024];
                let mut kept = Vec::new();
                let mut refused = 0u32;
                for i in 0..100_000u32 {
                    let fields = Fields::new();
                    for j in 0..64u32 {
                        if fields.append(&format!("x-{i}-{j}"), &value).is_err() {
                            refused += 1;
                            break;
                        }
                    }
                    kept.push(fields);
                    if refused > 1000 {
                        break;
                    }
                }
                Err(DeliveryError::Permanent(format!(
                    "{} header maps kept, {refused} refusals",
                    kept.len()
                )))
            }
            "forge" => {
                let forged = "benign\n2030-01-01T00:00:00Z ERROR vigilo::pipeline: FORGED-LOG-LINE\r\u{1b}[2K\u{1b}[31mred";
                vigilo::plugin::log::log(vigilo::plugin::log::Level::Warn, forged);
                println!("stdout {forged}");
                eprintln!("stderr {forged}");
                Err(DeliveryError::Permanent(format!("error {forged}")))
            }
            "read-body" => {
                let body = read_body(&url)?;
                Err(DeliveryError::Permanent(format!(
                    "read {} bytes",
                    body.len()
                )))
            }
            "io-error" => match read_body(&url) {
                Ok(body) => Err(DeliveryError::Permanent(format!(
                    "the body ended cleanly after {} bytes",
                    body.len()
                ))),
                Err(e) => Err(e),
            },
            other => Err(DeliveryError::Permanent(format!("unknown mode {other:?}"))),
        }
    }
}

/// Recurses, with nothing in linear memory: only the native (wasm) stack grows.
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(n + 1)).wrapping_add(n)
}

/// GETs `url` and reads its body to the end; a failed read is returned with the host's
/// `to-debug-string` of its error (what a careless guest would show).
fn read_body(url: &str) -> Result<Vec<u8>, DeliveryError> {
    let pending = get(url).map_err(DeliveryError::Retryable)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        other => return Err(DeliveryError::Retryable(format!("no response: {other:?}"))),
    };
    let body = response
        .consume()
        .map_err(|()| DeliveryError::Permanent("body taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| DeliveryError::Permanent("stream taken".into()))?;
    let mut got = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(bytes) => got.extend_from_slice(&bytes),
            Err(wasip2::io::streams::StreamError::Closed) => return Ok(got),
            Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(DeliveryError::Retryable(e.to_debug_string()));
            }
        }
    }
}

/// Starts a GET of `url`.
fn get(url: &str) -> Result<FutureIncomingResponse, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return Err(format!("bad url {url}")),
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
        return Err(format!("bad url {url}"));
    }
    outgoing_handler::handle(req, None).map_err(|code| format!("{code:?}"))
}
