//! Push export of the registry to the engines a fleet already runs: Prometheus remote-write
//! 1.0 (`[export.remote_write]`, feature `remote-write`) and OTLP/HTTP metrics
//! (`[export.otlp]`, feature `otlp`).
//!
//! Each configured export runs on a thread of its own (`vigilo-export-remote-write`,
//! `vigilo-export-otlp`): every `interval` it takes a snapshot of the registry (which never
//! stops a writer, so the record path does not slow down; `BENCHMARKS.md` measures it), encodes
//! it into requests of at most `queue.max_samples_per_send` samples, and sends them from a
//! bounded queue with retries and backoff (`queue.rs` has the discipline). What each export did
//! is counted in the registry itself, labelled `export="remote_write"` or `export="otlp"`:
//! `vigilo_export_samples_sent_total`, `vigilo_export_samples_dropped_total`,
//! `vigilo_export_requests_failed_total`, `vigilo_export_retries_total` and
//! `vigilo_export_bytes_sent_total`, so a rule can alert on an export that drops.
//!
//! Names and values are the registry's, as the Prometheus exposition shows them; histograms are
//! sent at the section's `buckets` (explicit bounds: vigilo's fine buckets split each octave
//! into 64 equal-width parts, which no OpenTelemetry exponential scale reproduces exactly, and
//! an exponential bucket's lower bound is exclusive where vigilo's is inclusive).
//!
//! The HTTP client is `ureq`: blocking, so each export is one plain thread with no async
//! runtime, with a time limit per request, and its TLS from rustls.

mod config;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(any(feature = "remote-write", feature = "otlp"))]
mod queue;
#[cfg(feature = "remote-write")]
mod remote_write;

use std::sync::Arc;

pub use config::{ExportConfig, OtlpConfig, QueueConfig, RemoteWriteConfig};

use crate::clock::Clock;
use crate::{Counter, MetricError, Registry};

/// An export could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Its counters could not be registered (a name taken by another kind of metric).
    #[error("export {export}: {source}")]
    Metrics {
        /// `remote_write` or `otlp`.
        export: &'static str,
        /// Why.
        source: MetricError,
    },
    /// Its thread could not be started.
    #[error("export {export}: cannot start its thread: {source}")]
    Spawn {
        /// `remote_write` or `otlp`.
        export: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// The request bodies one reading of `registry` at `at` makes for `[export.remote_write]`
/// (protobuf `WriteRequest`s, snappy-compressed), exactly as the export sends them: for
/// inspection, tests and benchmarks.
#[cfg(feature = "remote-write")]
pub fn remote_write_bodies(
    registry: &Registry,
    config: &RemoteWriteConfig,
    at: crate::clock::Timestamp,
) -> Vec<Vec<u8>> {
    let (encoder, target) = remote_write::prepare(config);
    bodies(encoder, &target, registry, at)
}

/// The request bodies one reading of `registry` at `at` makes for `[export.otlp]` (protobuf
/// `ExportMetricsServiceRequest`s; cumulative points start at `at`), exactly as the export
/// sends them: for inspection, tests and benchmarks.
#[cfg(feature = "otlp")]
pub fn otlp_bodies(
    registry: &Registry,
    config: &OtlpConfig,
    at: crate::clock::Timestamp,
) -> Vec<Vec<u8>> {
    let (encoder, target) = otlp::prepare(config, at);
    bodies(encoder, &target, registry, at)
}

/// The bodies of one reading, as the export's thread makes them.
#[cfg(any(feature = "remote-write", feature = "otlp"))]
fn bodies(
    mut encoder: impl queue::Encoder,
    target: &queue::Target,
    registry: &Registry,
    at: crate::clock::Timestamp,
) -> Vec<Vec<u8>> {
    encoder
        .encode(
            registry,
            &registry.snapshot(),
            at,
            target.queue.max_samples_per_send,
        )
        .into_iter()
        .map(|r| r.body)
        .collect()
}

/// What one export did since it started (read from its `vigilo_export_*` counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Samples (data points) the receiver accepted.
    pub samples_sent: u64,
    /// Samples dropped: the queue was full, the receiver refused them, or the export stopped
    /// before it could send them.
    pub samples_dropped: u64,
    /// Requests the receiver refused for good (a 4xx other than 408 and 429).
    pub requests_failed: u64,
    /// Tries that failed and were tried again.
    pub retries: u64,
    /// Request bodies' bytes the receiver accepted (compressed, as on the wire).
    pub bytes_sent: u64,
}

