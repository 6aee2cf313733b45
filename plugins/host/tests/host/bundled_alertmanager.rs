//! The bundled `vigilo-alertmanager` plugin delivering to a REAL Prometheus Alertmanager
//! (Debian's `prometheus-alertmanager`, installed by `scripts/install-test-peers.sh`), started
//! by the test on a free loopback port and read back through its API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::peers::{Alertmanager, load_channel, resolved, sample_alert};
use serde_json::json;
use vigilo::alert::Channel;

/// An Alertmanager that keeps what it receives (its one receiver does nothing).
fn alertmanager() -> Alertmanager {
    Alertmanager::start(
        "route:\n  receiver: devnull\n  group_wait: 1h\nreceivers:\n  - name: devnull\n",
    )
}

#[test]
fn alerts_reach_a_real_alertmanager_and_resolve() {
    let am = alertmanager();
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![am.addr.to_string()];
        s.config = json!({
            "url": format!("http://{}/", am.addr),
            "extra_labels": { "source": "vigilo" },
            "generator_url": "https://grafana.example/d/cpu?var-host={{labels.host}}",
        });
    });

    let mut alert = sample_alert();
    alert.labels.insert("disk.mount".into(), "/var".into());
    plugin.deliver(&alert).unwrap();

    let alerts = am.alerts("cpu-high");
    assert_eq!(
        alerts.len(),
        1,
        "one active alert (the warning level it left is ended): {alerts:#?}"
    );
    let a = &alerts[0];
    assert_eq!(
        a["labels"],
        json!({
            "alertname": "cpu-high",
            "severity": "major",
            "host": "web-1",
            "team": "ops",
            "disk_mount": "/var",
            "source": "vigilo",
        })
    );
    assert_eq!(a["annotations"]["summary"], "CPU at 93.5% on web-1");
    assert_eq!(a["annotations"]["runbook"], "https://runbooks.example/cpu");
    assert_eq!(a["annotations"]["metric"], "host.cpu.usage");
    assert_eq!(a["annotations"]["value"], "93.5");
    assert_eq!(a["annotations"]["threshold"], "80");
    assert_eq!(a["startsAt"], "2023-11-14T22:14:20.000Z");
    assert_eq!(
        a["generatorURL"],
        "https://grafana.example/d/cpu?var-host=web-1"
    );
    assert_eq!(a["status"]["state"], "active");

    // Normal recovery ends the same alert (same labels, severity as it was).
    plugin.deliver(&resolved(alert)).unwrap();
    let left = am.alerts("cpu-high");
    assert!(left.is_empty(), "the alert must be resolved: {left:#?}");
}

#[test]
fn alertmanager_rejections_are_permanent_and_a_dead_one_is_retryable() {
    let am = alertmanager();
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![am.addr.to_string()];
        // A path where Alertmanager answers 404.
        s.config = json!({ "url": format!("http://{}/nowhere", am.addr) });
    });
    let err = plugin.deliver(&sample_alert()).unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(format!("{err:?}").contains("404"), "{err:?}");

    // Nothing listens there any more: a passing failure.
    let addr = am.addr;
    drop(am);
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![addr.to_string()];
        s.config = json!({ "url": format!("http://{addr}") });
    });
    let err = plugin.deliver(&sample_alert()).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[test]
fn fingerprint_and_extra_annotations_and_colliding_label_names_refused() {
    let am = alertmanager();
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![am.addr.to_string()];
        s.config = json!({
            "url": format!("http://{}", am.addr),
            "extra_annotations": { "dashboard": "https://grafana.example/d/cpu", "runbook": "not this" },
        });
    });
    let mut alert = sample_alert();
    alert.fingerprint = "9f86d081884c7d65".into();
    plugin.deliver(&alert).unwrap();
    let a = &am.alerts("cpu-high")[0];
    assert_eq!(a["annotations"]["fingerprint"], "9f86d081884c7d65");
    assert_eq!(
        a["annotations"]["dashboard"],
        "https://grafana.example/d/cpu"
    );
    // The rule's own annotation wins over an extra one of the same name.
    assert_eq!(a["annotations"]["runbook"], "https://runbooks.example/cpu");

    // `disk.mount` and `disk_mount` would both be `disk_mount`: refused, never merged.
    let mut clash = sample_alert();
    clash.rule = "disk-full".into();
    clash.labels.insert("disk.mount".into(), "/var".into());
    clash.labels.insert("disk_mount".into(), "/home".into());
    let err = plugin.deliver(&clash).unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let text = format!("{err:?}");
    assert!(
        text.contains("disk.mount") && text.contains("disk_mount"),
        "{text}"
    );
    assert!(am.alerts("disk-full").is_empty());
}

#[test]
fn fleet_mode_promises_an_end_and_resolves_only_the_replicas_own_alerts() {
    let am = alertmanager();
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![am.addr.to_string()];
        s.config = json!({ "url": format!("http://{}", am.addr), "resend_interval": "30s" });
    });
    let before = jiff::Timestamp::now();
    let shared = sample_alert();
    plugin.deliver(&shared).unwrap();
    let a = &am.alerts("cpu-high")[0];
    let ends: jiff::Timestamp = a["endsAt"].as_str().unwrap().parse().unwrap();
    let ahead = ends.duration_since(before).as_secs_f64();
    assert!(
        (119.0..=121.0).contains(&ahead),
        "endsAt 4 × resend_interval ahead: {ahead} s"
    );
    // A shared alert's resolve is not sent: the alert stays until its promised end (another
    // replica may still report it).
    plugin.deliver(&resolved(shared)).unwrap();
    assert_eq!(am.alerts("cpu-high").len(), 1);

    // The replica's own alert (it carries the replica label) ends at its resolve.
    let mut own = sample_alert();
    own.rule = "memory-high".into();
    own.labels.insert("replica".into(), "orders-api-1".into());
    plugin.deliver(&own).unwrap();
    assert_eq!(am.alerts("memory-high").len(), 1);
    plugin.deliver(&resolved(own)).unwrap();
    assert!(am.alerts("memory-high").is_empty());
}

#[test]
fn every_peer_gets_the_alert_and_one_peer_down_is_not_a_failure() {
    let (a, b) = (alertmanager(), alertmanager());
    let dead = crate::peers::free_port();
    let urls = [
        format!("http://{}", a.addr),
        format!("http://127.0.0.1:{dead}"),
        format!("http://{}", b.addr),
    ];
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![
            a.addr.to_string(),
            b.addr.to_string(),
            format!("127.0.0.1:{dead}"),
        ];
        s.config = json!({ "urls": urls });
    });
    plugin.deliver(&sample_alert()).unwrap();
    assert_eq!(a.alerts("cpu-high").len(), 1);
    assert_eq!(b.alerts("cpu-high").len(), 1);

    // Every peer down: a passing failure, retried.
    let (a_addr, b_addr) = (a.addr, b.addr);
    drop((a, b));
    let (_host, plugin) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![a_addr.to_string(), b_addr.to_string()];
        s.config = json!({ "urls": [format!("http://{a_addr}"), format!("http://{b_addr}")] });
    });
    let err = plugin.deliver(&sample_alert()).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
