//! The TOML shapes of `[[route]]` (with its escalation tiers), `[[inhibit]]`, `[[maintenance]]`
//! and `[[recovery]]`, and the selectors they share; every name they refer to is checked.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, RawSchedule, fail, matchers, schedule};
use crate::Severity;
use crate::clock::Timestamp;
use crate::pipeline::{
    CHANNEL_FAILING_RULE, Escalation, Maintenance, NotifyConfig, OutsideSchedule, PipelineConfig,
    RATE_LIMITED_RULE, Route, Selector, Window,
};

/// Rule names, label matchers and severities, as written in routes, inhibitions, maintenance
/// windows and recoveries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelector {
    #[serde(default)]
    pub(super) rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub(super) matchers: BTreeMap<String, Spanned<String>>,
    pub(super) severities: Option<Spanned<Vec<Severity>>>,
    pub(super) min_severity: Option<Spanned<Severity>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    pub(super) after: Dur,
    #[serde(default)]
    pub(super) recipients: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) channels: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub(super) matchers: BTreeMap<String, Spanned<String>>,
    pub(super) severities: Option<Spanned<Vec<Severity>>>,
    pub(super) min_severity: Option<Spanned<Severity>>,
    #[serde(default)]
    pub(super) channels: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) recipients: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) group_by: Vec<Spanned<String>>,
    pub(super) group_wait: Option<Dur>,
    pub(super) group_interval: Option<Dur>,
    pub(super) repeat_interval: Option<Dur>,
    pub(super) send_resolved: Option<bool>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    pub(super) outside_schedule: Option<OutsideSchedule>,
    #[serde(default)]
    pub(super) escalation: Vec<Spanned<RawEscalation>>,
    #[serde(default, rename = "continue")]
    pub(super) continue_matching: bool,
    pub(super) default: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInhibit {
    pub(super) source: Spanned<RawSelector>,
    pub(super) target: Spanned<RawSelector>,
    #[serde(default)]
    pub(super) equal: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub(super) matchers: BTreeMap<String, Spanned<String>>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    pub(super) start: Option<Spanned<String>>,
    pub(super) end: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecovery {
    #[serde(default)]
    pub(super) rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub(super) matchers: BTreeMap<String, Spanned<String>>,
    pub(super) severities: Option<Spanned<Vec<Severity>>>,
    pub(super) min_severity: Option<Spanned<Severity>>,
    pub(super) action: Spanned<String>,
    pub(super) cooldown: Option<Dur>,
    pub(super) max_attempts: Option<Spanned<u32>>,
    pub(super) timeout: Option<Dur>,
}

pub(super) fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none is defined".to_owned()
    } else {
        format!("defined: {}", v.join(", "))
    }
}

pub(super) fn known_channel(
    name: &Spanned<String>,
    key: &str,
    channels: &HashSet<&str>,
) -> Result<(), Failure> {
    if channels.contains(name.get_ref().as_str()) {
        return Ok(());
    }
    Err(fail(
        name.span(),
        key,
        format!(
            "unknown channel {:?}: channels are defined in [[channel]] tables ({})",
            name.get_ref(),
            list({
                let mut v: Vec<&str> = channels.iter().copied().collect();
                v.sort_unstable();
                v.into_iter()
            })
        ),
    ))
}

/// What routes may refer to.
pub(super) struct Known<'a> {
    pub(super) rules: &'a HashSet<&'a str>,
    pub(super) channels: &'a HashSet<&'a str>,
    pub(super) config: &'a PipelineConfig,
}

impl Known<'_> {
    pub(super) fn recipient(&self, name: &Spanned<String>, key: &str) -> Result<(), Failure> {
        let n = name.get_ref();
        if self.config.people.contains_key(n) || self.config.groups.contains_key(n) {
            return Ok(());
        }
        Err(fail(
            name.span(),
            key,
            format!(
                "unknown recipient {n:?}: not a person in [recipients] nor a group in [groups]"
            ),
        ))
    }
}

pub(super) fn selector_of(
    raw: &RawSelector,
    rules: &HashSet<&str>,
    prefix: &str,
) -> Result<Selector, Failure> {
    selector_parts(
        &raw.rules,
        &raw.matchers,
        raw.severities.as_ref(),
        raw.min_severity.as_ref(),
        rules,
        prefix,
    )
}

pub(super) fn selector_parts(
    rule_names: &[Spanned<String>],
    select: &BTreeMap<String, Spanned<String>>,
    severities: Option<&Spanned<Vec<Severity>>>,
    min_severity: Option<&Spanned<Severity>>,
    rules: &HashSet<&str>,
    prefix: &str,
) -> Result<Selector, Failure> {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let mut names = Vec::new();
    for r in rule_names {
        let n = r.get_ref();
        if !rules.contains(n.as_str()) && n != CHANNEL_FAILING_RULE && n != RATE_LIMITED_RULE {
            return Err(fail(
                r.span(),
                key("rules"),
                format!("unknown rule {n:?}: no [[rule]] has this name"),
            ));
        }
        names.push(n.clone());
    }
    let matchers = matchers(select).map_err(|mut f| {
        f.key = f.key.map(|k| key(&k.replacen("select.", "match.", 1)));
        f
    })?;
    let severities = match (severities, min_severity) {
        (Some(_), Some(m)) => {
            return Err(fail(
                m.span(),
                key("min_severity"),
                "give either `severities` or `min_severity`, not both",
            ));
        }
        (Some(s), None) => {
            if s.get_ref().is_empty() || s.get_ref().contains(&Severity::Normal) {
                return Err(fail(
                    s.span(),
                    key("severities"),
                    "list one or more of info, warning, minor, major, critical",
                ));
            }
            Some(s.get_ref().clone())
        }
        (None, Some(m)) => {
            let min = (*m.get_ref()).max(Severity::Info);
            Some(
                Severity::LEVELS
                    .iter()
                    .copied()
                    .filter(|s| *s >= min)
                    .collect(),
            )
        }
        (None, None) => None,
    };
    Ok(Selector {
        rules: names,
        matchers,
        severities,
    })
}

