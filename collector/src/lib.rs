//! # vigilo-collector
//!
//! vigilo's lock-free metrics collector: the [`Registry`], its handles and call-site macros,
//! descriptions, the Prometheus and OpenMetrics text ([`exposition`]) and [`Severity`]. A
//! service that only records and exposes depends on this crate (or on `vigilo` without default
//! features, which is this crate re-exported); `vigilo` adds everything that watches and
//! alerts, and re-exports all of this under the same paths (`vigilo::Registry`,
//! `vigilo::metrics::…`, `vigilo::counter!`).
//!
//! ```
//! # use vigilo_collector as vigilo;
//! let registry = vigilo::Registry::new();
//! let errors = registry.counter("errors_total", &[("kind", "io")])?;
//! errors.increment();
//! assert_eq!(errors.value(), 1);
//! # Ok::<(), vigilo::MetricError>(())
//! ```
//!
//! ## Features
//!
//! None by default. `serde`: Serialize and Deserialize for the collector's types; `facade`: a
//! recorder for the `metrics` crate's macros (module `facade`).
//!
//! ## What is not the stable API
//!
//! Items marked `#[doc(hidden)]` (the per-series readers and watches the evaluator arms, the
//! exposition writer the monitor's endpoint extends, name validation) are public only because
//! `vigilo`'s evaluator is another crate: they follow vigilo's needs, not semver.

pub mod exposition;
pub mod metrics;
pub mod severity;
#[doc(hidden)]
pub mod sync;

#[cfg(feature = "facade")]
pub mod facade;

pub use metrics::{
    Counter, Gauge, Histogram, Labels, LocalCounter, MetricError, MetricKind, Registry,
    RegistryConfig,
};
pub use severity::Severity;
