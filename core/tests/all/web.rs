//! The `[http]` endpoint as scrapers, operators and attackers meet it: the exposition read back
//! through a real Prometheus and checked by `promtool`, the status API and its write checks,
//! and bad input (unknown paths, huge heads and bodies, slow clients, 1,000 scrapes at once).
//! The board in a real browser is `core/tests/all/web_board.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::web_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use vigilo::metrics::Value;
use web_support::{Running, get, post, which};

#[test]
fn the_exposition_negotiates_its_format_and_carries_the_monitors_state() {
    let r = Running::start("");
    let reg = r.monitor.registry();
    reg.describe("jobs_total", None, "Jobs run").unwrap();
    reg.counter("jobs_total", &[("queue", "mail")])
        .unwrap()
        .add(5);
    reg.gauge("queue_depth", &[]).unwrap().set(150.0);
    web_support::incident(&r.monitor);

    let (status, content_type, text) = get(&r.url("/metrics"), None);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(text.contains("# HELP jobs_total Jobs run\n# TYPE jobs_total counter\n"));
    assert!(text.contains("jobs_total{queue=\"mail\"} 5\n"));
    assert!(text.contains("queue_depth 150\n"));
    // The item the rule watches is Major (4), and its incident is open.
    assert!(
        text.contains("vigilo_item_severity{rule=\"queue\"} 4\n"),
        "{text}"
    );
    assert!(text.contains("vigilo_incidents_open 1\n"));
    assert!(text.contains("# TYPE vigilo_notifications_failed_total counter\n"));
    assert!(text.contains("vigilo_evaluator_sweep_seconds "));

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (status, content_type, om) = get(&r.url("/metrics"), Some(accept));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(om.contains("# TYPE jobs counter\n"));
    assert!(om.contains("jobs_total{queue=\"mail\"} 5\n"));
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn promtool_accepts_the_exposition() {
    let promtool = which("promtool").expect(
        "promtool is not installed: run scripts/install-test-peers.sh (Debian package prometheus)",
    );
    let r = Running::start("");
    let reg = r.monitor.registry();
    reg.describe("http_requests_total", None, "Requests answered")
        .unwrap();
    reg.describe(
        "request_duration_seconds",
        Some("seconds"),
        "Time to answer",
    )
    .unwrap();
    reg.describe("queue_depth", None, "Jobs waiting").unwrap();
    for code in ["200", "500"] {
        reg.counter(
            "http_requests_total",
            &[("code", code), ("path", "/a \"b\"\n")],
        )
        .unwrap()
        .add(3);
    }
    let h = reg.histogram("request_duration_seconds", &[]).unwrap();
    for i in 1..100 {
        h.record(f64::from(i) / 1000.0);
    }
    reg.gauge("queue_depth", &[]).unwrap().set(3.0);
    let (_, _, text) = get(&r.url("/metrics"), None);
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_real_prometheus_scrapes_the_same_values_the_registry_holds() {
    let prometheus = which("prometheus")
        .expect("prometheus is not installed: run scripts/install-test-peers.sh (Debian package prometheus)");
    let r = Running::start("");
    let reg = r.monitor.registry();
    reg.counter("orders_total", &[("shop", "eu")])
        .unwrap()
        .add(42);
    reg.gauge("queue_depth", &[]).unwrap().set(150.0);
    let h = reg
        .histogram("latency_seconds", &[("route", "/pay")])
        .unwrap();
    for i in 1..=100 {
        h.record(f64::from(i) / 1000.0); // 1 ms … 100 ms
    }
    let peer = web_support::Prometheus::start(&prometheus, r.address);
    let value = |q: &str| peer.query_until(q, Duration::from_secs(60));

    assert_eq!(value("orders_total{shop=\"eu\"}"), 42.0);
    assert_eq!(value("queue_depth"), 150.0);
    assert_eq!(value("vigilo_item_severity{rule=\"queue\"}"), 4.0);
    // Buckets: what the registry holds, bound by bound.
    let snapshot = reg.snapshot();
    let Value::Histogram(hs) = &snapshot
        .get("latency_seconds", &[("route", "/pay")])
        .unwrap()
        .value
    else {
        panic!("not a histogram")
    };
    assert_eq!(hs.count(), 100);
    assert_eq!(value("latency_seconds_bucket{le=\"0.025\"}"), 25.0);
    assert_eq!(value("latency_seconds_bucket{le=\"0.1\"}"), 100.0);
    assert_eq!(value("latency_seconds_count"), 100.0);
    assert!((value("latency_seconds_sum") - hs.sum()).abs() < 1e-9);
    // Prometheus interpolates inside the bucket that holds the 90th observation, (0.05, 0.1];
    // the registry's own quantile is in that bucket too.
    let p90 = value("histogram_quantile(0.9, latency_seconds_bucket)");
    let own = hs.quantile(0.9).unwrap();
    assert!(p90 > 0.05 && p90 <= 0.1, "{p90}");
    assert!(own > 0.05 && own <= 0.1, "{own}");
    assert!(
        (p90 - own).abs() < 0.05 / 2.0,
        "prometheus {p90} vs vigilo {own}"
    );
}

#[test]
fn writes_need_the_operator_token_json_and_the_same_origin() {
    let r = Running::start("token = \"s3cret\"");
    r.monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(150.0);
    let id = web_support::incident(&r.monitor);
    let path = r.url(&format!("/api/incidents/{id}/ack"));
    let body = r#"{"by": "ops", "comment": "on it"}"#;
    let json = Some("application/json");

    assert_eq!(post(&path, &[], json, body).0, 401, "no token");
    assert_eq!(
        post(&path, &[("Authorization", "Bearer wrong")], json, body).0,
        401
    );
    let auth = ("Authorization", "Bearer s3cret");
    let evil = ("Origin", "http://evil.example");
    assert_eq!(post(&path, &[auth, evil], json, body).0, 403, "cross-site");
    assert_eq!(
        post(&path, &[auth], Some("text/plain"), body).0,
        415,
        "a form post"
    );
    assert_eq!(post(&path, &[auth], json, "{\"by\": 1}").0, 400);
    assert_eq!(
        post(&r.url("/api/incidents/999/ack"), &[auth], json, body).0,
        409
    );
    assert!(
        r.monitor.incidents().unwrap()[0].ack.is_none(),
        "nothing acked yet"
    );

    let same = ("Origin", &*format!("http://{}", r.address));
    let (status, answer) = post(&path, &[auth, same], json, body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        r.monitor.incidents().unwrap()[0].ack.as_ref().unwrap().by,
        "ops"
    );

    let silence =
        r#"{"created_by": "ops", "comment": "deploy", "duration": "2h", "rules": ["queue"]}"#;
    let (status, answer) = post(&r.url("/api/silences"), &[auth], json, silence);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(r.monitor.status().unwrap().silences.len(), 1);

    // The status API is the board's data, documented as MonitorStatus.
    let (status, _, text) = get(&r.url("/api/status"), None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"]["items"][0]["severity"], "major");
    assert_eq!(v["incidents"][0]["ack"]["by"], "ops");
    let (status, _, history) = get(&r.url("/api/history?limit=5"), None);
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Vec<serde_json::Value>>(&history)
            .unwrap()
            .len()
            <= 5
    );
}

#[test]
fn without_a_token_the_endpoint_is_read_only() {
    let r = Running::start("");
    let (status, answer) = post(
        &r.url("/api/silences"),
        &[("Authorization", "Bearer anything")],
        Some("application/json"),
        r#"{"created_by": "x", "duration": "1h"}"#,
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("read-only"));
}

#[test]
fn bad_requests_get_clear_status_codes() {
    let r = Running::start("token = \"t\"\nheader_timeout = \"1s\"\nmax_connections = 8");
    assert_eq!(get(&r.url("/nope"), None).0, 404);
    assert_eq!(get(&r.url("/api/silences"), None).0, 405);
    assert_eq!(post(&r.url("/metrics"), &[], None, "").0, 405);

    // DNS rebinding: a page whose own name now points at 127.0.0.1 is not answered.
    let rebound = raw(
        r.address,
        "GET /api/status HTTP/1.1\r\nHost: evil.example:9187\r\n\r\n",
    );
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound:.80}");
    let local = raw(
        r.address,
        "GET /metrics HTTP/1.1\r\nHost: localhost:9187\r\nConnection: close\r\n\r\n",
    );
    assert!(local.starts_with("HTTP/1.1 200"), "{local:.80}");

    // A 1 MiB header: refused, not buffered.
    let answer = raw(
        r.address,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(1 << 20)
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");

    // A body over 64 KiB, declared or not.
    let big = format!(
        "{{\"created_by\": \"{}\", \"duration\": \"1h\"}}",
        "a".repeat(70_000)
    );
    // Declared too large: refused at once, before any of it is read (a client still sending
    // it may see the connection close: sent here as a head only).
    let declared = raw(
        r.address,
        "POST /api/silences HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n",
    );
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared:.80}");
    let chunked = format!(
        "POST /api/silences HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    assert!(raw(r.address, &chunked).starts_with("HTTP/1.1 413"));

    // A write whose body trickles is answered 408 after header_timeout.
    let mut trickle = TcpStream::connect(r.address).unwrap();
    trickle
        .write_all(b"POST /api/silences HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"created")
        .unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    let mut answer = [0u8; 12];
    trickle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 408");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "held {:?}",
        t0.elapsed()
    );

    // A client that never finishes its head is cut after header_timeout.
    let mut slow = TcpStream::connect(r.address).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "held {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_thousand_scrapes_at_once_are_answered_and_recording_goes_on() {
    let r = Running::start("max_connections = 64");
    let counter = r.monitor.registry().counter("work_total", &[]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recorder = {
        let stop = std::sync::Arc::clone(&stop);
        let counter = counter.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                counter.increment();
                n += 1;
            }
            n
        })
    };
    let address = r.address;
    let scrapers: Vec<_> = (0..1000)
        .map(|_| {
            std::thread::spawn(move || {
                let answer = raw(
                    address,
                    "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                );
                answer.get(9..12).unwrap_or("???").to_owned()
            })
        })
        .collect();
    let codes: Vec<String> = scrapers.into_iter().map(|s| s.join().unwrap()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let recorded = recorder.join().unwrap();
    let ok = codes.iter().filter(|c| *c == "200").count();
    let busy = codes.iter().filter(|c| *c == "503").count();
    assert_eq!(
        ok + busy,
        1000,
        "every scrape answered 200 or 503: {codes:?}"
    );
    assert!(ok > 0);
    // Every increment made while the scrapes ran is there.
    let snapshot = r.monitor.registry().snapshot();
    assert_eq!(
        snapshot.get("work_total", &[]).unwrap().value,
        Value::Counter(recorded)
    );
}

/// Sends `request` on a new connection and returns what comes back (empty if closed).
fn raw(address: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(address).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request.as_bytes());
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") && out.len() > 12 {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/api/charts`: each item's recent values, one per slot (5 s here), with its thresholds and
/// the severity changes, every number also written with the item's unit; `/api/charts/{id}`:
/// the same at full resolution with the item's transitions and incidents.
#[test]
fn charts_keep_each_items_recent_values_thresholds_and_changes() {
    let rules = format!("{}{}", web_support::CPU_RULE, web_support::ROUTE_ALL);
    let clock = vigilo::clock::ManualClock::new(web_support::start_time());
    let r = Running::start_with_clock(&rules, "", &clock);
    let cpu = r
        .monitor
        .registry()
        .gauge("cpu_usage_ratio", &[("host", "web-1")])
        .unwrap();
    let values = [0.41, 0.45, 0.52, 0.58, 0.61, 0.66, 0.74];
    for (i, v) in values.into_iter().enumerate() {
        // The first in the slot the series appeared in (1 s on, so the evaluator sweeps), then
        // one slot (5 s) each.
        let after = Duration::from_secs(if i == 0 { 1 } else { 5 });
        web_support::step(&r, &clock, &cpu, "cpu", v, after);
        // A chart request reads the items first: one value per slot.
        assert_eq!(get(&r.url("/api/charts"), None).0, 200);
    }
    let (status, _, text) = get(&r.url("/api/charts"), None);
    assert_eq!(status, 200);
    let charts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(charts["slot"], 5000);
    let chart = &charts["items"][0];
    assert_eq!(chart["rule"], "cpu");
    assert_eq!(chart["labels"]["host"], "web-1");
    assert_eq!(chart["unit"], "ratio");
    assert_eq!(chart["severity"], "warning");
    assert_eq!(chart["value_text"], "74.0 %");
    let shown: Vec<f64> = chart["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert_eq!(shown.len(), values.len(), "{shown:?}");
    for (got, want) in shown.iter().zip(values) {
        assert!((got - want).abs() < 1e-6, "{shown:?}");
    }
    let thresholds: Vec<(String, String)> = chart["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["severity"].as_str().unwrap().to_owned(),
                t["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        thresholds,
        [
            ("warning".to_owned(), "70.0 %".to_owned()),
            ("critical".to_owned(), "95.0 %".to_owned())
        ]
    );
    // The y axis covers the values and the thresholds, its ticks written as percentages.
    assert!(chart["low"].as_f64().unwrap() <= 0.41 && chart["high"].as_f64().unwrap() >= 0.95);
    let ticks = chart["ticks"].as_array().unwrap();
    assert!(ticks.len() >= 3);
    assert!(
        ticks
            .iter()
            .all(|t| t["label"].as_str().unwrap().ends_with(" %"))
    );
    // The crossing of 70 % at the last step is a change to warning, at the clock's time.
    let changes = chart["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["from"], "normal");
    assert_eq!(changes[0]["to"], "warning");
    assert_eq!(changes[0]["label"], "normal → warning");
    let when = web_support::start_time() + Duration::from_secs(31);
    assert_eq!(changes[0]["at"], when.as_millis());

    // Full resolution, with the transition from the history.
    web_support::incident(&r.monitor);
    let id = chart["id"].as_str().unwrap();
    let (status, _, text) = get(&r.url(&format!("/api/charts/{id}")), None);
    assert_eq!(status, 200, "{text}");
    let full: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(full["step"], 5000);
    let events = full["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "transition" && e["severity"] == "warning"),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["kind"] == "opened"), "{events:?}");
    assert_eq!(get(&r.url("/api/charts/0123456789abcdef"), None).0, 404);
    assert_eq!(get(&r.url("/api/charts/%3Cscript%3E"), None).0, 404);
}
