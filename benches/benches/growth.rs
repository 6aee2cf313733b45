//! Cost as the registry grows (issue 15, point 5): recording through a handle and by name (3
//! labels, an existing series), and a scrape of the whole registry, with 1, 1,000, 100,000 and
//! 1,000,000 series in it; and the registry's resident memory at each size.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vigilo::exposition::{Format, render};
use vigilo::{Registry, RegistryConfig};
use vigilo_benches::rss_bytes;

const SIZES: [usize; 4] = [1, 1_000, 100_000, 1_000_000];

fn route(i: usize) -> String {
    format!("/api/v1/items/{i}")
}

/// A registry holding `size` counters `requests_total{route, method, code}` (each recorded
/// once), and its resident memory growth per series.
fn registry_of(size: usize) -> (Registry, f64) {
    let before = rss_bytes();
    let registry = Registry::with_config(RegistryConfig {
        max_series: size + 16,
    });
    for i in 0..size {
        let route = route(i);
        registry
            .add_counter(
                "requests_total",
                &[("route", &route), ("method", "GET"), ("code", "200")],
                1,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let per = rss_bytes().saturating_sub(before) as f64 / size as f64;
    (registry, per)
}

fn growth(c: &mut Criterion) {
    let mut record = c.benchmark_group("growth_record");
    let mut memory = Vec::new();
    for size in SIZES {
        let (registry, per_series) = registry_of(size);
        memory.push((size, per_series));
        let middle = route(size / 2);
        let labels = [
            ("code", "200"),
            ("route", middle.as_str()),
            ("method", "GET"),
        ];
        let handle = registry
            .counter("requests_total", &labels)
            .unwrap_or_else(|e| panic!("{e}"));
        record.bench_with_input(BenchmarkId::new("handle", size), &size, |b, _| {
            b.iter(|| black_box(&handle).increment())
        });
        record.bench_with_input(BenchmarkId::new("by_name", size), &size, |b, _| {
            b.iter(|| registry.add_counter(black_box("requests_total"), black_box(&labels), 1))
        });
        drop(handle);
        drop(registry);
    }
    record.finish();
    for (size, per) in memory {
        println!("growth: {size} series: {per:.0} bytes of resident memory per series");
    }

    let mut scrape = c.benchmark_group("growth_scrape");
    for size in SIZES {
        let (registry, _) = registry_of(size);
        scrape.bench_with_input(BenchmarkId::new("vigilo", size), &size, |b, _| {
            b.iter(|| black_box(render(&registry, Format::Prometheus)))
        });
    }
    scrape.finish();
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
    targets = growth
}
criterion_main!(benches);