impl RawRoute {
    pub(super) fn build(
        &self,
        defaults: &NotifyConfig,
        known: &Known<'_>,
    ) -> Result<Route, Failure> {
        let selector = selector_parts(
            &self.rules,
            &self.matchers,
            self.severities.as_ref(),
            self.min_severity.as_ref(),
            known.rules,
            "",
        )?;
        if self.channels.is_empty() {
            return Err(fail(
                self.name.span(),
                "channels",
                "a route needs `channels`: where its notifications go",
            ));
        }
        for c in &self.channels {
            known_channel(c, "channels", known.channels)?;
        }
        for r in &self.recipients {
            known.recipient(r, "recipients")?;
        }
        let mut escalation = Vec::new();
        for e in &self.escalation {
            let raw = e.get_ref();
            if raw.recipients.is_empty() && raw.channels.is_empty() {
                return Err(fail(
                    e.span(),
                    "escalation",
                    "an escalation tier needs `recipients` or `channels`",
                ));
            }
            for r in &raw.recipients {
                known.recipient(r, "escalation.recipients")?;
            }
            for c in &raw.channels {
                known_channel(c, "escalation.channels", known.channels)?;
            }
            escalation.push(Escalation {
                after: raw.after.0,
                recipients: raw.recipients.iter().map(|r| r.get_ref().clone()).collect(),
                channels: raw.channels.iter().map(|c| c.get_ref().clone()).collect(),
            });
        }
        for pair in escalation.windows(2) {
            if pair[1].after <= pair[0].after {
                return Err(fail(
                    self.escalation[1].span(),
                    "escalation",
                    "escalation tiers must come in order of `after`, each later than the last",
                ));
            }
        }
        if self.group_by.len() > 1
            && let Some(dots) = self.group_by.iter().find(|g| g.get_ref() == "...")
        {
            return Err(fail(
                dots.span(),
                "group_by",
                "\"...\" groups by every label and must be alone in `group_by`",
            ));
        }
        let grouped = !self.group_by.is_empty();
        Ok(Route {
            name: self.name.get_ref().clone(),
            selector,
            channels: self.channels.iter().map(|c| c.get_ref().clone()).collect(),
            recipients: self
                .recipients
                .iter()
                .map(|r| r.get_ref().clone())
                .collect(),
            group_by: self.group_by.iter().map(|g| g.get_ref().clone()).collect(),
            group_wait: self.group_wait.map(|d| d.0).unwrap_or(if grouped {
                defaults.group_wait
            } else {
                Duration::ZERO
            }),
            group_interval: self.group_interval.map(|d| d.0).unwrap_or(if grouped {
                defaults.group_interval
            } else {
                Duration::ZERO
            }),
            repeat_interval: match self.repeat_interval {
                Some(d) => (!d.0.is_zero()).then_some(d.0),
                None => defaults.repeat_interval,
            },
            send_resolved: self.send_resolved.unwrap_or(defaults.send_resolved),
            schedule: self.schedule.as_ref().map(schedule).transpose()?,
            outside_schedule: self.outside_schedule.unwrap_or_default(),
            escalation,
            continue_matching: self.continue_matching,
            default: self.default.as_ref().is_some_and(|d| *d.get_ref()),
        })
    }
}

impl RawMaintenance {
    pub(super) fn build(
        &self,
        whole: Range<usize>,
        rules: &HashSet<&str>,
    ) -> Result<Maintenance, Failure> {
        let selector = selector_parts(&self.rules, &self.matchers, None, None, rules, "")?;
        let instant = |s: &Spanned<String>, key: &str| {
            Timestamp::parse(s.get_ref()).map_err(|e| {
                fail(
                    s.span(),
                    key,
                    format!(
                        "bad time {:?}: use RFC 3339, e.g. \"2026-12-01T02:00:00+09:00\" ({e})",
                        s.get_ref()
                    ),
                )
            })
        };
        let window = match (&self.schedule, &self.start, &self.end) {
            (Some(s), None, None) => Window::Recurring(schedule(s)?),
            (None, Some(start), Some(end)) => {
                let (a, b) = (instant(start, "start")?, instant(end, "end")?);
                if b <= a {
                    return Err(fail(end.span(), "end", "`end` must be after `start`"));
                }
                Window::Once { start: a, end: b }
            }
            _ => {
                return Err(fail(
                    whole,
                    "schedule",
                    "a maintenance window needs either `schedule` (recurring) or `start` and `end` (once)",
                ));
            }
        };
        Ok(Maintenance {
            name: self.name.get_ref().clone(),
            selector,
            window,
        })
    }
}
