//! What an SLO is, as configured and checked, and the rule generated from it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::Severity;
use crate::duration::format_duration;
use crate::rules::{Aggregation, Comparison, Level, Matcher, Rule, RuleError};

/// The metric whose gauge the generated rules watch.
pub const ALERT_FACTOR: &str = "vigilo_slo_alert_factor";

/// A metric and which of its series count (summed).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// The metric name.
    pub metric: String,
    /// Label matchers (empty: every series of the metric).
    pub select: Vec<Matcher>,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.select.is_empty() {
            let parts: Vec<String> = self.select.iter().map(|m| format!("{m:?}")).collect();
            write!(f, "{{{}}}", parts.join(","))?;
        }
        Ok(())
    }
}

/// Where good and total events come from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SloSource {
    /// Two counters: good events and all events.
    Good {
        /// Good events.
        good: Selector,
        /// All events.
        total: Selector,
    },
    /// Two counters: bad events and all events.
    Bad {
        /// Bad events.
        bad: Selector,
        /// All events.
        total: Selector,
    },
    /// A histogram: every observation is an event, good when at most `le`.
    Latency {
        /// The histogram.
        histogram: Selector,
        /// The bound, in the histogram's unit (a duration in the configuration is read as
        /// seconds).
        le: f64,
    },
}

impl SloSource {
    /// A text that changes when the events counted change (stored with the state: a state
    /// saved for another source is not restored).
    pub fn identity(&self) -> String {
        match self {
            SloSource::Good { good, total } => format!("good={good};total={total}"),
            SloSource::Bad { bad, total } => format!("bad={bad};total={total}"),
            SloSource::Latency { histogram, le } => format!("latency={histogram};le={le}"),
        }
    }
}

/// The SLO window.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SloWindow {
    /// The last `Duration`, rolling.
    Rolling(Duration),
    /// The calendar month so far, in a time zone (an IANA name such as `Europe/Paris`).
    Month {
        /// The zone's name.
        zone: String,
    },
}

impl SloWindow {
    /// The longest the window can be (31 days for a month).
    pub fn max_span(&self) -> Duration {
        match self {
            SloWindow::Rolling(d) => *d,
            SloWindow::Month { .. } => Duration::from_secs(31 * 86_400),
        }
    }

    /// The shortest the window can be (28 days for a month).
    pub fn min_span(&self) -> Duration {
        match self {
            SloWindow::Rolling(d) => *d,
            SloWindow::Month { .. } => Duration::from_secs(28 * 86_400),
        }
    }
}

impl fmt::Display for SloWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SloWindow::Rolling(d) => f.write_str(&format_duration(*d)),
            SloWindow::Month { zone } => write!(f, "calendar month ({zone})"),
        }
    }
}

/// One tier of burn-rate alerting: both windows must burn at least `factor` times the budget's
/// pace.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnAlert {
    /// The burn rate to reach (1 spends the budget exactly over the SLO window).
    pub factor: f64,
    /// The long window.
    pub long: Duration,
    /// The short window, which makes the alert stop soon after the burn stops.
    pub short: Duration,
    /// The severity of this tier.
    pub severity: Severity,
}

/// The SRE workbook's table: 14.4× over 1 h and 5 m → critical, 6× over 6 h and 30 m → major,
/// 1× over 3 d and 6 h → warning (lowest factor first).
pub fn default_alerts() -> Vec<BurnAlert> {
    let m = |n: u64| Duration::from_secs(n * 60);
    vec![
        BurnAlert {
            factor: 1.0,
            long: m(3 * 24 * 60),
            short: m(6 * 60),
            severity: Severity::Warning,
        },
        BurnAlert {
            factor: 6.0,
            long: m(6 * 60),
            short: m(30),
            severity: Severity::Major,
        },
        BurnAlert {
            factor: 14.4,
            long: m(60),
            short: m(5),
            severity: Severity::Critical,
        },
    ]
}

/// `0.99999` as `99.999%` (to six decimals, trailing zeros dropped).
fn percent(ratio: f64) -> String {
    let s = format!("{:.6}", ratio * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// A checked service level objective (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Its name (letters, digits, `_`, `.`, `-`); the generated rule is `slo:<name>`.
    pub name: String,
    /// The good fraction to meet, strictly between 0 and 1 (`"99.9%"` is 0.999).
    pub objective: f64,
    /// The window the budget is counted over.
    pub window: SloWindow,
    /// Good and total events.
    pub source: SloSource,
    /// The alert tiers, lowest factor first; factors and severities both strictly rise.
    pub alerts: Vec<BurnAlert>,
    /// Extra labels on the generated rule (for routing).
    pub labels: BTreeMap<String, String>,
}

impl Slo {
    /// The generated rule's name: `slo:<name>`.
    pub fn rule_name(&self) -> String {
        format!("slo:{}", self.name)
    }

    /// The distinct alert windows, shortest first.
    pub fn windows(&self) -> Vec<Duration> {
        let mut w: Vec<Duration> = self.alerts.iter().flat_map(|a| [a.short, a.long]).collect();
        w.sort();
        w.dedup();
        w
    }

    /// The rule that puts this SLO on the ladder: on `vigilo_slo_alert_factor{slo="<name>"}`,
    /// one level per tier, each above the factor of the tier below (0 for the lowest). Its
    /// labels are `slo` and [`labels`](Self::labels); its annotations `summary`, `objective`,
    /// `window` and `tiers`.
    pub fn rule(&self) -> Result<Rule, RuleError> {
        let mut b = Rule::builder(self.rule_name(), ALERT_FACTOR)
            .matcher(Matcher::Equal("slo".into(), self.name.clone()))
            .aggregate(Aggregation::Last, Duration::ZERO)
            .comparison(Comparison::Above)
            .label("slo", self.name.as_str());
        let mut below = 0.0;
        for a in &self.alerts {
            b = b.level(Level::new(a.severity, below));
            below = a.factor;
        }
        for (k, v) in &self.labels {
            b = b.label(k.as_str(), v.as_str());
        }
        let tiers: Vec<String> = self
            .alerts
            .iter()
            .rev()
            .map(|a| {
                format!(
                    "{}× over {} and {} → {}",
                    a.factor,
                    format_duration(a.long),
                    format_duration(a.short),
                    a.severity
                )
            })
            .collect();
        // `{` in the name would be read as a template: names are plain (checked at load).
        b.annotation(
            "summary",
            format!(
                "SLO {}: error budget burning at {{{{value}}}}× or faster (both windows of the tier)",
                self.name
            ),
        )
        .annotation("objective", percent(self.objective))
        .annotation("window", self.window.to_string())
        .annotation("tiers", tiers.join("; "))
        .build()
    }
}
