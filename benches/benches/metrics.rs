//! vigilo's metrics recording side by side with the `metrics` crate (with a real recorder:
//! `metrics-util`'s `Registry<Key, AtomicStorage>`, the storage the exporters build on) and the
//! `prometheus` crate. Each comparison is one criterion group, so one run gives every figure.
//!
//! Run with `cargo bench -p vigilo-benches --bench metrics`, then `python3 benches/report.py`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics::{Key, Recorder};
use vigilo_benches::{lognormal_latencies, per_op_time};

#[path = "common/peers.rs"]
mod peers;
use peers::{AtomicRecorder, Padded};

/// Thread counts for the scaling benchmarks.
const THREADS: [usize; 2] = [1, 2];
/// Latency sample size (a power of two: indexed with a mask).
const SAMPLES: usize = 4096;
const MASK: usize = SAMPLES - 1;

fn vigilo_ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("vigilo setup failed: {e}"))
}

fn prom_ok<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("prometheus setup failed: {e}"))
}

/// 1. Counter increment through a pre-resolved handle, one thread.
fn counter_increment(c: &mut Criterion) {
    let registry = vigilo::Registry::new();
    let vigilo_counter = vigilo_ok(registry.counter("requests_total", &[("route", "/api")]));

    let recorder = AtomicRecorder::new();
    let metrics_counter = metrics::with_local_recorder(
        &recorder,
        || metrics::counter!("requests_total", "route" => "/api"),
    );

    let prom_registry = prometheus::Registry::new();
    let prom_counter = prom_ok(prometheus::IntCounter::new("requests_total", "requests"));
    prom_ok(prom_registry.register(Box::new(prom_counter.clone())));

    let mut group = c.benchmark_group("counter_increment");
    group.bench_function("vigilo", |b| {
        b.iter(|| black_box(&vigilo_counter).increment())
    });
    group.bench_function("metrics", |b| {
        b.iter(|| black_box(&metrics_counter).increment(1))
    });
    group.bench_function("prometheus", |b| b.iter(|| black_box(&prom_counter).inc()));
    group.finish();
}

/// 2. One counter incremented from 1 and from 2 threads at once; figures are time per increment
///    of the combined throughput (see [`per_op_time`]).
///
///    `ideal` is the machine's ceiling for this workload: each thread does the same relaxed
///    load + store vigilo's exclusive path does, into a private cache-padded cell, with no
///    thread-local lookup and nothing shared.
fn counter_threads(c: &mut Criterion) {
    let registry = vigilo::Registry::new();
    let vigilo_counter = vigilo_ok(registry.counter("requests_total", &[]));

    let recorder = AtomicRecorder::new();
    let metrics_counter =
        metrics::with_local_recorder(&recorder, || metrics::counter!("requests_total"));

    let prom_counter = prom_ok(prometheus::IntCounter::new("requests_total", "requests"));

    let ideal = [Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))];

    let mut group = c.benchmark_group("counter_threads");
    for threads in THREADS {
        group.bench_with_input(BenchmarkId::new("ideal", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(
                    &format!("counter_threads/ideal/{t}"),
                    t,
                    iters,
                    |thread, n| {
                        let cell = &ideal[thread % ideal.len()].0;
                        for _ in 0..n {
                            let cell = black_box(cell);
                            cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        }
                    },
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("vigilo", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&format!("counter_threads/vigilo/{t}"), t, iters, |_, n| {
                    for _ in 0..n {
                        black_box(&vigilo_counter).increment();
                    }
                })
            })
        });
        // The thread-bound handle (`Counter::local`), made by each thread before its loop.
        group.bench_with_input(
            BenchmarkId::new("vigilo_local", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_op_time(
                        &format!("counter_threads/vigilo_local/{t}"),
                        t,
                        iters,
                        |_, n| {
                            let local = vigilo_counter.local();
                            for _ in 0..n {
                                black_box(&local).increment();
                            }
                        },
                    )
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("metrics", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(&format!("counter_threads/metrics/{t}"), t, iters, |_, n| {
                    for _ in 0..n {
                        black_box(&metrics_counter).increment(1);
                    }
                })
            })
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_op_time(
                        &format!("counter_threads/prometheus/{t}"),
                        t,
                        iters,
                        |_, n| {
                            for _ in 0..n {
                                black_box(&prom_counter).inc();
                            }
                        },
                    )
                })
            },
        );
    }
    group.finish();
}

