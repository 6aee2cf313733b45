//! Where the pipeline keeps what must outlive a call: open incidents, the outbox of
//! notifications not yet delivered, silences, and the event history. The pipeline writes
//! through a [`Store`] in batches, one per step; [`MemoryStore`] keeps everything in memory
//! (lost at exit), and a durable store implements the same trait.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::event::{Event, HistoryQuery};
use super::incident::{Incident, IncidentId};
use super::notification::{Notification, NotificationId};
use super::silence::{Silence, SilenceId};
use crate::clock::Timestamp;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be read or written.
    #[error("store: {0}")]
    Io(String),
}

/// One change, applied in order within a batch.
#[derive(Debug, Clone)]
pub enum StoreChange {
    /// An incident opened or changed (insert or replace).
    Incident(Box<Incident>),
    /// An incident is over and no longer needed to resume work.
    IncidentClosed(IncidentId),
    /// A notification entered the outbox or changed (attempts, next attempt).
    Notification(Box<Notification>),
    /// A notification left the outbox (delivered, failed, or held back).
    NotificationDone(NotificationId),
    /// A silence was created.
    Silence(Box<Silence>),
    /// A silence ended.
    SilenceRemoved(SilenceId),
    /// An event for the history.
    Event(Box<Event>),
}

/// What a store gives back when the pipeline starts.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    /// Open incidents.
    pub incidents: Vec<Incident>,
    /// Notifications not yet delivered, with their attempts so far.
    pub outbox: Vec<Notification>,
    /// Silences not yet ended.
    pub silences: Vec<Silence>,
    /// The highest incident number ever given.
    pub last_incident: u64,
    /// The highest notification number ever given.
    pub last_notification: u64,
    /// The highest silence number ever given.
    pub last_silence: u64,
    /// The highest event sequence number ever given.
    pub last_event: u64,
}

/// The pipeline's persistence.
pub trait Store: Send {
    /// Everything needed to resume, read once at start.
    fn load(&mut self) -> Result<StoredState, StoreError>;
    /// Applies a batch of changes, in order, all or nothing.
    fn commit(&mut self, changes: Vec<StoreChange>) -> Result<(), StoreError>;
    /// Events from the history, newest `query.limit` that pass, oldest first.
    fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, StoreError>;
}

/// A store in memory: the same bookkeeping as a durable one, lost when the process ends. The
/// history keeps at most `limit` events, none older than `max_age` (measured against the
/// newest event).
#[derive(Debug)]
pub struct MemoryStore {
    state: StoredState,
    incidents: BTreeMap<IncidentId, Incident>,
    outbox: BTreeMap<NotificationId, Notification>,
    silences: BTreeMap<SilenceId, Silence>,
    events: VecDeque<Event>,
    limit: usize,
    max_age: Duration,
}

impl MemoryStore {
    /// A store keeping at most `limit` events for at most `max_age`.
    pub fn new(limit: usize, max_age: Duration) -> Self {
        MemoryStore {
            state: StoredState::default(),
            incidents: BTreeMap::new(),
            outbox: BTreeMap::new(),
            silences: BTreeMap::new(),
            events: VecDeque::new(),
            limit: limit.max(1),
            max_age,
        }
    }

    fn prune(&mut self, newest: Timestamp) {
        while self.events.len() > self.limit {
            self.events.pop_front();
        }
        let oldest_kept = newest - self.max_age;
        while self.events.front().is_some_and(|e| e.at < oldest_kept) {
            self.events.pop_front();
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(100_000, Duration::from_secs(30 * 86_400))
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<StoredState, StoreError> {
        let mut s = self.state.clone();
        s.incidents = self.incidents.values().cloned().collect();
        s.outbox = self.outbox.values().cloned().collect();
        s.silences = self.silences.values().cloned().collect();
        Ok(s)
    }

    fn commit(&mut self, changes: Vec<StoreChange>) -> Result<(), StoreError> {
        let mut newest = None;
        for c in changes {
            match c {
                StoreChange::Incident(i) => {
                    self.state.last_incident = self.state.last_incident.max(i.id.0);
                    self.incidents.insert(i.id, *i);
                }
                StoreChange::IncidentClosed(id) => {
                    self.incidents.remove(&id);
                }
                StoreChange::Notification(n) => {
                    self.state.last_notification = self.state.last_notification.max(n.id.0);
                    self.outbox.insert(n.id, *n);
                }
                StoreChange::NotificationDone(id) => {
                    self.outbox.remove(&id);
                }
                StoreChange::Silence(s) => {
                    self.state.last_silence = self.state.last_silence.max(s.id.0);
                    self.silences.insert(s.id, *s);
                }
                StoreChange::SilenceRemoved(id) => {
                    self.silences.remove(&id);
                }
                StoreChange::Event(e) => {
                    self.state.last_event = self.state.last_event.max(e.seq);
                    newest = Some(e.at);
                    self.events.push_back(*e);
                }
            }
        }
        if let Some(t) = newest {
            self.prune(t);
        }
        Ok(())
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, StoreError> {
        let mut out: Vec<Event> = self
            .events
            .iter()
            .rev()
            .filter(|e| query.admits(e))
            .take(query.limit)
            .cloned()
            .collect();
        out.reverse();
        Ok(out)
    }
}
