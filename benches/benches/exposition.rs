//! The exposition (issue 14): a scrape of 10,000 series beside the `prometheus` crate's text
//! encoder on the same series (time and bytes), and the record path while a scraper renders in
//! a loop on another thread.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus::{Encoder, IntCounterVec, Opts, TextEncoder};
use vigilo::Registry;
use vigilo::exposition::{Format, render};

const SERIES: usize = 10_000;

/// 10,000 counters of one metric, two labels each, with values, in both libraries.
fn populated() -> (Registry, prometheus::Registry) {
    let v = Registry::new();
    v.describe("http_requests_total", None, "Requests answered")
        .unwrap_or_else(|e| panic!("{e}"));
    let p = prometheus::Registry::new();
    let family = IntCounterVec::new(
        Opts::new("http_requests_total", "Requests answered"),
        &["route", "code"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    p.register(Box::new(family.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..SERIES {
        let route = format!("/api/v1/items/{i}");
        let code = ["200", "404", "500"][i % 3];
        v.counter("http_requests_total", &[("route", &route), ("code", code)])
            .unwrap_or_else(|e| panic!("{e}"))
            .add(i as u64);
        family.with_label_values(&[&route, code]).inc_by(i as u64);
    }
    (v, p)
}

fn prometheus_text(p: &prometheus::Registry) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    TextEncoder::new()
        .encode(&p.gather(), &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

fn scrape(c: &mut Criterion) {
    let (v, p) = populated();
    let ours = render(&v, Format::Prometheus).len();
    let theirs = prometheus_text(&p).len();
    println!(
        "exposition: {SERIES} series: vigilo {ours} bytes ({:.1} per series), prometheus {theirs} bytes ({:.1} per series)",
        ours as f64 / SERIES as f64,
        theirs as f64 / SERIES as f64
    );
    let mut group = c.benchmark_group("scrape_10k");
    group.bench_function("vigilo", |b| {
        b.iter(|| black_box(render(&v, Format::Prometheus)))
    });
    group.bench_function("vigilo_openmetrics", |b| {
        b.iter(|| black_box(render(&v, Format::OpenMetrics)))
    });
    group.bench_function("prometheus", |b| b.iter(|| black_box(prometheus_text(&p))));
    // The part of a scrape that reads the series (sorted by name and labels).
    group.bench_function("vigilo_snapshot_only", |b| {
        b.iter(|| black_box(v.snapshot()))
    });
    group.finish();
}

fn record_while_scraping(c: &mut Criterion) {
    let (v, _) = populated();
    let counter = v
        .counter("work_total", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("record_while_scraping");
    group.bench_function("no_scraper", |b| b.iter(|| counter.increment()));
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = Arc::clone(&stop);
        let v = v.clone();
        std::thread::spawn(move || {
            let mut scrapes = 0u64;
            // Relaxed: a flag read in a loop; the join below orders everything else.
            while !stop.load(Ordering::Relaxed) {
                black_box(render(&v, Format::Prometheus));
                scrapes += 1;
            }
            scrapes
        })
    };
    group.bench_function("scraper_looping", |b| b.iter(|| counter.increment()));
    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap_or(0);
    // The control: the same load on the other CPU, rendering a registry the recorder does
    // not touch. On a machine whose two CPUs share a core, this alone slows the recorder.
    let (other, _) = populated();
    stop.store(false, Ordering::Relaxed);
    let busy = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(render(&other, Format::Prometheus));
            }
        })
    };
    group.bench_function("unrelated_render_looping", |b| {
        b.iter(|| counter.increment())
    });
    stop.store(true, Ordering::Relaxed);
    let _ = busy.join();
    group.finish();
    println!("exposition: {scrapes} scrapes of {SERIES} series ran during the second measurement");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = scrape, record_while_scraping
}
criterion_main!(benches);
