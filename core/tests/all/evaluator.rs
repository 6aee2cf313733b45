//! The evaluator's semantics, each on a virtual clock: no test sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use proptest::prelude::*;
use vigilo::clock::{Clock, ManualClock, Timestamp};
use vigilo::eval::{Evaluator, EvaluatorConfig, Transition};
use vigilo::rules::{Aggregation, Comparison, Level, Matcher, Rule, Schedule};
use vigilo::{Gauge, Registry, Severity};

use Severity::*;

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

struct Harness {
    registry: Registry,
    clock: ManualClock,
    ev: Evaluator,
    rx: Receiver<Transition>,
    gauge: Gauge,
    start: Timestamp,
}

impl Harness {
    fn new(rules: Vec<Rule>) -> Self {
        Self::with(
            rules,
            EvaluatorConfig::default(),
            Timestamp::from_secs(START),
        )
    }

    fn with(rules: Vec<Rule>, config: EvaluatorConfig, start: Timestamp) -> Self {
        let registry = Registry::new();
        let gauge = registry.gauge("m", &[]).unwrap();
        let clock = ManualClock::new(start);
        let (ev, rx) =
            Evaluator::new(registry.clone(), rules, Arc::new(clock.clone()), config).unwrap();
        Harness {
            registry,
            clock,
            ev,
            rx,
            gauge,
            start,
        }
    }

    fn t(&self, s: f64) -> Timestamp {
        self.start + Duration::from_secs_f64(s)
    }

    /// Records `v` at `s` seconds and lets the evaluator react as it would between ticks.
    fn set(&mut self, s: f64, v: f64) {
        let t = self.t(s);
        self.clock.set(t);
        self.gauge.set(v);
        self.ev.poll(t);
    }

    /// A full sweep at `s` seconds.
    fn tick(&mut self, s: f64) {
        let t = self.t(s);
        self.clock.set(t);
        self.ev.tick(t);
    }

    /// Ticks every second from `from` to `to` inclusive.
    fn ticks(&mut self, from: u64, to: u64) {
        for s in from..=to {
            self.tick(s as f64);
        }
    }

    /// `(seconds, from, to)` of every transition so far.
    fn changes(&self) -> Vec<(f64, Severity, Severity)> {
        self.rx
            .try_iter()
            .map(|t| (t.at.since(self.start).as_secs_f64(), t.from, t.to))
            .collect()
    }
}

fn ladder() -> Rule {
    Rule::builder("ladder", "m")
        .level(Level::new(Info, 0.5))
        .level(Level::new(Warning, 0.6))
        .level(Level::new(Minor, 0.7))
        .level(Level::new(Major, 0.8))
        .level(Level::new(Critical, 0.9))
        .build()
        .unwrap()
}

#[test]
fn each_level_boundary() {
    // Strictly above a threshold fires; exactly at it does not.
    let table = [
        (0.0, Normal),
        (0.5, Normal),
        (0.5001, Info),
        (0.6, Info),
        (0.61, Warning),
        (0.7, Warning),
        (0.75, Minor),
        (0.8, Minor),
        (0.85, Major),
        (0.9, Major),
        (0.95, Critical),
        (100.0, Critical),
    ];
    for (value, expected) in table {
        let mut h = Harness::new(vec![ladder()]);
        h.gauge.set(value);
        h.tick(0.0);
        let status = h.ev.status(h.t(0.0));
        assert_eq!(status.items[0].severity, expected, "value {value}");
    }
}

#[test]
fn edge_triggered_detection_between_ticks() {
    let mut h = Harness::new(vec![ladder()]);
    h.gauge.set(0.1);
    h.tick(0.0);
    // No tick after this: the record itself wakes the evaluator through the armed watch.
    h.set(0.250, 0.86);
    assert_eq!(h.changes(), vec![(0.25, Normal, Major)]);
    assert_eq!(h.ev.stats().watch_wakeups, 1);
    // Moving within Major's band does not wake it; leaving the band does.
    h.set(0.5, 0.88);
    assert_eq!(h.ev.stats().watch_wakeups, 1);
    h.set(0.75, 0.2);
    assert_eq!(h.changes(), vec![(0.75, Major, Normal)]);
}

