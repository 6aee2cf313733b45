//! The evaluator: cost of a full sweep at 1k / 10k / 100k rules, memory per rule and per watched
//! series, and detection latency from the record call to the transition on the channel.
//!
//! Besides criterion's own output, this writes `target/criterion/vigilo-evaluator.json` with the
//! memory and latency figures for `benches/report.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use vigilo::clock::{Clock, ManualClock, SystemClock, Timestamp};
use vigilo::eval::{Evaluator, EvaluatorConfig};
use vigilo::rules::{Level, Matcher, Rule};
use vigilo::{Gauge, Registry, Severity};

/// `n` rules, each on its own gauge series `bench_value{i="k"}`, three levels, one with a duration.
fn setup(n: usize) -> (Evaluator, ManualClock, Vec<Gauge>) {
    let registry = Registry::new();
    let mut gauges = Vec::with_capacity(n);
    let mut rules = Vec::with_capacity(n);
    for k in 0..n {
        let id = k.to_string();
        let g = registry.gauge("bench_value", &[("i", &id)]).unwrap();
        g.set((k % 50) as f64);
        gauges.push(g);
        rules.push(
            Rule::builder(format!("r{k}"), "bench_value")
                .matcher(Matcher::parse("i", &id).unwrap())
                .level(Level::new(Severity::Warning, 70.0))
                .level(Level::new(Severity::Major, 80.0).hold_for(Duration::from_secs(60)))
                .level(Level::new(Severity::Critical, 95.0))
                .build()
                .unwrap(),
        );
    }
    let clock = ManualClock::new(Timestamp::from_secs(1_767_225_600));
    let (mut ev, rx) = Evaluator::new(
        registry,
        rules,
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    std::mem::forget(rx); // keep the channel open
    ev.tick(clock.now());
    (ev, clock, gauges)
}

fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluator_tick");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [1_000usize, 10_000, 100_000] {
        let (mut ev, clock, gauges) = setup(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                // Every series recorded since the last tick, as a live collector would.
                for (k, g) in gauges.iter().enumerate().step_by(97) {
                    g.set((k % 50) as f64);
                }
                clock.advance(Duration::from_secs(1));
                ev.tick(clock.now());
            });
        });
    }
    group.finish();
}

/// Resident memory and heap bytes per rule (with its series and item) at 100k rules, each on
/// its own gauge with two levels.
fn memory_per_rule() -> Memory {
    let n = 100_000;
    let before = vigilo_benches::rss_bytes();
    let registry = Registry::new();
    let gauges: Vec<Gauge> = (0..n)
        .map(|k| {
            registry
                .gauge("mem_value", &[("i", &k.to_string())])
                .unwrap()
        })
        .collect();
    let after_series = vigilo_benches::rss_bytes();
    let heap_before = counting::live();
    let rules: Vec<Rule> = (0..n)
        .map(|k| {
            Rule::builder(format!("r{k}"), "mem_value")
                .matcher(Matcher::parse("i", &k.to_string()).unwrap())
                .level(Level::new(Severity::Warning, 70.0))
                .level(Level::new(Severity::Critical, 95.0))
                .build()
                .unwrap()
        })
        .collect();
    let clock = ManualClock::new(Timestamp::from_secs(0));
    let (mut ev, _rx) = Evaluator::new(
        registry,
        rules,
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    for t in 0..5 {
        ev.tick(Timestamp::from_secs(t));
    }
    let after_rules = vigilo_benches::rss_bytes();
    let heap = counting::live() - heap_before;
    drop(gauges);
    Memory {
        per_series: (after_series - before) as f64 / n as f64,
        per_rule: (after_rules - after_series) as f64 / n as f64,
        heap_per_rule: heap as f64 / n as f64,
    }
}

/// Memory per rule at 100k rules.
struct Memory {
    /// Resident memory per series created in the registry.
    per_series: f64,
    /// Resident memory per rule: the rule, its evaluator state, its series' window, and what
    /// the allocator keeps besides (chunk headers, pages freed by binding's temporaries).
    per_rule: f64,
    /// Heap bytes held per rule, counted by the allocator: the rule and what the evaluator
    /// keeps for it.
    heap_per_rule: f64,
}

/// Record → transition on the channel, with the evaluator on its own thread (1 h tick, so only
/// the watch can deliver in time), and `loaded` other rules on their own gauges (normal, never
/// crossing). Returns sorted latencies.
fn detection_latencies(samples: usize, loaded: usize) -> Vec<Duration> {
    let registry = Registry::with_config(vigilo::RegistryConfig {
        max_series: loaded + 16,
    });
    let gauge = registry.gauge("latency_probe", &[]).unwrap();
    gauge.set(0.0);
    let mut rules = vec![
        Rule::builder("probe", "latency_probe")
            .level(Level::new(Severity::Critical, 0.5))
            .build()
            .unwrap(),
    ];
    let mut others = Vec::with_capacity(loaded);
    for k in 0..loaded {
        let id = k.to_string();
        let g = registry.gauge("other_value", &[("i", &id)]).unwrap();
        g.set(1.0);
        others.push(g);
        rules.push(
            Rule::builder(format!("r{k}"), "other_value")
                .matcher(Matcher::parse("i", &id).unwrap())
                .level(Level::new(Severity::Warning, 70.0))
                .level(Level::new(Severity::Critical, 95.0))
                .build()
                .unwrap(),
        );
    }
    let config = EvaluatorConfig {
        tick: Duration::from_secs(3600),
        ..EvaluatorConfig::default()
    };
    let (ev, rx) = Evaluator::new(registry, rules, Arc::new(SystemClock), config).unwrap();
    let handle = ev.spawn().unwrap();
    while handle.stats().unwrap().ticks == 0 {
        std::thread::yield_now();
    }
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let v = if i % 2 == 0 { 1.0 } else { 0.0 };
        let start = Instant::now();
        gauge.set(v);
        rx.recv_timeout(Duration::from_secs(5)).expect("transition");
        out.push(start.elapsed());
    }
    drop(handle);
    out.sort();
    out
}

