//! What the operator configures for the pipeline: channels and their delivery policy, people
//! and groups, routes, inhibitions, maintenance windows, actions and recoveries, and the
//! policy's defaults. These are validated values; the TOML forms are read by
//! [`config`](crate::config), which checks every cross-reference with a located error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Severity;
use crate::clock::Timestamp;
use crate::plugin::PluginSettings;
use crate::rules::{Matcher, Rule, Schedule};

/// The kinds of address a person may have; a channel receives the addresses of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AddressKind {
    /// An email address (email channels).
    Email,
    /// A phone number (SMS and KakaoTalk-style gateways).
    Phone,
    /// A chat user or channel id (Slack, messengers).
    Chat,
}

impl AddressKind {
    /// `email`, `phone` or `chat`.
    pub fn name(self) -> &'static str {
        match self {
            AddressKind::Email => "email",
            AddressKind::Phone => "phone",
            AddressKind::Chat => "chat",
        }
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PluginSource {
    /// A plugin bundled with vigilo, by name (`webhook`, `slack`, `email`, `alertmanager`,
    /// `sms-gateway`, `exec-recovery`); the plugin loader finds its file.
    Bundled(String),
    /// A component file.
    File(PathBuf),
    /// Implemented in the embedding program (Rust, or C through the C API) and handed to the
    /// monitor under this name.
    Native,
}

/// How a source reads in a message: `the bundled plugin "webhook"`, the file's path, or `the
/// program` for a native one.
impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Bundled(name) => write!(f, "the bundled plugin {name:?}"),
            PluginSource::File(p) => write!(f, "{}", p.display()),
            PluginSource::Native => f.write_str("the program"),
        }
    }
}

/// Retries of one notification on one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5). After the last one fails, or at once
    /// on a permanent error, the notification goes to the fallback channel if there is one.
    pub attempts: u32,
    /// Wait before the second attempt (default 1 s); doubles with each attempt.
    pub backoff: Duration,
    /// The longest wait between two attempts (default 5 min).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): exponential, capped, with
    /// "equal jitter" (half fixed, half spread by `jitter` in `0.0..1.0`), so retries of a
    /// storm do not arrive together and the wait is never below half the nominal one.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let nominal = self
            .backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = nominal / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// At most `count` notifications per `per` on a channel; the rest are held back and summed up
/// in one notification when the channel may send again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Notifications allowed per period.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

/// A channel: where notifications go, and how hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// The name routes refer to.
    pub name: String,
    /// Where its implementation comes from.
    pub source: PluginSource,
    /// The sandbox settings (memory, deadline, allowed hosts, SMTP, its own `config`) for a
    /// plugin; ignored for a native channel.
    pub plugin: PluginSettings,
    /// Which address of each recipient the channel gets (none: the alert carries no
    /// recipients, e.g. a webhook whose URL says it all).
    pub address: Option<AddressKind>,
    /// Delivery threads of this channel (default 1: notifications in order). A slow or hung
    /// channel holds only its own threads.
    pub workers: usize,
    /// Retries.
    pub retry: RetryPolicy,
    /// The channel that takes a notification this one could not deliver.
    pub fallback: Option<String>,
    /// Rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

/// A person: one address per kind, and when they may be notified.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Person {
    /// Their addresses.
    pub addresses: BTreeMap<AddressKind, String>,
    /// When they may be notified at all (`None`: any time).
    pub schedule: Option<Schedule>,
    /// When they may be notified on a given channel, by channel name (SMS at night, email by
    /// day); overrides `schedule` for that channel.
    pub channel_schedules: BTreeMap<String, Schedule>,
    /// What happens to a notification for them outside their window.
    pub outside: OutsideHours,
}

impl Person {
    /// A person with these addresses, notified at any time.
    pub fn new(addresses: BTreeMap<AddressKind, String>) -> Self {
        Person {
            addresses,
            ..Person::default()
        }
    }

    /// When they may be notified on `channel`, if they set a window.
    pub fn window(&self, channel: &str) -> Option<&Schedule> {
        self.channel_schedules
            .get(channel)
            .or(self.schedule.as_ref())
    }
}

