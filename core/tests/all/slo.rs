//! SLOs through a whole [`Monitor`] on a virtual clock: counters in, error budget and burn
//! rates out, the generated rule on the ladder through the evaluator and the pipeline, state
//! across a restart, and configuration errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigilo::Severity;
use vigilo::alert::{Alert, Channel, DeliveryError};
use vigilo::clock::{Clock, ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::metrics::Counter;
use vigilo::monitor::{Monitor, MonitorBuilder};
use vigilo::slo::SloReport;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// 2026-11-02T00:00:00Z.
const START: i64 = 1_793_577_600;

/// A 30-day SLO at 99.9 %, with the default tiers, routed to one channel.
///
/// The evaluator's (and the SLO thread's) tick is an hour of real time, so neither runs while a
/// test moves the manual clock: a tick between a step's clock move and its `tick_slos` read the
/// new time with the old alert factor, and a tick straddling several steps stamped a later value
/// with an earlier time (a flap: fired, resolved, fired again). The generated rule is still
/// evaluated at once when its factor crosses a threshold (the armed watch), at the clock's time.
fn config(extra: &str) -> String {
    format!(
        r#"
        [evaluator]
        tick = "1h"
        [notify]
        group_wait = "0s"
        {extra}
        [[slo]]
        name = "checkout"
        objective = "99.9%"
        window = "30d"
        good = {{ metric = "checkout_ok_total" }}
        total = {{ metric = "checkout_total" }}
        labels = {{ team = "shop" }}

        [[channel]]
        name = "pager"
        [[route]]
        name = "ops"
        rules = ["slo:checkout"]
        channels = ["pager"]
        "#
    )
}

struct Pager(Mutex<Vec<Alert>>);

impl Channel for Pager {
    fn name(&self) -> &str {
        "pager"
    }
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        self.0.lock().push(alert.clone());
        Ok(())
    }
}

/// A monitor on a manual clock, with the checkout counters.
struct Sim {
    monitor: Monitor,
    clock: ManualClock,
    ok: Counter,
    all: Counter,
    pager: Arc<Pager>,
}

impl Sim {
    fn start(text: &str, clock: &ManualClock) -> Sim {
        Sim::start_with(text, clock, |b| b)
    }

    /// The same, with more given to the monitor's builder (native actions …).
    fn start_with(
        text: &str,
        clock: &ManualClock,
        more: impl FnOnce(MonitorBuilder) -> MonitorBuilder,
    ) -> Sim {
        let config: Config = text.parse().unwrap_or_else(|e| panic!("{e}"));
        let pager = Arc::new(Pager(Mutex::new(Vec::new())));
        let builder = Monitor::builder(config)
            .without_host_items()
            .clock(Arc::new(clock.clone()))
            .channel(Arc::clone(&pager) as _);
        let monitor = more(builder).start().unwrap_or_else(|e| panic!("{e}"));
        let ok = monitor
            .registry()
            .counter("checkout_ok_total", &[])
            .unwrap();
        let all = monitor.registry().counter("checkout_total", &[]).unwrap();
        Sim {
            monitor,
            clock: clock.clone(),
            ok,
            all,
            pager,
        }
    }

    /// Counts `total` requests of which `bad` failed, moves the clock by `d`, ticks the SLOs.
    fn step(&self, d: Duration, total: u64, bad: u64) -> SloReport {
        self.all.add(total);
        self.ok.add(total - bad);
        self.clock.advance(d);
        self.monitor.tick_slos().remove(0)
    }

    /// `steps` steps of `d`, each with `per_step` requests and `bad` failures; the severity
    /// the SLO reached at each step.
    fn run(&self, steps: u32, d: Duration, per_step: u64, bad: u64) -> Vec<Severity> {
        (0..steps)
            .map(|_| self.step(d, per_step, bad).severity)
            .collect()
    }

