//! The durable store: what survives a restart, migrations, damaged and locked files.

use std::sync::Arc;
use std::time::Duration;

use vigilo::Severity;
use vigilo::alert::{AlertStatus, DeliveryError};
use vigilo::config::Config;
use vigilo::monitor::Monitor;
use vigilo::pipeline::{
    AckRequest, EventKind, HistoryQuery, OnCorrupt, SilenceRequest, SqliteStore, StoreError,
    StoreRequest,
};

use crate::support::{Harness, Sink, brief, secs};

const CONFIG: &str = r#"
    [[channel]]
    name = "hook"
    retry = { attempts = 10, backoff = "1s" }
    [[route]]
    name = "ops"
    channels = ["hook"]
    repeat_interval = "1h"
"#;

fn on_file(path: &std::path::Path) -> Harness {
    let p = path.to_owned();
    Harness::with(CONFIG, move |b| {
        b.store(Box::new(
            SqliteStore::open(&p, OnCorrupt::Refuse, 1000, Duration::from_secs(86400)).unwrap(),
        ))
    })
}

#[test]
fn incidents_acks_silences_and_what_was_told_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigilo.db");
    let (id, silence) = {
        let mut h = on_file(&db);
        h.set("cpu", &[], Severity::Major);
        assert_eq!(h.sink("hook").take().len(), 1);
        let id = h.incident_of("cpu").id;
        h.pipeline
            .ack(
                id,
                AckRequest {
                    by: "kim".into(),
                    comment: "on it".into(),
                    ..AckRequest::default()
                },
            )
            .unwrap();
        let silence = h
            .pipeline
            .silence(SilenceRequest::new("lee", "disk swap", secs(7200)).rule("disk"))
            .unwrap();
        h.pipeline.stop(secs(5)).unwrap();
        (id, silence)
    };
    let mut h = on_file(&db);
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].id, id);
    assert_eq!(
        incidents[0].ack.as_ref().map(|a| a.by.as_str()),
        Some("kim")
    );
    assert_eq!(incidents[0].routes[0].notified, Some(Severity::Major));
    assert_eq!(h.pipeline.silences().unwrap()[0].id, silence);
    h.run_for(secs(60), secs(10));
    assert!(
        h.sink("hook").take().is_empty(),
        "no second page after the restart"
    );
    // The same change again (an evaluator replaying it) is deduplicated.
    h.set("cpu", &[], Severity::Major);
    assert!(h.sink("hook").take().is_empty());
    // Numbers continue: the next incident is not #1 again.
    h.set("mem", &[], Severity::Warning);
    assert!(h.incident_of("mem").id.0 > id.0);
    // The history of before the restart is there.
    let history = h
        .pipeline
        .history(HistoryQuery {
            item: Some("cpu".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        history.iter().any(|e| e.kind == EventKind::Acked),
        "{history:?}"
    );
}

#[test]
fn the_outbox_is_delivered_after_a_restart_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigilo.db");
    let key = {
        let mut h = on_file(&db);
        h.sink("hook")
            .always(Err(DeliveryError::Retryable("HTTP 503".into())));
        h.set("cpu", &[], Severity::Critical);
        let key = h.sink("hook").attempts.lock()[0].idempotency_key.clone();
        h.pipeline.stop(Duration::from_millis(100)).unwrap();
        key
    };
    let h = on_file(&db);
    h.run_for(secs(30), secs(1));
    let delivered = h.sink("hook").take();
    assert_eq!(delivered.len(), 1, "delivered after the restart");
    assert_eq!(delivered[0].idempotency_key, key, "with the same key");
    assert_eq!(h.pipeline.stats().unwrap().outbox, 0);
}

