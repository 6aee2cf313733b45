//! The `metrics` facade: code instrumented only with the `metrics` macros drives vigilo rules
//! through `vigilo::facade::RegistryRecorder`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::time::Duration;

use vigilo::Severity::{self, *};
use vigilo::config::Config;
use vigilo::facade::{REJECTED_TOTAL, RegistryRecorder};
use vigilo::metrics::Value;
use vigilo::testing::RuleTest;
use vigilo::{Registry, RegistryConfig};

/// A library that knows nothing of vigilo: the `metrics` macros only, with dotted names.
mod jobs {
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    use metrics::{gauge, histogram};

    pub fn describe() {
        describe_gauge!("queue.depth", Unit::Count, "Jobs waiting to be handled");
        describe_histogram!("job.duration", Unit::Seconds, "Time to handle one job");
        describe_counter!(
            "job.payload-bytes",
            Unit::Bytes,
            "Bytes of job payloads read"
        );
    }

    /// The queue's length after a producer ran.
    pub fn queued(depth: usize) {
        gauge!("queue.depth", "queue" => "mail").set(depth as f64);
    }

    /// One job handled in `seconds`.
    pub fn handled(seconds: f64, payload: u64) {
        counter!("jobs.handled", "queue" => "mail").increment(1);
        counter!("job.payload-bytes").increment(payload);
        histogram!("job.duration", "queue" => "mail").record(seconds);
    }
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Transitions since the last call: (milliseconds from the start, from, to).
fn changes(t: &mut RuleTest) -> Vec<(u128, Severity, Severity)> {
    t.transitions()
        .into_iter()
        .map(|x| (t.offset(x.at).as_millis(), x.from, x.to))
        .collect()
}

fn rule_test(rules: &str) -> (RuleTest, RegistryRecorder) {
    let config: Config = rules.parse().unwrap();
    let test = RuleTest::new(config.rules).unwrap();
    let recorder = RegistryRecorder::new(test.registry().clone());
    (test, recorder)
}

fn rejected(registry: &Registry, reason: &str) -> u64 {
    match registry
        .snapshot()
        .get(REJECTED_TOTAL, &[("reason", reason)])
        .map(|s| s.value.clone())
    {
        Some(Value::Counter(n)) => n,
        _ => 0,
    }
}

#[test]
fn a_gauge_set_through_the_facade_fires_a_threshold_rule() {
    let (mut t, recorder) = rule_test(
        r#"
        [[rule]]
        name = "backlog"
        metric = "queue_depth"
        select = { queue = "mail" }
        [rule.warning]
        threshold = 100
        [rule.critical]
        threshold = 400
        for = "10s"
    "#,
    );
    let mail = [("queue", "mail")];
    // The instrumented code runs once a second; the evaluator polls 1 ms after each run.
    let run = |t: &mut RuleTest, from: u64, to: u64, depth: usize| {
        for sec in from..=to {
            t.advance_to(s(sec));
            metrics::with_local_recorder(&recorder, || jobs::queued(depth));
            t.advance_to(s(sec) + Duration::from_millis(1));
        }
    };
    run(&mut t, 0, 9, 20);
    t.advance_to(s(10));
    assert_eq!(changes(&mut t), vec![]);
    assert_eq!(t.severity("backlog", &mail), Some(Normal));

    run(&mut t, 10, 30, 500);
    t.advance_to(s(31));
    assert_eq!(
        changes(&mut t),
        vec![(10_001, Normal, Warning), (20_001, Warning, Critical)],
        "above 100 at the first poll after the record, above 400 held 10 s from there"
    );
    assert_eq!(t.severity("backlog", &mail), Some(Critical));

    run(&mut t, 31, 31, 50);
    t.advance_to(s(32));
    assert_eq!(changes(&mut t), vec![(31_001, Critical, Normal)]);
}

#[test]
fn a_histogram_recorded_through_the_facade_fires_a_p99_rule() {
    let (mut t, recorder) = rule_test(
        r#"
        [[rule]]
        name = "slow-jobs"
        metric = "job_duration"
        aggregation = "p99"
        window = "30s"
        [rule.warning]
        threshold = 0.25
        [rule.critical]
        threshold = 1.0
    "#,
    );
    let fast: Vec<f64> = (1..=100).map(|i| 0.001 * f64::from(i)).collect(); // 1..100 ms
    let run = |t: &mut RuleTest, from: u64, to: u64, latencies: &[f64]| {
        for sec in from..=to {
            t.advance_to(s(sec));
            metrics::with_local_recorder(&recorder, || {
                for &l in latencies {
                    jobs::handled(l, 100);
                }
            });
            t.advance_to(s(sec) + Duration::from_millis(1));
        }
    };
    run(&mut t, 0, 59, &fast);
    t.advance_to(s(60));
    assert_eq!(changes(&mut t), vec![]);
    assert_eq!(t.severity("slow-jobs", &[("queue", "mail")]), Some(Normal));

    // 50 jobs of 2 s: over 1 % of the ~3 150 in the window, so its p99 jumps over 1 s.
    let mut slow = fast.clone();
    slow.extend([2.0; 50]);
    run(&mut t, 60, 60, &slow);
    run(&mut t, 61, 100, &fast);
    t.advance_to(s(101));
    // Seen by the poll 1 ms after the record (the histogram's watch fired); back to Normal at
    // the first sweep after the slow second, sampled at 60.001 s, left the 30 s window.
    assert_eq!(
        changes(&mut t),
        vec![(60_001, Normal, Critical), (91_000, Critical, Normal)]
    );

    // Everything the module recorded is in the registry, under the mapped names.
    let snapshot = t.registry().snapshot();
    let handled = snapshot.get("jobs_handled", &[("queue", "mail")]).unwrap();
    assert_eq!(handled.value, Value::Counter(101 * 100 + 50));
    let bytes = snapshot.get("job_payload_bytes", &[]).unwrap();
    assert_eq!(bytes.value, Value::Counter((101 * 100 + 50) * 100));
}

#[test]
fn descriptions_and_units_are_carried_over() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, jobs::describe);

    let depth = registry.description("queue_depth").unwrap();
    assert_eq!(depth.help, "Jobs waiting to be handled");
    assert_eq!(depth.unit, None, "a count is no unit");
    let duration = registry.description("job_duration").unwrap();
    assert_eq!(
        (duration.help.as_str(), duration.unit.as_deref()),
        ("Time to handle one job", Some("seconds"))
    );
    let bytes = registry.description("job_payload_bytes").unwrap();
    assert_eq!(bytes.unit.as_deref(), Some("bytes"));

    // The macros' own `description:` and `unit:` parameters go the same way.
    metrics::with_local_recorder(&recorder, || {
        metrics::histogram!(
            description: "Time spent waiting for the disk",
            unit: metrics::Unit::Milliseconds,
            "disk.wait"
        )
        .record(3.0)
    });
    let wait = registry.description("disk_wait").unwrap();
    assert_eq!(wait.unit.as_deref(), Some("milliseconds"));
}