/// 3. Histogram record of realistic latencies, cycled from a precomputed log-normal sample,
///    from 1 and from 2 threads (each thread starts at its own offset in the sample).
fn histogram_record(c: &mut Criterion) {
    let values = lognormal_latencies(SAMPLES);
    let values = &values[..];
    let offset = |thread: usize| thread * (SAMPLES / 2 + 7);

    let registry = vigilo::Registry::new();
    let vigilo_hist = vigilo_ok(registry.histogram("request_duration_seconds", &[]));

    let recorder = AtomicRecorder::new();
    let metrics_hist = metrics::with_local_recorder(&recorder, || {
        metrics::histogram!("request_duration_seconds")
    });
    let metrics_bucket =
        recorder.histogram_bucket(&Key::from_static_name("request_duration_seconds"));

    let prom_hist = prom_ok(prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("request_duration_seconds", "request latency"),
    ));

    let mut group = c.benchmark_group("histogram_record");
    for threads in THREADS {
        group.bench_with_input(BenchmarkId::new("vigilo", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                per_op_time(
                    &format!("histogram_record/vigilo/{t}"),
                    t,
                    iters,
                    |thread, n| {
                        let base = offset(thread);
                        for i in 0..n as usize {
                            black_box(&vigilo_hist).record(values[(base + i) & MASK]);
                        }
                    },
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("metrics", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                let elapsed = per_op_time(
                    &format!("histogram_record/metrics/{t}"),
                    t,
                    iters,
                    |thread, n| {
                        let base = offset(thread);
                        for i in 0..n as usize {
                            black_box(&metrics_hist).record(values[(base + i) & MASK]);
                        }
                    },
                );
                // An exporter drains the bucket on every scrape; do it between samples (untimed)
                // so memory stays bounded.
                metrics_bucket.clear();
                elapsed
            })
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    per_op_time(
                        &format!("histogram_record/prometheus/{t}"),
                        t,
                        iters,
                        |thread, n| {
                            let base = offset(thread);
                            for i in 0..n as usize {
                                black_box(&prom_hist).observe(values[(base + i) & MASK]);
                            }
                        },
                    )
                })
            },
        );
    }
    group.finish();
}

/// 4. Record by name with three labels on an existing series (no handle).
fn record_by_name(c: &mut Criterion) {
    const LABELS: [(&str, &str); 3] = [("method", "GET"), ("route", "/api"), ("status", "200")];

    let registry = vigilo::Registry::new();
    vigilo_ok(registry.add_counter("http_requests_total", &LABELS, 1));

    let recorder = AtomicRecorder::new();

    let prom_vec = prom_ok(prometheus::IntCounterVec::new(
        prometheus::Opts::new("http_requests_total", "requests"),
        &["method", "route", "status"],
    ));
    prom_vec.with_label_values(&["GET", "/api", "200"]).inc();

    let mut group = c.benchmark_group("record_by_name");
    group.bench_function("vigilo", |b| {
        b.iter(|| {
            black_box(&registry).add_counter(
                "http_requests_total",
                &[("method", "GET"), ("route", "/api"), ("status", "200")],
                1,
            )
        })
    });
    // The call-site cached macro: the same series, the values as a program would pass them.
    let (method, route, status) = (
        String::from("GET"),
        String::from("/api"),
        String::from("200"),
    );
    let handle_of: &vigilo::Registry = &registry;
    group.bench_function("vigilo_macro", |b| {
        b.iter(|| {
            vigilo::counter!(
                black_box(handle_of),
                "http_requests_total",
                "method" => black_box(&method),
                "route" => black_box(&route),
                "status" => black_box(&status)
            )
            .increment()
        })
    });
    group.bench_function("metrics", |b| {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("http_requests_total", "method" => "GET", "route" => "/api", "status" => "200")
                .increment(1);
            b.iter(|| {
                metrics::counter!("http_requests_total", "method" => "GET", "route" => "/api", "status" => "200")
                    .increment(1)
            })
        })
    });
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            black_box(&prom_vec)
                .with_label_values(&["GET", "/api", "200"])
                .inc()
        })
    });
    group.finish();
}

/// 5. Watch cost: a gauge `set` on an unarmed series vs on an armed one whose bounds the values do
///    not cross.
fn gauge_watch(c: &mut Criterion) {
    let registry = vigilo::Registry::new();
    let unarmed = vigilo_ok(registry.gauge("cpu_usage_percent", &[("core", "0")]));
    let armed = vigilo_ok(registry.gauge("cpu_usage_percent", &[("core", "1")]));
    // An evaluator with a rule on core 1 only arms that series (bound: above 95).
    let rule = vigilo_ok(
        vigilo::rules::Rule::builder("cpu", "cpu_usage_percent")
            .matcher(vigilo_ok(vigilo::rules::Matcher::parse("core", "1")))
            .level(vigilo::rules::Level::new(vigilo::Severity::Critical, 95.0))
            .build(),
    );
    let clock = vigilo::clock::ManualClock::new(vigilo::clock::Timestamp::from_secs(0));
    let (mut evaluator, transitions) = vigilo_ok(vigilo::eval::Evaluator::new(
        registry.clone(),
        vec![rule],
        std::sync::Arc::new(clock),
        vigilo::eval::EvaluatorConfig::default(),
    ));
    evaluator.tick(vigilo::clock::Timestamp::from_secs(0));
    // Values between the bounds, varied so no branch predictor sees a constant.
    let values: Vec<f64> = (0..64).map(|i| 20.0 + f64::from(i)).collect();
    let values = &values[..];

    let mut group = c.benchmark_group("gauge_watch");
    for (name, gauge) in [("unarmed", &unarmed), ("armed", &armed)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters as usize {
                    black_box(gauge).set(values[i & 63]);
                }
                start.elapsed()
            })
        });
    }
    group.finish();

    // The armed watch never fired: the values stayed inside its bounds.
    evaluator.poll(vigilo::clock::Timestamp::from_secs(1));
    let stats = evaluator.stats();
    assert_eq!((stats.watch_wakeups, stats.watch_events_dropped), (0, 0));
    assert!(transitions.is_empty());
}

