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
use crate::metrics::Labels;
use crate::pipeline::effects::{Effect, Effects, Notify, Told};
use crate::pipeline::event::{Event, EventKind};
use crate::pipeline::incident::{DeliveryRecord, IncidentId};
use crate::pipeline::notification::{
    HeldBack, Notification, NotificationId, NotificationKind, set_key,
};
use crate::pipeline::settings::{ChannelConfig, NotifyConfig, RateLimit};
use crate::pipeline::store::StoreChange;
use crate::pipeline::timers::Timer;
use crate::pipeline::workers::{DeliveryJob, Done, Pool, channel_pool};
use crate::pipeline::{CHANNEL_FAILING_RULE, PipelineError, RATE_LIMITED_RULE, STORE_FAILING_RULE};

use super::grouping::is_urgent;
use super::incidents::Incidents;
use super::recipients::Recipients;

/// A channel: its settings, its threads, its health, its rate limit.
struct ChannelState {
    config: ChannelConfig,
    channel: Arc<dyn Channel>,
    pool: Pool<DeliveryJob>,
    consecutive_failures: u32,
    /// Its "channel failing" meta-alert is raised.
    failing: bool,
    tokens: f64,
    refilled_at: Timestamp,
    /// What the rate limit held back, summed up when it allows again.
    held: HeldBack,
    summary_armed: bool,
}

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
    channels: HashMap<String, ChannelState>,
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
    /// implementation did not change; fails notifications for channels that are gone.
    pub(crate) fn install(
        &mut self,
        configs: &[ChannelConfig],
        impls: &HashMap<String, Arc<dyn Channel>>,
        results: &crossbeam_channel::Sender<Done>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        let mut channels = HashMap::new();
        for c in configs {
            let imp = impls
                .get(&c.name)
                .ok_or_else(|| PipelineError::MissingChannel(c.name.clone()))?;
            if let Some(mut old) = self.channels.remove(&c.name)
                && old.config.workers == c.workers
                && Arc::ptr_eq(&old.channel, imp)
            {
                old.config = c.clone();
                channels.insert(c.name.clone(), old);
                continue;
            }
            let pool = channel_pool(Arc::clone(imp), c.workers, results.clone())
                .map_err(PipelineError::Spawn)?;
            channels.insert(
                c.name.clone(),
                ChannelState {
                    config: c.clone(),
                    channel: Arc::clone(imp),
                    pool,
                    consecutive_failures: 0,
                    failing: false,
                    tokens: c.rate_limit.map_or(0.0, |r| f64::from(r.count)),
                    refilled_at: now,
                    held: HeldBack::default(),
                    summary_armed: false,
                },
            );
        }
        self.channels = channels;
        Ok(())
    }

    /// After a reload: notifications for channels that are gone cannot be delivered; they
    /// fail openly.
    pub(crate) fn fail_orphans(&mut self, now: Timestamp, fx: &mut Effects) {
        let orphans: Vec<NotificationId> = self
            .outbox
            .values()
            .filter(|n| !self.channels.contains_key(&n.channel))
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

    /// The channel's meta-alert stays open after a restart: the channel is taken to be failing
    /// still, until it delivers again. False if there is no such channel any more.
    pub(crate) fn resume_failing(&mut self, channel: &str, threshold: u32) -> bool {
        match self.channels.get_mut(channel) {
            Some(ch) => {
                ch.failing = true;
                ch.consecutive_failures = threshold;
                true
            }
            None => false,
        }
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
                self.channels.get(c).and_then(|s| s.config.fallback.clone())
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
        for c in channels {
            self.enqueue(
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
        }
    }

    /// Puts a notification for `channel` in the outbox (or holds it back if the channel's rate
    /// limit is spent): one entry for the recipients within their window now, one for each
    /// moment a deferred recipient's window opens.
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
    ) {
        let now = reads.now;
        let Some(address) = self.channels.get(channel).map(|c| c.config.address) else {
            let mut e = Event::new(EventKind::Failed, now);
            e.channel = Some(channel.to_owned());
            e.detail = format!("no channel called {channel:?} is running");
            fx.event(e);
            return;
        };
        let summary = matches!(
            kind,
            NotificationKind::RateSummary | NotificationKind::HeldSummary
        );
        if !summary && tried.is_empty() && !self.take_token(channel, now) {
            self.hold(channel, &alert, &incidents, now, fx);
            return;
        }
        let addressed = reads.recipients.address(to, channel, address, now);
        if let Some(route) = route
            && !addressed.skipped.is_empty()
        {
            for id in &incidents {
                fx.push(Effect::Told(Told::Skipped(
                    *id,
                    Arc::clone(route),
                    addressed.skipped.clone(),
                )));
            }
        }
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
        let Some(ch) = self.channels.get(&n.channel) else {
            return;
        };
        n.attempts += 1;
        let job = DeliveryJob {
            id,
            alert: n.alert.clone(),
        };
        if ch.pool.send(job) {
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
            if !self.channels.contains_key(&n.channel) {
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
                self.channel_healthy(&channel, reads.notify.meta_severity, now, fx);
                return;
            }
            Err(err) => err,
        };
        let retry = self
            .channels
            .get(&channel)
            .map(|c| c.config.retry)
            .unwrap_or_default();
        let message = crate::pipeline::truncate(&err.to_string(), 2000);
        self.channel_failed(&channel, &message, reads, fx);
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
        let mut e = Event::new(EventKind::Fallback, reads.now);
        describe(&mut e, &n);
        e.detail = format!("{} could not deliver: trying {fallback}", n.channel);
        fx.event(e);
        let route: Option<Arc<str>> = n.route.as_deref().map(Arc::from);
        self.enqueue(
            &fallback,
            n.alert,
            n.kind,
            route.as_ref(),
            &n.to,
            n.incidents,
            tried,
            reads,
            fx,
        );
    }

    fn channel_healthy(&mut self, channel: &str, meta: Severity, now: Timestamp, fx: &mut Effects) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures = 0;
        if std::mem::take(&mut ch.failing) {
            let mut e = Event::new(EventKind::ChannelFailing, now);
            e.channel = Some(channel.to_owned());
            e.detail = "resolved: the channel delivers again".into();
            fx.event(e);
            fx.push(Effect::Transition(
                channel_transition(channel, Severity::Normal, meta, "delivers again", now),
                None,
            ));
        }
    }

    fn channel_failed(&mut self, channel: &str, error: &str, reads: &Reads<'_>, fx: &mut Effects) {
        let threshold = reads.notify.channel_failing_after.max(1);
        let severity = reads.notify.meta_severity;
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        ch.consecutive_failures += 1;
        if ch.consecutive_failures < threshold || ch.failing {
            return;
        }
        ch.failing = true;
        let failures = ch.consecutive_failures;
        let mut e = Event::new(EventKind::ChannelFailing, reads.now);
        e.channel = Some(channel.to_owned());
        e.detail = format!("{failures} attempts in a row failed: {error}");
        fx.event(e);
        fx.push(Effect::Transition(
            channel_transition(
                channel,
                severity,
                severity,
                &format!("{failures} delivery attempts in a row failed; last: {error}"),
                reads.now,
            ),
            Some(channel.to_owned()),
        ));
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
        let Some(fallback) = self
            .channels
            .get(&channel)
            .and_then(|c| c.config.fallback.clone())
        else {
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
    fn hold(
        &mut self,
        channel: &str,
        alert: &Alert,
        incidents: &[IncidentId],
        now: Timestamp,
        fx: &mut Effects,
    ) {
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
        fx.event(e);
        if arm {
            fx.timer(now + wait, Timer::RateSummary(Arc::from(channel)));
        }
    }

    /// The rate limit may send again: one notification summing up what it held back.
    pub(crate) fn on_rate_summary(&mut self, channel: &str, reads: &Reads<'_>, fx: &mut Effects) {
        let now = reads.now;
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
            fx.timer(now + wait, Timer::RateSummary(Arc::from(channel)));
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
        set_key(&mut alert, &what, reads.identity);
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

    /// At stop: closes every pool and waits until `until` for its threads.
    pub(crate) fn close(&mut self, until: std::time::Instant) {
        for c in std::mem::take(&mut self.channels).into_values() {
            c.pool.close(until);
        }
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

/// The transition of channel `channel`'s meta-alert to `to` (`meta` is the meta-alerts'
/// severity, what a resolve resolves from).
fn channel_transition(
    channel: &str,
    to: Severity,
    meta: Severity,
    summary: &str,
    now: Timestamp,
) -> crate::eval::Transition {
    let from = if to == Severity::Normal {
        meta
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

/// A transition of one of the pipeline's own meta-alerts, `(from, to)` at `now`.
pub(crate) fn meta_transition(
    rule: &str,
    metric: &str,
    labels: Labels,
    (from, to): (Severity, Severity),
    summary: String,
    now: Timestamp,
) -> crate::eval::Transition {
    crate::eval::Transition {
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

fn refill(ch: &mut ChannelState, limit: RateLimit, now: Timestamp) {
    let per = limit.per.as_secs_f64().max(1e-9);
    let elapsed = now.since(ch.refilled_at).as_secs_f64();
    ch.tokens = (ch.tokens + elapsed / per * f64::from(limit.count)).min(f64::from(limit.count));
    ch.refilled_at = now;
}

fn token_wait(tokens: f64, limit: RateLimit) -> Duration {
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
