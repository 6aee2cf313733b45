//! The TOML shapes of the pipeline's sections (`[notify]`, `[[channel]]`, `[recipients]`,
//! `[groups]`, `[[route]]`, `[[inhibit]]`, `[[maintenance]]`, `[[action]]`, `[[recovery]]`)
//! and their conversion into a checked [`PipelineConfig`]: every name a route, an escalation,
//! a group, a fallback or a recovery refers to must exist, and the error points at the name.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::{Dur, Failure, RawSchedule, fail, matchers, schedule};
use crate::Severity;
use crate::clock::Timestamp;
use crate::pipeline::{
    ActionConfig, AddressKind, CHANNEL_FAILING_RULE, ChannelConfig, Escalation, InhibitRule,
    Maintenance, NotifyConfig, OutsideSchedule, Person, PipelineConfig, PluginSource,
    RATE_LIMITED_RULE, RateLimit, Recovery, RetryPolicy, Route, Selector, Window,
};
use crate::plugin::{ExecGrant, PluginSettings, SmtpSettings};

/// A size in bytes (`"32MiB"` or a number).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bytes(usize);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::plugin::de_bytes(d).map(Bytes)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    group_wait: Option<Dur>,
    group_interval: Option<Dur>,
    repeat_interval: Option<Dur>,
    send_resolved: Option<bool>,
    channel_failing_after: Option<Spanned<u32>>,
    meta_severity: Option<Spanned<Severity>>,
    history_limit: Option<usize>,
    history_max_age: Option<Dur>,
    subscriber_capacity: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    attempts: Option<Spanned<u32>>,
    backoff: Option<Dur>,
    max_backoff: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRate {
    count: u32,
    per: Dur,
}

/// The plugin fields shared by channels and actions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    name: Spanned<String>,
    plugin: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    sha256: Option<String>,
    memory_limit: Option<Bytes>,
    deadline: Option<Dur>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    http_timeout: Option<Dur>,
    smtp: Option<SmtpSettings>,
    config: Option<serde_json::Value>,
    address: Option<AddressKind>,
    workers: Option<Spanned<usize>>,
    retry: Option<RawRetry>,
    fallback: Option<Spanned<String>>,
    rate_limit: Option<Spanned<RawRate>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    name: Spanned<String>,
    plugin: Option<Spanned<String>>,
    path: Option<Spanned<PathBuf>>,
    sha256: Option<String>,
    memory_limit: Option<Bytes>,
    deadline: Option<Dur>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    http_timeout: Option<Dur>,
    #[serde(default)]
    exec_grants: Vec<ExecGrant>,
    config: Option<serde_json::Value>,
    workers: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    email: Option<String>,
    phone: Option<String>,
    chat: Option<String>,
}

/// Rule names, label matchers and severities, as written in routes, inhibitions, maintenance
/// windows and recoveries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelector {
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, Spanned<String>>,
    severities: Option<Spanned<Vec<Severity>>>,
    min_severity: Option<Spanned<Severity>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    after: Dur,
    #[serde(default)]
    recipients: Vec<Spanned<String>>,
    #[serde(default)]
    channels: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    name: Spanned<String>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, Spanned<String>>,
    severities: Option<Spanned<Vec<Severity>>>,
    min_severity: Option<Spanned<Severity>>,
    #[serde(default)]
    channels: Vec<Spanned<String>>,
    #[serde(default)]
    recipients: Vec<Spanned<String>>,
    #[serde(default)]
    group_by: Vec<String>,
    group_wait: Option<Dur>,
    group_interval: Option<Dur>,
    repeat_interval: Option<Dur>,
    send_resolved: Option<bool>,
    schedule: Option<Spanned<RawSchedule>>,
    outside_schedule: Option<OutsideSchedule>,
    #[serde(default)]
    escalation: Vec<Spanned<RawEscalation>>,
    #[serde(default, rename = "continue")]
    continue_matching: bool,
    default: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInhibit {
    source: Spanned<RawSelector>,
    target: Spanned<RawSelector>,
    #[serde(default)]
    equal: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    name: Spanned<String>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, Spanned<String>>,
    schedule: Option<Spanned<RawSchedule>>,
    start: Option<Spanned<String>>,
    end: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecovery {
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, Spanned<String>>,
    severities: Option<Spanned<Vec<Severity>>>,
    min_severity: Option<Spanned<Severity>>,
    action: Spanned<String>,
    cooldown: Option<Dur>,
    max_attempts: Option<Spanned<u32>>,
    timeout: Option<Dur>,
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
        let p = p.get_ref();
        let mut person = Person::default();
        for (kind, address) in [
            (AddressKind::Email, &p.email),
            (AddressKind::Phone, &p.phone),
            (AddressKind::Chat, &p.chat),
        ] {
            if let Some(a) = address {
                person.addresses.insert(kind, a.clone());
            }
        }
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

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none is defined".to_owned()
    } else {
        format!("defined: {}", v.join(", "))
    }
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

fn known_channel(
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
struct Known<'a> {
    rules: &'a HashSet<&'a str>,
    channels: &'a HashSet<&'a str>,
    config: &'a PipelineConfig,
}

impl Known<'_> {
    fn recipient(&self, name: &Spanned<String>, key: &str) -> Result<(), Failure> {
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

fn plugin_source(
    plugin: Option<&Spanned<String>>,
    path: Option<&Spanned<PathBuf>>,
) -> Result<PluginSource, Failure> {
    match (plugin, path) {
        (Some(_), Some(p)) => Err(fail(
            p.span(),
            "path",
            "give either `plugin` (a bundled plugin's name) or `path` (a component file), not both",
        )),
        (Some(name), None) => {
            let n = name.get_ref();
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(
                    name.span(),
                    "plugin",
                    format!("bad plugin name {n:?}: a bundled plugin's name, such as \"webhook\""),
                ));
            }
            Ok(PluginSource::Bundled(n.clone()))
        }
        (None, Some(p)) => Ok(PluginSource::File(p.get_ref().clone())),
        (None, None) => Ok(PluginSource::Native),
    }
}

