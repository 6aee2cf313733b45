//! The bundled `vigilo-alertmanager` plugin delivering to a REAL Prometheus Alertmanager
//! (Debian's `prometheus-alertmanager`, installed by `scripts/install-test-peers.sh`), started
//! by the test on a free loopback port and read back through its API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::peers::{
    KillOnDrop, WAIT, free_port, http_request, load_channel, resolved, sample_alert, wait_for,
    which,
};
use serde_json::{Value, json};
use vigilo::alert::Channel;

/// A running Alertmanager with a throw-away configuration and storage.
struct Alertmanager {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    _child: KillOnDrop,
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let bin = which("prometheus-alertmanager")
            .or_else(|| which("alertmanager"))
            .unwrap_or_else(|| {
                panic!(
                    "prometheus-alertmanager is not installed: run scripts/install-test-peers.sh \
                 (it installs the Debian package prometheus-alertmanager)"
                )
            });
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: devnull\n  group_wait: 1h\nreceivers:\n  - name: devnull\n",
        )
        .unwrap();
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut child = KillOnDrop(child);
        let ready = wait_for(WAIT, || {
            if let Ok(Some(status)) = child.0.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("alertmanager.log"))
                    .unwrap_or_default();
                panic!("alertmanager exited with {status}:\n{log}");
            }
            matches!(http_request(addr, "GET", "/-/ready", None), Ok((200, _))).then_some(())
        });
        assert!(
            ready.is_some(),
            "alertmanager on {addr} was not ready within {WAIT:?}"
        );
        Alertmanager {
            addr,
            _dir: dir,
            _child: child,
        }
    }

    /// The active alerts named `alertname`.
    fn alerts(&self, alertname: &str) -> Vec<Value> {
        let (status, body) = http_request(self.addr, "GET", "/api/v2/alerts", None).unwrap();
        assert_eq!(status, 200, "{body}");
        let all: Vec<Value> = serde_json::from_str(&body).unwrap();
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }
}

#[test]
fn alerts_reach_a_real_alertmanager_and_resolve() {
    let am = Alertmanager::start();
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
    let am = Alertmanager::start();
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
