//! One rule: one item (metric + label matchers), one aggregation, its ladder of levels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Aggregation, Comparison, RuleError, Schedule, template};
use crate::Severity;
use crate::metrics::{Labels, MetricKind};
use crate::units::Unit;

/// One level of the ladder: threshold, duration, occurrences, hysteresis.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The level this entry defines.
    pub severity: Severity,
    /// The value past which the condition holds.
    pub threshold: f64,
    /// Once active, the level clears only when the value is back past this (default: the
    /// threshold itself). For `above` it must be ≤ the threshold.
    pub clear: Option<f64>,
    /// The condition must hold this long, timed from the crossing ("for 1 minute").
    pub hold: Duration,
    /// The condition must have held (for `hold`) this many separate times within `within`.
    pub occurrences: u32,
    /// The window in which `occurrences` are counted (needed when `occurrences > 1`).
    pub within: Option<Duration>,
}

impl Level {
    /// A level firing as soon as the value is past `threshold`.
    pub fn new(severity: Severity, threshold: f64) -> Self {
        Level {
            severity,
            threshold,
            clear: None,
            hold: Duration::ZERO,
            occurrences: 1,
            within: None,
        }
    }

    /// Requires the condition to hold for `d` first.
    pub fn hold_for(mut self, d: Duration) -> Self {
        self.hold = d;
        self
    }

    /// Requires `n` separate occurrences within `window`.
    pub fn occurrences(mut self, n: u32, window: Duration) -> Self {
        self.occurrences = n;
        self.within = Some(window);
        self
    }

    /// Clears only past `clear` (hysteresis).
    pub fn clear_at(mut self, clear: f64) -> Self {
        self.clear = Some(clear);
        self
    }

    /// The threshold the level clears at.
    pub fn clear_threshold(&self) -> f64 {
        self.clear.unwrap_or(self.threshold)
    }
}

/// A label matcher selecting which series a rule watches.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Matcher {
    /// `label == value` (a missing label counts as empty).
    Equal(String, String),
    /// `label != value`.
    NotEqual(String, String),
    /// The label matches the regex, anchored at both ends.
    Regex(String, regex::Regex),
    /// The label does not match the regex.
    NotRegex(String, regex::Regex),
}

impl Matcher {
    /// Parses the config form: `"value"`, `"!=value"`, `"=~regex"`, `"!~regex"`.
    pub fn parse(label: &str, spec: &str) -> Result<Self, String> {
        let regex = |r: &str| {
            regex::Regex::new(&format!("^(?:{r})$")).map_err(|e| format!("bad regex {r:?}: {e}"))
        };
        Ok(if let Some(r) = spec.strip_prefix("=~") {
            Matcher::Regex(label.to_owned(), regex(r)?)
        } else if let Some(r) = spec.strip_prefix("!~") {
            Matcher::NotRegex(label.to_owned(), regex(r)?)
        } else if let Some(v) = spec.strip_prefix("!=") {
            Matcher::NotEqual(label.to_owned(), v.to_owned())
        } else {
            Matcher::Equal(
                label.to_owned(),
                spec.strip_prefix('=').unwrap_or(spec).to_owned(),
            )
        })
    }

    /// The label it tests.
    pub fn label(&self) -> &str {
        match self {
            Matcher::Equal(l, _)
            | Matcher::NotEqual(l, _)
            | Matcher::Regex(l, _)
            | Matcher::NotRegex(l, _) => l,
        }
    }

