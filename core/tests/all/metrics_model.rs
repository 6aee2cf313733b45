//! Property tests: any sequence of records gives the snapshot a straightforward model predicts,
//! and histogram quantiles stay within the documented relative error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigilo::Registry;
use vigilo::metrics::Value;
use vigilo::metrics::buckets::RELATIVE_ERROR;

/// Series the generated operations write to: (name, labels) per kind.
const COUNTERS: [(&str, &[(&str, &str)]); 3] = [
    ("c_total", &[]),
    ("c_total", &[("a", "1")]),
    ("d_total", &[("a", "1"), ("b", "2")]),
];
const GAUGES: [(&str, &[(&str, &str)]); 2] = [("g", &[]), ("g", &[("x", "y")])];
const HISTOGRAMS: [(&str, &[(&str, &str)]); 2] = [("h_seconds", &[]), ("h_seconds", &[("p", "q")])];

#[derive(Debug, Clone)]
enum Op {
    Add {
        series: usize,
        n: u64,
        by_name: bool,
    },
    Set {
        series: usize,
        v: f64,
    },
    GaugeAdd {
        series: usize,
        v: f64,
    },
    Record {
        series: usize,
        v: f64,
        by_name: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..COUNTERS.len(), 0..1000u64, any::<bool>()).prop_map(|(series, n, by_name)| Op::Add {
            series,
            n,
            by_name
        }),
        (0..GAUGES.len(), -1e6..1e6f64).prop_map(|(series, v)| Op::Set { series, v }),
        (0..GAUGES.len(), -1e3..1e3f64).prop_map(|(series, v)| Op::GaugeAdd { series, v }),
        (0..HISTOGRAMS.len(), 1e-6..1e6f64, any::<bool>())
            .prop_map(|(series, v, by_name)| Op::Record { series, v, by_name }),
    ]
}

#[derive(Default)]
struct Model {
    counters: BTreeMap<usize, u64>,
    gauges: BTreeMap<usize, f64>,
    histograms: BTreeMap<usize, Vec<f64>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn snapshot_matches_model(ops in proptest::collection::vec(op(), 0..200)) {
        let registry = Registry::new();
        let mut model = Model::default();
        for op in &ops {
            match *op {
                Op::Add { series, n, by_name } => {
                    let (name, labels) = COUNTERS[series];
                    if by_name {
                        registry.add_counter(name, labels, n).unwrap();
                    } else {
                        registry.counter(name, labels).unwrap().add(n);
                    }
                    *model.counters.entry(series).or_default() += n;
                }
                Op::Set { series, v } => {
                    let (name, labels) = GAUGES[series];
                    registry.set_gauge(name, labels, v).unwrap();
                    model.gauges.insert(series, v);
                }
                Op::GaugeAdd { series, v } => {
                    let (name, labels) = GAUGES[series];
                    registry.gauge(name, labels).unwrap().add(v);
                    *model.gauges.entry(series).or_default() += v;
                }
                Op::Record { series, v, by_name } => {
                    let (name, labels) = HISTOGRAMS[series];
                    if by_name {
                        registry.record_histogram(name, labels, v).unwrap();
                    } else {
                        registry.histogram(name, labels).unwrap().record(v);
                    }
                    model.histograms.entry(series).or_default().push(v);
                }
            }
        }
        let snap = registry.snapshot();
        let expected = model.counters.len() + model.gauges.len() + model.histograms.len();
        prop_assert_eq!(snap.series.len(), expected);
        for (&i, &n) in &model.counters {
            let (name, labels) = COUNTERS[i];
            prop_assert_eq!(&snap.get(name, labels).unwrap().value, &Value::Counter(n));
        }
        for (&i, &v) in &model.gauges {
            let (name, labels) = GAUGES[i];
            prop_assert_eq!(&snap.get(name, labels).unwrap().value, &Value::Gauge(v));
        }
        for (&i, values) in &model.histograms {
            let (name, labels) = HISTOGRAMS[i];
            let Value::Histogram(h) = &snap.get(name, labels).unwrap().value else {
                return Err(TestCaseError::fail("not a histogram"));
            };
            prop_assert_eq!(h.count(), values.len() as u64);
            let sum: f64 = values.iter().sum();
            prop_assert!((h.sum() - sum).abs() <= 1e-9 * sum.abs().max(1.0));
            prop_assert_eq!(h.min(), values.iter().copied().reduce(f64::min));
            prop_assert_eq!(h.max(), values.iter().copied().reduce(f64::max));
        }
    }

    #[test]
    fn quantile_error_is_bounded(
        mut values in proptest::collection::vec(prop_oneof![1e-9..1e-3f64, 1e-3..10.0f64, 10.0..1e14f64, -1e6..-1e-6f64], 1..2000),
        q in 0.0..=1.0f64,
    ) {
        let registry = Registry::new();
        let h = registry.histogram("x", &[]).unwrap();
        for &v in &values {
            h.record(v);
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let exact = values[rank - 1];
        let estimate = h.snapshot().quantile(q).unwrap();
        let error = ((estimate - exact) / exact).abs();
        prop_assert!(error <= RELATIVE_ERROR, "q={q} exact={exact} estimate={estimate} error={error}");
    }

    #[test]
    fn windowed_delta_counts_only_new_observations(
        before in proptest::collection::vec(1e-3..1e3f64, 0..300),
        after in proptest::collection::vec(1e-3..1e3f64, 1..300),
        q in 0.0..=1.0f64,
    ) {
        let registry = Registry::new();
        let h = registry.histogram("x", &[]).unwrap();
        for &v in &before { h.record(v); }
        let earlier = h.snapshot();
        for &v in &after { h.record(v); }
        let delta = h.snapshot().delta(&earlier);
        prop_assert_eq!(delta.count(), after.len() as u64);
        let mut sorted = after.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        let exact = sorted[rank - 1];
        let estimate = delta.quantile(q).unwrap();
        prop_assert!(((estimate - exact) / exact).abs() <= RELATIVE_ERROR);
    }
}
