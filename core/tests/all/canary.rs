//! Canary analysis end to end on a virtual clock: a canary and a baseline recording into one
//! registry, a `CanaryRun` closing intervals as the clock moves, the report, the published
//! series and a rule on them; and the `[[canary]]` configuration's errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup is the test failing

use std::sync::Arc;
use std::time::Duration;

use vigilo::canary::{
    CanaryMetric, CanaryReport, CanaryRun, CanarySpec, Direction, MetricVerdict, OnMissing, Verdict,
};
use vigilo::clock::{ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::testing::{RuleTest, START};
use vigilo::{Registry, Severity};

const STEP: Duration = Duration::from_secs(10);

/// A small deterministic generator: xorshift64*, Box-Muller for normal deviates.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Log-normal latency with this median (σ = 0.5 in log space).
    fn latency(&mut self, median: f64) -> f64 {
        median * (0.5 * self.normal()).exp()
    }
}

/// How one group behaves: its random source and the factor applied to one latency metric.
struct Group {
    deployment: &'static str,
    rng: Rng,
    /// Multiplies `api_latency_seconds`.
    slowdown: f64,
    /// Metrics this group does not emit.
    skip: &'static [&'static str],
}

const HISTOGRAMS: [(&str, f64); 3] = [
    ("api_latency_seconds", 0.050),
    ("db_latency_seconds", 0.008),
    ("render_latency_seconds", 0.120),
];

impl Group {
    fn new(deployment: &'static str, seed: u64) -> Self {
        Group {
            deployment,
            rng: Rng::new(seed),
            slowdown: 1.0,
            skip: &[],
        }
    }

    /// One step of traffic: 400 observations per latency histogram, requests and errors
    /// counted, the CPU gauge set.
    fn step(&mut self, registry: &Registry) {
        let labels = [("deployment", self.deployment)];
        for (name, median) in HISTOGRAMS {
            if self.skip.contains(&name) {
                continue;
            }
            let factor = if name == "api_latency_seconds" {
                self.slowdown
            } else {
                1.0
            };
            let h = registry.histogram(name, &labels).unwrap();
            for _ in 0..400 {
                h.record(self.rng.latency(median) * factor);
            }
        }
        let requests = (1000.0 + 30.0 * self.rng.normal()).max(0.0) as u64;
        registry
            .add_counter("requests_total", &labels, requests)
            .unwrap();
        if !self.skip.contains(&"errors_total") {
            let errors = (5.0 + 2.0 * self.rng.normal()).max(0.0) as u64;
            registry
                .add_counter("errors_total", &labels, errors)
                .unwrap();
        }
        let cpu = 0.5 + 0.03 * self.rng.normal();
        registry.set_gauge("cpu_ratio", &labels, cpu).unwrap();
    }
}

/// Five metrics, 3 intervals of 1 minute; the API latency weighs 10, the rest 1.
fn spec() -> CanarySpec {
    let mut spec = CanarySpec::new("checkout-v2")
        .timing(Duration::from_secs(60), Duration::from_secs(180))
        .metric(
            CanaryMetric::new("api_latency_seconds", Direction::HigherIsBad)
                .weight(10.0)
                .group("latency"),
        )
        .metric(CanaryMetric::new("db_latency_seconds", Direction::HigherIsBad).group("latency"))
        .metric(
            CanaryMetric::new("render_latency_seconds", Direction::HigherIsBad).group("latency"),
        )
        .metric(CanaryMetric::new("errors_total", Direction::HigherIsBad).group("errors"))
        .metric(CanaryMetric::new("requests_total", Direction::LowerIsBad).group("traffic"))
        .metric(CanaryMetric::new("cpu_ratio", Direction::Either).group("saturation"));
    spec.step = STEP;
    spec
}

/// Runs `spec` to completion with one step of traffic from each group per step.
fn run(spec: CanarySpec, mut canary: Group, mut baseline: Group) -> (CanaryReport, Registry) {
    let registry = Registry::new();
    let clock = Arc::new(ManualClock::new(START));
    // Both groups exist before the run starts, as deployed services would.
    canary.step(&registry);
    baseline.step(&registry);
    let mut run = CanaryRun::start(spec, &registry, clock.clone()).unwrap();
    let mut steps = 0;
    while !run.is_complete() {
        canary.step(&registry);
        baseline.step(&registry);
        clock.advance(STEP);
        run.tick().unwrap();
        steps += 1;
        assert!(steps <= 18, "the run should complete after 18 steps");
    }
    (run.report(), registry)
}

