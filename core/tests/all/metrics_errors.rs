//! Bad input: every case returns its typed error and leaves existing series as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use vigilo::metrics::{MetricKind, Value};
use vigilo::{MetricError, Registry, RegistryConfig};

fn seeded() -> Registry {
    seeded_with(RegistryConfig::default())
}

/// A registry with one series of each kind.
fn seeded_with(config: RegistryConfig) -> Registry {
    let r = Registry::with_config(config);
    r.counter("requests_total", &[("route", "/")])
        .unwrap()
        .add(5);
    r.gauge("temperature", &[]).unwrap().set(21.0);
    r.histogram("latency_seconds", &[]).unwrap().record(0.25);
    r
}

fn assert_intact(r: &Registry) {
    let snap = r.snapshot();
    assert_eq!(snap.series.len(), 3);
    assert_eq!(
        snap.get("requests_total", &[("route", "/")]).unwrap().value,
        Value::Counter(5)
    );
    assert_eq!(
        snap.get("temperature", &[]).unwrap().value,
        Value::Gauge(21.0)
    );
    let Value::Histogram(h) = &snap.get("latency_seconds", &[]).unwrap().value else {
        panic!()
    };
    assert_eq!((h.count(), h.sum()), (1, 0.25));
}

#[test]
fn invalid_metric_names() {
    let r = seeded();
    for bad in ["", "1abc", "has space", "dash-ed", "ünïcode"] {
        assert!(
            matches!(r.counter(bad, &[]), Err(MetricError::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            r.set_gauge(bad, &[], 1.0),
            Err(MetricError::InvalidName { .. })
        ));
    }
    assert_intact(&r);
}

#[test]
fn invalid_and_duplicate_labels() {
    let r = seeded();
    for bad in ["", "1x", "__name__", "a.b"] {
        let err = r.counter("requests_total", &[(bad, "v")]).unwrap_err();
        assert!(
            matches!(err, MetricError::InvalidLabelName { .. }),
            "{bad:?}: {err}"
        );
    }
    let err = r
        .counter("requests_total", &[("route", "/"), ("route", "/x")])
        .unwrap_err();
    assert!(matches!(err, MetricError::DuplicateLabel { .. }), "{err}");
    assert_intact(&r);
}

#[test]
fn non_finite_values() {
    let r = seeded();
    let gauge = r.gauge("temperature", &[]).unwrap();
    let hist = r.histogram("latency_seconds", &[]).unwrap();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        // The checked variants refuse, and count nothing.
        assert!(matches!(
            gauge.try_set(v),
            Err(MetricError::NonFinite { .. })
        ));
        assert!(matches!(
            gauge.try_add(v),
            Err(MetricError::NonFinite { .. })
        ));
        assert!(matches!(
            hist.try_record(v),
            Err(MetricError::NonFinite { .. })
        ));
        assert!(r.set_gauge("temperature", &[], v).is_err());
        assert!(r.record_histogram("latency_seconds", &[], v).is_err());
        // A bad value never creates a series either.
        assert!(r.set_gauge("fresh_gauge", &[], v).is_err());
    }
    // An add that overflows to infinity is refused too.
    gauge.set(f64::MAX);
    assert!(gauge.try_add(f64::MAX).is_err());
    assert_eq!(gauge.value(), f64::MAX);
    gauge.set(21.0);
    assert_intact(&r);
}

#[test]
fn infallible_records_drop_non_finite_values_and_count_them() {
    let r = seeded();
    let gauge = r.gauge("temperature", &[]).unwrap();
    let hist = r.histogram("latency_seconds", &[]).unwrap();
    gauge.set(f64::NAN);
    gauge.add(f64::INFINITY);
    gauge.set(f64::MAX);
    gauge.add(f64::MAX); // overflows: dropped
    assert_eq!(gauge.value(), f64::MAX);
    gauge.set(21.0);
    hist.record(f64::NEG_INFINITY);
    let snap = r.snapshot();
    let dropped = |metric: &str| {
        snap.get(vigilo::metrics::DROPPED_VALUES_TOTAL, &[("metric", metric)])
            .map(|s| s.value.clone())
    };
    assert_eq!(dropped("temperature"), Some(Value::Counter(3)));
    assert_eq!(dropped("latency_seconds"), Some(Value::Counter(1)));
    // Nothing else changed.
    assert_eq!(snap.series.len(), 5);
    assert_eq!(
        snap.get("temperature", &[]).unwrap().value,
        Value::Gauge(21.0)
    );
    let Value::Histogram(h) = &snap.get("latency_seconds", &[]).unwrap().value else {
        panic!()
    };
    assert_eq!(h.count(), 1);
}

#[test]
fn one_name_two_kinds() {
    let r = seeded();
    let err = r.gauge("requests_total", &[("route", "/")]).unwrap_err();
    assert_eq!(
        err,
        MetricError::KindMismatch {
            name: "requests_total".into(),
            existing: MetricKind::Counter,
            requested: MetricKind::Gauge
        }
    );
    // Other labels of the same name are still the same kind.
    assert!(
        r.histogram("requests_total", &[("route", "/other")])
            .is_err()
    );
    assert!(r.add_counter("temperature", &[], 1).is_err());
    assert!(r.record_histogram("temperature", &[], 1.0).is_err());
    assert_eq!(
        err.to_string(),
        "requests_total is registered as a counter, not a gauge"
    );
    assert_intact(&r);
}

