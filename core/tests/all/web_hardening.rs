//! The `[http]` endpoint under attack and exposed: a slow flood (slowloris) of 300 connections
//! sending their heads byte by byte while the status and the exposition must still answer
//! within a second; public addresses refused without a token or `public_read`, and reads
//! needing the token there; the security headers of every answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::web_support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigilo::config::Config;
use vigilo::monitor::{Monitor, MonitorError};
use vigilo::web::HttpConfig;
use web_support::{CONFIG, Running, get, get_with, post};

/// Connections the flood keeps open.
const SLOW: usize = 300;

/// Keeps `SLOW` connections open, each sending a request head one byte per round (every
/// 50 ms) and never finishing it; a connection the server closes is opened again at the next
/// round. Returns how many were opened in all.
fn slowloris(address: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let head = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Padding: ";
        let open = || {
            let s = TcpStream::connect(address).ok()?;
            s.set_write_timeout(Some(Duration::from_millis(200))).ok()?;
            Some((s, 0usize))
        };
        let mut opened = 0;
        let mut conns: Vec<Option<(TcpStream, usize)>> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            conns.resize_with(SLOW, || None);
            for c in &mut conns {
                if c.is_none() {
                    *c = open();
                    opened += 1;
                }
                let Some((s, sent)) = c else { continue };
                // The head, then its last header's value for ever: never an empty line.
                let byte = head.get(*sent).copied().unwrap_or(b'a');
                if s.write_all(&[byte]).is_err() {
                    *c = None;
                } else {
                    *sent += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        opened
    })
}

