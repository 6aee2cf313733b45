//! The delivery stage: the outbox, attempts handed to each channel's threads, retries with
//! exponential backoff and jitter, the fallback channel, the rate limit and its summary, the
//! "channel failing" meta-alert, and holding what is not committed while the store fails.
//! Each notification is one outbox entry per channel, addressed by the recipients stage.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::Severity;
use crate::alert::{Alert, AlertStatus, Channel, DeliveryError};
use crate::clock::Timestamp;
use crate::pipeline::effects::{Effect, Effects, Notify, Told};
use crate::pipeline::event::{Event, EventKind};
use crate::pipeline::incident::{DeliveryRecord, IncidentId};
use crate::pipeline::notification::{
    HeldBack, Notification, NotificationId, NotificationKind, set_key,
};
use crate::pipeline::settings::{ChannelConfig, NotifyConfig};
use crate::pipeline::store::StoreChange;
use crate::pipeline::timers::Timer;
use crate::pipeline::workers::{DeliveryJob, Done};
use crate::pipeline::{PipelineError, STORE_FAILING_RULE};

use super::channels::Channels;
use super::grouping::is_urgent;
use super::incidents::Incidents;
use super::recipients::Recipients;

/// What the delivery stage reads of the others.
pub(crate) struct Reads<'a> {
    pub(crate) incidents: &'a Incidents,
    pub(crate) recipients: &'a Recipients,
    pub(crate) notify: &'a NotifyConfig,
    pub(crate) identity: &'a str,
    /// Notifications held while the store fails, at most.
    pub(crate) hold_limit: usize,
    pub(crate) now: Timestamp,
}

/// The outbox and the channels.
#[derive(Default)]
pub(crate) struct Delivery {
    channels: Channels,
    outbox: HashMap<NotificationId, Notification>,
    in_flight: HashSet<NotificationId>,
    /// Queued in this step, attempted once it is committed.
    to_attempt: Vec<NotificationId>,
    /// Entries of the outbox not committed yet.
    uncommitted: HashSet<NotificationId>,
    /// Not attempted because not committed (the store fails), oldest first.
    held: VecDeque<NotificationId>,
    /// Per channel, held notifications taken out past the bound.
    summarised: BTreeMap<String, HeldBack>,
    next_notification: u64,
    pub(crate) stats: DeliveryStats,
}

/// The delivery stage's counters, part of the pipeline's statistics.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryStats {
    pub(crate) notifications: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) retries: u64,
    pub(crate) fallbacks: u64,
    pub(crate) held_back: u64,
    pub(crate) held_summarised: u64,
}

impl Delivery {
    /// Starts the threads of every configured channel, keeping those whose settings and
    /// implementation did not change.
    pub(crate) fn install(
        &mut self,
        configs: &[ChannelConfig],
        impls: &HashMap<String, Arc<dyn Channel>>,
        results: &crossbeam_channel::Sender<Done>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        self.channels.install(configs, impls, results, now)
    }

    /// The channel's meta-alert stays open after a restart (see [`Channels::resume_failing`]).
    pub(crate) fn resume_failing(&mut self, channel: &str, threshold: u32) -> bool {
        self.channels.resume_failing(channel, threshold)
    }

    /// After a reload: notifications for channels that are gone cannot be delivered; they
    /// fail openly.
    pub(crate) fn fail_orphans(&mut self, now: Timestamp, fx: &mut Effects) {
        let orphans: Vec<NotificationId> = self
            .outbox
            .values()
            .filter(|n| !self.channels.contains(&n.channel))
            .map(|n| n.id)
            .collect();
        for id in orphans {
            if let Some(n) = self.outbox.remove(&id) {
                fx.save(StoreChange::NotificationDone(id));
                self.stats.failed += 1;
                let mut e = Event::new(EventKind::Failed, now);
                e.channel = Some(n.channel.clone());
                e.key = Some(n.alert.idempotency_key.clone());
                e.detail = "the channel was removed by a reload".into();
                fx.event(e);
            }
        }
    }