fn result<'a>(report: &'a CanaryReport, metric: &str) -> &'a vigilo::canary::MetricResult {
    report
        .metric(metric)
        .unwrap_or_else(|| panic!("{metric} not in the report"))
}

#[test]
fn identical_distributions_pass() {
    let (report, registry) = run(spec(), Group::new("canary", 1), Group::new("baseline", 2));
    assert!(report.complete);
    assert!(report.score() >= 95.0, "{}", report.to_json());
    assert_eq!(report.verdict(), Verdict::Pass);
    assert_eq!(report.intervals.len(), 3);
    for m in &report.result.metrics {
        assert_eq!(m.verdict, MetricVerdict::Pass, "{}: {}", m.metric, m.reason);
        assert!(m.p_value.is_some(), "{} was not compared", m.metric);
        assert!(m.canary.count > 0 && m.baseline.count > 0);
    }
    // Each interval's API latency compares that interval's 2,400 observations a group.
    let api = |i: usize| {
        report.intervals[i]
            .result
            .metrics
            .iter()
            .find(|m| m.metric == "api_latency_seconds")
            .unwrap()
            .clone()
    };
    assert_eq!(api(1).canary.count, 2400);
    assert_eq!(result(&report, "api_latency_seconds").canary.count, 7200);
    let snapshot = registry.snapshot();
    let score = snapshot
        .get("vigilo_canary_score", &[("canary", "checkout-v2")])
        .unwrap();
    assert_eq!(score.value.as_f64(), report.score());
    let verdict = snapshot
        .get("vigilo_canary_verdict", &[("canary", "checkout-v2")])
        .unwrap();
    assert_eq!(verdict.value.as_f64(), 0.0);
}

#[test]
fn a_latency_regression_on_a_heavy_metric_fails() {
    let mut canary = Group::new("canary", 3);
    canary.slowdown = 1.2;
    let (report, registry) = run(spec(), canary, Group::new("baseline", 4));
    assert_eq!(report.verdict(), Verdict::Fail, "{}", report.to_json());
    // The latency group (weight 12) keeps 2 of 12, the three others pass: (12 × 100 × 2/12
    // + 3 × 100) / 15 = 33.3.
    assert!(
        (report.score() - 100.0 / 3.0).abs() < 1e-9,
        "{}",
        report.score()
    );
    let api = result(&report, "api_latency_seconds");
    assert_eq!(api.verdict, MetricVerdict::Fail, "{}", api.reason);
    let effect = api.effect.unwrap();
    // 20 % plus the sampling noise of two medians of 7,200 (these seeds' raw samples give
    // +23.5 %) and the buckets' 0.78 %.
    assert!((0.15..0.26).contains(&effect), "effect {effect}: {api:?}");
    assert!(api.p_value.unwrap() < 1e-10);
    assert!(
        api.reason.contains("beyond the 10.0 % tolerance"),
        "{}",
        api.reason
    );
    // Nothing else is blamed.
    for m in report
        .result
        .metrics
        .iter()
        .filter(|m| m.metric != api.metric)
    {
        assert_eq!(m.verdict, MetricVerdict::Pass, "{}: {}", m.metric, m.reason);
    }
    // Every interval saw it too.
    assert!(
        report
            .intervals
            .iter()
            .all(|i| i.result.verdict == Verdict::Fail)
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["verdict"], "fail");
    let metrics = json["metrics"].as_array().unwrap();
    assert!(metrics.iter().any(|m| m["metric"] == "api_latency_seconds"
        && m["verdict"] == "fail"
        && m["reason"].as_str().unwrap().contains("tolerance")));
    let verdict = registry.snapshot();
    let verdict = verdict
        .get("vigilo_canary_verdict", &[("canary", "checkout-v2")])
        .unwrap();
    assert_eq!(verdict.value.as_f64(), 2.0);
}