fn workers(w: Option<&Spanned<usize>>, default: usize) -> Result<usize, Failure> {
    match w {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 64 => Err(fail(
            n.span(),
            "workers",
            "workers must be between 1 and 64",
        )),
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    }
}

/// The fields channels and actions share: where the plugin is and its sandbox.
struct Sandbox<'a> {
    name: &'a Spanned<String>,
    what: &'a str,
    plugin: Option<&'a Spanned<String>>,
    path: Option<&'a Spanned<PathBuf>>,
    sha256: &'a Option<String>,
    memory_limit: Option<Bytes>,
    deadline: Option<Dur>,
    allowed_hosts: &'a [String],
    http_timeout: Option<Dur>,
    config: &'a Option<serde_json::Value>,
}

impl Sandbox<'_> {
    fn build(self) -> Result<(PluginSource, PluginSettings), Failure> {
        let name = self.name.get_ref();
        if name.is_empty() {
            return Err(fail(
                self.name.span(),
                "name",
                format!("{} needs a name", self.what),
            ));
        }
        let source = plugin_source(self.plugin, self.path)?;
        let mut plugin = PluginSettings::new(name.clone(), PathBuf::new());
        if let PluginSource::File(p) = &source {
            plugin.path = p.clone();
        }
        plugin.sha256.clone_from(self.sha256);
        if let Some(m) = self.memory_limit {
            plugin.memory_limit = m.0;
        }
        if let Some(d) = self.deadline {
            plugin.deadline = d.0;
        }
        plugin.allowed_hosts = self.allowed_hosts.to_vec();
        if let Some(d) = self.http_timeout {
            plugin.http_timeout = d.0;
        }
        if let Some(c) = self.config {
            plugin.config = c.clone();
        }
        Ok((source, plugin))
    }
}

impl RawChannel {
    fn build(&self) -> Result<ChannelConfig, Failure> {
        let (source, mut plugin) = Sandbox {
            name: &self.name,
            what: "a channel",
            plugin: self.plugin.as_ref(),
            path: self.path.as_ref(),
            sha256: &self.sha256,
            memory_limit: self.memory_limit,
            deadline: self.deadline,
            allowed_hosts: &self.allowed_hosts,
            http_timeout: self.http_timeout,
            config: &self.config,
        }
        .build()?;
        plugin.smtp.clone_from(&self.smtp);
        let mut retry = RetryPolicy::default();
        if let Some(r) = &self.retry {
            if let Some(a) = &r.attempts {
                if *a.get_ref() == 0 {
                    return Err(fail(
                        a.span(),
                        "retry.attempts",
                        "attempts must be at least 1",
                    ));
                }
                retry.attempts = *a.get_ref();
            }
            if let Some(b) = r.backoff {
                retry.backoff = b.0;
            }
            if let Some(m) = r.max_backoff {
                retry.max_backoff = m.0;
            }
        }
        let rate_limit = match &self.rate_limit {
            Some(r) if r.get_ref().count == 0 || r.get_ref().per.0.is_zero() => {
                return Err(fail(
                    r.span(),
                    "rate_limit",
                    "a rate limit needs count ≥ 1 and a period, e.g. { count = 20, per = \"1m\" }",
                ));
            }
            Some(r) => Some(RateLimit {
                count: r.get_ref().count,
                per: r.get_ref().per.0,
            }),
            None => None,
        };
        Ok(ChannelConfig {
            name: self.name.get_ref().clone(),
            source,
            plugin,
            address: self.address,
            workers: workers(self.workers.as_ref(), 1)?,
            retry,
            fallback: self.fallback.as_ref().map(|f| f.get_ref().clone()),
            rate_limit,
        })
    }
}

impl RawAction {
    fn build(&self) -> Result<ActionConfig, Failure> {
        let (source, mut plugin) = Sandbox {
            name: &self.name,
            what: "an action",
            plugin: self.plugin.as_ref(),
            path: self.path.as_ref(),
            sha256: &self.sha256,
            memory_limit: self.memory_limit,
            deadline: self.deadline,
            allowed_hosts: &self.allowed_hosts,
            http_timeout: self.http_timeout,
            config: &self.config,
        }
        .build()?;
        plugin.exec_grants.clone_from(&self.exec_grants);
        Ok(ActionConfig {
            name: self.name.get_ref().clone(),
            source,
            plugin,
            workers: workers(self.workers.as_ref(), 2)?,
        })
    }
}

fn selector_of(
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

fn selector_parts(
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
    fn build(&self, defaults: &NotifyConfig, known: &Known<'_>) -> Result<Route, Failure> {
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
            group_by: self.group_by.clone(),
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
    fn build(&self, whole: Range<usize>, rules: &HashSet<&str>) -> Result<Maintenance, Failure> {
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
