//! The SLO engine: increments into rings at each tick, budgets and burn rates out as series.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::SloError;
use super::ring::{Ring, RingSnapshot};
use super::source::Reader;
use super::spec::{ALERT_FACTOR, Slo, SloWindow};
use crate::Severity;
use crate::clock::Timestamp;
use crate::duration::format_duration;
use crate::metrics::{Gauge, Registry};

/// Fine slots: one minute, for windows of at most [`FINE_MAX`].
const FINE_SLOT: i64 = 60;
/// Windows longer than this are read from the coarse ring.
const FINE_MAX: Duration = Duration::from_secs(86_400);
/// Coarse slots: 15 minutes (every time zone's offset is a multiple of it, so a calendar
/// month starts on a slot's edge).
const COARSE_SLOT: i64 = 900;

/// The burn rate over one alert window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurnRate {
    /// The window, e.g. `1h`.
    pub window: String,
    /// (bad ÷ total) ÷ (1 − objective); 0 without events.
    pub rate: f64,
}

/// One SLO's state after the last tick (what the series hold).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloReport {
    /// The SLO.
    pub name: String,
    /// Its objective (0.999).
    pub objective: f64,
    /// Its window, as text (`28d`, `calendar month (UTC)`).
    pub window: String,
    /// Good events in the SLO window.
    pub good: u64,
    /// All events in the SLO window.
    pub total: u64,
    /// 1 − bad ÷ (total × (1 − objective)): 1 untouched (or no events), 0 spent, below 0
    /// overspent.
    pub error_budget_remaining: f64,
    /// The burn rate per alert window, shortest window first.
    pub burn_rates: Vec<BurnRate>,
    /// The factor of the highest tier whose two windows both burn at least as fast as it; 0 if
    /// none.
    pub alert_factor: f64,
    /// That tier's severity (normal if none).
    pub severity: Severity,
    /// When it was computed (none before the first tick).
    pub at: Option<Timestamp>,
    /// Series left out (of the wrong kind), as messages.
    pub problems: Vec<String>,
}

/// One SLO's rings as stored across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSnapshot {
    /// The SLO's name.
    pub name: String,
    identity: String,
    fine: RingSnapshot,
    coarse: RingSnapshot,
}

struct Gauges {
    objective: Gauge,
    budget: Gauge,
    factor: Gauge,
    burn: Vec<(Duration, Gauge)>,
}

struct State {
    slo: Slo,
    zone: Option<TimeZone>,
    reader: Reader,
    fine: Ring,
    coarse: Ring,
    gauges: Gauges,
    report: SloReport,
}

/// Computes the error budgets and burn rates of a set of SLOs from a registry's series and
/// publishes them there (see the [module docs](super) for the series and an example).
pub struct SloEngine {
    registry: Registry,
    states: Vec<State>,
    last_tick: Option<Timestamp>,
}

impl std::fmt::Debug for SloEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SloEngine")
            .field("slos", &self.states.len())
            .finish()
    }
}

fn describe(registry: &Registry) {
    for (name, help) in [
        ("vigilo_slo_objective_ratio", "The SLO's objective"),
        (
            "vigilo_slo_error_budget_remaining_ratio",
            "Error budget left over the SLO window: 1 untouched, 0 spent, below 0 overspent",
        ),
        (
            "vigilo_slo_burn_rate",
            "Error rate over the window divided by the rate the objective allows",
        ),
        (
            ALERT_FACTOR,
            "Factor of the highest burn-rate tier whose two windows both reach it, 0 if none",
        ),
    ] {
        let _ = registry.describe(name, None, help);
    }
}

