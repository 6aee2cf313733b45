//! The sandbox against hostile guests (the `vigilo-test-hostile` modes, and the exec and
//! network guests configured to attack): each call ends within its limit plus a small bound,
//! with a typed error, the host lives, and a healthy plugin on the same host still delivers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use vigilo::alert::DeliveryError;
use vigilo_plugin_host::{ChannelPlugin, ExecGrant, PluginError, PluginHost, PluginSettings};

use crate::common::{alert, host, settings};
use crate::peers::HttpSink;

fn hostile(
    host: &PluginHost,
    name: &str,
    config: serde_json::Value,
    f: impl FnOnce(&mut PluginSettings),
) -> ChannelPlugin {
    let mut s = settings(name, "hostile");
    s.config = config;
    f(&mut s);
    host.load_channel(s).unwrap()
}

/// A healthy plugin on `host` still delivers, at once.
fn healthy_delivers(host: &PluginHost) {
    let name = format!("healthy-{}", rand_suffix());
    let healthy = host.load_channel(settings(&name, "healthy")).unwrap();
    let t0 = Instant::now();
    assert_eq!(healthy.try_deliver(&alert()), Ok(Ok(())));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A server that accepts connections and never answers (holds each until the next arrives).
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
            if held.len() > 200 {
                held.remove(0);
            }
        }
    });
    addr
}

/// A server answering every request `200` after `delay`, each on its own thread.
fn slow_server(delay: Duration) -> String {
    answering_server(move |mut c| {
        thread::sleep(delay);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    })
}

/// A server that reads each request's head and then hands the connection to `answer`, each
/// on its own thread.
pub(crate) fn answering_server(
    answer: impl Fn(std::net::TcpStream) + Clone + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let answer = answer.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                answer(c);
            });
        }
    });
    addr
}

#[test]
fn unbounded_recursion_from_a_small_thread_stack_traps_and_the_host_lives() {
    let host = host(0);
    let guest = hostile(&host, "recurse", json!({ "mode": "recurse" }), |_| {});
    // A worker thread of an embedding service with a small stack: the guest runs on a stack
    // of its own, so this thread's size does not matter.
    let worker = thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || guest.try_deliver(&alert()))
        .unwrap();
    let r = worker.join().expect("the host's thread survived");
    match r {
        Err(PluginError::Trap { message, .. }) => {
            assert!(message.contains("call stack exhausted"), "{message}")
        }
        other => panic!("expected a stack-overflow trap, got {other:?}"),
    }
    healthy_delivers(&host);
}

