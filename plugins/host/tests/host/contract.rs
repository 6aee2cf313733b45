//! The plugin contract 0.2.0 beside 0.1.0: both load and deliver in one host; the 0.2.0 alert
//! carries the item's fingerprint, incident and peak; a denied host is a distinct, permanent
//! error the plugin sees; HTTP statuses follow the one retry policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::peers::{HttpSink, load_channel, resolved, sample_alert};
use serde_json::json;
use vigilo::Severity;
use vigilo::alert::{Channel, DeliveryError};
use vigilo_plugin_host::{PluginError, PluginHost, PluginHostConfig, PluginSettings};

#[test]
fn a_0_1_and_a_0_2_plugin_deliver_side_by_side_in_one_host() {
    let sink = HttpSink::start();
    let host = PluginHost::new(PluginHostConfig::default()).unwrap();
    let old = vigilo_plugin_build::build_guest("vigilo-test-healthy").unwrap();
    let new = vigilo_plugin_build::build_guest("vigilo-webhook").unwrap();
    let healthy = host.load_channel(PluginSettings::new("old", old)).unwrap();
    let mut s = PluginSettings::new("new", new);
    s.allowed_hosts = vec![sink.host()];
    s.config = json!({ "url": sink.url("/v2") });
    let webhook = host.load_channel(s).unwrap();
    assert_eq!(healthy.status().version, "0.1.0");
    assert_eq!(webhook.status().version, "0.2.0");
    let alert = sample_alert();
    healthy.deliver(&alert).unwrap();
    webhook.deliver(&alert).unwrap();
    assert_eq!(sink.next().path, "/v2");
}

#[test]
fn the_0_2_alert_carries_the_item_fingerprint_incident_and_peak() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/") });
    });
    let mut alert = sample_alert();
    alert.fingerprint = "c49b2f1106f9796f".into();
    alert.incident = Some(42);
    alert.peak = Severity::Critical;
    webhook.deliver(&alert).unwrap();
    let firing = sink.next().json();
    assert_eq!(firing["fingerprint"], "c49b2f1106f9796f");
    assert_eq!(firing["incident"], 42);
    assert_eq!(firing["peak"], "critical");
    // The resolve has its own idempotency key but the same fingerprint, and says what it
    // resolved from.
    webhook.deliver(&resolved(alert.clone())).unwrap();
    let back = sink.next().json();
    assert_eq!(back["fingerprint"], firing["fingerprint"]);
    assert_ne!(back["idempotency_key"], firing["idempotency_key"]);
    assert_eq!(
        (back["severity"].as_str(), back["previous"].as_str()),
        (Some("normal"), Some("major"))
    );
}

#[test]
fn a_host_outside_allowed_hosts_is_a_distinct_permanent_error_the_plugin_sees() {
    let sink = HttpSink::start();
    // The plugin sees the denial as its own error and falls back to an allowed host.
    let (_host, fallback) = load_channel("vigilo-test-fallback", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "primary": "http://203.0.113.9:8080/denied",
            "fallback": sink.url("/fallback"),
        });
    });
    fallback.deliver(&sample_alert()).unwrap();
    let r = sink.next();
    assert_eq!(r.path, "/fallback");
    let denied = r.header("x-denied").unwrap();
    assert!(denied.starts_with("denied: host not allowed"), "{denied}");

    // A plugin that does not handle it fails permanently, and the host's message says what
    // was refused without contradicting itself.
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": "http://203.0.113.9:8080/denied" });
    });
    let err = webhook.try_deliver(&sample_alert()).unwrap_err();
    assert!(matches!(err, PluginError::Denied { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("not in the allowed_hosts"), "{text}");
    assert!(text.contains("denied: host not allowed"), "{text}");
    assert!(
        !text.contains("retry may help") && !text.contains("connection closed"),
        "{text}"
    );
    assert!(!DeliveryError::from(err).is_retryable());
}

#[test]
fn statuses_follow_the_one_retry_policy() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/policy") });
    });
    let outcome = |status: u16| {
        sink.set_status(status);
        let r = webhook.try_deliver(&sample_alert()).unwrap();
        sink.drain();
        r
    };
    assert!(outcome(202).is_ok());
    for retryable in [408, 425, 429, 500, 503] {
        let e = outcome(retryable).unwrap_err();
        assert!(e.is_retryable(), "{retryable}: {e}");
    }
    for permanent in [301, 400, 404, 409, 422] {
        let e = outcome(permanent).unwrap_err();
        assert!(!e.is_retryable(), "{permanent}: {e}");
        assert!(
            e.to_string().contains(&format!("answered {permanent}")),
            "{e}"
        );
    }
}

/// The SDK README's second example: one incident per item, trigger then resolve with the same
/// dedup key, a resolve reporting the severity it resolved from, a 409 counted as delivered.
#[test]
fn the_incidents_example_keys_one_incident_per_item() {
    let sink = HttpSink::start();
    let (_host, incidents) = load_channel("vigilo-example-incidents", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/v2/enqueue"), "routing_key": "R0UT1NG" });
    });
    let mut alert = sample_alert();
    alert.fingerprint = "c49b2f1106f9796f".into();
    incidents.deliver(&alert).unwrap();
    let trigger = sink.next().json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "c49b2f1106f9796f");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    // The resolve: same key; the receiver had closed it already and answers 409.
    sink.set_status(409);
    incidents.deliver(&resolved(alert)).unwrap();
    let resolve = sink.next().json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(
        resolve["payload"]["severity"], "error",
        "what it resolved from"
    );
}

#[test]
fn a_component_is_compiled_once_per_host_and_kept_on_disk_with_a_cache_dir() {
    let webhook = vigilo_plugin_build::build_guest("vigilo-webhook").unwrap();
    let healthy = vigilo_plugin_build::build_guest("vigilo-test-healthy").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = PluginHostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..PluginHostConfig::default()
    };
    let host = PluginHost::new(config.clone()).unwrap();
    host.load_channel(PluginSettings::new("a", &webhook))
        .unwrap();
    host.load_channel(PluginSettings::new("b", &webhook))
        .unwrap();
    host.reload("a").unwrap();
    assert_eq!(host.compilations(), 1, "same bytes, one compilation");
    host.load_channel(PluginSettings::new("c", &healthy))
        .unwrap();
    assert_eq!(host.compilations(), 2);

    // The operator's cache directory now holds the compiled code for the next start.
    let files = entries(dir.path());
    assert_eq!(files.len(), 2, "one entry per component: {files:?}");
    let restarted = PluginHost::new(config).unwrap();
    let again = restarted
        .load_channel(PluginSettings::new("a", &webhook))
        .unwrap();
    assert_eq!(again.status().version, "0.2.0");
    assert_eq!(entries(dir.path()), files, "a warm start adds no entry");
}

/// The compiled entries under `dir` (not the cache worker's usage statistics and lock files,
/// which it writes in the background).
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && !name.ends_with(".stats")
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
