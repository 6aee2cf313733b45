//! Shared by the host's integration tests: real guests built once, an alert, a log capture,
//! RSS readings.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use vigilo::Severity;
use vigilo::alert::Alert;
use vigilo::clock::Timestamp;
use vigilo_plugin_host::{PluginHost, PluginHostConfig, PluginSettings};

/// Every test guest, built with one cargo invocation the first time any is asked for.
pub const GUESTS: &[&str] = &[
    "healthy",
    "spin",
    "hog",
    "trap",
    "panic",
    "read-file",
    "http-get",
    "tcp-connect",
    "exec-action",
    "exec-channel",
    "noisy",
    "mailer",
    "hostile",
];

/// The component of test guest `short` (`"trap"` → `vigilo_test_trap.wasm`).
pub fn guest(short: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let packages: Vec<String> = GUESTS.iter().map(|g| format!("vigilo-test-{g}")).collect();
        let refs: Vec<&str> = packages.iter().map(String::as_str).collect();
        let paths = vigilo_plugin_build::build_guests(&refs).unwrap_or_else(|e| panic!("{e}"));
        GUESTS.iter().map(|g| (*g).to_owned()).zip(paths).collect()
    });
    built
        .get(short)
        .cloned()
        .unwrap_or_else(|| panic!("no test guest {short}"))
}

/// Settings for test guest `short` under plugin name `name`.
pub fn settings(name: &str, short: &str) -> PluginSettings {
    PluginSettings::new(name, guest(short))
}

/// A host sized for tests (few pool slots), with the breaker at `threshold` (0: off).
pub fn host(threshold: u32) -> PluginHost {
    let config = PluginHostConfig {
        max_instances: 16,
        breaker_threshold: threshold,
        cache_dir: Some(cache_dir()),
        ..PluginHostConfig::default()
    };
    PluginHost::new(config).unwrap()
}

/// Where the tests keep wasmtime's compilation cache (compiling a guest with a debug build of
/// wasmtime takes seconds).
pub fn cache_dir() -> PathBuf {
    vigilo_plugin_build::guest_target_dir().join("wasmtime-cache")
}

/// A firing Major alert.
pub fn alert() -> Alert {
    Alert::builder("cpu-high", Severity::Major)
        .metric("cpu.usage")
        .label("host", "web-1")
        .annotation("summary", "CPU at 93%")
        .previous(Severity::Warning)
        .value(93.0)
        .threshold(80.0)
        .since(Timestamp::from_secs(1_700_000_000))
        .at(Timestamp::from_secs(1_700_000_060))
        .idempotency_key("cpu-high{host=web-1}@1700000060:4")
        .recipient("ops@example.com")
        .build()
}

/// The resident set size of this process, in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// What the plugins said through the `log` facade.
#[derive(Debug, Clone)]
pub struct Line {
    pub target: String,
    pub level: log::Level,
    pub message: String,
}

struct Capture(Mutex<Vec<Line>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("vigilo")
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        if let Ok(mut v) = self.0.lock() {
            v.push(Line {
                target: r.target().to_owned(),
                level: r.level(),
                message: r.args().to_string(),
            });
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Trace);
        c
    })
}

/// Starts capturing (idempotent).
pub fn capture_logs() {
    capture();
}

/// The captured lines that mention `needle`.
pub fn logged(needle: &str) -> Vec<Line> {
    capture()
        .0
        .lock()
        .map(|v| {
            v.iter()
                .filter(|l| l.message.contains(needle))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `f` and returns how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t0 = std::time::Instant::now();
    let v = f();
    (v, t0.elapsed())
}
