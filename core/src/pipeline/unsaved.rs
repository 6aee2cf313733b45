//! When the store cannot commit (a full disk, a read-only remount, an I/O error): the pipeline
//! keeps judging and keeps every change in memory, commits them all with the next batch the
//! store takes, and delivers nothing that is not committed. New notifications wait in memory
//! (at most `[store] hold_limit`; past it the oldest are taken out and summed up per channel,
//! never dropped unsaid); the `vigilo_store_failing` meta-alert is raised and is the one
//! notification delivered uncommitted (it is about the store). When a commit goes through, the
//! meta-alert resolves and everything held goes out, once.

use std::sync::Arc;
use std::time::Duration;

use super::delivery::meta_transition;
use super::event::{Event, EventKind};
use super::incident::ItemKey;
use super::notification::{HeldBack, NotificationId, NotificationKind, set_key};
use super::state::{Dispatcher, StoreFailure};
use super::store::{StoreChange, StoreError};
use super::timers::Timer;
use crate::Severity;
use crate::clock::Timestamp;
use crate::eval::Transition;
use crate::metrics::Labels;

/// The rule name of the meta-alert raised while the store cannot commit.
pub const STORE_FAILING_RULE: &str = crate::rules::RESERVED_NAMES[2];

/// The first wait before a failing store is tried again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a failing store.
const MAX_RETRY: Duration = Duration::from_secs(10);
/// History events kept in memory while the store fails; older ones are counted as lost.
const MAX_UNSAVED_EVENTS: usize = 10_000;

impl Dispatcher {
    /// A commit failed: the first failure raises the meta-alert; every one sets the next try.
    pub(crate) fn store_failed(&mut self, error: &StoreError, now: Timestamp) {
        let failure = self.store_failure.get_or_insert(StoreFailure {
            since: now,
            retry_at: now,
            backoff: FIRST_RETRY / 2,
            incident: None,
        });
        failure.backoff = (failure.backoff * 2).min(MAX_RETRY);
        failure.retry_at = now + failure.backoff;
        let (retry_at, first) = (failure.retry_at, failure.incident.is_none());
        self.timers.set(retry_at, Timer::StoreRetry);
        if !first {
            return;
        }
        let mut e = Event::new(EventKind::StoreFailing, now);
        e.detail = format!("the store cannot commit: {error}; new notifications are held");
        self.emit(e);
        let t = store_transition(
            self.config.notify.meta_severity,
            &format!("the store cannot commit; notifications are held in memory: {error}"),
            now,
        );
        let item = ItemKey {
            rule: Arc::clone(&t.rule),
            labels: t.labels.clone(),
        };
        let id = self.fire(item, &t, None, now);
        if let Some(f) = self.store_failure.as_mut() {
            f.incident = Some(id);
        }
    }

    /// A commit went through after failures: the meta-alert resolves, what was held goes out
    /// (it is committed now), and what was summed up past the bound is sent per channel.
    pub(crate) fn store_recovered(&mut self, now: Timestamp) {
        let Some(failure) = self.store_failure.take() else {
            return;
        };
        let held = self.held.len();
        let mut e = Event::new(EventKind::StoreFailing, now);
        e.detail = format!(
            "resolved: the store commits again after {}; {held} held notification(s) go out",
            crate::duration::format_duration(Duration::from_secs(
                now.since(failure.since).as_secs()
            ))
        );
        self.emit(e);
        self.to_attempt.extend(self.held.drain(..));
        let t = store_transition(Severity::Normal, "the store commits again", now);
        let item = ItemKey {
            rule: Arc::clone(&t.rule),
            labels: t.labels.clone(),
        };
        self.resolve(&item, &t, now);
        for (channel, summary) in std::mem::take(&mut self.summarised) {
            self.send_held_summary(&channel, summary, now);
        }
    }

    /// True if notification `id` may go out before it is committed: only the store's own
    /// meta-alert, alone (a digest that also tells about other incidents waits).
    pub(crate) fn deliverable_uncommitted(&self, id: NotificationId) -> bool {
        let Some(meta) = self.store_failure.as_ref().and_then(|f| f.incident) else {
            return false;
        };
        self.outbox
            .get(&id)
            .is_some_and(|n| !n.incidents.is_empty() && n.incidents.iter().all(|i| *i == meta))
    }

    /// Holds a notification that is not committed; past the bound, the oldest held one is
    /// taken out and summed up for its channel.
    pub(crate) fn hold_uncommitted(&mut self, id: NotificationId, now: Timestamp) {
        self.held.push_back(id);
        let limit = self.config.store.hold_limit.max(1);
        while self.held.len() > limit {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            let Some(n) = self.outbox.remove(&oldest) else {
                continue;
            };
            self.uncommitted.remove(&oldest);
            // It never reached the store: its entry goes from what waits to be written.
            self.unsaved
                .retain(|c| !matches!(c, StoreChange::Notification(x) if x.id == oldest));
            self.batch
                .retain(|c| !matches!(c, StoreChange::Notification(x) if x.id == oldest));
            self.stats.held_summarised += 1;
            self.summarised
                .entry(n.channel.clone())
                .or_default()
                .add(&n.alert, n.created_at);
            let mut e = Event::new(EventKind::StoreFailing, now);
            e.channel = Some(n.channel.clone());
            e.key = Some(n.alert.idempotency_key.clone());
            e.incident = n.incidents.first().copied();
            e.detail = format!(
                "more than {limit} notifications held: this one is summed up, sent when the store commits again"
            );
            self.emit(e);
        }
    }

    /// Keeps what waits to be written within memory: history events beyond the bound are
    /// dropped (counted in `events_lost`); incidents, the outbox and silences are never.
    pub(crate) fn bound_unsaved(&mut self) {
        let events = self
            .unsaved
            .iter()
            .filter(|c| matches!(c, StoreChange::Event(_)))
            .count();
        let mut excess = events.saturating_sub(MAX_UNSAVED_EVENTS);
        if excess == 0 {
            return;
        }
        self.stats.events_lost += excess as u64;
        self.unsaved.retain(|c| {
            if excess > 0 && matches!(c, StoreChange::Event(_)) {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// One notification for `channel` summing up the held ones taken out past the bound.
    fn send_held_summary(&mut self, channel: &str, held: HeldBack, now: Timestamp) {
        let summary = format!(
            "{} notification(s) for channel {channel} were held while the store could not commit, since {}",
            held.count,
            held.since.unwrap_or(now)
        );
        let mut alert = held.into_alert(STORE_FAILING_RULE, channel, summary, now);
        let what = format!("held:{channel}:{}", now.as_nanos());
        set_key(&mut alert, &what, &self.identity);
        self.enqueue(
            channel,
            alert,
            NotificationKind::HeldSummary,
            None,
            &[],
            Vec::new(),
            Vec::new(),
            now,
        );
    }
}

/// The meta-alert's transition: to `to` (Normal when the store is back).
pub(crate) fn store_transition(to: Severity, summary: &str, now: Timestamp) -> Transition {
    meta_transition(
        STORE_FAILING_RULE,
        "vigilo_store_errors",
        Labels::from_pairs(&[]),
        (Severity::Normal, to),
        format!("vigilo store: {summary}"),
        now,
    )
}