#[test]
fn a_request_queued_by_another_process_is_applied_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigilo.db");
    let mut h = on_file(&db);
    h.set("cpu", &[], Severity::Major);
    let id = h.incident_of("cpu").id;
    let other = SqliteStore::open_shared(&db).unwrap();
    assert_eq!(other.open_incidents().unwrap()[0].id, id);
    let now = h.now();
    let req = other
        .submit(
            &StoreRequest::Ack {
                incident: id,
                by: "cli".into(),
                comment: String::new(),
                expires_after_secs: None,
                sticky: false,
            },
            now,
        )
        .unwrap();
    let bad = other
        .submit(
            &StoreRequest::Unack {
                incident: vigilo::pipeline::IncidentId(999),
            },
            now,
        )
        .unwrap();
    h.advance(secs(1));
    assert_eq!(
        other.request_result(req).unwrap(),
        Some(Ok(format!("incident {id} acknowledged by cli")))
    );
    assert!(
        matches!(other.request_result(bad).unwrap(), Some(Err(m)) if m.contains("no open incident #999"))
    );
    assert!(h.incident_of("cpu").ack.is_some());
}

#[test]
fn a_restart_after_the_item_recovered_sends_the_resolve_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        [store]
        path = "{}"
        checkpoint = "100ms"
        [evaluator]
        tick = "50ms"
        [[rule]]
        name = "queue"
        metric = "queue_depth"
        [rule.critical]
        threshold = 100
        {CONFIG}
        "#,
        dir.path().join("vigilo.db").display()
    );
    let hook = Sink::new("hook");
    {
        let config: Config = text.parse().unwrap();
        let m = Monitor::builder(config)
            .without_host_items()
            .channel(Arc::clone(&hook) as _)
            .start()
            .unwrap();
        let events = m.subscribe().unwrap();
        m.registry().gauge("queue_depth", &[]).unwrap().set(500.0);
        while events.recv_timeout(secs(10)).unwrap().kind != EventKind::Delivered {}
        m.stop(secs(5)).unwrap();
    }
    assert_eq!(
        brief(&hook.take()),
        [(AlertStatus::Firing, Severity::Critical, "queue".into())]
    );
    // While it was down the queue drained: the new process sees a normal value.
    let config: Config = text.parse().unwrap();
    let m = Monitor::builder(config)
        .without_host_items()
        .channel(Arc::clone(&hook) as _)
        .start()
        .unwrap();
    let events = m.subscribe().unwrap();
    m.registry().gauge("queue_depth", &[]).unwrap().set(3.0);
    while events.recv_timeout(secs(10)).unwrap().kind != EventKind::Delivered {}
    m.settle(secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    m.settle(secs(5)).unwrap();
    assert_eq!(
        brief(&hook.take()),
        [(AlertStatus::Resolved, Severity::Normal, "queue".into())],
        "once"
    );
    assert!(m.incidents().unwrap().is_empty());
}

#[test]
fn a_hold_in_progress_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
        [store]
        path = "{}"
        [evaluator]
        tick = "1s"
        [[rule]]
        name = "cpu"
        metric = "cpu"
        [rule.major]
        threshold = 80
        for = "1m"
        {CONFIG}
        "#,
        dir.path().join("vigilo.db").display()
    );
    let clock = vigilo::clock::ManualClock::new(crate::support::START);
    // Each run records into a fresh registry where the value is already set, so the
    // evaluator's first sweep (at the virtual time of the start) sees it.
    let start = |hook: &Arc<Sink>| {
        let config: Config = text.parse().unwrap();
        let registry = vigilo::Registry::new();
        registry.gauge("cpu", &[]).unwrap().set(95.0);
        Monitor::builder(config)
            .without_host_items()
            .registry(registry)
            .clock(Arc::new(clock.clone()))
            .channel(Arc::clone(hook) as _)
            .start()
            .unwrap()
    };
    let hook = Sink::new("hook");
    let m = start(&hook);
    let give_up = std::time::Instant::now() + secs(10);
    while m
        .status()
        .unwrap()
        .status
        .items
        .iter()
        .all(|i| i.value != Some(95.0))
    {
        assert!(
            std::time::Instant::now() < give_up,
            "the evaluator never saw the value"
        );
        std::thread::yield_now();
    }
    clock.advance(secs(40));
    m.stop(secs(5)).unwrap(); // 40 s into a 60 s hold
    let m = start(&hook);
    let events = m.subscribe().unwrap();
    clock.advance(secs(25)); // 65 s after the crossing: the hold is complete
    let got = loop {
        let e = events
            .recv_timeout(secs(10))
            .expect("the hold completes after the restart");
        if e.kind == EventKind::Opened {
            break e;
        }
    };
    assert_eq!(got.severity, Some(Severity::Major));
    let opened = m.incidents().unwrap()[0].opened_at;
    assert_eq!(
        opened,
        crate::support::START + secs(60),
        "timed from the crossing before the restart"
    );
}

