//! The host collector's cost: one `HostSampler::refresh()` with the default configuration (every
//! host item), timed back to back. At the default 1 s interval the collector spends this time once
//! a second, so "refresh time / 1 s" is its share of one core; `benches/report.py` prints it.
//!
//! Run with `cargo bench -p vigilo-benches --bench host`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vigilo::Registry;
use vigilo::host::{HostConfig, HostSampler};

fn host_refresh(c: &mut Criterion) {
    let registry = Registry::new();
    let mut sampler = HostSampler::new(&registry, HostConfig::default())
        .unwrap_or_else(|e| panic!("host sampler: {e}"));
    // Let the rate windows open so the timed refreshes write every series, as at steady state.
    std::thread::sleep(Duration::from_millis(300));
    let first = sampler
        .refresh()
        .unwrap_or_else(|e| panic!("host refresh: {e}"));
    assert!(first.written > 0, "the first refresh wrote nothing");

    let mut group = c.benchmark_group("host_refresh");
    group.bench_function("defaults", |b| {
        b.iter(|| black_box(sampler.refresh()).is_ok())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = host_refresh
}
criterion_main!(benches);
