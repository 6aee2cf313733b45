//! `[export.remote_write]` against a REAL Prometheus 2.42 started with
//! `--web.enable-remote-write-receiver`, configured as `docs/fleet.md` shows: vigilo's series
//! arrive, and PromQL through Prometheus's HTTP API returns them with the right values and
//! labels (the external labels added). And the
//! queue's discipline against a loopback receiver whose answers the test sets: retries while
//! it fails with 503, counted drops when the bounded queue overflows, a 400 dropped at once.

#![cfg(feature = "remote-write")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::export_support;

use std::time::Duration;

use export_support::{Prometheus, Sink, WAIT, wait_for};
use prost::Message;
use vigilo::config::Config;
use vigilo::monitor::Monitor;

fn monitor(section: &str) -> Monitor {
    let config: Config = section.parse().unwrap_or_else(|e| panic!("{e}"));
    Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn series_arrive_in_a_real_prometheus_with_values_and_labels() {
    let prometheus = Prometheus::start();
    // docs/fleet.md's configuration, with the test's address, a short interval and buckets.
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/fleet.md")).unwrap();
    let section = export_support::page_block(&page, "remote_write.toml")
        .replace(
            "http://prometheus:9090/api/v1/write",
            &prometheus.write_url(),
        )
        .replace("interval = \"15s\"", "interval = \"200ms\"");
    assert!(section.contains(&prometheus.write_url()) && section.contains("200ms"));
    let m = monitor(&format!("{section}buckets = [0.1, 0.5, 1.0]\n"));
    let r = m.registry();
    r.counter("jobs_total", &[("queue", "mail")])
        .unwrap()
        .add(7);
    r.gauge("queue_depth", &[("queue", "mail"), ("instance", "own")])
        .unwrap()
        .set(42.5);
    let h = r.histogram("request_seconds", &[]).unwrap();
    for v in [0.05, 0.2, 0.3, 0.7, 2.0] {
        h.record(v);
    }

    // A send may have left between a series' creation and its value, or read the histogram
    // while it was recording (its count and sum are read apart): wait for one taken after the
    // last recording (each send holds every series as of one reading; the histogram is last).
    let settled = wait_for(WAIT, || {
        let count = prometheus.query("request_seconds_count");
        let sum = prometheus.query("request_seconds_sum");
        (count[0]["value"][1] == "5" && sum[0]["value"][1] == "3.25").then_some(())
    });
    assert!(settled.is_some(), "no send after the recordings arrived");
    let jobs = prometheus.query("jobs_total");
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(
        jobs[0]["metric"],
        serde_json::json!({
            "__name__": "jobs_total",
            "queue": "mail",
            "instance": "orders-api-1",
            "replica": "a",
        })
    );
    assert_eq!(jobs[0]["value"][1], "7");
    // The series' own `instance` wins over the external label.
    let depth = prometheus.query("queue_depth");
    assert_eq!(depth[0]["metric"]["instance"], "own");
    assert_eq!(depth[0]["value"][1], "42.5");
    // Histograms as Prometheus scrapes them: cumulative buckets, sum, count.
    let le = |bound: &str| {
        let q = prometheus.query(&format!("request_seconds_bucket{{le=\"{bound}\"}}"));
        q[0]["value"][1].as_str().unwrap().to_owned()
    };
    assert_eq!(
        [le("0.1"), le("0.5"), le("1"), le("+Inf")],
        ["1", "3", "4", "5"]
    );
    let sum = prometheus.query("request_seconds_sum");
    let sum: f64 = sum[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((sum - 3.25).abs() < 1e-9, "{sum}");
    // PromQL over them: a rate once the counter moved between two sends.
    r.counter("jobs_total", &[("queue", "mail")])
        .unwrap()
        .add(3);
    let moved = wait_for(WAIT, || {
        let v = prometheus.query("jobs_total");
        (v[0]["value"][1] == "10").then_some(())
    });
    assert!(moved.is_some());

    let stats = m.export_stats();
    assert_eq!(stats[0].0, "remote_write");
    assert!(stats[0].1.samples_sent >= 9, "{stats:?}");
    assert_eq!(stats[0].1.samples_dropped, 0, "{stats:?}");
    m.stop(Duration::from_secs(5)).unwrap();
}

/// The series names in a remote-write body (snappy, then protobuf field 1 of each series).
fn names(body: &[u8]) -> Vec<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Req {
        #[prost(message, repeated, tag = "1")]
        ts: Vec<Ts>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Ts {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<L>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct L {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    Req::decode(raw.as_slice())
        .unwrap()
        .ts
        .into_iter()
        .flat_map(|t| t.labels)
        .filter(|l| l.name == "__name__")
        .map(|l| l.value)
        .collect()
}

#[test]
fn retries_while_failing_counts_drops_when_full_and_drops_a_refused_request() {
    let sink = Sink::start();
    sink.set_status(503);
    let m = monitor(&format!(
        r#"
        [export.remote_write]
        url = "{}"
        interval = "100ms"
        queue = {{ capacity = 8, max_samples_per_send = 2, min_backoff = "10ms", max_backoff = "50ms" }}
        "#,
        sink.url("/write")
    ));
    let r = m.registry();
    r.counter("a_total", &[]).unwrap().increment();
    r.counter("b_total", &[]).unwrap().increment();
    // Every reading is 2 user series + 5 export counters = 7 samples, in 4 requests: the
    // queue (8 samples) holds one reading, so each new one drops the oldest requests, counted,
    // while the failing receiver is retried.
    let stats = || m.export_stats()[0].1;
    let dropping = wait_for(WAIT, || {
        let s = stats();
        (s.samples_dropped > 0 && s.retries > 2).then_some(s)
    });
    assert!(dropping.is_some(), "{:?}", stats());
    assert_eq!(stats().samples_sent, 0);
    assert!(sink.taken().is_empty());

    // The receiver recovers: the newest readings arrive, with Prometheus's headers.
    sink.set_status(204);
    let arrived = wait_for(WAIT, || {
        let got = sink.taken();
        got.iter()
            .any(|g| names(&g.body).contains(&"a_total".to_owned()))
            .then_some(got)
    })
    .expect("a reading arrives once the receiver is back");
    let first = &arrived[0];
    assert_eq!(first.header("content-encoding"), Some("snappy"));
    assert_eq!(first.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(
        first.header("x-prometheus-remote-write-version"),
        Some("0.1.0")
    );
    assert!(arrived.iter().all(|g| names(&g.body).len() <= 2));

    // A 400 is not retried: the request is dropped and counted as failed.
    sink.set_status(400);
    let failed = wait_for(WAIT, || (stats().requests_failed > 0).then_some(()));
    assert!(failed.is_some(), "{:?}", stats());
    m.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_bad_section_is_refused_at_its_place() {
    let err = "[export.remote_write]\nurl = \"prometheus:9090/api/v1/write\"\n"
        .parse::<Config>()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("<string>:1:1"), "{err}");
    assert!(
        err.contains("export.remote_write") && err.contains("url"),
        "{err}"
    );
    let err =
        "[export.remote_write]\nurl = \"http://p/w\"\nexternal_labels = { \"bad-name\" = \"x\" }\n"
            .parse::<Config>()
            .unwrap_err()
            .to_string();
    assert!(err.contains("bad-name"), "{err}");
    let err = "[export.remote_write]\nurl = \"http://p/w\"\nintervall = \"1s\"\n"
        .parse::<Config>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("intervall"), "{err}");
}
