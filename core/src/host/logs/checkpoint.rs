//! What a `[[log]]` has read, as saved in the store: where it stopped in each file and the
//! totals of its counters at that point, written together so that a restart resumes from the
//! offset with the counts that offset had (no line counted twice, none missed).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::Labels;

/// Where one `[[log]]` stopped reading, and its counters' totals at that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogCheckpoint {
    /// The `[[log]]`'s name.
    pub log: String,
    /// Each file followed, with the offset of the first byte not counted yet.
    pub files: Vec<FilePosition>,
    /// The total of each of the log's series: `(metric, its full labels, total)`.
    pub counts: Vec<(String, Labels, u64)>,
}

/// Where reading stopped in one file, and how the file is recognised again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FilePosition {
    /// The path it was followed under.
    pub path: PathBuf,
    /// Its device and inode: a file renamed away (rotated) keeps them, a new file at the same
    /// path has others.
    pub device: u64,
    /// See `device`.
    pub inode: u64,
    /// The offset of the first byte not counted yet (the start of a line).
    pub offset: u64,
    /// A hash of the file's first bytes (up to 64), to tell a file truncated and written again
    /// past the offset (copy-truncate) from the same file grown.
    pub head: u64,
    /// How many bytes `head` covers.
    pub head_len: u32,
    /// The offset is inside a line already counted (cut at the line bound): the rest of that
    /// line is skipped.
    #[serde(default)]
    pub cut: bool,
}
