//! `[[log]]`: real files in a temporary directory, rotated by rename and by copy-truncate,
//! files that appear later, a restart in the middle, cut lines.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigilo::Registry;
use vigilo::config::Config;
use vigilo::host::logs::{LogSpec, LogWatcher};
use vigilo::monitor::Monitor;

fn spec(dir: &Path, glob: &str, pattern: &str) -> LogSpec {
    let mut s = LogSpec::new(
        "app",
        dir.join(glob).display().to_string(),
        regex::bytes::Regex::new(pattern).unwrap(),
    );
    s.poll = Duration::from_millis(10);
    s
}

fn append(path: &Path, lines: &[&str]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// The counter of `registry` for this log's matches with the captured `level`, if any.
fn matched(registry: &Registry, level: Option<&str>) -> u64 {
    let snap = registry.snapshot();
    let mut labels = vec![("log", "app")];
    if let Some(l) = level {
        labels.push(("level", l));
    }
    snap.get("log_lines_matched_total", &labels)
        .map_or(0, |s| s.value.as_f64() as u64)
}

fn lines_read(registry: &Registry) -> u64 {
    registry
        .snapshot()
        .get("log_lines_read_total", &[("log", "app")])
        .map_or(0, |s| s.value.as_f64() as u64)
}

#[test]
fn starts_at_the_end_then_counts_matching_lines_by_captured_label() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        &["level=error old", "level=error old", "level=info old"],
    );
    let registry = Registry::new();
    let mut w = LogWatcher::new(
        spec(dir.path(), "app.log", r"level=(?P<level>error|warn)"),
        &registry,
        None,
    );
    w.poll();
    assert_eq!(
        matched(&registry, Some("error")),
        0,
        "history is not counted"
    );
    append(
        &log,
        &[
            "level=error a",
            "level=warn b",
            "level=info c",
            "level=error d",
        ],
    );
    // A line still being written waits for its end.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    write!(f, "level=warn half").unwrap();
    w.poll();
    assert_eq!(matched(&registry, Some("error")), 2);
    assert_eq!(matched(&registry, Some("warn")), 1);
    assert_eq!(lines_read(&registry), 4);
    writeln!(f, "-done").unwrap();
    w.poll();
    assert_eq!(matched(&registry, Some("warn")), 2);
    assert_eq!(lines_read(&registry), 5);
}

#[test]
fn rename_rotation_and_files_that_appear_later() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let registry = Registry::new();
    let mut w = LogWatcher::new(spec(dir.path(), "*.log", "ERROR"), &registry, None);
    w.poll();
    append(&log, &["ERROR 1", "ok", "ERROR 2"]);
    // The writer keeps its descriptor across the rename, as a daemon does until it reopens.
    let mut writer = OpenOptions::new().append(true).open(&log).unwrap();
    w.poll();
    assert_eq!(matched(&registry, None), 2);
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    writeln!(writer, "ERROR 3 (written to the rotated file)").unwrap();
    append(&log, &["ERROR 4 (the new file)", "fine"]);
    append(
        &dir.path().join("other.log"),
        &["ERROR 5 (a file that appeared later)"],
    );
    w.poll();
    assert_eq!(matched(&registry, None), 5);
    // The rotated file is let go after a poll with nothing new.
    w.poll();
    assert_eq!(w.poll().files, 2);
    append(&log, &["ERROR 6"]);
    w.poll();
    assert_eq!(matched(&registry, None), 6);
}

#[test]
fn copy_truncate_rotation_reads_the_copy_then_the_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        &["header line that identifies this file's first bytes ......"],
    );
    let registry = Registry::new();
    let mut w = LogWatcher::new(spec(dir.path(), "app.log", "ERROR"), &registry, None);
    w.poll();
    append(&log, &["ERROR 1", "ERROR 2"]);
    w.poll();
    assert_eq!(matched(&registry, None), 2);
    // Written after the last poll, then copied away and truncated (logrotate copytruncate).
    append(&log, &["ERROR 3 (only in the copy by the next poll)"]);
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &["ERROR 4 (after the truncation)"]);
    w.poll();
    assert_eq!(matched(&registry, None), 4);
    // Truncated and written again past the offset: its first bytes tell.
    let big: Vec<String> = (0..50).map(|i| format!("filler {i} ERROR-free")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    append(&log, &big);
    w.poll();
    let before = matched(&registry, None);
    fs::write(&log, "").unwrap();
    let mut again: Vec<String> = (0..80).map(|i| format!("new {i}")).collect();
    again.push("ERROR 5".into());
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    append(&log, &again);
    w.poll();
    assert_eq!(matched(&registry, None), before + 1);
}

