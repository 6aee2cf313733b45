//! Where the pipeline keeps what must outlive a call: open incidents, the outbox of
//! notifications not yet delivered, silences, the evaluator's item states, and the event
//! history. The pipeline writes through a [`Store`] in batches, one per step;
//! [`SqliteStore`](super::SqliteStore) is the implementation, on a file or in memory.

use std::path::PathBuf;

use super::event::{Event, HistoryQuery};
use super::incident::{Incident, IncidentId};
use super::notification::{Notification, NotificationId};
use super::request::StoreRequest;
use super::silence::{Silence, SilenceId};
use crate::eval::ItemSnapshot;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be read or written.
    #[error("store: {0}")]
    Io(String),
    /// The database could not be opened or created.
    #[error("store {}: {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The file is not a sound database (see `[store] on_corrupt`).
    #[error("store {}: the database is damaged ({message}); move it away, or set [store] on_corrupt = \"recreate\" to start afresh keeping the damaged file", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// Another process owns the database.
    #[error("store {}: another vigilo process is using this database", path.display())]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The database was written by a newer version of vigilo.
    #[error("store {}: written by a newer vigilo (schema {found}; this version knows up to {supported}); refusing to touch it", path.display())]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The highest this version knows.
        supported: u32,
    },
}

/// One change, applied in order within a batch.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The evaluator's item states that are not at rest (replacing the previous set).
    ItemStates(Vec<ItemSnapshot>),
    /// The SLO engine's rings (replacing the previous set).
    SloStates(Vec<crate::slo::SloSnapshot>),
    /// A queued request was handled, with its result.
    RequestDone(i64, Result<String, String>),
    /// What anomaly rules' items learned since the last save (each replaces the item's row;
    /// rows whose points all aged out go).
    Learned(Vec<crate::eval::LearnedSnapshot>),
    /// Where each `[[log]]` stopped reading, with its counts (replacing the previous set).
    LogOffsets(Vec<crate::host::logs::LogCheckpoint>),
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
    /// The evaluator's item states at the last checkpoint.
    pub item_states: Vec<ItemSnapshot>,
    /// The SLO engine's rings at the last checkpoint.
    pub slo_states: Vec<crate::slo::SloSnapshot>,
    /// What anomaly rules' items had learned.
    pub learned: Vec<crate::eval::LearnedSnapshot>,
    /// Where each `[[log]]` had stopped reading.
    pub log_offsets: Vec<crate::host::logs::LogCheckpoint>,
    /// The highest incident number ever given.
    pub last_incident: u64,
    /// The highest notification number ever given.
    pub last_notification: u64,
    /// The highest silence number ever given.
    pub last_silence: u64,
    /// The highest event sequence number ever given.
    pub last_event: u64,
    /// The store's identity: random, made when the database is created (and so renewed when
    /// it is recreated), part of every idempotency key so that no two stores give one key.
    /// Empty for a store that keeps none: the pipeline then makes one for each start.
    pub identity: String,
}

/// The pipeline's persistence.
pub trait Store: Send {
    /// Everything needed to resume, read once at start.
    fn load(&mut self) -> Result<StoredState, StoreError>;
    /// Applies a batch of changes, in order, all or nothing. A batch it refused is given again,
    /// with what came after it, until one is taken.
    fn commit(&mut self, changes: &[StoreChange]) -> Result<(), StoreError>;
    /// Events from the history, newest `query.limit` that pass, oldest first.
    fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, StoreError>;
    /// Requests queued by other processes and not handled yet (none by default).
    fn take_requests(&mut self) -> Result<Vec<(i64, StoreRequest)>, StoreError> {
        Ok(Vec::new())
    }
}