#[test]
fn noise_within_tolerance_passes() {
    // 4 % slower: with 7,200 observations a group the test sees it, the tolerance forgives it.
    let mut canary = Group::new("canary", 5);
    canary.slowdown = 1.04;
    let (report, _) = run(spec(), canary, Group::new("baseline", 6));
    assert_eq!(report.verdict(), Verdict::Pass, "{}", report.to_json());
    let api = result(&report, "api_latency_seconds");
    assert_eq!(api.verdict, MetricVerdict::Pass);
    assert!(api.p_value.unwrap() < 0.05, "{}", api.reason);
    assert!(
        api.reason.contains("within the 10.0 % tolerance"),
        "{}",
        api.reason
    );
    // Without the tolerance, the same data fails: the tolerance is what passes it.
    let mut strict = spec();
    strict.metrics[0].tolerance = Some(0.01);
    let mut canary = Group::new("canary", 5);
    canary.slowdown = 1.04;
    let (report, _) = run(strict, canary, Group::new("baseline", 6));
    assert_eq!(
        result(&report, "api_latency_seconds").verdict,
        MetricVerdict::Fail
    );
}

#[test]
fn a_missing_metric_is_reported_not_scored_as_passing() {
    let mut canary = Group::new("canary", 7);
    canary.skip = &["errors_total"];
    let mut baseline = Group::new("baseline", 8);
    baseline.skip = &["render_latency_seconds"];
    let (report, _) = run(spec(), canary, baseline);
    let errors = result(&report, "errors_total");
    assert_eq!(errors.verdict, MetricVerdict::MissingInCanary);
    assert!(
        errors.reason.starts_with("missing in canary"),
        "{}",
        errors.reason
    );
    assert_eq!(errors.p_value, None);
    assert_eq!(errors.canary.series, 0);
    let render = result(&report, "render_latency_seconds");
    assert_eq!(render.verdict, MetricVerdict::MissingInBaseline);
    assert!(render.reason.starts_with("missing in baseline"));
    // Counted as failed: latency group 11 of 12, errors group 0 of 1 → (11 + 0 + 1 + 1) / 15.
    let expected = 100.0 * 13.0 / 15.0;
    assert!(
        (report.score() - expected).abs() < 1e-9,
        "{}",
        report.score()
    );
    assert_eq!(report.verdict(), Verdict::Marginal);

    // Ignored in the score, still reported.
    let mut lenient = spec();
    lenient.on_missing = OnMissing::Ignore;
    let mut canary = Group::new("canary", 7);
    canary.skip = &["errors_total"];
    let (report, _) = run(lenient, canary, Group::new("baseline", 8));
    assert_eq!(report.verdict(), Verdict::Pass);
    assert_eq!(
        result(&report, "errors_total").verdict,
        MetricVerdict::MissingInCanary
    );
}

#[test]
fn a_failed_canary_is_a_transition_of_an_ordinary_rule() {
    let config: Config = r#"
        [[rule]]
        name = "canary-failed"
        metric = "vigilo_canary_verdict"
        [rule.critical]
        threshold = 1.5
    "#
    .parse()
    .unwrap();
    let mut test = RuleTest::new(config.rules).unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let mut canary = Group::new("canary", 9);
    canary.slowdown = 1.3;
    let mut baseline = Group::new("baseline", 10);
    let registry = test.registry().clone();
    canary.step(&registry);
    baseline.step(&registry);
    let mut run = CanaryRun::start(spec(), &registry, clock.clone()).unwrap();
    let mut at = Duration::ZERO;
    while !run.is_complete() {
        canary.step(&registry);
        baseline.step(&registry);
        at += STEP;
        clock.advance(STEP);
        test.advance_to(at);
        run.tick().unwrap();
        if !run.is_complete() {
            // No verdict before the run is over, so nothing fires early.
            assert_eq!(
                test.severity("canary-failed", &[("canary", "checkout-v2")]),
                None
            );
        }
    }
    test.advance_to(at + Duration::from_secs(1));
    let transitions = test.transitions();
    let fired = transitions
        .iter()
        .find(|t| t.to == Severity::Critical)
        .expect("the failed canary fires the rule");
    assert_eq!(fired.labels.get("canary"), Some("checkout-v2"));
}