#[test]
fn a_restart_in_the_middle_counts_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let first = Registry::new();
    let mut w = LogWatcher::new(spec(dir.path(), "app.log", "ERROR"), &first, None);
    w.poll();
    append(&log, &["ERROR 1", "ERROR 2", "x"]);
    w.poll();
    let saved = w.checkpoint();
    // Counted after the checkpoint, then the process dies: these are counted again from the
    // saved offset, with the saved counts.
    append(&log, &["ERROR 3", "ERROR 4"]);
    w.poll();
    assert_eq!(matched(&first, None), 4);
    drop(w);
    // While it is down: more lines, a rename rotation, a new file with lines.
    append(&log, &["ERROR 5"]);
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &["ERROR 6", "ERROR 7"]);

    let second = Registry::new();
    let mut w = LogWatcher::new(spec(dir.path(), "app.log", "ERROR"), &second, Some(saved));
    w.poll();
    assert_eq!(matched(&second, None), 7, "1..=7, each once");
    assert_eq!(lines_read(&second), 8);
}

#[test]
fn a_line_longer_than_the_bound_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let registry = Registry::new();
    let mut s = spec(dir.path(), "app.log", "^ERROR");
    s.max_line = 1000;
    s.max_read = 1 << 20;
    let mut w = LogWatcher::new(s, &registry, None);
    w.poll();
    // 8 MiB on one line, written in pieces: counted once, cut, as soon as 1000 bytes are there.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"ERROR ").unwrap();
    f.write_all(&vec![b'x'; 2000]).unwrap();
    w.poll();
    assert_eq!(matched(&registry, None), 1);
    for _ in 0..8 {
        f.write_all(&vec![b'y'; 1 << 20]).unwrap();
    }
    f.write_all(b" ERROR not a line start\nERROR next\n")
        .unwrap();
    // Read over several polls (1 MiB each at most): the rest of the long line is skipped.
    let mut polls = 0;
    while lines_read(&registry) < 2 && polls < 20 {
        w.poll();
        polls += 1;
    }
    assert!(polls >= 8, "the per-poll budget holds: {polls}");
    assert_eq!(matched(&registry, None), 2);
    assert_eq!(lines_read(&registry), 2);
}

fn monitor_config(dir: &Path, db: &Path) -> Config {
    format!(
        r#"
        [store]
        path = "{}"

        [[log]]
        name = "app"
        path = "{}"
        pattern = 'ERROR (?P<code>\d+)'
        max_series = 2
        poll = "1h"
        "#,
        db.display(),
        dir.join("*.log").display()
    )
    .parse()
    .unwrap()
}

#[test]
fn the_monitor_keeps_offsets_and_counts_in_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("app.log");
    let db = dir.path().join("state").join("vigilo.db");
    File::create(&log).unwrap();
    let monitor = Monitor::builder(monitor_config(dir.path(), &db))
        .without_host_items()
        .start()
        .unwrap();
    monitor.poll_logs();
    append(
        &log,
        &["ERROR 1", "ERROR 2", "ERROR 3 over the bound", "ERROR 1"],
    );
    monitor.poll_logs();
    let count = |r: &Registry, code: &str| {
        r.snapshot()
            .get("log_lines_matched_total", &[("log", "app"), ("code", code)])
            .map_or(0, |s| s.value.as_f64() as u64)
    };
    assert_eq!(count(monitor.registry(), "1"), 2);
    assert_eq!(count(monitor.registry(), "_other"), 1, "max_series = 2");
    monitor.stop(Duration::from_secs(5)).unwrap();

    append(&log, &["ERROR 2", "ERROR 9"]);
    let monitor = Monitor::builder(monitor_config(dir.path(), &db))
        .without_host_items()
        .start()
        .unwrap();
    monitor.poll_logs();
    let r = monitor.registry();
    assert_eq!(
        (count(r, "1"), count(r, "2"), count(r, "_other")),
        (2, 2, 2)
    );
    monitor.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn config_errors_point_at_the_key() {
    let bad = |text: &str| text.parse::<Config>().unwrap_err().to_string();
    let e = bad("[[log]]\nname = \"a\"\npath = \"/x\"\npattern = \"(\"\n");
    assert!(e.contains("pattern") && e.contains("bad regex"), "{e}");
    let e = bad("[[log]]\nname = \"a\"\npath = \"/x\"\npattern = \"(?P<log>x)\"\n");
    assert!(e.contains("log"), "{e}");
    let e = bad("[[log]]\nname = \"a\"\npath = \"/x\"\npattern = \"x\"\npoll = \"1ms\"\n");
    assert!(e.contains("poll"), "{e}");
    let e = bad(
        "[[log]]\nname = \"a\"\npath = \"/x\"\npattern = \"x\"\n[[log]]\nname = \"a\"\npath = \"/y\"\npattern = \"x\"\n",
    );
    assert!(e.contains("two logs"), "{e}");
}
