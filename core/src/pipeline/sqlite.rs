//! The durable store: SQLite (bundled), in WAL mode, one transaction per pipeline step.
//!
//! Tables: `incidents` (open ones, and closed ones kept for their history until they age
//! out), `outbox` (each notification is written before its first attempt and removed when
//! it is delivered or given up), `silences`, `events` (the history, kept by count and by
//! age), `item_states` (the evaluator's state of items that are not at rest, so holds and
//! occurrence counts resume after a restart), `slo_states` (each SLO's rings of good and total
//! events, so budgets and burn-rate windows continue; schema 2), `learned_states` (what each
//! item of an anomaly rule learned; schema 3), `log_offsets` (where each `[[log]]` stopped
//! reading, with its counts; schema 3), `requests` (acks and silences asked by another
//! process, such as the command line, for the running pipeline to apply) and `meta` (the
//! store's random identity, made with the database, part of every idempotency key). Rows hold JSON documents of the pipeline's types beside the columns
//! queries filter on.
//!
//! Crash safety: with WAL and `synchronous = NORMAL` a committed step survives the process
//! being killed (it may be lost only if the machine itself loses power). One process owns a
//! database at a time (a lock file beside it); others may read it and queue requests.
//!
//! Disk use: the write-ahead log is folded into the database once it holds
//! [`WAL_CHECKPOINT_PAGES`] pages, on a thread of its own (`checkpointer.rs`: a commit does not
//! wait for it unless a storm outpaces the thread past 1,024 pages), and cut back to [`WAL_KEEP_BYTES`] when it starts over, so it stays small
//! beside the database. (SQLite's default waits for 1000 pages, 4 MiB: on a small disk the log alone
//! filled it, and a log can only be emptied by copying it into the database, which then had
//! no room to grow; the store stayed failing with the disk full of its own log.) After a
//! failed commit the next one first folds the log in and truncates it, so space the log held
//! comes back too.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::event::{Event, HistoryQuery};
use super::incident::Incident;
use super::notification::Notification;
use super::request::StoreRequest;
use super::settings::OnCorrupt;
use super::silence::Silence;
use super::store::{Store, StoreChange, StoreError, StoredState};

mod checkpointer;
mod write;
use crate::clock::Timestamp;
use crate::eval::ItemSnapshot;

/// The schema this version writes; databases at a higher version are refused.
pub const SCHEMA_VERSION: u32 = 3;

/// The statements that bring a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE incidents (
         id INTEGER PRIMARY KEY, open INTEGER NOT NULL, item TEXT NOT NULL, rule TEXT NOT NULL,
         changed_at INTEGER NOT NULL, data TEXT NOT NULL);
     CREATE INDEX incidents_open ON incidents(open);
     CREATE TABLE outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, key TEXT NOT NULL,
         data TEXT NOT NULL);
     CREATE TABLE silences (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
         incident INTEGER, item TEXT, rule TEXT, data TEXT NOT NULL);
     CREATE INDEX events_at ON events(at);
     CREATE INDEX events_item ON events(item, seq);
     CREATE INDEX events_rule ON events(rule, seq);
     CREATE INDEX events_incident ON events(incident, seq);
     CREATE TABLE item_states (rule TEXT NOT NULL, labels TEXT NOT NULL, data TEXT NOT NULL,
         PRIMARY KEY (rule, labels));
     CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL,
         created_at INTEGER NOT NULL, done_at INTEGER, result TEXT);",
    // 1 → 2
    "CREATE TABLE slo_states (name TEXT PRIMARY KEY, data TEXT NOT NULL);",
    // 2 → 3: what anomaly rules learned (a row per item, gone when its points aged out) and
    // where each [[log]] stopped reading.
    "CREATE TABLE learned_states (rule TEXT NOT NULL, labels TEXT NOT NULL, data TEXT NOT NULL,
         expires INTEGER NOT NULL, PRIMARY KEY (rule, labels));
     CREATE TABLE log_offsets (log TEXT PRIMARY KEY, data TEXT NOT NULL);",
];

/// How many pages the write-ahead log may hold before SQLite folds it into the database
/// (512 KiB at the default 4 KiB page).
pub(crate) const WAL_CHECKPOINT_PAGES: u32 = 128;

