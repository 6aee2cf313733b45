//! Issue 27's performance figures, one run each (a plain main: each figure is one long,
//! steady measurement rather than many short samples):
//!
//! 1. **Log lines per second** through one `[[log]]` with a typical regex, on one core, over a
//!    generated file (1 GiB by default; `VIGILO_BENCH_LOG_MB` changes it), read from its start
//!    to its end by `LogWatcher::poll`; `grep -c` counts the same file in the same run; the
//!    peak resident memory before and after.
//! 2. **Probe overhead per check**: an HTTP probe of a loopback server, wall time per check
//!    (`check_once`, which builds a runtime each time, and `ProbeRunner::run_now`), and the CPU
//!    the probes' thread spends per check at a short interval.
//! 3. **Sweep cost per item** of `timeleft` and `anomaly` rules next to a plain threshold rule,
//!    1,000 items each, windows full.
//!
//! Run with `cargo bench -p vigilo-benches --bench checks`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot set up should stop loudly

use std::io::{BufWriter, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigilo::Registry;
use vigilo::clock::{ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::eval::{Evaluator, EvaluatorConfig};
use vigilo::host::logs::{LogSpec, LogWatcher};
use vigilo::host::probes::{ProbeRunner, check_once};

/// Peak resident set size of this process, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this process so far (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn logs() {
    let mb: u64 = std::env::var("VIGILO_BENCH_LOG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // Typical application lines, ~110 bytes; one in 20 an error, one in 20 a warning.
    {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        let mut written = 0u64;
        let mut i = 0u64;
        while written < mb << 20 {
            let level = match i % 20 {
                0 => "error",
                1 => "warn",
                _ => "info",
            };
            let line = format!(
                "2026-12-07T17:{:02}:{:02}.{:03}Z host=web-{} level={level} request_id={:016x} path=/api/v1/items status=200\n",
                (i / 60_000) % 60,
                (i / 1000) % 60,
                i % 1000,
                i % 8,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            );
            w.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            i += 1;
        }
        w.flush().unwrap();
    }
    let lines = {
        let mut n = 0u64;
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let k = f.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        n
    };
    println!("log file: {mb} MiB, {lines} lines");
    for (name, pattern) in [
        ("no group", r"level=(error|fatal)"),
        ("a named group", r"level=(?P<level>error|warn)"),
    ] {
        let registry = Registry::new();
        let mut spec = LogSpec::new(
            "app",
            path.display().to_string(),
            regex::bytes::Regex::new(pattern).unwrap(),
        );
        spec.from_start = true;
        spec.max_read = u64::MAX;
        let rss_before = peak_rss_kib();
        let mut w = LogWatcher::new(spec, &registry, None);
        // Warm the page cache as grep will find it.
        let started = Instant::now();
        let cpu = cpu_time();
        let stats = w.poll();
        let cpu = cpu_time() - cpu;
        let elapsed = started.elapsed();
        let matched: f64 = registry
            .snapshot()
            .named("log_lines_matched_total")
            .map(|s| s.value.as_f64())
            .sum();
        println!(
            "[[log]] {name:14} {:>12.0} lines/s wall, {:>12.0} lines/s of CPU, {:.0} MB/s; matched {matched}; read {} bytes; peak RSS {} → {} KiB",
            lines as f64 / elapsed.as_secs_f64(),
            lines as f64 / cpu.as_secs_f64(),
            stats.bytes as f64 / elapsed.as_secs_f64() / 1e6,
            stats.bytes,
            rss_before,
            peak_rss_kib()
        );
    }
    let started = Instant::now();
    let out = std::process::Command::new("grep")
        .args(["-cE", "level=(error|fatal)"])
        .arg(&path)
        .output();
    match out {
        Ok(o) => println!(
            "grep -cE               {:>12.0} lines/s wall; counted {}",
            lines as f64 / started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        Err(e) => println!("grep: {e}"),
    }
}

fn probes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tiny_http::Server::from_listener(listener, None).unwrap();
    std::thread::spawn(move || {
        for r in server.incoming_requests() {
            let _ = r.respond(tiny_http::Response::from_string("ok"));
        }
    });
    let config: Config = format!(
        "[[probe]]\nname = \"local\"\nhttp = \"http://{addr}/\"\nbody = \"ok\"\ninterval = \"10ms\"\ntimeout = \"10ms\"\n"
    )
    .parse()
    .unwrap();
    let spec = &config.probes[0];
    let n = 1000;
    let started = Instant::now();
    for _ in 0..n {
        assert!(check_once(spec).success);
    }
    println!(
        "probe check_once (a runtime per call): {:.0} µs per check",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    // The runner at a 10 ms interval for 3 s: its thread's CPU per check.
    let registry = Registry::new();
    let idle = cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let idle = cpu_time() - idle; // the server thread's and the process's own background
    let runner = ProbeRunner::start(&config.probes, &registry).unwrap();
    let cpu = cpu_time();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_time() - cpu;
    let wall = started.elapsed();
    let checks = wall.as_secs_f64() / 0.010;
    runner.stop();
    println!(
        "probe runner, one probe every 10 ms: {:.0} µs of CPU per check (server included; idle {:.0} µs/s)",
        cpu.as_secs_f64() * 1e6 / checks,
        idle.as_secs_f64() * 1e6 / 0.5
    );
}

/// An evaluator of `n` items of `rule` (the `{i}` in it numbered), fed for `steps` ticks of
/// `tick` by `value(step, item)`; then times `sweeps` more sweeps.
fn sweep_cost(
    label: &str,
    rule: &str,
    n: usize,
    tick: Duration,
    steps: u64,
    sweeps: u64,
    value: impl Fn(u64, usize) -> f64,
) {
    let registry = Registry::new();
    let gauges: Vec<_> = (0..n)
        .map(|i| {
            registry
                .gauge("bench_value", &[("i", &i.to_string())])
                .unwrap()
        })
        .collect();
    let config: Config = rule.parse().unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(1_767_225_600));
    let (mut ev, rx) = Evaluator::new(
        registry,
        config.rules,
        Arc::new(clock.clone()),
        EvaluatorConfig {
            tick,
            ..EvaluatorConfig::default()
        },
    )
    .unwrap();
    let mut now = Timestamp::from_secs(1_767_225_600);
    for step in 0..steps {
        for (i, g) in gauges.iter().enumerate() {
            g.set(value(step, i));
        }
        ev.tick(now);
        let _ = rx.try_iter().count();
        now = now + tick;
    }
    let mut total = Duration::ZERO;
    for step in steps..steps + sweeps {
        for (i, g) in gauges.iter().enumerate() {
            g.set(value(step, i));
        }
        let started = Instant::now();
        ev.tick(now);
        total += started.elapsed();
        let _ = rx.try_iter().count();
        now = now + tick;
    }
    println!(
        "sweep {label:44} {:>8.0} ns per item ({n} items, {} sweeps)",
        total.as_secs_f64() * 1e9 / (n as f64 * sweeps as f64),
        sweeps
    );
}

fn sweeps() {
    let n = 1000;
    let wave = |step: u64, i: usize| {
        50.0 + 20.0 * ((step as f64 / 100.0) + i as f64).sin() + (step % 7) as f64
    };
    sweep_cost(
        "threshold (last)",
        "[[rule]]\nname = \"t\"\nmetric = \"bench_value\"\n[rule.warning]\nthreshold = 1000\n",
        n,
        Duration::from_secs(10),
        360,
        300,
        wave,
    );
    sweep_cost(
        "avg over 1 h (360 samples)",
        "[[rule]]\nname = \"t\"\nmetric = \"bench_value\"\naggregation = \"avg\"\nwindow = \"1h\"\n[rule.warning]\nthreshold = 1000\n",
        n,
        Duration::from_secs(10),
        360,
        300,
        wave,
    );
    sweep_cost(
        "timeleft over 1 h (360 samples)",
        "[[rule]]\nname = \"t\"\nmetric = \"bench_value\"\naggregation = \"timeleft\"\nwindow = \"1h\"\ncomparison = \"below\"\n[rule.timeleft]\ntarget = 1000\n[rule.warning]\nthreshold = \"4h\"\n",
        n,
        Duration::from_secs(10),
        360,
        300,
        |step, i| step as f64 * 0.001 + i as f64,
    );
    sweep_cost(
        "anomaly, daily season, 7 d learned (2016 pts)",
        "[[rule]]\nname = \"t\"\nmetric = \"bench_value\"\naggregation = \"anomaly\"\nwindow = \"5m\"\n[rule.anomaly]\nseason = \"daily\"\n[rule.warning]\nthreshold = 1000\n",
        n,
        Duration::from_secs(300),
        2016,
        288,
        wave,
    );
    sweep_cost(
        "anomaly, no season, 7 d learned (2016 pts)",
        "[[rule]]\nname = \"t\"\nmetric = \"bench_value\"\naggregation = \"anomaly\"\nwindow = \"5m\"\n[rule.warning]\nthreshold = 1000\n",
        n,
        Duration::from_secs(300),
        2016,
        288,
        wave,
    );
}

fn main() {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("sweeps") {
        sweeps();
    }
    if run("probes") {
        probes();
    }
    if run("logs") {
        logs();
    }
}
