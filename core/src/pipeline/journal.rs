//! The store's one owner: every write goes through the journal, whole steps at a time. The
//! pipeline hands it each step's changes at the end of the step (one transaction: a step is
//! never half-written), the evaluator's checkpoint (item states, what anomaly rules learned),
//! the log watchers' offsets and the SLO runner write their states through it directly (`Pipeline::save_item_states`, no hop through the pipeline's thread),
//! and it numbers the events and hands them to the live feed.
//!
//! When the store cannot commit (a full disk, a read-only remount, an I/O error), nothing is
//! lost: what it refused waits, compacted (the last item and SLO states, the last state of an
//! incident), and is written with the first batch the store takes. The store is tried again
//! after 1 s, doubling to 10 s. History events beyond 10 000 waiting are dropped and counted;
//! nothing else is. Whoever commits learns whether the store failed or came back, so the
//! pipeline raises and resolves its `vigilo_store_failing` meta-alert.

use std::collections::HashSet;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::event::{Event, HistoryQuery};
use super::request::StoreRequest;
use super::store::{Store, StoreChange, StoreError};
use crate::clock::Timestamp;
use crate::eval::{ItemSnapshot, LearnedSnapshot};
use crate::host::logs::LogCheckpoint;
use crate::slo::SloSnapshot;

/// The first wait before a failing store is tried again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a failing store.
const MAX_RETRY: Duration = Duration::from_secs(10);
/// History events kept waiting while the store fails; older ones are counted as lost.
const MAX_UNSAVED_EVENTS: usize = 10_000;

/// The store cannot commit: since when, and when it is tried again.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) since: Timestamp,
    pub(crate) retry_at: Timestamp,
    backoff: Duration,
    pub(crate) error: String,
}

/// What a commit found.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Everything waiting is in the store now.
    pub(crate) saved: bool,
    /// The store started failing since the pipeline last looked (its error).
    pub(crate) started_failing: Option<String>,
    /// The store commits again after failing (since when it had failed).
    pub(crate) recovered: Option<Timestamp>,
}

/// The store and what waits to be written.
pub(crate) struct Journal {
    store: Box<dyn Store>,
    /// Changes not committed yet (whole steps, in order).
    pending: Vec<StoreChange>,
    failure: Option<Failure>,
    /// The failure (or recovery) the pipeline has not been told of yet.
    unseen: Option<Unseen>,
    next_event: u64,
    subscribers: Vec<Sender<Event>>,
    subscriber_capacity: usize,
    /// The store's identity, part of every idempotency key.
    identity: String,
    restored: Restored,
    pub(crate) stats: JournalStats,
}

/// What the store held at start for the parts that keep their own state, each taken once.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pub(crate) items: Vec<ItemSnapshot>,
    pub(crate) slos: Vec<SloSnapshot>,
    pub(crate) learned: Vec<LearnedSnapshot>,
    pub(crate) logs: Vec<LogCheckpoint>,
}

#[derive(Debug, Clone)]
enum Unseen {
    Failed(String),
    Recovered(Timestamp),
}

/// The journal's counters, part of the pipeline's statistics.
#[derive(Debug, Clone, Default)]
pub(crate) struct JournalStats {
    pub(crate) store_errors: u64,
    pub(crate) last_store_error: Option<String>,
    pub(crate) events_dropped: u64,
    pub(crate) events_lost: u64,
}

impl Journal {
    pub(crate) fn new(
        store: Box<dyn Store>,
        identity: String,
        last_event: u64,
        restored: Restored,
        subscriber_capacity: usize,
    ) -> Journal {
        Journal {
            store,
            pending: Vec::new(),
            failure: None,
            unseen: None,
            next_event: last_event,
            subscribers: Vec::new(),
            subscriber_capacity: subscriber_capacity.max(1),
            identity,
            restored,
            stats: JournalStats::default(),
        }
    }

    /// The store's identity.
    pub(crate) fn identity(&self) -> &str {
        &self.identity
    }