/// What a notification for a person does outside their window (`outside` in `[recipients]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutsideHours {
    /// They are left out and whoever else the route (or tier) names gets it; if nobody else
    /// is within their window, it waits for each one's window to open (default): never lost.
    #[default]
    Skip,
    /// It waits for the start of their window, then goes to them.
    Defer,
    /// They are left out, even if nobody else gets it (recorded in the history).
    Drop,
}

/// Which alerts something applies to: rule names, label matchers and severities, all of which
/// must hold (an empty part holds for every alert).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    /// Rule names (exact); empty: any rule.
    pub rules: Vec<String>,
    /// Matchers on the alert's labels (the item's and the rule's).
    pub matchers: Vec<Matcher>,
    /// Severities selected; `None`: every severity.
    pub severities: Option<Vec<Severity>>,
}

impl Selector {
    /// True if an alert of `rule` with `labels` at `severity` is selected. A resolved alert is
    /// tested with the severity it was resolved from.
    pub fn selects(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
    ) -> bool {
        (self.rules.is_empty() || self.rules.iter().any(|r| r == rule))
            && self
                .severities
                .as_ref()
                .is_none_or(|s| s.contains(&severity))
            && self
                .matchers
                .iter()
                .all(|m| m.matches_value(labels.get(m.label()).map(String::as_str)))
    }

    /// True if an alert of `rule` could be selected, as far as the configuration tells: the
    /// rule name fits, some severity the rule can reach is selected, and every matcher on a
    /// label the rule sets itself accepts its value (labels of the series are not known in
    /// advance and may match).
    pub(crate) fn may_select(&self, rule: &Rule) -> bool {
        let mut reachable: Vec<Severity> = rule.levels().iter().map(|l| l.severity).collect();
        reachable.extend(rule.no_data().map(|n| n.severity));
        (self.rules.is_empty() || self.rules.iter().any(|r| r == rule.name()))
            && self
                .severities
                .as_ref()
                .is_none_or(|s| reachable.iter().any(|r| s.contains(r)))
            && self.matchers.iter().all(|m| {
                rule.labels()
                    .get(m.label())
                    .is_none_or(|v| m.matches_value(Some(v)))
            })
    }
}

/// What a route does with a notification that falls outside its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutsideSchedule {
    /// Hold it until the schedule's next window opens, then send what is still true then
    /// (default).
    #[default]
    Defer,
    /// Drop it (recorded in the history, never sent).
    Drop,
}

/// One escalation tier: if the incident is not acknowledged `after` its first notification on
/// the route, these recipients are told too.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// Time from the route's first notification of the incident.
    pub after: Duration,
    /// Recipient names (people or groups).
    pub recipients: Vec<String>,
    /// Channels for this tier (empty: the route's).
    pub channels: Vec<String>,
}

/// A route: which alerts, to which channels and recipients, with which notification policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The route's name (in events, incidents and idempotency keys).
    pub name: String,
    /// The alerts it takes.
    pub selector: Selector,
    /// Channel names.
    pub channels: Vec<String>,
    /// Recipient names: people or groups.
    pub recipients: Vec<String>,
    /// Labels that group alerts into one notification (empty: every item on its own). The
    /// pseudo-label `rule` groups by rule name.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification.
    pub group_wait: Duration,
    /// The least time between two notifications of one group about new changes.
    pub group_interval: Duration,
    /// While something is firing and not acknowledged, notify again after this long (`None`:
    /// never).
    pub repeat_interval: Option<Duration>,
    /// Send "resolved" ("normal recovery") notifications.
    pub send_resolved: bool,
    /// When the route may notify.
    pub schedule: Option<Schedule>,
    /// What happens outside the schedule.
    pub outside_schedule: OutsideSchedule,
    /// Escalation tiers, in order of `after`.
    pub escalation: Vec<Escalation>,
    /// Keep looking at later routes after this one matched.
    pub continue_matching: bool,
    /// The catch-all: takes every alert that no other route took.
    pub default: bool,
}

