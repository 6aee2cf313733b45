//! The default wall-clock bound of a call is tied to its compute deadline
//! (`vigilo::plugin::CALL_TIMEOUT_FACTOR` × `deadline`), not a fixed 30 s: a guest that sleeps,
//! one that re-requests a slow header in a loop, and one reading a body trickled a byte at a
//! time each end within deadline × the factor, with no `call_timeout` set.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use vigilo::plugin::CALL_TIMEOUT_FACTOR;
use vigilo_plugin_host::{PluginError, PluginHost};

use crate::common::{alert, host, settings};
use crate::hostile::answering_server;

/// The compute deadline of these tests: the bound is four times this.
const DEADLINE: Duration = Duration::from_millis(250);
/// Scheduling slack on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(700);

/// Runs the hostile guest in `config`'s mode with only a deadline set, and checks that the
/// call ended at its default wall bound (not later, and not by its compute deadline).
fn ends_within_the_bound(host: &PluginHost, name: &str, config: serde_json::Value, allow: &str) {
    let mut s = settings(name, "hostile");
    s.config = config;
    s.deadline = DEADLINE;
    s.allowed_hosts = vec![allow.to_owned()];
    assert!(s.call_timeout.is_zero(), "the default, not an override");
    let guest = host.load_channel(s).unwrap();
    let bound = DEADLINE * CALL_TIMEOUT_FACTOR;
    let t0 = Instant::now();
    let r = guest.try_deliver(&alert());
    let took = t0.elapsed();
    assert!(took <= bound + SLACK, "{name}: {took:?}, bound {bound:?}");
    match r {
        Err(PluginError::CallTimeout { limit, .. }) => assert_eq!(limit, bound),
        // The trickled body may instead end by its own budget, also within the bound.
        Ok(Err(e)) if name == "trickle" => assert!(e.is_retryable(), "{e}"),
        other => panic!("{name}: expected the call's wall bound, got {other:?}"),
    }
    assert_eq!(guest.status().in_flight, 0);
}

/// Answers with a head promising 100 000 bytes, then sends one byte every 50 ms (well within
/// the between-bytes timeout) for a minute.
fn trickle(mut c: std::net::TcpStream) {
    let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
    for _ in 0..1200 {
        if c.write_all(b"x").is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sleeping_guest_ends_within_the_deadline_times_the_factor() {
    let host = host(0);
    ends_within_the_bound(&host, "sleeper", json!({ "mode": "sleep" }), "127.0.0.1:9");
}

#[test]
fn a_guest_re_requesting_a_slow_header_ends_within_the_deadline_times_the_factor() {
    // The head comes after 3 s (within the default 5 s http_timeout): each request waits.
    let addr = answering_server(|mut c| {
        thread::sleep(Duration::from_secs(3));
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    });
    let host = host(0);
    let config = json!({ "mode": "http-loop", "url": format!("http://{addr}/") });
    ends_within_the_bound(&host, "slow-head", config, &addr);
}

#[test]
fn a_body_trickled_a_byte_at_a_time_ends_within_the_deadline_times_the_factor() {
    let addr = answering_server(trickle);
    let host = host(0);
    let config = json!({ "mode": "read-body", "url": format!("http://{addr}/") });
    ends_within_the_bound(&host, "trickle", config, &addr);
}

#[test]
fn a_trickled_body_has_a_total_time_budget_even_under_a_long_call_timeout() {
    // The operator allows long calls; the body still ends within its own budget
    // (`http_timeout` from its head), as a failed read the guest sees, not a hung call.
    let addr = answering_server(trickle);
    let host = host(0);
    let mut s = settings("trickle-budget", "hostile");
    s.config = json!({ "mode": "read-body", "url": format!("http://{addr}/") });
    s.allowed_hosts = vec![addr.clone()];
    s.call_timeout = Duration::from_secs(60);
    s.http_timeout = Duration::from_millis(600);
    let guest = host.load_channel(s).unwrap();
    let t0 = Instant::now();
    let r = guest.try_deliver(&alert());
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(600) + SLACK, "{took:?}");
    match r {
        Ok(Err(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected a failed read, got {other:?}"),
    }
}
