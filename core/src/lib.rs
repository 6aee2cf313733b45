//! # vigilo
//!
//! An embeddable monitoring library: a lock-free metrics collector, host collectors, a severity
//! evaluator with five levels above Normal, and an alert pipeline whose channels and recovery
//! actions are plugins.
//!
//! ```
//! let registry = vigilo::Registry::new();
//! let errors = registry.counter("errors_total", &[("kind", "io")])?;
//! errors.increment();
//! assert_eq!(errors.value(), 1);
//! # Ok::<(), vigilo::MetricError>(())
//! ```

//!
//! ## Features
//!
//! Without default features vigilo is its metrics collector: [`metrics`] (the registry,
//! handles, call-site macros, descriptions), [`exposition`] (the Prometheus and OpenMetrics
//! text) and [`Severity`]. `monitor` (default) adds everything that watches and alerts: rules,
//! the evaluator, host items, the pipeline and its store, the HTTP endpoint, SLOs, canary
//! analysis, configuration and `Monitor`. `facade` (default) adds the `metrics` crate's
//! recorder, `serde` (default) Serialize and Deserialize for the collector's types; `logs`,
//! `probes`, `remote-write`, `otlp` and `tracing` (default, each implying `monitor`) add what
//! their names say.

// The collector is a crate of its own (`vigilo-collector`, for services that only record and
// expose); its modules and macros are vigilo's under the same paths.
#[cfg(feature = "facade")]
pub use vigilo_collector::facade;
pub use vigilo_collector::{counter, exposition, gauge, histogram, metrics, severity};

#[cfg(feature = "monitor")]
pub mod alert;
#[cfg(feature = "monitor")]
pub mod canary;
#[cfg(feature = "monitor")]
pub mod clock;
#[cfg(feature = "monitor")]
pub mod config;
#[cfg(feature = "monitor")]
pub mod coverage;
#[cfg(feature = "monitor")]
pub mod duration;
#[cfg(feature = "monitor")]
pub mod eval;
#[cfg(feature = "monitor")]
pub mod export;
#[cfg(feature = "monitor")]
pub mod host;
#[cfg(feature = "monitor")]
pub mod monitor;
#[cfg(feature = "monitor")]
pub mod pipeline;
#[cfg(feature = "monitor")]
pub mod plugin;
#[cfg(feature = "monitor")]
pub mod rules;
#[cfg(feature = "monitor")]
pub mod slo;
#[cfg(feature = "monitor")]
pub mod status;
#[cfg(feature = "monitor")]
pub mod testing;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
#[cfg(feature = "monitor")]
pub mod units;
#[cfg(feature = "monitor")]
pub mod web;

// The types a service names first, at the root: recording, one configuration, one entry point,
// and its own channels and actions. The rest is reached through its module.
#[cfg(feature = "monitor")]
pub use alert::{Action, ActionError, ActionOutcome, Alert, AlertStatus, Channel, DeliveryError};
#[cfg(feature = "monitor")]
pub use config::{Config, ConfigError};
#[cfg(feature = "monitor")]
pub use eval::Evaluator;
#[cfg(feature = "monitor")]
pub use monitor::{Monitor, MonitorBuilder, MonitorError};
pub use vigilo_collector::Severity;
pub use vigilo_collector::{
    Counter, Gauge, Histogram, Labels, LocalCounter, MetricError, MetricKind, Registry,
    RegistryConfig,
};

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "monitor"))]
pub struct ReadmeDoctests;
