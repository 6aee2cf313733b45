//! The severity evaluator: rules in, transitions out.
//!
//! Each [`tick`](Evaluator::tick) samples only the series that rules reference into per-series
//! windows and evaluates every item (rule × series). Between ticks the registry's watches wake
//! the evaluator when a record crosses a bound that would change an item's state, so a rule
//! without a duration reports within a millisecond of the record (p99 57 µs, `BENCHMARKS.md`;
//! a record racing the arming of its watch is caught too, see `arming.rs`), and durations are
//! timed from the crossing. Every change goes out as a [`Transition`] on a bounded channel.

mod arming;
mod bind;
mod config;
mod evaluator;
mod learning;
mod outbox;
mod persist;
mod runner;
pub(crate) mod state;
mod transition;
mod window;

pub use crate::rules::aggregation::LearnedSnapshot;
pub use config::EvaluatorConfig;
pub use evaluator::{Evaluator, EvaluatorStats, ItemView};
pub use persist::ItemSnapshot;
pub use runner::EvaluatorHandle;
pub use transition::{Told, Transition};

/// Why the evaluator refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Two rules share a name.
    #[error("two rules are named {0:?}; rule names must be unique")]
    DuplicateRule(String),
    /// The registry's watch channel already feeds another evaluator.
    #[error("this registry already feeds an evaluator; use one evaluator per registry")]
    WatchTaken,
    /// The evaluator thread could not be started.
    #[error("cannot start the evaluator thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A rule cannot run under this evaluator (its no-data wait is shorter than the tick).
    #[error(transparent)]
    Rule(#[from] crate::rules::RuleError),
    /// The evaluator thread has stopped.
    #[error("the evaluator thread has stopped")]
    Stopped,
}
