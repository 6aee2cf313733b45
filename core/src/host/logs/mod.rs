//! Log watching (`[[log]]`): follow files by path or glob and count the lines that match a
//! regex into a counter series.
//!
//! (Filled in below.)

mod checkpoint;

pub use checkpoint::{FilePosition, LogCheckpoint};
