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
#[non_exhaustive]
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
    /// Its first 32 arguments as asked, each cut to 256 bytes (with its length when cut).
    pub args: Vec<String>,
    /// How many arguments were asked.
    pub args_count: usize,
    /// Their total length in bytes.
    pub args_bytes: usize,
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

/// A bounded log of [`AuditRecord`]s, oldest dropped first: at most `capacity` records and
/// about [`MAX_BYTES`] of text.
pub(crate) struct AuditLog {
    capacity: usize,
    records: Mutex<(VecDeque<AuditRecord>, usize)>,
}

/// The most text (commands, arguments, outcomes) the audit log keeps in memory.
pub(crate) const MAX_BYTES: usize = 4 << 20;

fn size(r: &AuditRecord) -> usize {
    let outcome = match &r.outcome {
        AuditOutcome::Denied(m) | AuditOutcome::Failed(m) => m.len(),
        _ => 0,
    };
    128 + r.plugin.len() + r.command.len() + r.args.iter().map(String::len).sum::<usize>() + outcome
}

impl AuditLog {
    pub(crate) fn new(capacity: usize) -> Self {
        AuditLog {
            capacity,
            records: Mutex::new((VecDeque::new(), 0)),
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
        let mut guard = self.records.lock();
        let (q, bytes) = &mut *guard;
        *bytes += size(&r);
        q.push_back(r);
        while q.len() > self.capacity || (*bytes > MAX_BYTES && q.len() > 1) {
            if let Some(old) = q.pop_front() {
                *bytes -= size(&old);
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<AuditRecord> {
        self.records.lock().0.iter().cloned().collect()
    }
}
