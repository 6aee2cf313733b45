//! Rules: what to watch, how to aggregate it, and the five-level ladder of thresholds.

mod error;
mod rule;
mod schedule;
pub(crate) mod template;

pub use error::RuleError;
pub use rule::{Aggregation, Comparison, Flap, Level, Matcher, NoData, Rule, RuleBuilder};
pub use schedule::Schedule;