#[test]
fn escalation_and_de_escalation() {
    let mut h = Harness::new(vec![ladder()]);
    h.gauge.set(0.1);
    h.tick(0.0);
    for (s, v) in [
        (1.0, 0.65),
        (2.0, 0.85),
        (3.0, 0.95),
        (4.0, 0.85),
        (5.0, 0.65),
        (6.0, 0.1),
    ] {
        h.set(s, v);
    }
    assert_eq!(
        h.changes(),
        vec![
            (1.0, Normal, Warning),
            (2.0, Warning, Major),
            (3.0, Major, Critical),
            (4.0, Critical, Major),
            (5.0, Major, Warning),
            (6.0, Warning, Normal),
        ]
    );
}

#[test]
fn duration_is_timed_from_the_crossing() {
    let rule = Rule::builder("cpu", "m")
        .level(Level::new(Warning, 0.7))
        .level(Level::new(Major, 0.8).hold_for(secs(60)))
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.gauge.set(0.1);
    h.tick(0.0);
    h.set(10.4, 0.85); // crossing between ticks
    h.ticks(11, 69);
    assert_eq!(
        h.changes(),
        vec![(10.4, Normal, Warning)],
        "Major before its minute"
    );
    // The deadline comes due at 70.4 s: `poll` finds it without waiting for the tick at 71.
    assert_eq!(h.ev.next_deadline(), Some(h.t(70.4)));
    h.clock.set(h.t(70.4));
    h.ev.poll(h.t(70.4));
    assert_eq!(h.changes(), vec![(70.4, Warning, Major)]);
}

#[test]
fn duration_resets_when_the_condition_breaks() {
    let rule = Rule::builder("cpu", "m")
        .level(Level::new(Major, 0.8).hold_for(secs(60)))
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.gauge.set(0.9);
    h.ticks(0, 50);
    h.set(50.5, 0.5); // dips below before the minute is up
    h.set(51.0, 0.9);
    h.ticks(52, 110);
    assert_eq!(h.changes(), vec![]);
    h.ticks(111, 111);
    assert_eq!(h.changes(), vec![(111.0, Normal, Major)]);
}

#[test]
fn occurrences_within_a_window() {
    // The seed's Critical: over 95 % for 30 s, three times within 10 minutes.
    let rule = Rule::builder("cpu", "m")
        .level(
            Level::new(Critical, 0.95)
                .hold_for(secs(30))
                .occurrences(3, secs(600)),
        )
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    let spike = |h: &mut Harness, at: u64| {
        h.set(at as f64, 0.97);
        h.ticks(at + 1, at + 40);
        h.set((at + 41) as f64, 0.5);
    };
    spike(&mut h, 0); // occurrence 1 completes at 30
    spike(&mut h, 100); // occurrence 2 at 130
    assert_eq!(h.changes(), vec![]);
    spike(&mut h, 200); // occurrence 3 at 230: Critical
    assert_eq!(
        h.changes(),
        vec![(230.0, Normal, Critical), (241.0, Critical, Normal)]
    );
    // Too spread out: only two within any 10 minutes.
    let mut h = Harness::new(vec![
        Rule::builder("cpu", "m")
            .level(
                Level::new(Critical, 0.95)
                    .hold_for(secs(30))
                    .occurrences(3, secs(600)),
            )
            .build()
            .unwrap(),
    ]);
    spike(&mut h, 0);
    spike(&mut h, 400);
    spike(&mut h, 800); // the first (at 30) is older than 10 minutes at 830
    assert_eq!(h.changes(), vec![]);
    // A short spike is not an occurrence.
    h.set(900.0, 0.97);
    h.set(910.0, 0.5);
    spike(&mut h, 1001); // 430, 830, 1031: 430 is just outside [431, 1031]
    assert_eq!(h.changes(), vec![]);
    // A third one soon after: 830, 1031 and 1260 all fall within [660, 1260].
    spike(&mut h, 1230);
    assert_eq!(
        h.changes(),
        vec![(1260.0, Normal, Critical), (1271.0, Critical, Normal)]
    );
}

