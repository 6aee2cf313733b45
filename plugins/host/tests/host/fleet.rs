//! A fleet (`docs/fleet.md`): three replicas of a service, each embedding its own vigilo monitor
//! started from its own configuration, see the same problem and send it through the bundled
//! Alertmanager plugin in fleet mode to a REAL cluster of two Alertmanagers (gossiping on
//! loopback), which deduplicate by labels: one alert, one notification to the receiver (a
//! loopback server this test starts). A problem of each replica alone (its name is a label)
//! stays one alert per replica and ends at that replica's resolve. The shared alert stays
//! active until the LAST replica recovers, then ends within `ends_after`. With one
//! Alertmanager stopped, alerts still arrive through the other.
//!
//! The replica configuration and `alertmanager.yml` are read from `docs/fleet.md` (blocks
//! marked `<!-- fleet-test: NAME -->`), so the page cannot drift from what is tested. The test
//! substitutes the loopback addresses and the replica's name, shortens the resend interval to
//! 1 s (so `ends_after` is 4 s) and Alertmanager's `group_wait` and `group_interval` to 1 s,
//! and gives the replicas one `[plugins] cache_dir` (the others load the plugin the first
//! compiled). Alertmanager is a real process on the wall clock: the waits are bounded, and the
//! whole test takes about 20 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigilo::config::Config;
use vigilo::metrics::Gauge;
use vigilo::monitor::Monitor;
use vigilo::pipeline::{Event, EventKind};

use crate::peers::{Alertmanager, HttpSink, WAIT, free_port, wait_for};

/// Longer than Alertmanager's `group_interval` here (1 s): a second notification of a group
/// would have come by then.
const QUIET: Duration = Duration::from_millis(1500);

/// The fenced block that follows `<!-- fleet-test: NAME -->` in the page.
fn block(page: &str, name: &str) -> String {
    let marker = format!("<!-- fleet-test: {name} -->");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/fleet.md has no block {marker}"));
    let rest = &page[at + marker.len()..];
    let open = rest.find("```").unwrap();
    let body_start = open + rest[open..].find('\n').unwrap() + 1;
    let close = rest[body_start..].find("\n```").unwrap();
    rest[body_start..body_start + close + 1].to_owned()
}

/// `text` with every `from` replaced by `to`; `from` must be there (the page changed if not).
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "docs/fleet.md's block no longer contains {from:?}:\n{text}"
    );
    text.replace(from, to)
}

/// One replica of the service: its own monitor, from its own configuration.
struct Replica {
    monitor: Monitor,
    /// The monitor's next event, waiting at most the given time.
    next_event: Box<dyn Fn(Duration) -> Option<Event>>,
    queue: Gauge,
    memory: Gauge,
}

impl Replica {
    fn start(replica_toml: &str, peers: [&Alertmanager; 2], name: &str, cache: &Path) -> Replica {
        let text = substitute(
            replica_toml,
            "alertmanager-0:9093",
            &peers[0].addr.to_string(),
        );
        let text = substitute(&text, "alertmanager-1:9093", &peers[1].addr.to_string());
        let text = substitute(&text, "orders-api-1", name);
        let text = substitute(&text, "\"1m\"", "\"1s\"");
        // Not part of the page: the replicas reuse the first one's compiled plugin.
        let text = format!(
            "[plugins]\ncache_dir = {:?}\n{text}",
            cache.display().to_string()
        );
        let config: Config = text.parse().unwrap_or_else(|e| panic!("{e}"));
        let loader = vigilo_plugin_host::loader(&config)
            .unwrap()
            .with_resolver(|name| {
                vigilo_plugin_build::build_guest(&format!("vigilo-{name}"))
                    .map_err(|e| e.to_string())
            });
        let monitor = Monitor::builder(config)
            .loader(Arc::new(loader))
            .without_host_items()
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let events = monitor.subscribe().unwrap();
        let next_event = Box::new(move |limit| events.recv_timeout(limit).ok());
        let registry = monitor.registry();
        let queue = registry
            .gauge("queue_depth", &[("queue", "orders")])
            .unwrap();
        let memory = registry
            .gauge("process_resident_memory_bytes", &[])
            .unwrap();
        Replica {
            monitor,
            next_event,
            queue,
            memory,
        }
    }

