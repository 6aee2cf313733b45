//! Evaluator settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_duration;

/// How the evaluator runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluatorConfig {
    /// Interval of the full sweep (default 1 s). Threshold crossings on watched series are
    /// detected between ticks, as they are recorded.
    #[serde(with = "serde_duration")]
    pub tick: Duration,
    /// Capacity of the transition channel (default 1024). When the consumer falls behind,
    /// transitions wait in a backlog instead of blocking the evaluator.
    pub channel_capacity: usize,
    /// The most transitions the backlog holds (default 100 000); beyond it the oldest are
    /// dropped and counted in the evaluator's statistics.
    pub backlog_limit: usize,
    /// Capacity of the watch-event channel from the registry (default 4096).
    pub watch_capacity: usize,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            tick: Duration::from_secs(1),
            channel_capacity: 1024,
            backlog_limit: 100_000,
            watch_capacity: 4096,
        }
    }
}