#[test]
fn hysteresis_clear_threshold_and_duration() {
    let rule = Rule::builder("temp", "m")
        .level(Level::new(Major, 80.0).clear_at(70.0))
        .clear_for(secs(10))
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.gauge.set(50.0);
    h.tick(0.0);
    h.set(1.0, 85.0);
    h.set(2.0, 75.0); // below the threshold but above the clear threshold: still Major
    h.ticks(3, 20);
    assert_eq!(h.changes(), vec![(1.0, Normal, Major)]);
    h.set(21.0, 65.0); // past the clear threshold: clears after 10 s
    h.ticks(22, 25);
    h.set(25.5, 72.0); // back into the band: the clear timer restarts
    h.ticks(26, 40);
    h.set(40.2, 60.0);
    h.ticks(41, 49);
    assert_eq!(h.changes(), vec![]);
    h.clock.set(h.t(50.2));
    h.ev.poll(h.t(50.2));
    assert_eq!(h.changes(), vec![(50.2, Major, Normal)]);
}

#[test]
fn flapping_holds_notifications_until_it_settles() {
    let rule = Rule::builder("flappy", "m")
        .level(Level::new(Warning, 0.5))
        .flap(3, secs(60))
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.gauge.set(0.0);
    h.tick(0.0);
    for (i, s) in (1..=8).enumerate() {
        h.set(s as f64, if i % 2 == 0 { 0.9 } else { 0.1 });
    }
    let all: Vec<Transition> = h.rx.try_iter().collect();
    // Three changes are reported; the fourth marks the item flapping; the rest are held.
    let flags: Vec<(Severity, Severity, bool)> =
        all.iter().map(|t| (t.from, t.to, t.flapping)).collect();
    assert_eq!(
        flags,
        vec![
            (Normal, Warning, false),
            (Warning, Normal, false),
            (Normal, Warning, false),
            (Warning, Normal, true)
        ]
    );
    let status = h.ev.status(h.t(8.0));
    assert!(status.items[0].flapping);
    // It settles at Normal; once the changes age out of the window, flapping ends with one report.
    h.ticks(9, 64);
    assert_eq!(
        h.rx.try_iter().count(),
        0,
        "still flapping within the window"
    );
    h.ticks(65, 70);
    let end: Vec<(Severity, Severity, bool)> =
        h.rx.try_iter()
            .map(|t| (t.from, t.to, t.flapping))
            .collect();
    assert_eq!(end, vec![(Normal, Normal, false)]);
}

#[test]
fn no_data_after_silence_and_back() {
    let rule = Rule::builder("hb", "m")
        .level(Level::new(Major, 10.0))
        .no_data(secs(30), Minor)
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.set(0.0, 1.0);
    h.ticks(0, 29);
    assert_eq!(h.changes(), vec![]);
    h.ticks(30, 31);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].from, t[0].to, t[0].no_data, t[0].value),
        (Normal, Minor, true, None)
    );
    assert_eq!(t[0].at, h.t(30.0));
    assert!(h.ev.status(h.t(31.0)).items[0].no_data);
    // Data returns: the item is judged on it again.
    h.set(40.0, 2.0);
    h.tick(40.0);
    let back: Vec<(Severity, Severity, bool)> =
        h.rx.try_iter().map(|t| (t.from, t.to, t.no_data)).collect();
    assert_eq!(back, vec![(Minor, Normal, false)]);
}

#[test]
fn no_data_for_an_item_that_never_reports() {
    let rule = Rule::builder("ghost", "never_recorded")
        .matcher(Matcher::parse("job", "batch").unwrap())
        .level(Level::new(Major, 1.0))
        .no_data(secs(120), Critical)
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.ticks(0, 119);
    assert_eq!(h.changes(), vec![]);
    h.tick(120.0);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!((t[0].to, t[0].no_data), (Critical, true));
    assert_eq!(
        t[0].labels.get("job"),
        Some("batch"),
        "placeholder carries the matcher's labels"
    );
}

fn scheduled(zone: &str) -> Rule {
    Rule::builder("office", "m")
        .level(Level::new(Major, 0.5))
        .schedule(Schedule::new(zone, &["09:00-17:00"], &["mon-fri"]).unwrap())
        .build()
        .unwrap()
}

