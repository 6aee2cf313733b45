//! The alert pipeline, measured end to end with real parts: a gauge `set` crosses a threshold,
//! the evaluator (woken by the watch, no tick) reports the transition, the pipeline routes it,
//! and the bundled webhook plugin in its sandbox POSTs it to an HTTP server on loopback
//! (`tiny_http`, in this process, timestamping each request as it arrives).
//!
//! 1. **Crossing → webhook latency**: 1,000 crossings one at a time (500 up to Warning, 500
//!    back to Normal: each is a notification), timed from the `set` call to the request's
//!    arrival. Goals: p50 ≤ 1 ms, p99 ≤ 5 ms. The same with a native (in-process) channel
//!    splits the plugin's HTTP from the rest.
//! 2. **Storm**: 10,000 items cross in one tick, ungrouped (10,000 notifications) and grouped
//!    by rule (one digest): time until the receiver has everything, that nothing is lost (one
//!    request per idempotency key), peak memory, and the evaluator's detection latency for a
//!    probe item crossing in the middle of the storm, against the same probe with no storm.
//!
//! Run with `cargo bench -p vigilo-benches --bench pipeline` (builds the webhook plugin on first
//! use). It prints `pipeline:` lines; BENCHMARKS.md has the latest.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use vigilo::Registry;
use vigilo::alert::{Alert, Channel, DeliveryError};
use vigilo::clock::SystemClock;
use vigilo::config::Config;
use vigilo::eval::{Evaluator, Transition};
use vigilo::monitor::PluginLoader;
use vigilo::pipeline::Store;
use vigilo::pipeline::{OnCorrupt, Pipeline, PluginSource, SqliteStore};

/// One request as the receiver saw it: when, and its idempotency key.
struct Arrival {
    at: Instant,
    key: String,
}

/// A loopback HTTP server (tiny_http) answering 204 and reporting each request's arrival.
struct Receiver_ {
    addr: String,
    arrivals: Receiver<Arrival>,
    server: Arc<tiny_http::Server>,
}

impl Receiver_ {
    fn start() -> Receiver_ {
        let server =
            Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}")));
        let addr = server
            .server_addr()
            .to_ip()
            .map_or_else(String::new, |a| a.to_string());
        let (tx, rx): (Sender<Arrival>, _) = crossbeam_channel::unbounded();
        for _ in 0..4 {
            let (server, tx) = (Arc::clone(&server), tx.clone());
            thread::spawn(move || {
                while let Ok(mut r) = server.recv() {
                    let at = Instant::now();
                    let key = r
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Idempotency-Key"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default();
                    let mut sink = std::io::sink();
                    let _ = std::io::copy(r.as_reader(), &mut sink);
                    let _ = r.respond(tiny_http::Response::empty(204));
                    let _ = tx.send(Arrival { at, key });
                }
            });
        }
        Receiver_ {
            addr,
            arrivals: rx,
            server,
        }
    }
}

impl Drop for Receiver_ {
    fn drop(&mut self) {
        for _ in 0..4 {
            self.server.unblock();
        }
    }
}

/// A native channel reporting when `deliver` is called.
struct Native(Sender<Instant>);

impl Channel for Native {
    fn name(&self) -> &str {
        "native"
    }
    fn deliver(&self, _: &Alert) -> Result<(), DeliveryError> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
}