    /// True if the labels satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(self.label()))
    }

    /// True if a label whose value is `value` (`None`: missing, which counts as empty)
    /// satisfies this matcher.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self {
            Matcher::Equal(_, want) => v == want,
            Matcher::NotEqual(_, want) => v != want,
            Matcher::Regex(_, r) => r.is_match(v),
            Matcher::NotRegex(_, r) => !r.is_match(v),
        }
    }

    fn canonical(&self) -> String {
        match self {
            Matcher::Equal(l, v) => format!("{l}={v:?}"),
            Matcher::NotEqual(l, v) => format!("{l}!={v:?}"),
            Matcher::Regex(l, r) => format!("{l}=~{:?}", r.as_str()),
            Matcher::NotRegex(l, r) => format!("{l}!~{:?}", r.as_str()),
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

/// Flap detection: more than `changes` severity changes within `within` holds notifications.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flap {
    /// Changes allowed within the window; one more marks the item flapping.
    pub changes: u32,
    /// The window.
    pub within: Duration,
}

/// No-data detection: no fresh sample for `after` puts the item at `severity`, marked "no data".
///
/// A sample is fresh when the series was recorded since the evaluator last read it (a gauge set,
/// a counter that moved, a histogram observation); silence is timed from the sweep (or watch
/// wake-up) that saw the last record, so it has the tick's granularity, and `after` must be at
/// least the evaluator's tick. The next record ends it at once. See
/// [`semantics`](super::semantics#no-data) for removed series and rules that never reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoData {
    /// How long without a sample.
    pub after: Duration,
    /// The severity the item then takes.
    pub severity: Severity,
}

/// What a windowed rule does when its window holds no data (a histogram with no observation in
/// the window: traffic stopped), so that no value can be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EmptyWindow {
    /// The item resolves to Normal once its window has emptied, as a Prometheus expression over
    /// an empty range gives no sample. The default without `no_data`.
    Resolve,
    /// The item keeps its severity until a value comes back (or no data sets in). The default
    /// when the rule has `no_data`: silence is then no-data's to report.
    Keep,
}

/// What a rule with a schedule does while its schedule is closed (TOML: `outside_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WhenClosed {
    /// Every item is resolved to Normal when the window closes and nothing is evaluated until it
    /// opens again (the default).
    #[default]
    Resolve,
    /// Items keep being evaluated but nothing is reported while the window is closed (a Zabbix
    /// maintenance, an Alertmanager mute timing); what differs from the last report is reported
    /// when the window opens, stamped at its opening.
    Suppress,
}

/// A validated rule. Build one with [`Rule::builder`] or load it from TOML (see
/// [`config`](crate::config)).
///
/// ```
/// use std::time::Duration;
/// use vigilo::{Severity, rules::{Level, Rule}};
///
/// let cpu = Rule::builder("cpu", "host_cpu_usage_ratio")
///     .level(Level::new(Severity::Warning, 0.70))
///     .level(Level::new(Severity::Major, 0.80).hold_for(Duration::from_secs(60)))
///     .level(Level::new(Severity::Critical, 0.95)
///         .hold_for(Duration::from_secs(30))
///         .occurrences(3, Duration::from_secs(600)))
///     .annotation("summary", "CPU at {{value}} (over {{threshold}})")
///     .build()?;
/// assert_eq!(cpu.levels().len(), 3);
/// # Ok::<(), vigilo::rules::RuleError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Shared with the evaluator's transitions and status (no copy per item).
    pub(crate) name: Arc<str>,
    pub(crate) metric: Arc<str>,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) aggregation: Aggregation,
    pub(crate) window: Duration,
    pub(crate) comparison: Comparison,
    /// Sorted from the lowest level up.
    pub(crate) levels: Vec<Level>,
    pub(crate) clear_for: Duration,
    /// What most rules leave unset, boxed (`None`: all unset).
    extras: Option<Box<Extras>>,
}

/// The settings most rules leave unset, out of line so that a plain threshold rule stays small
/// (the evaluator holds one per rule; 100,000 rules are a real configuration).
#[derive(Debug, Clone, PartialEq, Default)]
struct Extras {
    flap: Option<Flap>,
    no_data: Option<NoData>,
    schedule: Option<Schedule>,
    when_closed: WhenClosed,
    empty_window: Option<EmptyWindow>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// The extras of a rule that has none.
static NO_EXTRAS: Extras = Extras {
    flap: None,
    no_data: None,
    schedule: None,
    when_closed: WhenClosed::Resolve,
    empty_window: None,
    labels: BTreeMap::new(),
    annotations: BTreeMap::new(),
};

impl Rule {
    /// Starts a rule named `name` on metric `metric`.
    pub fn builder(name: impl Into<String>, metric: impl Into<String>) -> RuleBuilder {
        RuleBuilder {
            rule: Rule {
                name: Arc::from(name.into()),
                metric: Arc::from(metric.into()),
                matchers: Vec::new(),
                aggregation: Aggregation::Last,
                window: Duration::ZERO,
                comparison: Comparison::Above,
                levels: Vec::new(),
                clear_for: Duration::ZERO,
                extras: None,
            },
        }
    }

