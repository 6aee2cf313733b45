//! One `[[log]]`, validated: what to follow, what to count, and the bounds.

use std::time::Duration;

/// The counter a `[[log]]` counts matching lines into, unless it names its own.
pub const DEFAULT_METRIC: &str = "log_lines_matched_total";
/// Every line read, per `[[log]]` (`{log}` only).
pub const LINES_METRIC: &str = "log_lines_read_total";
/// Bytes written to the followed files and not read yet, per `[[log]]` (the watcher is
/// behind a file that grows faster than its per-poll budget).
pub const BEHIND_METRIC: &str = "log_bytes_behind";
/// The value a captured label takes once the log's series reached `max_series`.
pub const OVERFLOW_VALUE: &str = "_other";

/// One `[[log]]`: follow the files at `path` (a path or a glob) and count the lines matching
/// `pattern` into the counter `metric{log = name, <captures>, <labels>}`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogSpec {
    /// Unique among the logs; the series' `log` label.
    pub name: String,
    /// A file, or a glob such as `/var/log/app/*.log` (`*`, `?`, `[…]`, `**`).
    pub path: String,
    /// Lines matching it are counted; its named groups become labels.
    pub pattern: regex::bytes::Regex,
    /// The counter (default [`DEFAULT_METRIC`]).
    pub metric: String,
    /// Labels added to every series of this log.
    pub labels: Vec<(String, String)>,
    /// At most this many series from the captured labels (default 100); further values are
    /// counted under [`OVERFLOW_VALUE`].
    pub max_series: usize,
    /// A line longer than this many bytes is cut: its first `max_line` bytes are matched, the
    /// rest skipped (default 64 KiB).
    pub max_line: usize,
    /// How often the files are looked at (default 1 s).
    pub poll: Duration,
    /// At most this many bytes are read from one file in one poll (default 64 MiB); the rest
    /// waits for the next poll (see [`BEHIND_METRIC`]).
    pub max_read: u64,
    /// Where a file that exists at the first start (with nothing saved) is read from: its end
    /// (the default: only new lines count) or its start.
    pub from_start: bool,
}

impl LogSpec {
    /// A log named `name` following `path`, counting lines that match `pattern`, with the
    /// defaults.
    pub fn new(
        name: impl Into<String>,
        path: impl Into<String>,
        pattern: regex::bytes::Regex,
    ) -> Self {
        LogSpec {
            name: name.into(),
            path: path.into(),
            pattern,
            metric: DEFAULT_METRIC.to_owned(),
            labels: Vec::new(),
            max_series: 100,
            max_line: 64 * 1024,
            poll: Duration::from_secs(1),
            max_read: 64 * 1024 * 1024,
            from_start: false,
        }
    }

    /// The label names the pattern's named groups give, in group order.
    pub fn captured_labels(&self) -> impl Iterator<Item = &str> {
        self.pattern.capture_names().flatten()
    }
}

impl PartialEq for LogSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.path == other.path
            && self.pattern.as_str() == other.pattern.as_str()
            && self.metric == other.metric
            && self.labels == other.labels
            && self.max_series == other.max_series
            && self.max_line == other.max_line
            && self.poll == other.poll
            && self.max_read == other.max_read
            && self.from_start == other.from_start
    }
}
