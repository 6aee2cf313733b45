//! The value shapes the configuration's sections share (durations, label matchers,
//! schedules) and the located failure every section's conversion returns.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::duration::serde_duration;
use crate::rules::{Matcher, RuleError, Schedule};

/// What went wrong, where, and under which key (relative to the rule or expectation).
#[derive(Debug)]
pub(super) struct Failure {
    pub span: Range<usize>,
    pub key: Option<String>,
    pub problem: Problem,
}

/// A message of our own, or the rule builder's verdict.
#[derive(Debug)]
pub(super) enum Problem {
    Message(String),
    Rule(RuleError),
}

pub(super) fn fail(
    span: Range<usize>,
    key: impl Into<String>,
    message: impl Into<String>,
) -> Failure {
    Failure {
        span,
        key: Some(key.into()),
        problem: Problem::Message(message.into()),
    }
}

/// A duration written as a humane string (`"1m30s"`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_duration::deserialize(d).map(Dur)
    }
}

/// `{ timezone, hours, days }`: a rule's, a route's or a maintenance window's schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    hours: Vec<Spanned<String>>,
    #[serde(default)]
    days: Vec<Spanned<String>>,
}

pub(super) fn matchers(
    select: &BTreeMap<String, Spanned<String>>,
) -> Result<Vec<Matcher>, Failure> {
    select
        .iter()
        .map(|(label, spec)| {
            Matcher::parse(label, spec.get_ref())
                .map_err(|e| fail(spec.span(), format!("select.{label}"), e))
        })
        .collect()
}

pub(super) fn schedule(raw: &Spanned<RawSchedule>) -> Result<Schedule, Failure> {
    let s = raw.get_ref();
    let zone = s.timezone.as_ref().map_or("UTC", |z| z.get_ref().as_str());
    // Check each part alone first, so the error points at the entry that is wrong.
    if let Some(z) = &s.timezone {
        Schedule::new(z.get_ref(), &[], &[]).map_err(|e| fail(z.span(), "schedule.timezone", e))?;
    }
    for h in &s.hours {
        Schedule::new("UTC", &[h.get_ref().as_str()], &[])
            .map_err(|e| fail(h.span(), "schedule.hours", e))?;
    }
    for d in &s.days {
        Schedule::new("UTC", &[], &[d.get_ref().as_str()])
            .map_err(|e| fail(d.span(), "schedule.days", e))?;
    }
    let hours: Vec<&str> = s.hours.iter().map(|h| h.get_ref().as_str()).collect();
    let days: Vec<&str> = s.days.iter().map(|d| d.get_ref().as_str()).collect();
    Schedule::new(zone, &hours, &days).map_err(|e| fail(raw.span(), "schedule", e))
}
