//! Loading: what is refused, and with which message.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use crate::common::{guest, host, settings};
use sha2::{Digest, Sha256};
use vigilo_plugin_host::{ExecGrant, LoadError, PluginKind, PluginSettings};

fn digest(path: &std::path::Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_malformed_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(3);
    for (file, bytes) in [
        ("garbage.wasm", &b"this is not wasm at all"[..]),
        ("truncated.wasm", &b"\0asm\x0d\0\x01\0\x01"[..]),
        // A valid core module is not a component.
        ("core.wasm", &b"\0asm\x01\0\0\0"[..]),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let err = host
            .load_channel(PluginSettings::new("bad", &path))
            .err()
            .unwrap();
        assert!(matches!(err, LoadError::Malformed { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string())
                && msg.contains("not a valid WebAssembly component"),
            "{msg}"
        );
    }
    let err = host
        .load_channel_bytes(PluginSettings::new("bytes", ""), b"nope")
        .err()
        .unwrap();
    assert!(err.to_string().contains("<bytes>"), "{err}");
    assert!(host.names().is_empty());
}

#[test]
fn a_missing_file_is_refused_naming_the_file() {
    let host = host(3);
    let err = host
        .load_channel(PluginSettings::new("ghost", "/nonexistent/ghost.wasm"))
        .err()
        .unwrap();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(
        err.to_string()
            .contains("plugin ghost: cannot read /nonexistent/ghost.wasm"),
        "{err}"
    );
}

#[test]
fn a_plugin_of_the_wrong_world_is_refused() {
    let host = host(3);
    let err = host
        .load_channel(settings("act", "exec-action"))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "plugin act: is an action plugin (it exports vigilo:plugin/action@0.1.0), not a channel plugin"
    );
    let err = host.load_action(settings("chan", "healthy")).err().unwrap();
    assert_eq!(
        err.to_string(),
        "plugin chan: is a channel plugin (it exports vigilo:plugin/channel@0.1.0), not an action plugin"
    );
}

#[test]
fn a_channel_that_imports_exec_is_refused() {
    let host = host(3);
    let err = host
        .load_channel(settings("evil", "exec-channel"))
        .err()
        .unwrap();
    match &err {
        LoadError::ForbiddenImport { name, import, kind } => {
            assert_eq!(
                (name.as_str(), import.as_str(), *kind),
                ("evil", "vigilo:plugin/exec", PluginKind::Channel)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "plugin evil imports vigilo:plugin/exec, which channel plugins may not use"
    );
}

#[test]
fn pins_are_checked() {
    let host = host(3);
    let path = guest("healthy");
    let mut s = settings("pinned", "healthy");
    s.sha256 = Some(format!("sha256:{}", digest(&path).to_uppercase()));
    host.load_channel(s).unwrap();

    let mut s = settings("mispinned", "healthy");
    s.sha256 = Some("0".repeat(64));
    match host.load_channel(s).err().unwrap() {
        LoadError::PinMismatch {
            name,
            expected,
            actual,
            ..
        } => {
            assert_eq!(name, "mispinned");
            assert_eq!(expected, "0".repeat(64));
            assert_eq!(actual, digest(&path));
        }
        other => panic!("{other:?}"),
    }
    let mut s = settings("badpin", "healthy");
    s.sha256 = Some("xyz".into());
    assert!(
        host.load_channel(s)
            .err()
            .unwrap()
            .to_string()
            .contains("is not 64 hex digits")
    );
}

#[test]
fn unusable_settings_are_refused() {
    let host = host(3);
    let check = |s: PluginSettings, kind: PluginKind, needle: &str| {
        let err = match kind {
            PluginKind::Channel => host.load_channel(s).err(),
            PluginKind::Action => host.load_action(s).err(),
            other => panic!("no loader for {other:?}"),
        }
        .unwrap();
        assert!(matches!(err, LoadError::Settings { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    let mut s = settings("c", "healthy");
    s.exec_grants = vec![ExecGrant::new("/bin/true", &[])];
    check(
        s,
        PluginKind::Channel,
        "channel plugins may not run commands",
    );
    let mut s = settings("a", "exec-action");
    s.exec_grants = vec![ExecGrant::new("true", &[])];
    check(s, PluginKind::Action, "must be an absolute path");
    let mut s = settings("a", "exec-action");
    s.exec_grants = vec![ExecGrant::new("/bin/echo", &["(unclosed"])];
    check(s, PluginKind::Action, "bad pattern");
    let mut s = settings("c", "healthy");
    s.memory_limit = 1 << 40;
    check(s, PluginKind::Channel, "max_memory");
    let mut s = settings("c", "healthy");
    s.allowed_hosts = vec!["https://hooks.example.com/x".into()];
    check(s, PluginKind::Channel, "is a URL");
}

#[test]
fn names_are_unique_and_reload_needs_a_file() {
    let host = host(3);
    host.load_channel(settings("one", "healthy")).unwrap();
    assert!(matches!(
        host.load_channel(settings("one", "trap")),
        Err(LoadError::Duplicate(_))
    ));
    assert!(matches!(host.reload("two"), Err(LoadError::NotLoaded(_))));
    let bytes = std::fs::read(guest("healthy")).unwrap();
    host.load_channel_bytes(PluginSettings::new("mem", ""), &bytes)
        .unwrap();
    assert!(
        host.reload("mem")
            .unwrap_err()
            .to_string()
            .contains("no file to reload")
    );
    assert!(host.action("one").is_none() && host.channel("one").is_some());
    assert!(host.unload("one"));
    host.load_channel(settings("one", "healthy")).unwrap();
}

#[test]
fn settings_load_from_toml() {
    let path = guest("exec-action");
    let text = format!(
        r#"
        name = "restart"
        path = "{}"
        sha256 = "{}"
        deadline = "1s"
        memory_limit = "8MiB"

        [[exec_grants]]
        command = "/bin/echo"
        args = ["hello|bye"]
        timeout = "2s"
        max_output = "1KiB"

        [config]
        command = "/bin/echo"
        args = ["hello"]
        "#,
        path.display(),
        digest(&path)
    );
    let s: PluginSettings = toml::from_str(&text).unwrap();
    let host = host(3);
    let action = host.load_action(s).unwrap();
    let outcome = action.try_run(&crate::common::alert()).unwrap().unwrap();
    assert_eq!(
        (outcome.exit_code, outcome.output_tail.as_str()),
        (Some(0), "hello\n")
    );
}
