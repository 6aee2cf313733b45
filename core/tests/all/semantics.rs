//! The evaluator's semantics as an operator expects them, each on the virtual clock (issue:
//! sustained breaches, no data, empty windows, schedules, located errors). See
//! `core/src/rules/SEMANTICS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::time::Duration;

use vigilo::Severity::{self, *};
use vigilo::clock::Timestamp;
use vigilo::config::Config;
use vigilo::eval::EvaluatorConfig;
use vigilo::testing::RuleTest;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn rules(text: &str) -> Vec<vigilo::rules::Rule> {
    Config::from_str_named(text, "rules.toml")
        .unwrap_or_else(|e| panic!("{}", e.with_excerpt()))
        .rules
}

fn changes(t: &mut RuleTest) -> Vec<(Duration, Severity, Severity)> {
    t.transitions()
        .into_iter()
        .map(|x| (t.offset(x.at), x.from, x.to))
        .collect()
}

#[test]
fn a_sustained_breach_counts_one_occurrence_per_completed_hold() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "cpu"
        metric = "cpu"
        [rule.major]
        threshold = 80
        [rule.critical]
        threshold = 95
        for = "30s"
        occurrences = 3
        within = "10m"
        "#,
    ))
    .unwrap();
    // Pegged at 99 % for ten minutes.
    for at in 0..=600 {
        t.gauge(s(at), "cpu", &[], 0.0 + 99.0).unwrap();
    }
    let c = changes(&mut t);
    assert_eq!(c[0], (s(0), Normal, Major));
    assert_eq!(c[1], (s(90), Major, Critical), "three holds of 30 s: {c:?}");
    assert_eq!(t.severity("cpu", &[]), Some(Critical));
}

#[test]
fn without_a_duration_each_crossing_is_one_occurrence() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "errors"
        metric = "errors"
        [rule.major]
        threshold = 10
        occurrences = 3
        within = "1m"
        "#,
    ))
    .unwrap();
    // Held high for 20 s: one occurrence, however long.
    for at in 0..20 {
        t.gauge(s(at), "errors", &[], 50.0).unwrap();
    }
    t.gauge(s(20), "errors", &[], 0.0).unwrap();
    t.gauge(s(30), "errors", &[], 50.0).unwrap();
    t.gauge(s(31), "errors", &[], 0.0).unwrap();
    assert!(changes(&mut t).is_empty());
    t.gauge(s(40), "errors", &[], 50.0).unwrap();
    assert_eq!(changes(&mut t), [(s(40), Normal, Major)]);
}

#[test]
fn the_end_of_no_data_is_reported_at_the_record_that_ends_it() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "heartbeat"
        metric = "heartbeat"
        no_data = { after = "10s", severity = "major" }
        "#,
    ))
    .unwrap();
    t.gauge(s(0), "heartbeat", &[], 1.0).unwrap();
    t.advance_to(s(20));
    assert_eq!(changes(&mut t), [(s(10), Normal, Major)]);
    t.gauge(ms(20_500), "heartbeat", &[], 1.0).unwrap();
    assert_eq!(
        changes(&mut t),
        [(ms(20_500), Major, Normal)],
        "not at the next tick"
    );
}

#[test]
fn a_removed_series_goes_no_data_timed_from_its_last_sample() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "up"
        metric = "up"
        no_data = { after = "30s", severity = "critical" }
        [rule.warning]
        threshold = 10
        "#,
    ))
    .unwrap();
    for at in 0..100 {
        t.gauge(s(at), "up", &[("job", "api")], 1.0).unwrap();
    }
    assert!(t.remove(s(100), "up", &[("job", "api")]));
    t.advance_to(s(129));
    assert!(
        changes(&mut t).is_empty(),
        "not at once, and not stamped at its first sample"
    );
    t.advance_to(s(140));
    // The record at 99 s was seen by the sweep at 100 s (silence is timed at tick grain).
    assert_eq!(changes(&mut t), [(s(130), Normal, Critical)]);
}

#[test]
fn a_placeholder_exists_only_while_nothing_matches() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "nightly"
        metric = "job_duration_seconds"
        select = { job = "nightly" }
        no_data = { after = "60s", severity = "warning" }
        "#,
    ))
    .unwrap();
    t.advance_to(s(70));
    assert_eq!(
        changes(&mut t),
        [(s(60), Normal, Warning)],
        "the job never reported"
    );
    assert_eq!(t.severity("nightly", &[("job", "nightly")]), Some(Warning));
    // It reports, with one more label than the placeholder had.
    t.gauge(
        s(80),
        "job_duration_seconds",
        &[("job", "nightly"), ("instance", "a")],
        12.0,
    )
    .unwrap();
    t.advance_to(s(90));
    let c = changes(&mut t);
    assert!(
        c.contains(&(s(80), Warning, Normal)),
        "the placeholder resolves: {c:?}"
    );
    assert_eq!(
        t.severity("nightly", &[("job", "nightly")]),
        None,
        "and is gone"
    );
    assert_eq!(
        t.severity("nightly", &[("job", "nightly"), ("instance", "a")]),
        Some(Normal)
    );
    let items = t.evaluator().status(Timestamp::from_secs(0)).items.len();
    assert_eq!(items, 1);
}

