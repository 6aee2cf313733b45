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
