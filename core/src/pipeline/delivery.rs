//! Delivery, the pipeline's side: the outbox, attempts handed to the channel's threads,
//! retries with exponential backoff and jitter, the fallback channel, the rate limit and its
//! summary, and the "channel failing" meta-alert.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use super::event::{Event, EventKind};
use super::incident::{DeliveryRecord, IncidentId, ItemKey};
use super::notification::{Notification, NotificationId, NotificationKind};
use super::state::Dispatcher;
use super::store::StoreChange;
use super::timers::Timer;
use super::workers::DeliveryJob;
use crate::alert::{Alert, AlertStatus, DeliveryError};
use crate::clock::Timestamp;
use crate::eval::Transition;
use crate::metrics::Labels;
use crate::{Severity, pipeline};

/// The rule name of the meta-alert raised when a channel keeps failing.
pub const CHANNEL_FAILING_RULE: &str = crate::rules::RESERVED_NAMES[0];
/// The rule name of a rate limit's summary.
pub const RATE_LIMITED_RULE: &str = crate::rules::RESERVED_NAMES[1];

impl Dispatcher {
    /// Puts a notification for `channel` in the outbox and hands it to the channel's threads
    /// (or holds it back if the channel's rate limit is spent).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &mut self,
        channel: &str,
        mut alert: Alert,
        kind: NotificationKind,
        route: Option<&str>,
        to: &[String],
        incidents: Vec<IncidentId>,
        tried: Vec<String>,
        now: Timestamp,
    ) {
        let Some(address) = self.channels.get(channel).map(|c| c.config.address) else {
            let mut e = Event::new(EventKind::Failed, now);
            e.channel = Some(channel.to_owned());
            e.detail = format!("no channel called {channel:?} is running");
            self.emit(e);
            return;
        };
        let summary = matches!(
            kind,
            NotificationKind::RateSummary | NotificationKind::HeldSummary
        );
        if !summary && tried.is_empty() && !self.take_token(channel, now) {
            self.hold(channel, &alert, &incidents, now);
            return;
        }
        alert.recipients = self.config.addresses(to, address);
        let item = match incidents.as_slice() {
            [one] => self.incidents.get(one).map(|t| t.inc.item.to_string()),
            _ => None,
        };
        self.next_notification += 1;
        let id = NotificationId(self.next_notification);
        let n = Notification {
            id,
            channel: channel.to_owned(),
            alert,
            kind,
            route: route.map(str::to_owned),
            incidents,
            item,
            to: to.to_vec(),
            attempts: 0,
            created_at: now,
            due_at: now,
            tried,
            last_error: None,
        };
        self.stats.notifications += 1;
        let mut e = Event::new(EventKind::Queued, now);
        self.describe(&mut e, &n);
        e.detail = format!(
            "{} {} to {}",
            kind_name(kind),
            status_word(&n.alert),
            if n.alert.recipients.is_empty() {
                "the channel".to_owned()
            } else {
                n.alert.recipients.join(", ")
            }
        );
        self.emit(e);
        self.batch
            .push(StoreChange::Notification(Box::new(n.clone())));
        self.outbox.insert(id, n);
        // Attempted once the step is committed: stored before its first attempt.
        self.uncommitted.insert(id);
        self.to_attempt.push(id);
    }

    /// Fills an event's fields from a notification.
    fn describe(&self, e: &mut Event, n: &Notification) {
        e.incident = n.incidents.first().copied();
        e.item.clone_from(&n.item);
        e.rule = Some(n.alert.rule.clone());
        e.severity = Some(n.alert.severity);
        e.route.clone_from(&n.route);
        e.channel = Some(n.channel.clone());
        e.key = Some(n.alert.idempotency_key.clone());
    }

    /// Hands a notification to its channel's threads.
    pub(crate) fn attempt(&mut self, id: NotificationId) {
        if self.deliveries_in_flight.contains(&id) {
            return;
        }
        let Some(n) = self.outbox.get_mut(&id) else {
            return;
        };
        let Some(ch) = self.channels.get(&n.channel) else {
            return;
        };
        n.attempts += 1;
        let job = DeliveryJob {
            id,
            alert: n.alert.clone(),
        };
        if ch.pool.send(job) {
            self.deliveries_in_flight.insert(id);
        }
    }

    /// A retry timer came due.
    pub(crate) fn on_retry(&mut self, id: NotificationId, now: Timestamp) {
        if self.outbox.get(&id).is_some_and(|n| n.due_at <= now) {
            self.attempt(id);
        }
    }

    /// A channel's thread finished an attempt.
    pub(crate) fn on_delivered(
        &mut self,
        id: NotificationId,
        result: Result<(), DeliveryError>,
        elapsed: Duration,
        now: Timestamp,
    ) {
        self.deliveries_in_flight.remove(&id);
        let Some(n) = self.outbox.get(&id) else {
            return;
        };
        let channel = n.channel.clone();
        match result {
            Ok(()) => {
                let Some(n) = self.outbox.remove(&id) else {
                    return;
                };
                self.batch.push(StoreChange::NotificationDone(id));
                self.stats.delivered += 1;
                let mut e = Event::new(EventKind::Delivered, now);
                self.describe(&mut e, &n);
                e.detail = format!(
                    "attempt {} took {:.1} ms",
                    n.attempts,
                    elapsed.as_secs_f64() * 1e3
                );
                self.emit(e);
                self.record_delivery(&n, None, now);
                self.channel_healthy(&channel, now);
            }
            Err(err) => {
                let retry = self
                    .channels
                    .get(&channel)
                    .map(|c| c.config.retry)
                    .unwrap_or_default();
                let message = pipeline::truncate(&err.to_string(), 2000);
                self.channel_failed(&channel, &message, now);
                let Some(n) = self.outbox.get_mut(&id) else {
                    return;
                };
                n.last_error = Some(message.clone());
                if err.is_retryable() && n.attempts < retry.attempts {
                    let wait =
                        retry.delay(n.attempts, jitter(&n.alert.idempotency_key, n.attempts));
                    n.due_at = now + wait;
                    let (due, attempts) = (n.due_at, n.attempts);
                    let n = n.clone();
                    self.batch
                        .push(StoreChange::Notification(Box::new(n.clone())));
                    self.timers.set(due, Timer::Retry(id));
                    self.stats.retries += 1;
                    let mut e = Event::new(EventKind::Retrying, now);
                    self.describe(&mut e, &n);
                    e.detail = format!(
                        "attempt {attempts} of {} failed, next in {}: {message}",
                        retry.attempts,
                        crate::duration::format_duration(Duration::from_millis(
                            u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                        ))
                    );
                    self.emit(e);
                } else {
                    let Some(n) = self.outbox.remove(&id) else {
                        return;
                    };
                    self.batch.push(StoreChange::NotificationDone(id));
                    self.stats.failed += 1;
                    let mut e = Event::new(EventKind::Failed, now);
                    self.describe(&mut e, &n);
                    e.detail = format!(
                        "{} after {} attempt(s): {message}",
                        if err.is_retryable() {
                            "gave up"
                        } else {
                            "permanent error"
                        },
                        n.attempts
                    );
                    self.emit(e);
                    self.record_delivery(&n, Some(message), now);
                    self.fall_back(n, now);
                }
            }
        }
    }

    /// Hands a notification its channel could not deliver to that channel's fallback.
    fn fall_back(&mut self, n: Notification, now: Timestamp) {
        let Some(fallback) = self
            .channels
            .get(&n.channel)
            .and_then(|c| c.config.fallback.clone())
        else {
            return;
        };
        let mut tried = n.tried.clone();
        tried.push(n.channel.clone());
        if tried.contains(&fallback) {
            return; // the chain came back to a channel already tried
        }
        self.stats.fallbacks += 1;
        let mut e = Event::new(EventKind::Fallback, now);
        self.describe(&mut e, &n);
        e.detail = format!("{} could not deliver: trying {fallback}", n.channel);
        self.emit(e);
        self.enqueue(
            &fallback,
            n.alert,
            n.kind,
            n.route.as_deref(),
            &n.to,
            n.incidents,
            tried,
            now,
        );
    }

    /// Keeps the last delivery of each incident on its route.
    fn record_delivery(&mut self, n: &Notification, error: Option<String>, now: Timestamp) {
        let Some(route) = &n.route else {
            return;
        };
        for id in &n.incidents {
            if let Some(tr) = self.incidents.get_mut(id) {
                tr.inc.route_mut(route).last_delivery = Some(DeliveryRecord {
                    channel: n.channel.clone(),
                    at: now,
                    delivered: error.is_none(),
                    error: error.clone(),
                });
            }
            self.save_incident(*id);
        }
    }

    fn channel_healthy(&mut self, channel: &str, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures = 0;
        if ch.failing.take().is_some() {
            let t = self.meta_transition(channel, Severity::Normal, "delivers again", now);
            let item = ItemKey {
                rule: Arc::clone(&t.rule),
                labels: t.labels.clone(),
            };
            let mut e = Event::new(EventKind::ChannelFailing, now);
            e.channel = Some(channel.to_owned());
            e.detail = "resolved: the channel delivers again".into();
            self.emit(e);
            self.resolve(&item, &t, now);
        }
    }

    fn channel_failed(&mut self, channel: &str, error: &str, now: Timestamp) {
        let threshold = self.config.notify.channel_failing_after.max(1);
        let severity = self.config.notify.meta_severity;
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures += 1;
        ch.last_error = Some(error.to_owned());
        if ch.consecutive_failures < threshold || ch.failing.is_some() {
            return;
        }
        let failures = ch.consecutive_failures;
        let t = self.meta_transition(
            channel,
            severity,
            &format!("{failures} delivery attempts in a row failed; last: {error}"),
            now,
        );
        let mut e = Event::new(EventKind::ChannelFailing, now);
        e.channel = Some(channel.to_owned());
        e.detail = format!("{failures} attempts in a row failed: {error}");
        self.emit(e);
        let item = ItemKey {
            rule: Arc::clone(&t.rule),
            labels: t.labels.clone(),
        };
        let id = self.fire(item, &t, Some(channel.to_owned()), now);
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.failing = Some(id);
        }
    }

    /// The transition of channel `channel`'s meta-alert to `to`.
    pub(crate) fn meta_transition(
        &self,
        channel: &str,
        to: Severity,
        summary: &str,
        now: Timestamp,
    ) -> Transition {
        let from = if to == Severity::Normal {
            self.config.notify.meta_severity
        } else {
            Severity::Normal
        };
        meta_transition(
            CHANNEL_FAILING_RULE,
            "vigilo_channel_failures",
            Labels::from_pairs(&[("channel", channel)]),
            (from, to),
            format!("alert channel {channel}: {summary}"),
            now,
        )
    }

    /// A meta-alert no route takes goes straight to the failing channel's fallback.
    pub(crate) fn notify_meta_direct(&mut self, id: IncidentId, now: Timestamp) {
        let Some(tr) = self.incidents.get(&id) else {
            return;
        };
        let Some(channel) = tr.inc.meta_channel.clone() else {
            return;
        };
        let Some(fallback) = self
            .channels
            .get(&channel)
            .and_then(|c| c.config.fallback.clone())
        else {
            return;
        };
        let mut alert = super::notification::item_alert(
            &tr.inc,
            AlertStatus::Firing,
            Severity::Normal,
            tr.since,
        );
        let what = format!("{}:meta:{}", id, tr.inc.changes);
        super::notification::set_key(&mut alert, &what, &self.identity);
        self.enqueue(
            &fallback,
            alert,
            NotificationKind::Meta,
            None,
            &[],
            vec![id],
            vec![channel],
            now,
        );
    }

    /// Takes one token of the channel's rate limit; false if none is left.
    fn take_token(&mut self, channel: &str, now: Timestamp) -> bool {
        let Some(ch) = self.channels.get_mut(channel) else {
            return true;
        };
        let Some(limit) = ch.config.rate_limit else {
            return true;
        };
        refill(ch, limit, now);
        if ch.tokens >= 1.0 {
            ch.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Holds a notification back; the summary goes out when a token is back.
    fn hold(&mut self, channel: &str, alert: &Alert, incidents: &[IncidentId], now: Timestamp) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(limit) = ch.config.rate_limit else {
            return;
        };
        ch.held.add(alert, now);
        let arm = !ch.summary_armed;
        ch.summary_armed = true;
        let wait = token_wait(ch.tokens, limit);
        self.stats.held_back += 1;
        let mut e = Event::new(EventKind::RateLimited, now);
        e.incident = incidents.first().copied();
        e.rule = Some(alert.rule.clone());
        e.channel = Some(channel.to_owned());
        e.key = Some(alert.idempotency_key.clone());
        e.detail = format!(
            "rate limit {} per {} reached: held back",
            limit.count,
            crate::duration::format_duration(limit.per)
        );
        self.emit(e);
        if arm {
            self.timers
                .set(now + wait, Timer::RateSummary(Arc::from(channel)));
        }
    }

    /// The rate limit may send again: one notification summing up what it held back.
    pub(crate) fn on_rate_summary(&mut self, channel: &str, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(limit) = ch.config.rate_limit else {
            return;
        };
        ch.summary_armed = false;
        if ch.held.count == 0 {
            return;
        }
        refill(ch, limit, now);
        if ch.tokens < 1.0 {
            ch.summary_armed = true;
            let wait = token_wait(ch.tokens, limit);
            self.timers
                .set(now + wait, Timer::RateSummary(Arc::from(channel)));
            return;
        }
        ch.tokens -= 1.0;
        let held = std::mem::take(&mut ch.held);
        let summary = format!(
            "{} notification(s) held back by the rate limit of channel {channel} since {}",
            held.count,
            held.since.unwrap_or(now)
        );
        let mut alert = held.into_alert(RATE_LIMITED_RULE, channel, summary, now);
        let what = format!("rate:{channel}:{}", now.as_nanos());
        super::notification::set_key(&mut alert, &what, &self.identity);
        self.enqueue(
            channel,
            alert,
            NotificationKind::RateSummary,
            None,
            &[],
            Vec::new(),
            Vec::new(),
            now,
        );
    }
}