    /// The rule's name, unique within a rule set.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The metric it watches.
    pub fn metric(&self) -> &str {
        &self.metric
    }
    /// The name, shared.
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }
    /// The metric, shared.
    pub(crate) fn shared_metric(&self) -> &Arc<str> {
        &self.metric
    }
    /// Its label matchers (empty: every series of the metric).
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
    /// Its aggregation.
    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }
    /// Its window.
    pub fn window(&self) -> Duration {
        self.window
    }
    /// Above or below.
    pub fn comparison(&self) -> Comparison {
        self.comparison
    }
    /// Its levels, lowest first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }
    /// How long a level's clear condition must hold before it clears.
    pub fn clear_for(&self) -> Duration {
        self.clear_for
    }
    fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&NO_EXTRAS)
    }
    /// Flap detection settings.
    pub fn flap(&self) -> Option<Flap> {
        self.extras().flap
    }
    /// No-data settings.
    pub fn no_data(&self) -> Option<NoData> {
        self.extras().no_data
    }
    /// When the rule is active.
    pub fn schedule(&self) -> Option<&Schedule> {
        self.extras().schedule.as_ref()
    }

    /// What the rule does while its schedule is closed.
    pub fn when_closed(&self) -> WhenClosed {
        self.extras().when_closed
    }

    /// What the rule does when its window holds no data: as set, else [`EmptyWindow::Keep`] with
    /// `no_data` and [`EmptyWindow::Resolve`] without.
    pub fn empty_window(&self) -> EmptyWindow {
        let x = self.extras();
        x.empty_window.unwrap_or(if x.no_data.is_some() {
            EmptyWindow::Keep
        } else {
            EmptyWindow::Resolve
        })
    }
    /// Labels added to every transition.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.extras().labels
    }
    /// Annotation templates.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.extras().annotations
    }

    /// True if the rule watches a series with these labels.
    pub fn selects(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// What identifies the rule across reloads: name, item and aggregation. A reload that keeps
    /// these keeps the rule's state even if thresholds, durations or annotations change.
    pub fn identity(&self) -> String {
        let m: Vec<String> = self.matchers.iter().map(Matcher::canonical).collect();
        format!(
            "{}|{}{{{}}}|{}|{:?}",
            self.name,
            self.metric,
            m.join(","),
            self.aggregation,
            self.window
        )
    }

    /// The level entry for `severity`, if the rule defines it.
    pub fn level(&self, severity: Severity) -> Option<&Level> {
        self.levels.iter().find(|l| l.severity == severity)
    }

    /// The unit of the rule's values and thresholds, given the unit its metric is described
    /// with (if any) and its kind (if recorded yet): the metric's unit, per second for a
    /// `rate` (see [`crate::units`]); a histogram's `delta` and `increase` count observations,
    /// so they have none.
    pub fn unit(&self, described: Option<&str>, kind: Option<MetricKind>) -> Unit {
        match self.aggregation {
            Aggregation::Rate => Unit::of_rate(&self.metric, described),
            Aggregation::Delta | Aggregation::Increase if kind == Some(MetricKind::Histogram) => {
                Unit::NONE
            }
            Aggregation::Last
            | Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Percentile(_)
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase => Unit::of_metric(&self.metric, described),
            // How many times the value changed, and how many deviations from the band: counts.
            Aggregation::Change | Aggregation::Anomaly(_) => Unit::NONE,
            // Seconds until the target is reached.
            Aggregation::TimeLeft(_) => Unit::parse("seconds"),
        }
    }

    /// Renders the annotations for a transition; `unit` is [`unit`](Self::unit)'s.
    pub(crate) fn render_annotations(
        &self,
        labels: &Labels,
        severity: Severity,
        value: Option<f64>,
        threshold: Option<f64>,
        unit: &Unit,
    ) -> BTreeMap<String, String> {
        self.annotations()
            .keys()
            .filter_map(|k| {
                let text = self.render_annotation(k, labels, severity, value, threshold, unit)?;
                Some((k.clone(), text))
            })
            .collect()
    }

    /// Renders one annotation, if the rule has it.
    pub(crate) fn render_annotation(
        &self,
        key: &str,
        labels: &Labels,
        severity: Severity,
        value: Option<f64>,
        threshold: Option<f64>,
        unit: &Unit,
    ) -> Option<String> {
        let ctx = template::Context {
            rule: &self.name,
            metric: &self.metric,
            severity,
            value,
            threshold,
            labels,
            unit,
        };
        self.annotations()
            .get(key)
            .map(|t| template::render(t, &ctx))
    }
}

