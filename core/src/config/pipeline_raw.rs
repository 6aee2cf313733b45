//! The TOML shapes of the pipeline's sections (`[notify]`, `[[channel]]`, `[recipients]`,
//! `[groups]`, `[[route]]`, `[[inhibit]]`, `[[maintenance]]`, `[[action]]`, `[[recovery]]`)
//! and their conversion into a checked [`PipelineConfig`]: every name a route, an escalation,
//! a group, a fallback or a recovery refers to must exist, and the error points at the name.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::channels_raw::{RawAction, RawChannel};
use super::fields::{Dur, Failure, RawSchedule, fail, schedule};
use super::routes_raw::{
    Known, RawInhibit, RawMaintenance, RawRecovery, RawRoute, known_channel, list, selector_of,
    selector_parts,
};
use crate::Severity;
use crate::pipeline::{
    AddressKind, InhibitRule, NotifyConfig, OutsideHours, Person, PipelineConfig, Recovery,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) group_wait: Option<Dur>,
    pub(super) group_interval: Option<Dur>,
    pub(super) repeat_interval: Option<Dur>,
    pub(super) send_resolved: Option<bool>,
    pub(super) channel_failing_after: Option<Spanned<u32>>,
    pub(super) meta_severity: Option<Spanned<Severity>>,
    pub(super) history_limit: Option<usize>,
    pub(super) history_max_age: Option<Dur>,
    pub(super) subscriber_capacity: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) chat: Option<String>,
    /// When they may be notified at all.
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    /// When they may be notified on a channel, by channel name.
    #[serde(default)]
    pub(super) channels: BTreeMap<Spanned<String>, Spanned<RawSchedule>>,
    /// What a notification does outside their window.
    pub(super) outside: Option<OutsideHours>,
}

/// The pipeline's sections of the file, as read.
pub(super) struct RawPipeline<'a> {
    pub(super) notify: Option<&'a Spanned<RawNotify>>,
    pub(super) channels: &'a [Spanned<RawChannel>],
    pub(super) people: &'a BTreeMap<String, Spanned<RawPerson>>,
    pub(super) groups: &'a BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    pub(super) routes: &'a [Spanned<RawRoute>],
    pub(super) inhibit: &'a [Spanned<RawInhibit>],
    pub(super) maintenance: &'a [Spanned<RawMaintenance>],
    pub(super) actions: &'a [Spanned<RawAction>],
    pub(super) recoveries: &'a [Spanned<RawRecovery>],
}

/// A failure and the section it is in (`route "ops"`, `channel "pager"` …).
pub(super) type Located = (Failure, String);

fn within(context: String) -> impl FnOnce(Failure) -> Located {
    move |f| (f, context)
}

