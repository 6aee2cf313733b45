//! What crosses the boundary as text: a guest's log calls, stdout, stderr and errors reach the
//! host's log (and the pipeline's history and board, through the errors) inert, one record per
//! call, control characters shown as escapes; and a host error handed to a guest carries no
//! host internals (no backtrace, no host file paths), even with `RUST_BACKTRACE=1`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

use serde_json::json;
use vigilo::alert::DeliveryError;

use crate::common::{alert, capture_logs, host, logged, settings};

/// No raw line break, carriage return, escape or other control character.
fn inert(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

#[test]
fn a_forging_guest_produces_one_escaped_record_per_call() {
    capture_logs();
    let host = host(0);
    let mut s = settings("forger", "hostile");
    s.config = json!({ "mode": "forge" });
    let forger = host.load_channel(s).unwrap();
    let r = forger.try_deliver(&alert());

    // The error the pipeline records (history, events, board): inert, the escapes visible.
    let message = match r {
        Ok(Err(DeliveryError::Permanent(m))) => m,
        other => panic!("expected the guest's error, got {other:?}"),
    };
    assert!(inert(&message), "{message:?}");
    assert!(
        message.contains(r"benign\n2030-01-01T00:00:00Z ERROR"),
        "{message}"
    );
    assert!(message.contains(r"\u{1b}[31m"), "{message}");

    // The log: one record per log call and per stream, none of them a forged line.
    let forged = logged("FORGED-LOG-LINE");
    let ours: Vec<_> = forged
        .iter()
        .filter(|l| l.message.starts_with("plugin forger"))
        .collect();
    assert_eq!(ours.len(), 3, "log call, stdout, stderr: {ours:#?}");
    assert!(
        forged.iter().all(|l| l.message.starts_with("plugin ")),
        "a record that does not come from a plugin: {forged:#?}"
    );
    for l in &ours {
        assert!(inert(&l.message), "{:?}", l.message);
        assert!(l.message.contains(r"benign\n2030"), "{}", l.message);
        assert!(l.message.contains(r"\r\u{1b}[2K"), "{}", l.message);
    }
    assert!(
        ours.iter()
            .any(|l| l.message.starts_with("plugin forger: benign"))
    );
    assert!(
        ours.iter()
            .any(|l| l.message.starts_with("plugin forger stdout: "))
    );
    assert!(
        ours.iter()
            .any(|l| l.message.starts_with("plugin forger stderr: "))
    );
}

/// The environment variable that marks the child process of the backtrace test.
const CHILD: &str = "VIGILO_TEST_BACKTRACE_CHILD";
const NAME: &str = "guest_text::a_host_error_given_to_a_guest_carries_no_backtrace_nor_host_paths";

#[test]
fn a_host_error_given_to_a_guest_carries_no_backtrace_nor_host_paths() {
    if std::env::var_os(CHILD).is_none() {
        // Backtrace capture is decided once per process from the environment: run this test
        // again in a process of its own, with RUST_BACKTRACE=1.
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
        return;
    }
    // A server that promises 1000 bytes of body, sends 3 and closes: the guest's read fails
    // with a host-side error, whose `to-debug-string` it returns as its own error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for mut c in listener.incoming().flatten().take(4) {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nabc");
        }
    });
    let host = host(0);
    let mut s = settings("prober", "hostile");
    s.config = json!({ "mode": "io-error", "url": format!("http://{addr}/") });
    s.allowed_hosts = vec![addr];
    let prober = host.load_channel(s).unwrap();
    let told = match prober.try_deliver(&alert()) {
        Ok(Err(e)) => e.message().to_owned(),
        other => panic!("expected the guest to report the read error, got {other:?}"),
    };
    assert!(!told.is_empty());
    let lower = told.to_ascii_lowercase();
    for internal in [
        "backtrace",
        ".rs:",
        "/rustc/",
        "/src/",
        "/.cargo/",
        "caused by",
    ] {
        assert!(
            !lower.contains(internal),
            "{internal:?} reached the guest: {told}"
        );
    }
    assert!(told.len() < 1024, "{} bytes: {told}", told.len());
}