/// The counters an export keeps in the registry.
#[cfg_attr(not(any(feature = "remote-write", feature = "otlp")), allow(dead_code))]
pub(crate) struct ExportCounters {
    sent: Counter,
    dropped: Counter,
    failed: Counter,
    retries: Counter,
    bytes: Counter,
}

impl ExportCounters {
    #[cfg_attr(not(any(feature = "remote-write", feature = "otlp")), allow(dead_code))]
    fn register(registry: &Registry, export: &'static str) -> Result<Self, ExportError> {
        let c = |name: &str| {
            registry
                .counter(name, &[("export", export)])
                .map_err(|source| ExportError::Metrics { export, source })
        };
        Ok(ExportCounters {
            sent: c("vigilo_export_samples_sent_total")?,
            dropped: c("vigilo_export_samples_dropped_total")?,
            failed: c("vigilo_export_requests_failed_total")?,
            retries: c("vigilo_export_retries_total")?,
            bytes: c("vigilo_export_bytes_sent_total")?,
        })
    }

    fn stats(&self) -> ExportStats {
        ExportStats {
            samples_sent: self.sent.value(),
            samples_dropped: self.dropped.value(),
            requests_failed: self.failed.value(),
            retries: self.retries.value(),
            bytes_sent: self.bytes.value(),
        }
    }
}

/// One running export.
struct Running {
    name: &'static str,
    counters: Arc<ExportCounters>,
    stop: crossbeam_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The running exports of a monitor; stopped (each sending what was recorded) by
/// [`stop`](Exports::stop) or on drop.
#[derive(Default)]
pub struct Exports {
    running: Vec<Running>,
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.running.iter().map(|r| r.name))
            .finish()
    }
}

impl Exports {
    /// Starts every export `config` names, reading `registry`, timestamps from `clock`.
    pub fn start(
        config: &ExportConfig,
        registry: &Registry,
        clock: &Arc<dyn Clock>,
    ) -> Result<Exports, ExportError> {
        // Without either feature nothing is started (the configuration refused the sections).
        #[cfg_attr(
            not(any(feature = "remote-write", feature = "otlp")),
            allow(unused_mut)
        )]
        let mut exports = Exports::default();
        #[cfg(feature = "remote-write")]
        if let Some(c) = &config.remote_write {
            let (encoder, target) = remote_write::prepare(c);
            exports.spawn("remote_write", encoder, target, registry, clock)?;
        }
        #[cfg(feature = "otlp")]
        if let Some(c) = &config.otlp {
            let (encoder, target) = otlp::prepare(c, clock.now());
            exports.spawn("otlp", encoder, target, registry, clock)?;
        }
        let _ = (config, registry, clock);
        Ok(exports)
    }

    #[cfg(any(feature = "remote-write", feature = "otlp"))]
    fn spawn(
        &mut self,
        name: &'static str,
        encoder: impl queue::Encoder,
        target: queue::Target,
        registry: &Registry,
        clock: &Arc<dyn Clock>,
    ) -> Result<(), ExportError> {
        let counters = Arc::new(ExportCounters::register(registry, name)?);
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let (registry, clock, c) = (registry.clone(), Arc::clone(clock), Arc::clone(&counters));
        let thread = std::thread::Builder::new()
            .name(format!("vigilo-export-{}", name.replace('_', "-")))
            .spawn(move || queue::run(name, encoder, &registry, &clock, &target, &c, &stopped))
            .map_err(|source| ExportError::Spawn {
                export: name,
                source,
            })?;
        self.running.push(Running {
            name,
            counters,
            stop,
            thread,
        });
        Ok(())
    }

    /// What each running export did, by name (`remote_write`, `otlp`).
    pub fn stats(&self) -> Vec<(&'static str, ExportStats)> {
        self.running
            .iter()
            .map(|r| (r.name, r.counters.stats()))
            .collect()
    }

    /// Stops every export: each takes a last reading and tries each waiting request once, all
    /// within its `queue.timeout` (10 s by default; what is left then is dropped, counted),
    /// then its thread ends.
    pub fn stop(&mut self) {
        for r in &self.running {
            let _ = r.stop.try_send(());
        }
        for r in self.running.drain(..) {
            if r.thread.join().is_err() {
                log::error!("export {}: its thread panicked", r.name);
            }
        }
    }
}

impl Drop for Exports {
    fn drop(&mut self) {
        self.stop();
    }
}