#[test]
fn names_are_mapped_and_labels_carried() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("http.requests-total", "status-code" => "200", "route" => "/a.b")
            .increment(2);
        metrics::counter!("http_requests_total", "status_code" => "200", "route" => "/a.b")
            .increment(1);
        metrics::gauge!("5xx.ratio").set(0.25);
        let owned = format!("tenant.{}", 7);
        metrics::counter!(owned, "region" => "eu").increment(1);
    });
    let snapshot = registry.snapshot();
    let labels = [("status_code", "200"), ("route", "/a.b")];
    assert_eq!(
        snapshot
            .get("http_requests_total", &labels)
            .map(|s| s.value.clone()),
        Some(Value::Counter(3)),
        "both spellings are one series; label values are kept as they are"
    );
    assert_eq!(
        snapshot.get("_5xx_ratio", &[]).map(|s| s.value.clone()),
        Some(Value::Gauge(0.25))
    );
    assert_eq!(
        snapshot
            .get("tenant_7", &[("region", "eu")])
            .map(|s| s.value.clone()),
        Some(Value::Counter(1))
    );
    assert_eq!(rejected(&registry, "invalid_name"), 0);
}

#[test]
fn refusals_give_noop_handles_and_are_counted() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs").increment(1);
        // Same name, another kind: refused by the registry, a no-op here, no panic.
        let gauge = metrics::gauge!("jobs");
        gauge.set(5.0);
        gauge.increment(1.0);
        metrics::histogram!("jobs", "queue" => "mail").record(1.0);
        // A reserved label, a label given twice (once mapped), an empty name.
        metrics::counter!("labelled", "__name" => "x").increment(1);
        metrics::counter!("labelled", "a.b" => "1", "a_b" => "2").increment(1);
        metrics::counter!(String::new()).increment(1);
        metrics::describe_counter!("", "nothing");
    });
    assert_eq!(registry.counter("jobs", &[]).unwrap().value(), 1);
    assert!(registry.series_of("labelled").is_empty());
    assert_eq!(rejected(&registry, "kind_mismatch"), 2);
    assert_eq!(rejected(&registry, "invalid_label"), 2);
    assert_eq!(rejected(&registry, "invalid_name"), 2);
}

