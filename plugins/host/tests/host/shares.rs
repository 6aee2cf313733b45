//! Pool shares: with `max_instances = 4` and a plugin allowed `max_concurrent_calls = 4`, calls
//! of that plugin stuck in every call cannot take the instances the other plugins keep: they
//! go on delivering, one call each at least, while the stuck calls hold the rest.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use vigilo_plugin_host::{PluginError, PluginHost, PluginHostConfig};

use crate::common::{alert, settings};

fn small_host(max_instances: u32) -> PluginHost {
    PluginHost::new(PluginHostConfig {
        max_instances,
        breaker_threshold: 0,
        cache_dir: Some(crate::common::cache_dir()),
        ..PluginHostConfig::default()
    })
    .unwrap()
}

#[test]
fn a_plugin_stuck_in_every_call_cannot_starve_the_others() {
    let host = small_host(4);
    let mut s = settings("stuck", "hostile");
    s.config = json!({ "mode": "sleep" });
    s.max_concurrent_calls = 4;
    s.deadline = Duration::from_millis(250); // its calls end at 1 s (4 × the deadline)
    let stuck = host.load_channel(s).unwrap();
    let healthy: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| host.load_channel(settings(n, "healthy")).unwrap())
        .collect();

    // Four stuck calls at once, again and again for 2.5 s; meanwhile the others deliver.
    let until = Instant::now() + Duration::from_millis(2500);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let stuck = stuck.clone();
            thread::spawn(move || {
                let mut results = Vec::new();
                while Instant::now() < until {
                    let r = stuck.try_deliver(&alert());
                    if matches!(r, Err(PluginError::NoInstance { .. })) {
                        thread::sleep(Duration::from_millis(10));
                    }
                    results.push(r);
                }
                results
            })
        })
        .collect();
    let t0 = Instant::now();
    while stuck.status().in_flight == 0 && t0.elapsed() < Duration::from_secs(10) {
        thread::yield_now();
    }
    let mut delivered = 0;
    while Instant::now() < until {
        for p in &healthy {
            assert_eq!(p.try_deliver(&alert()), Ok(Ok(())), "{}", p.status().name);
            delivered += 1;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(delivered >= 30, "{delivered}");
    let results: Vec<_> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    // The stuck plugin ran in its own instance (and the one shared): never more.
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(PluginError::CallTimeout { .. }))),
        "{results:?}"
    );
    assert!(
        results.iter().all(|r| matches!(
            r,
            Err(PluginError::CallTimeout { .. } | PluginError::NoInstance { .. })
        )),
        "{results:?}"
    );
}

#[test]
fn loading_more_plugins_than_instances_is_reported_at_load() {
    crate::common::capture_logs();
    let host = small_host(2);
    host.load_channel(settings("one-of-two", "healthy"))
        .unwrap();
    host.load_channel(settings("two-of-two", "healthy"))
        .unwrap();
    assert!(crate::common::logged("plugin two-of-two: [plugins] max_instances").is_empty());
    let third = host
        .load_channel(settings("three-of-two", "healthy"))
        .unwrap();
    let warned = crate::common::logged("plugin three-of-two: [plugins] max_instances = 2");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].message.contains("3 plugins loaded"), "{warned:?}");
    // Nothing is stuck: each still delivers.
    assert_eq!(third.try_deliver(&alert()), Ok(Ok(())));
}
