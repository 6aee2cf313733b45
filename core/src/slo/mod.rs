//! Service level objectives: error budgets and multi-window, multi-burn-rate alerts.
//!
//! An [`Slo`] says what fraction of events must be good over a window: good and total events
//! from two counters (or bad and total), or from a histogram with a latency bound. The
//! [`SloEngine`] reads those series at every tick, keeps the increments in rings of time slots,
//! and publishes per SLO, in the registry:
//!
//! | series | value |
//! |---|---|
//! | `vigilo_slo_objective_ratio{slo}` | the objective, e.g. 0.999 |
//! | `vigilo_slo_error_budget_remaining_ratio{slo}` | 1 − bad ÷ (total × (1 − objective)) over the SLO window: 1 untouched, 0 spent, below 0 overspent |
//! | `vigilo_slo_burn_rate{slo,window}` | (bad ÷ total) ÷ (1 − objective) over each alert window (`window = "1h"`…); 0 without events |
//! | `vigilo_slo_alert_factor{slo}` | the factor of the highest alert tier whose two windows both burn at least that fast, 0 if none |
//!
//! **Alerts.** Each SLO brings one generated rule, [`Slo::rule`], named `slo:<name>`, on
//! `vigilo_slo_alert_factor{slo="<name>"}`. Its levels are the tiers of [`Slo::alerts`] (by
//! default the SRE workbook's: 14.4× over 1 h and 5 m → critical, 6× over 6 h and 30 m →
//! major, 1× over 3 d and 6 h → warning): tier *i*'s level fires above the factor of the tier
//! below it (0 for the lowest), so the gauge holding tier *i*'s factor puts the item at tier
//! *i*'s severity. One SLO is therefore one item and one incident, which escalates and
//! de-escalates on the ladder and resolves when no tier burns; it goes through the evaluator,
//! the routing and the notification policy like any rule, and shows in status and coverage.
//! Its labels are `slo` and the SLO's `labels`; its annotations name the SLO, the objective,
//! the window and the tiers, with the factor reached (`{{value}}`). The budget left and the
//! burn rates at that moment are in the series above and in `Monitor::slos` (the status JSON),
//! not in the annotations: rule templates cannot read other series.
//!
//! **Slots and memory.** Increments go into two rings of `(counted, total)` pairs of `u64`: one
//! slot per minute covering the longest alert window of at most a day (6 h by default: 360
//! slots), and one slot per 15 minutes covering the SLO window and one slot more (28 days: 2,689
//! slots; a calendar month: 2,977). A window of *n* slots sums the current slot and the *n* − 1
//! before it, so it covers between *n* − 1 and *n* slots of time; windows longer than a day are
//! read from the 15-minute ring. With the default tiers and a 28-day window an SLO's slots take
//! 48,784 bytes (16 each).
//!
//! **Counters.** The first reading of a series is its baseline; later increases are counted
//! where they are seen (the slot of the tick that saw them); a value below the last one is a
//! reset, and the whole new value counts, as `rate` does. A series that appears after the first
//! tick counts from zero.
//! Two counters are read one after the other, not at one instant: an event counted in one and
//! not yet in the other at a tick lands in the next slot's count instead, so a window whose
//! edge falls between the two slots is off by the events of that instant.
//!
//! **Latency.** With `latency = { metric, le }`, an observation is good when it is at most `le`.
//! vigilo's histograms keep log-linear buckets (`metrics/buckets.rs`), not the observations: a
//! bucket counts as good when its midpoint is at most `le`. Every value in a bucket is within
//! [`RELATIVE_ERROR`](crate::metrics::buckets::RELATIVE_ERROR) (1/128 ≈ 0.78 %) of its midpoint,
//! so only observations within 0.78 % of the bound can be misjudged (a 300 ms bound: those
//! between about 297.7 ms and 302.3 ms).
//!
//! **State** is saved in the store (`slo_states` table) at each checkpoint and at stop, and
//! restored at start, so the budget and the windows continue across restarts.
//!
//! ```
//! use std::time::Duration;
//! use vigilo::Registry;
//! use vigilo::clock::Timestamp;
//! use vigilo::config::Config;
//! use vigilo::slo::SloEngine;
//!
//! let config: Config = r#"
//!     [[slo]]
//!     name = "checkout"
//!     objective = "99.9%"
//!     window = "28d"
//!     good = { metric = "checkout_ok_total" }
//!     total = { metric = "checkout_total" }
//! "#.parse()?;
//! assert_eq!(config.rules[0].name(), "slo:checkout"); // the generated rule
//!
//! let registry = Registry::new();
//! let (ok, all) = (registry.counter("checkout_ok_total", &[])?, registry.counter("checkout_total", &[])?);
//! let mut engine = SloEngine::new(registry.clone(), config.slos.clone())?;
//! let t0 = Timestamp::from_secs(1_800_000_000);
//! engine.tick(t0); // the baseline
//! all.add(1000);
//! ok.add(990);  // 1 % bad: ten times what 99.9 % allows
//! engine.tick(t0 + Duration::from_secs(60));
//! let report = &engine.reports()[0];
//! assert!((report.burn_rates[0].rate - 10.0).abs() < 1e-9);
//! assert!(report.error_budget_remaining < 0.0); // nine times overspent so far
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod ring;
mod runner;
mod source;
mod spec;

pub use engine::{BurnRate, SloEngine, SloReport, SloSnapshot};
pub(crate) use runner::{SloBoard, SloRunner};
pub use spec::{BurnAlert, Selector, Slo, SloSource, SloWindow, default_alerts};

/// Why an SLO cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// The calendar window's time zone is not in the bundled database.
    #[error("slo {slo:?}: unknown time zone {zone:?}")]
    TimeZone {
        /// The SLO.
        slo: String,
        /// The zone as given.
        zone: String,
    },
    /// A series the SLO selects is of a kind it cannot read.
    #[error(
        "slo {slo:?}: {metric}{labels} is a {found}, but {role} must be a {wanted}; \
         it is left out"
    )]
    Kind {
        /// The SLO.
        slo: String,
        /// The metric.
        metric: String,
        /// The series' labels.
        labels: String,
        /// `good`, `bad`, `total` or `latency`.
        role: &'static str,
        /// What the series is.
        found: crate::metrics::MetricKind,
        /// What the role needs.
        wanted: crate::metrics::MetricKind,
    },
    /// The SLO thread could not be started.
    #[error("cannot start the SLO thread: {0}")]
    Spawn(String),
    /// The registry refused one of the SLO's own series (cardinality limit, kind clash).
    #[error("slo {slo:?}: cannot publish {metric}: {message}")]
    Publish {
        /// The SLO.
        slo: String,
        /// The series.
        metric: String,
        /// The registry's reason.
        message: String,
    },
}