    /// The severity of the SLO's open incident (Normal if none), once the pipeline shows
    /// `want` (waits up to 10 s of real time for the evaluator and the pipeline).
    fn incident_becomes(&self, want: Severity) -> Option<vigilo::pipeline::Incident> {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let open = self.monitor.incidents().unwrap();
            let inc = open.into_iter().find(|i| &*i.item.rule == "slo:checkout");
            let now = inc.as_ref().map_or(Severity::Normal, |i| i.severity);
            if now == want {
                return inc;
            }
            assert!(
                Instant::now() < give_up,
                "the SLO's incident stays at {now}, expected {want}"
            );
            std::thread::yield_now();
        }
    }
}

fn t0() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(START))
}

/// 30 days of clean traffic (1,000 requests a minute, hourly steps, the last 6 hours by the
/// minute), then a burst of 4 minutes at 21.6 % errors: 864 bad requests, 2 % of the budget
/// (43,200 bad of 43.2 million), so the last hour burns at exactly 14.4×. Returns the reports
/// of the burst's minutes.
fn burst(sim: &Sim) -> Vec<SloReport> {
    let clean = sim.run(30 * 24 - 6, HOUR, 60_000, 0);
    assert!(clean.iter().all(|s| *s == Severity::Normal));
    let clean = sim.run(6 * 60, MINUTE, 1000, 0);
    assert!(clean.iter().all(|s| *s == Severity::Normal));
    (0..4).map(|_| sim.step(MINUTE, 1000, 216)).collect()
}

#[test]
fn a_burst_spending_2_percent_of_a_30_day_budget_fires_critical_within_5_minutes() {
    let sim = Sim::start(&config(""), &t0());
    let start = sim.clock.now();
    let burst_start = start + Duration::from_secs((30 * 24 - 6) * 3600 + 6 * 3600);
    let reports = burst(&sim);
    let at = reports
        .iter()
        .position(|r| r.severity == Severity::Critical)
        .expect("critical during the burst");
    assert!(
        at < 4,
        "critical within the burst, so within the 5-minute window"
    );
    assert!(
        reports[..at].iter().all(|r| r.severity == Severity::Normal),
        "straight to critical: {reports:?}"
    );
    let last = reports.last().unwrap();
    assert_eq!(last.alert_factor, 14.4);
    let burn = |w: &str| {
        last.burn_rates
            .iter()
            .find(|b| b.window == w)
            .map(|b| b.rate)
            .unwrap()
    };
    // The hour holds exactly 2 % of the budget: 14.4×, the tier's factor, which is enough.
    assert!((burn("1h") - 14.4).abs() < 1e-6, "{last:?}");
    assert!(burn("5m") > 14.4, "{last:?}");
    // 864 bad out of the budget of 30 days at 1,000 a minute (43,200): 2 % spent.
    assert!(
        (last.error_budget_remaining - 0.98).abs() < 1e-4,
        "{last:?}"
    );
    let inc = sim.incident_becomes(Severity::Critical).unwrap();
    assert!(inc.opened_at <= burst_start + 5 * MINUTE, "{inc:?}");
    assert_eq!(inc.labels.get("slo").map(String::as_str), Some("checkout"));
    assert_eq!(inc.labels.get("team").map(String::as_str), Some("shop"));
    assert!(
        inc.annotations["summary"].contains("SLO checkout"),
        "{inc:?}"
    );
    assert!(inc.annotations["tiers"].starts_with("14.4× over 1h and 5m → critical"));
    // Delivered through the route, and the series are published.
    sim.monitor.settle(Duration::from_secs(10)).unwrap();
    let sent = sim.pager.0.lock().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].severity, Severity::Critical);
    let snap = sim.monitor.registry().snapshot();
    let gauge = |name: &str, labels: &[(&str, &str)]| {
        snap.get(name, labels).map(|s| s.value.as_f64()).unwrap()
    };
    assert_eq!(
        gauge("vigilo_slo_objective_ratio", &[("slo", "checkout")]),
        0.999
    );
    assert_eq!(
        gauge("vigilo_slo_alert_factor", &[("slo", "checkout")]),
        14.4
    );
    let budget = gauge(
        "vigilo_slo_error_budget_remaining_ratio",
        &[("slo", "checkout")],
    );
    assert_eq!(budget, last.error_budget_remaining);
    assert_eq!(
        gauge(
            "vigilo_slo_burn_rate",
            &[("slo", "checkout"), ("window", "1h")]
        ),
        burn("1h")
    );
    // The generated rule is an item on the board like any other.
    let status = sim.monitor.status().unwrap();
    let item = status
        .status
        .items
        .iter()
        .find(|i| &*i.rule == "slo:checkout");
    assert_eq!(item.map(|i| i.severity), Some(Severity::Critical));
    assert!(status.coverage.unrouted_rules.is_empty());
    assert_eq!(status.slos, std::slice::from_ref(last));
    assert!(status.to_json().contains("\"error_budget_remaining\":"));
}