#[test]
fn config_section_and_its_errors() {
    let good = r#"
[[canary]]
name = "checkout-v2"
interval = "1m"
duration = "3m"
step = "10s"
tolerance = "15%"
on_missing = "ignore"
group_weights = { latency = 3 }

[[canary.metric]]
metric = "api_latency_seconds"
direction = "higher_is_bad"
weight = 10
group = "latency"
critical = true

[[canary.metric]]
metric = "requests_total"
direction = "decrease"
tolerance = 0.05
"#;
    let config = Config::from_str_named(good, "c.toml").unwrap();
    let spec = &config.canaries[0];
    assert_eq!(spec.name, "checkout-v2");
    assert_eq!(
        (spec.label.as_str(), spec.canary.as_str()),
        ("deployment", "canary")
    );
    assert_eq!(spec.intervals(), 3);
    assert!((spec.tolerance - 0.15).abs() < 1e-12);
    assert_eq!(spec.on_missing, OnMissing::Ignore);
    assert_eq!(spec.metrics[0].weight, 10.0);
    assert!(spec.metrics[0].critical);
    assert_eq!(spec.metrics[1].direction, Direction::LowerIsBad);
    assert_eq!(spec.metrics[1].tolerance, Some(0.05));
    assert_eq!(spec.pass, 90.0);

    let error = |text: &str| {
        Config::from_str_named(text, "c.toml")
            .unwrap_err()
            .to_string()
    };
    let unknown = error(
        "[[canary]]\nname = \"x\"\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"up\"\n",
    );
    assert!(unknown.starts_with("c.toml:5:13:"), "{unknown}");
    assert!(unknown.contains("unknown variant `up`"), "{unknown}");
    assert!(unknown.contains("higher_is_bad"), "{unknown}");

    let order = error(
        "[[canary]]\nname = \"x\"\npass = 70\nmarginal = 80\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"either\"\n",
    );
    assert!(order.starts_with("c.toml:4:12:"), "{order}");
    assert!(order.contains("canary \"x\", key `marginal`"), "{order}");
    assert!(order.contains("thresholds out of order"), "{order}");

    let none = error("[[canary]]\nname = \"x\"\n");
    assert!(none.starts_with("c.toml:1:1:"), "{none}");
    assert!(none.contains("at least one metric"), "{none}");

    let typo = error(
        "[[canary]]\nname = \"x\"\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"either\"\nwieght = 2\n",
    );
    assert!(typo.starts_with("c.toml:6:1:"), "{typo}");
    assert!(typo.contains("unknown field `wieght`"), "{typo}");

    let percent = error(
        "[[canary]]\nname = \"x\"\ntolerance = \"ten\"\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"either\"\n",
    );
    assert!(percent.starts_with("c.toml:3:13:"), "{percent}");
    assert!(percent.contains("tolerance \"ten\""), "{percent}");

    let twice = error(
        "[[canary]]\nname = \"x\"\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"either\"\n[[canary]]\nname = \"x\"\n[[canary.metric]]\nmetric = \"a_seconds\"\ndirection = \"either\"\n",
    );
    assert!(twice.starts_with("c.toml:7:8:"), "{twice}");
}

#[test]
fn a_spec_is_checked_before_running() {
    let registry = Registry::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(0)));
    let empty = CanarySpec::new("x");
    let err = CanaryRun::start(empty, &registry, clock.clone()).unwrap_err();
    assert!(err.to_string().contains("at least one metric"), "{err}");
    let mut same = spec();
    same.baseline = "canary".into();
    let err = CanaryRun::start(same, &registry, clock).unwrap_err();
    assert!(err.to_string().contains("must differ"), "{err}");
}

#[test]
fn a_monitor_starts_its_configured_canaries() {
    let config: Config = r#"
        [[canary]]
        name = "checkout-v2"
        interval = "1m"
        duration = "1m"
        [[canary.metric]]
        metric = "api_latency_seconds"
        direction = "higher_is_bad"
    "#
    .parse()
    .unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let monitor = vigilo::monitor::Monitor::builder(config)
        .clock(clock.clone())
        .without_host_items()
        .start()
        .unwrap();
    let err = monitor.canary("nope").unwrap_err();
    assert!(
        err.to_string().contains("no canary named \"nope\""),
        "{err}"
    );
    let mut canary = Group::new("canary", 11);
    let mut baseline = Group::new("baseline", 12);
    canary.step(monitor.registry());
    baseline.step(monitor.registry());
    let mut run = monitor.canary("checkout-v2").unwrap();
    canary.step(monitor.registry());
    baseline.step(monitor.registry());
    clock.advance(Duration::from_secs(60));
    assert_eq!(run.tick().unwrap(), 1);
    let report = run.report();
    assert!(report.complete);
    assert_eq!(report.verdict(), Verdict::Pass, "{}", report.to_json());
    // The monitor's own registry carries the verdict, for its rules.
    let snapshot = monitor.registry().snapshot();
    assert!(
        snapshot
            .get("vigilo_canary_verdict", &[("canary", "checkout-v2")])
            .is_some()
    );
    monitor.stop(Duration::from_secs(1)).unwrap();
}
