//! One followed file: reading it line by line from an offset, with a line-length bound, and
//! recognising it again (device, inode, a hash of its first bytes).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::checkpoint::FilePosition;

/// Bytes hashed at the start of a file to recognise it.
const HEAD: u64 = 64;
/// Bytes read at most per call besides the line bound.
const CHUNK: usize = 64 * 1024;

/// Where to start reading a file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// From its first byte (a file that appeared while it was followed).
    Beginning,
    /// After its last complete line (a file found at the first start).
    End,
    /// Where a checkpoint left it.
    At { offset: u64, cut: bool },
}

/// A file being read.
pub(super) struct Followed {
    pub(super) path: PathBuf,
    file: File,
    pub(super) device: u64,
    pub(super) inode: u64,
    /// The first byte not read yet: the start of a line, or inside a cut line.
    pos: u64,
    /// Inside a line already counted (cut at the bound): skip to its end.
    cut: bool,
    head: u64,
    head_len: u32,
}

/// FNV-1a, 64 bits: enough to tell two files' first bytes apart.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The device, inode and length of the file at `path`.
pub(super) fn identity(path: &Path) -> io::Result<(u64, u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino(), m.len()))
}

impl Followed {
    /// Opens `path` and places the reading position as `start` says.
    pub(super) fn open(path: &Path, start: Start) -> io::Result<Followed> {
        let file = File::open(path)?;
        let m = file.metadata()?;
        let mut f = Followed {
            path: path.to_owned(),
            file,
            device: m.dev(),
            inode: m.ino(),
            pos: 0,
            cut: false,
            head: 0,
            head_len: 0,
        };
        match start {
            Start::Beginning => {}
            Start::At { offset, cut } => {
                f.pos = offset.min(m.len());
                f.cut = cut && offset <= m.len();
            }
            Start::End => f.seek_end(m.len())?,
        }
        f.note_head()?;
        Ok(f)
    }

    /// Places the position after the last complete line of a file of `len` bytes.
    fn seek_end(&mut self, len: u64) -> io::Result<()> {
        let from = len.saturating_sub(CHUNK as u64);
        let mut tail = vec![0; usize::try_from(len - from).unwrap_or(CHUNK)];
        let n = self.file.read_at(&mut tail, from)?;
        match memchr::memrchr(b'\n', &tail[..n]) {
            Some(i) => self.pos = from + i as u64 + 1,
            // A line that began before we looked: skip the rest of it.
            None if len > 0 => {
                self.pos = len;
                self.cut = true;
            }
            None => self.pos = 0,
        }
        Ok(())
    }

    /// Hashes the first bytes once enough has been read (up to [`HEAD`]).
    fn note_head(&mut self) -> io::Result<()> {
        let want = self.pos.min(HEAD);
        if want > u64::from(self.head_len) {
            let mut head = [0u8; HEAD as usize];
            let n = self.file.read_at(&mut head[..want as usize], 0)?;
            self.head = fnv(&head[..n]);
            self.head_len = u32::try_from(n).unwrap_or(0);
        }
        Ok(())
    }

    /// True if the file now starts with other bytes than those it was recognised by, or is
    /// shorter than what was read: it was truncated (and perhaps written again).
    pub(super) fn truncated(&self, len: u64) -> io::Result<bool> {
        if len < self.pos {
            return Ok(true);
        }
        if self.head_len == 0 {
            return Ok(false);
        }
        let mut head = [0u8; HEAD as usize];
        let n = self.file.read_at(&mut head[..self.head_len as usize], 0)?;
        Ok(n != self.head_len as usize || fnv(&head[..n]) != self.head)
    }