/// The kill switch of the deploy guard: a recovery action on the SLO's generated rule runs
/// when the burn rate turns critical, once, with the SLO in the alert.
#[test]
fn a_critical_burn_rate_runs_the_kill_switch() {
    struct KillSwitch(Mutex<Vec<Alert>>);
    impl vigilo::alert::Action for KillSwitch {
        fn name(&self) -> &str {
            "kill-switch"
        }
        fn run(
            &self,
            alert: &Alert,
        ) -> Result<vigilo::alert::ActionOutcome, vigilo::alert::ActionError> {
            self.0.lock().push(alert.clone());
            Ok(vigilo::alert::ActionOutcome {
                success: true,
                message: "new-checkout switched off".into(),
                exit_code: None,
                output_tail: String::new(),
                elapsed: Duration::ZERO,
            })
        }
    }
    let text = config(
        r#"
        [[action]]
        name = "kill-switch"
        [[recovery]]
        rules = ["slo:checkout"]
        min_severity = "critical"
        action = "kill-switch"
        max_attempts = 1
        "#,
    );
    let switch = Arc::new(KillSwitch(Mutex::new(Vec::new())));
    let action = Arc::clone(&switch);
    let sim = Sim::start_with(&text, &t0(), |b| b.action(action as _));
    burst(&sim);
    sim.incident_becomes(Severity::Critical);
    sim.monitor.settle(Duration::from_secs(10)).unwrap();
    let runs = switch.0.lock().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(&*runs[0].rule, "slo:checkout");
    assert_eq!(
        runs[0].labels.get("slo").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(runs[0].severity, Severity::Critical);
}

#[test]
fn recovery_resolves_the_incident_and_the_budget_stays_spent() {
    let sim = Sim::start(&config(""), &t0());
    let spent = burst(&sim).pop().unwrap().error_budget_remaining;
    sim.incident_becomes(Severity::Critical);
    // Clean again: the 5-minute window empties within 5 minutes, the 6-hour window burns at
    // 3× (below the major tier's 6×) and the 3-day one at 0.25×: no tier is left.
    let after = sim.run(10, MINUTE, 1000, 0);
    assert_eq!(after[..4], [Severity::Critical; 4], "{after:?}");
    assert!(
        after[5..].iter().all(|s| *s == Severity::Normal),
        "{after:?}"
    );
    assert!(sim.incident_becomes(Severity::Normal).is_none(), "closed");
    let report = sim.monitor.slos().remove(0);
    assert!(
        (report.error_budget_remaining - spent).abs() < 1e-4,
        "{report:?}"
    );
    sim.monitor.settle(Duration::from_secs(10)).unwrap();
    let sent: Vec<_> = sim.pager.0.lock().iter().map(|a| a.severity).collect();
    assert_eq!(sent, [Severity::Critical, Severity::Normal]);
}

#[test]
fn a_slow_leak_fires_warning_not_critical() {
    let sim = Sim::start(&config(""), &t0());
    // 0.9× for 6 hours (10,000 requests a minute, 9 in 10,000 failing): nothing.
    let calm = sim.run(72, 5 * MINUTE, 50_000, 45);
    assert!(calm.iter().all(|s| *s == Severity::Normal), "{calm:?}");
    // Then 1.2× for 8 hours: the 3-day and the 6-hour windows pass 1× after 3 hours.
    let leak = sim.run(96, 5 * MINUTE, 50_000, 60);
    assert!(
        leak[..30].iter().all(|s| *s == Severity::Normal),
        "{leak:?}"
    );
    assert!(
        leak[60..].iter().all(|s| *s == Severity::Warning),
        "{leak:?}"
    );
    assert!(leak.iter().all(|s| *s <= Severity::Warning), "{leak:?}");
    let inc = sim.incident_becomes(Severity::Warning).unwrap();
    assert_eq!(inc.peak, Severity::Warning);
    let report = sim.monitor.slos().remove(0);
    assert_eq!(report.alert_factor, 1.0);
    assert!(report.burn_rates.iter().all(|b| b.rate < 6.0), "{report:?}");
}

#[test]
fn the_budget_and_the_windows_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "[store]\npath = \"{}\"\ncheckpoint = \"1h\"",
        dir.path().join("vigilo.db").display()
    );
    let clock = t0();
    let sim = Sim::start(&config(&store), &clock);
    sim.run(6 * 60, MINUTE, 1000, 0);
    let mut before = sim.step(MINUTE, 1000, 216);
    for _ in 0..4 {
        before = sim.step(MINUTE, 1000, 216);
    }
    assert_eq!(before.severity, Severity::Critical);
    sim.incident_becomes(Severity::Critical);
    let Sim { monitor, .. } = sim;
    monitor.stop(Duration::from_secs(5)).unwrap();

    // A new process: fresh counters at zero, the same store.
    let sim = Sim::start(&config(&store), &clock);
    let again = sim.monitor.tick_slos().remove(0);
    assert_eq!(again.error_budget_remaining, before.error_budget_remaining);
    assert_eq!(again.burn_rates, before.burn_rates);
    assert_eq!(again.total, before.total);
    // The windows go on from where they were: the burst is still in the last hour.
    let next = sim.step(MINUTE, 1000, 0);
    assert_eq!(next.severity, Severity::Critical);
    assert_eq!(next.total, before.total + 1000);
    // After 10 clean minutes the short windows are clean, the 6-hour and 3-day ones (this run
    // has only 6 hours of history) still hold the burst at 3×: down to warning.
    let after = sim.run(10, MINUTE, 1000, 0);
    assert_eq!(after.last(), Some(&Severity::Warning));
    let inc = sim.incident_becomes(Severity::Warning).unwrap();
    assert_eq!(
        inc.peak,
        Severity::Critical,
        "the same incident, de-escalated"
    );
}

