//! kill -9 against real processes and real SQLite files: a child process runs a monitor whose
//! channel posts every notification to a receiver here (HTTP, with its idempotency key), and
//! is killed with SIGKILL and started again on the same file.
//!
//! - Killed inside the checkpoint interval (here: no checkpoint at all) after items fired, then
//!   restarted with every value back to normal, still firing, or at another severity: every
//!   incident is resolved once, nothing is notified twice, a change is notified once.
//! - A crash loop at random moments, the receiver sometimes failing, then a clean run: nothing
//!   lost, nothing stuck open, no key carrying two pieces of news, a sound database each time.
//! - Several stores posting to one receiver (two databases, a database restored from an older
//!   copy without its WAL, a recreated one): no key ever carries two pieces of news.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigilo::alert::{Alert, AlertStatus, Channel, DeliveryError};
use vigilo::config::Config;
use vigilo::monitor::Monitor;
use vigilo::pipeline::SqliteStore;

/// What the receiver does with a request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Accept,
    /// 503 without processing.
    Fail,
    /// Processes it, then closes the connection without answering.
    AcceptAndDrop,
}

/// One notification as the receiver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Received {
    item: String,
    incident: u64,
    status: String,
    severity: String,
    /// Everything the notification said but its key.
    content: String,
}

#[derive(Default)]
struct Seen {
    /// Processed notifications by key (the first arrival of each key while accepting).
    processed: BTreeMap<String, Received>,
    /// Every arrival's content by key: more than one distinct content is a key reused.
    contents: HashMap<String, Vec<String>>,
    arrivals: usize,
}

struct Receiver {
    addr: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
}

impl Seen {
    /// Distinct pieces of news received (a key that carried two counts two).
    fn news(&self) -> usize {
        self.contents.values().map(Vec::len).sum()
    }
}