#[test]
fn schemas_damaged_files_locks_and_read_only_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &std::path::Path, c| SqliteStore::open(p, c, 100, secs(3600));
    // A newer schema is refused, untouched.
    let newer = dir.path().join("newer.db");
    {
        let conn = rusqlite_like_create(&newer);
        drop(conn);
    }
    let err = open(&newer, OnCorrupt::Recreate).err().expect("refused");
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("written by a newer vigilo"),
        "{err}"
    );
    // A damaged file: refused by default, naming it; moved aside on request.
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, vec![0x5a; 64 * 1024]).unwrap();
    let err = open(&bad, OnCorrupt::Refuse).err().expect("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("on_corrupt = \"recreate\""),
        "{err}"
    );
    let store = open(&bad, OnCorrupt::Recreate).unwrap();
    let aside = store.moved_aside().unwrap().to_owned();
    assert!(aside.exists() && std::fs::read(&aside).unwrap()[0] == 0x5a);
    drop(store);
    // One owner at a time.
    let db = dir.path().join("owned.db");
    let first = open(&db, OnCorrupt::Refuse).unwrap();
    let err = open(&db, OnCorrupt::Refuse).err().expect("locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(first);
    assert!(open(&db, OnCorrupt::Refuse).is_ok());
    // A directory that cannot be written: a read-only directory for an ordinary user; as
    // root (who ignores directory permissions), sysfs, where nobody can create a file.
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    let target = if std::fs::write(ro.join("probe"), b"x").is_err() {
        ro.join("vigilo.db")
    } else {
        std::path::PathBuf::from("/sys/vigilo-test.db")
    };
    let err = open(&target, OnCorrupt::Refuse).err().expect("refused");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
}

/// A database whose `user_version` says a schema from the future.
fn rusqlite_like_create(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    conn
}

#[test]
fn an_older_schema_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // Version 0: a database file with nothing in it yet (what an empty file from an older
    // release without tables looks like).
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x)")
        .unwrap();
    let store = SqliteStore::open(&db, OnCorrupt::Refuse, 100, secs(3600)).unwrap();
    drop(store);
    let shared = SqliteStore::open_shared(&db).unwrap();
    assert!(shared.open_incidents().unwrap().is_empty());
    let version: u32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, vigilo::pipeline::SCHEMA_VERSION);
}

#[test]
fn a_storm_of_ten_thousand_notifications_on_disk_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("storm.db");
    let p = db.clone();
    let mut h = Harness::with(CONFIG, move |b| {
        b.store(Box::new(
            SqliteStore::open(&p, OnCorrupt::Refuse, 200_000, secs(86400)).unwrap(),
        ))
    });
    for i in 0..10_000 {
        h.set("storm", &[("item", &i.to_string())], Severity::Warning);
    }
    h.settle();
    let delivered = h.sink("hook").take();
    assert_eq!(delivered.len(), 10_000);
    let keys: std::collections::HashSet<_> = delivered
        .iter()
        .map(|a| a.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 10_000);
    let history = h
        .pipeline
        .history(HistoryQuery {
            limit: 1_000_000,
            kinds: vec![EventKind::Delivered],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(history.len(), 10_000, "every delivery is in the history");
    let size = SqliteStore::open_shared(&db).unwrap().size_bytes().unwrap();
    eprintln!(
        "database after 10,000 notifications: {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
    // The write-ahead log was folded into the database as it went (off the commit path), so
    // the log stayed small and the database file holds what was written.
    let len = |suffix: &str| {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    let (file, log) = (len(""), len("-wal"));
    eprintln!("file {file} B, log {log} B");
    assert!(log <= 5 << 20, "the log is {log} B");
    assert!(file >= size / 2, "the file holds {file} of {size} B");
}