/// The people `names` (people or groups of `groups`) stand for, each once, in order.
pub(crate) fn people_of<'a>(
    groups: &'a BTreeMap<String, Vec<String>>,
    names: &'a [String],
) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for n in names {
        let members: Vec<&str> = match groups.get(n) {
            Some(g) => g.iter().map(String::as_str).collect(),
            None => vec![n.as_str()],
        };
        for m in members {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// The channels of escalation tier `tier` of `route`: its own, or the route's.
pub(crate) fn tier_channels(route: &Route, tier: &Escalation) -> Vec<String> {
    if tier.channels.is_empty() {
        route.channels.clone()
    } else {
        tier.channels.clone()
    }
}

impl Route {
    /// `group_by = ["..."]`: every label groups (Alertmanager's spelling), so each distinct
    /// label set is its own group, with the route's grouping times.
    pub fn groups_by_every_label(&self) -> bool {
        matches!(self.group_by.as_slice(), [only] if only == "...")
    }
}

/// A declared dependency: while an alert matching `source` fires, alerts matching `target`
/// with the same values of the `equal` labels are not notified ("host down" silences the
/// alerts of that host).
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// The inhibiting alerts.
    pub source: Selector,
    /// The inhibited alerts.
    pub target: Selector,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

/// When a maintenance window applies.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Window {
    /// Every time the schedule is active (e.g. nightly 02:00–03:00).
    Recurring(Schedule),
    /// Once, from `start` (inclusive) to `end` (exclusive).
    Once {
        /// Start.
        start: Timestamp,
        /// End.
        end: Timestamp,
    },
}

impl Window {
    /// True at `t`.
    pub(crate) fn is_active(&self, t: Timestamp) -> bool {
        match self {
            Window::Recurring(s) => s.is_active(t),
            Window::Once { start, end } => *start <= t && t < *end,
        }
    }

    /// The next time after `t` when the window stops or starts applying, if any within a week.
    pub(crate) fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Window::Recurring(s) => s.next_change(t),
            Window::Once { start, end } => {
                if t < *start {
                    Some(*start)
                } else if t < *end {
                    Some(*end)
                } else {
                    None
                }
            }
        }
    }
}

/// A configured maintenance window: matching alerts are not notified and trigger no recovery
/// action while it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// Its name (shown as what silenced an alert).
    pub name: String,
    /// The alerts it covers.
    pub selector: Selector,
    /// When.
    pub window: Window,
}

/// A recovery action plugin (or native action) and its sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionConfig {
    /// The name recoveries refer to.
    pub name: String,
    /// Where its implementation comes from.
    pub source: PluginSource,
    /// Sandbox settings, granted commands and the plugin's own `config`.
    pub plugin: PluginSettings,
    /// Threads running this action (default 2); one item never runs twice at once.
    pub workers: usize,
}

/// Which action runs for which alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// Which alerts (typically a rule and the severities that call for it).
    pub selector: Selector,
    /// The action's name.
    pub action: String,
    /// The least time between the end of one run and the start of the next for one item
    /// (default 5 min).
    pub cooldown: Duration,
    /// Runs per incident at most (default 3).
    pub max_attempts: u32,
    /// A run not finished after this long is recorded as timed out (default 60 s); the item
    /// stays locked until the run really returns.
    pub timeout: Duration,
}

/// Defaults and limits of the notification policy (`[notify]`).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// `group_wait` of routes that group (`group_by` set) and say nothing (default 30 s).
    /// Routes without `group_by` default to 0: each item is notified at once.
    pub group_wait: Duration,
    /// `group_interval` of routes that group and say nothing (default 5 min); 0 for the others.
    pub group_interval: Duration,
    /// `repeat_interval` of routes that say nothing (default 4 h).
    pub repeat_interval: Option<Duration>,
    /// `send_resolved` of routes that say nothing (default true).
    pub send_resolved: bool,
    /// Failed delivery attempts in a row that raise the "channel failing" meta-alert
    /// (default 3).
    pub channel_failing_after: u32,
    /// The meta-alert's severity (default major).
    pub meta_severity: Severity,
    /// Events kept in the history, at most (default 100 000).
    pub history_limit: usize,
    /// Events older than this are dropped from the history (default 30 days).
    pub history_max_age: Duration,
    /// Capacity of each event subscriber's channel (default 10 000); a subscriber that falls
    /// further behind loses events (counted in the statistics), never blocks the pipeline.
    pub subscriber_capacity: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Some(Duration::from_secs(4 * 3600)),
            send_resolved: true,
            channel_failing_after: 3,
            meta_severity: Severity::Major,
            history_limit: 100_000,
            history_max_age: Duration::from_secs(30 * 86_400),
            subscriber_capacity: 10_000,
        }
    }
}