impl Receiver {
    fn news(&self) -> usize {
        self.seen.lock().news()
    }

    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (m, s) = (Arc::clone(&mode), Arc::clone(&seen));
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, s) = (Arc::clone(&m), Arc::clone(&s));
                thread::spawn(move || serve(conn, &m, &s));
            }
        });
        Receiver { addr, mode, seen }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock() = mode;
    }

    fn wait(&self, what: &str, ok: impl Fn(&Seen) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !ok(&self.seen.lock()) {
            assert!(Instant::now() < give_up, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Processed notifications whose key is not in `before`.
    fn since(&self, before: &BTreeMap<String, Received>) -> Vec<Received> {
        self.seen
            .lock()
            .processed
            .iter()
            .filter(|(k, _)| !before.contains_key(*k))
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn processed(&self) -> BTreeMap<String, Received> {
        self.seen.lock().processed.clone()
    }

    /// Keys that carried more than one piece of news (how many, and the first one).
    fn reused_keys(&self) -> Option<(usize, String, Vec<String>)> {
        let seen = self.seen.lock();
        let mut reused = seen.contents.iter().filter(|(_, c)| c.len() > 1);
        let (k, c) = reused.next()?;
        Some((1 + reused.count(), k.clone(), c.clone()))
    }
}

fn serve(conn: TcpStream, mode: &Mutex<Mode>, seen: &Mutex<Seen>) {
    let mut conn = conn;
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut key, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "idempotency-key" => key = v.trim().to_owned(),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let mode = *mode.lock();
    {
        let mut s = seen.lock();
        s.arrivals += 1;
        let contents = s.contents.entry(key.clone()).or_default();
        if !contents.contains(&body) {
            contents.push(body.clone());
        }
        if mode != Mode::Fail && !s.processed.contains_key(&key) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let text = |f: &str| v[f].as_str().unwrap_or_default().to_owned();
            s.processed.insert(
                key,
                Received {
                    item: text("item"),
                    incident: v["incident"].as_u64().unwrap_or(0),
                    status: text("status"),
                    severity: text("severity"),
                    content: body,
                },
            );
        }
    }
    let answer = match mode {
        Mode::Accept => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        Mode::Fail => {
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        }
        Mode::AcceptAndDrop => return,
    };
    let _ = conn.write_all(answer.as_bytes());
}

/// The child's channel: posts the alert to the receiver, with its key; 2xx is delivered,
/// anything else (or no answer) a retryable failure.
struct Post {
    addr: String,
}

impl Channel for Post {
    fn name(&self) -> &str {
        "hook"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let fail = |e: String| Err(DeliveryError::Retryable(e));
        let item = format!(
            "{}{{{}}}",
            alert.rule,
            alert.labels.get("item").map_or("", String::as_str)
        );
        let body = serde_json::json!({
            "item": item,
            "incident": alert.incident,
            "status": match alert.status {
                AlertStatus::Firing => "firing",
                AlertStatus::Resolved => "resolved",
            },
            "severity": alert.severity.name(),
            "previous": alert.previous.name(),
            "value": alert.value,
            "since": alert.since.as_nanos(),
            "at": alert.at.as_nanos(),
            "annotations": alert.annotations,
        })
        .to_string();
        let addr = self.addr.parse().unwrap();
        let mut conn = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "POST /alerts HTTP/1.1\r\nhost: {}\r\nidempotency-key: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.addr,
            alert.idempotency_key,
            body.len()
        );
        if let Err(e) = conn.write_all(request.as_bytes()) {
            return fail(e.to_string());
        }
        let mut status = String::new();
        match BufReader::new(conn).read_line(&mut status) {
            Ok(_) if status.starts_with("HTTP/1.1 2") => Ok(()),
            Ok(_) => fail(format!("answered {}", status.trim())),
            Err(e) => fail(e.to_string()),
        }
    }
}

fn child_config(db: &Path) -> String {
    format!(
        r#"
        [store]
        path = "{db}"
        checkpoint = "1h"      # never within a test: the worst case after a crash
        restore_grace = "2s"
        on_corrupt = "recreate"
        [evaluator]
        tick = "50ms"
        [[rule]]
        name = "load"
        metric = "load"
        annotations = {{ summary = "load at {{{{value}}}}" }}
        [rule.warning]
        threshold = 10
        [rule.critical]
        threshold = 90
        [[channel]]
        name = "hook"
        retry = {{ attempts = 100000, backoff = "20ms", max_backoff = "100ms" }}
        [[route]]
        name = "all"
        channels = ["hook"]
        repeat_interval = "0s"
        "#,
        db = db.display()
    )
}

/// Runs in the child process, started by the tests below with the environment set.
#[test]
#[ignore = "the child of the crash tests; started by them"]
fn crash_child() {
    let (Ok(db), Ok(addr), Ok(values)) = (
        std::env::var("VIGILO_CRASH_DB"),
        std::env::var("VIGILO_CRASH_ADDR"),
        std::env::var("VIGILO_CRASH_VALUES"),
    ) else {
        return;
    };
    let config: Config = child_config(Path::new(&db)).parse().unwrap();
    let monitor = Monitor::builder(config)
        .channel(Arc::new(Post { addr }))
        .without_host_items()
        .start()
        .unwrap();
    // Phases separated by `|`, 800 ms apart; the last one stays.
    for phase in values.split('|') {
        for (i, v) in phase.split(',').enumerate() {
            let item = format!("i{i:02}");
            let g = monitor
                .registry()
                .gauge("load", &[("item", &item)])
                .unwrap();
            g.set(v.parse().unwrap());
        }
        thread::sleep(Duration::from_millis(800));
    }
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

fn spawn(db: &Path, r: &Receiver, values: &[f64]) -> Child {
    spawn_phases(db, r, &[values])
}

/// A child that sets the values of each phase in turn, 800 ms apart.
fn spawn_phases(db: &Path, r: &Receiver, phases: &[&[f64]]) -> Child {
    let phases: Vec<String> = phases
        .iter()
        .map(|p| p.iter().map(f64::to_string).collect::<Vec<_>>().join(","))
        .collect();
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VIGILO_CRASH_DB", db)
        .env("VIGILO_CRASH_ADDR", &r.addr)
        .env("VIGILO_CRASH_VALUES", phases.join("|"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// `PRAGMA integrity_check` of the file, read by a connection of its own.
fn assert_sound(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "{}", db.display());
}

/// Open incidents of rule `load` in the file.
fn open_load_incidents(db: &Path) -> Vec<vigilo::pipeline::Incident> {
    let store = SqliteStore::open_shared(db).unwrap();
    let v = store.open_incidents().unwrap();
    v.into_iter().filter(|i| &*i.item.rule == "load").collect()
}

const ITEMS: usize = 12;
const WARNING: f64 = 50.0;
const CRITICAL: f64 = 95.0;
const NORMAL: f64 = 1.0;

/// Items 0..8 at `first`, 8..12 at `rest`.
fn ladder(first: f64, rest: f64) -> Vec<f64> {
    (0..ITEMS)
        .map(|i| if i < 8 { first } else { rest })
        .collect()
}

/// A database, a receiver, and what it was told by a first life in which items 0..8 fired
/// Warning and 8..12 Critical, killed once every firing was received (no checkpoint).
fn killed_after_firing() -> (
    tempfile::TempDir,
    PathBuf,
    Receiver,
    BTreeMap<String, Received>,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigilo.db");
    let r = Receiver::start();
    let child = spawn(&db, &r, &ladder(WARNING, CRITICAL));
    r.wait("every firing notification", |s| {
        s.processed
            .values()
            .filter(|x| x.status == "firing")
            .count()
            >= ITEMS
    });
    kill9(child);
    assert_sound(&db);
    assert_eq!(
        open_load_incidents(&db).len(),
        ITEMS,
        "open incidents survive"
    );
    let before = r.processed();
    (dir, db, r, before)
}

#[test]
fn killed_inside_the_checkpoint_interval_then_back_to_normal_every_incident_resolves_once() {
    let (_dir, db, r, before) = killed_after_firing();
    let child = spawn(&db, &r, &[NORMAL; ITEMS]);
    r.wait("a resolve of every incident", |s| {
        s.processed
            .values()
            .filter(|x| x.status == "resolved")
            .count()
            >= ITEMS
    });
    thread::sleep(Duration::from_millis(500)); // room for a second one to show up
    kill9(child);
    let new = r.since(&before);
    let mut resolved: Vec<&str> = new.iter().map(|x| x.item.as_str()).collect();
    resolved.sort_unstable();
    resolved.dedup();
    assert_eq!(resolved.len(), ITEMS, "each item resolved: {new:?}");
    assert_eq!(new.len(), ITEMS, "each once, nothing else: {new:?}");
    assert!(new.iter().all(|x| x.status == "resolved"), "{new:?}");
    // Each resolve tells about the incident that fired.
    let fired: HashMap<&str, u64> = before
        .values()
        .map(|x| (x.item.as_str(), x.incident))
        .collect();
    for x in &new {
        assert_eq!(Some(&x.incident), fired.get(x.item.as_str()), "{x:?}");
    }
    assert!(open_load_incidents(&db).is_empty(), "nothing stuck open");
    assert_eq!(r.reused_keys(), None);
}

#[test]
fn killed_then_still_firing_at_the_same_severity_nothing_is_notified_again() {
    let (_dir, db, r, before) = killed_after_firing();
    let child = spawn(&db, &r, &ladder(WARNING, CRITICAL));
    // Past the restore grace: every item was bound and evaluated many times over.
    thread::sleep(Duration::from_millis(3000));
    kill9(child);
    assert_eq!(r.since(&before), [], "no second firing notification");
    let open = open_load_incidents(&db);
    assert_eq!(open.len(), ITEMS);
    let before_ids: Vec<u64> = {
        let mut v: Vec<u64> = before.values().map(|x| x.incident).collect();
        v.sort_unstable();
        v
    };
    let mut ids: Vec<u64> = open.iter().map(|i| i.id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, before_ids, "the same incidents");
}

#[test]
fn killed_then_at_another_severity_each_item_is_notified_once_for_the_change() {
    let (_dir, db, r, before) = killed_after_firing();
    // Warnings rise to Critical, Criticals fall to Warning.
    let child = spawn(&db, &r, &ladder(CRITICAL, WARNING));
    r.wait("a change of every item", |s| {
        s.processed.len() >= before.len() + ITEMS
    });
    thread::sleep(Duration::from_millis(500));
    kill9(child);
    let new = r.since(&before);
    assert_eq!(new.len(), ITEMS, "one notification per item: {new:?}");
    for x in &new {
        let i: usize = x.item["load{i".len()..x.item.len() - 1].parse().unwrap(); // load{i07}
        let expected = if i < 8 { "critical" } else { "warning" };
        assert_eq!(
            (x.status.as_str(), x.severity.as_str()),
            ("firing", expected),
            "{x:?}"
        );
    }
    assert_eq!(
        open_load_incidents(&db).len(),
        ITEMS,
        "the same incidents, still open"
    );
}

/// A small deterministic generator (xorshift64*), seeded per run and printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn a_crash_loop_then_a_clean_run_loses_nothing_and_leaves_nothing_stuck() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigilo.db");
    let r = Receiver::start();
    const KILLS: usize = 22;
    for life in 0..KILLS {
        let values: Vec<f64> = (0..ITEMS)
            .map(|_| [NORMAL, WARNING, CRITICAL][rng.below(3) as usize])
            .collect();
        r.set(match rng.below(4) {
            0 => Mode::Fail,
            1 => Mode::AcceptAndDrop,
            _ => Mode::Accept,
        });
        let child = spawn(&db, &r, &values);
        thread::sleep(Duration::from_millis(100 + rng.below(700)));
        kill9(child);
        assert_sound(&db);
        assert_eq!(r.reused_keys(), None, "seed {seed}, life {life}");
    }
    // A clean run: everything back to normal, the receiver healthy.
    r.set(Mode::Accept);
    let child = spawn(&db, &r, &[NORMAL; ITEMS]);
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        // (A "channel failing" meta-alert of the failing lives stays open until the channel
        // delivers again: only the items' incidents must all resolve.)
        let store = SqliteStore::open_shared(&db).unwrap();
        let open = open_load_incidents(&db);
        let outbox_empty = store_outbox_len(&db) == 0;
        if open.is_empty() && outbox_empty {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "seed {seed}: stuck: {} open ({:?}), outbox {}",
            open.len(),
            open.iter().map(|i| i.item.to_string()).collect::<Vec<_>>(),
            store_outbox_len(&db)
        );
        drop(store);
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    kill9(child);
    assert_sound(&db);
    assert_eq!(r.reused_keys(), None, "seed {seed}");
    // Every incident a receiver was told fired was told resolved too.
    let seen = r.seen.lock();
    let mut told: BTreeMap<(String, u64), (bool, bool)> = BTreeMap::new();
    for x in seen.processed.values() {
        if x.item.starts_with("load") {
            let e = told.entry((x.item.clone(), x.incident)).or_default();
            if x.status == "firing" {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
    }
    let unresolved: Vec<_> = told.iter().filter(|(_, (f, r))| *f && !*r).collect();
    assert!(
        unresolved.is_empty(),
        "seed {seed}: told firing, never resolved: {unresolved:?}"
    );
}

fn store_outbox_len(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn no_key_carries_two_pieces_of_news_across_stores_rollbacks_and_recreated_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    let firing: Vec<f64> = (0..ITEMS).map(|_| WARNING).collect();
    // Two replicas, each with its database, tell the same receiver about the same items:
    // firing, then resolved.
    for db in [&a, &b] {
        let n = r.news();
        let child = spawn_phases(db, &r, &[&firing, &[NORMAL; ITEMS]]);
        r.wait("firing and resolved", |s| s.news() >= n + 2 * ITEMS);
        kill9(child);
    }
    assert_eq!(r.news(), 4 * ITEMS);
    // A copy of `a` taken now (the file only: its WAL is lost) comes back later: its counters
    // go back, and the same incident, route and change numbers come again for new news.
    let old = dir.path().join("a-old.db");
    checkpoint_into(&a, &old);
    let n = r.news();
    let child = spawn(&a, &r, &firing);
    r.wait("firing again", |s| s.news() >= n + ITEMS);
    kill9(child);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with(&a, ext));
    }
    std::fs::copy(&old, &a).unwrap();
    let n = r.news();
    let critical: Vec<f64> = (0..ITEMS).map(|_| CRITICAL).collect();
    let child = spawn(&a, &r, &critical);
    r.wait("firing from the old copy", |s| s.news() >= n + ITEMS);
    kill9(child);
    // A damaged file is recreated (`on_corrupt = "recreate"`): numbering starts at 1 again.
    std::fs::write(&b, b"this is not a database, it was damaged").unwrap();
    let _ = std::fs::remove_file(with(&b, "-wal"));
    let _ = std::fs::remove_file(with(&b, "-shm"));
    let n = r.news();
    let child = spawn(&b, &r, &critical);
    r.wait("firing from the recreated file", |s| s.news() >= n + ITEMS);
    kill9(child);
    assert_eq!(
        r.reused_keys(),
        None,
        "keys that carried two pieces of news"
    );
    // The readable part did repeat (that is what the store and content parts are for).
    let readable: Vec<String> = r
        .processed()
        .keys()
        .map(|k| k.split('@').next().unwrap().to_owned())
        .collect();
    let mut unique = readable.clone();
    unique.sort_unstable();
    unique.dedup();
    assert!(unique.len() < readable.len(), "{readable:?}");
}

fn with(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// Copies the database at `from` as it stands (its WAL folded in) to `to`.
fn checkpoint_into(from: &Path, to: &Path) {
    let conn = rusqlite::Connection::open(from).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}
