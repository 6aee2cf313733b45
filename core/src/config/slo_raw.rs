//! `[[slo]]`: service level objectives, checked, each with its generated rule.
//!
//! ```toml
//! [[slo]]
//! name = "checkout"
//! objective = "99.9%"                 # or 0.999; strictly between 0 and 100 %
//! window = "28d"                      # rolling; or "month" (calendar, with `timezone`)
//! good = { metric = "http_requests_total", select = { code = "!~5.." } }
//! total = { metric = "http_requests_total" }
//! # or: bad = { … } and total = { … }
//! # or: latency = { metric = "http_request_duration_seconds", le = "300ms" }
//! labels = { team = "shop" }          # on the generated rule `slo:checkout`
//! [[slo.alert]]                       # replaces the default tiers when given
//! factor = 14.4
//! long = "1h"
//! short = "5m"
//! severity = "critical"
//! ```

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, Problem, fail, matchers};
use crate::Severity;
use crate::duration::{format_duration, parse_duration};
use crate::rules::Rule;
use crate::slo::{BurnAlert, Selector, Slo, SloSource, SloWindow, default_alerts};

/// A number, or a string (a percentage or a duration, as the key says).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum NumOrText {
    Num(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelector {
    metric: Spanned<String>,
    #[serde(default)]
    select: BTreeMap<String, Spanned<String>>,
    le: Option<Spanned<NumOrText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurnAlert {
    factor: Spanned<f64>,
    long: Spanned<Dur>,
    short: Spanned<Dur>,
    severity: Spanned<Severity>,
}

/// One `[[slo]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlo {
    name: Spanned<String>,
    objective: Spanned<NumOrText>,
    window: Spanned<String>,
    timezone: Option<Spanned<String>>,
    good: Option<Spanned<RawSelector>>,
    bad: Option<Spanned<RawSelector>>,
    total: Option<Spanned<RawSelector>>,
    latency: Option<Spanned<RawSelector>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    alert: Vec<Spanned<RawBurnAlert>>,
}

/// A failure and the section it is in (`slo "checkout"`).
pub(super) type Located = (Failure, String);

/// Checks every `[[slo]]` and appends its generated rule to `rules` (names stay unique).
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(raw: &[Spanned<RawSlo>], rules: &mut Vec<Rule>) -> Result<Vec<Slo>, Located> {
    let mut slos = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for r in raw {
        let ctx = format!("slo {:?}", r.get_ref().name.get_ref());
        let slo = r.get_ref().build(r.span()).map_err(|f| (f, ctx.clone()))?;
        let name_span = r.get_ref().name.span();
        if !names.insert(slo.name.clone()) {
            return Err((fail(name_span, "name", "two SLOs have this name"), ctx));
        }
        let rule = slo.rule().map_err(|error| {
            let f = Failure {
                span: name_span.clone(),
                key: Some("name".into()),
                problem: Problem::Rule(error),
            };
            (f, ctx.clone())
        })?;
        if rules.iter().any(|x| x.name() == rule.name()) {
            let message = format!(
                "a [[rule]] is named {:?}, the name of this SLO's rule",
                rule.name()
            );
            return Err((fail(name_span, "name", message), ctx));
        }
        rules.push(rule);
        slos.push(slo);
    }
    Ok(slos)
}

/// `"99.9%"` read as 99.9e-2, the f64 nearest 0.999 (99.9 / 100 is one off it).
fn percentage(s: &str) -> Result<f64, String> {
    s.trim()
        .strip_suffix('%')
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .and_then(|d| format!("{d}e-2").parse::<f64>().ok())
        .ok_or_else(|| {
            format!(
                "objective {s:?}: write a percentage such as \"99.9%\" or a ratio such as 0.999"
            )
        })
}

impl RawSelector {
    fn build(&self, key: &str) -> Result<Selector, Failure> {
        let metric = self.metric.get_ref();
        if crate::metrics::validate_metric_name(metric).is_err() {
            let m = format!("invalid metric name {metric:?}");
            return Err(fail(self.metric.span(), format!("{key}.metric"), m));
        }
        if let Some(le) = &self.le.as_ref().filter(|_| key != "latency") {
            let m = "`le` belongs in `latency` (a histogram's bound)";
            return Err(fail(le.span(), format!("{key}.le"), m));
        }
        let select = matchers(&self.select).map_err(|mut f| {
            f.key = f.key.map(|k| format!("{key}.{k}"));
            f
        })?;
        Ok(Selector {
            metric: metric.clone(),
            select,
        })
    }
}

impl RawSlo {
    fn build(&self, whole: std::ops::Range<usize>) -> Result<Slo, Failure> {
        let name = self.name.get_ref();
        let plain = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if name.is_empty() || !name.chars().all(plain) {
            let m = "an SLO name is letters, digits, `_`, `.` and `-`";
            return Err(fail(self.name.span(), "name", m));
        }
        let objective = match self.objective.get_ref() {
            NumOrText::Num(v) => Ok(*v),
            NumOrText::Text(s) => percentage(s),
        }
        .map_err(|m| fail(self.objective.span(), "objective", m))?;
        if !(objective > 0.0 && objective < 1.0) {
            let m = format!(
                "objective {}% leaves no error budget or no goal: it must be above 0% and below 100%",
                objective * 100.0
            );
            return Err(fail(self.objective.span(), "objective", m));
        }
        let alerts = self.alerts()?;
        let window = self.window()?;
        let longest = alerts.iter().map(|a| a.long).max().unwrap_or_default();
        if window.min_span() < longest {
            let m = format!(
                "window {} is shorter than the longest alert window ({}): lengthen it or \
                 shorten the [[slo.alert]] windows",
                format_duration(window.min_span()),
                format_duration(longest)
            );
            return Err(fail(self.window.span(), "window", m));
        }
        Ok(Slo {
            name: name.clone(),
            objective,
            window,
            source: self.source(whole)?,
            alerts,
            labels: self.labels.clone(),
        })
    }

    fn window(&self) -> Result<SloWindow, Failure> {
        let text = self.window.get_ref();
        if text == "month" {
            let zone = self
                .timezone
                .as_ref()
                .map_or("UTC", |z| z.get_ref().as_str());
            if jiff::tz::TimeZone::get(zone).is_err() {
                let span = self
                    .timezone
                    .as_ref()
                    .map_or(self.window.span(), Spanned::span);
                return Err(fail(
                    span,
                    "timezone",
                    format!("unknown time zone {zone:?}"),
                ));
            }
            return Ok(SloWindow::Month {
                zone: zone.to_owned(),
            });
        }
        if let Some(z) = &self.timezone {
            let m = "a time zone goes with a calendar window: window = \"month\"";
            return Err(fail(z.span(), "timezone", m));
        }
        let span = self.window.span();
        let d = parse_duration(text).map_err(|e| {
            fail(
                span.clone(),
                "window",
                format!("{e}; or \"month\" for the calendar month"),
            )
        })?;
        Ok(SloWindow::Rolling(d))
    }

    fn source(&self, whole: std::ops::Range<usize>) -> Result<SloSource, Failure> {
        let sel = |s: &Spanned<RawSelector>, key| s.get_ref().build(key);
        match (&self.good, &self.bad, &self.total, &self.latency) {
            (Some(g), None, Some(t), None) => Ok(SloSource::Good {
                good: sel(g, "good")?,
                total: sel(t, "total")?,
            }),
            (None, Some(b), Some(t), None) => Ok(SloSource::Bad {
                bad: sel(b, "bad")?,
                total: sel(t, "total")?,
            }),
            (None, None, None, Some(l)) => {
                let histogram = sel(l, "latency")?;
                let Some(le) = &l.get_ref().le else {
                    let m = "a latency SLO needs a bound: le = \"300ms\" (or a number in the histogram's unit)";
                    return Err(fail(l.span(), "latency.le", m));
                };
                let value = match le.get_ref() {
                    NumOrText::Num(v) => Ok(*v),
                    NumOrText::Text(s) => parse_duration(s)
                        .map(|d| d.as_secs_f64())
                        .map_err(|e| e.to_string()),
                }
                .map_err(|m| fail(le.span(), "latency.le", m))?;
                if !(value.is_finite() && value > 0.0) {
                    return Err(fail(le.span(), "latency.le", "the bound must be above 0"));
                }
                Ok(SloSource::Latency {
                    histogram,
                    le: value,
                })
            }
            _ => {
                let span = [&self.good, &self.bad, &self.latency]
                    .into_iter()
                    .flatten()
                    .nth(1)
                    .map_or(whole, Spanned::span);
                let m = "say where events come from with `good` and `total` (counters), `bad` \
                         and `total` (counters), or `latency` (a histogram and a bound `le`), \
                         one of the three";
                Err(fail(span, "source", m))
            }
        }
    }

    fn alerts(&self) -> Result<Vec<BurnAlert>, Failure> {
        if self.alert.is_empty() {
            return Ok(default_alerts());
        }
        let mut out: Vec<(BurnAlert, std::ops::Range<usize>)> = Vec::new();
        for a in &self.alert {
            let r = a.get_ref();
            let factor = *r.factor.get_ref();
            if !(factor.is_finite() && factor > 0.0) {
                return Err(fail(
                    r.factor.span(),
                    "alert.factor",
                    "the factor must be above 0",
                ));
            }
            let (long, short) = (r.long.get_ref().0, r.short.get_ref().0);
            if short < Duration::from_secs(60) || long < Duration::from_secs(60) {
                let m = "alert windows are at least 1m (the finest slot)";
                return Err(fail(r.short.span(), "alert.short", m));
            }
            if short >= long {
                let m = "the short window must be shorter than the long one";
                return Err(fail(r.short.span(), "alert.short", m));
            }
            if *r.severity.get_ref() == Severity::Normal {
                let m = "a tier needs a severity above normal";
                return Err(fail(r.severity.span(), "alert.severity", m));
            }
            let alert = BurnAlert {
                factor,
                long,
                short,
                severity: *r.severity.get_ref(),
            };
            out.push((alert, a.span()));
        }
        out.sort_by(|a, b| a.0.factor.total_cmp(&b.0.factor));
        for pair in out.windows(2) {
            let (lo, hi) = (&pair[0].0, &pair[1].0);
            if hi.factor <= lo.factor || hi.severity <= lo.severity {
                let m = format!(
                    "tiers must rise together: a higher factor needs a higher severity \
                     ({}× is {}, {}× is {})",
                    lo.factor, lo.severity, hi.factor, hi.severity
                );
                return Err(fail(pair[1].1.clone(), "alert", m));
            }
        }
        Ok(out.into_iter().map(|(a, _)| a).collect())
    }
}