/// Builds and cross-checks the pipeline's configuration; `rules` are the rule names.
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(
    raw: &RawPipeline<'_>,
    rules: &HashSet<&str>,
) -> Result<PipelineConfig, Located> {
    let mut config = PipelineConfig {
        notify: notify(raw.notify)?,
        ..PipelineConfig::default()
    };
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for c in raw.channels {
        let ctx = format!("channel {:?}", c.get_ref().name.get_ref());
        let channel = c.get_ref().build().map_err(within(ctx.clone()))?;
        if seen.insert(c.get_ref().name.get_ref(), ()).is_some() {
            return Err((
                fail(
                    c.get_ref().name.span(),
                    "name",
                    "two channels have this name",
                ),
                ctx,
            ));
        }
        config.channels.push(channel);
    }
    let channel_names: HashSet<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
    for c in raw.channels {
        if let Some(fb) = &c.get_ref().fallback {
            let ctx = format!("channel {:?}", c.get_ref().name.get_ref());
            if fb.get_ref() == c.get_ref().name.get_ref() {
                return Err((
                    fail(
                        fb.span(),
                        "fallback",
                        "a channel cannot be its own fallback",
                    ),
                    ctx,
                ));
            }
            known_channel(fb, "fallback", &channel_names).map_err(within(ctx))?;
        }
    }
    for (name, p) in raw.people {
        let ctx = format!("recipient {name:?}");
        let person = person(p.get_ref(), &channel_names).map_err(within(ctx))?;
        config.people.insert(name.clone(), person);
    }
    for (name, members) in raw.groups {
        let ctx = format!("group {name:?}");
        if config.people.contains_key(name) {
            return Err((
                fail(
                    members.span(),
                    format!("groups.{name}"),
                    format!("{name:?} names both a person in [recipients] and a group"),
                ),
                ctx,
            ));
        }
        let mut list = Vec::new();
        for m in members.get_ref() {
            if !config.people.contains_key(m.get_ref()) {
                return Err((
                    fail(
                        m.span(),
                        format!("groups.{name}"),
                        format!(
                            "unknown recipient {:?}: people are defined in [recipients]",
                            m.get_ref()
                        ),
                    ),
                    ctx,
                ));
            }
            list.push(m.get_ref().clone());
        }
        config.groups.insert(name.clone(), list);
    }
    let mut route_names: BTreeMap<&str, ()> = BTreeMap::new();
    let mut default_route: Option<&str> = None;
    for r in raw.routes {
        let raw_route = r.get_ref();
        let ctx = format!("route {:?}", raw_route.name.get_ref());
        let known = Known {
            rules,
            channels: &channel_names,
            config: &config,
        };
        let route = raw_route
            .build(&config.notify, &known)
            .map_err(within(ctx.clone()))?;
        if route_names.insert(raw_route.name.get_ref(), ()).is_some() {
            return Err((
                fail(raw_route.name.span(), "name", "two routes have this name"),
                ctx,
            ));
        }
        if let Some(flag) = raw_route.default.as_ref().filter(|d| *d.get_ref()) {
            if let Some(first) = default_route {
                return Err((
                    fail(
                        flag.span(),
                        "default",
                        format!("only one route can be the default, and route {first:?} is"),
                    ),
                    ctx,
                ));
            }
            default_route = Some(raw_route.name.get_ref());
        }
        config.routes.push(route);
    }
    for (i, r) in raw.inhibit.iter().enumerate() {
        let ctx = format!("inhibit #{}", i + 1);
        let source = selector_of(r.get_ref().source.get_ref(), rules, "source")
            .map_err(within(ctx.clone()))?;
        let target =
            selector_of(r.get_ref().target.get_ref(), rules, "target").map_err(within(ctx))?;
        config.inhibit.push(InhibitRule {
            source,
            target,
            equal: r.get_ref().equal.clone(),
        });
    }
    for m in raw.maintenance {
        let ctx = format!("maintenance {:?}", m.get_ref().name.get_ref());
        config
            .maintenance
            .push(m.get_ref().build(m.span(), rules).map_err(within(ctx))?);
    }
    let mut action_names: BTreeMap<&str, ()> = BTreeMap::new();
    for a in raw.actions {
        let ctx = format!("action {:?}", a.get_ref().name.get_ref());
        let action = a.get_ref().build().map_err(within(ctx.clone()))?;
        if action_names
            .insert(a.get_ref().name.get_ref(), ())
            .is_some()
        {
            return Err((
                fail(
                    a.get_ref().name.span(),
                    "name",
                    "two actions have this name",
                ),
                ctx,
            ));
        }
        if channel_names.contains(a.get_ref().name.get_ref().as_str()) {
            return Err((
                fail(
                    a.get_ref().name.span(),
                    "name",
                    "a channel has this name too: channels and actions share one plugin host, \
                     so their names must differ",
                ),
                ctx,
            ));
        }
        config.actions.push(action);
    }
    for (i, r) in raw.recoveries.iter().enumerate() {
        let ctx = format!("recovery #{}", i + 1);
        let rr = r.get_ref();
        if !action_names.contains_key(rr.action.get_ref().as_str()) {
            return Err((
                fail(
                    rr.action.span(),
                    "action",
                    format!(
                        "unknown action {:?}: actions are defined in [[action]] tables ({})",
                        rr.action.get_ref(),
                        list(action_names.keys().copied())
                    ),
                ),
                ctx,
            ));
        }
        let selector = selector_parts(
            &rr.rules,
            &rr.matchers,
            rr.severities.as_ref(),
            rr.min_severity.as_ref(),
            rules,
            "",
        )
        .map_err(within(ctx.clone()))?;
        let max_attempts = match &rr.max_attempts {
            Some(n) if *n.get_ref() == 0 => {
                return Err((
                    fail(n.span(), "max_attempts", "max_attempts must be at least 1"),
                    ctx,
                ));
            }
            Some(n) => *n.get_ref(),
            None => 3,
        };
        config.recoveries.push(Recovery {
            selector,
            action: rr.action.get_ref().clone(),
            cooldown: rr.cooldown.map_or(Duration::from_secs(300), |d| d.0),
            max_attempts,
            timeout: rr
                .timeout
                .map_or(Duration::from_secs(60), |d| d.0)
                .max(Duration::from_millis(1)),
        });
    }
    Ok(config)
}

/// A person: addresses, and the windows they may be notified in (every channel named must
/// exist).
fn person(p: &RawPerson, channels: &HashSet<&str>) -> Result<Person, Failure> {
    let mut addresses = BTreeMap::new();
    for (kind, address) in [
        (AddressKind::Email, &p.email),
        (AddressKind::Phone, &p.phone),
        (AddressKind::Chat, &p.chat),
    ] {
        if let Some(a) = address {
            addresses.insert(kind, a.clone());
        }
    }
    let mut person = Person::new(addresses);
    person.schedule = p.schedule.as_ref().map(schedule).transpose()?;
    for (channel, window) in &p.channels {
        known_channel(channel, "channels", channels)?;
        person
            .channel_schedules
            .insert(channel.get_ref().clone(), schedule(window)?);
    }
    person.outside = p.outside.unwrap_or_default();
    Ok(person)
}

#[allow(clippy::result_large_err)] // loading a configuration is a cold path
fn notify(raw: Option<&Spanned<RawNotify>>) -> Result<NotifyConfig, Located> {
    let mut n = NotifyConfig::default();
    let Some(raw) = raw else {
        return Ok(n);
    };
    let r = raw.get_ref();
    if let Some(d) = r.group_wait {
        n.group_wait = d.0;
    }
    if let Some(d) = r.group_interval {
        n.group_interval = d.0;
    }
    if let Some(d) = r.repeat_interval {
        n.repeat_interval = (!d.0.is_zero()).then_some(d.0);
    }
    if let Some(b) = r.send_resolved {
        n.send_resolved = b;
    }
    if let Some(c) = &r.channel_failing_after {
        if *c.get_ref() == 0 {
            return Err((
                fail(c.span(), "channel_failing_after", "must be at least 1"),
                "[notify]".into(),
            ));
        }
        n.channel_failing_after = *c.get_ref();
    }
    if let Some(s) = &r.meta_severity {
        if *s.get_ref() == Severity::Normal {
            return Err((
                fail(
                    s.span(),
                    "meta_severity",
                    "the meta-alert needs a severity above normal",
                ),
                "[notify]".into(),
            ));
        }
        n.meta_severity = *s.get_ref();
    }
    if let Some(l) = r.history_limit {
        n.history_limit = l.max(1);
    }
    if let Some(d) = r.history_max_age {
        n.history_max_age = d.0;
    }
    if let Some(c) = r.subscriber_capacity {
        n.subscriber_capacity = c.max(1);
    }
    Ok(n)
}
