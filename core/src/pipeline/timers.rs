//! The pipeline's timers: one heap of (due time, what), on the pipeline's clock. A timer that
//! no longer applies when it comes due (a group already flushed, an incident resolved) is
//! recognised by the one who handles it and ignored, so nothing is ever cancelled.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::incident::IncidentId;
use super::notification::NotificationId;
use super::silence::SilenceId;
use crate::clock::Timestamp;

/// A group of alerts on one route: the route's name and the group's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GroupKey {
    pub(crate) route: Arc<str>,
    pub(crate) key: Arc<str>,
}

/// What is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A group's next notification.
    Flush(GroupKey),
    /// A group's repeat.
    Repeat(GroupKey),
    /// An incident's next escalation tier on a route.
    Escalate(IncidentId, Arc<str>),
    /// An acknowledgement lapses.
    AckExpiry(IncidentId),
    /// A silence ends.
    SilenceEnd(SilenceId),
    /// Suppressed groups are looked at again (a maintenance window changed).
    Recheck,
    /// A notification's next attempt.
    Retry(NotificationId),
    /// A channel's rate limit may send the summary of what it held back.
    RateSummary(Arc<str>),
    /// A recovery may run again for an incident (cooldown over).
    Recovery(IncidentId),
    /// A recovery run reaches its timeout.
    ActionTimeout(u64),
    /// Requests queued in the store by other processes are looked for.
    Requests,
    /// A failing store is tried again (by the commit that ends every step).
    StoreRetry,
}

struct Entry {
    at: Timestamp,
    seq: u64,
    timer: Timer,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Timers in due order (ties in the order they were set).
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    pub(crate) fn set(&mut self, at: Timestamp, timer: Timer) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            timer,
        }));
    }

    /// The earliest due time.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Takes the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, Timer)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.at, e.timer))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
