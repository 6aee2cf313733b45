//! The window aggregations added with issue 27 on the virtual clock, with answers computed by
//! hand: `stddev`, `delta`, `increase`, `change`; `timeleft` on a linear fill (checked against
//! Prometheus's `predict_linear` and Zabbix's `timeleft`); `anomaly` on a daily sine, its cold
//! start, a shift, and its learning carried over a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::time::Duration;

use vigilo::Severity::{self, *};
use vigilo::config::Config;
use vigilo::testing::{RuleTest, START};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn test_of(toml: &str) -> RuleTest {
    let config: Config = toml.parse().unwrap();
    RuleTest::starting_at(config.rules, START, config.evaluator).unwrap()
}

fn value(t: &RuleTest, rule: &str) -> Option<f64> {
    t.evaluator()
        .status(START)
        .items
        .into_iter()
        .find(|i| &*i.rule == rule)
        .and_then(|i| i.value)
}

#[test]
fn stddev_delta_increase_and_change_by_hand() {
    let mut t = test_of(
        r#"
        [[rule]]
        name = "sd"
        metric = "g"
        aggregation = "stddev"
        window = "7s"
        [rule.warning]
        threshold = 1.99

        [[rule]]
        name = "moved"
        metric = "g"
        aggregation = "delta"
        window = "1m"
        comparison = "below"
        [rule.warning]
        threshold = -100

        [[rule]]
        name = "grew"
        metric = "counter_like"
        aggregation = "increase"
        window = "1m"
        [rule.warning]
        threshold = 99

        [[rule]]
        name = "changed"
        metric = "state"
        aggregation = "change"
        window = "30s"
        [rule.warning]
        threshold = 0
    "#,
    );
    // Samples are taken at sweeps (every second): the value set at t is sampled at t + 1.
    // 2, 4, 4, 4, 5, 5, 7, 9 sampled at 1..=8 s: mean 5, population standard deviation 2.
    for (i, v) in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
        .into_iter()
        .enumerate()
    {
        t.gauge(s(i as u64), "g", &[], v).unwrap();
    }
    t.advance_to(s(8));
    assert!((value(&t, "sd").unwrap() - 2.0).abs() < 1e-12);
    assert_eq!(t.severity("sd", &[]), Some(Warning));
    // delta: newest (9) minus the baseline (2 at 0 s, the oldest: none is as old as 1 min).
    assert_eq!(value(&t, "moved"), Some(7.0));
    // increase: 100 → 150 → 20 (a restart from zero: counts 20) → 50 = 50 + 20 + 30 = 100.
    for (at, v) in [(10, 100.0), (20, 150.0), (30, 20.0), (40, 50.0)] {
        t.gauge(s(at), "counter_like", &[], v).unwrap();
    }
    t.advance_to(s(41));
    assert_eq!(value(&t, "grew"), Some(100.0));
    assert_eq!(t.severity("grew", &[]), Some(Warning));
    // change: 1 set at 50 and 51, 2 at 52, 1 at 61: sampled changes at 52 → 53 and 61 → 62.
    t.transitions();
    t.gauge(s(50), "state", &[], 1.0).unwrap();
    t.gauge(s(51), "state", &[], 1.0).unwrap();
    t.gauge(s(52), "state", &[], 2.0).unwrap();
    t.advance_to(s(60));
    assert_eq!(value(&t, "changed"), Some(1.0));
    t.gauge(s(61), "state", &[], 1.0).unwrap();
    t.advance_to(s(62));
    assert_eq!(value(&t, "changed"), Some(2.0));
    t.advance_to(s(100));
    let changed: Vec<_> = t
        .transitions()
        .iter()
        .filter(|x| &*x.rule == "changed")
        .map(|x| (t.offset(x.at), x.to))
        .collect();
    // Fires at the sweep that samples the 2; resolves when the newest sample at or before the
    // window's start is the one after the last change (62 s): at 92 s.
    assert_eq!(changed, [(s(53), Warning), (s(92), Normal)]);
}