/// Builds and validates a [`Rule`].
#[derive(Debug, Clone)]
pub struct RuleBuilder {
    rule: Rule,
}

/// The rule names of the pipeline's own meta-alerts, which no configured rule may take (the
/// pipeline's constants name them from here, so the list and they agree).
pub(crate) const RESERVED_NAMES: [&str; 3] = [
    "vigilo_channel_failing",
    "vigilo_rate_limited",
    "vigilo_store_failing",
];

impl RuleBuilder {
    fn extras(&mut self) -> &mut Extras {
        self.rule.extras.get_or_insert_with(Box::default)
    }
}

impl RuleBuilder {
    /// Adds a label matcher (see [`Matcher::parse`]).
    pub fn matcher(mut self, m: Matcher) -> Self {
        self.rule.matchers.push(m);
        self
    }
    /// Sets the aggregation and its window.
    pub fn aggregate(mut self, aggregation: Aggregation, window: Duration) -> Self {
        self.rule.aggregation = aggregation;
        self.rule.window = window;
        self
    }
    /// Above (default) or below.
    pub fn comparison(mut self, c: Comparison) -> Self {
        self.rule.comparison = c;
        self
    }
    /// Adds a level.
    pub fn level(mut self, level: Level) -> Self {
        self.rule.levels.push(level);
        self
    }
    /// How long a clear condition must hold before a level clears (recovery hysteresis in time).
    pub fn clear_for(mut self, d: Duration) -> Self {
        self.rule.clear_for = d;
        self
    }
    /// Enables flap detection.
    pub fn flap(mut self, changes: u32, within: Duration) -> Self {
        self.extras().flap = Some(Flap { changes, within });
        self
    }
    /// Enables no-data detection.
    pub fn no_data(mut self, after: Duration, severity: Severity) -> Self {
        self.extras().no_data = Some(NoData { after, severity });
        self
    }
    /// Limits the rule to a schedule.
    pub fn schedule(mut self, s: Schedule) -> Self {
        self.extras().schedule = Some(s);
        self
    }
    /// What happens while the schedule is closed (default [`WhenClosed::Resolve`]).
    pub fn when_closed(mut self, when_closed: WhenClosed) -> Self {
        self.extras().when_closed = when_closed;
        self
    }
    /// What happens when the window holds no data (see [`Rule::empty_window`] for the default).
    pub fn empty_window(mut self, e: EmptyWindow) -> Self {
        self.extras().empty_window = Some(e);
        self
    }
    /// Adds a label to every transition of this rule.
    pub fn label(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.extras().labels.insert(k.into(), v.into());
        self
    }
    /// Adds an annotation template (`summary`, `description`, `runbook`, …).
    pub fn annotation(mut self, k: impl Into<String>, template: impl Into<String>) -> Self {
        self.extras().annotations.insert(k.into(), template.into());
        self
    }

