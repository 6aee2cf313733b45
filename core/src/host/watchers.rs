//! The host's checks besides its sysinfo items: the `[[log]]` watchers and the `[[probe]]`s,
//! each on a thread of its own, started and stopped together (by the monitor). Each part is
//! there with its cargo feature (`logs`, `probes`); without it, configuring one is refused
//! when the configuration loads, so here it is simply absent.

use super::HostError;
use super::logs::{LogCheckpoint, LogSpec};
use super::probes::ProbeSpec;
use crate::metrics::Registry;

/// The running `[[log]]` watchers and `[[probe]]`s of one configuration.
#[derive(Debug, Default)]
pub struct Watchers {
    #[cfg(feature = "logs")]
    logs: Option<super::logs::LogRunner>,
    #[cfg(feature = "probes")]
    probes: Option<super::probes::ProbeRunner>,
}

impl Watchers {
    /// Starts following `logs` (each resuming from its checkpoint in `restored`) and running
    /// `probes`, recording into `registry`. Nothing runs for an empty list.
    pub fn start(
        logs: &[LogSpec],
        probes: &[ProbeSpec],
        registry: &Registry,
        restored: Vec<LogCheckpoint>,
    ) -> Result<Watchers, HostError> {
        #[cfg(not(feature = "logs"))]
        let _ = (logs, &restored);
        #[cfg(not(feature = "probes"))]
        let _ = probes;
        let _ = registry;
        Ok(Watchers {
            #[cfg(feature = "probes")]
            probes: if probes.is_empty() {
                None
            } else {
                Some(
                    super::probes::ProbeRunner::start(probes, registry)
                        .map_err(|reason| HostError::InvalidConfig { reason })?,
                )
            },
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

    /// Runs every probe once now, on the caller's thread, and records the results (the
    /// probes' thread runs each every `interval`).
    pub fn run_probes(&self) {
        #[cfg(feature = "probes")]
        if let Some(p) = &self.probes {
            p.run_now();
        }
    }

    /// True if some log or probe runs.
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "logs")]
        if self.logs.is_some() {
            return false;
        }
        #[cfg(feature = "probes")]
        if self.probes.is_some() {
            return false;
        }
        true
    }

    /// Stops every thread; returns the logs' last checkpoints.
    pub fn stop(self) -> Vec<LogCheckpoint> {
        #[cfg(feature = "probes")]
        if let Some(p) = self.probes {
            p.stop();
        }
        #[cfg(feature = "logs")]
        if let Some(l) = self.logs {
            return l.stop();
        }
        Vec::new()
    }
}
