//! The pipeline's state, owned by its one thread: incidents, groups, silences, the outbox,
//! channels and actions, timers. The behaviour lives beside it (`intake`, `group`, `delivery`,
//! `recovery`, `control`), each an `impl Dispatcher` block reading this file only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use serde::Serialize;

use super::event::{Event, EventKind};
use super::incident::{Incident, IncidentId, ItemKey};
use super::notification::{HeldBack, Notification, NotificationId};
use super::settings::{ActionConfig, ChannelConfig, PipelineConfig};
use super::silence::{Silence, SilenceId};
use super::store::{Store, StoreChange};
use super::timers::{GroupKey, Timers};
use super::workers::{ActionJob, DeliveryJob, Done, Pool};
use crate::Severity;
use crate::alert::{Action, AlertStatus, Channel};
use crate::clock::{Clock, Timestamp};
use crate::metrics::Labels;

/// Counters of the pipeline's work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PipelineStats {
    /// Transitions received from the evaluator.
    pub transitions: u64,
    /// Incidents open now.
    pub incidents_open: usize,
    /// Incidents opened since start.
    pub incidents_opened: u64,
    /// Notifications put in the outbox (one per channel).
    pub notifications: u64,
    /// Notifications delivered.
    pub delivered: u64,
    /// Notifications that failed on their channel for good.
    pub failed: u64,
    /// Delivery attempts retried.
    pub retries: u64,
    /// Notifications handed to a fallback channel.
    pub fallbacks: u64,
    /// Notifications held back by rate limits.
    pub held_back: u64,
    /// Alerts no route took.
    pub unrouted: u64,
    /// Changes not sent because they repeated what was notified.
    pub deduplicated: u64,
    /// Notifications held back by inhibition.
    pub inhibited: u64,
    /// Notifications held back by silences and maintenance windows.
    pub silenced: u64,
    /// Notifications deferred to a route's next window.
    pub deferred: u64,
    /// Notifications dropped outside a route's window.
    pub dropped: u64,
    /// Recovery runs started.
    pub actions_started: u64,
    /// Recovery runs that succeeded.
    pub actions_succeeded: u64,
    /// Recovery runs that failed, were denied or timed out.
    pub actions_failed: u64,
    /// Notifications in the outbox now (queued, in flight or waiting to retry).
    pub outbox: usize,
    /// Deliveries and action runs in progress.
    pub in_flight: usize,
    /// Events a subscriber was too slow to take.
    pub events_dropped: u64,
    /// Batches the store refused.
    pub store_errors: u64,
    /// The store's last error.
    pub last_store_error: Option<String>,
    /// The store cannot commit now: new notifications are held in memory, none is delivered
    /// before it is committed (the `vigilo_store_failing` meta-alert is the exception).
    pub store_failing: bool,
    /// Notifications held now because the store could not commit them.
    pub held_uncommitted: usize,
    /// Held notifications taken out past `[store] hold_limit` and summed up (per channel, sent
    /// when the store is back).
    pub held_summarised: u64,
    /// History events not kept while the store failed (beyond what memory holds).
    pub events_lost: u64,
    /// Groups waiting or notified.
    pub groups: usize,
    /// Timers set.
    pub timers: usize,
}

/// An incident with what the pipeline needs beside it.
pub(crate) struct Tracked {
    pub(crate) inc: Incident,
    /// The latest transition's `from` and `since`.
    pub(crate) previous: Severity,
    pub(crate) since: Timestamp,
    /// Groups it is a member of.
    pub(crate) groups: Vec<GroupKey>,
    /// Recovery runs per recovery (index into the config's list).
    pub(crate) attempts: HashMap<usize, u32>,
    /// Whether each inhibit rule sees it as a source now (to keep the index in step).
    pub(crate) inhibit_sources: Vec<Option<Vec<String>>>,
}

/// One item in a group.
pub(crate) struct Member {
    pub(crate) status: AlertStatus,
    pub(crate) severity: Severity,
    /// What this group last told: status and severity.
    pub(crate) notified: Option<(AlertStatus, Severity)>,
    /// Changed since the group last told.
    pub(crate) pending: bool,
    /// Why it is held back, if it is.
    pub(crate) suppressed: Option<String>,
}

/// Alerts of one route that are notified together (one item per group when the route does not
/// group).
pub(crate) struct Group {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) per_item: bool,
    /// Notifies without waiting: the store's meta-alert, alone in its group.
    pub(crate) urgent: bool,
    pub(crate) members: BTreeMap<IncidentId, Member>,
    pub(crate) created_at: Timestamp,
    pub(crate) last_flush: Option<Timestamp>,
    pub(crate) flush_at: Option<Timestamp>,
    pub(crate) repeat_at: Option<Timestamp>,
    /// Notifications sent (numbers digests' keys).
    pub(crate) sends: u32,
    pub(crate) repeats: u32,
}

