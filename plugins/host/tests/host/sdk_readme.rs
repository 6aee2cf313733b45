//! Follows `plugins/guests/sdk/README.md` ("your first channel in 10 minutes") step by step:
//! copies the template to a new crate in a temporary directory, writes the README's
//! `Cargo.toml` (with this checkout's absolute SDK path), makes the README's edit to
//! `src/lib.rs`, builds it for wasm32-wasip2 with the README's command, loads it with the
//! README's `my-channel.toml` (pointed at a loopback server this test starts) and the README's
//! host code, delivers the README's alert, and checks the body the README promises.
//!
//! The blocks it uses are read from the README itself (marked `<!-- sdk-readme-test: NAME -->`),
//! so the README cannot drift from what works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::peers::HttpSink;
use serde_json::json;
use vigilo::Severity;
use vigilo::alert::{Alert, AlertStatus, Channel};
use vigilo::clock::Timestamp;
use vigilo_plugin_host::{PluginHost, PluginHostConfig, PluginSettings};

/// The fenced block that follows `<!-- sdk-readme-test: NAME -->` in the README.
fn block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- sdk-readme-test: {name} -->");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no block {marker}"));
    let rest = &readme[at + marker.len()..];
    let open = rest.find("```").unwrap();
    let body_start = open + rest[open..].find('\n').unwrap() + 1;
    let close = rest[body_start..].find("\n```").unwrap();
    rest[body_start..body_start + close + 1].to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[test]
fn the_readme_builds_loads_and_delivers_a_first_channel() {
    let root = vigilo_plugin_build::repo_root();
    let readme = std::fs::read_to_string(root.join("plugins/guests/sdk/README.md")).unwrap();

    // 1. Prerequisites: the target (a no-op when it is installed).
    if Command::new("rustup").arg("--version").output().is_ok() {
        let status = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .unwrap();
        assert!(status.success(), "rustup target add wasm32-wasip2 failed");
    }

    // 2. Copy the template, and the guest workspace's lock file.
    let work = tempfile::tempdir().unwrap();
    let crate_dir = work.path().join("my-channel");
    copy_dir(&root.join("plugins/guests/template"), &crate_dir);
    let lock = root.join("plugins/guests/Cargo.lock");
    if lock.exists() {
        std::fs::copy(&lock, crate_dir.join("Cargo.lock")).unwrap();
    }

    // 3. The README's Cargo.toml, with this checkout's path.
    let manifest = block(&readme, "Cargo.toml").replace("/path/to/vigilo", root.to_str().unwrap());
    assert!(
        manifest.contains(&format!("{}/plugins/guests/sdk", root.display())),
        "{manifest}"
    );
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();

    // 4. The README's edit.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let (old, new) = (block(&readme, "replace"), block(&readme, "with"));
    assert_eq!(
        source.matches(&old).count(),
        1,
        "the template must contain the README's line once:\n{old}"
    );
    std::fs::write(&lib, source.replace(&old, &new)).unwrap();

    // 5. Build with the README's command.
    // The README's `cargo build --release --target wasm32-wasip2`, without the outer test's
    // build variables.
    let mut build = vigilo_plugin_build::guest_cargo();
    build.current_dir(&crate_dir);
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "cargo build --release --target wasm32-wasip2 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = crate_dir.join("target/wasm32-wasip2/release/my_channel.wasm");
    assert!(wasm.is_file(), "no component at {}", wasm.display());

    // 6. The README's my-channel.toml, for a listener on a free port instead of 8080, and with
    //    an absolute component path (this test does not run from my-channel/).
    let sink = HttpSink::start();
    let toml_text = block(&readme, "my-channel.toml")
        .replace("127.0.0.1:8080", &sink.host())
        .replace(
            "\"target/wasm32-wasip2/release/my_channel.wasm\"",
            &format!("{:?}", wasm.to_str().unwrap()),
        );
    std::fs::write(crate_dir.join("my-channel.toml"), &toml_text).unwrap();

    // 7. The README's host code.
    let settings: PluginSettings =
        toml::from_str(&std::fs::read_to_string(crate_dir.join("my-channel.toml")).unwrap())
            .unwrap();
    let host = PluginHost::new(PluginHostConfig::default()).unwrap();
    let channel = host.load_channel(settings).unwrap();

    let alert = Alert {
        rule: "cpu-high".into(),
        metric: "host.cpu.usage".into(),
        labels: BTreeMap::from([("host".into(), "web-1".into())]),
        annotations: BTreeMap::from([("summary".into(), "CPU at 93.5% on web-1".into())]),
        severity: Severity::Major,
        previous: Severity::Warning,
        status: AlertStatus::Firing,
        value: Some(93.5),
        threshold: Some(80.0),
        since: Timestamp::from_secs(1_700_000_000),
        at: Timestamp::from_secs(1_700_000_060),
        idempotency_key: "cpu-high/web-1/1700000060/major".into(),
        recipients: vec![],
        incident: None,
        fingerprint: String::new(),
    };
    channel.deliver(&alert).unwrap();

    // What the README says the listener prints.
    let r = sink.next();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/alerts");
    assert_eq!(
        r.header("idempotency-key"),
        Some("cpu-high/web-1/1700000060/major")
    );
    assert_eq!(
        r.json(),
        json!({ "host": "web-1", "text": "[major] cpu-high: CPU at 93.5% on web-1" })
    );
    assert!(
        readme.contains(r#"{"host":"web-1","text":"[major] cpu-high: CPU at 93.5% on web-1"}"#),
        "the README shows the body received"
    );
    assert_eq!(
        r.text(),
        r#"{"host":"web-1","text":"[major] cpu-high: CPU at 93.5% on web-1"}"#
    );
}