#[test]
fn a_slow_flood_does_not_keep_status_or_metrics_from_answering() {
    // Heads get 1 s, so during the test the flood's connections are also cut and reopened.
    let r = Running::start("header_timeout = \"1s\"");
    r.monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(3.0);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = slowloris(r.address, Arc::clone(&stop));
    // Let the flood open its connections and start trickling.
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..12 {
        for path in ["/api/status", "/metrics"] {
            let t0 = Instant::now();
            let (status, _, body) = get(&r.url(path), None);
            let took = t0.elapsed();
            slowest = slowest.max(took);
            assert_eq!(status, 200, "{path} during the flood: {body}");
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let opened = flood.join().unwrap();
    eprintln!("flood: {opened} connections opened; slowest answer {slowest:?}");
    assert!(opened >= SLOW);
}

#[test]
fn a_public_address_is_refused_without_a_token_or_public_read() {
    // In a file: a located configuration error naming both ways out.
    let text = "[http]\nlisten = \"0.0.0.0:9187\"\n";
    let err = text.parse::<Config>().unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("<config>:1:1") || message.contains(":1:"),
        "{message}"
    );
    assert!(message.contains("not a loopback address"), "{message}");
    assert!(message.contains("public_read = true"), "{message}");
    assert!(message.contains("token"), "{message}");
    assert!(
        "[http]\nlisten = \"0.0.0.0:9187\"\npublic_read = true\n"
            .parse::<Config>()
            .is_ok()
    );
    assert!(
        "[http]\nlisten = \"[::]:9187\"\ntoken = \"t\"\n"
            .parse::<Config>()
            .is_ok()
    );

    // Changed in code: the monitor refuses to start the endpoint.
    let mut config: Config =
        "[[rule]]\nname = \"q\"\nmetric = \"q\"\n[rule.major]\nthreshold = 1\n"
            .parse()
            .unwrap();
    let mut http = HttpConfig::default();
    http.listen = "0.0.0.0:0".to_owned();
    config.http = Some(http);
    let err = Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap_err();
    assert!(
        matches!(err, MonitorError::Http(vigilo::web::HttpError::Invalid(_))),
        "{err}"
    );

    let mut loopback = HttpConfig::default();
    assert_eq!(
        loopback.access(),
        "reads open to this machine only (loopback); writes refused (no token)"
    );
    loopback.listen = "0.0.0.0:1".to_owned();
    loopback.public_read = true;
    assert!(
        loopback.access().contains("reads PUBLIC"),
        "{}",
        loopback.access()
    );
}

#[test]
fn with_public_read_the_network_reads_without_a_token_and_cannot_write() {
    let clock = Arc::new(vigilo::clock::SystemClock);
    let r = Running::start_on(CONFIG, "0.0.0.0:0", "public_read = true", clock);
    let (status, _, _) = get(&r.url("/api/status"), None);
    assert_eq!(status, 200);
    let (status, _, _) = get(&r.url("/metrics"), None);
    assert_eq!(status, 200);
    let (status, answer) = post(
        &r.url("/api/silences"),
        &[("Authorization", "Bearer x")],
        Some("application/json"),
        r#"{"created_by": "x", "duration": "1h"}"#,
    );
    assert_eq!(status, 403, "{answer}");
}

#[test]
fn off_loopback_with_a_token_reads_need_it_too_but_the_page_loads() {
    let clock = Arc::new(vigilo::clock::SystemClock);
    let r = Running::start_on(CONFIG, "0.0.0.0:0", "token = \"s3cret\"", clock);
    for path in [
        "/api/status",
        "/metrics",
        "/api/history",
        "/api/charts",
        "/api/events",
    ] {
        let (status, headers, _) = get_with(&r.url(path), &[]);
        assert_eq!(status, 401, "{path} without the token");
        assert!(headers["www-authenticate"].starts_with("Bearer"), "{path}");
        let (status, _, _) = get_with(&r.url(path), &[("Authorization", "Bearer wrong")]);
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let auth = [("Authorization", "Bearer s3cret")];
    for path in ["/api/status", "/metrics", "/api/history", "/api/charts"] {
        let (status, _, _) = get_with(&r.url(path), &auth);
        assert_eq!(status, 200, "{path} with the token");
    }
    // The page and its files hold no data: they load, and the page asks for the token.
    for path in ["/", "/board.js", "/board.css"] {
        assert_eq!(get_with(&r.url(path), &[]).0, 200, "{path}");
    }
}

#[test]
fn every_answer_carries_the_security_headers_and_the_page_runs_no_inline_script() {
    let r = Running::start("token = \"t\"");
    let paths = [
        "/",
        "/board.js",
        "/board.css",
        "/api/status",
        "/api/history",
        "/api/charts",
        "/metrics",
        "/nope",
    ];
    for path in paths {
        let (status, h, _) = get_with(&r.url(path), &[]);
        assert!(status == 200 || path == "/nope", "{path}: {status}");
        let csp = &h["content-security-policy"];
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{path}");
        assert!(h.contains_key("permissions-policy"), "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    let (_, h, page) = get_with(&r.url("/"), &[]);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        get_with(&r.url("/board.js"), &[]).1["content-type"],
        "text/javascript; charset=utf-8"
    );
    // No inline script, style or event handler for the policy to have to allow.
    let lower = page.to_ascii_lowercase();
    assert_eq!(
        lower.matches("<script").count(),
        lower
            .matches("<script src=\"/board.js\" defer></script>")
            .count()
    );
    assert!(
        !lower.contains("<style") && !lower.contains(" style="),
        "{page}"
    );
    assert!(!regex_like_handler(&lower), "{page}");

    // The refusals written before hyper sees a request carry them too.
    let mut s = TcpStream::connect(r.address).unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = s.write_all(big.as_bytes());
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    assert!(answer.contains("frame-ancestors 'none'"), "{answer}");

    // So do the heads hyper would have refused with a bare answer: a malformed request line, a
    // field without a name, more fields than hyper takes.
    let many: String = (0..150).map(|i| format!("X-{i}: 1\r\n")).collect();
    for (head, status) in [
        ("GET /metrics HTTP/9.9\r\n\r\n".to_owned(), "400"),
        ("GET /metrics HTTP/1.1\r\n: x\r\n\r\n".to_owned(), "400"),
        (format!("GET /metrics HTTP/1.1\r\n{many}\r\n"), "431"),
    ] {
        let mut s = TcpStream::connect(r.address).unwrap();
        let _ = s.write_all(head.as_bytes());
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{head:.40}: {answer:.80}"
        );
        assert!(answer.contains("frame-ancestors 'none'"), "{answer}");
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
    }
}

/// An `on…=` attribute (an inline event handler) anywhere in the page.
fn regex_like_handler(html: &str) -> bool {
    html.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && rest[name.len()..].trim_start().starts_with('=')
    })
}
