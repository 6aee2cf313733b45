//! Folds the write-ahead log into the database on a thread of its own, so that a commit on the
//! delivery path does not wait for a checkpoint's copying and syncing (unless the thread falls
//! a long way behind, see [`INLINE_FACTOR`]).
//!
//! The owner's connection gets a WAL hook (which replaces SQLite's automatic checkpoint): after
//! a commit that leaves [`WAL_CHECKPOINT_PAGES`](super::WAL_CHECKPOINT_PAGES) or more pages in
//! the log, it wakes this thread without waiting. The thread runs a passive checkpoint on its
//! own connection: it copies what no reader still needs and never blocks the writer; once the
//! whole log is in the database, the owner's next commit starts the log over (cut back to
//! [`WAL_KEEP_BYTES`](super::WAL_KEEP_BYTES)). A checkpoint that fails (a full disk) is tried
//! again after the next commit.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::{WAL_CHECKPOINT_PAGES, sql_error};
use crate::pipeline::store::StoreError;

/// How many times [`WAL_CHECKPOINT_PAGES`] the log may reach before a commit folds it in
/// itself (1024 pages, 4 MiB: where SQLite's automatic checkpoint would have run).
const INLINE_FACTOR: i32 = 8;

enum Wake {
    Fold,
    Stop,
}

/// The checkpoint thread of one store; stopped and joined when dropped.
pub(super) struct Checkpointer {
    wake: Sender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on a connection of its own to `path` and hooks `owner`'s commits.
    pub(super) fn start(path: &Path, owner: &mut Connection) -> Result<Checkpointer, StoreError> {
        let p = Some(path.to_owned());
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(&p, e))?;
        conn.busy_timeout(Duration::from_secs(2))
            .map_err(|e| sql_error(&p, e))?;
        // A connection learns that the file is in WAL mode when it first reads it; until
        // then a checkpoint on it does nothing (and says so with -1).
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| sql_error(&p, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_owned(),
                message: format!("the checkpoint connection sees journal mode {mode}, not WAL"),
            });
        }
        // One wake-up waiting is enough: a checkpoint folds in everything committed before it.
        let (wake, woken) = crossbeam_channel::bounded(1);
        let hook = wake.clone();
        let threshold = i32::try_from(WAL_CHECKPOINT_PAGES).unwrap_or(i32::MAX);
        owner
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
                if pages >= threshold.saturating_mul(INLINE_FACTOR) {
                    // The thread fell behind a steady stream of commits (a checkpoint
                    // that finds new frames behind it cannot start the log over): fold in
                    // here, as SQLite's own automatic checkpoint would, so the log stays
                    // bounded.
                    let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                } else if pages >= threshold {
                    match hook.try_send(Wake::Fold) {
                        Ok(()) | Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
                    }
                }
                Ok(())
            }))
            .map_err(|e| sql_error(&p, e))?;
        let thread = std::thread::Builder::new()
            .name("vigilo-wal".into())
            .spawn(move || {
                while let Ok(Wake::Fold) = woken.recv() {
                    // Best effort: what it could not fold in is tried after the next commit.
                    let _ = conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE);
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Waits for a checkpoint in progress: the connection closes with the thread.
        let _ = self.wake.send(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
