//! Follows `plugins/guests/sdk/README.md` ("your first channel in 10 minutes") step by step:
//! copies the template to a new crate in a temporary directory, writes the README's
//! `Cargo.toml` (with this checkout's absolute SDK path), makes the README's edit to
//! `src/lib.rs`, builds it for wasm32-wasip2 with the README's command, loads it from the
//! README's `my-channel.toml` (pointed at a loopback server this test starts) with the README's
//! host program (`plugins/host/examples/try_my_channel.rs`), checks the body the README
//! promises, runs the README's unit test natively, and checks that the README's second example
//! is the crate the checkout builds.
//!
//! The blocks it uses are read from the README itself (marked `<!-- sdk-readme-test: NAME -->`),
//! so the README cannot drift from what works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use crate::peers::HttpSink;
use serde_json::json;

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

    // 6. The README's my-channel.toml, for a listener on a free port instead of 8080.
    let sink = HttpSink::start();
    let toml_text = block(&readme, "my-channel.toml").replace("127.0.0.1:8080", &sink.host());
    let file = crate_dir.join("my-channel.toml");
    std::fs::write(&file, &toml_text).unwrap();

    // 7. `host-agent try-plugin my-channel.toml` (run by `examples/host-agent/tests/agent.rs`),
    //    then the README's host program: `plugins/host/examples/try_my_channel.rs` is that
    //    program, built by `cargo test`; run it from the crate's directory as the README does.
    assert!(block(&readme, "try-plugin").contains("host-agent try-plugin my-channel.toml"));
    let example =
        std::fs::read_to_string(root.join("plugins/host/examples/try_my_channel.rs")).unwrap();
    let host_code = block(&readme, "host");
    assert!(
        example.ends_with(&host_code),
        "the README's host program differs from plugins/host/examples/try_my_channel.rs"
    );
    let program = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/try_my_channel");
    assert!(
        program.is_file(),
        "{} is not built: `cargo test -p vigilo-plugin-host` builds it \
         (or `cargo build -p vigilo-plugin-host --example try_my_channel`)",
        program.display()
    );
    let out = Command::new(&program)
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's host program failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "delivered\n");

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

    // 8. The README's unit test, run natively with `cargo test`.
    let mut source = std::fs::read_to_string(&lib).unwrap();
    source.push('\n');
    source.push_str(&block(&readme, "unit-test"));
    std::fs::write(&lib, source).unwrap();
    let out = vigilo_plugin_build::clean_cargo()
        .arg("test")
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo test of the README's unit test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));

    // The second example is the crate the checkout builds and tests.
    let example =
        std::fs::read_to_string(root.join("plugins/guests/examples/incidents/src/lib.rs")).unwrap();
    let shown = block(&readme, "incidents");
    assert!(
        example.contains(shown.trim()),
        "the README's incidents example differs from the crate"
    );
}