#[test]
fn cardinality_limit_refuses_new_series_only() {
    let r = seeded_with(RegistryConfig { max_series: 3 });
    let err = r
        .counter("requests_total", &[("route", "/new")])
        .unwrap_err();
    assert_eq!(
        err,
        MetricError::CardinalityLimit {
            name: "requests_total".into(),
            limit: 3
        }
    );
    assert!(err.to_string().contains("series limit of 3"));
    // Existing series still record.
    r.add_counter("requests_total", &[("route", "/")], 0)
        .unwrap();
    assert_intact(&r);
    // Removing one frees a place.
    assert!(r.remove("temperature", &[]));
    r.counter("requests_total", &[("route", "/new")]).unwrap();
    assert_eq!(r.len(), 3);
}

mod call_site_macros {
    use vigilo::metrics::Value;
    use vigilo::{MetricError, Registry};

    fn count(r: &Registry, labels: &[(&str, &str)]) -> u64 {
        match r
            .snapshot()
            .get("req_total", labels)
            .map(|s| s.value.clone())
        {
            Some(Value::Counter(n)) => n,
            other => panic!("{labels:?}: {other:?}"),
        }
    }

    fn hit(r: &Registry, route: &str, status: &str) -> Result<(), MetricError> {
        vigilo::counter!(r, "req_total", "route" => route, "status" => status).increment()
    }

    #[test]
    fn more_label_values_than_the_cache_holds_each_count_in_their_own_series() {
        let r = Registry::new();
        let statuses: Vec<String> = (200..220).map(|s| s.to_string()).collect();
        for _ in 0..5 {
            for (i, s) in statuses.iter().enumerate() {
                // An uneven number per status, so a mix-up shows.
                for _ in 0..=i % 3 {
                    hit(&r, "/a", s).unwrap();
                }
            }
        }
        for (i, s) in statuses.iter().enumerate() {
            assert_eq!(
                count(&r, &[("route", "/a"), ("status", s)]),
                5 * (1 + i % 3) as u64
            );
        }
    }

    #[test]
    fn a_removed_series_is_not_recorded_into_from_the_cache() {
        let r = Registry::new();
        hit(&r, "/a", "200").unwrap();
        assert!(r.remove("req_total", &[("route", "/a"), ("status", "200")]));
        hit(&r, "/a", "200").unwrap();
        // The series is there again, with the one record made after the removal.
        assert_eq!(count(&r, &[("route", "/a"), ("status", "200")]), 1);
    }

    #[test]
    fn series_created_elsewhere_between_calls_do_not_lose_or_misplace_records() {
        let r = Registry::new();
        for k in 0..50 {
            hit(&r, "/a", "200").unwrap();
            // Another series each time: the registry's generation moves before every call.
            r.counter("other_total", &[("k", &k.to_string())]).unwrap();
        }
        assert_eq!(count(&r, &[("route", "/a"), ("status", "200")]), 50);
    }

    #[test]
    fn one_call_site_serves_several_registries_apart() {
        let (a, b) = (Registry::new(), Registry::new());
        for _ in 0..3 {
            hit(&a, "/x", "200").unwrap();
        }
        hit(&b, "/x", "200").unwrap();
        // Registries made and dropped in between do not confuse the cache either.
        for _ in 0..10 {
            let c = Registry::new();
            hit(&c, "/x", "200").unwrap();
        }
        hit(&a, "/x", "200").unwrap();
        assert_eq!(count(&a, &[("route", "/x"), ("status", "200")]), 4);
        assert_eq!(count(&b, &[("route", "/x"), ("status", "200")]), 1);
    }

    #[test]
    fn bad_input_is_a_clear_error_and_creates_nothing() {
        let r = Registry::new();
        r.gauge("req_total", &[("route", "/a"), ("status", "200")])
            .unwrap();
        let err = hit(&r, "/a", "200").unwrap_err();
        assert!(matches!(err, MetricError::KindMismatch { .. }), "{err}");
        let err = vigilo::gauge!(r, "depth", "q" => "a")
            .set(f64::NAN)
            .unwrap_err();
        assert!(matches!(err, MetricError::NonFinite { .. }), "{err}");
        let err = vigilo::histogram!(r, "lat_seconds")
            .record(f64::INFINITY)
            .unwrap_err();
        assert!(matches!(err, MetricError::NonFinite { .. }), "{err}");
        assert!(r.snapshot().get("depth", &[("q", "a")]).is_none());
        let err = vigilo::counter!(r, "bad name").increment().unwrap_err();
        assert!(matches!(err, MetricError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn threads_recording_through_one_call_site_lose_nothing() {
        let r = Registry::new();
        std::thread::scope(|s| {
            for t in 0..8 {
                let r = &r;
                s.spawn(move || {
                    let status = if t % 2 == 0 { "200" } else { "500" };
                    for _ in 0..10_000 {
                        hit(r, "/t", status).unwrap();
                    }
                });
            }
        });
        assert_eq!(count(&r, &[("route", "/t"), ("status", "200")]), 40_000);
        assert_eq!(count(&r, &[("route", "/t"), ("status", "500")]), 40_000);
        let h = vigilo::counter!(r, "req_total", "route" => "/t", "status" => "200")
            .handle()
            .unwrap();
        assert_eq!(h.value(), 40_000);
    }
}