/// Zabbix's `timeleft` on the line Prometheus's `predict_linear` fits, written from their
/// documented formulas: least squares over the samples in `(now − window, now]` (inclusive of
/// the start here, as vigilo's windows are), x = sample time − now; the nearest future root
/// of `intercept + slope·x = target`, or 1.7976931348623157e308 without one.
fn reference_time_left(samples: &[(f64, f64)], now: f64, window: f64, target: f64) -> Option<f64> {
    let inside: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|&(t, _)| t >= now - window && t <= now)
        .collect();
    let n = inside.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in &inside {
        let x = t - now;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    let var = sx2 - sx * sx / n;
    if n < 2.0 || var <= 0.0 {
        return None;
    }
    let slope = (sxy - sx * sy / n) / var;
    let intercept = sy / n - slope * sx / n;
    let root = (target - intercept) / slope;
    Some(if intercept == target {
        0.0
    } else if root > 0.0 && root.is_finite() {
        root
    } else {
        f64::MAX
    })
}

#[test]
fn timeleft_on_a_linear_fill_by_hand() {
    let mut t = test_of(
        r#"
        [evaluator]
        tick = "1m"

        [[rule]]
        name = "disk-full"
        metric = "disk_used_ratio"
        aggregation = "timeleft"
        window = "1h"
        comparison = "below"
        clear_for = "10m"
        annotations = { summary = "full in {{value}} s" }
        [rule.timeleft]
        target = "100%"
        [rule.warning]
        threshold = "24h"
        [rule.major]
        threshold = "4h"
    "#,
    );
    // The disk fills by 1 % every 10 minutes: r(t) = 0.5 + (t + 45 s) / 60000, full at
    // t = 30000 − 45 = 29955 s. The fill stops at 18000 s (flat from then on). Each value is
    // set one second before a sweep, which samples it: the sample at T is r(T).
    let r = |t: f64| 0.5 + (t + 45.0) / 60_000.0;
    let level = |t: f64| r(t.min(18_000.0));
    let mut samples = vec![(59.0, level(60.0))]; // the sweep that bound the new series
    let mut reference = Vec::new();
    for tick in (60..=25_200u64).step_by(60) {
        let at = tick as f64;
        t.gauge(s(tick - 1), "disk_used_ratio", &[], level(at))
            .unwrap();
        t.advance_to(s(tick));
        samples.push((at, level(at)));
        let want = reference_time_left(&samples, at, 3600.0, 1.0);
        if let (Some(want), Some(got)) = (want, value(&t, "disk-full")) {
            // Past 10^12 s both mean "never" (a flat window: the one-pass sums of the reference
            // leave a slope of rounding noise where the two-pass fit finds exactly 0).
            let never = |v: f64| v > 1e12;
            assert!(
                (never(got) && never(want)) || (got - want).abs() <= 1e-6 * want.max(1.0),
                "at {tick} s: {got} vs the reference {want}"
            );
        }
        reference.push((tick, want));
        if tick == 15_600 {
            // By hand: r(15600) = 0.5 + 15645/60000 = 0.76075, slope 1/60000 per s:
            // (1 − 0.76075) × 60000 = 14355 s left, under 4 h (14400 s): Major now.
            let got = value(&t, "disk-full").unwrap();
            assert!((got - 14_355.0).abs() < 1e-6, "{got}");
        }
    }
    let all = t.transitions();
    let changes: Vec<(Duration, Severity)> = all.iter().map(|x| (t.offset(x.at), x.to)).collect();
    // Warning from the first sweep with a rising line (two distinct values: 120 s).
    assert_eq!(changes.first(), Some(&(s(120), Warning)));
    assert_eq!(changes.get(1), Some(&(s(15_600), Major)));
    let major = &all[1];
    assert_eq!(
        major.annotations.get("time_left").map(String::as_str),
        Some("3h59m")
    );
    // 15600 + 14355 s after the start (2026-01-01T00:00:00Z): 08:19:15.
    assert!(
        major.annotations["reaches_target_at"].contains("T08:19:15"),
        "{:?}",
        major.annotations
    );
    // Hysteresis: the level clears 10 minutes (clear_for) after the first sweep from which
    // the time left stays at or over its threshold, by the reference.
    let cleared = |threshold: f64| {
        reference
            .iter()
            .position(|&(tick, _)| {
                reference
                    .iter()
                    .filter(|&&(u, _)| u >= tick && u <= tick + 600)
                    .all(|&(_, v)| v.is_none_or(|v| v >= threshold))
                    && tick > 15_600
            })
            .map(|i| s(reference[i].0 + 600))
    };
    let major_clears = cleared(14_400.0).unwrap();
    let warning_clears = cleared(86_400.0).unwrap();
    assert!(major_clears > s(18_000), "the fill went on until 18000 s");
    assert_eq!(
        changes.get(2..),
        Some(&[(major_clears, Warning), (warning_clears, Normal)][..])
    );
}