    /// True while the store cannot commit.
    pub(crate) fn failing(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Numbers an event and hands it to the live feed; the caller keeps it with its step.
    pub(crate) fn emit(&mut self, mut e: Event) -> Event {
        self.next_event += 1;
        e.seq = self.next_event;
        let mut dropped = 0;
        self.subscribers.retain(|s| match s.try_send(e.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                dropped += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
        self.stats.events_dropped += dropped;
        log::debug!(target: "vigilo::pipeline", "{e}");
        e
    }

    /// A live feed of the events from now on.
    pub(crate) fn subscribe(
        &mut self,
        capacity: Option<usize>,
    ) -> crossbeam_channel::Receiver<Event> {
        let (tx, rx) =
            crossbeam_channel::bounded(capacity.unwrap_or(self.subscriber_capacity).max(1));
        self.subscribers.push(tx);
        rx
    }

    /// Takes a whole step and writes everything waiting, in one transaction; says whether the
    /// store started failing or came back since the pipeline last asked.
    pub(crate) fn commit(&mut self, step: Vec<StoreChange>, now: Timestamp) -> Outcome {
        let saved = self.write(step, now);
        let mut out = Outcome {
            saved,
            ..Outcome::default()
        };
        match self.unseen.take() {
            Some(Unseen::Failed(e)) => out.started_failing = Some(e),
            Some(Unseen::Recovered(since)) => out.recovered = Some(since),
            None => {}
        }
        out
    }

    /// Writes a checkpoint's item states now (replacing the previous ones).
    pub(crate) fn save_item_states(&mut self, states: Vec<ItemSnapshot>, now: Timestamp) {
        self.write(vec![StoreChange::ItemStates(states)], now);
    }

    /// Writes the SLO rings now (replacing the previous ones).
    pub(crate) fn save_slo_states(&mut self, states: Vec<SloSnapshot>, now: Timestamp) {
        self.write(vec![StoreChange::SloStates(states)], now);
    }

    /// Writes what anomaly rules' items learned since the last save.
    pub(crate) fn save_learned(&mut self, states: Vec<LearnedSnapshot>, now: Timestamp) {
        if !states.is_empty() {
            self.write(vec![StoreChange::Learned(states)], now);
        }
    }

    /// Writes where each `[[log]]` stopped reading (replacing the previous set).
    pub(crate) fn save_log_offsets(&mut self, logs: Vec<LogCheckpoint>, now: Timestamp) {
        self.write(vec![StoreChange::LogOffsets(logs)], now);
    }

    /// Adds `step` to what waits and writes it all, in one transaction; true if the store took
    /// it. While the store fails, it is tried only when its retry is due.
    fn write(&mut self, step: Vec<StoreChange>, now: Timestamp) -> bool {
        self.pending.extend(step);
        let mut saved = self.pending.is_empty();
        if !saved && self.failure.as_ref().is_none_or(|f| f.retry_at <= now) {
            compact(&mut self.pending);
            match self.store.commit(&self.pending) {
                Ok(()) => {
                    self.pending.clear();
                    saved = true;
                    if let Some(f) = self.failure.take() {
                        self.unseen = Some(Unseen::Recovered(f.since));
                    }
                }
                Err(e) => self.failed(&e, now),
            }
        }
        self.bound_pending();
        saved
    }

    /// The item states the store held at start (taken once).
    pub(crate) fn take_restored_items(&mut self) -> Vec<ItemSnapshot> {
        std::mem::take(&mut self.restored.items)
    }

    /// What anomaly rules had learned, from the store at start (taken once).
    pub(crate) fn take_restored_learned(&mut self) -> Vec<LearnedSnapshot> {
        std::mem::take(&mut self.restored.learned)
    }

    /// Where each `[[log]]` had stopped, from the store at start (taken once).
    pub(crate) fn take_restored_logs(&mut self) -> Vec<LogCheckpoint> {
        std::mem::take(&mut self.restored.logs)
    }

    /// The SLO rings the store held at start (taken once).
    pub(crate) fn take_restored_slos(&mut self) -> Vec<SloSnapshot> {
        std::mem::take(&mut self.restored.slos)
    }

    pub(crate) fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, StoreError> {
        self.store.history(query)
    }

    pub(crate) fn take_requests(&mut self) -> Result<Vec<(i64, StoreRequest)>, StoreError> {
        self.store.take_requests()
    }

    fn failed(&mut self, error: &StoreError, now: Timestamp) {
        self.stats.store_errors += 1;
        self.stats.last_store_error = Some(error.to_string());
        log::error!(target: "vigilo::pipeline", "{error}");
        match &mut self.failure {
            Some(f) => {
                f.backoff = (f.backoff * 2).min(MAX_RETRY);
                f.retry_at = now + f.backoff;
                f.error = error.to_string();
            }
            None => {
                self.failure = Some(Failure {
                    since: now,
                    retry_at: now + FIRST_RETRY,
                    backoff: FIRST_RETRY,
                    error: error.to_string(),
                });
                self.unseen = Some(Unseen::Failed(error.to_string()));
            }
        }
    }

    /// Keeps what waits within memory: history events beyond the bound are dropped (counted);
    /// incidents, the outbox and silences never are.
    fn bound_pending(&mut self) {
        let events = self
            .pending
            .iter()
            .filter(|c| matches!(c, StoreChange::Event(_)))
            .count();
        let mut excess = events.saturating_sub(MAX_UNSAVED_EVENTS);
        if excess == 0 {
            return;
        }
        self.stats.events_lost += excess as u64;
        self.pending.retain(|c| {
            if excess > 0 && matches!(c, StoreChange::Event(_)) {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// Takes a notification that never reached the store out of what waits (it was summed up
    /// instead, see `Delivery::hold`).
    pub(crate) fn forget_notification(&mut self, id: super::notification::NotificationId) {
        self.pending
            .retain(|c| !matches!(c, StoreChange::Notification(n) if n.id == id));
    }
}

/// Keeps only what matters of a run of changes: the last state of each incident, the last set
/// of item states and of SLO rings. The order of everything else is kept.
fn compact(changes: &mut Vec<StoreChange>) {
    let mut seen = HashSet::new();
    let (mut items, mut slos, mut logs) = (false, false, false);
    let mut keep = vec![true; changes.len()];
    for (i, c) in changes.iter().enumerate().rev() {
        keep[i] = match c {
            StoreChange::Incident(inc) => seen.insert(inc.id),
            StoreChange::ItemStates(_) => !std::mem::replace(&mut items, true),
            StoreChange::SloStates(_) => !std::mem::replace(&mut slos, true),
            StoreChange::LogOffsets(_) => !std::mem::replace(&mut logs, true),
            _ => true,
        };
    }
    let mut flags = keep.into_iter();
    changes.retain(|_| flags.next().unwrap_or(true));
}
