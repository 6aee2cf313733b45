//! Errors of the host collector.

use crate::MetricError;

/// Why the host collector could not start or a refresh did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The configuration has a value serde accepts but the collector cannot use.
    #[error("invalid host configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The operating system could not be queried.
    #[error("cannot read {what}: {source}")]
    System {
        /// What was being read (`"load average"`, `"process list"`…).
        what: &'static str,
        /// The underlying error.
        #[source]
        source: sysinfo::Error,
    },
    /// The collector could not find its own process in the process table.
    #[error("own process (pid {pid}) not found")]
    OwnProcessMissing {
        /// This process's id.
        pid: u32,
    },
    /// The registry refused a host series.
    #[error("cannot record host item: {0}")]
    Metric(#[from] MetricError),
    /// The collector thread could not be started.
    #[error("cannot start the host collector thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The thread of the `[[log]]` watchers or of the `[[probe]]`s could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// `logs` or `probes`.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The collector thread panicked (a bug); it has stopped.
    #[error("the host collector thread panicked")]
    Panicked,
}
