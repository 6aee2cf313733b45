//! The public rule-testing helper, on the seed scenario from `examples/rules.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::time::Duration;

use vigilo::Severity::{self, *};
use vigilo::config::Config;
use vigilo::testing::RuleTest;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn seed() -> RuleTest {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules.toml");
    let config = Config::from_file(path).unwrap();
    let cpu = config
        .rules
        .into_iter()
        .filter(|r| r.name() == "cpu")
        .collect();
    RuleTest::new(cpu).unwrap()
}

/// Records `value` every second from `from` to `to`, as the host collector does.
fn hold(t: &mut RuleTest, from: u64, to: u64, value: f64) {
    for at in from..=to {
        t.gauge(s(at), "host_cpu_usage_ratio", &[], value).unwrap();
    }
}

fn changes(t: &mut RuleTest) -> Vec<(u64, Severity, Severity)> {
    t.transitions()
        .into_iter()
        .map(|x| (t.offset(x.at).as_secs(), x.from, x.to))
        .collect()
}

#[test]
fn seed_warning_at_70_major_at_80_for_a_minute() {
    let mut t = seed();
    let cpu = "host_cpu_usage_ratio";
    hold(&mut t, 0, 4, 0.30);
    hold(&mut t, 5, 19, 0.75);
    hold(&mut t, 20, 79, 0.82);
    assert_eq!(changes(&mut t), vec![(5, Normal, Warning)]);
    hold(&mut t, 80, 99, 0.82);
    assert_eq!(changes(&mut t), vec![(80, Warning, Major)]);
    t.gauge(s(100), cpu, &[], 0.10).unwrap();
    assert_eq!(changes(&mut t), vec![(100, Major, Normal)]);
}

#[test]
fn seed_critical_at_95_for_30s_three_times() {
    let mut t = seed();
    hold(&mut t, 0, 99, 0.30);
    for start in [100, 200] {
        hold(&mut t, start, start + 34, 0.97);
        hold(&mut t, start + 35, start + 99, 0.30);
    }
    let so_far = changes(&mut t);
    assert!(so_far.iter().all(|c| c.2 != Critical), "{so_far:?}");
    hold(&mut t, 300, 330, 0.97);
    let last = changes(&mut t);
    assert!(last.contains(&(330, Warning, Critical)), "{last:?}");
    assert_eq!(t.severity("cpu", &[]), Some(Critical));
}

#[test]
fn seed_no_data_after_30s_of_silence() {
    let mut t = seed();
    hold(&mut t, 0, 10, 0.30);
    // The last record (at 10 s) is first seen by the sweep at 11 s: silence is timed from there.
    t.advance_to(s(40));
    assert_eq!(t.transitions(), vec![]);
    t.advance_to(s(41));
    let got = t.transitions();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].to, got[0].no_data, t.offset(got[0].at)),
        (Major, true, s(41))
    );
}

#[test]
fn counter_rate_over_a_window() {
    let config: Config = r#"
        [[rule]]
        name = "errors"
        metric = "http_errors_total"
        aggregation = "rate"
        window = "1m"
        [rule.major]
        threshold = 5          # errors per second
    "#
    .parse()
    .unwrap();
    let mut t = RuleTest::new(config.rules).unwrap();
    // 2 errors a second for two minutes: rate 2/s.
    for sec in 0..120 {
        t.counter(s(sec), "http_errors_total", &[], 2).unwrap();
    }
    assert_eq!(t.severity("errors", &[]), Some(Normal));
    // A burst: 10 a second. Over a 1 minute window the rate passes 5/s after ~25 s.
    for sec in 120..200 {
        t.counter(s(sec), "http_errors_total", &[], 10).unwrap();
    }
    let c = changes(&mut t);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].1, c[0].2), (Normal, Major));
    assert!((140..=150).contains(&c[0].0), "{c:?}");
}

#[test]
fn histogram_percentile_over_a_window() {
    let config: Config = r#"
        [[rule]]
        name = "latency"
        metric = "request_duration_seconds"
        aggregation = "p99"
        window = "30s"
        [rule.warning]
        threshold = 0.25
        [rule.critical]
        threshold = 1.0
    "#
    .parse()
    .unwrap();
    let mut t = RuleTest::new(config.rules).unwrap();
    let fast: Vec<f64> = (1..=100).map(|i| 0.001 * f64::from(i)).collect(); // 1..100 ms
    for sec in 0..60 {
        t.histogram(s(sec), "request_duration_seconds", &[], &fast)
            .unwrap();
    }
    assert_eq!(t.severity("latency", &[]), Some(Normal));
    // 50 requests of 2 s: over 1 % of the ~3 150 in the window, so the window's p99 jumps over
    // 1 s at once (the histogram's watch sees the slow observation), and drops back once that
    // second ages out of the window.
    let mut slow = fast.clone();
    slow.extend([2.0; 50]);
    t.histogram(s(60), "request_duration_seconds", &[], &slow)
        .unwrap();
    let c = changes(&mut t);
    assert_eq!(c, vec![(60, Normal, Critical)]);
    for sec in 61..=100 {
        t.histogram(s(sec), "request_duration_seconds", &[], &fast)
            .unwrap();
    }
    let c = changes(&mut t);
    assert_eq!(
        c,
        vec![(90, Critical, Normal)],
        "back once the slow second leaves the 30 s window"
    );
}