    /// Whether `path` holds this file's first bytes and at least `self.pos` of them: a copy of
    /// it (copy-truncate rotation).
    pub(super) fn is_copied_to(&self, path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        if self.head_len == 0 || file.metadata().map_or(true, |m| m.len() < self.pos) {
            return false;
        }
        let mut head = [0u8; HEAD as usize];
        let n = file
            .read_at(&mut head[..self.head_len as usize], 0)
            .unwrap_or(0);
        n == self.head_len as usize && fnv(&head[..n]) == self.head
    }

    /// Starts over from the first byte (the file was truncated).
    pub(super) fn rewind(&mut self) {
        self.pos = 0;
        self.cut = false;
        self.head = 0;
        self.head_len = 0;
    }

    /// Bytes in the file not read yet.
    pub(super) fn behind(&self) -> u64 {
        self.file
            .metadata()
            .map_or(0, |m| m.len().saturating_sub(self.pos))
    }

    /// Reads complete lines from the position, at most about `budget` bytes, handing each
    /// (cut to `max_line` bytes, without its `\n`) to `each`. A line not complete yet waits
    /// for the next call; a line longer than `max_line` is handed over cut as soon as its
    /// first `max_line` bytes are there, and the rest of it is skipped. `buf` is the reading
    /// buffer (grown to `CHUNK + max_line` once). Returns the bytes consumed.
    pub(super) fn read(
        &mut self,
        budget: u64,
        max_line: usize,
        buf: &mut Vec<u8>,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<u64> {
        let max_line = max_line.max(1);
        if buf.len() < CHUNK + max_line {
            buf.resize(CHUNK + max_line, 0);
        }
        let mut consumed = 0u64;
        while consumed < budget {
            let n = self.file.read_at(buf, self.pos)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            let mut start = 0;
            if self.cut {
                match memchr::memchr(b'\n', chunk) {
                    Some(i) => {
                        start = i + 1;
                        self.cut = false;
                    }
                    None => start = n,
                }
            }
            let from = start;
            for end in memchr::memchr_iter(b'\n', &chunk[from..]).map(|i| from + i) {
                let line = &chunk[start..end];
                each(&line[..line.len().min(max_line)]);
                start = end + 1;
            }
            if n - start >= max_line {
                // A line longer than the bound, its end not in sight: count it cut now and
                // hold none of it.
                each(&chunk[start..start + max_line]);
                self.cut = true;
                start = n;
            }
            self.pos += start as u64;
            consumed += start as u64;
            if n < buf.len() || start == 0 {
                // The end of the file (a line still being written waits), or nothing whole.
                break;
            }
        }
        self.note_head()?;
        Ok(consumed)
    }

    /// The file is done with (rotated away and read to its end): a last line without its
    /// `\n` is a line too.
    pub(super) fn finish(&mut self, max_line: usize, mut each: impl FnMut(&[u8])) {
        if self.cut {
            return;
        }
        let mut rest = vec![0u8; max_line.max(1)];
        if let Ok(n) = self.file.read_at(&mut rest, self.pos)
            && n > 0
        {
            each(&rest[..n]);
            self.pos += n as u64;
        }
    }

    /// Where reading stands, for a checkpoint.
    pub(super) fn position(&self) -> FilePosition {
        FilePosition {
            path: self.path.clone(),
            device: self.device,
            inode: self.inode,
            offset: self.pos,
            head: self.head,
            head_len: self.head_len,
            cut: self.cut,
        }
    }

    /// True if the checkpoint `p` describes this file as it is (same identity and first
    /// bytes, not shorter than the offset).
    pub(super) fn matches(&self, p: &FilePosition) -> bool {
        if (self.device, self.inode) != (p.device, p.inode) {
            return false;
        }
        let len = self.file.metadata().map_or(0, |m| m.len());
        if len < p.offset {
            return false;
        }
        if p.head_len == 0 {
            return true;
        }
        let mut head = [0u8; HEAD as usize];
        let want = (p.head_len as usize).min(head.len());
        let n = self.file.read_at(&mut head[..want], 0).unwrap_or(0);
        n == want && fnv(&head[..n]) == p.head
    }
}
