//! The exec and mail imports: only what was granted, audited, bounded.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::common::{alert, host, settings, timed};
use vigilo::alert::{Action, ActionError, Channel, DeliveryError};
use vigilo_plugin_host::{
    ActionPlugin, AuditOutcome, ExecGrant, PluginError, PluginHost, SmtpSettings, SmtpTls,
};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn action(
    host: &PluginHost,
    name: &str,
    grants: Vec<ExecGrant>,
    command: &Path,
    args: &[&str],
) -> ActionPlugin {
    let mut s = settings(name, "exec-action");
    s.exec_grants = grants;
    s.config = serde_json::json!({ "command": command, "args": args });
    host.load_action(s).unwrap()
}

#[test]
fn a_granted_script_runs_with_an_empty_environment() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("cleared");
    let sh = script(
        dir.path(),
        "clear-cache.sh",
        "echo \"$1\" > \"$2\"\necho \"wrote $2 HOME=[$HOME] env=[$(env | grep -v ^PWD= | tr '\\n' ' ')]\"\necho oops >&2\nexit 0",
    );
    let marker_s = marker.to_str().unwrap();
    let grant = ExecGrant::new(&sh, &["cache|sessions", &regex::escape(marker_s)]);
    let host = host(3);
    let a = action(&host, "clear", vec![grant], &sh, &["cache", marker_s]);
    let outcome = a.run(&alert()).unwrap();
    assert!(outcome.success);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        outcome.output_tail,
        format!("wrote {marker_s} HOME=[] env=[]\n")
    );
    // The message is one line of the guest's text: its line break shown as an escape.
    assert_eq!(outcome.message, "stderr: oops\\n");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "cache\n");

    let audit = host.audit_log();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].plugin, "clear");
    assert_eq!(audit[0].args, vec!["cache".to_owned(), marker_s.to_owned()]);
    assert_eq!(
        (audit[0].exit_code, &audit[0].outcome),
        (Some(0), &AuditOutcome::Exited)
    );
}

#[test]
fn exit_codes_and_output_tails_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let sh = script(
        dir.path(),
        "fail.sh",
        "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done; exit 7",
    );
    let mut grant = ExecGrant::new(&sh, &[]);
    grant.max_output = 32;
    let host = host(3);
    let a = action(&host, "fail", vec![grant], &sh, &[]);
    let outcome = a.run(&alert()).unwrap();
    assert!(!outcome.success);
    assert_eq!(outcome.exit_code, Some(7));
    assert!(
        outcome.output_tail.len() <= 32 && outcome.output_tail.ends_with("line-499\n"),
        "{:?}",
        outcome.output_tail
    );
}

