//! Why a rule was refused.

/// A rule that cannot be evaluated as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule has no name, or a name with characters other than `[A-Za-z0-9_.:-]`.
    #[error("invalid rule name {0:?}: use letters, digits, '_', '.', ':' or '-'")]
    InvalidName(String),
    /// The name is one vigilo gives its own meta-alerts (`vigilo_channel_failing`,
    /// `vigilo_store_failing`, `vigilo_rate_limited`).
    #[error("rule name {0:?} is reserved for vigilo's own meta-alerts; choose another")]
    ReservedName(String),
    /// The metric name is not a valid Prometheus name.
    #[error("rule {rule}: invalid metric name {metric:?}")]
    InvalidMetric {
        /// The rule.
        rule: String,
        /// The metric it names.
        metric: String,
    },
    /// No level has a threshold and no no-data severity is set: the rule could never fire.
    #[error(
        "rule {0}: no levels: give a threshold for at least one of info, warning, minor, major, critical"
    )]
    NoLevels(String),
    /// A level was given twice.
    #[error("rule {rule}: level {level} given twice")]
    DuplicateLevel {
        /// The rule.
        rule: String,
        /// The repeated level.
        level: crate::Severity,
    },
    /// `normal` cannot have a threshold.
    #[error("rule {0}: normal is the absence of every level and takes no threshold")]
    NormalLevel(String),
    /// Thresholds do not rise (for `above`) or fall (for `below`) with the level.
    #[error(
        "rule {rule}: thresholds out of order for comparison {comparison}: {lower} has {lower_threshold} \
         but {higher} has {higher_threshold}; each higher level needs a threshold further {comparison}"
    )]
    ThresholdOrder {
        /// The rule.
        rule: String,
        /// `above` or `below`.
        comparison: super::Comparison,
        /// The lower level.
        lower: crate::Severity,
        /// Its threshold.
        lower_threshold: f64,
        /// The higher level.
        higher: crate::Severity,
        /// Its threshold.
        higher_threshold: f64,
    },
    /// A threshold or clear threshold is NaN or infinite.
    #[error("rule {rule}: {what} of {level} is not a finite number")]
    NonFinite {
        /// The rule.
        rule: String,
        /// The level.
        level: crate::Severity,
        /// `threshold` or `clear`.
        what: &'static str,
    },
    /// A clear threshold is on the firing side of its threshold.
    #[error(
        "rule {rule}: clear threshold {clear} of {level} must be at or {side} its threshold {threshold} \
         (hysteresis clears on the other side)"
    )]
    ClearSide {
        /// The rule.
        rule: String,
        /// The level.
        level: crate::Severity,
        /// The clear threshold.
        clear: f64,
        /// The threshold.
        threshold: f64,
        /// `below` or `above`.
        side: &'static str,
    },
    /// `occurrences` of zero, or more than one without a `within` window long enough to hold them.
    #[error("rule {rule}: level {level}: {reason}")]
    Occurrences {
        /// The rule.
        rule: String,
        /// The level.
        level: crate::Severity,
        /// What is wrong.
        reason: String,
    },
    /// A percentile outside `0..=100`, or one on a metric that is not a histogram.
    #[error("rule {rule}: {reason}")]
    Aggregation {
        /// The rule.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// A windowed aggregation with a zero window.
    #[error("rule {0}: aggregation needs a window longer than zero")]
    EmptyWindow(String),
    /// A label matcher's regular expression does not compile.
    #[error("rule {rule}: matcher on {label}: {reason}")]
    Matcher {
        /// The rule.
        rule: String,
        /// The label.
        label: String,
        /// The regex error.
        reason: String,
    },
    /// Flap detection with zero changes or a zero window.
    #[error("rule {0}: flap detection needs changes > 0 and a window > 0")]
    Flap(String),
    /// An annotation template uses an unknown variable or is malformed.
    #[error("rule {rule}: annotation {annotation}: {reason}")]
    Template {
        /// The rule.
        rule: String,
        /// The annotation key.
        annotation: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule is malformed.
    #[error("rule {rule}: schedule: {reason}")]
    Schedule {
        /// The rule.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// `no_data.after` is zero, or shorter than the evaluator's tick (silence is only
    /// noticed at a tick, so a shorter wait would put a healthy item in no data between samples).
    #[error(
        "rule {rule}: no_data.after ({after:?}) must be at least the evaluation tick{}",
        tick.map_or_else(String::new, |t| format!(" ({t:?})"))
    )]
    NoDataAfter {
        /// The rule.
        rule: String,
        /// The wait given.
        after: std::time::Duration,
        /// The evaluator's tick, when known.
        tick: Option<std::time::Duration>,
    },
    /// `empty_window` on a rule without a window.
    #[error(
        "rule {0}: empty_window applies only to a windowed aggregation: set `window` or remove it"
    )]
    EmptyWindowOption(String),
}
