//! The TOML shapes, spans kept, and their conversion into validated [`Rule`]s and
//! [`Expectation`]s. Everything serde can check is checked while deserializing (so toml's own
//! span locates the error); the rest is checked here, and every failure carries the span of the
//! value it is about.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Expectation;
use super::channels_raw::{RawAction, RawChannel};
use super::fields::{Dur, RawSchedule, matchers, schedule};
use super::fields::{Failure, Problem, fail};
use super::pipeline_raw::{RawNotify, RawPerson};
use super::routes_raw::{RawInhibit, RawMaintenance, RawRecovery, RawRoute};
use super::threshold::Threshold;
use crate::Severity;
use crate::eval::EvaluatorConfig;
use crate::host::HostConfig;
use crate::metrics::RegistryConfig;
use crate::plugin::PluginHostConfig;
use crate::rules::{Comparison, EmptyWindow, Level, Rule, RuleError, WhenClosed};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub registry: RegistryConfig,
    pub host: Option<Spanned<HostConfig>>,
    pub evaluator: Option<Spanned<EvaluatorConfig>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub expect: Vec<Spanned<RawExpect>>,
    pub notify: Option<Spanned<RawNotify>>,
    #[serde(default)]
    pub channel: Vec<Spanned<RawChannel>>,
    #[serde(default)]
    pub recipients: BTreeMap<String, Spanned<RawPerson>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub inhibit: Vec<Spanned<RawInhibit>>,
    #[serde(default)]
    pub maintenance: Vec<Spanned<RawMaintenance>>,
    #[serde(default)]
    pub action: Vec<Spanned<RawAction>>,
    #[serde(default)]
    pub recovery: Vec<Spanned<RawRecovery>>,
    #[serde(default)]
    pub plugins: PluginHostConfig,
    #[serde(default)]
    pub store: crate::pipeline::StoreConfig,
    pub http: Option<Spanned<crate::web::HttpConfig>>,
    #[serde(default)]
    pub slo: Vec<Spanned<super::slo_raw::RawSlo>>,
    #[serde(default)]
    pub canary: Vec<Spanned<super::canary_raw::RawCanary>>,
    pub export: Option<super::export_raw::RawExport>,
    #[serde(default)]
    pub log: Vec<Spanned<super::log_raw::RawLog>>,
    #[serde(default)]
    pub probe: Vec<Spanned<super::probe_raw::RawProbe>>,
}

/// One level table: `[rule.major]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLevel {
    threshold: Spanned<Threshold>,
    #[serde(rename = "for")]
    hold: Option<Dur>,
    occurrences: Option<Spanned<u32>>,
    within: Option<Dur>,
    clear: Option<Spanned<Threshold>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlap {
    changes: u32,
    within: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNoData {
    after: Spanned<Dur>,
    severity: Severity,
}

/// One `[[rule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub name: Spanned<String>,
    metric: Spanned<String>,
    #[serde(default)]
    select: BTreeMap<String, Spanned<String>>,
    aggregation: Option<Spanned<String>>,
    window: Option<Spanned<Dur>>,
    /// `[rule.timeleft]`: the `timeleft` aggregation's target.
    timeleft: Option<Spanned<super::aggregation_raw::RawTimeLeft>>,
    /// `[rule.anomaly]`: the `anomaly` aggregation's settings.
    anomaly: Option<Spanned<super::aggregation_raw::RawAnomaly>>,
    empty_window: Option<Spanned<EmptyWindow>>,
    comparison: Option<Comparison>,
    clear_for: Option<Dur>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, Spanned<String>>,
    flap: Option<Spanned<RawFlap>>,
    no_data: Option<Spanned<RawNoData>>,
    schedule: Option<Spanned<RawSchedule>>,
    outside_schedule: Option<Spanned<WhenClosed>>,
    #[serde(alias = "무해")]
    info: Option<Spanned<RawLevel>>,
    #[serde(alias = "주의")]
    warning: Option<Spanned<RawLevel>>,
    #[serde(alias = "위험")]
    minor: Option<Spanned<RawLevel>>,
    #[serde(alias = "긴급")]
    major: Option<Spanned<RawLevel>>,
    #[serde(alias = "치명")]
    critical: Option<Spanned<RawLevel>>,
}