/// Ticks at each RFC 3339 time with a high value and returns the severity seen.
fn severities_at(zone: &str, times: &[&str]) -> Vec<Severity> {
    let first = Timestamp::parse(times[0]).unwrap();
    let mut h = Harness::with(vec![scheduled(zone)], EvaluatorConfig::default(), first);
    h.gauge.set(0.9);
    times
        .iter()
        .map(|s| {
            let t = Timestamp::parse(s).unwrap();
            h.clock.set(t);
            h.ev.tick(t);
            h.ev.status(t).items[0].severity
        })
        .collect()
}

#[test]
fn schedule_boundaries_in_seoul() {
    // KST is UTC+9 all year. Monday 2026-11-23.
    let got = severities_at(
        "Asia/Seoul",
        &[
            "2026-11-22T23:59:59Z", // 08:59:59 Monday
            "2026-11-23T00:00:00Z", // 09:00 Monday
            "2026-11-23T07:59:59Z", // 16:59:59
            "2026-11-23T08:00:00Z", // 17:00
            "2026-11-28T01:00:00Z", // Saturday 10:00
        ],
    );
    assert_eq!(got, vec![Normal, Major, Major, Normal, Normal]);
}

#[test]
fn schedule_boundaries_across_a_dst_change() {
    // America/New_York: EST (UTC-5) until 2026-03-08 02:00, then EDT (UTC-4).
    let got = severities_at(
        "America/New_York",
        &[
            "2026-03-06T13:59:00Z", // Friday 08:59 EST
            "2026-03-06T14:00:00Z", // Friday 09:00 EST
            "2026-03-09T12:59:00Z", // Monday 08:59 EDT
            "2026-03-09T13:00:00Z", // Monday 09:00 EDT: one hour earlier in UTC
            "2026-03-09T20:59:00Z", // 16:59 EDT
            "2026-03-09T21:00:00Z", // 17:00 EDT
        ],
    );
    assert_eq!(got, vec![Normal, Major, Normal, Major, Major, Normal]);
}

#[test]
fn reload_keeps_state_of_unchanged_rules() {
    let rule = |threshold: f64, summary: &str| {
        Rule::builder("cpu", "m")
            .level(Level::new(Major, threshold).hold_for(secs(60)))
            .annotation("summary", summary)
            .build()
            .unwrap()
    };
    let mut h = Harness::new(vec![rule(0.8, "v1")]);
    h.set(0.0, 0.9);
    h.ticks(0, 30);
    // Same identity, new threshold and annotation: the minute keeps running from 0 s.
    h.ev.reload(vec![rule(0.85, "v2")], h.t(30.0)).unwrap();
    h.ticks(31, 60);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].to, t[0].at, t[0].threshold),
        (Major, h.t(60.0), Some(0.85))
    );
    assert_eq!(t[0].annotations["summary"], "v2");

    // A different item (new aggregation) starts afresh; the old rule's Major is resolved.
    let other = Rule::builder("cpu", "m")
        .aggregate(Aggregation::Max, secs(5))
        .level(Level::new(Major, 0.8).hold_for(secs(60)))
        .build()
        .unwrap();
    h.ev.reload(vec![other], h.t(61.0)).unwrap();
    assert_eq!(h.changes(), vec![(61.0, Major, Normal)]);
    h.ticks(62, 120);
    assert_eq!(h.changes(), vec![]);
    h.ticks(121, 121);
    assert_eq!(h.changes(), vec![(121.0, Normal, Major)]);
}