#[test]
fn a_guest_sleeping_an_hour_is_ended_at_its_call_timeout() {
    let host = host(0);
    let sleeper = hostile(&host, "sleeper", json!({ "mode": "sleep" }), |s| {
        s.deadline = Duration::from_secs(2);
        s.call_timeout = Duration::from_secs(3);
    });
    let t0 = Instant::now();
    let r = sleeper.try_deliver(&alert());
    let took = t0.elapsed();
    assert!(matches!(r, Err(PluginError::CallTimeout { .. })), "{r:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    assert_eq!(sleeper.status().in_flight, 0);
    healthy_delivers(&host);
}

#[test]
fn re_requesting_a_host_that_never_answers_is_ended_at_the_call_timeout() {
    let host = host(0);
    let addr = silent_server();
    let looper = hostile(
        &host,
        "looper",
        json!({ "mode": "http-loop", "url": format!("http://{addr}/") }),
        |s| {
            s.allowed_hosts = vec![addr.clone()];
            s.http_timeout = Duration::from_millis(200);
            s.call_timeout = Duration::from_millis(1500);
        },
    );
    let t0 = Instant::now();
    let r = looper.try_deliver(&alert());
    assert!(matches!(r, Err(PluginError::CallTimeout { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    healthy_delivers(&host);
}

#[test]
fn a_granted_command_in_a_loop_stops_at_the_per_call_cap() {
    let host = host(0);
    let mut s = settings("looping-exec", "exec-action");
    s.deadline = Duration::from_secs(1);
    s.exec_grants = vec![ExecGrant::new("/bin/true", &[])];
    s.config = json!({ "command": "/bin/true", "repeat": 100_000 });
    let action = host.load_action(s).unwrap();
    let t0 = Instant::now();
    let r = action.try_run(&alert());
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    match r {
        Err(PluginError::Denied { detail, .. }) => {
            assert!(detail.contains("at most 8 command(s) per call"), "{detail}")
        }
        other => panic!("expected the cap's denial, got {other:?}"),
    }
    let runs = host
        .audit_log()
        .iter()
        .filter(|r| {
            r.plugin == "looping-exec" && r.outcome == vigilo_plugin_host::AuditOutcome::Exited
        })
        .count();
    assert_eq!(runs, 8, "eight processes, not thousands");
}

#[test]
fn waiting_on_many_requests_at_once_earns_no_compute_credit() {
    let host = host(0);
    let addr = slow_server(Duration::from_secs(1));
    let burst = hostile(
        &host,
        "burst",
        json!({ "mode": "burst-then-spin", "url": format!("http://{addr}/"), "count": 40 }),
        |s| {
            s.allowed_hosts = vec![addr.clone()];
            s.deadline = Duration::from_secs(1);
        },
    );
    let t0 = Instant::now();
    let r = burst.try_deliver(&alert());
    let took = t0.elapsed();
    // 40 concurrent one-second waits overlap: about 1 s blocked, then 1 s of spinning.
    assert!(matches!(r, Err(PluginError::Timeout { .. })), "{r:?}");
    assert!(
        took < Duration::from_secs(5),
        "{took:?}: blocked time was credited more than once"
    );
    healthy_delivers(&host);
}

#[test]
fn sleeping_calls_cannot_take_every_instance_slot() {
    let config = vigilo_plugin_host::PluginHostConfig {
        max_instances: 4,
        breaker_threshold: 0,
        cache_dir: Some(crate::common::cache_dir()),
        ..Default::default()
    };
    let host = PluginHost::new(config).unwrap();
    let sleeper = hostile(&host, "sleepy", json!({ "mode": "sleep" }), |s| {
        s.max_concurrent_calls = 2;
        s.call_timeout = Duration::from_secs(2);
    });
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let s = sleeper.clone();
            thread::spawn(move || s.try_deliver(&alert()))
        })
        .collect();
    // Two calls run, two are refused at once; a healthy plugin still gets a slot.
    let t0 = Instant::now();
    while sleeper.status().in_flight < 2 && t0.elapsed() < Duration::from_secs(10) {
        thread::yield_now();
    }
    healthy_delivers(&host);
    let results: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(PluginError::Busy { .. })))
        .count();
    let ended = results
        .iter()
        .filter(|r| matches!(r, Err(PluginError::CallTimeout { .. })))
        .count();
    assert_eq!((busy, ended), (2, 2), "{results:?}");
    // The slots came back at the call timeout.
    healthy_delivers(&host);
}

#[test]
fn oversized_exec_arguments_are_refused_before_they_are_audited() {
    let host = host(0);
    let mut s = settings("big-args", "exec-action");
    s.exec_grants = vec![ExecGrant::new("/bin/echo", &[".*"])];
    s.config = json!({ "command": "/bin/echo", "args": [], "big_args_mb": 18 });
    let action = host.load_action(s).unwrap();
    let r = action.try_run(&alert());
    match r {
        Err(PluginError::Denied { detail, .. }) => {
            assert!(detail.len() < 4096, "{} bytes", detail.len());
            assert!(detail.contains("at most 256 and 65536 bytes"), "{detail}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let record = host
        .audit_log()
        .into_iter()
        .rfind(|r| r.plugin == "big-args")
        .unwrap();
    assert!(
        record.args.is_empty(),
        "the arguments themselves are not kept"
    );
    assert_eq!((record.args_count, record.args_bytes), (1, 18 << 20));
}

#[test]
fn a_huge_error_from_the_guest_reaches_the_caller_cut() {
    let host = host(0);
    let guest = hostile(
        &host,
        "big-error",
        json!({ "mode": "big-error", "mb": 100 }),
        |s| {
            s.memory_limit = 200 << 20;
        },
    );
    match guest.try_deliver(&alert()) {
        Ok(Err(DeliveryError::Permanent(m))) => {
            assert!(m.len() < 4200, "{} bytes reached the caller", m.len());
            assert!(m.ends_with("bytes cut)"), "{}", &m[m.len() - 40..]);
        }
        other => panic!(
            "expected the guest's error, cut: {:?}",
            other.map(|r| r.map_err(|e| e.to_string().len()))
        ),
    }
}

#[test]
fn header_maps_a_guest_builds_are_bounded() {
    let host = host(0);
    let guest = hostile(&host, "headers", json!({ "mode": "headers" }), |_| {});
    let r = guest.try_deliver(&alert());
    match r {
        Ok(Err(DeliveryError::Permanent(m))) => {
            let kept: usize = m.split(' ').next().unwrap().parse().unwrap();
            assert!(kept <= 256, "{m}");
        }
        // Running out of resource slots may also trap the guest: bounded either way.
        Err(PluginError::Trap { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    healthy_delivers(&host);
}

#[test]
fn an_alert_cut_to_the_limits_that_faults_does_not_quarantine_the_plugin() {
    let host = host(3);
    let mut s = settings("small", "healthy");
    s.memory_limit = 4 << 20;
    let small = host.load_channel(s).unwrap();
    // 300 annotations of 100 KiB: cut to 256 of 64 KiB (16 MiB), more than the plugin's 4 MiB.
    let mut huge = alert();
    for i in 0..300 {
        huge.annotations
            .insert(format!("a{i:03}"), "z".repeat(100 << 10));
    }
    for _ in 0..5 {
        let r = small.try_deliver(&huge);
        assert!(
            matches!(
                r,
                Err(PluginError::MemoryExhausted { .. }) | Err(PluginError::Trap { .. })
            ),
            "{r:?}"
        );
    }
    let status = small.status();
    assert!(
        !status.quarantined && status.consecutive_faults == 0,
        "{status:?}"
    );
    assert_eq!(small.try_deliver(&alert()), Ok(Ok(())));
}

#[test]
fn lenient_authorities_are_refused_before_any_connection() {
    let host = host(0);
    let sink = HttpSink::start();
    let a = sink.host();
    let port = sink.addr.port();
    for url in [
        format!("http://user@{a}/"),
        format!("http://127.0.0.1:9@{a}/"),
        "http://127.0.0.1:105543/".to_owned(),
        "http://127.0.0.1:/".to_owned(),
    ] {
        let mut s = settings(&format!("lenient-{}", rand_suffix()), "http-get");
        s.allowed_hosts = vec![a.clone(), "127.0.0.1".into()];
        s.config = json!({ "url": url });
        let get = host.load_channel(s).unwrap();
        let r = get.try_deliver(&alert());
        assert!(
            matches!(
                &r,
                Err(PluginError::Denied { .. }) | Ok(Err(DeliveryError::Permanent(_)))
            ),
            "{url}: {r:?}"
        );
    }
    assert!(sink.drain().is_empty(), "nothing reached 127.0.0.1:{port}");
}

#[test]
fn a_host_name_is_resolved_once_and_the_request_keeps_its_name() {
    let host = host(0);
    let sink = HttpSink::start();
    let name = format!("localhost:{}", sink.addr.port());
    let mut s = settings("by-name", "http-get");
    s.allowed_hosts = vec![name.clone()];
    s.config = json!({ "url": format!("http://{name}/pinned") });
    let get = host.load_channel(s).unwrap();
    assert_eq!(get.try_deliver(&alert()), Ok(Ok(())));
    let r = sink.next();
    assert_eq!(r.path, "/pinned");
    assert_eq!(r.header("host"), Some(name.as_str()));
}

#[test]
fn exec_grants_can_end_options_and_refuse_non_ascii_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("show-args");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let host = host(0);
    let load = |name: &str, grant: ExecGrant, arg: &str| {
        let mut s = settings(name, "exec-action");
        s.exec_grants = vec![grant];
        s.config = json!({ "command": script.to_str().unwrap(), "args": [arg] });
        host.load_action(s).unwrap()
    };
    // `[a-z0-9-]+` lets an option through; `end_of_options` puts `--` before it.
    let mut guarded = ExecGrant::new(&script, &["[a-z0-9-]+"]);
    guarded.end_of_options = true;
    let out = load("guarded", guarded, "-rf")
        .try_run(&alert())
        .unwrap()
        .unwrap();
    assert_eq!(out.output_tail, "[--]\n[-rf]\n");
    // Full-width digits match `\d` in Unicode: refused by default, allowed if asked.
    let r = load("digits", ExecGrant::new(&script, &[r"\d+"]), "１２３").try_run(&alert());
    assert!(
        matches!(&r, Err(PluginError::Denied { detail, .. }) if detail.contains("outside ASCII")),
        "{r:?}"
    );
    let mut unicode = ExecGrant::new(&script, &[r"\d+"]);
    unicode.ascii_only = false;
    let out = load("unicode", unicode, "１２３")
        .try_run(&alert())
        .unwrap()
        .unwrap();
    assert_eq!(out.output_tail, "[１２３]\n");
}

#[test]
fn a_plugin_handle_used_from_inside_a_tokio_runtime_still_works() {
    let host = host(0);
    let healthy = Arc::new(
        host.load_channel(settings("in-runtime", "healthy"))
            .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h = Arc::clone(&healthy);
    let r = rt.block_on(async move { h.try_deliver(&alert()) });
    assert_eq!(r, Ok(Ok(())));
}
