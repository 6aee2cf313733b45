//! The evaluator's side of the transition channel: never blocks, never drops silently.

use std::collections::VecDeque;

use crossbeam_channel::{Sender, TrySendError};

use super::Transition;

/// Sends transitions without blocking; keeps what the channel cannot take yet, in order.
pub(crate) struct Outbox {
    tx: Sender<Transition>,
    backlog: VecDeque<Transition>,
    limit: usize,
    sent: u64,
    dropped: u64,
}

impl Outbox {
    pub(crate) fn new(tx: Sender<Transition>, limit: usize) -> Self {
        Outbox {
            tx,
            backlog: VecDeque::new(),
            limit: limit.max(1),
            sent: 0,
            dropped: 0,
        }
    }

    /// Queues a transition behind any backlog and sends what the channel takes.
    pub(crate) fn emit(&mut self, t: Transition) {
        self.backlog.push_back(t);
        while self.backlog.len() > self.limit {
            self.backlog.pop_front();
            self.dropped += 1;
        }
        self.flush();
    }

    /// Sends the backlog until the channel is full.
    pub(crate) fn flush(&mut self) {
        while let Some(t) = self.backlog.pop_front() {
            match self.tx.try_send(t) {
                Ok(()) => self.sent += 1,
                Err(TrySendError::Full(t)) => {
                    self.backlog.push_front(t);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    // Nobody will ever read these: count them all.
                    self.dropped += 1 + self.backlog.len() as u64;
                    self.backlog.clear();
                    break;
                }
            }
        }
    }

    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
