//! The bundled `vigilo-email` plugin composing a message that the host sends over SMTP to a
//! REAL SMTP server on loopback: aiosmtpd (installed by `scripts/install-test-peers.sh`) with
//! the handler `tests/support/smtp_sink.py`, which writes each message it receives to a
//! directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::peers::{KillOnDrop, WAIT, free_port, load_channel, resolved, sample_alert, wait_for};
use serde_json::json;
use vigilo::alert::{Alert, Channel};
use vigilo_plugin_host::SmtpSettings;

/// aiosmtpd on a free loopback port, writing messages to a temp directory.
struct SmtpServer {
    port: u16,
    dir: tempfile::TempDir,
    _child: KillOnDrop,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status();
        assert!(
            matches!(probe, Ok(s) if s.success()),
            "python3 with aiosmtpd is needed: run scripts/install-test-peers.sh (it runs `python3 -m pip install aiosmtpd`)"
        );
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "smtp_sink.Sink",
            ])
            .arg(&out)
            .env("PYTHONPATH", &support)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start python3 -m aiosmtpd");
        let mut child = KillOnDrop(child);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = wait_for(WAIT, || {
            if let Ok(Some(status)) = child.0.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("aiosmtpd.log")).unwrap_or_default();
                panic!("aiosmtpd exited with {status}:\n{log}");
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        assert!(
            up.is_some(),
            "aiosmtpd on {addr} did not start within {WAIT:?}"
        );
        SmtpServer {
            port,
            dir,
            _child: child,
        }
    }

    /// The host's SMTP settings for this server (plain SMTP on loopback).
    fn settings(&self) -> SmtpSettings {
        toml::from_str(&format!(
            "server = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"10s\"",
            self.port
        ))
        .unwrap()
    }

    /// Message number `n` (from 1): its envelope and its text, waiting for it.
    fn message(&self, n: usize) -> (serde_json::Value, Mail) {
        let base: PathBuf = self.dir.path().join("mail").join(n.to_string());
        let meta = wait_for(WAIT, || {
            std::fs::read_to_string(base.with_extension("json")).ok()
        })
        .unwrap_or_else(|| panic!("the SMTP server received no message {n} within {WAIT:?}"));
        let raw = std::fs::read_to_string(base.with_extension("eml")).unwrap();
        (serde_json::from_str(&meta).unwrap(), Mail::parse(&raw))
    }
}