#[test]
fn an_ungranted_command_is_refused_and_audited() {
    let host = host(3);
    // No grants at all.
    let a = action(
        &host,
        "nogrant",
        vec![],
        Path::new("/bin/sh"),
        &["-c", "id"],
    );
    match a.try_run(&alert()) {
        Err(PluginError::Denied { plugin, detail }) => {
            assert_eq!(plugin, "nogrant");
            assert!(
                detail.contains("/bin/sh is not granted to plugin nogrant"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(a.run(&alert()), Err(ActionError::Denied(_))));
    // A grant of something else.
    let b = action(
        &host,
        "other",
        vec![ExecGrant::new("/bin/true", &[])],
        Path::new("/bin/false"),
        &[],
    );
    assert!(matches!(
        b.try_run(&alert()),
        Err(PluginError::Denied { .. })
    ));
    let audit = host.audit_log();
    assert_eq!(audit.len(), 3);
    assert!(
        audit
            .iter()
            .all(|r| matches!(r.outcome, AuditOutcome::Denied(_)) && r.exit_code.is_none())
    );
}

#[test]
fn arguments_outside_the_patterns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let sh = script(
        dir.path(),
        "restart.sh",
        &format!("touch {}", marker.display()),
    );
    let grant = ExecGrant::new(&sh, &["restart", "nginx|redis"]);
    let host = host(3);
    for args in [
        &["restart", "nginx; rm -rf /"][..],
        &["restart", "nginxx"],
        &["restart"],
        &["restart", "redis", "now"],
    ] {
        let a = action(
            &host,
            &format!("restart-{}", args.len()),
            vec![grant.clone()],
            &sh,
            args,
        );
        match a.try_run(&alert()) {
            Err(PluginError::Denied { detail, .. }) => {
                assert!(
                    detail.contains("does not match the granted pattern")
                        || detail.contains("takes exactly 2"),
                    "{detail}"
                );
            }
            other => panic!("{args:?}: {other:?}"),
        }
        host.unload(&format!("restart-{}", args.len()));
    }
    assert!(!marker.exists(), "a refused command ran");
    let a = action(&host, "restart-ok", vec![grant], &sh, &["restart", "redis"]);
    assert_eq!(a.run(&alert()).unwrap().exit_code, Some(0));
    assert!(marker.exists());
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let sh = script(
        dir.path(),
        "hang.sh",
        &format!(
            "sleep 60 &\necho $! > {}\necho started\nsleep 60",
            pidfile.display()
        ),
    );
    let mut grant = ExecGrant::new(&sh, &[]);
    grant.timeout = Duration::from_millis(500);
    let host = host(3);
    let mut s = settings("hang", "exec-action");
    s.exec_grants = vec![grant];
    s.config = serde_json::json!({ "command": sh, "args": [] });
    // The command's time does not count against the plugin's compute deadline.
    s.deadline = Duration::from_millis(200);
    let a = host.load_action(s).unwrap();
    let (outcome, took) = timed(|| a.run(&alert()));
    let outcome = outcome.unwrap();
    assert_eq!(
        (outcome.exit_code, outcome.message.as_str()),
        (None, "timed out")
    );
    assert_eq!(outcome.output_tail, "started\n");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = (0..100).any(|_| {
        thread::sleep(Duration::from_millis(10));
        !alive(child)
    });
    assert!(gone, "the background child {child} survived");
    assert_eq!(host.audit_log()[0].outcome, AuditOutcome::TimedOut);
}

#[test]
fn mail_without_a_server_is_denied() {
    let host = host(3);
    let mut s = settings("mail-none", "mailer");
    s.config = serde_json::json!({ "from": "vigilo@example.com", "to": ["ops@example.com"] });
    let p = host.load_channel(s).unwrap();
    match p.try_deliver(&alert()) {
        Err(PluginError::Denied { detail, .. }) => {
            assert!(detail.contains("no SMTP server configured"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.deliver(&alert()),
        Err(DeliveryError::Permanent(_))
    ));
}

/// A minimal SMTP server on loopback that accepts one message and sends it back on a channel.
fn smtp_server() -> (u16, mpsc::Receiver<(String, Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let mut out = conn.try_clone().unwrap();
        let mut lines = BufReader::new(conn);
        let mut say = |s: &str| out.write_all(format!("{s}\r\n").as_bytes()).unwrap();
        say("220 test ESMTP");
        let (mut from, mut to, mut data) = (String::new(), Vec::new(), String::new());
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let cmd = line.trim_end().to_owned();
            line.clear();
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                say("250 test");
            } else if upper.starts_with("MAIL FROM:") {
                from = cmd[10..].to_owned();
                say("250 ok");
            } else if upper.starts_with("RCPT TO:") {
                to.push(cmd[8..].to_owned());
                say("250 ok");
            } else if upper == "DATA" {
                say("354 go");
                while lines.read_line(&mut line).unwrap_or(0) > 0 && line != ".\r\n" {
                    data.push_str(&line);
                    line.clear();
                }
                line.clear();
                say("250 queued");
            } else if upper == "QUIT" {
                say("221 bye");
                break;
            } else {
                say("250 ok");
            }
        }
        let _ = tx.send((from, to, data));
    });
    (port, rx)
}

#[test]
fn mail_goes_to_the_configured_server() {
    let (port, rx) = smtp_server();
    let host = host(3);
    let mut s = settings("mail-ok", "mailer");
    s.config = serde_json::json!({ "from": "vigilo@example.com", "to": ["ops@example.com", "oncall@example.com"] });
    s.smtp = Some(SmtpSettings {
        server: "127.0.0.1".into(),
        port: Some(port),
        tls: SmtpTls::None,
        credentials: None,
        timeout: Duration::from_secs(5),
    });
    let p = host.load_channel(s).unwrap();
    assert_eq!(p.deliver(&alert()), Ok(()));
    let (from, to, data) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(from.contains("<vigilo@example.com>"), "{from}");
    assert_eq!(to.len(), 2);
    assert!(data.contains("Subject: [vigilo] cpu-high"), "{data}");
}
