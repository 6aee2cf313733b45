//! The bundled `vigilo-exec-recovery` action plugin running a granted script through the
//! host's `exec` import, and refused a command it was not granted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::peers::{load_action, sample_alert};
use serde_json::json;
use vigilo::alert::{Action, ActionError, Alert};
use vigilo_plugin_host::{ExecGrant, PluginError};

/// A script that records its first argument in the file named by its second, says something
/// on both streams, and exits 3 when asked to `fail`.
fn script(dir: &Path) -> PathBuf {
    let path = dir.join("clear-cache.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"cleared $1\" > \"$2\"\necho \"stdout: done $1\"\necho \"stderr: note\" >&2\n[ \"$1\" = fail ] && exit 3\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn alert_for(service: &str) -> Alert {
    let mut a = sample_alert();
    a.labels.insert("service".into(), service.into());
    a
}

#[test]
fn runs_the_granted_command_with_templated_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path());
    let out = dir.path().join("out.txt");
    let (host, action) = load_action("vigilo-exec-recovery", |s| {
        s.exec_grants = vec![ExecGrant::new(
            &script,
            &["cache|fail", &regex::escape(&out.to_string_lossy())],
        )];
        s.config = json!({
            "command": script.to_string_lossy(),
            "args": ["{{labels.service}}", out.to_string_lossy()],
        });
    });

    let outcome = action.run(&alert_for("cache")).unwrap();
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        outcome.message,
        format!("{} exited with status 0", script.display())
    );
    assert!(
        outcome.output_tail.contains("stdout: done cache"),
        "{outcome:?}"
    );
    assert!(outcome.output_tail.contains("stderr: note"), "{outcome:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "cleared cache\n");

    // A non-zero exit is reported, not hidden.
    let outcome = action.run(&alert_for("fail")).unwrap();
    assert!(!outcome.success, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "cleared fail\n");

    // Both runs are in the host's audit trail.
    assert_eq!(host.audit_log().len(), 2, "{:?}", host.audit_log());
}

#[test]
fn an_ungranted_command_or_argument_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path());
    let out = dir.path().join("out.txt");
    let grant = |s: &mut vigilo_plugin_host::PluginSettings| {
        s.exec_grants = vec![ExecGrant::new(
            &script,
            &["cache", &regex::escape(&out.to_string_lossy())],
        )];
    };

    // A command that was never granted.
    let (_host, action) = load_action("vigilo-exec-recovery", |s| {
        grant(s);
        s.config = json!({ "command": "/bin/rm", "args": ["-rf", out.to_string_lossy()] });
    });
    match action.try_run(&alert_for("cache")) {
        Err(PluginError::Denied { detail, .. }) => assert!(detail.contains("/bin/rm"), "{detail}"),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(matches!(
        action.run(&alert_for("cache")),
        Err(ActionError::Denied(_))
    ));

    // The granted command with an argument outside its patterns.
    let (_host, action) = load_action("vigilo-exec-recovery", |s| {
        grant(s);
        s.config = json!({
            "command": script.to_string_lossy(),
            "args": ["{{labels.service}}", out.to_string_lossy()],
        });
    });
    assert!(matches!(
        action.try_run(&alert_for("database")),
        Err(PluginError::Denied { .. })
    ));
    assert!(!out.exists(), "nothing may have run");

    // No command configured: the action cannot be attempted.
    let (_host, action) = load_action("vigilo-exec-recovery", |s| grant(s));
    let err = action.try_run(&alert_for("cache")).unwrap().unwrap_err();
    assert_eq!(err, "config: missing required setting `command`");
}