#[test]
fn a_latency_slo_counts_observations_under_the_bound() {
    let text = r#"
        [[slo]]
        name = "api"
        objective = "90%"
        window = "month"
        timezone = "Asia/Kolkata"
        latency = { metric = "api_seconds", select = { route = "/pay" }, le = "300ms" }
    "#;
    let config: Config = text.parse().unwrap();
    let registry = vigilo::Registry::new();
    let pay = registry
        .histogram("api_seconds", &[("route", "/pay")])
        .unwrap();
    let other = registry
        .histogram("api_seconds", &[("route", "/")])
        .unwrap();
    let mut engine = vigilo::slo::SloEngine::new(registry, config.slos).unwrap();
    let now = Timestamp::from_secs(START);
    engine.tick(now);
    for v in [0.1, 0.2, 0.297, 0.303, 0.5] {
        pay.record(v);
    }
    other.record(9.0);
    engine.tick(now + MINUTE);
    let r = &engine.reports()[0];
    assert_eq!((r.good, r.total), (3, 5), "{r:?}");
    // 40 % bad against 10 % allowed: a burn rate of 4, the budget overspent 3 times.
    assert!((r.burn_rates[0].rate - 4.0).abs() < 1e-9);
    assert!((r.error_budget_remaining + 3.0).abs() < 1e-9);
}