// The C side of `c_api` (benches/c/c_api.c, built by build.rs).
unsafe extern "C" {
    /// `iters` calls of the header's inline `vigilo_local_counter_add(local, 1)`, compiled by a C
    /// compiler.
    fn vigilo_bench_local_counter_add(local: *const vigilo_c::vigilo_local_counter, iters: u64);
    /// 1 if the header's inline path was compiled for this platform.
    fn vigilo_bench_local_counter_inline() -> std::ffi::c_int;
}

/// 6. The C API's record calls against the Rust handle's: `vigilo_counter_add` and
///    `vigilo_histogram_record` called through function pointers (as a C program calls them,
///    not inlined), and the thread-bound counter's `vigilo_local_counter_add`, inline in the
///    header, in a loop a C compiler built (`c_local`); on handles from a monitor that is
///    created but not started. The Rust handles: `Counter::add` (`rust`, the goal's peer) and
///    the thread-bound `LocalCounter::add` (`rust_local`).
fn c_api(c: &mut Criterion) {
    use vigilo_c::{
        vigilo_counter, vigilo_histogram, vigilo_monitor, vigilo_monitor_counter,
        vigilo_monitor_histogram, vigilo_monitor_new, vigilo_status,
    };
    let config = "[host]\nitems = []\n";
    let mut monitor: *mut vigilo_monitor = std::ptr::null_mut();
    let mut counter: *mut vigilo_counter = std::ptr::null_mut();
    let mut histogram: *mut vigilo_histogram = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths; the out-parameters are written on success.
    unsafe {
        let ok = vigilo_status::Ok;
        assert_eq!(
            vigilo_monitor_new(
                config.as_ptr().cast(),
                config.len(),
                std::ptr::null(),
                &mut monitor
            ),
            ok
        );
        assert_eq!(
            vigilo_monitor_counter(
                monitor,
                c"requests_total".as_ptr(),
                std::ptr::null(),
                0,
                &mut counter
            ),
            ok
        );
        assert_eq!(
            vigilo_monitor_histogram(
                monitor,
                c"latency_seconds".as_ptr(),
                std::ptr::null(),
                0,
                &mut histogram
            ),
            ok
        );
    }
    let add: unsafe extern "C" fn(*const vigilo_counter, u64) = vigilo_c::vigilo_counter_add;
    let record: unsafe extern "C" fn(*const vigilo_histogram, f64) =
        vigilo_c::vigilo_histogram_record;
    let registry = vigilo::Registry::new();
    let rust_counter = vigilo_ok(registry.counter("requests_total", &[]));
    let rust_histogram = vigilo_ok(registry.histogram("latency_seconds", &[]));
    let values = vigilo_benches::lognormal_latencies(SAMPLES);
    let mut group = c.benchmark_group("c_api");
    group.bench_function("counter_add/c", |b| {
        // SAFETY: a live handle.
        b.iter(|| unsafe { black_box(add)(black_box(counter), 1) })
    });
    group.bench_function("counter_add/rust", |b| {
        b.iter(|| black_box(&rust_counter).add(1))
    });
    let mut local: *mut vigilo_c::vigilo_local_counter = std::ptr::null_mut();
    // SAFETY: a live counter handle; `local` is written on success.
    assert_eq!(
        unsafe { vigilo_c::vigilo_counter_local(counter, &mut local) },
        vigilo_status::Ok
    );
    // SAFETY: no arguments.
    assert_eq!(
        unsafe { vigilo_bench_local_counter_inline() },
        1,
        "the header's inline path is not compiled on this platform"
    );
    group.bench_function("counter_add/c_local", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            // SAFETY: a live handle, used on the thread that made it.
            unsafe { vigilo_bench_local_counter_add(local, iters) };
            start.elapsed()
        })
    });
    let rust_local = rust_counter.local();
    group.bench_function("counter_add/rust_local", |b| {
        b.iter(|| black_box(&rust_local).add(1))
    });
    let mut i = 0usize;
    group.bench_function("histogram_record/c", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            // SAFETY: a live handle.
            unsafe { black_box(record)(black_box(histogram), values[i & (SAMPLES - 1)]) }
        })
    });
    group.bench_function("histogram_record/rust", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(&rust_histogram).record(values[i & (SAMPLES - 1)]);
        })
    });
    group.finish();
    // SAFETY: handles from above, freed once.
    unsafe {
        vigilo_c::vigilo_local_counter_free(local);
        vigilo_c::vigilo_counter_free(counter);
        vigilo_c::vigilo_histogram_free(histogram);
        vigilo_c::vigilo_monitor_free(monitor);
    }
}