/// A transition of one of the pipeline's own meta-alerts, `(from, to)` at `now`.
pub(crate) fn meta_transition(
    rule: &str,
    metric: &str,
    labels: Labels,
    (from, to): (Severity, Severity),
    summary: String,
    now: Timestamp,
) -> Transition {
    Transition {
        rule: Arc::from(rule),
        metric: Arc::from(metric),
        labels,
        rule_labels: BTreeMap::new(),
        from,
        to,
        value: None,
        threshold: None,
        since: now,
        at: now,
        no_data: false,
        flapping: false,
        annotations: BTreeMap::from([("summary".to_owned(), summary)]),
    }
}

fn refill(ch: &mut super::state::ChannelState, limit: super::settings::RateLimit, now: Timestamp) {
    let per = limit.per.as_secs_f64().max(1e-9);
    let elapsed = now.since(ch.refilled_at).as_secs_f64();
    ch.tokens = (ch.tokens + elapsed / per * f64::from(limit.count)).min(f64::from(limit.count));
    ch.refilled_at = now;
}

fn token_wait(tokens: f64, limit: super::settings::RateLimit) -> Duration {
    let per_token = limit.per.as_secs_f64() / f64::from(limit.count.max(1));
    Duration::from_secs_f64(((1.0 - tokens).max(0.0) * per_token).max(0.001))
}

/// A deterministic jitter in `0..1` per notification and attempt: retries of a storm spread
/// out, and a test on a virtual clock can bound each wait.
fn jitter(key: &str, attempt: u32) -> f64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x6a17_7e12).build_hasher();
    h.write(key.as_bytes());
    h.write_u32(attempt);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Change => "change",
        NotificationKind::Digest => "digest",
        NotificationKind::Repeat => "repeat",
        NotificationKind::Escalation => "escalation",
        NotificationKind::Meta => "meta-alert",
        NotificationKind::RateSummary => "rate-limit summary",
        NotificationKind::HeldSummary => "summary of what the store held",
    }
}

fn status_word(a: &Alert) -> String {
    match a.status {
        AlertStatus::Firing => a.severity.name().to_owned(),
        AlertStatus::Resolved => format!("resolved (was {})", a.previous),
    }
}