/// One `[[expect]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    metric: Spanned<String>,
    #[serde(default)]
    select: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    every_series: bool,
}

impl RawRule {
    fn levels(&self) -> [(Severity, &Option<Spanned<RawLevel>>); 5] {
        [
            (Severity::Info, &self.info),
            (Severity::Warning, &self.warning),
            (Severity::Minor, &self.minor),
            (Severity::Major, &self.major),
            (Severity::Critical, &self.critical),
        ]
    }

    fn level(&self, severity: Severity) -> Option<&Spanned<RawLevel>> {
        self.levels()
            .into_iter()
            .find(|(s, _)| *s == severity)
            .and_then(|(_, l)| l.as_ref())
    }

    /// Builds the rule; `whole` is the span of the rule's table (its `[[rule]]` header), `tick`
    /// the evaluator's.
    pub(super) fn build(&self, whole: Range<usize>, tick: Duration) -> Result<Rule, Failure> {
        let mut b = Rule::builder(self.name.get_ref().as_str(), self.metric.get_ref().as_str());
        for m in matchers(&self.select)? {
            b = b.matcher(m);
        }
        let aggregation = super::aggregation_raw::aggregation(
            self.aggregation.as_ref(),
            self.timeleft.as_ref(),
            self.anomaly.as_ref(),
        )?;
        match (&self.aggregation, &self.window) {
            (Some(a), None) if aggregation.needs_window() => {
                return Err(fail(
                    a.span(),
                    "aggregation",
                    format!("aggregation {aggregation} needs a window, e.g. window = \"1m\""),
                ));
            }
            (_, Some(w)) if !aggregation.needs_window() => {
                return Err(fail(
                    w.span(),
                    "window",
                    "a window needs a windowed aggregation (avg, min, max, rate, increase, delta, \
                     change, stddev, timeleft, anomaly or a percentile like p99): set \
                     `aggregation` or remove `window`",
                ));
            }
            _ => {}
        }
        let window = self
            .window
            .as_ref()
            .map_or(Duration::ZERO, |w| w.get_ref().0);
        b = b.aggregate(aggregation, window);
        b = b.comparison(self.comparison.unwrap_or_default());
        if let Some(d) = self.clear_for {
            b = b.clear_for(d.0);
        }
        for (severity, raw) in self.levels() {
            let Some(raw) = raw else { continue };
            let raw = raw.get_ref();
            let mut level = Level::new(severity, raw.threshold.get_ref().0);
            level.hold = raw.hold.map_or(Duration::ZERO, |d| d.0);
            level.occurrences = raw.occurrences.as_ref().map_or(1, |n| *n.get_ref());
            level.within = raw.within.map(|d| d.0);
            level.clear = raw.clear.as_ref().map(|c| c.get_ref().0);
            b = b.level(level);
        }
        if let Some(f) = &self.flap {
            b = b.flap(f.get_ref().changes, f.get_ref().within.0);
        }
        if let Some(n) = &self.no_data {
            let after = &n.get_ref().after;
            if after.get_ref().0 < tick {
                return Err(Failure {
                    span: after.span(),
                    key: Some("no_data.after".to_owned()),
                    problem: Problem::Rule(RuleError::NoDataAfter {
                        rule: self.name.get_ref().clone(),
                        after: after.get_ref().0,
                        tick: Some(tick),
                    }),
                });
            }
            b = b.no_data(after.get_ref().0, n.get_ref().severity);
        }
        match (&self.outside_schedule, &self.schedule) {
            (Some(w), Some(_)) => b = b.when_closed(*w.get_ref()),
            (Some(w), None) => {
                return Err(fail(
                    w.span(),
                    "outside_schedule",
                    "outside_schedule needs a schedule: add `schedule` or remove it",
                ));
            }
            (None, _) => {}
        }
        if let Some(e) = &self.empty_window {
            b = b.empty_window(*e.get_ref());
        }
        if let Some(s) = &self.schedule {
            b = b.schedule(schedule(s)?);
        }
        for (k, v) in &self.labels {
            b = b.label(k.as_str(), v.as_str());
        }
        for (k, v) in &self.annotations {
            b = b.annotation(k.as_str(), v.get_ref().as_str());
        }
        b.build().map_err(|error| {
            let (span, key) = self.locate(&error, whole);
            Failure {
                span,
                key,
                problem: Problem::Rule(error),
            }
        })
    }