#[test]
fn fan_out_over_series_appearing_and_disappearing() {
    let rule = Rule::builder("disk", "disk_usage_ratio")
        .matcher(Matcher::parse("mount", "!~/boot.*").unwrap())
        .level(Level::new(Major, 0.9))
        .annotation("summary", "{{labels.mount}} at {{value}}")
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    let root = h
        .registry
        .gauge("disk_usage_ratio", &[("mount", "/")])
        .unwrap();
    h.registry
        .gauge("disk_usage_ratio", &[("mount", "/boot")])
        .unwrap()
        .set(0.99);
    root.set(0.5);
    h.tick(0.0);
    assert_eq!(h.ev.status(h.t(0.0)).items.len(), 1, "/boot is excluded");
    // A new mount appears, already full.
    h.registry
        .gauge("disk_usage_ratio", &[("mount", "/data")])
        .unwrap()
        .set(0.95);
    h.tick(1.0);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].labels.get("mount"), Some("/data"));
    assert_eq!(t[0].annotations["summary"], "/data at 0.95");
    // It is unmounted: the item goes away and its alert is resolved.
    assert!(h.registry.remove("disk_usage_ratio", &[("mount", "/data")]));
    h.tick(2.0);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!((t.len(), t[0].from, t[0].to), (1, Major, Normal));
    assert_eq!(h.ev.status(h.t(2.0)).items.len(), 1);
    // The remaining series still reacts between ticks.
    root.set(0.97);
    h.ev.poll(h.t(2.5));
    assert_eq!(
        h.rx.try_iter().map(|t| t.to).collect::<Vec<_>>(),
        vec![Major]
    );
}

#[test]
fn below_rules_and_windowed_aggregations() {
    let rule = Rule::builder("free", "m")
        .comparison(Comparison::Below)
        .aggregate(Aggregation::Avg, secs(10))
        .level(Level::new(Warning, 20.0))
        .level(Level::new(Critical, 5.0))
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    for s in 0..=12 {
        h.gauge.set(30.0 - 2.0 * s as f64); // 30 down to 6
        h.tick(s as f64);
    }
    // The last value is under 20 from 6 s, but the 10 s average only from 11 s (28..8: 18).
    assert_eq!(h.changes(), vec![(11.0, Normal, Warning)]);
}

#[test]
fn a_slow_consumer_never_blocks_and_loses_nothing() {
    let config = EvaluatorConfig {
        channel_capacity: 2,
        ..EvaluatorConfig::default()
    };
    let mut h = Harness::with(vec![ladder()], config, Timestamp::from_secs(START));
    h.gauge.set(0.0);
    h.tick(0.0);
    for i in 1..=40 {
        h.set(i as f64, if i % 2 == 1 { 0.95 } else { 0.0 });
    }
    let stats = h.ev.stats();
    assert_eq!(stats.transitions_backlogged, 38, "{stats:?}");
    assert_eq!(stats.transitions_dropped, 0);
    let mut got = Vec::new();
    while got.len() < 40 {
        got.extend(h.rx.try_iter());
        h.ev.poll(h.t(41.0));
    }
    let times: Vec<f64> = got
        .iter()
        .map(|t| t.at.since(h.start).as_secs_f64())
        .collect();
    assert_eq!(
        times,
        (1..=40).map(f64::from).collect::<Vec<_>>(),
        "in order, none lost"
    );
    // Past the backlog limit the oldest are dropped, and that is counted.
    let config = EvaluatorConfig {
        channel_capacity: 1,
        backlog_limit: 5,
        ..EvaluatorConfig::default()
    };
    let mut h = Harness::with(vec![ladder()], config, Timestamp::from_secs(START));
    h.gauge.set(0.0);
    h.tick(0.0);
    for i in 1..=10 {
        h.set(i as f64, if i % 2 == 1 { 0.95 } else { 0.0 });
    }
    let stats = h.ev.stats();
    assert_eq!(
        (stats.transitions_backlogged, stats.transitions_dropped),
        (5, 4)
    );
}

#[test]
fn transitions_carry_value_threshold_and_annotations() {
    let rule = Rule::builder("disk", "m")
        .level(Level::new(Major, 0.8))
        .label("team", "storage")
        .annotation(
            "summary",
            "{{rule}} {{severity}}: {{value}} over {{threshold}}",
        )
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.gauge.set(0.1);
    h.tick(0.0);
    h.set(5.0, 0.875);
    h.set(9.0, 0.5);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!(t[0].annotations["summary"], "disk major: 0.875 over 0.8");
    assert_eq!(t[0].rule_labels["team"], "storage");
    assert_eq!(
        (t[0].value, t[0].threshold, t[0].since),
        (Some(0.875), Some(0.8), h.t(0.0))
    );
    assert!(t[1].is_resolved());
    assert_eq!((t[1].since, t[1].threshold), (h.t(5.0), Some(0.8)));
}

