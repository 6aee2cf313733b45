//! One `[[log]]` followed: which files its path or glob names now, rotation by rename and by
//! copy-truncate, files that appear later, and resuming from a checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::checkpoint::{FilePosition, LogCheckpoint};
use super::counts::Counts;
use super::file::{Followed, Start, identity};
use super::spec::{BEHIND_METRIC, LogSpec};
use crate::metrics::{Gauge, Registry};

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollStats {
    /// Bytes read.
    pub bytes: u64,
    /// Files followed after the poll (rotated files still being read included).
    pub files: usize,
    /// Bytes written and not read yet (the per-poll budget was reached).
    pub behind: u64,
}

/// Follows the files of one `[[log]]` and counts its lines. [`poll`](Self::poll) reads what
/// is new; [`checkpoint`](Self::checkpoint) says where it stands, to resume after a restart.
///
/// - **Start.** A file that exists at the first start, with nothing saved, is read from its
///   end (`from_start` reads it whole): only lines written from then on count.
/// - **Resume.** Given a checkpoint, each file is recognised by its device, inode and first
///   bytes, and read from the saved offset with the counts saved with it, so a line is never
///   counted twice nor missed, even if the process died after the checkpoint. A file rotated
///   away while the process was down is found in its directory by its inode and read to its
///   end; a file at a saved path that is not the saved file, or that appeared meanwhile, is
///   read from its start.
/// - **Rename rotation.** When the path names another file, the old one is read to its end
///   (the writer may still finish a line in it) and let go after a poll with nothing new;
///   the new one is read from its start.
/// - **Copy-truncate.** When the file is shorter than what was read, or its first bytes
///   changed, it is read again from its start; the lines written between the last poll and
///   the truncation are read from the copy if the directory holds one (a file starting with
///   the same bytes, at least as long). Lines written between the copy and the truncation
///   are lost, as with every reader of a copy-truncated file.
/// - **Bounds.** One reading buffer of 64 KiB + `max_line`; a longer line is cut (matched on
///   its first `max_line` bytes, the rest skipped, never held); at most `max_read` bytes per
///   file per poll (`log_bytes_behind` says how far behind it is).
///
/// A glob should not match the rotated copies (`app.log.1`): they would be read as new files.
pub struct LogWatcher {
    spec: LogSpec,
    counts: Counts,
    current: Vec<Followed>,
    draining: Vec<Followed>,
    buf: Vec<u8>,
    /// Positions from a checkpoint, applied at the first poll.
    restored: Option<Vec<FilePosition>>,
    polled: bool,
    behind: Option<Gauge>,
    /// Paths whose last error was logged (so a missing file is said once).
    failing: HashMap<PathBuf, String>,
}

impl LogWatcher {
    /// A watcher of `spec` counting into `registry`, resuming from `checkpoint` if given (a
    /// checkpoint of another log is ignored).
    pub fn new(spec: LogSpec, registry: &Registry, checkpoint: Option<LogCheckpoint>) -> Self {
        let mut counts = Counts::new(&spec, registry);
        let checkpoint = checkpoint.filter(|c| c.log == spec.name);
        if let Some(c) = &checkpoint {
            counts.restore(&c.counts);
        }
        let behind = registry
            .gauge(BEHIND_METRIC, &[("log", spec.name.as_str())])
            .ok();
        LogWatcher {
            spec,
            counts,
            current: Vec::new(),
            draining: Vec::new(),
            buf: Vec::new(),
            restored: checkpoint.map(|c| c.files),
            polled: false,
            behind,
            failing: HashMap::new(),
        }
    }

    /// The log's settings.
    pub fn spec(&self) -> &LogSpec {
        &self.spec
    }

    /// Where reading stands and the counts at that point.
    pub fn checkpoint(&self) -> LogCheckpoint {
        let files = self
            .draining
            .iter()
            .chain(&self.current)
            .map(Followed::position)
            .collect();
        LogCheckpoint {
            log: self.spec.name.clone(),
            files,
            counts: self.counts.totals(),
        }
    }

    /// The files the path names now (regular files only), sorted.
    fn paths(&mut self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        match glob::glob(&self.spec.path) {
            Ok(paths) => {
                for p in paths {
                    match p {
                        Ok(p) if p.is_file() => out.push(p),
                        Ok(_) => {}
                        Err(e) => self.note_error(e.path(), &e.error().to_string()),
                    }
                }
            }
            Err(e) => {
                let path = PathBuf::from(&self.spec.path);
                self.note_error(&path, &e.to_string());
            }
        }
        out.sort();
        out
    }

    fn note_error(&mut self, path: &Path, error: &str) {
        if self.failing.get(path).map(String::as_str) != Some(error) {
            log::warn!(target: "vigilo::logs", "log {}: {}: {error}", self.spec.name, path.display());
            self.failing.insert(path.to_owned(), error.to_owned());
        }
    }

    /// How to start a file found at `path` now (not followed yet).
    fn start_of(&self, device: u64, inode: u64) -> Start {
        match &self.restored {
            Some(saved) if !self.polled => {
                match saved
                    .iter()
                    .find(|p| (p.device, p.inode) == (device, inode))
                {
                    Some(p) => Start::At {
                        offset: p.offset,
                        cut: p.cut,
                    },
                    // Appeared, or replaced what was saved, while the process was down.
                    None => Start::Beginning,
                }
            }
            _ if self.polled => Start::Beginning,
            _ if self.spec.from_start => Start::Beginning,
            _ => Start::End,
        }
    }