    /// Notifications in the outbox now; deliveries in progress.
    pub(crate) fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub(crate) fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Sends `n` to every channel of its target, one outbox entry each, recipients filled in
    /// per channel. A "channel failing" meta-alert never goes to the failing channel: its
    /// fallback takes its place.
    pub(crate) fn notify(&mut self, n: Notify, reads: &Reads<'_>, fx: &mut Effects) {
        let avoid: Vec<String> = n
            .incidents
            .iter()
            .filter_map(|id| reads.incidents.incident(*id)?.meta_channel.clone())
            .collect();
        let mut channels: Vec<String> = Vec::new();
        for c in &n.channels {
            let chosen = if avoid.contains(c) {
                self.channels.fallback(c)
            } else {
                Some(c.clone())
            };
            if let Some(c) = chosen
                && !avoid.contains(&c)
                && !channels.contains(&c)
            {
                channels.push(c);
            }
        }
        let mut skipped: Vec<String> = Vec::new();
        for c in channels {
            let left_out = self.enqueue(
                &c,
                n.alert.clone(),
                n.kind,
                n.route.as_ref(),
                &n.recipients,
                n.incidents.clone(),
                n.tried.clone(),
                reads,
                fx,
            );
            skipped.extend(left_out);
        }
        record_skipped(n.route.as_ref(), &n.incidents, skipped, fx);
    }

    /// Puts a notification for `channel` in the outbox (or holds it back if the channel's rate
    /// limit is spent): one entry for the recipients within their window now, one for each
    /// moment a deferred recipient's window opens. Returns who their windows left out, and why.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &mut self,
        channel: &str,
        alert: Alert,
        kind: NotificationKind,
        route: Option<&Arc<str>>,
        to: &[String],
        incidents: Vec<IncidentId>,
        tried: Vec<String>,
        reads: &Reads<'_>,
        fx: &mut Effects,
    ) -> Vec<String> {
        let now = reads.now;
        let Some(address) = self.channels.config(channel).map(|c| c.address) else {
            let mut e = Event::new(EventKind::Failed, now);
            e.channel = Some(channel.to_owned());
            e.detail = format!("no channel called {channel:?} is running");
            fx.event(e);
            return Vec::new();
        };
        let summary = matches!(
            kind,
            NotificationKind::RateSummary | NotificationKind::HeldSummary
        );
        if !summary && tried.is_empty() && !self.channels.take_token(channel, now) {
            self.stats.held_back += 1;
            self.channels.hold(channel, &alert, &incidents, now, fx);
            return Vec::new();
        }
        let addressed = reads.recipients.address(to, channel, address, now);
        let skipped = if addressed.skipped.is_empty() {
            String::new()
        } else {
            format!("; left out: {}", addressed.skipped.join("; "))
        };
        let item = match incidents.as_slice() {
            [one] => reads.incidents.incident(*one).map(|i| i.item.to_string()),
            _ => None,
        };
        // Now to those within their window; to nobody only when nobody has an address for the
        // channel (the channel gets it as it is) or everyone was dropped (recorded).
        let immediate = !addressed.now.is_empty()
            || (addressed.later.is_empty() && addressed.skipped.is_empty());
        if addressed.now.is_empty() && addressed.later.is_empty() && !addressed.skipped.is_empty() {
            let mut e = Event::new(EventKind::Dropped, now);
            e.incident = incidents.first().copied();
            e.rule = Some(alert.rule.clone());
            e.route = route.map(|r| r.to_string());
            e.channel = Some(channel.to_owned());
            e.key = Some(alert.idempotency_key.clone());
            e.detail = format!("every recipient is outside their hours{skipped}");
            fx.event(e);
        }
        let base = Entry {
            channel,
            kind,
            route: route.map(|r| r.to_string()),
            incidents,
            item,
            tried,
        };
        if immediate {
            let mut alert = alert.clone();
            alert.recipients = addressed.now;
            self.add(&base, alert, to.to_vec(), (now, now), &skipped, fx);
        }
        let readable = alert
            .idempotency_key
            .split_once('@')
            .map_or(alert.idempotency_key.as_str(), |(r, _)| r)
            .to_owned();
        for (at, (addresses, people)) in addressed.later {
            let mut alert = alert.clone();
            alert.recipients = Vec::new();
            set_key(
                &mut alert,
                &format!("{readable}:to-{}", people.join("+")),
                reads.identity,
            );
            alert.recipients = addresses;
            let note = format!("; their window opens at {at}");
            self.add(&base, alert, people, (now, at), &note, fx);
        }
        addressed.skipped
    }

    /// One outbox entry made at `now`, due at `due` (now, or when a recipient's window
    /// opens).
    fn add(
        &mut self,
        base: &Entry<'_>,
        alert: Alert,
        to: Vec<String>,
        (now, due): (Timestamp, Timestamp),
        note: &str,
        fx: &mut Effects,
    ) {
        self.next_notification += 1;
        let id = NotificationId(self.next_notification);
        let n = Notification {
            id,
            channel: base.channel.to_owned(),
            alert,
            kind: base.kind,
            route: base.route.clone(),
            incidents: base.incidents.clone(),
            item: base.item.clone(),
            to,
            attempts: 0,
            created_at: now,
            due_at: due,
            tried: base.tried.clone(),
            last_error: None,
        };
        self.stats.notifications += 1;
        let mut e = Event::new(EventKind::Queued, now);
        describe(&mut e, &n);
        e.detail = format!(
            "{} {} to {}{note}",
            kind_name(base.kind),
            status_word(&n.alert),
            if n.alert.recipients.is_empty() {
                "the channel".to_owned()
            } else {
                n.alert.recipients.join(", ")
            }
        );
        fx.event(e);
        fx.save(StoreChange::Notification(Box::new(n.clone())));
        self.outbox.insert(id, n);
        self.uncommitted.insert(id);
        if due > now {
            fx.timer(due, Timer::Retry(id));
        } else {
            // Attempted once the step is committed: stored before its first attempt.
            self.to_attempt.push(id);
        }
    }
}

