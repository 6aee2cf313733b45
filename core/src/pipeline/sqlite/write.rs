//! Writing one pipeline step: the rows each kind of change touches, in one transaction, and
//! the pruning of old history.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::params;

use super::{SqliteStore, json, sql_error};
use crate::clock::Timestamp;
use crate::pipeline::store::{StoreChange, StoreError};

impl SqliteStore {
    /// Writes one step in one transaction.
    pub(super) fn write_step(&mut self, changes: &[StoreChange]) -> Result<(), StoreError> {
        let p = self.path.clone();
        let e = |e| sql_error(&p, e);
        self.commits += 1;
        let prune = self.commits.is_multiple_of(256);
        let tx = self.conn.transaction().map_err(e)?;
        let mut newest = None;
        let bump = |tx: &rusqlite::Transaction<'_>, name: &str, v: u64| {
            exec(
                tx,
                "INSERT INTO counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
                params![name, i64::try_from(v).unwrap_or(i64::MAX)],
            )
        };
        for c in changes {
            match c {
                StoreChange::Incident(i) => {
                    bump(&tx, "incident", i.id.0).map_err(e)?;
                    exec(
                        &tx,
                        "INSERT OR REPLACE INTO incidents (id, open, item, rule, changed_at, data)
                         VALUES (?1, 1, ?2, ?3, ?4, ?5)",
                        params![
                            i64::try_from(i.id.0).unwrap_or(i64::MAX),
                            i.item.to_string(),
                            &*i.item.rule,
                            i.changed_at.as_nanos(),
                            json(&**i)?
                        ],
                    )
                    .map_err(e)?;
                }
                StoreChange::IncidentClosed(id) => {
                    exec(
                        &tx,
                        "UPDATE incidents SET open = 0 WHERE id = ?1",
                        [i64::try_from(id.0).unwrap_or(i64::MAX)],
                    )
                    .map_err(e)?;
                }
                StoreChange::Notification(n) => {
                    bump(&tx, "notification", n.id.0).map_err(e)?;
                    exec(&tx,
                        "INSERT OR REPLACE INTO outbox (id, channel, key, data) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            i64::try_from(n.id.0).unwrap_or(i64::MAX),
                            n.channel,
                            n.alert.idempotency_key,
                            json(&**n)?
                        ],
                    )
                    .map_err(e)?;
                }
                StoreChange::NotificationDone(id) => {
                    exec(
                        &tx,
                        "DELETE FROM outbox WHERE id = ?1",
                        [i64::try_from(id.0).unwrap_or(i64::MAX)],
                    )
                    .map_err(e)?;
                }
                StoreChange::Silence(s) => {
                    bump(&tx, "silence", s.id.0).map_err(e)?;
                    exec(
                        &tx,
                        "INSERT OR REPLACE INTO silences (id, data) VALUES (?1, ?2)",
                        params![i64::try_from(s.id.0).unwrap_or(i64::MAX), json(&**s)?],
                    )
                    .map_err(e)?;
                }
                StoreChange::SilenceRemoved(id) => {
                    exec(
                        &tx,
                        "DELETE FROM silences WHERE id = ?1",
                        [i64::try_from(id.0).unwrap_or(i64::MAX)],
                    )
                    .map_err(e)?;
                }
                StoreChange::Event(ev) => {
                    bump(&tx, "event", ev.seq).map_err(e)?;
                    newest = Some(ev.at);
                    exec(
                        &tx,
                        "INSERT OR REPLACE INTO events (seq, at, kind, incident, item, rule, data)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            i64::try_from(ev.seq).unwrap_or(i64::MAX),
                            ev.at.as_nanos(),
                            ev.kind.name(),
                            ev.incident.map(|i| i64::try_from(i.0).unwrap_or(i64::MAX)),
                            ev.item,
                            ev.rule,
                            json(&**ev)?
                        ],
                    )
                    .map_err(e)?;
                }
                StoreChange::ItemStates(states) => {
                    exec(&tx, "DELETE FROM item_states", []).map_err(e)?;
                    for s in states {
                        exec(&tx,
                            "INSERT OR REPLACE INTO item_states (rule, labels, data) VALUES (?1, ?2, ?3)",
                            params![s.rule, s.labels.to_string(), json(s)?],
                        )
                        .map_err(e)?;
                    }
                }
                StoreChange::SloStates(states) => {
                    exec(&tx, "DELETE FROM slo_states", []).map_err(e)?;
                    for s in states {
                        exec(
                            &tx,
                            "INSERT OR REPLACE INTO slo_states (name, data) VALUES (?1, ?2)",
                            params![s.name, json(s)?],
                        )
                        .map_err(e)?;
                    }
                }
                StoreChange::Learned(states) => {
                    let newest = states
                        .iter()
                        .filter_map(|s| s.points.last().map(|p| p.0))
                        .max();
                    for s in states {
                        tx.execute(
                            "INSERT OR REPLACE INTO learned_states (rule, labels, data, expires)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![s.rule, s.labels.to_string(), json(s)?, s.expires],
                        )
                        .map_err(e)?;
                    }
                    if let Some(now) = newest {
                        tx.execute("DELETE FROM learned_states WHERE expires < ?1", [now])
                            .map_err(e)?;
                    }
                }
                StoreChange::LogOffsets(logs) => {
                    tx.execute("DELETE FROM log_offsets", []).map_err(e)?;
                    for l in logs {
                        tx.execute(
                            "INSERT OR REPLACE INTO log_offsets (log, data) VALUES (?1, ?2)",
                            params![l.log, json(l)?],
                        )
                        .map_err(e)?;
                    }
                }
                StoreChange::RequestDone(id, result) => {
                    exec(
                        &tx,
                        "UPDATE requests SET done_at = ?2, result = ?3 WHERE id = ?1",
                        params![
                            id,
                            crate::clock::Clock::now(&crate::clock::SystemClock).as_nanos(),
                            json(result)?
                        ],
                    )
                    .map_err(e)?;
                }
            }
        }
        if let Some(t) = newest.filter(|_| prune) {
            prune_history(&tx, &p, self.limit, self.max_age, t)?;
        }
        tx.commit().map_err(e)?;
        Ok(())
    }
}

/// Runs `sql` through the connection's statement cache: a step runs the same dozen statements
/// over and over, and parsing them again each time was a fifth of a commit's cost.
fn exec<P: rusqlite::Params>(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

/// Keeps the history within its count and age, and forgets old closed incidents and requests.
fn prune_history(
    tx: &rusqlite::Transaction<'_>,
    path: &Option<PathBuf>,
    limit: usize,
    max_age: Duration,
    newest: Timestamp,
) -> Result<(), StoreError> {
    let e = |e| sql_error(path, e);
    let max_seq: Option<i64> = tx
        .query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))
        .map_err(e)?;
    if let Some(max) = max_seq {
        let keep = i64::try_from(limit).unwrap_or(i64::MAX);
        exec(
            tx,
            "DELETE FROM events WHERE seq <= ?1",
            [max.saturating_sub(keep)],
        )
        .map_err(e)?;
    }
    let oldest = (newest - max_age).as_nanos();
    exec(tx, "DELETE FROM events WHERE at < ?1", [oldest]).map_err(e)?;
    exec(
        tx,
        "DELETE FROM incidents WHERE open = 0 AND changed_at < ?1",
        [oldest],
    )
    .map_err(e)?;
    exec(
        tx,
        "DELETE FROM requests WHERE done_at IS NOT NULL AND done_at < ?1",
        [oldest],
    )
    .map_err(e)?;
    Ok(())
}