/// What to do when the database file is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OnCorrupt {
    /// Refuse to start, naming the file (default): nothing is lost, an operator decides.
    #[default]
    Refuse,
    /// Move the damaged file aside (`<name>.corrupt-<unix seconds>`) and start with a new one.
    Recreate,
}

/// Where the pipeline keeps its state (`[store]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (relative to the configuration file's folder); none: in memory, lost
    /// at exit.
    pub path: Option<PathBuf>,
    /// What to do with a damaged file: `refuse` to start (default) or `recreate` (the damaged
    /// file is kept beside, renamed).
    pub on_corrupt: OnCorrupt,
    /// How often the evaluator's item states (holds in progress, occurrence counts) are saved
    /// (default 5 s); a crash loses at most this much of their progress.
    #[serde(with = "crate::duration::serde_duration")]
    pub checkpoint: Duration,
    /// After a restart, how long an item that was firing waits for its series to be recorded
    /// again (default 1 min); one whose series does not come back is reported resolved, as
    /// when a series is removed.
    #[serde(with = "crate::duration::serde_duration")]
    pub restore_grace: Duration,
    /// While the store cannot commit (a full disk), the most new notifications held in memory
    /// (default 1000): none is delivered before it is committed. Past the bound the oldest are
    /// taken out and summed up, per channel, in one notification sent when the store is back.
    pub hold_limit: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            on_corrupt: OnCorrupt::default(),
            checkpoint: Duration::from_secs(5),
            restore_grace: Duration::from_secs(60),
            hold_limit: 1000,
        }
    }
}

/// Everything the pipeline runs on; part of [`Config`](crate::config::Config).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineConfig {
    /// `[notify]`.
    pub notify: NotifyConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[[channel]]`, in file order.
    pub channels: Vec<ChannelConfig>,
    /// `[recipients]`: people by name.
    pub people: BTreeMap<String, Person>,
    /// `[groups]`: group name → people.
    pub groups: BTreeMap<String, Vec<String>>,
    /// `[[route]]`, in file order (first match wins unless `continue`).
    pub routes: Vec<Route>,
    /// `[[inhibit]]`.
    pub inhibit: Vec<InhibitRule>,
    /// `[[maintenance]]`.
    pub maintenance: Vec<Maintenance>,
    /// `[[action]]`.
    pub actions: Vec<ActionConfig>,
    /// `[[recovery]]`.
    pub recoveries: Vec<Recovery>,
}

impl PipelineConfig {
    /// The channel called `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// The action called `name`.
    pub fn action(&self, name: &str) -> Option<&ActionConfig> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The people a list of recipient names (people or groups) stands for, each once, in order.
    pub fn people_of<'a>(&'a self, names: &'a [String]) -> Vec<&'a str> {
        people_of(&self.groups, names)
    }

    /// The rules whose alerts no route (the default one included) can take.
    pub fn unrouted_rules(&self, rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .filter(|r| !self.routes.iter().any(|route| route.selector.may_select(r)))
            .map(|r| r.name().to_owned())
            .collect()
    }

    /// The addresses of kind `kind` of the recipients `names` (people without one are skipped).
    pub fn addresses(&self, names: &[String], kind: Option<AddressKind>) -> Vec<String> {
        let Some(kind) = kind else {
            return Vec::new();
        };
        self.people_of(names)
            .into_iter()
            .filter_map(|p| self.people.get(p)?.addresses.get(&kind).cloned())
            .collect()
    }
}