    /// The span and key a builder error is about.
    fn locate(&self, error: &RuleError, whole: Range<usize>) -> (Range<usize>, Option<String>) {
        let level_key = |s: Severity, field: &str| {
            let span = self.level(s).map(|l| {
                let l = l.get_ref();
                match field {
                    "clear" => l.clear.as_ref().map_or(l.threshold.span(), Spanned::span),
                    "occurrences" => l
                        .occurrences
                        .as_ref()
                        .map_or(l.threshold.span(), Spanned::span),
                    _ => l.threshold.span(),
                }
            });
            (
                span.unwrap_or_else(|| whole.clone()),
                Some(format!("{s}.{field}")),
            )
        };
        let at = |span: Option<Range<usize>>, key: &str| {
            (span.unwrap_or_else(|| whole.clone()), Some(key.to_owned()))
        };
        match error {
            RuleError::InvalidName(_) | RuleError::ReservedName(_) => {
                at(Some(self.name.span()), "name")
            }
            RuleError::InvalidMetric { .. } => at(Some(self.metric.span()), "metric"),
            RuleError::ThresholdOrder { higher, .. } => level_key(*higher, "threshold"),
            RuleError::NonFinite { level, what, .. } => level_key(*level, what),
            RuleError::ClearSide { level, .. } => level_key(*level, "clear"),
            RuleError::Occurrences { level, .. } => level_key(*level, "occurrences"),
            RuleError::Aggregation { .. } => {
                at(self.aggregation.as_ref().map(Spanned::span), "aggregation")
            }
            RuleError::EmptyWindow(_) => at(self.window.as_ref().map(Spanned::span), "window"),
            RuleError::EmptyWindowOption(_) => at(
                self.empty_window.as_ref().map(Spanned::span),
                "empty_window",
            ),
            RuleError::NoDataAfter { .. } => at(
                self.no_data.as_ref().map(|n| n.get_ref().after.span()),
                "no_data.after",
            ),
            RuleError::Flap(_) => at(self.flap.as_ref().map(Spanned::span), "flap"),
            RuleError::Template { annotation, .. } => at(
                self.annotations.get(annotation).map(Spanned::span),
                &format!("annotations.{annotation}"),
            ),
            RuleError::Schedule { .. } => at(self.schedule.as_ref().map(Spanned::span), "schedule"),
            RuleError::Matcher { label, .. } => at(
                self.select.get(label).map(Spanned::span),
                &format!("select.{label}"),
            ),
            _ => (whole, None),
        }
    }
}

impl RawExpect {
    pub(super) fn build(&self) -> Result<Expectation, Failure> {
        let metric = self.metric.get_ref();
        if crate::metrics::validate_metric_name(metric).is_err() {
            return Err(fail(
                self.metric.span(),
                "metric",
                format!("invalid metric name {metric:?}"),
            ));
        }
        Ok(Expectation {
            metric: metric.clone(),
            select: matchers(&self.select)?,
            every_series: self.every_series,
        })
    }

    /// The metric, to name the expectation in messages.
    pub(super) fn metric(&self) -> &str {
        self.metric.get_ref()
    }
}
