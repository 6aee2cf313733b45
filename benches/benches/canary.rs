//! Canary analysis (issue 16, point 3): one interval over 1,000 histogram metrics with 10,000
//! observations per group (canary and baseline) in the interval; goal ≤ 100 ms.
//!
//! One iteration is the `CanaryRun::tick` that closes an interval: it reads the 2,000 series,
//! takes each one's delta over the interval, merges each group's (and adds it to the group's
//! run total), runs the Mann-Whitney test and the effect size twice per metric (the interval's
//! own data and the whole run's), scores both, and writes the score gauge. Recording the observations and
//! moving the clock happen before the timed span. Memory (resident, before and after) is
//! printed. Run with `cargo bench -p vigilo-benches --bench canary`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // a failed setup is the bench failing

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigilo::Registry;
use vigilo::canary::{CanaryMetric, CanaryRun, CanarySpec, Direction};
use vigilo::clock::{ManualClock, Timestamp};

const METRICS: usize = 1_000;
const SAMPLES: usize = 10_000;
const INTERVAL: Duration = Duration::from_secs(60);

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn bench(c: &mut Criterion) {
    let rss_start = vigilo_benches::rss_bytes();
    // Log-normal latencies (median 20 ms, σ = 1); the canary draws other values from the same
    // distribution, 2 % slower.
    let values = vigilo_benches::lognormal_latencies(2 * SAMPLES);
    let baseline_values: Vec<f64> = values[..SAMPLES].to_vec();
    let canary_values: Vec<f64> = values[SAMPLES..2 * SAMPLES]
        .iter()
        .map(|v| v * 1.02)
        .collect();

    let registry = Registry::new();
    let mut spec = CanarySpec::new("bench");
    // Long enough never to complete while criterion iterates.
    spec.interval = INTERVAL;
    spec.step = INTERVAL;
    spec.duration = INTERVAL * 10_000;
    let mut handles = Vec::with_capacity(METRICS);
    for i in 0..METRICS {
        let name = format!("m{i:04}_seconds");
        // Metrics spread over different ranges, so their buckets differ.
        let scale = 1.0 + (i % 7) as f64;
        handles.push((
            registry
                .histogram(&name, &[("deployment", "canary")])
                .unwrap(),
            registry
                .histogram(&name, &[("deployment", "baseline")])
                .unwrap(),
            scale,
        ));
        spec = spec
            .metric(CanaryMetric::new(name, Direction::HigherIsBad).group(format!("g{}", i % 10)));
    }
    let record = || {
        for (canary, baseline, scale) in &handles {
            for (&c, &b) in canary_values.iter().zip(&baseline_values) {
                canary.record(c * scale);
                baseline.record(b * scale);
            }
        }
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_767_225_600)));
    let mut run = CanaryRun::start(spec, &registry, clock.clone()).unwrap();

    // One interval outside criterion, for the memory figures and a look at the result.
    record();
    let rss_recorded = vigilo_benches::rss_bytes();
    clock.advance(INTERVAL);
    let t = Instant::now();
    let closed = run.tick().unwrap();
    let first = t.elapsed();
    assert_eq!(closed, 1);
    let rss_first = vigilo_benches::rss_bytes();
    let report = run.report();
    let interval = &report.intervals[0].result;
    let compared = interval
        .metrics
        .iter()
        .filter(|m| m.p_value.is_some())
        .count();
    assert_eq!(compared, METRICS);
    assert!(
        interval
            .metrics
            .iter()
            .all(|m| m.canary.count == SAMPLES as u64)
    );
    let buckets = handles
        .iter()
        .map(|(c, b, _)| c.snapshot().buckets().count() + b.snapshot().buckets().count())
        .sum::<usize>() as f64
        / (2 * METRICS) as f64;
    println!("canary interval: {buckets:.0} non-empty buckets per series on average");
    println!(
        "canary interval: {METRICS} metrics x {SAMPLES} observations per group: first interval \
         {:.1} ms, score {:.1} ({:?}); resident memory: {:.1} MiB at start, {:.1} MiB with the \
         2,000 series recorded and the run started (+{:.1}), {:.1} MiB after the interval \
         (+{:.1} for the interval's comparison and its report); report JSON {:.1} MiB",
        first.as_secs_f64() * 1e3,
        interval.score,
        interval.verdict,
        mib(rss_start),
        mib(rss_recorded),
        mib(rss_recorded.saturating_sub(rss_start)),
        mib(rss_first),
        mib(rss_first.saturating_sub(rss_recorded)),
        mib(report.to_json().len() as u64),
    );

    let mut group = c.benchmark_group("canary");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("interval_1000_metrics_10000_samples", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                record();
                clock.advance(INTERVAL);
                let t = Instant::now();
                black_box(run.tick().unwrap());
                total += t.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
