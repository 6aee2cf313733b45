//! `[[probe]]` against real loopback servers: HTTP, HTTPS with a certificate made here that
//! expires in 10 days, TCP, a server that accepts and never answers, a port that refuses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use vigilo::Severity;
use vigilo::clock::{ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::eval::{Evaluator, EvaluatorConfig};
use vigilo::host::probes::{ProbeRunner, ProbeSpec, check_once};
use vigilo::{Registry, Severity::*};

/// Reads a request's head (to the blank line).
fn read_head(stream: &mut impl Read) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" {
            break;
        }
        line.clear();
    }
}

fn response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A plain HTTP server answering every request with `status` and `body`.
fn http_server(status: u16, body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            read_head(&mut stream);
            let _ = stream.write_all(response(status, body).as_bytes());
        }
    });
    addr
}

/// An HTTPS server whose self-signed certificate (for 127.0.0.1) expires `days` from now;
/// returns its address and the certificate's PEM.
fn https_server(days: i64) -> (SocketAddr, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, stream);
                read_head(&mut tls);
                let _ = tls.write_all(response(200, "secure ok").as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (addr, pem)
}

/// Accepts connections and never answers (nor closes them).
fn hanging_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A loopback port nothing listens on.
fn refusing_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn probes(toml: &str) -> Vec<ProbeSpec> {
    toml.parse::<Config>().unwrap().probes
}

fn one(toml: &str) -> ProbeSpec {
    probes(toml).remove(0)
}

#[test]
fn http_status_latency_and_body() {
    let ok = http_server(200, "status: ok");
    let broken = http_server(503, "down");
    let r = check_once(&one(&format!(
        "[[probe]]\nname = \"p\"\nhttp = \"http://{ok}/health\"\nbody = \"status: (ok|fine)\"\n"
    )));
    assert!(r.success, "{r:?}");
    assert_eq!(r.status, Some(200));
    assert!(r.duration > Duration::ZERO && r.duration < Duration::from_secs(5));
    let r = check_once(&one(&format!(
        "[[probe]]\nname = \"p\"\nhttp = \"http://{ok}/\"\nbody = \"healthy\"\n"
    )));
    assert!(!r.success);
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("body")),
        "{r:?}"
    );
    let r = check_once(&one(&format!(
        "[[probe]]\nname = \"p\"\nhttp = \"http://{broken}/\"\n"
    )));
    assert_eq!((r.success, r.status), (false, Some(503)));
    let r = check_once(&one(&format!(
        "[[probe]]\nname = \"p\"\nhttp = \"http://{broken}/\"\nstatus = [503]\n"
    )));
    assert!(r.success, "503 is what this probe expects");
}

#[test]
fn https_reports_the_days_left_of_the_certificate() {
    let (addr, pem) = https_server(10);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let url = format!("https://{addr}/");
    let trusted = check_once(&one(&format!(
        "[[probe]]\nname = \"tls\"\nhttp = \"{url}\"\nca_file = \"{}\"\nbody = \"secure ok\"\n",
        ca.display()
    )));
    assert!(trusted.success, "{trusted:?}");
    let left = trusted.cert_expiry.unwrap();
    let ten_days = 10.0 * 86_400.0;
    assert!((left - ten_days).abs() < 120.0, "{left} s, not 10 days");
    // Not trusted: the check fails (unknown issuer) ...
    let untrusted = check_once(&one(&format!(
        "[[probe]]\nname = \"tls\"\nhttp = \"{url}\"\n"
    )));
    assert!(!untrusted.success);
    assert!(
        untrusted
            .error
            .as_deref()
            .is_some_and(|e| e.contains("TLS")),
        "{untrusted:?}"
    );
    // ... unless told not to verify: then its expiry is still read.
    let unverified = check_once(&one(&format!(
        "[[probe]]\nname = \"tls\"\nhttp = \"{url}\"\nverify = false\n"
    )));
    assert!(unverified.success, "{unverified:?}");
    assert!((unverified.cert_expiry.unwrap() - ten_days).abs() < 120.0);
}