const DAY: u64 = 86_400;

const ANOMALY_RULES: &str = r#"
    [evaluator]
    tick = "1m"

    [[rule]]
    name = "traffic"
    metric = "requests_per_second"
    aggregation = "anomaly"
    window = "5m"
    [rule.anomaly]
    season = "daily"
    history = "7d"
    [rule.warning]
    threshold = 4
    [rule.critical]
    threshold = 8
"#;

/// Requests per second with a daily rhythm: 100 ± 50, peak at 06:00, plus ±2 of noise
/// (a fixed pseudo-random sequence, so the test is the same every run).
fn traffic(t: u64) -> f64 {
    let x = (t / 60)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let noise = (x >> 33) as f64 / (1u64 << 31) as f64 * 4.0 - 2.0;
    100.0 + 50.0 * (std::f64::consts::TAU * (t % DAY) as f64 / DAY as f64).sin() + noise
}

/// Feeds `f` minute by minute over `from..to` (offsets from the test's start), each value set
/// a second before the sweep that samples it.
fn feed(t: &mut RuleTest, from: u64, to: u64, f: impl Fn(u64) -> f64) {
    for tick in (from..to).step_by(60) {
        t.gauge(s(tick.max(1) - 1), "requests_per_second", &[], f(tick))
            .unwrap();
    }
}

#[test]
fn anomaly_is_quiet_on_a_daily_sine_for_a_week_and_sees_a_shift_within_its_window() {
    let mut t = test_of(ANOMALY_RULES);
    feed(&mut t, 0, 8 * DAY, traffic);
    t.advance_to(s(8 * DAY));
    // Cold for the first day (min_history: one season), then a week of the same rhythm:
    // nothing fires.
    assert_eq!(t.transitions(), []);
    assert!(value(&t, "traffic").is_some_and(|d| d < 4.0));
    // At 10:00 on day 8 the level jumps by 80 (a sixth of it per sampled minute enters the
    // 5-minute mean). Seen within one window: Warning, then Critical.
    let shift = 8 * DAY + 10 * 3600;
    feed(&mut t, 8 * DAY, shift, traffic);
    feed(&mut t, shift, shift + 600, |x| traffic(x) + 80.0);
    t.advance_to(s(shift + 600));
    let all = t.transitions();
    let changes: Vec<(Duration, Severity)> = all.iter().map(|x| (t.offset(x.at), x.to)).collect();
    assert!(
        changes
            .iter()
            .any(|&(at, sev)| sev == Warning && at <= s(shift + 300)),
        "{changes:?}"
    );
    let critical = changes
        .iter()
        .find(|c| c.1 == Critical)
        .unwrap_or_else(|| panic!("{changes:?}"));
    assert!(
        critical.0 > s(shift) && critical.0 <= s(shift + 300),
        "{changes:?}"
    );
    let alert = all.iter().find(|x| x.to == Critical).unwrap();
    for key in ["deviations", "expected", "spread", "observed"] {
        assert!(
            alert.annotations.contains_key(key),
            "{:?}",
            alert.annotations
        );
    }
}