    /// Validates and returns the rule.
    pub fn build(self) -> Result<Rule, RuleError> {
        let mut r = self.rule;
        // What the builder grew is kept for the rule's lifetime: no spare capacity.
        r.levels.shrink_to_fit();
        r.matchers.shrink_to_fit();
        if r.extras.as_deref() == Some(&NO_EXTRAS) {
            r.extras = None;
        }
        let name = r.name.to_string();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if !name_ok {
            return Err(RuleError::InvalidName(name));
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(RuleError::ReservedName(name));
        }
        if crate::metrics::validate_metric_name(&r.metric).is_err() {
            return Err(RuleError::InvalidMetric {
                rule: name,
                metric: r.metric.to_string(),
            });
        }
        if r.levels.is_empty() && r.no_data().is_none() {
            return Err(RuleError::NoLevels(name));
        }
        if let Err(reason) = r.aggregation.validate(r.window) {
            return Err(RuleError::Aggregation { rule: name, reason });
        }
        if r.aggregation.needs_window() && r.window.is_zero() {
            return Err(RuleError::EmptyWindow(name));
        }
        r.levels.sort_by_key(|l| l.severity);
        for l in &r.levels {
            if l.severity == Severity::Normal {
                return Err(RuleError::NormalLevel(name));
            }
            if !l.threshold.is_finite() {
                return Err(RuleError::NonFinite {
                    rule: name,
                    level: l.severity,
                    what: "threshold",
                });
            }
            if l.clear.is_some_and(|c| !c.is_finite()) {
                return Err(RuleError::NonFinite {
                    rule: name,
                    level: l.severity,
                    what: "clear",
                });
            }
            if r.comparison.fires(l.clear_threshold(), l.threshold) {
                let side = if r.comparison == Comparison::Above {
                    "below"
                } else {
                    "above"
                };
                return Err(RuleError::ClearSide {
                    rule: name,
                    level: l.severity,
                    clear: l.clear_threshold(),
                    threshold: l.threshold,
                    side,
                });
            }
            let occurrences_error = |reason: String| RuleError::Occurrences {
                rule: name.clone(),
                level: l.severity,
                reason,
            };
            if l.occurrences == 0 {
                return Err(occurrences_error("occurrences must be at least 1".into()));
            }
            if l.occurrences > 1 {
                match l.within {
                    None => {
                        return Err(occurrences_error(format!(
                            "occurrences = {} needs a `within` window",
                            l.occurrences
                        )));
                    }
                    Some(w) if w < l.hold => {
                        return Err(occurrences_error(format!(
                            "`within` ({w:?}) is shorter than the duration ({:?})",
                            l.hold
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        for pair in r.levels.windows(2) {
            let (lo, hi) = (&pair[0], &pair[1]);
            if lo.severity == hi.severity {
                return Err(RuleError::DuplicateLevel {
                    rule: name,
                    level: lo.severity,
                });
            }
            // A higher level must be strictly further on the bad side than a lower one.
            if !r.comparison.fires(hi.threshold, lo.threshold) {
                return Err(RuleError::ThresholdOrder {
                    rule: name,
                    comparison: r.comparison,
                    lower: lo.severity,
                    lower_threshold: lo.threshold,
                    higher: hi.severity,
                    higher_threshold: hi.threshold,
                });
            }
        }
        if let Some(f) = r.flap()
            && (f.changes == 0 || f.within.is_zero())
        {
            return Err(RuleError::Flap(name));
        }
        if r.no_data().is_some_and(|n| n.after.is_zero()) {
            return Err(RuleError::NoDataAfter {
                rule: name,
                after: Duration::ZERO,
                tick: None,
            });
        }
        if r.extras().empty_window.is_some() && r.window.is_zero() {
            return Err(RuleError::EmptyWindowOption(name));
        }
        if r.when_closed() == WhenClosed::Suppress && r.schedule().is_none() {
            return Err(RuleError::Schedule {
                rule: name,
                reason: "outside_schedule = \"suppress\" needs a schedule".to_owned(),
            });
        }
        for (k, t) in r.annotations() {
            template::check(t).map_err(|reason| RuleError::Template {
                rule: name.clone(),
                annotation: k.clone(),
                reason,
            })?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_histograms_increase_counts_observations_and_has_no_unit() {
        let rule = |a| {
            Rule::builder("r", "request_duration_seconds")
                .aggregate(a, secs(60))
                .level(Level::new(Severity::Warning, 10.0))
                .build()
                .unwrap()
        };
        for a in [Aggregation::Increase, Aggregation::Delta] {
            assert!(rule(a).unit(None, Some(MetricKind::Histogram)).is_none());
            assert_eq!(
                rule(a).unit(None, Some(MetricKind::Gauge)).name(),
                "seconds"
            );
            assert_eq!(rule(a).unit(None, None).name(), "seconds");
        }
        // A histogram's average and percentiles are of its observations: its unit.
        let p = rule(Aggregation::Percentile(0.99));
        assert_eq!(p.unit(None, Some(MetricKind::Histogram)).name(), "seconds");
    }

    #[test]
    fn thresholds_must_follow_direction() {
        let err = Rule::builder("r", "m")
            .level(Level::new(Severity::Warning, 0.8))
            .level(Level::new(Severity::Major, 0.7))
            .build()
            .unwrap_err();
        assert!(matches!(err, RuleError::ThresholdOrder { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("out of order for comparison above"),
            "{err}"
        );
        let ok = Rule::builder("r", "m")
            .comparison(Comparison::Below)
            .level(Level::new(Severity::Warning, 0.3))
            .level(Level::new(Severity::Critical, 0.1))
            .build();
        assert!(ok.is_ok());
    }

    #[test]
    fn validation_errors() {
        let base = || Rule::builder("r", "m");
        assert!(matches!(
            Rule::builder("", "m")
                .level(Level::new(Severity::Info, 1.0))
                .build(),
            Err(RuleError::InvalidName(_))
        ));
        assert!(matches!(
            Rule::builder("r", "9m")
                .level(Level::new(Severity::Info, 1.0))
                .build(),
            Err(RuleError::InvalidMetric { .. })
        ));
        assert!(matches!(base().build(), Err(RuleError::NoLevels(_))));
        assert!(matches!(
            base().level(Level::new(Severity::Normal, 1.0)).build(),
            Err(RuleError::NormalLevel(_))
        ));
        assert!(matches!(
            base()
                .level(Level::new(Severity::Info, 1.0))
                .level(Level::new(Severity::Info, 2.0))
                .build(),
            Err(RuleError::DuplicateLevel { .. })
        ));
        assert!(matches!(
            base().level(Level::new(Severity::Info, f64::NAN)).build(),
            Err(RuleError::NonFinite { .. })
        ));
        assert!(matches!(
            base()
                .level(Level::new(Severity::Info, 1.0).clear_at(2.0))
                .build(),
            Err(RuleError::ClearSide { .. })
        ));
        assert!(matches!(
            base()
                .level(Level::new(Severity::Info, 1.0).occurrences(0, secs(1)))
                .build(),
            Err(RuleError::Occurrences { .. })
        ));
        assert!(matches!(
            base()
                .level(
                    Level::new(Severity::Info, 1.0)
                        .hold_for(secs(60))
                        .occurrences(3, secs(30))
                )
                .build(),
            Err(RuleError::Occurrences { .. })
        ));
        assert!(matches!(
            base()
                .aggregate(Aggregation::Avg, Duration::ZERO)
                .level(Level::new(Severity::Info, 1.0))
                .build(),
            Err(RuleError::EmptyWindow(_))
        ));
        assert!(matches!(
            base()
                .flap(0, secs(60))
                .level(Level::new(Severity::Info, 1.0))
                .build(),
            Err(RuleError::Flap(_))
        ));
        assert!(matches!(
            base()
                .annotation("summary", "{{nope}}")
                .level(Level::new(Severity::Info, 1.0))
                .build(),
            Err(RuleError::Template { .. })
        ));
    }

    #[test]
    fn matchers() {
        let labels = Labels::from_pairs(&[("mount", "/data"), ("device", "sda1")]);
        assert!(Matcher::parse("mount", "/data").unwrap().matches(&labels));
        assert!(Matcher::parse("mount", "=~/d.*").unwrap().matches(&labels));
        assert!(
            !Matcher::parse("mount", "=~/d").unwrap().matches(&labels),
            "regex is anchored"
        );
        assert!(Matcher::parse("device", "!=sdb1").unwrap().matches(&labels));
        assert!(Matcher::parse("missing", "").unwrap().matches(&labels));
        assert!(
            Matcher::parse("mount", "!~/(boot|efi)")
                .unwrap()
                .matches(&labels)
        );
        assert!(Matcher::parse("x", "=~(").is_err());
    }
}
