//! A fleet (`docs/fleet.md`): two replicas of a service, each embedding its own vigilo monitor
//! started from its own configuration, see the same problem and send it through the bundled
//! Alertmanager plugin to one REAL Alertmanager, which deduplicates by labels: one alert, one
//! notification to the receiver (a loopback server this test starts). A problem of each
//! replica alone (its name is a label) stays one alert per replica. The first replica to
//! recover ends the shared alert; the second's resolve changes nothing.
//!
//! The replica configuration and `alertmanager.yml` are read from `docs/fleet.md` (blocks
//! marked `<!-- fleet-test: NAME -->`), so the page cannot drift from what is tested. The test
//! substitutes the loopback addresses and the replica's name, shortens Alertmanager's
//! `group_wait` and `group_interval` to 1 s, and gives both replicas one `[plugins] cache_dir`
//! (the second loads the plugin the first compiled). Alertmanager is a real process on the
//! wall clock: the waits are bounded, and the whole test takes about 7 s.

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

use crate::peers::{Alertmanager, HttpSink, WAIT, wait_for};

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
    fn start(replica_toml: &str, am: &Alertmanager, name: &str, cache: &Path) -> Replica {
        let text = substitute(replica_toml, "alertmanager:9093", &am.addr.to_string());
        let text = substitute(&text, "orders-api-1", name);
        // Not part of the page: the second replica reuses the first one's compiled plugin.
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

    /// Waits until the channel delivered a notification of each of `rules`.
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

#[test]
fn two_replicas_one_alert_one_notification() {
    let t0 = Instant::now();
    let page =
        std::fs::read_to_string(vigilo_plugin_build::repo_root().join("docs/fleet.md")).unwrap();

    let sink = HttpSink::start();
    let yml = block(&page, "alertmanager.yml");
    let yml = substitute(&yml, "http://pager.example/hook", &sink.url("/hook"));
    let yml = substitute(&yml, "group_wait: 30s", "group_wait: 1s");
    let yml = substitute(&yml, "group_interval: 5m", "group_interval: 1s");
    let am = Alertmanager::start(&yml);

    let replica_toml = block(&page, "replica.toml");
    let cache = tempfile::tempdir().unwrap();
    let one = Replica::start(&replica_toml, &am, "orders-api-1", cache.path());
    let two = Replica::start(&replica_toml, &am, "orders-api-2", cache.path());
    let started = t0.elapsed();

    // Both replicas see the backlog and their own memory use, replica 1 first.
    one.queue.set(5000.0);
    one.memory.set(3e9);
    one.delivered(&["queue-backlog", "memory-high"]);
    two.queue.set(4200.0);
    two.memory.set(3e9);
    two.delivered(&["queue-backlog", "memory-high"]);

    // Alertmanager holds one alert for the shared problem: the same labels from both replicas.
    let backlog = am.alerts("queue-backlog");
    assert_eq!(backlog.len(), 1, "{backlog:#?}\n{}", am.log());
    let shared_labels = json!({
        "alertname": "queue-backlog",
        "severity": "critical",
        "queue": "orders",
        "team": "orders",
        "service": "orders-api",
    });
    assert_eq!(backlog[0]["labels"], shared_labels);
    // Its annotations are those of the replica that sent last.
    assert_eq!(backlog[0]["annotations"]["replica"], "orders-api-2");
    assert_eq!(backlog[0]["annotations"]["summary"], "queue orders at 4200");
    // The replica's own problem: one alert per replica.
    let memory = am.alerts("memory-high");
    let replicas: BTreeSet<_> = memory
        .iter()
        .map(|a| a["labels"]["replica"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(memory.len(), 2, "{memory:#?}");
    assert_eq!(
        replicas,
        BTreeSet::from(["orders-api-1".into(), "orders-api-2".into()])
    );

    // The receiver: one notification of the shared problem, with one alert, after group_wait;
    // the memory alerts are one group, notified together.
    let mut inbox = Inbox {
        sink: &sink,
        received: Vec::new(),
    };
    let first = inbox.wait("queue-backlog", |_| true);
    assert_eq!(first["status"], "firing");
    assert_eq!(
        first["groupLabels"],
        json!({ "alertname": "queue-backlog", "service": "orders-api" })
    );
    assert_eq!(first["alerts"].as_array().unwrap().len(), 1, "{first:#}");
    assert_eq!(first["alerts"][0]["labels"], shared_labels);
    inbox.wait("memory-high", |n| {
        n["alerts"].as_array().unwrap().len() == 2
    });
    thread::sleep(QUIET);
    let backlog_notes = inbox.of("queue-backlog");
    assert_eq!(
        backlog_notes.len(),
        1,
        "one notification of the shared problem: {backlog_notes:#?}"
    );
    let fired = t0.elapsed();

    // Replica 1 recovers: its resolve ends the shared alert in Alertmanager, although replica
    // 2 still sees the backlog, and the receiver is told it is resolved.
    one.queue.set(10.0);
    one.delivered(&["queue-backlog"]);
    assert!(
        am.alerts("queue-backlog").is_empty(),
        "{:#?}",
        am.alerts("queue-backlog")
    );
    let open: Vec<_> = two
        .monitor
        .status()
        .unwrap()
        .incidents
        .into_iter()
        .filter(|i| &*i.item.rule == "queue-backlog")
        .collect();
    assert_eq!(open.len(), 1, "replica 2 still has its incident open");
    let resolved = inbox.wait("queue-backlog", |n| n["status"] == "resolved");
    assert_eq!(resolved["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(resolved["alerts"][0]["labels"], shared_labels);

    // Replica 2 recovers: nothing new for the receiver.
    two.queue.set(10.0);
    two.delivered(&["queue-backlog"]);
    thread::sleep(QUIET);
    let backlog_notes = inbox.of("queue-backlog");
    assert_eq!(
        backlog_notes.len(),
        2,
        "one firing, one resolved: {backlog_notes:#?}"
    );

    one.monitor.stop(Duration::from_secs(5)).unwrap();
    two.monitor.stop(Duration::from_secs(5)).unwrap();
    eprintln!(
        "fleet: started in {started:?}, fired and quiet at {fired:?}, done in {:?}",
        t0.elapsed()
    );
}