#[test]
fn anomaly_has_no_value_while_cold() {
    let mut t = test_of(ANOMALY_RULES);
    // Wild swings in the first hours: nothing to compare with yet.
    feed(&mut t, 0, DAY - 3600, |x| {
        if (x / 3600) % 2 == 0 { 10.0 } else { 1000.0 }
    });
    assert_eq!(t.transitions(), []);
    assert_eq!(value(&t, "traffic"), None);
}

#[test]
fn anomaly_learning_survives_a_restart() {
    let rules = || ANOMALY_RULES.parse::<Config>().unwrap();
    // A first life of two days.
    let mut first = test_of(ANOMALY_RULES);
    feed(&mut first, 0, 2 * DAY, traffic);
    first.advance_to(s(2 * DAY));
    let learned = first.evaluator_mut().learned_states();
    assert_eq!(learned.len(), 1);
    assert!(
        first.evaluator_mut().learned_states().is_empty(),
        "handed out once per change"
    );

    // Through the store and back, as the monitor's checkpoint does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigilo.db");
    {
        use vigilo::pipeline::{OnCorrupt, SqliteStore, Store, StoreChange};
        let mut store =
            SqliteStore::open(&path, OnCorrupt::Refuse, 100, Duration::from_secs(3600)).unwrap();
        store.commit(&[StoreChange::Learned(learned)]).unwrap();
    }
    let restored = {
        use vigilo::pipeline::{OnCorrupt, SqliteStore, Store};
        let mut store =
            SqliteStore::open(&path, OnCorrupt::Refuse, 100, Duration::from_secs(3600)).unwrap();
        store.load().unwrap().learned
    };

    // The second life starts where the first stopped; a shift an hour later is seen at once.
    let start = START + s(2 * DAY);
    let shifted = |x: u64| traffic(2 * DAY + x) + if x >= 3600 { 80.0 } else { 0.0 };
    let mut warm = RuleTest::starting_at(rules().rules, start, rules().evaluator).unwrap();
    warm.evaluator_mut().restore_learned(restored);
    feed(&mut warm, 0, 3600 + 600, shifted);
    let seen: Vec<_> = warm.transitions().iter().map(|x| x.to).collect();
    assert!(seen.contains(&Critical), "{seen:?}");

    // Without what it learned, the same second life is cold and says nothing.
    let mut cold = RuleTest::starting_at(rules().rules, start, rules().evaluator).unwrap();
    feed(&mut cold, 0, 3600 + 600, shifted);
    assert_eq!(cold.transitions(), []);
}

#[test]
fn the_examples_load_and_their_disk_full_rule_predicts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let checks = Config::from_file(dir.join("checks.toml")).unwrap();
    assert_eq!((checks.logs.len(), checks.probes.len()), (2, 3));
    let rules = Config::from_file(dir.join("rules.toml")).unwrap();
    let disk_full: Vec<_> = rules
        .rules
        .into_iter()
        .filter(|r| r.name() == "disk-full")
        .collect();
    assert_eq!(disk_full.len(), 1);
    let mut t = RuleTest::new(disk_full).unwrap();
    // /data at 90 %, filling the last 10 % in 3 hours, sampled every second.
    let labels = [("mount", "/data"), ("device", "sdb1")];
    for at in 0..=60u64 {
        let used = 0.9 + 0.1 * at as f64 / 10_800.0;
        t.gauge(s(at), "host_disk_usage_ratio", &labels, used)
            .unwrap();
    }
    let all = t.transitions();
    let major = all
        .iter()
        .find(|x| x.to == Major)
        .expect("Major: under 4 h left");
    assert!(major.value.unwrap() < 14_400.0);
    assert!(
        major.annotations["time_left"].starts_with("3h"),
        "{:?}",
        major.annotations
    );
    assert!(major.annotations["summary"].contains("/data full in about"));
    // A minute in, the line has about the fill's slope: about 3 h − 1 min left (samples are
    // taken at the sweep after each record, and the first is taken twice: within 30 s).
    let left = value(&t, "disk-full").unwrap();
    assert!((left - (10_800.0 - 59.0)).abs() < 30.0, "{left}");
}
