//! Every hostile case 100 times in one process: the host survives, keeps serving a healthy
//! plugin, and its RSS stays put. One test in its own binary, so that nothing else moves the
//! process's RSS meanwhile.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{alert, guest, host, rss, settings};
use vigilo::alert::DeliveryError;
use vigilo_plugin_host::{LoadError, PluginError, PluginHost, PluginSettings};

const ROUNDS: usize = 100;
const MIB: u64 = 1 << 20;

type Case = Box<dyn Fn() + Send>;

fn cases(host: &PluginHost, dir: &Path) -> Vec<(&'static str, Case)> {
    let mut spin = settings("spin", "spin");
    spin.deadline = Duration::from_millis(30);
    let spin = host.load_channel(spin).unwrap();
    let mut hog = settings("hog", "hog");
    hog.memory_limit = 16 << 20;
    let hog = host.load_channel(hog).unwrap();
    let trap = host.load_channel(settings("trap", "trap")).unwrap();
    let panic = host.load_channel(settings("panic", "panic")).unwrap();
    let reader = host.load_channel(settings("reader", "read-file")).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepts and never answers; closes each connection when the next one comes.
    thread::spawn(move || {
        let mut last = None;
        for conn in listener.incoming().flatten() {
            last = Some(conn);
        }
        drop(last);
    });
    let mut tcp = settings("tcp", "tcp-connect");
    tcp.config = serde_json::json!({ "addr": addr });
    let tcp = host.load_channel(tcp).unwrap();
    let mut denied = settings("denied", "http-get");
    denied.config = serde_json::json!({ "url": format!("http://{addr}/") });
    let denied = host.load_channel(denied).unwrap();
    let mut silent = settings("silent", "http-get");
    silent.allowed_hosts = vec![addr.clone()];
    silent.http_timeout = Duration::from_millis(50);
    silent.config = serde_json::json!({ "url": format!("http://{addr}/") });
    let silent = host.load_channel(silent).unwrap();
    let mut exec = settings("exec", "exec-action");
    exec.config = serde_json::json!({ "command": "/bin/sh", "args": ["-c", "id"] });
    let exec = host.load_action(exec).unwrap();

    let hostile = |name: &str, config: serde_json::Value, f: fn(&mut PluginSettings)| {
        let mut s = settings(name, "hostile");
        s.config = config;
        f(&mut s);
        host.load_channel(s).unwrap()
    };
    let sleeper = hostile("sleeper", serde_json::json!({ "mode": "sleep" }), |s| {
        s.call_timeout = Duration::from_millis(30)
    });
    let recurse = hostile("recurse", serde_json::json!({ "mode": "recurse" }), |_| {});
    let big_error = hostile(
        "big-error",
        serde_json::json!({ "mode": "big-error", "mb": 8 }),
        |_| {},
    );
    let headers = hostile("headers", serde_json::json!({ "mode": "headers" }), |_| {});
    let mut big_args = settings("big-args", "exec-action");
    big_args.exec_grants = vec![vigilo_plugin_host::ExecGrant::new("/bin/echo", &[".*"])];
    big_args.config = serde_json::json!({ "command": "/bin/echo", "big_args_mb": 2 });
    let big_args = host.load_action(big_args).unwrap();
    let malformed = dir.join("malformed.wasm");
    std::fs::write(&malformed, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let (h1, h2, h3) = (host.clone(), host.clone(), host.clone());
    vec![
        (
            "sleep past call_timeout",
            Box::new(move || {
                assert!(matches!(
                    sleeper.try_deliver(&alert()),
                    Err(PluginError::CallTimeout { .. })
                ))
            }),
        ),
        (
            "unbounded recursion",
            Box::new(move || {
                assert!(matches!(
                    recurse.try_deliver(&alert()),
                    Err(PluginError::Trap { .. })
                ))
            }),
        ),
        (
            "8 MiB error string",
            Box::new(move || {
                assert!(matches!(
                    big_error.try_deliver(&alert()),
                    Ok(Err(DeliveryError::Permanent(m))) if m.len() < 4200
                ))
            }),
        ),
        (
            "header maps",
            Box::new(move || {
                let r = headers.try_deliver(&alert());
                assert!(
                    matches!(r, Ok(Err(_)) | Err(PluginError::Trap { .. })),
                    "{r:?}"
                );
            }),
        ),
        (
            "2 MiB exec arguments",
            Box::new(move || {
                assert!(matches!(
                    big_args.try_run(&alert()),
                    Err(PluginError::Denied { .. })
                ))
            }),
        ),
        (
            "endless loop",
            Box::new(move || {
                assert!(matches!(
                    spin.try_deliver(&alert()),
                    Err(PluginError::Timeout { .. })
                ))
            }),
        ),
        (
            "endless allocation",
            Box::new(move || {
                assert!(matches!(
                    hog.try_deliver(&alert()),
                    Err(PluginError::MemoryExhausted { .. })
                ))
            }),
        ),
        (
            "trap",
            Box::new(move || {
                assert!(matches!(
                    trap.try_deliver(&alert()),
                    Err(PluginError::Trap { .. })
                ))
            }),
        ),
        (
            "panic",
            Box::new(move || {
                assert!(matches!(
                    panic.try_deliver(&alert()),
                    Err(PluginError::Trap { .. })
                ))
            }),
        ),
        (
            "file read",
            Box::new(move || {
                assert!(matches!(
                    reader.try_deliver(&alert()),
                    Ok(Err(DeliveryError::Permanent(_)))
                ))
            }),
        ),
        (
            "raw socket",
            Box::new(move || {
                assert!(matches!(
                    tcp.try_deliver(&alert()),
                    Ok(Err(DeliveryError::Permanent(_)))
                ))
            }),
        ),
        (
            "host not allowed",
            Box::new(move || {
                assert!(matches!(
                    denied.try_deliver(&alert()),
                    Err(PluginError::Denied { .. })
                ))
            }),
        ),
        (
            "silent host",
            Box::new(move || {
                assert!(matches!(
                    silent.try_deliver(&alert()),
                    Ok(Err(DeliveryError::Retryable(_)))
                ))
            }),
        ),
        (
            "exec without grant",
            Box::new(move || {
                assert!(matches!(
                    exec.try_run(&alert()),
                    Err(PluginError::Denied { .. })
                ))
            }),
        ),
        (
            "channel importing exec",
            Box::new(move || {
                assert!(matches!(
                    h1.load_channel(settings("evil", "exec-channel")),
                    Err(LoadError::ForbiddenImport { .. })
                ));
            }),
        ),
        (
            "wrong world",
            Box::new(move || {
                assert!(matches!(
                    h2.load_channel(settings("act", "exec-action")),
                    Err(LoadError::WrongWorld { .. })
                ));
            }),
        ),
        (
            "malformed file",
            Box::new(move || {
                assert!(matches!(
                    h3.load_channel(PluginSettings::new("bad", &malformed)),
                    Err(LoadError::Malformed { .. })
                ));
            }),
        ),
    ]
}

#[test]
fn every_hostile_case_a_hundred_times_with_steady_rss() {
    let _ = guest("healthy");
    let dir = tempfile::tempdir().unwrap();
    let host = host(0);
    let healthy = host.load_channel(settings("healthy", "healthy")).unwrap();
    let cases = cases(&host, dir.path());
    // Warm up: pools, caches, the tokio runtime, allocator arenas.
    for (_, case) in &cases {
        for _ in 0..5 {
            case();
        }
    }
    let before = rss();
    let mut report = String::new();
    for (name, case) in &cases {
        let start = rss();
        let t0 = std::time::Instant::now();
        for _ in 0..ROUNDS {
            case();
            assert_eq!(healthy.try_deliver(&alert()), Ok(Ok(())), "after {name}");
        }
        let grew = rss().saturating_sub(start);
        let line = format!(
            "{name:>24}: {ROUNDS} rounds in {:>6.2?}, RSS +{:.1} MiB\n",
            t0.elapsed(),
            grew as f64 / MIB as f64
        );
        eprint!("{line}");
        report.push_str(&line);
    }
    let after = rss();
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS {:.1} MiB -> {:.1} MiB",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(
        growth < 64 * MIB,
        "RSS grew by {} MiB:\n{report}",
        growth / MIB
    );
    assert_eq!(
        host.names(),
        vec![
            "big-args",
            "big-error",
            "denied",
            "exec",
            "headers",
            "healthy",
            "hog",
            "panic",
            "reader",
            "recurse",
            "silent",
            "sleeper",
            "spin",
            "tcp",
            "trap"
        ]
    );
}