#[test]
fn at_the_cardinality_limit_new_series_are_noops_and_counted() {
    // One series for the recorder's own rejection counter, two for the application.
    let registry = Registry::with_config(RegistryConfig { max_series: 3 });
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        for user in ["a", "b", "c", "d"] {
            metrics::counter!("logins", "user" => user).increment(1);
        }
    });
    assert_eq!(registry.series_of("logins").len(), 2);
    assert_eq!(rejected(&registry, "cardinality_limit"), 2);
}

#[test]
fn counters_absolute_raises_never_lowers_and_gauges_move_both_ways() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        let sent = metrics::counter!("bytes.sent");
        sent.absolute(100);
        sent.absolute(40); // below the total: ignored
        sent.increment(1);
        let inflight = metrics::gauge!("inflight");
        inflight.increment(3.0);
        inflight.decrement(1.0);
    });
    assert_eq!(registry.counter("bytes_sent", &[]).unwrap().value(), 101);
    assert_eq!(registry.gauge("inflight", &[]).unwrap().value(), 2.0);
}

#[test]
fn a_removed_series_comes_back_at_the_next_macro_call() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    let record =
        || metrics::with_local_recorder(&recorder, || metrics::counter!("polls").increment(1));
    record();
    record();
    assert_eq!(registry.counter("polls", &[]).unwrap().value(), 2);
    assert!(registry.remove("polls", &[]));
    record();
    assert_eq!(registry.counter("polls", &[]).unwrap().value(), 1);
}

#[test]
fn a_handle_kept_by_the_caller_records_from_other_threads() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    let (counter, histogram) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("work.items", "pool" => "io"),
            metrics::histogram!("work.seconds"),
        )
    });
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    counter.increment(1);
                    histogram.record(0.5);
                }
            });
        }
    });
    assert_eq!(
        registry
            .counter("work_items", &[("pool", "io")])
            .unwrap()
            .value(),
        4000
    );
    let h = registry.histogram("work_seconds", &[]).unwrap().snapshot();
    assert_eq!(h.count(), 4000);
}

#[test]
fn two_recorders_on_one_thread_keep_their_series_apart() {
    let (a, b) = (Registry::new(), Registry::new());
    let (ra, rb) = (
        RegistryRecorder::new(a.clone()),
        RegistryRecorder::new(b.clone()),
    );
    let hit = || metrics::counter!("cache.hits", "cache" => "users").increment(1);
    for _ in 0..3 {
        metrics::with_local_recorder(&ra, hit);
        metrics::with_local_recorder(&rb, hit);
        metrics::with_local_recorder(&rb, hit);
    }
    let labels = [("cache", "users")];
    assert_eq!(a.counter("cache_hits", &labels).unwrap().value(), 3);
    assert_eq!(b.counter("cache_hits", &labels).unwrap().value(), 6);
}

/// The only test installing a recorder for the whole process (no other test of this binary
/// does; the other tests here use local recorders, which take precedence on their thread).
#[test]
fn the_global_install_records_from_any_thread() {
    let registry = Registry::new();
    RegistryRecorder::new(registry.clone()).install().unwrap();
    std::thread::spawn(|| metrics::counter!("global.hits", "from" => "thread").increment(2))
        .join()
        .unwrap();
    metrics::gauge!("global.level").set(7.0);
    assert_eq!(
        registry
            .counter("global_hits", &[("from", "thread")])
            .unwrap()
            .value(),
        2
    );
    assert_eq!(registry.gauge("global_level", &[]).unwrap().value(), 7.0);

    // A second install is refused, and the recorder is given back.
    let again = RegistryRecorder::new(Registry::new()).install();
    assert!(again.is_err());
}