impl Delivery {
    /// After the step's commit: hands what it queued to the channels' threads. While the store
    /// fails, what is not committed is held (the store's own meta-alert, alone, excepted); past
    /// `hold_limit` the oldest held ones are taken out and summed up for their channel. Returns
    /// the notifications taken out, which never reached the store.
    pub(crate) fn after_commit(
        &mut self,
        saved: bool,
        reads: &Reads<'_>,
        fx: &mut Effects,
    ) -> Vec<NotificationId> {
        if saved {
            self.uncommitted.clear();
        }
        let mut forgotten = Vec::new();
        for id in std::mem::take(&mut self.to_attempt) {
            self.try_attempt(id, reads, &mut forgotten, fx);
        }
        forgotten
    }

    /// Attempts `id` if it is committed (or may go uncommitted), else holds it.
    fn try_attempt(
        &mut self,
        id: NotificationId,
        reads: &Reads<'_>,
        forgotten: &mut Vec<NotificationId>,
        fx: &mut Effects,
    ) {
        let about_the_store = self.outbox.get(&id).is_some_and(|n| {
            !n.incidents.is_empty()
                && n.incidents
                    .iter()
                    .all(|i| reads.incidents.incident(*i).is_some_and(is_urgent))
        });
        if !self.uncommitted.contains(&id) || about_the_store {
            self.attempt(id);
            return;
        }
        self.held.push_back(id);
        let limit = reads.hold_limit.max(1);
        while self.held.len() > limit {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            let Some(n) = self.outbox.remove(&oldest) else {
                continue;
            };
            self.uncommitted.remove(&oldest);
            forgotten.push(oldest);
            self.stats.held_summarised += 1;
            self.summarised
                .entry(n.channel.clone())
                .or_default()
                .add(&n.alert, n.created_at);
            let mut e = Event::new(EventKind::StoreFailing, reads.now);
            e.channel = Some(n.channel.clone());
            e.key = Some(n.alert.idempotency_key.clone());
            e.incident = n.incidents.first().copied();
            e.detail = format!(
                "more than {limit} notifications held: this one is summed up, sent when the store commits again"
            );
            fx.event(e);
        }
    }

    /// The store commits again: what was held is committed now and goes out; what was summed
    /// up past the bound goes as one notification per channel.
    pub(crate) fn release_held(&mut self, reads: &Reads<'_>, fx: &mut Effects) {
        self.to_attempt.extend(self.held.drain(..));
        for (channel, held) in std::mem::take(&mut self.summarised) {
            let summary = format!(
                "{} notification(s) for channel {channel} were held while the store could not commit, since {}",
                held.count,
                held.since.unwrap_or(reads.now)
            );
            let mut alert = held.into_alert(STORE_FAILING_RULE, &channel, summary, reads.now);
            let what = format!("held:{channel}:{}", reads.now.as_nanos());
            set_key(&mut alert, &what, reads.identity);
            self.enqueue(
                &channel,
                alert,
                NotificationKind::HeldSummary,
                None,
                &[],
                Vec::new(),
                Vec::new(),
                reads,
                fx,
            );
        }
    }