/// 7. The `metrics` facade: code instrumented with `metrics::counter!` recording into vigilo
///    through `vigilo::facade::RegistryRecorder`, against the same macros recording into the
///    `metrics` peer above (`metrics-util`'s registry). `macro`: the macro at every call (the
///    recorder looks the key up each time); `handle`: the handle the macro returned, kept.
fn facade_counter(c: &mut Criterion) {
    let vigilo_recorder = vigilo::facade::RegistryRecorder::new(vigilo::Registry::new());
    // The macro lands in vigilo's registry (checked once, whatever the filter runs).
    metrics::with_local_recorder(&vigilo_recorder, || {
        metrics::counter!("requests_total", "route" => "/api").increment(1)
    });
    let landed = vigilo_recorder
        .registry()
        .counter("requests_total", &[("route", "/api")]);
    assert_eq!(vigilo_ok(landed).value(), 1);
    let peer_recorder = AtomicRecorder::new();
    let recorders: [(&str, &dyn Recorder); 2] =
        [("vigilo", &vigilo_recorder), ("metrics", &peer_recorder)];

    let mut group = c.benchmark_group("facade_counter");
    for (name, recorder) in recorders {
        group.bench_function(BenchmarkId::new(name, "macro"), |b| {
            metrics::with_local_recorder(recorder, || {
                b.iter(|| metrics::counter!("requests_total", "route" => "/api").increment(1))
            })
        });
        group.bench_function(BenchmarkId::new(name, "handle"), |b| {
            metrics::with_local_recorder(recorder, || {
                let counter = metrics::counter!("requests_total", "route" => "/api");
                b.iter(|| black_box(&counter).increment(1))
            })
        });
    }
    group.finish();
}

/// 8. As 7, for a histogram: realistic latencies cycled from a precomputed sample. The peer's
///    bucket is drained between samples (untimed), as in 3.
fn facade_histogram(c: &mut Criterion) {
    static LABELS: [metrics::Label; 1] = [metrics::Label::from_static_parts("route", "/api")];
    let values = lognormal_latencies(SAMPLES);
    let values = &values[..];

    let vigilo_recorder = vigilo::facade::RegistryRecorder::new(vigilo::Registry::new());
    let peer_recorder = AtomicRecorder::new();
    let peer_bucket = peer_recorder
        .histogram_bucket(&Key::from_static_parts("request_duration_seconds", &LABELS));
    let recorders: [(&str, &dyn Recorder); 2] =
        [("vigilo", &vigilo_recorder), ("metrics", &peer_recorder)];

    let mut group = c.benchmark_group("facade_histogram");
    for (name, recorder) in recorders {
        group.bench_function(BenchmarkId::new(name, "macro"), |b| {
            metrics::with_local_recorder(recorder, || {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        metrics::histogram!("request_duration_seconds", "route" => "/api")
                            .record(values[i & MASK]);
                    }
                    let elapsed = start.elapsed();
                    peer_bucket.clear();
                    elapsed
                })
            })
        });
        group.bench_function(BenchmarkId::new(name, "handle"), |b| {
            metrics::with_local_recorder(recorder, || {
                let histogram = metrics::histogram!("request_duration_seconds", "route" => "/api");
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        black_box(&histogram).record(values[i & MASK]);
                    }
                    let elapsed = start.elapsed();
                    peer_bucket.clear();
                    elapsed
                })
            })
        });
    }
    group.finish();
}

/// Not a benchmark: saves how much of the wall time the thread benchmarks' workers were on a CPU,
/// for `benches/report.py` to flag figures taken while other processes had the CPUs.
fn on_cpu_report(_: &mut Criterion) {
    match vigilo_benches::write_on_cpu_report() {
        Ok(path) => println!("on-CPU fractions written to {}", path.display()),
        Err(e) => eprintln!("could not write the on-CPU fractions: {e}"),
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = counter_increment, counter_threads, histogram_record, record_by_name, gauge_watch,
        c_api, facade_counter, facade_histogram, on_cpu_report
}
criterion_main!(benches);