#[test]
fn a_fan_out_rule_leaves_no_ghost_beside_its_live_series() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "process-up"
        metric = "process_up"
        comparison = "below"
        no_data = { after = "30s", severity = "critical" }
        [rule.critical]
        threshold = 1
        "#,
    ))
    .unwrap();
    t.advance_to(s(40));
    assert_eq!(changes(&mut t), [(s(30), Normal, Critical)]);
    for at in 41..100 {
        t.gauge(s(at), "process_up", &[("name", "nginx")], 1.0)
            .unwrap();
        t.gauge(s(at), "process_up", &[("name", "postgres")], 1.0)
            .unwrap();
    }
    let status = t.evaluator().status(Timestamp::from_secs(0));
    let items: Vec<_> = status
        .items
        .iter()
        .map(|i| (i.labels.to_string(), i.severity))
        .collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(|(_, sev)| *sev == Normal), "{items:?}");
    assert_eq!(
        changes(&mut t),
        [(s(41), Critical, Normal)],
        "the ghost resolved once"
    );
}

#[test]
fn a_counter_that_stops_counting_goes_no_data() {
    let mut t = RuleTest::new(rules(
        r#"
        [[rule]]
        name = "requests"
        metric = "requests_total"
        aggregation = "rate"
        window = "1m"
        no_data = { after = "30s", severity = "warning" }
        [rule.major]
        threshold = 1000
        "#,
    ))
    .unwrap();
    for at in 0..=60 {
        t.counter(s(at), "requests_total", &[], 5).unwrap();
    }
    t.advance_to(s(90));
    assert!(changes(&mut t).is_empty());
    t.advance_to(s(95));
    // The last add (60 s) was seen by the sweep at 61 s: counters are read at ticks.
    assert_eq!(changes(&mut t), [(s(91), Normal, Warning)]);
    t.counter(s(100), "requests_total", &[], 5).unwrap();
    t.advance_to(s(101));
    assert_eq!(changes(&mut t).last().map(|c| c.2), Some(Normal));
}

#[test]
fn no_data_sooner_than_a_tick_is_refused_where_it_is_written() {
    let err = Config::from_str_named(
        "[[rule]]\nname = \"hb\"\nmetric = \"hb\"\nno_data = { after = \"0s\", severity = \"major\" }\n",
        "rules.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("rules.toml:4:"), "{err}");
    assert!(
        err.contains("no_data.after") && err.contains("tick"),
        "{err}"
    );
    let err = Config::from_str_named(
        "[evaluator]\ntick = \"10s\"\n[[rule]]\nname = \"hb\"\nmetric = \"hb\"\nno_data = { after = \"5s\", severity = \"major\" }\n",
        "rules.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("rules.toml:6:"), "{err}");
}

#[test]
fn an_evaluator_refuses_a_no_data_wait_shorter_than_its_tick() {
    let rule = vigilo::rules::Rule::builder("hb", "hb")
        .no_data(ms(500), Major)
        .build()
        .unwrap();
    let err = RuleTest::new(vec![rule]).unwrap_err().to_string();
    assert!(
        err.contains("no_data.after") && err.contains("tick (1s)"),
        "{err}"
    );
    let zero = vigilo::rules::Rule::builder("hb", "hb")
        .no_data(s(0), Major)
        .build();
    assert!(zero.is_err());
}

#[test]
fn empty_window_needs_a_window() {
    let err = Config::from_str_named(
        "[[rule]]\nname = \"x\"\nmetric = \"x\"\nempty_window = \"keep\"\n[rule.major]\nthreshold = 1\n",
        "rules.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("rules.toml:4:") && err.contains("empty_window"),
        "{err}"
    );
    let err = Config::from_str_named(
        "[[rule]]\nname = \"x\"\nmetric = \"x\"\naggregation = \"avg\"\nwindow = \"1m\"\nempty_window = \"drop\"\n[rule.major]\nthreshold = 1\n",
        "rules.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("rules.toml:6:") && err.contains("resolve"),
        "{err}"
    );
}

const LATENCY: &str = r#"
    [[rule]]
    name = "latency"
    metric = "latency_seconds"
    aggregation = "p99"
    window = "1m"
    [rule.warning]
    threshold = 0.5
"#;

fn traffic_then_silence(t: &mut RuleTest) {
    for at in 0..=30 {
        t.histogram(s(at), "latency_seconds", &[], &[1.0, 1.2])
            .unwrap();
    }
}

#[test]
fn an_empty_window_gives_no_value_and_the_item_resolves_by_default() {
    let mut t = RuleTest::new(rules(LATENCY)).unwrap();
    traffic_then_silence(&mut t);
    assert_eq!(changes(&mut t), [(s(0), Normal, Warning)]);
    t.advance_to(s(200));
    let c = changes(&mut t);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].1, c[0].2), (Warning, Normal));
    assert!(
        c[0].0 > s(30) && c[0].0 <= s(92),
        "once the window has emptied: {c:?}"
    );
}

