//! Notifications: one alert for one channel, with its idempotency key and its attempts; and how
//! alerts are built from incidents (one item, or a digest of a group).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::incident::{Incident, IncidentId};
use crate::Severity;
use crate::alert::{Alert, AlertStatus, Fnv};
use crate::clock::Timestamp;

/// A notification's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(pub u64);

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a notification was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// A change of one item (firing or resolved).
    Change,
    /// Several items of a group at once.
    Digest,
    /// Still firing, not acknowledged: told again.
    Repeat,
    /// Not acknowledged in time: the next tier is told.
    Escalation,
    /// A channel keeps failing (or recovered).
    Meta,
    /// What a channel's rate limit held back.
    RateSummary,
    /// Notifications held while the store could not commit, past `[store] hold_limit`.
    HeldSummary,
}

/// One alert on its way to one channel: an entry of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Its number.
    pub id: NotificationId,
    /// The channel.
    pub channel: String,
    /// The alert, recipients filled in for this channel, idempotency key set.
    pub alert: Alert,
    /// Why.
    pub kind: NotificationKind,
    /// The route that sent it.
    pub route: Option<String>,
    /// The incidents it tells about.
    pub incidents: Vec<IncidentId>,
    /// The item, `rule{labels}`, when it tells about one.
    pub item: Option<String>,
    /// The recipients by name (people and groups), to address a fallback channel.
    pub to: Vec<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it entered the outbox.
    pub created_at: Timestamp,
    /// When the next attempt is due.
    pub due_at: Timestamp,
    /// Channels already tried for this alert (the fallback chain), oldest first.
    pub tried: Vec<String>,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

impl Notification {
    /// The idempotency key: the same for every attempt and every channel of one notification.
    pub fn key(&self) -> &str {
        &self.alert.idempotency_key
    }
}

/// Sets the idempotency key of `alert`, built before its recipients are filled in:
/// `{what}@{store}.{content}`, where `what` names the notification for people reading it
/// (`3:ops:2`: incident 3, route `ops`, its second change; see ARCHITECTURE.md), `store` is the
/// identity of the store that numbered it (random, made with the database and renewed when it
/// is recreated) and `content` a hash of everything the alert says (status, severity, value,
/// times, labels, annotations …). So a key is never used for different news: not by another
/// store, not by this store after its counters went back (a database restored from an older
/// copy), since different content gives a different hash. The same notification keeps its key
/// on every attempt, channel and restart: the key is stored with it.
pub(crate) fn set_key(alert: &mut Alert, what: &str, store: &str) {
    let recipients = std::mem::take(&mut alert.recipients);
    alert.idempotency_key.clear();
    let mut h = Fnv::new();
    if let Ok(bytes) = serde_json::to_vec(&*alert) {
        h.eat(&bytes);
    }
    alert.recipients = recipients;
    alert.idempotency_key = format!("{what}@{store}.{:016x}", h.finish());
}

/// The alert telling about `inc` (its key set afterwards, with [`set_key`]) (firing at its severity, or resolved from `previous`).
pub(crate) fn item_alert(
    inc: &Incident,
    status: AlertStatus,
    previous: Severity,
    since: Timestamp,
) -> Alert {
    let mut annotations = inc.annotations.clone();
    if let Some(r) = inc.recovery_summary() {
        annotations.insert("recovery".to_owned(), r);
    }
    let (severity, at) = match status {
        AlertStatus::Firing => (inc.severity, inc.changed_at),
        AlertStatus::Resolved => (Severity::Normal, inc.resolved_at.unwrap_or(inc.changed_at)),
    };
    Alert {
        rule: inc.item.rule.to_string(),
        metric: inc.metric.to_string(),
        labels: inc.labels.clone(),
        annotations,
        severity,
        previous,
        peak: inc.peak,
        status,
        value: inc.value,
        threshold: inc.threshold,
        since,
        at,
        idempotency_key: String::new(),
        recipients: Vec::new(),
        incident: Some(inc.id.0),
        fingerprint: inc.fingerprint.clone(),
    }
}

/// The most items a digest's `alerts` annotation lists (the rest are counted in
/// `alerts_omitted`): it stays valid JSON well within the plugins' field limit.
const DIGEST_ITEMS: usize = 100;

/// One member of a digest: the incident, its status and the severity it is reported at.
pub(crate) struct DigestPart<'a> {
    pub(crate) incident: &'a Incident,
    pub(crate) status: AlertStatus,
    pub(crate) severity: Severity,
}

