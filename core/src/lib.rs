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

pub mod alert;
pub mod canary;
pub mod clock;
pub mod config;
pub mod coverage;
pub mod duration;
pub mod eval;
pub mod export;
pub mod exposition;
pub mod facade;
pub mod host;
pub mod metrics;
pub mod monitor;
pub mod pipeline;
pub mod plugin;
pub mod rules;
pub mod severity;
pub mod slo;
pub mod status;
mod sync;
pub mod testing;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
pub mod units;
pub mod web;

// The types a service names first, at the root: recording, one configuration, one entry point,
// and its own channels and actions. The rest is reached through its module.
pub use alert::{Action, ActionError, ActionOutcome, Alert, AlertStatus, Channel, DeliveryError};
pub use config::{Config, ConfigError};
pub use eval::Evaluator;
pub use metrics::{
    Counter, Gauge, Histogram, Labels, LocalCounter, MetricError, MetricKind, Registry,
    RegistryConfig,
};
pub use monitor::{Monitor, MonitorBuilder, MonitorError};
pub use severity::Severity;

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