impl State {
    fn new(registry: &Registry, slo: Slo) -> Result<State, SloError> {
        let zone = match &slo.window {
            SloWindow::Month { zone } => {
                Some(TimeZone::get(zone).map_err(|_| SloError::TimeZone {
                    slo: slo.name.clone(),
                    zone: zone.clone(),
                })?)
            }
            SloWindow::Rolling(_) => None,
        };
        let name = slo.name.as_str();
        let gauge = |metric: &str, extra: &[(&str, &str)]| {
            let mut labels = vec![("slo", name)];
            labels.extend_from_slice(extra);
            registry
                .gauge(metric, &labels)
                .map_err(|e| SloError::Publish {
                    slo: slo.name.clone(),
                    metric: metric.to_owned(),
                    message: e.to_string(),
                })
        };
        let windows = slo.windows();
        let mut burn = Vec::with_capacity(windows.len());
        for w in &windows {
            burn.push((
                *w,
                gauge("vigilo_slo_burn_rate", &[("window", &format_duration(*w))])?,
            ));
        }
        let gauges = Gauges {
            objective: gauge("vigilo_slo_objective_ratio", &[])?,
            budget: gauge("vigilo_slo_error_budget_remaining_ratio", &[])?,
            factor: gauge(ALERT_FACTOR, &[])?,
            burn,
        };
        gauges.objective.set(slo.objective);
        gauges.budget.set(1.0);
        gauges.factor.set(0.0);
        let fine_span = windows
            .iter()
            .filter(|w| **w <= FINE_MAX)
            .max()
            .map_or(1, |w| w.as_secs().div_ceil(FINE_SLOT as u64));
        let coarse_span = slo.window.max_span().as_secs().div_ceil(COARSE_SLOT as u64) + 1;
        let report = SloReport {
            name: slo.name.clone(),
            objective: slo.objective,
            window: slo.window.to_string(),
            good: 0,
            total: 0,
            error_budget_remaining: 1.0,
            burn_rates: Vec::new(),
            alert_factor: 0.0,
            severity: Severity::Normal,
            at: None,
            problems: Vec::new(),
        };
        Ok(State {
            reader: Reader::new(slo.source.clone()),
            fine: Ring::new(FINE_SLOT, usize::try_from(fine_span).unwrap_or(1)),
            coarse: Ring::new(COARSE_SLOT, usize::try_from(coarse_span).unwrap_or(1)),
            slo,
            zone,
            gauges,
            report,
        })
    }

    /// `(bad, total)` from a ring's `(counted, total)`.
    fn bad(&self, (counted, total): (u64, u64)) -> (u64, u64) {
        if self.reader.counts_bad() {
            (counted.min(total), total)
        } else {
            (total.saturating_sub(counted), total)
        }
    }

    fn burn(&self, (bad, total): (u64, u64)) -> f64 {
        if total == 0 {
            return 0.0;
        }
        (bad as f64 / total as f64) / (1.0 - self.slo.objective)
    }

    fn window(&self, now: i64, w: Duration) -> (u64, u64) {
        let secs = i64::try_from(w.as_secs()).unwrap_or(i64::MAX);
        let sums = if w <= FINE_MAX {
            self.fine.sum_window(now, secs)
        } else {
            self.coarse.sum_window(now, secs)
        };
        self.bad(sums)
    }

    /// The events of the SLO window at `now`.
    fn budget_window(&self, now: Timestamp) -> (u64, u64) {
        let secs = now.as_nanos().div_euclid(1_000_000_000);
        let sums = match (&self.slo.window, &self.zone) {
            (SloWindow::Month { .. }, Some(zone)) => {
                let start = now
                    .to_jiff()
                    .to_zoned_datetime(zone.clone())
                    .first_of_month()
                    .and_then(|d| d.start_of_day())
                    .map_or(secs, |d| d.timestamp().as_second());
                self.coarse.sum_since(secs, start)
            }
            (w, _) => {
                let span = i64::try_from(w.max_span().as_secs()).unwrap_or(i64::MAX);
                self.coarse.sum_window(secs, span)
            }
        };
        self.bad(sums)
    }

    fn tick(&mut self, registry: &Registry, now: Timestamp) {
        let secs = now.as_nanos().div_euclid(1_000_000_000);
        let (counted, total) = self.reader.increase(registry, &self.slo.name);
        self.fine.add(secs, counted, total);
        self.coarse.add(secs, counted, total);

        let (bad, total) = self.budget_window(now);
        let allowed = total as f64 * (1.0 - self.slo.objective);
        let remaining = if total == 0 {
            1.0
        } else {
            1.0 - bad as f64 / allowed
        };
        let mut rates = Vec::with_capacity(self.gauges.burn.len());
        for (w, gauge) in &self.gauges.burn {
            let rate = self.burn(self.window(secs, *w));
            gauge.set(rate);
            rates.push((*w, rate));
        }
        let rate_of = |w: Duration| rates.iter().find(|(x, _)| *x == w).map_or(0.0, |(_, r)| *r);
        let tier = self
            .slo
            .alerts
            .iter()
            .filter(|a| reaches(rate_of(a.long), a.factor) && reaches(rate_of(a.short), a.factor))
            .max_by(|a, b| a.factor.total_cmp(&b.factor));
        let factor = tier.map_or(0.0, |a| a.factor);
        self.gauges.budget.set(remaining);
        self.gauges.factor.set(factor);
        self.report = SloReport {
            good: total - bad,
            total,
            error_budget_remaining: remaining,
            burn_rates: rates
                .iter()
                .map(|(w, rate)| BurnRate {
                    window: format_duration(*w),
                    rate: *rate,
                })
                .collect(),
            alert_factor: factor,
            severity: tier.map_or(Severity::Normal, |a| a.severity),
            at: Some(now),
            problems: self.reader.problems.iter().map(|p| p.to_string()).collect(),
            ..self.report.clone()
        };
    }
}