    /// Waits until the channel delivered a notification of each of `rules` (a repeat counts).
    fn delivered(&self, rules: &[&str]) {
        let mut left: BTreeSet<&str> = rules.iter().copied().collect();
        while !left.is_empty() {
            let e = (self.next_event)(WAIT)
                .unwrap_or_else(|| panic!("no delivery of {left:?} within {WAIT:?}"));
            assert!(
                !matches!(e.kind, EventKind::Failed | EventKind::Retrying),
                "{e:?}"
            );
            if e.kind == EventKind::Delivered {
                left.remove(e.rule.as_deref().unwrap_or_default());
            }
        }
    }

    /// Forgets the events so far (deliveries of earlier changes and repeats).
    fn drain(&self) {
        while (self.next_event)(Duration::ZERO).is_some() {}
    }

    /// Waits until the item of `rule` is resolved here (its incident closed).
    fn recovered(&self, rule: &str) {
        let open = wait_for(WAIT, || {
            let s = self.monitor.status().unwrap();
            (!s.incidents.iter().any(|i| &*i.item.rule == rule)).then_some(())
        });
        assert!(open.is_some(), "{rule} still open after {WAIT:?}");
    }
}

/// What Alertmanager sent to the receiver, in order.
struct Inbox<'a> {
    sink: &'a HttpSink,
    received: Vec<Value>,
}

impl Inbox<'_> {
    fn poll(&mut self) {
        self.received
            .extend(self.sink.drain().into_iter().map(|r| r.json()));
    }

    /// The notifications of the group of `alertname` so far.
    fn of(&mut self, alertname: &str) -> Vec<Value> {
        self.poll();
        self.received
            .iter()
            .filter(|n| n["groupLabels"]["alertname"] == alertname)
            .cloned()
            .collect()
    }

    /// Waits (at most [`WAIT`]) for a notification of `alertname`'s group that `pred` accepts.
    fn wait(&mut self, alertname: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(WAIT, || self.of(alertname).into_iter().find(|n| pred(n))).unwrap_or_else(|| {
            panic!(
                "no such notification of {alertname} within {WAIT:?}; received: {:#?}",
                self.received
            )
        })
    }
}

/// The alerts of `alertname` on both peers, once they agree on the label sets (each request
/// goes to one peer, then the other: a look in between may see them differ).
fn on_both(peers: [&Alertmanager; 2], alertname: &str) -> Vec<Value> {
    let labels =
        |v: &[Value]| -> BTreeSet<String> { v.iter().map(|a| a["labels"].to_string()).collect() };
    let agreed = wait_for(WAIT, || {
        let (a, b) = (peers[0].alerts(alertname), peers[1].alerts(alertname));
        (labels(&a) == labels(&b)).then_some(a)
    });
    agreed.unwrap_or_else(|| {
        panic!(
            "the peers disagree on {alertname}: {:#?}\n{:#?}",
            peers[0].alerts(alertname),
            peers[1].alerts(alertname)
        )
    })
}