fn error(text: &str) -> String {
    match Config::from_str_named(text, "slo.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_slo_configurations_are_located_errors() {
    let slo = |body: &str| format!("[[slo]]\nname = \"x\"\n{body}\n");
    let counters = "good = { metric = \"ok_total\" }\ntotal = { metric = \"all_total\" }";
    let cases = [
        (
            slo(&format!(
                "objective = \"100%\"\nwindow = \"28d\"\n{counters}"
            )),
            "slo.toml:3:13: slo \"x\", key `objective`: objective 100% leaves no error budget",
        ),
        (
            slo(&format!("objective = 0\nwindow = \"28d\"\n{counters}")),
            "slo.toml:3:13: slo \"x\", key `objective`: objective 0% leaves",
        ),
        (
            slo(&format!("objective = \"99%\"\nwindow = \"1d\"\n{counters}")),
            "slo.toml:4:10: slo \"x\", key `window`: window 1d is shorter than the longest alert window (3d)",
        ),
        (
            slo("objective = \"99%\"\nwindow = \"28d\"\ngauge = { metric = \"queue\" }"),
            "slo.toml:5:1: slo \"x\", key `gauge`: unknown field `gauge`",
        ),
        (
            slo(&format!(
                "objective = \"99%\"\nwindow = \"28d\"\n{counters}\nlatency = {{ metric = \"s\", le = \"1s\" }}"
            )),
            "slo.toml:7:11: slo \"x\", key `source`: say where events come from",
        ),
        (
            slo("objective = \"99%\"\nwindow = \"28d\"\nlatency = { metric = \"s\" }"),
            "key `latency.le`: a latency SLO needs a bound",
        ),
        (
            slo(&format!(
                "objective = \"99%\"\nwindow = \"month\"\ntimezone = \"Mars/Base\"\n{counters}"
            )),
            "slo.toml:5:12: slo \"x\", key `timezone`: unknown time zone \"Mars/Base\"",
        ),
        (
            slo(&format!(
                "objective = \"99%\"\nwindow = \"28d\"\n{counters}\n\
                 [[slo.alert]]\nfactor = 2\nlong = \"1h\"\nshort = \"5m\"\nseverity = \"critical\"\n\
                 [[slo.alert]]\nfactor = 10\nlong = \"1h\"\nshort = \"5m\"\nseverity = \"major\""
            )),
            "key `alert`: tiers must rise together",
        ),
    ];
    for (text, want) in cases {
        let got = error(&text);
        assert!(
            got.contains(want),
            "got {got:?}\nwant {want:?}\nfor\n{text}"
        );
    }
    // The generated rule's name is taken.
    let clash = format!(
        "[[rule]]\nname = \"slo:x\"\nmetric = \"m\"\n[rule.major]\nthreshold = 1\n{}",
        slo(&format!(
            "objective = \"99%\"\nwindow = \"28d\"\n{counters}"
        ))
    );
    assert!(error(&clash).contains("a [[rule]] is named \"slo:x\""));
}

#[test]
fn the_readme_slo_example_loads() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("### SLOs and error budgets")
        .nth(1)
        .expect("the README's SLO section");
    let toml = section
        .split("```toml")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a toml block");
    let config: Config = toml.parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.slos.len(), 1);
    let slo = &config.slos[0];
    assert_eq!(slo.objective, 0.999);
    assert!(config.rules.iter().any(|r| r.name() == slo.rule_name()));
}
