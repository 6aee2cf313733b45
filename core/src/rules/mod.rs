//! Rules: what to watch, how to aggregate it, and the ladder of Normal and five levels.

pub mod aggregation;
mod comparison;
mod error;
mod rule;
mod schedule;
pub(crate) mod template;

pub use aggregation::{Aggregation, Anomaly, Direction, Season, TimeLeft};
pub use comparison::Comparison;
pub use error::RuleError;
pub(crate) use rule::RESERVED_NAMES;
pub use rule::{EmptyWindow, Flap, Level, Matcher, NoData, Rule, RuleBuilder, WhenClosed};
pub use schedule::Schedule;

#[doc = include_str!("SEMANTICS.md")]
pub mod semantics {}