    /// Hands a notification to its channel's threads.
    fn attempt(&mut self, id: NotificationId) {
        if self.in_flight.contains(&id) {
            return;
        }
        let Some(n) = self.outbox.get_mut(&id) else {
            return;
        };
        if !self.channels.contains(&n.channel) {
            return;
        }
        n.attempts += 1;
        let job = DeliveryJob {
            id,
            alert: n.alert.clone(),
        };
        if self.channels.send(&n.channel, job) {
            self.in_flight.insert(id);
        }
    }

    /// A retry (or a deferred recipient's window) came due.
    pub(crate) fn on_retry(
        &mut self,
        id: NotificationId,
        reads: &Reads<'_>,
        fx: &mut Effects,
    ) -> Vec<NotificationId> {
        let mut forgotten = Vec::new();
        if self.outbox.get(&id).is_some_and(|n| n.due_at <= reads.now) {
            self.try_attempt(id, reads, &mut forgotten, fx);
        }
        forgotten
    }

    /// Takes up the stored outbox: attempted again with the same idempotency keys.
    pub(crate) fn restore(
        &mut self,
        mut outbox: Vec<Notification>,
        last: u64,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        self.next_notification = self.next_notification.max(last);
        outbox.sort_by_key(|n| n.id);
        for mut n in outbox {
            self.next_notification = self.next_notification.max(n.id.0);
            if !self.channels.contains(&n.channel) {
                fx.save(StoreChange::NotificationDone(n.id));
                continue;
            }
            n.due_at = n.due_at.max(now);
            let (id, due) = (n.id, n.due_at);
            self.outbox.insert(id, n);
            if due <= now {
                self.attempt(id);
            } else {
                fx.timer(due, Timer::Retry(id));
            }
        }
    }

    /// A channel's thread finished an attempt.
    pub(crate) fn on_delivered(
        &mut self,
        id: NotificationId,
        result: Result<(), DeliveryError>,
        elapsed: Duration,
        reads: &Reads<'_>,
        fx: &mut Effects,
    ) {
        let now = reads.now;
        self.in_flight.remove(&id);
        let Some(channel) = self.outbox.get(&id).map(|n| n.channel.clone()) else {
            return;
        };
        let err = match result {
            Ok(()) => {
                let Some(n) = self.outbox.remove(&id) else {
                    return;
                };
                fx.save(StoreChange::NotificationDone(id));
                self.stats.delivered += 1;
                let mut e = Event::new(EventKind::Delivered, now);
                describe(&mut e, &n);
                e.detail = format!(
                    "attempt {} took {:.1} ms",
                    n.attempts,
                    elapsed.as_secs_f64() * 1e3
                );
                fx.event(e);
                record_delivery(&n, None, now, fx);
                self.channels
                    .healthy(&channel, reads.notify.meta_severity, now, fx);
                return;
            }
            Err(err) => err,
        };
        let retry = self.channels.retry(&channel);
        let message = crate::pipeline::truncate(&err.to_string(), 2000);
        self.channels
            .failed(&channel, &message, reads.notify, now, fx);
        let Some(n) = self.outbox.get_mut(&id) else {
            return;
        };
        n.last_error = Some(message.clone());
        if err.is_retryable() && n.attempts < retry.attempts {
            let wait = retry.delay(n.attempts, jitter(&n.alert.idempotency_key, n.attempts));
            n.due_at = now + wait;
            let (due, attempts) = (n.due_at, n.attempts);
            let n = n.clone();
            fx.save(StoreChange::Notification(Box::new(n.clone())));
            fx.timer(due, Timer::Retry(id));
            self.stats.retries += 1;
            let mut e = Event::new(EventKind::Retrying, now);
            describe(&mut e, &n);
            e.detail = format!(
                "attempt {attempts} of {} failed, next in {}: {message}",
                retry.attempts,
                crate::duration::format_duration(Duration::from_millis(
                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                ))
            );
            fx.event(e);
            return;
        }
        let Some(n) = self.outbox.remove(&id) else {
            return;
        };
        fx.save(StoreChange::NotificationDone(id));
        self.stats.failed += 1;
        let mut e = Event::new(EventKind::Failed, now);
        describe(&mut e, &n);
        e.detail = format!(
            "{} after {} attempt(s): {message}",
            if err.is_retryable() {
                "gave up"
            } else {
                "permanent error"
            },
            n.attempts
        );
        fx.event(e);
        record_delivery(&n, Some(message), now, fx);
        self.fall_back(n, reads, fx);
    }