#[test]
fn tcp_dns_a_refusal_and_a_hung_server() {
    let listening = http_server(200, "");
    assert!(
        check_once(&one(&format!(
            "[[probe]]\nname = \"t\"\ntcp = \"{listening}\"\n"
        )))
        .success
    );
    let refused = check_once(&one(&format!(
        "[[probe]]\nname = \"t\"\ntcp = \"{}\"\n",
        refusing_port()
    )));
    assert!(!refused.success);
    assert!(
        refused.duration < Duration::from_secs(1),
        "a refusal is quick: {refused:?}"
    );
    assert!(check_once(&one("[[probe]]\nname = \"d\"\ndns = \"localhost\"\n")).success);
    let hung = check_once(&one(&format!(
        "[[probe]]\nname = \"h\"\nhttp = \"http://{}/\"\ntimeout = \"300ms\"\ninterval = \"1s\"\n",
        hanging_server()
    )));
    assert!(!hung.success);
    assert!(
        hung.duration >= Duration::from_millis(300) && hung.duration < Duration::from_secs(2),
        "given up at its timeout: {hung:?}"
    );
    assert!(
        hung.error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within 300ms"))
    );
}

#[test]
fn ordinary_rules_alert_on_probe_series() {
    let (tls, _) = https_server(3);
    let config: Config = format!(
        r#"
        [[probe]]
        name = "api"
        tcp = "{}"
        labels = {{ team = "web" }}
        interval = "1h"

        [[probe]]
        name = "cert"
        http = "https://{tls}/"
        verify = false
        interval = "1h"

        [[rule]]
        name = "down"
        metric = "probe_success"
        comparison = "below"
        [rule.critical]
        threshold = 1

        [[rule]]
        name = "cert-expiry"
        metric = "probe_tls_cert_expiry_seconds"
        comparison = "below"
        [rule.warning]
        threshold = "14d"
        [rule.major]
        threshold = "7d"
        "#,
        refusing_port()
    )
    .parse()
    .unwrap();
    let registry = Registry::new();
    let runner = ProbeRunner::start(&config.probes, &registry).unwrap();
    let results = runner.run_now();
    assert_eq!(results.len(), 2);
    let clock = ManualClock::new(Timestamp::from_secs(0));
    let (mut evaluator, transitions) = Evaluator::new(
        registry.clone(),
        config.rules,
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    evaluator.tick(Timestamp::from_secs(0));
    let got: Vec<(String, Option<String>, Severity)> = transitions
        .try_iter()
        .map(|t| {
            (
                t.rule.to_string(),
                t.labels.get("probe").map(str::to_owned),
                t.to,
            )
        })
        .collect();
    assert!(
        got.contains(&("down".into(), Some("api".into()), Critical)),
        "{got:?}"
    );
    assert!(
        got.contains(&("cert-expiry".into(), Some("cert".into()), Major)),
        "{got:?}"
    );
    let snap = registry.snapshot();
    let api = snap
        .get("probe_success", &[("probe", "api"), ("team", "web")])
        .map(|s| s.value.as_f64());
    assert_eq!(api, Some(0.0));
    runner.stop();
}

#[test]
fn config_errors() {
    let bad = |text: &str| text.parse::<Config>().unwrap_err().to_string();
    assert!(bad("[[probe]]\nname = \"x\"\n").contains("exactly one of"));
    assert!(bad("[[probe]]\nname = \"x\"\nhttp = \"ftp://a/\"\n").contains("http://"));
    assert!(bad("[[probe]]\nname = \"x\"\ntcp = \"nohost\"\n").contains("host:port"));
    assert!(
        bad("[[probe]]\nname = \"x\"\ntcp = \"a:1\"\nbody = \"x\"\n").contains("http probe only")
    );
    assert!(
        bad("[[probe]]\nname = \"x\"\ntcp = \"a:1\"\ninterval = \"1s\"\ntimeout = \"2s\"\n")
            .contains("at most the interval")
    );
}