/// What the write-ahead log is cut back to when it starts over (a large step, such as a
/// checkpoint of 100 000 items, may grow it past this for a while).
pub(crate) const WAL_KEEP_BYTES: u64 = 1 << 20;

/// A SQLite database holding the pipeline's state.
pub struct SqliteStore {
    conn: Connection,
    path: Option<PathBuf>,
    limit: usize,
    max_age: Duration,
    commits: u64,
    /// Folds the log into the database off the commit path (file-backed owners only).
    checkpointer: Option<checkpointer::Checkpointer>,
    /// Whether the last commit failed (the next one first folds the log in).
    last_failed: bool,
    /// Holds the owner lock while the store is open (none for readers and memory).
    _lock: Option<File>,
    /// Where a damaged file was moved, if it was.
    moved_aside: Option<PathBuf>,
}

fn sql_error(path: &Option<PathBuf>, e: rusqlite::Error) -> StoreError {
    let where_ = path.as_ref().map_or_else(
        || "the in-memory database".to_owned(),
        |p| p.display().to_string(),
    );
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt {
                path: path.clone().unwrap_or_default(),
                message: e.to_string(),
            }
        }
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Locked {
                path: path.clone().unwrap_or_default(),
            }
        }
        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen) => StoreError::Open {
            path: path.clone().unwrap_or_default(),
            message: format!("{e} (is the file or its directory read-only?)"),
        },
        _ => StoreError::Io(format!("{where_}: {e}")),
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Io(format!("cannot encode: {e}")))
}