fn config(receiver: &Receiver_, workers: usize, group: bool) -> Config {
    let group = if group {
        "group_by = [\"storm\"]\ngroup_wait = \"1s\"\ngroup_interval = \"10s\""
    } else {
        ""
    };
    let text = format!(
        r#"
        [evaluator]
        tick = "1s"
        channel_capacity = 20000
        [registry]
        max_series = 200000

        [[rule]]
        name = "probe"
        metric = "probe"
        [rule.warning]
        threshold = 100

        [[channel]]
        name = "webhook"
        plugin = "webhook"
        allowed_hosts = ["{addr}"]
        workers = {workers}
        config = {{ url = "http://{addr}/alerts" }}
        [[channel]]
        name = "native"

        [[route]]
        name = "native"
        match = {{ via = "native" }}
        channels = ["native"]
        repeat_interval = "0s"
        [[route]]
        name = "web"
        channels = ["webhook"]
        repeat_interval = "0s"
        {group}
        "#,
        addr = receiver.addr,
    );
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Evaluator and pipeline wired by hand, with a forwarder between them that timestamps each
/// transition as the evaluator hands it over (the detection time, free of the pipeline's queue).
struct Rig {
    registry: Registry,
    _evaluator: vigilo::eval::EvaluatorHandle,
    pipeline: Pipeline,
    detected: Receiver<(Instant, Transition)>,
    _stop: Arc<AtomicBool>,
}

fn rig(config: Config, native: Sender<Instant>, forward: bool) -> Rig {
    rig_on(config, native, forward, None)
}

/// As [`rig`], with the pipeline's state in the SQLite file `db` (or in memory).
fn rig_on(
    config: Config,
    native: Sender<Instant>,
    forward: bool,
    db: Option<&std::path::Path>,
) -> Rig {
    let wasm = vigilo_plugin_build::build_guest("vigilo-webhook").unwrap_or_else(|e| panic!("{e}"));
    let loader = vigilo_plugin_host::loader(&config)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_resolver(move |_| Ok(wasm.clone()));
    let registry = Registry::with_config(config.registry.clone());
    let (evaluator, transitions) = Evaluator::new(
        registry.clone(),
        config.rules.clone(),
        Arc::new(SystemClock),
        config.evaluator.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let webhook_cfg = config
        .pipeline
        .channel("webhook")
        .unwrap_or_else(|| panic!("webhook"));
    let webhook = loader
        .load_channel(
            &PluginSource::Bundled("webhook".into()),
            &webhook_cfg.plugin,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (to_pipeline, from_forwarder) = crossbeam_channel::unbounded();
    let (detected_tx, detected) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    thread::spawn(move || {
        while let Ok(t) = transitions.recv() {
            let _ = detected_tx.send((Instant::now(), t.clone()));
            if !forward {
                continue;
            }
            if to_pipeline.send(t).is_err() || flag.load(Ordering::Relaxed) {
                break;
            }
        }
    });
    let mut builder = Pipeline::builder(config.pipeline.clone())
        .channel(webhook)
        .channel(Arc::new(Native(native)));
    if let Some(db) = db {
        builder = builder.store(Box::new(
            SqliteStore::open(
                db,
                OnCorrupt::Refuse,
                1_000_000,
                Duration::from_secs(86_400),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    let pipeline = builder
        .start(from_forwarder)
        .unwrap_or_else(|e| panic!("{e}"));
    let evaluator = evaluator.spawn().unwrap_or_else(|e| panic!("{e}"));
    Rig {
        registry,
        _evaluator: evaluator,
        pipeline,
        detected,
        _stop: stop,
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn latency(db: Option<&std::path::Path>) {
    let receiver = Receiver_::start();
    let (native_tx, native_rx) = crossbeam_channel::unbounded();
    let rig = rig_on(config(&receiver, 1, false), native_tx, true, db);
    let state = if db.is_some() {
        "state in a SQLite file"
    } else {
        "state in memory"
    };
    let probe = rig
        .registry
        .gauge("probe", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let native = rig
        .registry
        .gauge("probe", &[("via", "native")])
        .unwrap_or_else(|e| panic!("{e}"));
    probe.set(50.0);
    native.set(50.0);
    // Let the evaluator bind and arm both series.
    thread::sleep(Duration::from_millis(1500));
    let n = 1000;
    let mut webhook = Vec::with_capacity(n);
    let mut detect = Vec::with_capacity(n);
    let mut inproc = Vec::with_capacity(n);
    // Warm-up: a few crossings not counted.
    for i in 0..(n + 20) {
        let value = if i % 2 == 0 { 150.0 } else { 50.0 };
        let t0 = Instant::now();
        probe.set(value);
        let arrival = receiver
            .arrivals
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("crossing {i} never reached the receiver"));
        let (seen, _) = rig
            .detected
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let t1 = Instant::now();
        native.set(value);
        let called = native_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = rig.detected.recv_timeout(Duration::from_secs(10));
        if i >= 20 {
            webhook.push(arrival.at.duration_since(t0));
            detect.push(seen.duration_since(t0));
            inproc.push(called.duration_since(t1));
        }
    }
    println!(
        "pipeline: crossing -> webhook received (bundled webhook plugin, loopback HTTP, {state}): p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us over {n} crossings (goal p50 <= 1000 us, p99 <= 5000 us)",
        us(pct(&mut webhook, 0.5)),
        us(pct(&mut webhook, 0.9)),
        us(pct(&mut webhook, 0.99)),
        us(pct(&mut webhook, 1.0)),
    );
    println!(
        "pipeline: of which record -> transition handed over by the evaluator: p50 {:.0} us, p99 {:.0} us",
        us(pct(&mut detect, 0.5)),
        us(pct(&mut detect, 0.99)),
    );
    println!(
        "pipeline: crossing -> native channel called (no plugin, no HTTP, {state}): p50 {:.0} us, p99 {:.0} us",
        us(pct(&mut inproc, 0.5)),
        us(pct(&mut inproc, 0.99)),
    );
    // For benches/report.py's goal table.
    let store = if db.is_some() { "file" } else { "memory" };
    let figures = [
        ("webhook_p50_us", us(pct(&mut webhook, 0.5))),
        ("webhook_p99_us", us(pct(&mut webhook, 0.99))),
        ("webhook_max_us", us(pct(&mut webhook, 1.0))),
        ("transition_p50_us", us(pct(&mut detect, 0.5))),
        ("native_p50_us", us(pct(&mut inproc, 0.5))),
        ("native_p99_us", us(pct(&mut inproc, 0.99))),
    ]
    .map(|(k, v)| (format!("{store}/{k}"), v));
    if let Err(e) = vigilo_benches::merge_figures("vigilo-pipeline.json", &figures) {
        eprintln!("pipeline: could not write vigilo-pipeline.json: {e}");
    }
    drop(rig.pipeline);
}

fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The largest resident set seen by a thread sampling every 5 ms until dropped.
struct PeakRss {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(vm("VmRSS:"));
                thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        PeakRss {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// Sets `gauge` over its threshold and returns how long the evaluator took to hand the
/// transition over (other transitions arriving meanwhile are skipped).
fn detect(rig: &Rig, gauge: &vigilo::Gauge, item: &str) -> Option<Duration> {
    let t0 = Instant::now();
    gauge.set(150.0);
    let give_up = t0 + Duration::from_secs(30);
    while Instant::now() < give_up {
        if let Ok((at, t)) = rig.detected.recv_timeout(Duration::from_secs(1))
            && t.labels.get("item") == Some(item)
        {
            return Some(at.duration_since(t0));
        }
    }
    None
}

/// How the storm is handled.
#[derive(Clone, Copy, PartialEq)]
enum Storm {
    /// One notification per item.
    Ungrouped,
    /// One digest for all.
    Grouped,
    /// The evaluator alone: its transitions are dropped (the reference for detection).
    NoPipeline,
}

fn storm(mode: Storm) {
    const ITEMS: usize = 10_000;
    const PROBES: usize = 15;
    let receiver = Receiver_::start();
    let (native_tx, _native_rx) = crossbeam_channel::unbounded();
    let rig = rig(
        config(&receiver, 2, mode == Storm::Grouped),
        native_tx,
        mode != Storm::NoPipeline,
    );
    let gauges: Vec<_> = (0..ITEMS)
        .map(|i| {
            rig.registry
                .gauge("probe", &[("item", &i.to_string()), ("storm", "yes")])
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for g in &gauges {
        g.set(50.0);
    }
    // Probes: the quiet ones are alone in their group, the others join the storm's.
    let probe = |name: String, storm: &str| {
        let g = rig
            .registry
            .gauge("probe", &[("item", &name), ("storm", storm)])
            .unwrap_or_else(|e| panic!("{e}"));
        g.set(50.0);
        (name, g)
    };
    let quiet: Vec<_> = (0..PROBES)
        .map(|i| probe(format!("quiet-{i}"), "no"))
        .collect();
    let during: Vec<_> = (0..PROBES)
        .map(|i| probe(format!("during-{i}"), "yes"))
        .collect();
    thread::sleep(Duration::from_millis(2500));
    let mut quiet_times: Vec<Duration> = quiet
        .iter()
        .filter_map(|(name, g)| {
            let d = detect(&rig, g, name);
            thread::sleep(Duration::from_millis(20));
            d
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    while rig.detected.try_recv().is_ok() {}
    while receiver.arrivals.try_recv().is_ok() {}

    let rss_before = vm("VmRSS:");
    let peak = PeakRss::start();
    let started = Instant::now();
    for g in &gauges {
        g.set(150.0);
    }
    // While the pipeline routes and delivers the storm: does detection suffer?
    thread::sleep(Duration::from_millis(300));
    let mut during_times: Vec<Duration> = during
        .iter()
        .filter_map(|(name, g)| {
            let d = detect(&rig, g, name);
            thread::sleep(Duration::from_millis(50));
            d
        })
        .collect();
    let show = |v: &mut Vec<Duration>| {
        if v.is_empty() {
            "not seen".to_owned()
        } else {
            format!(
                "p50 {:.0} us, max {:.0} us",
                us(pct(v, 0.5)),
                us(pct(v, 1.0))
            )
        }
    };
    let detection = format!(
        "evaluator detection (set -> transition handed over, {PROBES} probes each): {} before the storm; {} while the storm is handled (from 300 ms after it, 50 ms apart)",
        show(&mut quiet_times),
        show(&mut during_times),
    );
    if mode == Storm::NoPipeline {
        let _ = peak.finish();
        println!("pipeline: storm of {ITEMS} items, no pipeline (reference): {detection}");
        return;
    }
    // Ungrouped: one per item and one per probe; grouped: one digest.
    let expected = if mode == Storm::Grouped {
        1
    } else {
        ITEMS + PROBES
    };
    let mut keys = HashSet::new();
    let mut requests = 0;
    let mut last = started;
    while keys.len() < expected {
        match receiver.arrivals.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => {
                requests += 1;
                keys.insert(a.key);
                last = a.at;
            }
            Err(_) => break,
        }
    }
    let took = last.duration_since(started);
    let peak = peak.finish();
    let stats = rig.pipeline.stats().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "pipeline: storm of {ITEMS} items crossing at once, {}: {} of {expected} notification(s) received ({requests} requests, {} distinct idempotency keys), the last {:.2} s after the first set; peak RSS growth {:.1} MiB; pipeline totals: {} delivered, {} failed, {} transitions; {detection}",
        if mode == Storm::Grouped {
            "grouped (group_wait 1 s)"
        } else {
            "ungrouped, webhook with 2 workers"
        },
        keys.len(),
        keys.len(),
        took.as_secs_f64(),
        (peak.saturating_sub(rss_before)) as f64 / (1 << 20) as f64,
        stats.delivered,
        stats.failed,
        stats.transitions,
    );
}

/// Notifications per second through the outbox to one channel: 10,000 transitions handed to
/// the pipeline at once, each an incident notified through a native channel (no plugin, no
/// I/O), so the figure is the pipeline's and the store's; then the database's size.
fn outbox(db: Option<&std::path::Path>) {
    const N: usize = 10_000;
    let text = r#"
        [[channel]]
        name = "native"
        [[route]]
        name = "all"
        channels = ["native"]
        repeat_interval = "0s"
    "#;
    let config: Config = text.parse().unwrap_or_else(|e| panic!("{e}"));
    let (tx, delivered) = crossbeam_channel::unbounded();
    let mut builder = Pipeline::builder(config.pipeline).channel(Arc::new(Native(tx)));
    if let Some(db) = db {
        builder = builder.store(Box::new(
            SqliteStore::open(
                db,
                OnCorrupt::Refuse,
                1_000_000,
                Duration::from_secs(86_400),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    let (input, transitions) = crossbeam_channel::unbounded();
    let pipeline = builder.start(transitions).unwrap_or_else(|e| panic!("{e}"));
    let now = vigilo::clock::Timestamp::from_secs(1_800_000_000);
    let started = Instant::now();
    for i in 0..N {
        let _ = input.send(Transition {
            rule: Arc::from("storm"),
            metric: Arc::from("storm"),
            labels: vigilo::Labels::from_pairs(&[("item", &i.to_string())]),
            rule_labels: Default::default(),
            from: vigilo::Severity::Normal,
            to: vigilo::Severity::Warning,
            value: Some(1.0),
            threshold: Some(0.5),
            since: now,
            at: now,
            no_data: false,
            flapping: false,
            annotations: Default::default(),
        });
    }
    for _ in 0..N {
        let _ = delivered.recv_timeout(Duration::from_secs(60));
    }
    let took = started.elapsed();
    let _ = pipeline.settle(Duration::from_secs(30));
    let events = pipeline.stats().map(|s| s.delivered).unwrap_or_default();
    let _ = pipeline.stop(Duration::from_secs(5));
    let size = db.and_then(|p| SqliteStore::open_shared(p).ok()?.size_bytes().ok());
    let history = db.and_then(|p| {
        SqliteStore::open_shared(p)
            .ok()?
            .history(&vigilo::pipeline::HistoryQuery::latest(usize::MAX >> 1))
            .ok()
            .map(|h| h.len())
    });
    println!(
        "pipeline: outbox throughput ({}): {N} notifications delivered in {:.2} s: {:.0} per second ({events} delivered){}",
        if db.is_some() {
            "SQLite file"
        } else {
            "SQLite in memory"
        },
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64(),
        match (size, history) {
            (Some(size), Some(h)) if h > 0 => format!(
                "; database {:.1} MiB for {h} events and {N} incidents: {:.2} MiB per 10,000 events",
                size as f64 / (1 << 20) as f64,
                size as f64 / (1 << 20) as f64 / h as f64 * 10_000.0
            ),
            _ => String::new(),
        }
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters like criterion would.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if run("latency") {
        latency(None);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        latency(Some(&dir.path().join("latency.db")));
    }
    if run("outbox") {
        outbox(None);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        outbox(Some(&dir.path().join("outbox.db")));
    }
    if run("storm") {
        storm(Storm::NoPipeline);
        storm(Storm::Ungrouped);
        storm(Storm::Grouped);
    }
}