/// `{{value_human}}` and `{{threshold_human}}` carry the unit the metric is described with, in
/// the transition's annotations and on the status board, beside the plain `{{value}}`.
#[test]
fn annotations_and_status_show_values_with_the_metrics_unit() {
    let rule = Rule::builder("cpu", "m")
        .level(Level::new(Major, 0.8))
        .annotation(
            "summary",
            "CPU at {{value_human}} (threshold {{threshold_human}}, raw {{value}})",
        )
        .build()
        .unwrap();
    let mut h = Harness::new(vec![rule]);
    h.registry
        .describe("m", Some("ratio"), "CPU in use")
        .unwrap();
    h.gauge.set(0.1);
    h.tick(0.0);
    h.set(5.0, 0.9225);
    let t: Vec<Transition> = h.rx.try_iter().collect();
    assert_eq!(
        t[0].annotations["summary"],
        "CPU at 92.3 % (threshold 80.0 %, raw 0.9225)"
    );
    let status = h.ev.status(h.t(5.0));
    let item = &status.items[0];
    assert_eq!(item.value_text, "92.3 %");
    assert_eq!(item.threshold_text.as_deref(), Some("80.0 %"));
    assert_eq!(item.unit.name(), "ratio");
    let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
    assert_eq!(json["items"][0]["unit"], "ratio");
    assert_eq!(json["items"][0]["value_text"], "92.3 %");
}

#[test]
fn duplicate_rule_names_are_refused() {
    let registry = Registry::new();
    let err = Evaluator::new(
        registry,
        vec![ladder(), ladder()],
        Arc::new(ManualClock::default()),
        EvaluatorConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "two rules are named \"ladder\"; rule names must be unique"
    );
}

#[test]
fn status_is_worst_first_and_serializes() {
    let rules = vec![
        ladder(),
        Rule::builder("other", "m2")
            .level(Level::new(Warning, 1.0))
            .build()
            .unwrap(),
    ];
    let mut h = Harness::new(rules);
    h.registry.gauge("m2", &[("x", "y")]).unwrap().set(0.0);
    h.gauge.set(0.95);
    h.tick(0.0);
    let status = h.ev.status(h.t(0.0));
    assert_eq!(status.worst, Critical);
    assert_eq!(
        status.items.iter().map(|i| i.severity).collect::<Vec<_>>(),
        vec![Critical, Normal]
    );
    assert_eq!((status.counts.critical, status.counts.normal), (1, 1));
    let json: serde_json::Value = serde_json::from_str(&status.to_json()).unwrap();
    assert_eq!(json["items"][0]["severity"], "critical");
    assert_eq!(json["items"][0]["colour"], "#c62828");
    assert_eq!(json["items"][1]["labels"]["x"], "y");
    assert_eq!(json["at"], "2026-01-01T00:00:00Z");
}

#[test]
fn threaded_evaluator_reports_a_crossing_without_a_tick() {
    // Real clock, 1 hour tick: only the watch can deliver this in time.
    let registry = Registry::new();
    let gauge = registry.gauge("m", &[]).unwrap();
    gauge.set(0.1);
    let config = EvaluatorConfig {
        tick: Duration::from_secs(3600),
        ..EvaluatorConfig::default()
    };
    let (ev, rx) = Evaluator::new(
        registry,
        vec![ladder()],
        Arc::new(vigilo::clock::SystemClock),
        config,
    )
    .unwrap();
    let handle = ev.spawn().unwrap();
    // The first sweep runs at start; wait until it has armed the watch.
    while handle.stats().unwrap().ticks == 0 {
        std::thread::yield_now();
    }
    gauge.set(0.99);
    let t = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("transition");
    assert_eq!((t.from, t.to), (Normal, Critical));
    assert_eq!(handle.status().unwrap().worst, Critical);
    let ev = handle.stop().unwrap();
    assert_eq!(ev.stats().ticks, 1);
}

