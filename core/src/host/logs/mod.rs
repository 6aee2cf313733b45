//! Log watching (`[[log]]`): follow files by path or glob and count the lines that match a
//! regex into a counter, which rules watch like any other (`rate` over a window, `increase`,
//! occurrences).
//!
//! ```toml
//! [[log]]
//! name = "app"                              # the series' `log` label; unique
//! path = "/var/log/app/*.log"               # a file or a glob
//! pattern = 'level=(?P<level>error|fatal)'  # named groups become labels
//! metric = "log_lines_matched_total"        # the default
//! labels = { team = "ops" }                 # added to every series
//! max_series = 100                          # captured value sets at most (then `_other`)
//! max_line = 65536                          # bytes; longer lines are cut
//! poll = "1s"
//! max_read = 67108864                       # bytes per file per poll
//! from_start = false                        # first start: only lines written from now on
//! ```
//!
//! Each log counts the matching lines into `metric{log, <captures>, <labels>}`, every line
//! read into `log_lines_read_total{log}`, and says how far behind it is in
//! `log_bytes_behind{log}`. `LogWatcher` has the rules for rotation, restarts and bounds;
//! `LogRunner` polls every log on the `vigilo-logs` thread. The monitor saves each log's
//! [`LogCheckpoint`] (offsets and counts together) in the store at every checkpoint and at
//! stop, and resumes from it. Needs the `logs` feature (the default); the checkpoint types
//! are always there, so a store keeps its table either way. Unix only (files are recognised
//! by device and inode).

mod checkpoint;
#[cfg(feature = "logs")]
mod counts;
#[cfg(feature = "logs")]
mod file;
#[cfg(feature = "logs")]
mod runner;
mod spec;
#[cfg(feature = "logs")]
mod watcher;

pub use checkpoint::{FilePosition, LogCheckpoint};
#[cfg(feature = "logs")]
pub use runner::LogRunner;
pub use spec::{BEHIND_METRIC, DEFAULT_METRIC, LINES_METRIC, LogSpec, OVERFLOW_VALUE};
#[cfg(feature = "logs")]
pub use watcher::{LogWatcher, PollStats};