/// A received message: unfolded headers and the body.
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .expect("headers, a blank line, a body (CRLF)");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers.last_mut().unwrap().1.push_str(line);
            } else {
                let (k, v) = line.split_once(':').unwrap();
                headers.push((k.to_owned(), v.trim().to_owned()));
            }
        }
        Mail {
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

fn email_alert() -> Alert {
    let mut a = sample_alert();
    a.recipients = vec![
        "ops@example.com".into(),
        "Dev Team <dev@example.com>".into(),
    ];
    a
}

#[test]
fn a_composed_message_reaches_a_real_smtp_server() {
    let smtp = SmtpServer::start();
    let (_host, email) = load_channel("vigilo-email", |s| {
        s.smtp = Some(smtp.settings());
        s.config = json!({ "from": "vigilo alerts <alerts@example.com>" });
    });
    let alert = email_alert();
    email.deliver(&alert).unwrap();

    let (envelope, mail) = smtp.message(1);
    assert_eq!(envelope["mail_from"], "alerts@example.com");
    assert_eq!(
        envelope["rcpt_tos"],
        json!(["ops@example.com", "dev@example.com"])
    );
    assert_eq!(mail.header("From"), "vigilo alerts <alerts@example.com>");
    assert_eq!(
        mail.header("To"),
        "ops@example.com, Dev Team <dev@example.com>"
    );
    assert_eq!(
        mail.header("Subject"),
        "[Major] cpu-high: CPU at 93.5% on web-1"
    );
    assert_eq!(mail.header("Date"), "Tue, 14 Nov 2023 22:14:20 +0000");
    assert_eq!(mail.header("MIME-Version"), "1.0");
    assert_eq!(mail.header("Content-Type"), "text/plain; charset=utf-8");
    let id = mail.header("Message-ID").to_owned();
    assert!(
        id.starts_with("<vigilo.") && id.ends_with("@example.com>"),
        "{id}"
    );
    assert_eq!(id.len(), "<vigilo.@example.com>".len() + 32, "{id}");
    let body = &mail.body;
    for line in [
        "[Major] cpu-high",
        "CPU at 93.5% on web-1",
        "Status:    firing",
        "Severity:  major (was warning)",
        "Metric:    host.cpu.usage",
        "Value:     93.5",
        "Threshold: 80",
        "At:        2023-11-14T22:14:20.000Z",
        "  host = web-1",
        "  runbook = https://runbooks.example/cpu",
    ] {
        assert!(
            body.contains(&format!("{line}\r\n")),
            "missing {line:?} in\n{body}"
        );
    }
    assert!(body.contains(&alert.idempotency_key), "{body}");

    // The same alert again (a retry after a crash) has the same Message-ID; the resolved one
    // has its own, and says so.
    email.deliver(&alert).unwrap();
    let (_, again) = smtp.message(2);
    assert_eq!(again.header("Message-ID"), id);
    email.deliver(&resolved(alert)).unwrap();
    let (_, back) = smtp.message(3);
    assert_ne!(back.header("Message-ID"), id);
    assert_eq!(
        back.header("Subject"),
        "[Resolved] cpu-high: CPU at 93.5% on web-1"
    );
    assert!(
        back.body.contains("Status:    resolved\r\n"),
        "{}",
        back.body
    );
}

#[test]
fn templates_korean_text_and_configured_recipients() {
    let smtp = SmtpServer::start();
    let (_host, email) = load_channel("vigilo-email", |s| {
        s.smtp = Some(smtp.settings());
        s.config = json!({
            "from": "alerts@example.com",
            "to": ["oncall@example.com"],
            "subject_template": "[{{severity_ko}}] {{rule}}",
            "body_template": "{{labels.host}}: {{summary}}\n값 {{value}}",
            "message_id_domain": "vigilo.example.org",
        });
    });
    let mut alert = sample_alert();
    alert.recipients.clear();
    email.deliver(&alert).unwrap();

    let (envelope, mail) = smtp.message(1);
    assert_eq!(envelope["rcpt_tos"], json!(["oncall@example.com"]));
    assert_eq!(mail.header("To"), "oncall@example.com");
    let subject = mail.header("Subject");
    assert!(subject.starts_with("=?UTF-8?B?"), "{subject}");
    assert_eq!(decode_words(subject), "[긴급] cpu-high");
    assert_eq!(mail.header("Content-Transfer-Encoding"), "base64");
    let text = String::from_utf8(base64_decode(&mail.body)).unwrap();
    assert_eq!(text, "web-1: CPU at 93.5% on web-1\r\n값 93.5");
    assert!(mail.header("Message-ID").ends_with("@vigilo.example.org>"));
}

#[test]
fn without_a_granted_smtp_server_mail_is_refused() {
    let (_host, email) = load_channel("vigilo-email", |s| {
        s.config = json!({ "from": "alerts@example.com" });
    });
    let err = email.deliver(&email_alert()).unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
}

/// `=?UTF-8?B?…?=` words (folded or not) → text.
fn decode_words(s: &str) -> String {
    let mut bytes = Vec::new();
    for word in s.split_whitespace() {
        let inner = word
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="))
            .unwrap();
        bytes.extend(base64_decode(inner));
    }
    String::from_utf8(bytes).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .map(|b| TABLE.iter().position(|t| *t == b).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn a_body_with_bare_line_feeds_cannot_smuggle_a_second_message() {
    let server = SmtpServer::start();
    let (_host, mailer) = load_channel("vigilo-test-mailer", |s| {
        s.smtp = Some(server.settings());
        s.config = serde_json::json!({
            "from": "vigilo@example.com",
            "to": ["ops@example.com"],
            // A lone dot after a bare LF, then a whole second SMTP transaction.
            "body": "hello\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: injected\r\n\r\nsmuggled\r\n.\r\n",
        });
    });
    assert_eq!(mailer.try_deliver(&sample_alert()), Ok(Ok(())));
    let (envelope, mail) = server.message(1);
    assert_eq!(envelope["rcpt_tos"], serde_json::json!(["ops@example.com"]));
    assert!(
        mail.body.contains("MAIL FROM:<evil@example.com>"),
        "the would-be commands stay in the body: {}",
        mail.body
    );
    // Give a smuggled second message every chance to land, then check there is none.
    std::thread::sleep(Duration::from_millis(500));
    let received = std::fs::read_dir(server.dir.path().join("mail"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();
    assert_eq!(received, 1, "exactly one message reached the server");
}

#[test]
fn a_label_with_a_line_break_cannot_add_a_header_to_the_message() {
    let smtp = SmtpServer::start();
    let (_host, email) = load_channel("vigilo-email", |s| {
        s.smtp = Some(smtp.settings());
        s.config = json!({
            "from": "alerts@example.com",
            "subject_template": "[{{severity_label}}] team {{labels.team}}",
        });
    });
    let mut alert = email_alert();
    alert.labels.insert(
        "team".into(),
        "ops\r\nBcc: attacker@evil.example\r\nX-Injected: 1".into(),
    );
    email.deliver(&alert).unwrap();
    let (envelope, mail) = smtp.message(1);
    assert_eq!(
        envelope["rcpt_tos"],
        json!(["ops@example.com", "dev@example.com"])
    );
    for forged in ["Bcc", "X-Injected"] {
        assert!(
            !mail
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(forged)),
            "{forged} was added: {:?}",
            mail.headers
        );
    }
    let subjects = mail
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Subject"))
        .count();
    assert_eq!(subjects, 1);
    assert!(
        mail.header("Subject").starts_with("=?UTF-8?B?"),
        "{}",
        mail.header("Subject")
    );
}