impl SloEngine {
    /// An engine for `slos`, publishing into `registry` (its series exist from here on, the
    /// alert factor at 0 and the budget at 1). Fails on an unknown time zone or a series the
    /// registry refuses.
    pub fn new(registry: Registry, slos: Vec<Slo>) -> Result<SloEngine, SloError> {
        if !slos.is_empty() {
            describe(&registry);
        }
        let states = slos
            .into_iter()
            .map(|s| State::new(&registry, s))
            .collect::<Result<_, _>>()?;
        Ok(SloEngine {
            registry,
            states,
            last_tick: None,
        })
    }

    /// Reads the series, counts what they gained since the last tick in the slots of `now`,
    /// and updates the budgets, the burn rates and the alert factors (series and reports).
    /// The first tick reads the baseline.
    pub fn tick(&mut self, now: Timestamp) {
        self.last_tick = Some(now);
        for s in &mut self.states {
            s.tick(&self.registry, now);
        }
    }

    /// When the last tick was.
    pub fn last_tick(&self) -> Option<Timestamp> {
        self.last_tick
    }

    /// Every SLO's state after the last tick, in configuration order.
    pub fn reports(&self) -> Vec<SloReport> {
        self.states.iter().map(|s| s.report.clone()).collect()
    }

    /// The rings, to store.
    pub fn snapshots(&self) -> Vec<SloSnapshot> {
        self.states
            .iter()
            .map(|s| SloSnapshot {
                name: s.slo.name.clone(),
                identity: s.slo.source.identity(),
                fine: s.fine.snapshot(),
                coarse: s.coarse.snapshot(),
            })
            .collect()
    }

    /// Puts stored rings back, before the first tick: each into the SLO of the same name
    /// whose events are counted the same way (others are dropped). The next tick still reads
    /// the series' baseline.
    pub fn restore(&mut self, snapshots: Vec<SloSnapshot>) {
        for snap in snapshots {
            if let Some(s) = self
                .states
                .iter_mut()
                .find(|s| s.slo.name == snap.name && s.slo.source.identity() == snap.identity)
            {
                s.fine.restore(&snap.fine);
                s.coarse.restore(&snap.coarse);
            }
        }
    }
}

/// A burn rate at or above a tier's factor. The workbook's tiers are budget shares (14.4× over
/// an hour is 2 % of a 30-day budget): a burst that spends exactly that share must fire, and the
/// division by `1 − objective` may land a hair below the factor, so a relative 1e-9 is allowed.
fn reaches(rate: f64, factor: f64) -> bool {
    rate >= factor * (1.0 - 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::{Selector, SloSource, SloWindow, default_alerts};

    #[test]
    fn the_rings_are_as_long_as_the_docs_say() {
        let slo = Slo {
            name: "a".into(),
            objective: 0.999,
            window: SloWindow::Rolling(std::time::Duration::from_secs(28 * 86_400)),
            source: SloSource::Bad {
                bad: Selector {
                    metric: "errors_total".into(),
                    select: Vec::new(),
                },
                total: Selector {
                    metric: "requests_total".into(),
                    select: Vec::new(),
                },
            },
            labels: Default::default(),
            alerts: default_alerts(),
        };
        let engine = SloEngine::new(Registry::new(), vec![slo]).unwrap_or_else(|e| panic!("{e}"));
        let s = &engine.states[0];
        let bytes = |r: &Ring| r.slot_count() * std::mem::size_of::<(u64, u64)>();
        assert_eq!((s.fine.slot_count(), s.coarse.slot_count()), (360, 2689));
        assert_eq!(bytes(&s.fine) + bytes(&s.coarse), 48_784);
    }
}
