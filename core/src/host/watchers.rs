//! The host's checks besides its sysinfo items: the `[[log]]` watchers and the `[[probe]]`s,
//! each on a thread of its own, started and stopped together (by the monitor). Each part is
//! there with its cargo feature (`logs`, `probes`); without it, configuring one is refused
//! when the configuration loads, so here it is simply absent.

use super::HostError;
use super::logs::{LogCheckpoint, LogSpec};
use crate::metrics::Registry;

/// The running `[[log]]` watchers and `[[probe]]`s of one configuration.
#[derive(Debug, Default)]
pub struct Watchers {
    #[cfg(feature = "logs")]
    logs: Option<super::logs::LogRunner>,
}

impl Watchers {
    /// Starts following `logs` (each resuming from its checkpoint in `restored`), recording
    /// into `registry`. Nothing runs for an empty list.
    pub fn start(
        logs: &[LogSpec],
        registry: &Registry,
        restored: Vec<LogCheckpoint>,
    ) -> Result<Watchers, HostError> {
        #[cfg(not(feature = "logs"))]
        let _ = (logs, registry, restored);
        Ok(Watchers {
            #[cfg(feature = "logs")]
            logs: if logs.is_empty() {
                None
            } else {
                Some(
                    super::logs::LogRunner::start(logs, registry, restored).map_err(|source| {
                        HostError::Thread {
                            what: "logs",
                            source,
                        }
                    })?,
                )
            },
        })
    }

    /// Reads what is new in every log now, on the caller's thread (the watchers' thread does
    /// it every `poll`).
    pub fn poll_logs(&self) {
        #[cfg(feature = "logs")]
        if let Some(l) = &self.logs {
            l.poll_now();
        }
    }

    /// Where each log stands, with its counts (empty without logs).
    pub fn log_checkpoints(&self) -> Vec<LogCheckpoint> {
        #[cfg(feature = "logs")]
        if let Some(l) = &self.logs {
            return l.checkpoints();
        }
        Vec::new()
    }

    /// True if some log or probe runs.
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "logs")]
        if self.logs.is_some() {
            return false;
        }
        true
    }

    /// Stops every thread; returns the logs' last checkpoints.
    pub fn stop(self) -> Vec<LogCheckpoint> {
        #[cfg(feature = "logs")]
        if let Some(l) = self.logs {
            return l.stop();
        }
        Vec::new()
    }
}
