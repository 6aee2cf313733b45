//! Hostile guests against the sandbox: each is stopped or refused with a typed error, and the
//! host keeps serving a healthy plugin beside it.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::{alert, guest, host, logged, settings, timed};
use vigilo::alert::{Channel, DeliveryError};
use vigilo::clock::{ManualClock, Timestamp};
use vigilo_plugin_host::{ChannelPlugin, PluginError, PluginHost, PluginHostConfig};

fn healthy(host: &PluginHost, name: &str) -> ChannelPlugin {
    host.load_channel(settings(name, "healthy")).unwrap()
}

fn assert_healthy(p: &ChannelPlugin) {
    assert_eq!(p.try_deliver(&alert()), Ok(Ok(())));
}

#[test]
fn a_healthy_channel_delivers() {
    let host = host(3);
    let p = healthy(&host, "healthy");
    assert_healthy(&p);
    assert_eq!(p.deliver(&alert()), Ok(()));
    let st = p.status();
    assert_eq!(st.version, "0.1.0");
    assert_eq!(st.sha256.len(), 64);
    assert!(!st.quarantined);
    assert_eq!(host.names(), vec!["healthy".to_owned()]);
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let host = host(0);
    let ok = healthy(&host, "ok");
    let mut s = settings("spin", "spin");
    s.deadline = Duration::from_millis(200);
    let spin = host.load_channel(s).unwrap();
    let (r, took) = timed(|| spin.try_deliver(&alert()));
    assert_eq!(
        r,
        Err(PluginError::Timeout {
            plugin: "spin".into(),
            deadline: Duration::from_millis(200)
        })
    );
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        matches!(spin.deliver(&alert()), Err(DeliveryError::Retryable(m)) if m.contains("deadline"))
    );
    assert_healthy(&ok);
}