    /// Hands a notification its channel could not deliver to that channel's fallback.
    fn fall_back(&mut self, n: Notification, reads: &Reads<'_>, fx: &mut Effects) {
        let Some(fallback) = self.channels.fallback(&n.channel) else {
            return;
        };
        let mut tried = n.tried.clone();
        tried.push(n.channel.clone());
        if tried.contains(&fallback) {
            return; // the chain came back to a channel already tried
        }
        self.stats.fallbacks += 1;
        let mut e = Event::new(EventKind::Fallback, reads.now);
        describe(&mut e, &n);
        e.detail = format!("{} could not deliver: trying {fallback}", n.channel);
        fx.event(e);
        let route: Option<Arc<str>> = n.route.as_deref().map(Arc::from);
        let skipped = self.enqueue(
            &fallback,
            n.alert,
            n.kind,
            route.as_ref(),
            &n.to,
            n.incidents.clone(),
            tried,
            reads,
            fx,
        );
        record_skipped(route.as_ref(), &n.incidents, skipped, fx);
    }

    /// The rate limit of `channel` may send again: the summary of what it held back.
    pub(crate) fn on_rate_summary(&mut self, channel: &str, reads: &Reads<'_>, fx: &mut Effects) {
        if let Some(alert) = self
            .channels
            .rate_summary(channel, reads.identity, reads.now, fx)
        {
            self.enqueue(
                channel,
                alert,
                NotificationKind::RateSummary,
                None,
                &[],
                Vec::new(),
                Vec::new(),
                reads,
                fx,
            );
        }
    }

    /// At stop: closes every pool and waits for its threads (however long a call takes).
    pub(crate) fn close(&mut self) {
        self.channels.close();
    }

    /// A meta-alert no route takes goes straight to the failing channel's fallback.
    pub(crate) fn notify_meta_direct(
        &mut self,
        id: IncidentId,
        reads: &Reads<'_>,
        fx: &mut Effects,
    ) {
        let Some(tr) = reads.incidents.get(id) else {
            return;
        };
        let Some(channel) = tr.inc.meta_channel.clone() else {
            return;
        };
        let Some(fallback) = self.channels.fallback(&channel) else {
            return;
        };
        let mut alert = crate::pipeline::notification::item_alert(
            &tr.inc,
            AlertStatus::Firing,
            Severity::Normal,
            tr.since,
        );
        let what = format!("{}:meta:{}", id, tr.inc.changes);
        set_key(&mut alert, &what, reads.identity);
        self.enqueue(
            &fallback,
            alert,
            NotificationKind::Meta,
            None,
            &[],
            vec![id],
            vec![channel],
            reads,
            fx,
        );
    }
}

/// Records on each incident who the recipients' windows left out of its route's notification.
fn record_skipped(
    route: Option<&Arc<str>>,
    incidents: &[IncidentId],
    skipped: Vec<String>,
    fx: &mut Effects,
) {
    let Some(route) = route.filter(|_| !skipped.is_empty()) else {
        return;
    };
    for id in incidents {
        fx.push(Effect::Told(Told::Skipped(
            *id,
            Arc::clone(route),
            skipped.clone(),
        )));
    }
}

/// Keeps the last delivery of each incident on its route.
fn record_delivery(n: &Notification, error: Option<String>, now: Timestamp, fx: &mut Effects) {
    let Some(route) = &n.route else {
        return;
    };
    fx.push(Effect::Delivered(
        n.incidents.clone(),
        route.clone(),
        DeliveryRecord {
            channel: n.channel.clone(),
            at: now,
            delivered: error.is_none(),
            error,
        },
    ));
}

/// A deterministic jitter in `0..1` per notification and attempt: retries of a storm spread
/// out, and a test on a virtual clock can bound each wait.
fn jitter(key: &str, attempt: u32) -> f64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x6a17_7e12).build_hasher();
    h.write(key.as_bytes());
    h.write_u32(attempt);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What the entries of one enqueue share.
struct Entry<'a> {
    channel: &'a str,
    kind: NotificationKind,
    route: Option<String>,
    incidents: Vec<IncidentId>,
    item: Option<String>,
    tried: Vec<String>,
}

/// Fills an event's fields from a notification.
fn describe(e: &mut Event, n: &Notification) {
    e.incident = n.incidents.first().copied();
    e.item.clone_from(&n.item);
    e.rule = Some(n.alert.rule.clone());
    e.severity = Some(n.alert.severity);
    e.route.clone_from(&n.route);
    e.channel = Some(n.channel.clone());
    e.key = Some(n.alert.idempotency_key.clone());
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
