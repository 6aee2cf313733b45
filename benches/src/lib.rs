//! Helpers shared by the benchmarks in `benches/benches/`: a deterministic latency sample and a
//! multi-threaded timing harness for criterion's `iter_custom`, which also records how much of
//! the wall time the threads were actually on a CPU (see [`write_on_cpu_report`]).
//!
//! The benchmarks themselves (and the peer crates they compare against) live in the bench
//! targets; this library depends on `std` and `libc` only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Per benchmark id: (CPU time of all threads, wall time × threads), in nanoseconds.
static ON_CPU: Mutex<BTreeMap<String, (u128, u128)>> = Mutex::new(BTreeMap::new());

/// CPU time consumed so far by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// `n` latencies in seconds drawn from a log-normal distribution (median 20 ms, σ = 1 in log
/// space, so most values fall between 1 ms and 1 s), from a fixed seed so every run and every
/// library sees the same values. `n` is rounded up to a power of two so callers can index with a
/// mask.
pub fn lognormal_latencies(n: usize) -> Vec<f64> {
    let n = n.max(2).next_power_of_two();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        // xorshift64*: plenty for a benchmark input.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let x = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // 53 random bits to (0, 1].
        ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    };
    let median = 0.020_f64;
    let sigma = 1.0_f64;
    (0..n)
        .map(|_| {
            // Box-Muller: one standard normal from two uniforms.
            let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            median * (sigma * z).exp()
        })
        .collect()
}

/// Runs `work(thread_index, iters)` on `threads` fresh threads that start together (behind a
/// barrier) and returns the wall time from the first start to the last finish **divided by
/// `threads`**: the time per operation of the combined throughput, when each thread performs
/// `iters` operations. With `threads == 1` this is simply the time per operation of one thread,
/// measured the same way, so the two figures compare directly.
///
/// Thread creation and teardown are outside the timed region: each worker takes its own start
/// time after the barrier and its end time after its loop.
///
/// The CPU time the workers used is added to `id`'s tally, so a figure measured while other
/// processes took the CPUs can be recognised afterwards (see [`write_on_cpu_report`]).
pub fn per_op_time<F>(id: &str, threads: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let threads = threads.max(1);
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let work = &work;
                s.spawn(move || {
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    let start = Instant::now();
                    work(t, iters);
                    let end = Instant::now();
                    (start, end, thread_cpu_time().saturating_sub(cpu))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min();
    let last = spans.iter().map(|s| s.1).max();
    let wall = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    let cpu: Duration = spans.iter().map(|s| s.2).sum();
    if let Ok(mut tally) = ON_CPU.lock() {
        let entry = tally.entry(id.to_owned()).or_default();
        entry.0 += cpu.as_nanos();
        entry.1 += wall.as_nanos() * threads as u128;
    }
    wall / u32::try_from(threads).unwrap_or(u32::MAX)
}

/// The fraction of the wall time the worker threads of benchmark `id` were on a CPU, over every
/// sample so far (1.0: never preempted; 0.5 with two threads: they effectively shared one CPU).
pub fn on_cpu_fraction(id: &str) -> Option<f64> {
    let tally = ON_CPU.lock().ok()?;
    let &(cpu, wall) = tally.get(id)?;
    (wall > 0).then(|| cpu as f64 / wall as f64)
}

/// Where criterion writes under this workspace (`target/criterion`, or under
/// `$CARGO_TARGET_DIR`): `benches/report.py` reads the extra JSON files the benches put there.
pub fn criterion_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("criterion"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"),
    }
}

/// Adds `entries` to the flat `{"key": number, ...}` file `name` in [`criterion_dir`], keeping
/// the entries of earlier runs that these do not replace.
pub fn merge_figures(name: &str, entries: &[(String, f64)]) -> std::io::Result<PathBuf> {
    let dir = criterion_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let mut merged: BTreeMap<String, f64> = std::fs::read_to_string(&path)
        .ok()
        .map(|text| parse_flat_json(&text))
        .unwrap_or_default();
    for (key, value) in entries {
        merged.insert(key.replace('"', "'"), *value);
    }
    let body: Vec<String> = merged
        .iter()
        .map(|(id, f)| format!("  \"{id}\": {f:.4}"))
        .collect();
    std::fs::write(&path, format!("{{\n{}\n}}\n", body.join(",\n")))?;
    Ok(path)
}

/// Writes every benchmark's on-CPU fraction to `vigilo-on-cpu.json` in [`criterion_dir`], where
/// `benches/report.py` reads it to flag figures taken while other processes had the CPUs.
/// Entries from earlier runs of other benchmarks are kept.
pub fn write_on_cpu_report() -> std::io::Result<PathBuf> {
    let entries: Vec<(String, f64)> = match ON_CPU.lock() {
        Ok(tally) => tally
            .iter()
            .filter(|(_, (_, wall))| *wall > 0)
            .map(|(id, &(cpu, wall))| (id.clone(), cpu as f64 / wall as f64))
            .collect(),
        Err(_) => Vec::new(),
    };
    merge_figures("vigilo-on-cpu.json", &entries)
}

/// Reads back the flat `{"id": number, ...}` object [`write_on_cpu_report`] writes.
fn parse_flat_json(text: &str) -> BTreeMap<String, f64> {
    text.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|entry| {
            let (key, value) = entry.split_once(':')?;
            let key = key.trim().trim_matches('"');
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_look_log_normal() {
        let mut v = lognormal_latencies(4096);
        assert_eq!(v.len(), 4096);
        assert!(v.iter().all(|x| x.is_finite() && *x > 0.0));
        v.sort_by(f64::total_cmp);
        let median = v[2048];
        assert!((0.015..0.027).contains(&median), "median {median}");
        // About 68 % within one sigma (a factor e) of the median.
        let within = v
            .iter()
            .filter(|x| (0.020 / std::f64::consts::E..0.020 * std::f64::consts::E).contains(*x))
            .count();
        assert!((2500..3100).contains(&within), "{within}");
    }

    #[test]
    fn per_op_time_divides_by_threads() {
        let d = per_op_time("test/sleep", 2, 1, |_, _| {
            std::thread::sleep(Duration::from_millis(20))
        });
        assert!(d >= Duration::from_millis(10), "{d:?}");
        assert!(d < Duration::from_millis(20), "{d:?}");
        // Sleeping is not running.
        assert!(on_cpu_fraction("test/sleep").is_some_and(|f| f < 0.5));
    }

    #[test]
    fn busy_threads_are_on_cpu() {
        per_op_time("test/busy", 1, 1, |_, _| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(20) {
                std::hint::spin_loop();
            }
        });
        // Generous: the test machine may be busy.
        assert!(on_cpu_fraction("test/busy").is_some_and(|f| f > 0.2 && f <= 1.05));
    }

    #[test]
    fn flat_json_round_trips() {
        let parsed = parse_flat_json("{\n  \"a/b/1\": 0.9800,\n  \"c\": 1.0000\n}\n");
        assert_eq!(parsed.get("a/b/1"), Some(&0.98));
        assert_eq!(parsed.get("c"), Some(&1.0));
    }
}