#[test]
fn the_engine_keeps_serving_others_while_one_plugin_spins() {
    let host = host(0);
    let ok = healthy(&host, "ok");
    let mut s = settings("spin", "spin");
    s.deadline = Duration::from_millis(800);
    let spin = host.load_channel(s).unwrap();
    let spinner = thread::spawn(move || spin.try_deliver(&alert()));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let ok = ok.clone();
            thread::spawn(move || {
                for _ in 0..30 {
                    assert_healthy(&ok);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(matches!(
        spinner.join().unwrap(),
        Err(PluginError::Timeout { .. })
    ));
}

#[test]
fn endless_allocation_is_stopped_at_the_memory_cap() {
    let host = host(0);
    let ok = healthy(&host, "ok");
    let mut s = settings("hog", "hog");
    s.memory_limit = 16 << 20;
    let hog = host.load_channel(s).unwrap();
    assert_eq!(
        hog.try_deliver(&alert()),
        Err(PluginError::MemoryExhausted {
            plugin: "hog".into(),
            limit: 16 << 20
        })
    );
    assert_healthy(&ok);
}

#[test]
fn a_trap_is_reported() {
    let host = host(0);
    let ok = healthy(&host, "ok");
    let trap = host.load_channel(settings("trap", "trap")).unwrap();
    match trap.try_deliver(&alert()) {
        Err(PluginError::Trap { plugin, message }) => {
            assert_eq!(plugin, "trap");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(trap.deliver(&alert()).unwrap_err().is_retryable());
    assert_healthy(&ok);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    crate::common::capture_logs();
    let host = host(0);
    let ok = healthy(&host, "ok");
    let p = host.load_channel(settings("panicky", "panic")).unwrap();
    match p.try_deliver(&alert()) {
        Err(PluginError::Trap { message, .. }) => {
            assert!(
                message.contains("panics on purpose (rule cpu-high)"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let stderr = logged("plugin panicky stderr");
    assert!(
        stderr
            .iter()
            .any(|l| l.message.contains("panics on purpose")),
        "{stderr:?}"
    );
    assert_healthy(&ok);
}

#[test]
fn the_filesystem_is_not_there() {
    let host = host(0);
    let p = host.load_channel(settings("reader", "read-file")).unwrap();
    match p.try_deliver(&alert()) {
        Ok(Err(DeliveryError::Permanent(m))) => assert!(m.starts_with("read refused"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn raw_tcp_sockets_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let host = host(0);
    let mut s = settings("tcp", "tcp-connect");
    // Even a host on the HTTP allowlist is no reason to allow raw sockets.
    s.allowed_hosts = vec![format!("{addr}")];
    s.config = serde_json::json!({ "addr": addr.to_string() });
    let p = host.load_channel(s).unwrap();
    match p.try_deliver(&alert()) {
        Ok(Err(DeliveryError::Permanent(m))) => assert!(m.starts_with("connect refused"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(listener.accept().is_err(), "the guest reached the listener");
}

/// A one-shot HTTP server on loopback answering 200 to every request; counts connections.
fn http_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (addr, hits)
}

#[test]
fn http_reaches_an_allowed_host() {
    let (addr, hits) = http_server();
    let host = host(0);
    let mut s = settings("http-ok", "http-get");
    s.allowed_hosts = vec![addr.clone()];
    s.config = serde_json::json!({ "url": format!("http://{addr}/hook") });
    let p = host.load_channel(s).unwrap();
    assert_eq!(p.try_deliver(&alert()), Ok(Ok(())));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn http_to_a_host_not_allowed_is_denied() {
    let (addr, hits) = http_server();
    let host = host(0);
    let mut s = settings("http-denied", "http-get");
    s.allowed_hosts = vec!["hooks.example.com".into(), "127.0.0.1:1".into()];
    s.config = serde_json::json!({ "url": format!("http://{addr}/hook") });
    let p = host.load_channel(s).unwrap();
    match p.try_deliver(&alert()) {
        Err(PluginError::Denied { plugin, detail }) => {
            assert_eq!(plugin, "http-denied");
            assert!(detail.contains("not in the allowed_hosts"), "{detail}");
            assert!(detail.contains("HttpRequestDenied"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.deliver(&alert()),
        Err(DeliveryError::Permanent(_))
    ));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn an_allowed_host_that_never_answers_is_cut_off_by_the_request_timeout() {
    // Accepts, reads, never answers (the connections are kept open until the test ends).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let host = host(0);
    let mut s = settings("silent", "http-get");
    s.allowed_hosts = vec![addr.clone()];
    s.http_timeout = Duration::from_millis(400);
    // Shorter than the HTTP timeout: waiting on the network does not count as computing.
    s.deadline = Duration::from_millis(150);
    s.config = serde_json::json!({ "url": format!("http://{addr}/hook") });
    let p = host.load_channel(s).unwrap();
    let (r, took) = timed(|| p.try_deliver(&alert()));
    match r {
        Ok(Err(DeliveryError::Retryable(m))) => assert!(m.contains("Timeout"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn logs_and_output_are_capped_and_the_clock_is_the_host_s() {
    crate::common::capture_logs();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_234_567)));
    let config = PluginHostConfig {
        max_instances: 16,
        log_max_messages: 20,
        cache_dir: Some(crate::common::cache_dir()),
        ..PluginHostConfig::default()
    };
    let host = PluginHost::with_clock(config, clock).unwrap();
    let p = host.load_channel(settings("noisy", "noisy")).unwrap();
    assert_eq!(
        p.try_deliver(&alert()),
        Ok(Err(DeliveryError::Permanent("now-ms=1234567000".into())))
    );
    let said: Vec<_> = logged("plugin noisy: ")
        .into_iter()
        .filter(|l| !l.message.contains("log messages dropped"))
        .collect();
    assert_eq!(said.len(), 20, "log messages per call are capped");
    assert!(
        said.iter().all(|l| l.message.len() < 2200),
        "messages are cut"
    );
    assert!(
        said.iter()
            .any(|l| l.message.contains("noisy guest starts"))
    );
    assert!(!logged("plugin noisy: 9981 log messages dropped").is_empty());
    let out = logged("plugin noisy stdout");
    assert_eq!(out.len(), 1);
    assert!(
        out[0].message.contains("earlier bytes dropped")
            && out[0].message.ends_with("stdout-end-marker")
    );
    assert!(out[0].message.len() < 9 * 1024);
    assert!(
        logged("plugin noisy stderr")[0]
            .message
            .ends_with("stderr-end-marker")
    );
}

#[test]
fn repeated_faults_quarantine_and_a_reload_clears_it() {
    let host = host(3);
    let ok = healthy(&host, "ok");
    let trap = host.load_channel(settings("trap", "trap")).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            trap.try_deliver(&alert()),
            Err(PluginError::Trap { .. })
        ));
    }
    let st = trap.status();
    assert!(st.quarantined);
    assert_eq!(st.consecutive_faults, 3);
    let (r, took) = timed(|| trap.try_deliver(&alert()));
    match r {
        Err(PluginError::Quarantined {
            plugin,
            faults,
            last,
        }) => {
            assert_eq!((plugin.as_str(), faults), ("trap", 3));
            assert!(last.contains("unreachable"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        took < Duration::from_millis(50),
        "quarantined calls fail fast: {took:?}"
    );
    assert!(
        matches!(trap.deliver(&alert()), Err(DeliveryError::Permanent(m)) if m.contains("quarantined"))
    );
    assert_healthy(&ok);
    assert!(!ok.status().quarantined);

    host.reload("trap").unwrap();
    let st = host.status("trap").unwrap();
    assert!(!st.quarantined && st.consecutive_faults == 0);
    assert!(matches!(
        trap.try_deliver(&alert()),
        Err(PluginError::Trap { .. })
    ));
}

#[test]
fn ordinary_delivery_errors_do_not_trip_the_breaker() {
    let host = host(2);
    let p = host.load_channel(settings("reader", "read-file")).unwrap();
    for _ in 0..5 {
        assert!(matches!(p.try_deliver(&alert()), Ok(Err(_))));
    }
    assert!(!p.status().quarantined);
}

#[test]
fn reload_swaps_in_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.wasm");
    std::fs::copy(guest("healthy"), &path).unwrap();
    let host = host(3);
    let p = host
        .load_channel(vigilo_plugin_host::PluginSettings::new("swap", &path))
        .unwrap();
    assert_healthy(&p);
    let first = p.status().sha256;

    std::fs::copy(guest("trap"), &path).unwrap();
    assert_healthy(&p); // nothing changes until the reload
    host.reload("swap").unwrap();
    assert!(matches!(
        p.try_deliver(&alert()),
        Err(PluginError::Trap { .. })
    ));
    assert_ne!(p.status().sha256, first);

    // A broken file is refused and the running generation stays.
    std::fs::write(&path, b"not wasm").unwrap();
    assert!(host.reload("swap").is_err());
    assert!(matches!(
        p.try_deliver(&alert()),
        Err(PluginError::Trap { .. })
    ));

    std::fs::copy(guest("healthy"), &path).unwrap();
    host.reload("swap").unwrap();
    assert_healthy(&p);
    assert_eq!(host.channel("swap").map(|c| c.status().sha256), Some(first));
}

/// A host of `max_instances` (breaker at one fault) with a healthy plugin `ok` and a plugin
/// `spin` that spins for 600 ms per call.
fn healthy_and_spinning(max_instances: u32) -> (PluginHost, ChannelPlugin, ChannelPlugin) {
    let config = PluginHostConfig {
        max_instances,
        breaker_threshold: 1,
        cache_dir: Some(crate::common::cache_dir()),
        ..PluginHostConfig::default()
    };
    let host = PluginHost::new(config).unwrap();
    let ok = healthy(&host, "ok");
    let mut s = settings("spin", "spin");
    s.deadline = Duration::from_millis(600);
    let spin = host.load_channel(s).unwrap();
    (host, ok, spin)
}

#[test]
fn a_call_finding_no_free_instance_is_refused_at_once_and_is_not_a_fault() {
    // Two instances, two plugins: each keeps one, none is shared.
    let (_host, ok, spin) = healthy_and_spinning(2);
    let spinner = {
        let spin = spin.clone();
        thread::spawn(move || spin.try_deliver(&alert()))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while spin.status().in_flight == 0 && !spinner.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the spinning call never started"
        );
        thread::yield_now();
    }
    // A second call of the spinning plugin: its own instance is taken (by whichever of the two
    // got it first), and there is no shared one. The other plugin still has its own.
    let (second, took) = timed(|| spin.try_deliver(&alert()));
    assert_healthy(&ok);
    let first = spinner.join().unwrap();
    let (refused, ran) = match (&first, &second) {
        (_, Err(PluginError::NoInstance { .. })) => (second.clone(), first.clone()),
        (Err(PluginError::NoInstance { .. }), _) => (first.clone(), second.clone()),
        _ => panic!("no call was refused: {first:?}, {second:?}"),
    };
    assert!(matches!(ran, Err(PluginError::Timeout { .. })), "{ran:?}");
    match refused {
        Err(e @ PluginError::NoInstance { .. }) => {
            assert!(!e.is_fault());
            assert!(e.to_string().contains("max_instances = 2"), "{e}");
            assert!(DeliveryError::from(e).is_retryable());
        }
        other => panic!("{other:?}"),
    }
    if matches!(second, Err(PluginError::NoInstance { .. })) {
        assert!(
            took < Duration::from_millis(100),
            "refused at once: {took:?}"
        );
    }
    assert!(!ok.status().quarantined);
    assert_healthy(&ok);
}

#[test]
fn a_full_instance_pool_is_an_instantiation_error_not_a_fault() {
    let (host, ok, spin) = healthy_and_spinning(1);
    let start_spinner = || {
        let spin = spin.clone();
        thread::spawn(move || spin.try_deliver(&alert()))
    };
    let mut spinner = start_spinner();
    // The spinning call is in flight (its count says so), then holds the pool's one instance.
    // Until it has instantiated, a call of `ok` may take the instance and succeed, and the
    // spinner may then be the one refused: it ends at once, and another is started.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while host.status("spin").map_or(0, |s| s.in_flight) == 0 && !spinner.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the spinning call never started"
        );
        thread::yield_now();
    }
    let refused = loop {
        match ok.try_deliver(&alert()) {
            Ok(Ok(())) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the pool never filled"
                );
                if spinner.is_finished() {
                    let lost = spinner.join().unwrap();
                    assert!(
                        matches!(lost, Err(PluginError::Instantiate { .. })),
                        "{lost:?}"
                    );
                    spinner = start_spinner();
                }
                thread::yield_now();
            }
            other => break other,
        }
    };
    match refused {
        Err(PluginError::Instantiate { plugin, message }) => {
            assert_eq!(plugin, "ok");
            assert!(message.contains("limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ok.deliver(&alert()),
        Err(DeliveryError::Retryable(_))
    ));
    assert!(matches!(
        spinner.join().unwrap(),
        Err(PluginError::Timeout { .. })
    ));
    assert!(
        !ok.status().quarantined,
        "a full pool is not the plugin's fault"
    );
    assert_healthy(&ok);
}