#[test]
fn three_replicas_one_alert_until_the_last_recovers() {
    let t0 = Instant::now();
    let page =
        std::fs::read_to_string(vigilo_plugin_build::repo_root().join("docs/fleet.md")).unwrap();

    let sink = HttpSink::start();
    let yml = block(&page, "alertmanager.yml");
    let yml = substitute(&yml, "http://pager.example/hook", &sink.url("/hook"));
    let yml = substitute(&yml, "group_wait: 30s", "group_wait: 1s");
    let yml = substitute(&yml, "group_interval: 5m", "group_interval: 1s");
    let (g0, g1) = (free_port(), free_port());
    let am0 = Alertmanager::start_peer(&yml, g0, &[g1]);
    let am1 = Alertmanager::start_peer(&yml, g1, &[g0]);
    let peers = [&am0, &am1];

    let replica_toml = block(&page, "replica.toml");
    let cache = tempfile::tempdir().unwrap();
    let names = ["orders-api-1", "orders-api-2", "orders-api-3"];
    let replicas: Vec<Replica> = names
        .iter()
        .map(|n| Replica::start(&replica_toml, peers, n, cache.path()))
        .collect();
    let started = t0.elapsed();

    // Every replica sees the backlog and its own memory use.
    for (r, depth) in replicas.iter().zip([5000.0, 4200.0, 4600.0]) {
        r.queue.set(depth);
        r.memory.set(3e9);
        r.delivered(&["queue-backlog", "memory-high"]);
    }

    // Each Alertmanager holds one alert for the shared problem, promised to end ahead.
    let backlog = on_both(peers, "queue-backlog");
    assert_eq!(backlog.len(), 1, "{backlog:#?}\n{}", am0.log());
    let shared_labels = json!({
        "alertname": "queue-backlog",
        "severity": "critical",
        "queue": "orders",
        "team": "orders",
        "service": "orders-api",
    });
    assert_eq!(backlog[0]["labels"], shared_labels);
    assert!(
        backlog[0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("queue orders at ")
    );
    assert_eq!(
        backlog[0]["annotations"]["fingerprint"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    // The replica's own problem: one alert per replica.
    let memory = on_both(peers, "memory-high");
    let owners: BTreeSet<_> = memory
        .iter()
        .map(|a| a["labels"]["replica"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(owners, names.iter().map(|n| n.to_string()).collect());

    // The receiver: one notification of the shared problem, with one alert, from the cluster.
    let mut inbox = Inbox {
        sink: &sink,
        received: Vec::new(),
    };
    let first = inbox.wait("queue-backlog", |_| true);
    assert_eq!(first["status"], "firing");
    assert_eq!(first["alerts"].as_array().unwrap().len(), 1, "{first:#}");
    assert_eq!(first["alerts"][0]["labels"], shared_labels);
    inbox.wait("memory-high", |n| {
        n["alerts"].as_array().unwrap().len() == 3
    });
    let fired = t0.elapsed();

    // Replica 1 recovers. Its own memory alert ends at once; the shared alert outlives the end
    // replica 1 had promised (4 s), since the others keep re-sending it.
    replicas[0].queue.set(10.0);
    replicas[0].memory.set(1e9);
    replicas[0].recovered("queue-backlog");
    replicas[0].recovered("memory-high");
    let memory_left = wait_for(WAIT, || {
        let m = on_both(peers, "memory-high");
        (m.len() == 2).then_some(m)
    });
    assert!(memory_left.is_some(), "{:#?}", am0.alerts("memory-high"));
    thread::sleep(Duration::from_secs(5));
    assert_eq!(on_both(peers, "queue-backlog").len(), 1);

    // Replica 2 recovers: still active.
    replicas[1].queue.set(10.0);
    replicas[1].recovered("queue-backlog");
    thread::sleep(QUIET);
    assert_eq!(on_both(peers, "queue-backlog").len(), 1);
    let notes = inbox.of("queue-backlog");
    assert_eq!(
        notes.len(),
        1,
        "nothing new while replica 3 fires: {notes:#?}"
    );

    // The last recovers: the alert ends within `ends_after` (4 s), and the receiver is told.
    replicas[2].queue.set(10.0);
    replicas[2].recovered("queue-backlog");
    let last_recovered = Instant::now();
    let resolved = inbox.wait("queue-backlog", |n| n["status"] == "resolved");
    assert_eq!(resolved["alerts"][0]["labels"], shared_labels);
    assert!(on_both(peers, "queue-backlog").is_empty());
    let took = last_recovered.elapsed();
    assert!(took < Duration::from_secs(8), "resolved after {took:?}");
    let resolved_at = t0.elapsed();

    // One peer down: a new alert still arrives through the other, and the delivery succeeds.
    drop(am1);
    replicas[0].drain();
    replicas[0].memory.set(3e9);
    replicas[0].delivered(&["memory-high"]);
    let again = am0.alerts("memory-high");
    assert!(
        again
            .iter()
            .any(|a| a["labels"]["replica"] == "orders-api-1"),
        "{again:#?}"
    );
    inbox.wait("memory-high", |n| {
        n["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == "firing")
            .count()
            == 3
    });

    for r in replicas {
        r.monitor.stop(Duration::from_secs(5)).unwrap();
    }
    eprintln!(
        "fleet: started in {started:?}, fired at {fired:?}, resolved at {resolved_at:?} \
         (ends_after after the last recovery: {took:?}), done in {:?}",
        t0.elapsed()
    );
}
