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