fn unjson<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Io(format!("cannot decode a stored row: {e}")))
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and takes ownership of it for this process;
    /// a damaged file is refused or moved aside as `on_corrupt` says. The history keeps at
    /// most `limit` events, none older than `max_age`.
    pub fn open(
        path: &Path,
        on_corrupt: OnCorrupt,
        limit: usize,
        max_age: Duration,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                message: format!("cannot create the directory {}: {e}", dir.display()),
            })?;
        }
        let lock = owner_lock(path)?;
        match SqliteStore::open_owned(path, limit, max_age, lock) {
            Err(StoreError::Corrupt { message, .. }) if on_corrupt == OnCorrupt::Recreate => {
                let aside = move_aside(path)?;
                log::warn!(
                    target: "vigilo::pipeline",
                    "store {} is damaged ({message}); moved to {} and starting afresh",
                    path.display(),
                    aside.display()
                );
                let lock = owner_lock(path)?;
                let mut store = SqliteStore::open_owned(path, limit, max_age, lock)?;
                store.moved_aside = Some(aside);
                Ok(store)
            }
            other => other,
        }
    }

    fn open_owned(
        path: &Path,
        limit: usize,
        max_age: Duration,
        lock: File,
    ) -> Result<SqliteStore, StoreError> {
        let p = Some(path.to_owned());
        let conn = Connection::open(path).map_err(|e| sql_error(&p, e))?;
        let mut store = SqliteStore {
            conn,
            path: p,
            limit: limit.max(1),
            max_age,
            commits: 0,
            last_failed: false,
            checkpointer: None,
            _lock: Some(lock),
            moved_aside: None,
        };
        store.prepare(true)?;
        store.checkpointer = Some(checkpointer::Checkpointer::start(path, &mut store.conn)?);
        Ok(store)
    }

    /// A store in memory: the same code and schema, lost at exit.
    pub fn in_memory(limit: usize, max_age: Duration) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| sql_error(&None, e))?;
        let mut store = SqliteStore {
            conn,
            path: None,
            limit: limit.max(1),
            max_age,
            commits: 0,
            last_failed: false,
            checkpointer: None,
            _lock: None,
            moved_aside: None,
        };
        store.prepare(true)?;
        Ok(store)
    }

    /// Opens an existing database to read it and queue requests while its owner runs (the
    /// command line does this). Refuses a database of a newer schema.
    pub fn open_shared(path: &Path) -> Result<SqliteStore, StoreError> {
        let p = Some(path.to_owned());
        if !path.exists() {
            return Err(StoreError::Open {
                path: path.to_owned(),
                message: "no such database".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(&p, e))?;
        let mut store = SqliteStore {
            conn,
            path: p,
            limit: usize::MAX,
            max_age: Duration::MAX,
            commits: 0,
            last_failed: false,
            checkpointer: None,
            _lock: None,
            moved_aside: None,
        };
        store.prepare(false)?;
        Ok(store)
    }

    /// The file, if not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where a damaged file was moved when the store started afresh, if it was.
    pub fn moved_aside(&self) -> Option<&Path> {
        self.moved_aside.as_deref()
    }

    fn prepare(&mut self, migrate: bool) -> Result<(), StoreError> {
        let p = self.path.clone();
        let e = |e| sql_error(&p, e);
        self.conn.busy_timeout(Duration::from_secs(2)).map_err(e)?;
        if self.path.is_some() {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(e)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Open {
                    path: self.path.clone().unwrap_or_default(),
                    message: format!("cannot use WAL mode (journal mode is {mode})"),
                });
            }
            self.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(e)?;
            self.conn
                .pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
                .map_err(e)?;
            // Answers with the limit set, hence a query rather than an update.
            let _: i64 = self
                .conn
                .query_row(
                    &format!("PRAGMA journal_size_limit = {WAL_KEEP_BYTES}"),
                    [],
                    |r| r.get(0),
                )
                .map_err(e)?;
            let check: String = self
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(e)?;
            if check != "ok" {
                return Err(StoreError::Corrupt {
                    path: self.path.clone().unwrap_or_default(),
                    message: check,
                });
            }
        }
        let version: u32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(e)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone().unwrap_or_default(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            if !migrate {
                return Err(StoreError::Io(format!(
                    "the database is at schema {version}; start vigilo once to migrate it to {SCHEMA_VERSION}"
                )));
            }
            let tx = self.conn.transaction().map_err(e)?;
            for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(step).map_err(|err| {
                    StoreError::Io(format!("migrating the store to schema {}: {err}", i + 1))
                })?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(e)?;
            tx.commit().map_err(e)?;
        }
        if migrate {
            // Made once, with the database: a recreated database gets a new one.
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('identity', ?1)",
                    [new_identity()?],
                )
                .map_err(e)?;
        }
        Ok(())
    }

    /// The store's identity (see [`StoredState::identity`]).
    pub fn identity(&self) -> Result<String, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'identity'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(v.unwrap_or_default())
    }

    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    /// Open incidents as stored (for readers such as the command line).
    pub fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM incidents WHERE open = 1 ORDER BY id")
            .map_err(|e| sql_error(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(unjson(&r.map_err(|e| sql_error(&self.path, e))?)?);
        }
        Ok(out)
    }

    /// Silences as stored.
    pub fn stored_silences(&self) -> Result<Vec<Silence>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM silences ORDER BY id")
            .map_err(|e| sql_error(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out = Vec::new();
        for r in rows {
            let mut s: Silence = unjson(&r.map_err(|e| sql_error(&self.path, e))?)?;
            s.compile().map_err(StoreError::Io)?;
            out.push(s);
        }
        Ok(out)
    }

    /// Queues a request for the pipeline that owns the database; returns its number.
    pub fn submit(&self, request: &StoreRequest, now: Timestamp) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO requests (data, created_at) VALUES (?1, ?2)",
                params![json(request)?, now.as_nanos()],
            )
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The outcome of request `id`, once the owner has handled it.
    pub fn request_result(&self, id: i64) -> Result<Option<Result<String, String>>, StoreError> {
        let row: Option<(Option<i64>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT done_at, result FROM requests WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(match row {
            Some((Some(_), Some(r))) => Some(unjson::<Result<String, String>>(&r)?),
            _ => None,
        })
    }

    /// The stored size of the database in bytes (pages in use).
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| sql_error(&self.path, e))?;
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(u64::try_from(pages * size).unwrap_or(0))
    }
}

/// 64 random bits from the operating system, in hex: a store's identity.
pub(crate) fn new_identity() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(format!("no randomness for the store's identity: {e}")))?;
    Ok(format!("{:016x}", u64::from_le_bytes(bytes)))
}