/// One alert summing up a group: severity the highest firing one, status firing while anything
/// fires; `summary` lists the first 20 items, `alerts` holds the first 100 as JSON.
pub(crate) fn digest_alert(
    group_labels: &BTreeMap<String, String>,
    route: &str,
    parts: &[DigestPart<'_>],
    previous: Severity,
    at: Timestamp,
) -> Alert {
    let firing: Vec<&DigestPart<'_>> = parts
        .iter()
        .filter(|p| p.status == AlertStatus::Firing)
        .collect();
    let resolved = parts.len() - firing.len();
    let severity = firing
        .iter()
        .map(|p| p.severity)
        .max()
        .unwrap_or(Severity::Normal);
    let rule = match parts.first() {
        Some(p)
            if parts
                .iter()
                .all(|q| q.incident.item.rule == p.incident.item.rule) =>
        {
            p.incident.item.rule.to_string()
        }
        _ => route.to_owned(),
    };
    let metric = match parts.first() {
        Some(p) if parts.iter().all(|q| q.incident.metric == p.incident.metric) => {
            p.incident.metric.to_string()
        }
        _ => String::new(),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for p in parts {
        let i = p.incident;
        let state = match p.status {
            AlertStatus::Firing => p.severity.name(),
            AlertStatus::Resolved => "resolved",
        };
        if lines.len() < 20 {
            lines.push(format!("{} ({state})", i.item));
        }
        if items.len() >= DIGEST_ITEMS {
            continue;
        }
        items.push(serde_json::json!({
            "incident": i.id.0,
            "item": i.item.to_string(),
            "fingerprint": i.fingerprint,
            "status": p.status,
            "severity": p.severity.name(),
            "value": i.value,
            "summary": i.annotations.get("summary"),
        }));
    }
    if parts.len() > lines.len() {
        lines.push(format!("and {} more", parts.len() - lines.len()));
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "summary".to_owned(),
        format!(
            "{} firing, {resolved} resolved: {}",
            firing.len(),
            lines.join(", ")
        ),
    );
    annotations.insert(
        "alerts".to_owned(),
        serde_json::Value::Array(items).to_string(),
    );
    if parts.len() > DIGEST_ITEMS {
        annotations.insert(
            "alerts_omitted".to_owned(),
            (parts.len() - DIGEST_ITEMS).to_string(),
        );
    }
    let since = parts
        .iter()
        .map(|p| p.incident.opened_at)
        .min()
        .unwrap_or(at);
    Alert {
        rule,
        metric,
        labels: group_labels.clone(),
        annotations,
        severity,
        previous,
        peak: parts
            .iter()
            .map(|p| p.incident.peak)
            .max()
            .unwrap_or(severity),
        status: if firing.is_empty() {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        },
        value: None,
        threshold: None,
        since,
        at,
        idempotency_key: String::new(),
        recipients: Vec::new(),
        incident: None,
        fingerprint: String::new(),
    }
}

/// What a channel held back, summed up later in one notification (a rate limit that was
/// spent, a store that could not commit).
#[derive(Debug, Default)]
pub(crate) struct HeldBack {
    pub(crate) count: u64,
    pub(crate) worst: Severity,
    pub(crate) since: Option<Timestamp>,
    /// The first 20, one line each.
    pub(crate) lines: Vec<String>,
}

impl HeldBack {
    /// Counts `alert`, held at `at`.
    pub(crate) fn add(&mut self, alert: &Alert, at: Timestamp) {
        self.count += 1;
        self.worst = self.worst.max(alert.severity);
        self.since.get_or_insert(at);
        if self.lines.len() < 20 {
            let state = match alert.status {
                AlertStatus::Firing => alert.severity.name().to_owned(),
                AlertStatus::Resolved => format!("resolved (was {})", alert.previous),
            };
            let summary = alert
                .annotations
                .get("summary")
                .map(|s| format!(": {}", super::truncate(s, 120)))
                .unwrap_or_default();
            self.lines.push(format!("{} {state}{summary}", alert.rule));
        }
    }

    /// The notification for `channel` summing it up (rule `rule`, `summary` says why it was
    /// held); its key is set afterwards.
    pub(crate) fn into_alert(
        self,
        rule: &str,
        channel: &str,
        summary: String,
        now: Timestamp,
    ) -> Alert {
        let mut lines = self.lines;
        if self.count > lines.len() as u64 {
            lines.push(format!("and {} more", self.count - lines.len() as u64));
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_owned(), summary);
        annotations.insert("description".to_owned(), lines.join("\n"));
        let severity = self.worst.max(Severity::Info);
        Alert {
            rule: rule.to_owned(),
            metric: "vigilo_notifications_held".to_owned(),
            labels: BTreeMap::from([("channel".to_owned(), channel.to_owned())]),
            annotations,
            severity,
            previous: Severity::Normal,
            peak: severity,
            status: AlertStatus::Firing,
            value: Some(self.count as f64),
            threshold: None,
            since: self.since.unwrap_or(now),
            at: now,
            idempotency_key: String::new(),
            recipients: Vec::new(),
            incident: None,
            fingerprint: String::new(),
        }
    }
}
