//! Errors the metrics layer returns instead of panicking.

use super::MetricKind;

/// Why a metric operation was refused. Nothing already recorded is changed when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {name:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`, or starts with the reserved `__`.
    #[error(
        "invalid label name {label:?} on {metric}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"
    )]
    InvalidLabelName {
        /// The metric the label was given for.
        metric: String,
        /// The rejected label name.
        label: String,
    },
    /// The same label name appears twice.
    #[error("label {label:?} given twice on {metric}")]
    DuplicateLabel {
        /// The metric the labels were given for.
        metric: String,
        /// The repeated label name.
        label: String,
    },
    /// A gauge or histogram value was NaN or infinite.
    #[error("value {value} for {metric} is not finite")]
    NonFinite {
        /// The metric the value was recorded for.
        metric: String,
        /// The rejected value.
        value: f64,
    },
    /// The name is already registered as another kind of metric.
    #[error("{name} is registered as a {existing}, not a {requested}")]
    KindMismatch {
        /// The metric name.
        name: String,
        /// The kind it was first registered as.
        existing: MetricKind,
        /// The kind that was asked for now.
        requested: MetricKind,
    },
    /// Creating the series would exceed the registry's cardinality limit.
    #[error("series limit of {limit} reached: refusing new series {name}")]
    CardinalityLimit {
        /// The metric whose new series was refused.
        name: String,
        /// The configured limit.
        limit: usize,
    },
}
