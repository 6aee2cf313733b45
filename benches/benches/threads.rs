//! Recording from many more threads than cores (issue 15, point 5): one counter and one
//! histogram, recorded by N threads at once for N = 1, 2, 4, 8, 16, 64, 256, beside `metrics`
//! and `prometheus`, and the `ideal` row (each thread a private padded cell, nothing shared:
//! the machine's ceiling). Figures are time per operation of the combined throughput
//! ([`per_op_time`]: fresh threads released together by a barrier, wall time from the first
//! start to the last end, divided by the thread count).

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics::Key;
use vigilo_benches::{lognormal_latencies, per_op_time, write_on_cpu_report};

#[path = "common/peers.rs"]
mod peers;
use peers::{AtomicRecorder, Padded};

const THREADS: [usize; 7] = [1, 2, 4, 8, 16, 64, 256];
const SAMPLES: usize = 4096;
const MASK: usize = SAMPLES - 1;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("setup failed: {e}"))
}

fn counter(c: &mut Criterion) {
    let registry = vigilo::Registry::new();
    let ours = ok(registry.counter("requests_total", &[]));
    let recorder = AtomicRecorder::new();
    let theirs = metrics::with_local_recorder(&recorder, || metrics::counter!("requests_total"));
    let prom = ok(prometheus::IntCounter::new("requests_total", "requests"));
    let ideal: Vec<Padded> = (0..256).map(|_| Padded(AtomicU64::new(0))).collect();

    let mut group = c.benchmark_group("record_threads_counter");
    for threads in THREADS {
        let id = |lib: &str| format!("record_threads_counter/{lib}/{threads}");
        group.bench_with_input(BenchmarkId::new("ideal", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&id("ideal"), t, iters, |thread, n| {
                    let cell = &ideal[thread].0;
                    for _ in 0..n {
                        let cell = black_box(cell);
                        // Relaxed: a private cell, one writer, read by nobody during the run.
                        cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    }
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("vigilo", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&id("vigilo"), t, iters, |_, n| {
                    for _ in 0..n {
                        black_box(&ours).increment();
                    }
                })
            })
        });
        // The same with every thread holding its cell before any starts its loop: each records
        // once, then waits for all the others (the wait is inside the timed span, a small part
        // of it), so N threads are alive and leased for the whole loop.
        group.bench_with_input(
            BenchmarkId::new("vigilo_all_alive", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    let all = std::sync::Barrier::new(t);
                    per_op_time(&id("vigilo_all_alive"), t, iters, |_, n| {
                        ours.increment();
                        all.wait();
                        for _ in 1..n {
                            black_box(&ours).increment();
                        }
                    })
                })
            },
        );
        // Thread-bound handles (`Counter::local`), every thread holding its cell for the whole
        // loop as in `vigilo_all_alive`.
        group.bench_with_input(
            BenchmarkId::new("vigilo_local", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    let all = std::sync::Barrier::new(t);
                    per_op_time(&id("vigilo_local"), t, iters, |_, n| {
                        let local = ours.local();
                        all.wait();
                        for _ in 0..n {
                            black_box(&local).increment();
                        }
                    })
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("metrics", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&id("metrics"), t, iters, |_, n| {
                    for _ in 0..n {
                        black_box(&theirs).increment(1);
                    }
                })
            })
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_op_time(&id("prometheus"), t, iters, |_, n| {
                        for _ in 0..n {
                            black_box(&prom).inc();
                        }
                    })
                })
            },
        );
    }
    group.finish();
}

fn histogram(c: &mut Criterion) {
    let values = lognormal_latencies(SAMPLES);
    let values = &values[..];
    let registry = vigilo::Registry::new();
    let ours = ok(registry.histogram("request_duration_seconds", &[]));
    let recorder = AtomicRecorder::new();
    let theirs = metrics::with_local_recorder(&recorder, || {
        metrics::histogram!("request_duration_seconds")
    });
    let bucket = recorder.histogram_bucket(&Key::from_static_name("request_duration_seconds"));
    let prom = ok(prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("request_duration_seconds", "request latency"),
    ));
    let ideal: Vec<Padded> = (0..256).map(|_| Padded(AtomicU64::new(0))).collect();

    let mut group = c.benchmark_group("record_threads_histogram");
    for threads in THREADS {
        let id = |lib: &str| format!("record_threads_histogram/{lib}/{threads}");
        group.bench_with_input(BenchmarkId::new("ideal", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                // The ideal histogram: a private cell per thread summing the values (no buckets).
                per_op_time(&id("ideal"), t, iters, |thread, n| {
                    let cell = &ideal[thread].0;
                    let start = thread * 7;
                    for i in start..start + n as usize {
                        let v = black_box(values[i & MASK]);
                        // Relaxed: as in the counter's ideal row.
                        let sum = f64::from_bits(cell.load(Ordering::Relaxed)) + v;
                        cell.store(sum.to_bits(), Ordering::Relaxed);
                    }
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("vigilo", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&id("vigilo"), t, iters, |thread, n| {
                    let start = thread * 7;
                    for i in start..start + n as usize {
                        ours.record(black_box(values[i & MASK]));
                    }
                })
            })
        });
        group.bench_with_input(
            BenchmarkId::new("vigilo_all_alive", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    let all = std::sync::Barrier::new(t);
                    per_op_time(&id("vigilo_all_alive"), t, iters, |thread, n| {
                        let start = thread * 7;
                        ours.record(values[start & MASK]);
                        all.wait();
                        for i in start + 1..start + n as usize {
                            ours.record(black_box(values[i & MASK]));
                        }
                    })
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("metrics", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                let d = per_op_time(&id("metrics"), t, iters, |thread, n| {
                    let start = thread * 7;
                    for i in start..start + n as usize {
                        theirs.record(black_box(values[i & MASK]));
                    }
                });
                // An exporter drains the raw values on every scrape; here between samples.
                bucket.clear();
                d
            })
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_op_time(&id("prometheus"), t, iters, |thread, n| {
                        let start = thread * 7;
                        for i in start..start + n as usize {
                            prom.observe(black_box(values[i & MASK]));
                        }
                    })
                })
            },
        );
    }
    group.finish();
    if let Err(e) = write_on_cpu_report() {
        eprintln!("threads: cannot write the on-CPU report: {e}");
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = counter, histogram
}
criterion_main!(benches);
