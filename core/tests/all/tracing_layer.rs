//! The `tracing` layer (`vigilo::tracing_layer`): a program's `tracing` events and spans become
//! counters and histograms in the registry, bounded as configured, and an error-rate rule on
//! them fires. Time is virtual: the rules' (RuleTest) and the spans' (a ManualClock).

#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use vigilo::Severity;
use vigilo::clock::{ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::metrics::Value;
use vigilo::testing::RuleTest;
use vigilo::tracing_layer::MetricsLayer;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn events_and_spans_become_series_and_an_error_rate_rule_fires() {
    let config: Config = r#"
        [[rule]]
        name = "db-errors"
        metric = "tracing_events_total"
        select = { level = "error" }
        aggregation = "rate"
        window = "1m"
        [rule.major]
        threshold = 5          # error events per second
    "#
    .parse()
    .unwrap();
    let mut t = RuleTest::new(config.rules).unwrap();
    let registry = t.registry().clone();
    let spans_clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
    let layer = MetricsLayer::builder(&registry)
        .clock(spans_clock.clone())
        .target_depth(2)
        .max_targets(2)
        .build();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    // A service's own calls: 2 errors a second for a minute (below the threshold) …
    for sec in 0..60 {
        t.advance_to(s(sec));
        for _ in 0..2 {
            tracing::error!(target: "orders::db::pool", "connection lost");
        }
        tracing::info!(target: "orders::api", "request served");
    }
    assert_eq!(
        t.severity("db-errors", &[("level", "error"), ("target", "orders::db")]),
        Some(Severity::Normal)
    );
    // … then 10 a second: the rate passes 5/s within the minute.
    for sec in 60..120 {
        t.advance_to(s(sec));
        for _ in 0..10 {
            tracing::error!(target: "orders::db::pool", "connection lost");
        }
    }
    t.advance_to(s(120));
    let fired: Vec<_> = t
        .transitions()
        .into_iter()
        .filter(|tr| tr.to == Severity::Major)
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        t.severity("db-errors", &[("level", "error"), ("target", "orders::db")]),
        Some(Severity::Major)
    );

    // A third target is past `max_targets` (2): it counts as `other`.
    tracing::warn!(target: "billing", "slow");
    // A span: from its creation to its close, on the layer's clock.
    {
        let span = tracing::info_span!(target: "orders::api::handlers", "checkout");
        let _entered = span.enter();
        spans_clock.advance(Duration::from_millis(250));
    }

    let snap = registry.snapshot();
    let count = |labels: &[(&str, &str)]| {
        snap.get("tracing_events_total", labels)
            .map(|s| s.value.as_f64())
    };
    assert_eq!(
        count(&[("level", "error"), ("target", "orders::db")]),
        Some(60.0 * 2.0 + 60.0 * 10.0)
    );
    assert_eq!(
        count(&[("level", "info"), ("target", "orders::api")]),
        Some(60.0)
    );
    assert_eq!(count(&[("level", "warn"), ("target", "other")]), Some(1.0));
    let events: Vec<_> = snap.named("tracing_events_total").collect();
    assert_eq!(events.len(), 3, "{events:#?}");
    let span = snap
        .get(
            "tracing_span_duration_seconds",
            &[("span", "checkout"), ("target", "orders::api")],
        )
        .expect("the span's histogram");
    let Value::Histogram(h) = &span.value else {
        panic!("{span:?}")
    };
    assert_eq!(h.count(), 1);
    assert!((h.sum() - 0.25).abs() < 1e-9, "{}", h.sum());
}

#[test]
fn names_are_configurable() {
    let registry = vigilo::Registry::new();
    let layer = MetricsLayer::builder(&registry)
        .events_metric("app_log_events_total")
        .spans_metric("app_span_seconds")
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::debug!(target: "app", "hello");
        let _s = tracing::debug_span!(target: "app", "work").entered();
    });
    let snap = registry.snapshot();
    assert!(
        snap.get(
            "app_log_events_total",
            &[("level", "debug"), ("target", "app")]
        )
        .is_some()
    );
    assert!(
        snap.get("app_span_seconds", &[("span", "work"), ("target", "app")])
            .is_some()
    );
    assert_eq!(snap.named("tracing_events_total").count(), 0);
}