    /// At the first poll after a restart: saved files no path names any more were rotated
    /// while the process was down; found in their directory by inode, they are read to
    /// their end.
    fn find_rotated_while_down(&mut self) {
        let Some(saved) = self.restored.take() else {
            return;
        };
        for p in saved {
            let followed = self
                .current
                .iter()
                .any(|f| (f.device, f.inode) == (p.device, p.inode));
            if followed {
                continue;
            }
            let Some(dir) = p.path.parent() else { continue };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if identity(&path).is_ok_and(|(d, i, _)| (d, i) == (p.device, p.inode))
                    && let Ok(f) = Followed::open(
                        &path,
                        Start::At {
                            offset: p.offset,
                            cut: p.cut,
                        },
                    )
                {
                    if f.matches(&p) {
                        self.draining.push(f);
                    }
                    break;
                }
            }
        }
    }

    /// After a copy-truncate: the copy (in the same directory, starting with the same bytes)
    /// holds the lines written since the last poll; read them from there.
    fn read_copy_of(&mut self, f: &Followed) {
        let Some(dir) = f.path.parent() else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path == f.path || !path.is_file() {
                continue;
            }
            if f.is_copied_to(&path) {
                let p = f.position();
                if let Ok(copy) = Followed::open(
                    &path,
                    Start::At {
                        offset: p.offset,
                        cut: p.cut,
                    },
                ) {
                    self.draining.push(copy);
                }
                return;
            }
        }
    }

    /// Reads what is new in every file and adds it to the counters.
    pub fn poll(&mut self) -> PollStats {
        let paths = self.paths();
        let mut ids: HashMap<&Path, (u64, u64, u64)> = HashMap::new();
        for p in &paths {
            match identity(p) {
                Ok(id) => {
                    ids.insert(p.as_path(), id);
                }
                Err(e) => {
                    let p = p.clone();
                    self.note_error(&p, &e.to_string());
                }
            }
        }
        // Files whose path is gone or names another file now: rotated by rename.
        let mut kept = Vec::with_capacity(self.current.len());
        for f in std::mem::take(&mut self.current) {
            match ids.get(f.path.as_path()) {
                Some(&(d, i, _)) if (d, i) == (f.device, f.inode) => kept.push(f),
                _ => self.draining.push(f),
            }
        }
        self.current = kept;
        // Copy-truncate: read again from the start (the copy holds what was not read yet).
        let mut truncated = Vec::new();
        for (n, f) in self.current.iter().enumerate() {
            let len = ids.get(f.path.as_path()).map_or(0, |id| id.2);
            if f.truncated(len).unwrap_or(false) {
                truncated.push(n);
            }
        }
        for n in truncated {
            let snapshot = self.current[n].position();
            if snapshot.head_len > 0 {
                // `read_copy_of` needs the file as it was before the rewind.
                let f = std::mem::replace(
                    &mut self.current[n],
                    match Followed::open(&snapshot.path, Start::Beginning) {
                        Ok(f) => f,
                        Err(_) => continue,
                    },
                );
                self.read_copy_of(&f);
            } else {
                self.current[n].rewind();
            }
        }
        // New files.
        for p in &paths {
            if self.current.iter().any(|f| &f.path == p) {
                continue;
            }
            let Some(&(d, i, _)) = ids.get(p.as_path()) else {
                continue;
            };
            let start = self.start_of(d, i);
            match Followed::open(p, start) {
                Ok(f) => {
                    self.failing.remove(p);
                    self.current.push(f);
                }
                Err(e) => self.note_error(p, &e.to_string()),
            }
        }
        if !self.polled {
            self.find_rotated_while_down();
        }
        self.polled = true;
        let mut stats = PollStats::default();
        let (budget, max_line) = (self.spec.max_read.max(1), self.spec.max_line);
        let pattern = &self.spec.pattern;
        let counts = &mut self.counts;
        // Rotated files first (their lines are older), let go once they give nothing more.
        let mut still = Vec::with_capacity(self.draining.len());
        for mut f in std::mem::take(&mut self.draining) {
            let got = f
                .read(budget, max_line, &mut self.buf, |l| counts.line(pattern, l))
                .unwrap_or(0);
            stats.bytes += got;
            if got == 0 {
                f.finish(max_line, |l| counts.line(pattern, l));
            } else {
                still.push(f);
            }
        }
        self.draining = still;
        for f in &mut self.current {
            match f.read(budget, max_line, &mut self.buf, |l| counts.line(pattern, l)) {
                Ok(n) => stats.bytes += n,
                Err(e) => log::warn!(
                    target: "vigilo::logs",
                    "log {}: {}: {e}", self.spec.name, f.path.display()
                ),
            }
            stats.behind += f.behind();
        }
        self.counts.publish();
        stats.files = self.current.len() + self.draining.len();
        if let Some(g) = &self.behind {
            g.set(stats.behind as f64);
        }
        stats
    }
}

impl std::fmt::Debug for LogWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWatcher")
            .field("log", &self.spec.name)
            .field("files", &self.current.len())
            .field("draining", &self.draining.len())
            .finish()
    }
}