#[test]
fn an_empty_window_can_keep_the_severity_or_hand_over_to_no_data() {
    let mut t = RuleTest::new(rules(&LATENCY.replace(
        "window = \"1m\"",
        "window = \"1m\"\n    empty_window = \"keep\"",
    )))
    .unwrap();
    traffic_then_silence(&mut t);
    t.advance_to(s(300));
    assert_eq!(changes(&mut t), [(s(0), Normal, Warning)], "kept");
    let mut t = RuleTest::new(rules(&LATENCY.replace(
        "window = \"1m\"",
        "window = \"1m\"\n    no_data = { after = \"2m\", severity = \"major\" }",
    )))
    .unwrap();
    traffic_then_silence(&mut t);
    t.advance_to(s(300));
    let c = changes(&mut t);
    // The last observations (30 s) were seen by the sweep at 31 s; two minutes later:
    assert_eq!(
        c.last().map(|c| (c.0, c.2)),
        Some((s(151), Major)),
        "no data takes over: {c:?}"
    );
    assert!(!c.iter().any(|c| c.2 == Normal), "{c:?}");
}

/// Monday 2026-11-23 08:00 UTC.
const MONDAY_8AM: Timestamp = Timestamp::from_secs(1_795_392_000 + 8 * 3600);

#[test]
fn an_alert_raised_when_a_window_opens_is_stamped_inside_it() {
    let mut t = RuleTest::starting_at(
        rules(
            r#"
            [[rule]]
            name = "queue"
            metric = "queue"
            schedule = { hours = ["09:00-17:00"] }
            no_data = { after = "5m", severity = "major" }
            [rule.warning]
            threshold = 10
            "#,
        ),
        MONDAY_8AM,
        EvaluatorConfig::default(),
    )
    .unwrap();
    t.gauge(s(0), "queue", &[], 50.0).unwrap();
    t.advance_to(s(3600 + 30));
    let c = changes(&mut t);
    assert!(!c.is_empty(), "{c:?}");
    for (at, _, to) in &c {
        assert!(
            *at >= s(3600),
            "{to} stamped {at:?}, before the window opened at 09:00: {c:?}"
        );
    }
}

#[test]
fn outside_its_window_a_rule_can_suppress_instead_of_resolving() {
    let text = |outside: &str| {
        format!(
            r#"
            [[rule]]
            name = "disk"
            metric = "disk"
            schedule = {{ hours = ["09:00-17:00"] }}
            outside_schedule = "{outside}"
            [rule.critical]
            threshold = 90
            "#
        )
    };
    // 16:00 Monday: one hour of window left.
    let start = Timestamp::from_secs(1_795_392_000 + 16 * 3600);
    // Resolve (the default): the item goes Normal at 17:00.
    let mut t =
        RuleTest::starting_at(rules(&text("resolve")), start, EvaluatorConfig::default()).unwrap();
    for at in (0..=7200).step_by(60) {
        t.gauge(s(at), "disk", &[], 95.0).unwrap();
    }
    let c = changes(&mut t);
    assert_eq!(c[0], (s(0), Normal, Critical));
    assert_eq!((c[1].1, c[1].2), (Critical, Normal), "{c:?}");
    // Suppress: it stays Critical, nothing is reported while closed, and a change while closed
    // is reported when the window opens.
    let mut t =
        RuleTest::starting_at(rules(&text("suppress")), start, EvaluatorConfig::default()).unwrap();
    for at in (0..=7200).step_by(60) {
        t.gauge(s(at), "disk", &[], 95.0).unwrap();
    }
    assert_eq!(changes(&mut t), [(s(0), Normal, Critical)]);
    assert_eq!(t.severity("disk", &[]), Some(Critical));
    t.gauge(s(7300), "disk", &[], 10.0).unwrap(); // recovers at 18:01, while closed
    // Next morning, 09:00 Tuesday: 17 h after the start.
    t.advance_to(s(17 * 3600 + 60));
    let c = changes(&mut t);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].1, c[0].2), (Critical, Normal));
    assert_eq!(c[0].0, s(17 * 3600), "reported at the window's start");
}

