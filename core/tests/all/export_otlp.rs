//! `[export.otlp]` against a receiver that decodes with the OpenTelemetry project's published
//! protobuf schema (`opentelemetry-proto` from PyPI, `export_support/otlp_receiver.py`; the
//! test does not read the requests with the code under test): names, values, temporality,
//! buckets and resource attributes.

#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::export_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use export_support::WAIT;
use serde_json::{Value, json};
use vigilo::config::Config;
use vigilo::monitor::Monitor;

/// The Python receiver: its port and the requests it decoded, one JSON value each.
struct Receiver {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<Value>,
}

impl Receiver {
    fn start() -> Receiver {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/all/export_support/otlp_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/install-test-peers.sh installs opentelemetry-proto)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = first.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver did not start (is opentelemetry-proto installed? run scripts/install-test-peers.sh): {first:?}")
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Receiver { child, port, lines }
    }

    /// The next decoded request whose metrics include `name` and `pred` accepts.
    fn wait(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no request with {name} within {WAIT:?}"));
            if let Some(m) = metric(&line, name)
                && pred(&m)
            {
                return line;
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metric `name` of a decoded request.
fn metric(line: &Value, name: &str) -> Option<Value> {
    line["request"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
}

#[test]
fn counters_gauges_histograms_and_resource_reach_an_otlp_receiver() {
    let receiver = Receiver::start();
    // docs/fleet.md's configuration, with the test's address, a short interval and buckets.
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/fleet.md")).unwrap();
    let endpoint = format!("http://127.0.0.1:{}/v1/metrics", receiver.port);
    let section = export_support::page_block(&page, "otlp.toml")
        .replace("http://otel-collector:4318/v1/metrics", &endpoint)
        .replace("interval = \"15s\"", "interval = \"200ms\"");
    assert!(section.contains(&endpoint) && section.contains("200ms"));
    let config: Config = format!("{section}buckets = [0.1, 0.5, 1.0]\n")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let m = Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap();
    let r = m.registry();
    r.describe(
        "request_seconds",
        Some("seconds"),
        "Time to serve a request",
    )
    .unwrap();
    r.counter("jobs_total", &[("queue", "mail")])
        .unwrap()
        .add(7);
    r.gauge("queue_depth", &[("queue", "mail")])
        .unwrap()
        .set(42.5);
    let h = r
        .histogram("request_seconds", &[("route", "/pay")])
        .unwrap();
    for v in [0.05, 0.2, 0.3, 0.7, 2.0] {
        h.record(v);
    }

    // A send may have left between a series' creation and its value, or read the histogram
    // while it was recording (its count and sum are read apart: a reading beside a record may
    // hold the new count with the old sum): take one made after the last recording.
    let line = receiver.wait("request_seconds", |m| {
        let p = &m["histogram"]["dataPoints"][0];
        p["count"] == "5" && p["sum"].as_f64().is_some_and(|s| (s - 3.25).abs() < 1e-9)
    });
    assert_eq!(line["path"], "/v1/metrics");
    assert_eq!(line["content_type"], "application/x-protobuf");
    let rm = &line["request"]["resourceMetrics"][0];
    let mut attrs: Vec<(String, String)> = rm["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_owned(),
                a["value"]["stringValue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    attrs.sort();
    assert_eq!(
        attrs,
        [
            ("deployment.environment".to_owned(), "prod".to_owned()),
            ("service.instance.id".to_owned(), "orders-api-1".to_owned()),
            ("service.name".to_owned(), "orders-api".to_owned()),
        ]
    );
    assert_eq!(rm["scopeMetrics"][0]["scope"]["name"], "vigilo");

    // A counter: a monotonic cumulative sum, its start before its time.
    let jobs = metric(&line, "jobs_total").unwrap();
    assert_eq!(
        jobs["sum"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    assert_eq!(jobs["sum"]["isMonotonic"], true);
    let p = &jobs["sum"]["dataPoints"][0];
    assert_eq!(
        p["attributes"],
        json!([{ "key": "queue", "value": { "stringValue": "mail" } }])
    );
    let start: u64 = p["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let time: u64 = p["timeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(0 < start && start < time, "{p}");
    // A gauge.
    let depth = metric(&line, "queue_depth").unwrap();
    assert_eq!(depth["gauge"]["dataPoints"][0]["asDouble"], 42.5);
    // A histogram: cumulative, explicit bounds, per-bucket counts, sum, min, max, the unit
    // and description given to the registry.
    let req = metric(&line, "request_seconds").unwrap();
    assert_eq!(req["unit"], "seconds");
    assert_eq!(req["description"], "Time to serve a request");
    let hist = &req["histogram"];
    assert_eq!(
        hist["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    let p = &hist["dataPoints"][0];
    assert_eq!(p["explicitBounds"], json!([0.1, 0.5, 1.0]));
    assert_eq!(p["bucketCounts"], json!(["1", "2", "1", "1"]));
    assert_eq!(p["count"], "5");
    assert!((p["sum"].as_f64().unwrap() - 3.25).abs() < 1e-9, "{p}");
    assert_eq!(
        (p["min"].as_f64(), p["max"].as_f64()),
        (Some(0.05), Some(2.0))
    );

    // Cumulative: the next reading carries the total and the same start.
    r.counter("jobs_total", &[("queue", "mail")])
        .unwrap()
        .add(3);
    let later = receiver.wait("jobs_total", |m| m["sum"]["dataPoints"][0]["asInt"] == "10");
    let p2 = &metric(&later, "jobs_total").unwrap()["sum"]["dataPoints"][0];
    assert_eq!(p2["startTimeUnixNano"].as_str().unwrap(), start.to_string());
    m.stop(Duration::from_secs(5)).unwrap();
}
