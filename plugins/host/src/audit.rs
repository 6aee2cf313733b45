//! The exec audit trail: one [`AuditRecord`] per command a plugin asked to run, granted or
//! not, kept in a bounded in-memory log and emitted through the `log` facade (target
//! `vigilo::plugin::audit`).

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use vigilo::clock::Timestamp;

/// How a command request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum AuditOutcome {
    /// The command ran and exited (with `exit_code`, or killed by a signal).
    Exited,
    /// The command ran past its timeout; its process group was killed.
    TimedOut,
    /// The request was refused (not granted, arguments outside the patterns).
    Denied(String),
    /// The command could not be started.
    Failed(String),
}

/// One command request by one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The plugin that asked.
    pub plugin: String,
    /// The command as asked.
    pub command: String,
    /// Its arguments as asked.
    pub args: Vec<String>,
    /// When it was asked (the host's clock).
    pub started: Timestamp,
    /// How long it ran (zero if it never started).
    #[serde(with = "vigilo::duration::serde_duration")]
    pub elapsed: Duration,
    /// Its exit code, if it exited by itself.
    pub exit_code: Option<i32>,
    /// How it ended.
    pub outcome: AuditOutcome,
}

/// A bounded log of [`AuditRecord`]s, oldest dropped first.
pub(crate) struct AuditLog {
    capacity: usize,
    records: Mutex<VecDeque<AuditRecord>>,
}

impl AuditLog {
    pub(crate) fn new(capacity: usize) -> Self {
        AuditLog {
            capacity,
            records: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps `r` and logs it: info for a run, warn for a refusal or a failure.
    pub(crate) fn record(&self, r: AuditRecord) {
        let level = match r.outcome {
            AuditOutcome::Exited if r.exit_code == Some(0) => log::Level::Info,
            _ => log::Level::Warn,
        };
        log::log!(
            target: "vigilo::plugin::audit",
            level,
            "plugin {} exec {} {:?}: {:?} exit {:?} after {:?}",
            r.plugin,
            r.command,
            r.args,
            r.outcome,
            r.exit_code,
            r.elapsed
        );
        if self.capacity == 0 {
            return;
        }
        let mut q = self.records.lock();
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(r);
    }

    pub(crate) fn snapshot(&self) -> Vec<AuditRecord> {
        self.records.lock().iter().cloned().collect()
    }
}
