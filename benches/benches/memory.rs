//! Memory per series: vigilo beside `metrics` (metrics-util's registry with atomic storage) and
//! `prometheus`, for counters, gauges and histograms, before and after recording, and with 64
//! threads recording at once (what a 32-core host running two recording threads per core pays;
//! vigilo leases up to 256 write slots, so this machine can measure it whatever its core count).
//!
//! Each figure is measured in a fresh child process: resident memory before and after creating
//! (and recording into) N series, divided by N. Run with
//! `cargo bench -p vigilo-benches --bench memory`; the figures go to
//! `target/criterion/vigilo-memory.json` for `benches/report.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is the bench failing

use std::process::Command;
use std::sync::{Arc, Barrier};

use metrics::{Key, Label};
use metrics_util::registry::{AtomicStorage, Registry as MetricsRegistry};

/// Runs `f(n)` (which must keep what it creates alive until it returns) and gives the growth in
/// resident memory per unit.
fn per(n: usize, f: impl FnOnce(usize) -> Box<dyn std::any::Any>) -> f64 {
    let before = vigilo_benches::rss_bytes();
    let kept = f(n);
    let after = vigilo_benches::rss_bytes();
    drop(kept);
    after.saturating_sub(before) as f64 / n as f64
}

fn label(i: usize) -> String {
    format!("{i:06}")
}

/// `threads` threads that each hold a write slot at the same time and run `record` once.
fn from_threads(threads: usize, record: impl Fn() + Send + Sync + 'static) {
    let record = Arc::new(record);
    let start = Arc::new(Barrier::new(threads));
    let done = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (record, start, done) =
                (Arc::clone(&record), Arc::clone(&start), Arc::clone(&done));
            std::thread::spawn(move || {
                start.wait();
                record();
                // Nobody exits (giving back its slot) before everybody has recorded.
                done.wait();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

const WAVE: [f64; 4] = [0.003, 0.012, 0.05, 0.2];

/// A vigilo registry with `n` series made (and recorded into) by `make`; the registry alone
/// keeps them (no handle is kept, as for the peers).
fn vigilo_series(n: usize, make: impl Fn(&vigilo::Registry, &str)) -> Box<dyn std::any::Any> {
    let r = vigilo::Registry::new();
    for i in 0..n {
        make(&r, &label(i));
    }
    Box::new(r)
}

fn measure(which: &str) -> f64 {
    match which {
        "vigilo/counter" => per(100_000, |n| {
            vigilo_series(n, |r, i| {
                r.counter("requests_total", &[("i", i)]).unwrap();
            })
        }),
        "vigilo/gauge" => per(100_000, |n| {
            vigilo_series(n, |r, i| {
                r.gauge("queue_depth", &[("i", i)]).unwrap();
            })
        }),
        "vigilo/histogram" => per(50_000, |n| {
            vigilo_series(n, |r, i| {
                r.histogram("latency_seconds", &[("i", i)]).unwrap();
            })
        }),
        "vigilo/counter, 1 thread recorded" => per(100_000, |n| {
            vigilo_series(n, |r, i| {
                r.counter("requests_total", &[("i", i)])
                    .unwrap()
                    .increment();
            })
        }),
        "vigilo/counter, 64 threads recorded" => per(10_000, |n| {
            let r = vigilo_series(n, |r, i| {
                r.counter("requests_total", &[("i", i)]).unwrap();
            });
            let registry = r.downcast_ref::<vigilo::Registry>().unwrap().clone();
            from_threads(64, move || {
                for i in 0..n {
                    registry
                        .add_counter("requests_total", &[("i", &label(i))], 1)
                        .unwrap();
                }
            });
            r
        }),
        "vigilo/histogram, 1 thread recorded" => per(20_000, |n| {
            vigilo_series(n, |r, i| {
                let h = r.histogram("latency_seconds", &[("i", i)]).unwrap();
                WAVE.iter().for_each(|&v| h.record(v));
            })
        }),
        "vigilo/histogram, 64 threads recorded" => per(1_000, |n| {
            let r = vigilo_series(n, |r, i| {
                r.histogram("latency_seconds", &[("i", i)]).unwrap();
            });
            let registry = r.downcast_ref::<vigilo::Registry>().unwrap().clone();
            from_threads(64, move || {
                for i in 0..n {
                    let h = registry
                        .histogram("latency_seconds", &[("i", &label(i))])
                        .unwrap();
                    WAVE.iter().for_each(|&v| h.record(v));
                }
            });
            r
        }),
        "metrics/counter" => per(100_000, |n| {
            let r = MetricsRegistry::new(AtomicStorage);
            for i in 0..n {
                let key = Key::from_parts("requests_total", vec![Label::new("i", label(i))]);
                r.get_or_create_counter(&key, |c| {
                    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                });
            }
            Box::new(r)
        }),
        "metrics/histogram" => per(50_000, |n| {
            let r = MetricsRegistry::new(AtomicStorage);
            for i in 0..n {
                let key = Key::from_parts("latency_seconds", vec![Label::new("i", label(i))]);
                r.get_or_create_histogram(&key, |h| WAVE.iter().for_each(|&v| h.push(v)));
            }
            Box::new(r)
        }),
        "prometheus/counter" => per(100_000, |n| {
            let vec = prometheus::IntCounterVec::new(
                prometheus::Opts::new("requests_total", "requests"),
                &["i"],
            )
            .unwrap();
            for i in 0..n {
                vec.with_label_values(&[label(i).as_str()]).inc();
            }
            Box::new(vec)
        }),
        "prometheus/histogram" => per(50_000, |n| {
            let vec = prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new("latency_seconds", "latency"),
                &["i"],
            )
            .unwrap();
            for i in 0..n {
                let h = vec.with_label_values(&[label(i).as_str()]);
                WAVE.iter().for_each(|&v| h.observe(v));
            }
            Box::new(vec)
        }),
        other => panic!("unknown measurement {other:?}"),
    }
}

const MEASUREMENTS: [&str; 11] = [
    "vigilo/counter",
    "vigilo/gauge",
    "vigilo/histogram",
    "vigilo/counter, 1 thread recorded",
    "vigilo/counter, 64 threads recorded",
    "vigilo/histogram, 1 thread recorded",
    "vigilo/histogram, 64 threads recorded",
    "metrics/counter",
    "metrics/histogram",
    "prometheus/counter",
    "prometheus/histogram",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        let which = args.get(i + 1).expect("--measure needs a name");
        println!("{}", measure(which));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list`: nothing to list for criterion's filter
    }
    let exe = std::env::current_exe().expect("own path");
    let mut json = Vec::new();
    println!("bytes per series (resident memory, each in a fresh process):");
    for which in MEASUREMENTS {
        let out = Command::new(&exe)
            .args(["--measure", which])
            .output()
            .expect("run a measurement");
        let text = String::from_utf8_lossy(&out.stdout);
        let bytes: f64 = text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{which}: {text} {}", String::from_utf8_lossy(&out.stderr)));
        println!("  {which:<42} {bytes:>10.0}");
        json.push(format!("\"{which}\":{bytes:.0}"));
    }
    let json = format!("{{{}}}", json.join(","));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("vigilo-memory.json"), json);
}