#[test]
fn a_level_given_twice_is_reported_at_the_second_key() {
    let text = "[[rule]]\nname = \"cpu\"\nmetric = \"cpu\"\n[rule.\"긴급\"]\nthreshold = 80\n[rule.major]\nthreshold = 85\n";
    let err = Config::from_str_named(text, "rules.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("rules.toml:6:"), "{err}");
    assert!(err.contains("major") && err.contains("긴급"), "{err}");
}

#[test]
fn a_restart_restarts_the_no_data_clock_and_keeps_no_data_in_force() {
    use std::sync::Arc;
    use vigilo::Registry;
    use vigilo::clock::ManualClock;
    use vigilo::eval::Evaluator;
    use vigilo::rules::{Level, Rule};

    let rule = || {
        Rule::builder("hb", "hb")
            .level(Level::new(Warning, 5.0))
            .no_data(s(30), Major)
            .build()
            .unwrap()
    };
    let t0 = vigilo::testing::START;
    // First life: `a` goes silent and into no data; `c` stays at Warning, recorded.
    let registry = Registry::new();
    let clock = ManualClock::new(t0);
    let (mut ev, _rx) = Evaluator::new(
        registry.clone(),
        vec![rule()],
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    registry.set_gauge("hb", &[("job", "a")], 1.0).unwrap();
    for i in 0..=40 {
        clock.set(t0 + s(i));
        registry.set_gauge("hb", &[("job", "c")], 10.0).unwrap();
        ev.tick(t0 + s(i));
    }
    let saved = ev.item_states();
    assert_eq!(saved.len(), 2, "{saved:?}");
    drop(ev);

    // Second life, an hour later: the series exist again but nothing is recorded yet.
    let t1 = t0 + s(3600);
    let registry = Registry::new();
    let clock = ManualClock::new(t1);
    let (mut ev, rx) = Evaluator::new(
        registry.clone(),
        vec![rule()],
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    ev.restore_item_states(saved);
    let a = registry.gauge("hb", &[("job", "a")]).unwrap();
    let _c = registry.gauge("hb", &[("job", "c")]).unwrap();
    let mut seen = Vec::new();
    for i in 0..=40 {
        clock.set(t1 + s(i));
        if i == 20 {
            a.set(1.0);
        }
        ev.tick(t1 + s(i));
        seen.extend(rx.try_iter().map(|x| {
            (
                x.labels.get("job").unwrap_or("").to_owned(),
                x.at.since(t1),
                x.to,
                x.no_data,
            )
        }));
    }
    // `a` stays in no data until its first record; `c` is not in no data at once (its clock
    // restarted), but 30 s after the restart.
    assert!(
        seen.contains(&("a".to_owned(), s(20), Normal, false)),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|x| x.0 == "a" && x.1 < s(20)), "{seen:?}");
    assert!(
        seen.contains(&("c".to_owned(), s(30), Major, true)),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|x| x.0 == "c" && x.3 && x.1 < s(30)),
        "{seen:?}"
    );
}

#[test]
fn a_series_created_past_its_threshold_is_reported_before_the_next_tick() {
    use std::sync::Arc;
    use vigilo::Registry;
    use vigilo::clock::ManualClock;
    use vigilo::eval::Evaluator;
    use vigilo::rules::{Level, Rule};

    let t0 = vigilo::testing::START;
    let registry = Registry::new();
    let clock = ManualClock::new(t0);
    let rule = Rule::builder("queue", "queue_depth")
        .level(Level::new(Critical, 100.0))
        .build()
        .unwrap();
    let config = EvaluatorConfig {
        tick: s(3600),
        ..EvaluatorConfig::default()
    };
    let (mut ev, rx) = Evaluator::new(
        registry.clone(),
        vec![rule],
        Arc::new(clock.clone()),
        config,
    )
    .unwrap();
    ev.tick(t0);
    // The series appears after the sweep, already past the threshold.
    registry
        .set_gauge("queue_depth", &[("shard", "7")], 500.0)
        .unwrap();
    clock.set(t0 + ms(5));
    ev.poll(t0 + ms(5));
    let t = rx
        .try_recv()
        .expect("reported at the poll, not an hour later");
    assert_eq!((t.to, t.at), (Critical, t0 + ms(5)));
    // Series created in a burst are bound together, at most every 10 ms.
    for i in 0..50 {
        registry
            .set_gauge("queue_depth", &[("shard", &i.to_string())], 500.0)
            .unwrap();
    }
    ev.poll(t0 + ms(6));
    assert!(rx.try_recv().is_err(), "not bound again within 10 ms");
    assert_eq!(ev.next_deadline(), Some(t0 + ms(15)));
    ev.poll(t0 + ms(15));
    assert_eq!(rx.try_iter().count(), 49, "the other 49 shards, at once");
}