impl Group {
    pub(crate) fn new(labels: BTreeMap<String, String>, per_item: bool, now: Timestamp) -> Self {
        Group {
            labels,
            per_item,
            urgent: false,
            members: BTreeMap::new(),
            created_at: now,
            last_flush: None,
            flush_at: None,
            repeat_at: None,
            sends: 0,
            repeats: 0,
        }
    }
}

/// A channel: its settings, its threads, its health, its rate limit.
pub(crate) struct ChannelState {
    pub(crate) config: ChannelConfig,
    pub(crate) channel: Arc<dyn Channel>,
    pub(crate) pool: Pool<DeliveryJob>,
    pub(crate) consecutive_failures: u32,
    pub(crate) last_error: Option<String>,
    /// The open "channel failing" meta-incident.
    pub(crate) failing: Option<IncidentId>,
    pub(crate) tokens: f64,
    pub(crate) refilled_at: Timestamp,
    /// What the rate limit held back, summed up when it allows again.
    pub(crate) held: HeldBack,
    pub(crate) summary_armed: bool,
}

/// An action: its settings and threads.
pub(crate) struct ActionState {
    pub(crate) config: ActionConfig,
    pub(crate) action: Arc<dyn Action>,
    pub(crate) pool: Pool<ActionJob>,
}

/// A recovery run in progress.
pub(crate) struct Run {
    pub(crate) item: ItemKey,
    pub(crate) incident: IncidentId,
    /// Index of the recovery in the configuration.
    pub(crate) recovery: usize,
    pub(crate) action: String,
    /// Index of its record in the incident's `actions`.
    pub(crate) record: usize,
    pub(crate) started: Timestamp,
    pub(crate) timed_out: bool,
}

/// The store cannot commit: since when, and when it is tried again.
pub(crate) struct StoreFailure {
    pub(crate) since: Timestamp,
    pub(crate) retry_at: Timestamp,
    pub(crate) backoff: std::time::Duration,
    /// The `vigilo_store_failing` meta-incident.
    pub(crate) incident: Option<IncidentId>,
}

/// The pipeline's state machine.
pub(crate) struct Dispatcher {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: PipelineConfig,
    pub(crate) store: Box<dyn Store>,
    /// The store's identity, part of every idempotency key.
    pub(crate) identity: String,
    pub(crate) batch: Vec<StoreChange>,
    /// Changes the store refused, committed with the next batch that goes through.
    pub(crate) unsaved: Vec<StoreChange>,
    pub(crate) store_failure: Option<StoreFailure>,
    /// Notifications whose entry in the outbox is not committed yet.
    pub(crate) uncommitted: HashSet<NotificationId>,
    /// Notifications not attempted because they are not committed, oldest first.
    pub(crate) held: std::collections::VecDeque<NotificationId>,
    /// Per channel, held notifications taken out past the bound.
    pub(crate) summarised: BTreeMap<String, HeldBack>,
    /// Open incidents by item.
    pub(crate) open: HashMap<ItemKey, IncidentId>,
    /// Open incidents, and resolved ones a group still has to tell about.
    pub(crate) incidents: HashMap<IncidentId, Tracked>,
    /// Open incidents by metric and series labels (automatic inhibition).
    pub(crate) by_series: HashMap<(Arc<str>, Labels), Vec<IncidentId>>,
    /// Per inhibit rule, how many firing sources have each value of the `equal` labels.
    pub(crate) inhibit_index: Vec<HashMap<Vec<String>, u32>>,
    pub(crate) groups: HashMap<GroupKey, Group>,
    /// Groups with suppressed members, looked at again when a suppression may have ended.
    pub(crate) suppressed: HashSet<GroupKey>,
    /// When suppressed groups are next looked at (a maintenance window or silence edge).
    pub(crate) recheck_at: Option<Timestamp>,
    pub(crate) silences: BTreeMap<SilenceId, Silence>,
    pub(crate) timers: Timers,
    pub(crate) outbox: HashMap<NotificationId, Notification>,
    /// Notifications queued in this step, attempted once it is committed.
    pub(crate) to_attempt: Vec<NotificationId>,
    /// The evaluator's item states as the store had them at start (for the monitor).
    pub(crate) restored_item_states: Vec<crate::eval::ItemSnapshot>,
    /// The SLO engine's rings as the store had them at start (for the monitor).
    pub(crate) restored_slo_states: Vec<crate::slo::SloSnapshot>,
    pub(crate) channels: HashMap<String, ChannelState>,
    pub(crate) actions: HashMap<String, ActionState>,
    pub(crate) results_tx: Sender<Done>,
    /// Deliveries handed to workers and not back yet.
    pub(crate) deliveries_in_flight: HashSet<NotificationId>,
    pub(crate) runs: HashMap<u64, Run>,
    pub(crate) running: HashSet<ItemKey>,
    pub(crate) cooldowns: HashMap<(ItemKey, usize), Timestamp>,
    pub(crate) next_incident: u64,
    pub(crate) next_notification: u64,
    pub(crate) next_silence: u64,
    pub(crate) next_event: u64,
    pub(crate) next_run: u64,
    pub(crate) subscribers: Vec<Sender<Event>>,
    pub(crate) stats: PipelineStats,
}