/// Takes the owner lock of `path` (a `.lock` file beside it): one pipeline per database.
fn owner_lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = with_suffix(path, ".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: format!("cannot create the lock file {}: {e}", lock_path.display()),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Open {
            path: path.to_owned(),
            message: format!("cannot lock {}: {e}", lock_path.display()),
        }),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves a damaged database (and its WAL files) aside.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = with_suffix(path, &format!(".corrupt-{secs}"));
    std::fs::rename(path, &aside).map_err(|e| StoreError::Open {
        path: path.to_owned(),
        message: format!("cannot move the damaged file aside: {e}"),
    })?;
    for ext in ["-wal", "-shm"] {
        let f = with_suffix(path, ext);
        if f.exists() {
            let _ = std::fs::rename(&f, with_suffix(&aside, ext));
        }
    }
    Ok(aside)
}

impl Store for SqliteStore {
    fn load(&mut self) -> Result<StoredState, StoreError> {
        let p = self.path.clone();
        let e = |e| sql_error(&p, e);
        let mut state = StoredState {
            incidents: self.open_incidents()?,
            silences: self.stored_silences()?,
            ..StoredState::default()
        };
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM outbox ORDER BY id")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for r in rows {
            state.outbox.push(unjson::<Notification>(&r.map_err(e)?)?);
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM item_states")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for r in rows {
            state
                .item_states
                .push(unjson::<ItemSnapshot>(&r.map_err(e)?)?);
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM slo_states")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for r in rows {
            state.slo_states.push(unjson(&r.map_err(e)?)?);
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM learned_states")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for r in rows {
            state.learned.push(unjson(&r.map_err(e)?)?);
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM log_offsets")
            .map_err(e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
        for r in rows {
            state.log_offsets.push(unjson(&r.map_err(e)?)?);
        }
        drop(stmt);
        state.last_incident = self.counter("incident")?;
        state.last_notification = self.counter("notification")?;
        state.last_silence = self.counter("silence")?;
        state.last_event = self.counter("event")?;
        state.identity = self.identity()?;
        Ok(state)
    }

    fn commit(&mut self, changes: &[StoreChange]) -> Result<(), StoreError> {
        if self.last_failed && self.path.is_some() {
            // Best effort: on a full disk this may fail too (the database has no room for
            // the log's pages); the commit below then says why.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let result = self.write_step(changes);
        self.last_failed = result.is_err();
        result
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from("SELECT data FROM events WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(i) = query.incident {
            sql.push_str(" AND incident = ?");
            args.push(i64::try_from(i.0).unwrap_or(i64::MAX).into());
        }
        if let Some(item) = &query.item {
            sql.push_str(" AND item = ?");
            args.push(item.clone().into());
        }
        if let Some(rule) = &query.rule {
            sql.push_str(" AND rule = ?");
            args.push(rule.clone().into());
        }
        if let Some(s) = query.since {
            sql.push_str(" AND at >= ?");
            args.push(s.as_nanos().into());
        }
        if let Some(u) = query.until {
            sql.push_str(" AND at < ?");
            args.push(u.as_nanos().into());
        }
        if !query.kinds.is_empty() {
            sql.push_str(" AND kind IN (");
            for (i, k) in query.kinds.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(k.name().to_owned().into());
            }
            sql.push(')');
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        args.push(i64::try_from(query.limit).unwrap_or(i64::MAX).into());
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| sql_error(&self.path, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out: Vec<Event> = Vec::new();
        for r in rows {
            out.push(unjson(&r.map_err(|e| sql_error(&self.path, e))?)?);
        }
        out.reverse();
        Ok(out)
    }

    fn take_requests(&mut self) -> Result<Vec<(i64, StoreRequest)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, data FROM requests WHERE done_at IS NULL ORDER BY id")
            .map_err(|e| sql_error(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| sql_error(&self.path, e))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, data) = r.map_err(|e| sql_error(&self.path, e))?;
            match unjson::<StoreRequest>(&data) {
                Ok(req) => out.push((id, req)),
                Err(err) => {
                    log::warn!(target: "vigilo::pipeline", "request {id} unreadable: {err}")
                }
            }
        }
        Ok(out)
    }
}
