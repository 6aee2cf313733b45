//! The alert pipeline end to end: a record crosses a threshold, the evaluator reports it, the
//! pipeline routes it and the bundled webhook plugin, in its sandbox, POSTs it to a real HTTP
//! server on loopback; retries keep the idempotency key; the resolve follows.

use std::sync::Arc;
use std::time::Duration;

use vigilo::config::Config;
use vigilo::monitor::Monitor;
use vigilo::pipeline::EventKind;

use crate::peers::HttpSink;

fn config(sink: &HttpSink) -> String {
    format!(
        r#"
        [evaluator]
        tick = "50ms"

        [[rule]]
        name = "queue"
        metric = "queue_depth"
        labels = {{ team = "ops" }}
        annotations = {{ summary = "queue at {{{{value}}}}" }}
        [rule.warning]
        threshold = 100
        [rule.critical]
        threshold = 1000

        [[channel]]
        name = "hook"
        plugin = "webhook"
        allowed_hosts = ["{host}"]
        retry = {{ attempts = 6, backoff = "20ms", max_backoff = "100ms" }}
        config = {{ url = "{url}" }}

        [[route]]
        name = "ops"
        channels = ["hook"]
        repeat_interval = "0s"
        "#,
        host = sink.host(),
        url = sink.url("/alerts"),
    )
}

fn built(name: &str) -> Result<std::path::PathBuf, String> {
    vigilo_plugin_build::build_guest(&format!("vigilo-{name}")).map_err(|e| e.to_string())
}

fn start(text: &str) -> Monitor {
    let config: Config = text.parse().unwrap_or_else(|e| panic!("{e}"));
    let loader = vigilo_plugin_host::loader(&config)
        .unwrap()
        .with_resolver(built);
    Monitor::builder(config)
        .loader(Arc::new(loader))
        .without_host_items()
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_crossing_reaches_a_real_receiver_through_the_webhook_plugin() {
    let sink = HttpSink::start();
    let monitor = start(&config(&sink));
    let queue = monitor
        .registry()
        .gauge("queue_depth", &[("queue", "mail")])
        .unwrap();
    queue.set(10.0);
    queue.set(150.0);
    let r = sink.next();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/alerts"));
    let body = r.json();
    assert_eq!(body["rule"], "queue");
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["labels"]["queue"], "mail");
    assert_eq!(body["labels"]["team"], "ops");
    assert_eq!(body["annotations"]["summary"], "queue at 150");
    // `{incident}:{route}:{change}@{store}.{content}` (ARCHITECTURE.md, "Crash guarantees").
    let key = r.header("idempotency-key").unwrap_or_default();
    assert!(key.starts_with("1:ops:1@"), "{key}");
    assert_eq!(body["idempotency_key"], key);

    // The receiver fails twice: the retries carry the same key, and it is delivered once.
    let events = monitor.subscribe().unwrap();
    sink.set_status(503);
    queue.set(5000.0);
    let first = sink.next();
    let second = sink.next();
    sink.set_status(200);
    let third = sink.next();
    let keys: Vec<_> = [&first, &second, &third]
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    // Every attempt carries one key: the second change of incident 1 on route ops.
    assert!(
        keys.iter()
            .all(|k| k.as_deref().is_some_and(|k| k.starts_with("1:ops:2@")))
            && keys.windows(2).all(|w| w[0] == w[1]),
        "{keys:?}"
    );
    assert_eq!(third.json()["severity"], "critical");
    let delivered = loop {
        let e = events.recv_timeout(Duration::from_secs(20)).unwrap();
        if e.kind == EventKind::Delivered && e.key == keys[2] {
            break e;
        }
    };
    assert!(
        delivered.detail.contains("attempt 3"),
        "{}",
        delivered.detail
    );

    // Back to normal: the resolve.
    queue.set(1.0);
    let resolved = sink.next().json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["previous"], "critical");
    monitor.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn one_call_starts_everything_from_a_file() {
    let sink = HttpSink::start();
    let wasm = built("webhook").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigilo.toml");
    let text = format!(
        "[plugins]\ndir = {:?}\n{}",
        wasm.parent().unwrap().display().to_string(),
        config(&sink)
    );
    std::fs::write(&path, text).unwrap();
    let monitor = vigilo_plugin_host::start(&path).unwrap_or_else(|e| panic!("{e}"));
    monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(500.0);
    assert_eq!(sink.next().json()["severity"], "warning");
    monitor.settle(Duration::from_secs(20)).unwrap();
    let status = monitor.status().unwrap();
    assert_eq!(status.incidents.len(), 1);
    assert_eq!(status.pipeline.delivered, 1);

    // A bundled plugin that is not there: a clear error naming the file.
    std::fs::write(
        &path,
        format!("[plugins]\ndir = \"/nonexistent\"\n{}", config(&sink)),
    )
    .unwrap();
    let err = vigilo_plugin_host::start(&path).unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/vigilo_webhook.wasm does not exist"),
        "{err}"
    );
}
