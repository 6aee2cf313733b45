//! The `[[canary]]` sections and their conversion into checked [`CanarySpec`]s; a failure
//! points at the key it is about.
//!
//! ```toml
//! [[canary]]
//! name = "checkout-v2"
//! label = "deployment"        # default; canary = "canary", baseline = "baseline"
//! interval = "5m"             # default 5m; duration default 30m; step default 10s
//! duration = "30m"
//! pass = 90                   # default 90; marginal default 75
//! tolerance = "10%"           # default for the metrics; alpha = 0.05
//! on_missing = "fail"         # or "ignore"
//! group_weights = { latency = 2, errors = 1 }
//! [[canary.metric]]
//! metric = "http_request_duration_seconds"
//! direction = "higher_is_bad" # or "lower_is_bad", "either" (also "increase", "decrease")
//! weight = 5
//! group = "latency"
//! tolerance = "15%"
//! critical = true
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, fail};
use crate::canary::{CanaryMetric, CanarySpec, Direction, OnMissing, SpecError};

/// A ratio: a number (0.1) or a percentage string ("10%").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Ratio {
    Number(f64),
    Text(String),
}

impl Ratio {
    fn value(raw: &Spanned<Ratio>, key: &str) -> Result<f64, Failure> {
        match raw.get_ref() {
            Ratio::Number(v) => Ok(*v),
            Ratio::Text(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .map(|v| v / 100.0)
                .ok_or_else(|| {
                    fail(
                        raw.span(),
                        key,
                        format!("tolerance {s:?}: write a ratio such as 0.1 or a percentage such as \"10%\""),
                    )
                }),
        }
    }
}

/// One `[[canary.metric]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanaryMetric {
    metric: Spanned<String>,
    direction: Direction,
    weight: Option<f64>,
    group: Option<String>,
    tolerance: Option<Spanned<Ratio>>,
    #[serde(default)]
    critical: bool,
}

/// One `[[canary]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    name: Spanned<String>,
    label: Option<Spanned<String>>,
    canary: Option<Spanned<String>>,
    baseline: Option<Spanned<String>>,
    interval: Option<Spanned<Dur>>,
    duration: Option<Spanned<Dur>>,
    step: Option<Spanned<Dur>>,
    pass: Option<Spanned<f64>>,
    marginal: Option<Spanned<f64>>,
    alpha: Option<Spanned<f64>>,
    tolerance: Option<Spanned<Ratio>>,
    on_missing: Option<OnMissing>,
    group_weights: Option<Spanned<BTreeMap<String, f64>>>,
    #[serde(default)]
    metric: Vec<Spanned<RawCanaryMetric>>,
}

impl RawCanary {
    fn build(&self, whole: Range<usize>) -> Result<CanarySpec, Failure> {
        let mut spec = CanarySpec::new(self.name.get_ref().as_str());
        let text = |v: &Option<Spanned<String>>, into: &mut String| {
            if let Some(v) = v {
                v.get_ref().clone_into(into);
            }
        };
        text(&self.label, &mut spec.label);
        text(&self.canary, &mut spec.canary);
        text(&self.baseline, &mut spec.baseline);
        for (raw, into) in [
            (&self.interval, &mut spec.interval),
            (&self.duration, &mut spec.duration),
            (&self.step, &mut spec.step),
        ] {
            if let Some(d) = raw {
                *into = d.get_ref().0;
            }
        }
        for (raw, into) in [
            (&self.pass, &mut spec.pass),
            (&self.marginal, &mut spec.marginal),
            (&self.alpha, &mut spec.alpha),
        ] {
            if let Some(v) = raw {
                *into = *v.get_ref();
            }
        }
        if let Some(t) = &self.tolerance {
            spec.tolerance = Ratio::value(t, "tolerance")?;
        }
        spec.on_missing = self.on_missing.unwrap_or_default();
        if let Some(w) = &self.group_weights {
            w.get_ref().clone_into(&mut spec.group_weights);
        }
        for m in &self.metric {
            let raw = m.get_ref();
            let mut metric = CanaryMetric::new(raw.metric.get_ref().as_str(), raw.direction);
            if let Some(w) = raw.weight {
                metric.weight = w;
            }
            if let Some(g) = &raw.group {
                g.clone_into(&mut metric.group);
            }
            if let Some(t) = &raw.tolerance {
                metric.tolerance = Some(Ratio::value(t, "metric.tolerance")?);
            }
            metric.critical = raw.critical;
            spec.metrics.push(metric);
        }
        spec.validate().map_err(|e| self.locate(e, whole))?;
        Ok(spec)
    }

    /// The span and key a validation error is about.
    fn locate(&self, error: SpecError, whole: Range<usize>) -> Failure {
        let (span, key) = match &error {
            SpecError::NoMetrics => (whole, "metric".to_owned()),
            SpecError::ThresholdOrder { .. } => (
                self.marginal
                    .as_ref()
                    .or(self.pass.as_ref())
                    .map_or(whole, Spanned::span),
                "marginal".to_owned(),
            ),
            SpecError::Metric { metric, .. } => {
                let at = self
                    .metric
                    .iter()
                    .rfind(|m| m.get_ref().metric.get_ref() == metric)
                    .map_or(whole, Spanned::span);
                (at, "metric".to_owned())
            }
            SpecError::Invalid { field, .. } => {
                let span = match field.as_str() {
                    "name" => Some(self.name.span()),
                    "label" => self.label.as_ref().map(Spanned::span),
                    "baseline" => self.baseline.as_ref().map(Spanned::span),
                    "interval" => self.interval.as_ref().map(Spanned::span),
                    "duration" => self.duration.as_ref().map(Spanned::span),
                    "step" => self.step.as_ref().map(Spanned::span),
                    "pass" => self.pass.as_ref().map(Spanned::span),
                    "marginal" => self.marginal.as_ref().map(Spanned::span),
                    "alpha" => self.alpha.as_ref().map(Spanned::span),
                    "tolerance" => self.tolerance.as_ref().map(Spanned::span),
                    f if f.starts_with("group_weights") => {
                        self.group_weights.as_ref().map(Spanned::span)
                    }
                    _ => None,
                };
                (span.unwrap_or(whole), field.clone())
            }
        };
        let message = match error {
            // The key already names the field.
            SpecError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        fail(span, key, message)
    }
}

/// A failure and the section it is in (`canary "checkout"`).
pub(super) type Located = (Failure, String);

/// Builds every `[[canary]]`; names must be unique.
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(raw: &[Spanned<RawCanary>]) -> Result<Vec<CanarySpec>, Located> {
    let mut specs = Vec::with_capacity(raw.len());
    let mut names: HashMap<&str, ()> = HashMap::new();
    for c in raw {
        let name = c.get_ref().name.get_ref();
        let context = format!("canary {name:?}");
        let spec = c
            .get_ref()
            .build(c.span())
            .map_err(|f| (f, context.clone()))?;
        if names.insert(name, ()).is_some() {
            return Err((
                fail(
                    c.get_ref().name.span(),
                    "name",
                    "two canaries have this name",
                ),
                context,
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}