proptest! {
    /// For an `above` rule without durations, the severity never falls while the value rises.
    #[test]
    fn severity_is_monotone_in_the_value(
        mut thresholds in proptest::collection::btree_set(-1000i32..1000, 1..=5),
        mut values in proptest::collection::vec(-1500.0..1500.0f64, 1..60),
    ) {
        let levels: Vec<Level> = Severity::LEVELS
            .iter()
            .zip(std::mem::take(&mut thresholds))
            .map(|(&s, t)| Level::new(s, f64::from(t)))
            .collect();
        let mut builder = Rule::builder("p", "m");
        for l in levels {
            builder = builder.level(l);
        }
        let mut h = Harness::new(vec![builder.build().unwrap()]);
        values.sort_by(f64::total_cmp);
        let mut last = Normal;
        for (i, v) in values.into_iter().enumerate() {
            h.set(i as f64, v);
            h.tick(i as f64 + 0.5);
            let now = h.ev.status(h.t(i as f64 + 0.5)).items[0].severity;
            prop_assert!(now >= last, "value {v}: {now} after {last}");
            last = now;
        }
    }
}

/// Items of all rules share one array in rule order: a series appearing for an early rule moves
/// every later rule's items. A later item part-way through its hold must still complete it at
/// the right moment, once, and an early item must keep its own state.
#[test]
fn items_keep_their_state_and_deadlines_when_earlier_rules_gain_series() {
    let registry = Registry::new();
    let clock = ManualClock::new(Timestamp::from_secs(START));
    let early = Rule::builder("early", "early_m")
        .level(Level::new(Warning, 10.0))
        .build()
        .unwrap();
    let late = Rule::builder("late", "late_m")
        .level(Level::new(Major, 10.0).hold_for(secs(60)))
        .build()
        .unwrap();
    let (mut ev, rx) = Evaluator::new(
        registry.clone(),
        vec![early, late],
        Arc::new(clock.clone()),
        EvaluatorConfig::default(),
    )
    .unwrap();
    let first = registry.gauge("early_m", &[("i", "0")]).unwrap();
    first.set(50.0);
    let held = registry.gauge("late_m", &[("i", "x")]).unwrap();
    held.set(50.0);
    ev.tick(clock.now());
    let t0 = clock.now();
    // The early rule fires; the late one starts holding.
    let fired: Vec<_> = rx.try_iter().map(|t| (t.rule.to_string(), t.to)).collect();
    assert_eq!(fired, vec![("early".to_owned(), Warning)]);
    // Twenty more series for the early rule, some past its threshold, appear while `late`
    // holds: its item moves twenty places further on.
    let more: Vec<Gauge> = (1..=20)
        .map(|k| {
            let g = registry.gauge("early_m", &[("i", &k.to_string())]).unwrap();
            g.set(if k % 2 == 0 { 50.0 } else { 1.0 });
            g
        })
        .collect();
    clock.advance(secs(30));
    ev.tick(clock.now());
    let fired: Vec<_> = rx
        .try_iter()
        .map(|t| (t.labels.to_string(), t.to))
        .collect();
    assert_eq!(fired.len(), 10, "{fired:?}");
    assert!(fired.iter().all(|(_, to)| *to == Warning));
    // The hold completes at t0 + 60 s, between ticks: `next_deadline` says when.
    assert_eq!(ev.next_deadline(), Some(t0 + secs(60)));
    clock.set(t0 + secs(60));
    ev.poll(clock.now());
    let fired: Vec<_> = rx
        .try_iter()
        .map(|t| (t.rule.to_string(), t.to, t.since, t.at))
        .collect();
    assert_eq!(fired, vec![("late".to_owned(), Major, t0, t0 + secs(60))]);
    // The first series' item kept its state (no second notification), and resolves once.
    first.set(0.0);
    clock.advance(secs(1));
    ev.tick(clock.now());
    let fired: Vec<_> = rx
        .try_iter()
        .map(|t| (t.labels.to_string(), t.from, t.to))
        .collect();
    assert_eq!(fired, vec![("{i=\"0\"}".to_owned(), Warning, Normal)]);
    drop(more);
}