fn detection(c: &mut Criterion) {
    let mut group = c.benchmark_group("detection_latency");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("record_to_transition", |b| {
        b.iter_custom(|iters| detection_latencies(iters as usize, 0).iter().sum());
    });
    group.finish();
}

fn extra_figures(_c: &mut Criterion) {
    let lat = detection_latencies(4000, 0);
    let pct =
        |q: f64| lat[((q * lat.len() as f64) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    // The same with 100,000 other rules loaded (issue 15, point 5).
    let loaded = detection_latencies(4000, 100_000);
    let pct_loaded = |q: f64| {
        loaded[((q * loaded.len() as f64) as usize).min(loaded.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "vigilo-evaluator: detection with 100,000 other rules loaded: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pct_loaded(0.50),
        pct_loaded(0.99),
        loaded.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
    let Memory {
        per_series,
        per_rule,
        heap_per_rule,
    } = memory_in_child();
    let json = format!(
        "{{\"detection_p50_us\":{:.1},\"detection_p99_us\":{:.1},\"detection_max_us\":{:.1},\
         \"bytes_per_series\":{per_series:.0},\"bytes_per_rule\":{per_rule:.0},\
         \"heap_bytes_per_rule\":{heap_per_rule:.0}}}",
        pct(0.50),
        pct(0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
    println!("vigilo-evaluator: {json}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("vigilo-evaluator.json"), json);
}

/// Runs [`memory_per_rule`] in a fresh copy of this process, so no memory freed by an earlier
/// measurement is reused and hides what the evaluator takes.
fn memory_in_child() -> Memory {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .env(MEMORY_CHILD, "1")
        .output()
        .expect("run the memory measurement");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok());
    match (figures.next(), figures.next(), figures.next()) {
        (Some(per_series), Some(per_rule), Some(heap_per_rule)) => Memory {
            per_series,
            per_rule,
            heap_per_rule,
        },
        _ => panic!(
            "memory measurement printed {text:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Set in the child that only measures memory.
const MEMORY_CHILD: &str = "VIGILO_BENCH_EVALUATOR_MEMORY";

criterion_group!(benches, extra_figures, sweep, detection);

fn main() {
    if std::env::var_os(MEMORY_CHILD).is_some() {
        let m = memory_per_rule();
        println!(
            "{:.0} {:.0} {:.0}",
            m.per_series, m.per_rule, m.heap_per_rule
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// Counts the heap bytes the program holds, for the heap figure of the memory measurement
/// (two relaxed atomic adds per allocation: the sweep allocates nothing, so its timings are not
/// touched; detection latency includes a few allocations).
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    /// Bytes allocated and not yet freed. Relaxed: a statistic read after the work is done on
    /// the same thread, ordering nothing else.
    static LIVE: AtomicIsize = AtomicIsize::new(0);

    pub fn live() -> isize {
        LIVE.load(Ordering::Relaxed)
    }

    struct Counting;

    // SAFETY: every call forwards to the system allocator with the same arguments; the
    // counter is a side statistic.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
            // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
            // SAFETY: `p` came from `alloc` above with layout `l`, i.e. from `System`.
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static A: Counting = Counting;
}