impl Dispatcher {
    /// Records an event: numbered, kept in the history, sent to subscribers.
    pub(crate) fn emit(&mut self, mut e: Event) {
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
        self.batch.push(StoreChange::Event(Box::new(e)));
    }

    /// An event about an incident.
    pub(crate) fn incident_event(&self, kind: EventKind, id: IncidentId, now: Timestamp) -> Event {
        let mut e = Event::new(kind, now);
        e.incident = Some(id);
        if let Some(t) = self.incidents.get(&id) {
            e.item = Some(t.inc.item.to_string());
            e.rule = Some(t.inc.item.rule.to_string());
            e.severity = Some(t.inc.severity);
        }
        e
    }

    /// Writes the incident to the store (at the end of the step).
    pub(crate) fn save_incident(&mut self, id: IncidentId) {
        if let Some(t) = self.incidents.get(&id) {
            self.batch
                .push(StoreChange::Incident(Box::new(t.inc.clone())));
        }
    }

    /// Applies the step's changes to the store, then hands the notifications it queued to
    /// their channels: each is committed before its first attempt. While the store cannot
    /// commit, new notifications are held (see `unsaved.rs`) and go out once it can.
    pub(crate) fn commit(&mut self) {
        let now = self.clock.now();
        if self.write_batch(now) && self.store_failure.is_some() {
            self.store_recovered(now);
            self.write_batch(now);
        }
        for id in std::mem::take(&mut self.to_attempt) {
            if self.uncommitted.contains(&id) && !self.deliverable_uncommitted(id) {
                self.hold_uncommitted(id, now);
            } else {
                self.attempt(id);
            }
        }
    }

    /// Commits what the store has not taken yet and this step's changes, in order, in one
    /// transaction; true if the store took them. While the store fails, it is tried again
    /// only when its retry is due (any step after that, or the retry timer).
    fn write_batch(&mut self, now: Timestamp) -> bool {
        if self.batch.is_empty() && self.unsaved.is_empty() {
            return true;
        }
        let mut changes = std::mem::take(&mut self.unsaved);
        changes.append(&mut self.batch);
        compact(&mut changes);
        if self
            .store_failure
            .as_ref()
            .is_some_and(|f| now < f.retry_at)
        {
            self.unsaved = changes;
            self.bound_unsaved();
            return false;
        }
        match self.store.commit(&changes) {
            Ok(()) => {
                self.uncommitted.clear();
                true
            }
            Err(e) => {
                self.unsaved = changes;
                self.bound_unsaved();
                self.stats.store_errors += 1;
                self.stats.last_store_error = Some(e.to_string());
                log::error!(target: "vigilo::pipeline", "{e}");
                self.store_failed(&e, now);
                false
            }
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.deliveries_in_flight.len() + self.runs.len()
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let mut s = self.stats.clone();
        s.store_failing = self.store_failure.is_some();
        s.held_uncommitted = self.held.len();
        s.incidents_open = self.open.len();
        s.outbox = self.outbox.len();
        s.in_flight = self.in_flight();
        s.groups = self.groups.len();
        s.timers = self.timers.len();
        s
    }

    /// The alert labels of an incident with the pseudo-labels routes may group by.
    pub(crate) fn route_index(&self, name: &str) -> Option<usize> {
        self.config.routes.iter().position(|r| r.name == name)
    }
}

/// Keeps only what matters of a run of changes: the last state of each incident, the last
/// set of item states and of SLO rings. The order of everything else is kept.
fn compact(changes: &mut Vec<StoreChange>) {
    let mut seen = HashSet::new();
    let (mut items, mut slos) = (false, false);
    let mut keep = vec![true; changes.len()];
    for (i, c) in changes.iter().enumerate().rev() {
        let last = match c {
            StoreChange::Incident(inc) => seen.insert(inc.id),
            StoreChange::ItemStates(_) => !std::mem::replace(&mut items, true),
            StoreChange::SloStates(_) => !std::mem::replace(&mut slos, true),
            _ => true,
        };
        keep[i] = last;
    }
    let mut flags = keep.into_iter();
    changes.retain(|_| flags.next().unwrap_or(true));
}
