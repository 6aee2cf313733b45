//! Host items on the real machine: no mocks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::path::Path;
use std::time::{Duration, Instant};

use vigilo::Registry;
use vigilo::host::{
    HostCollector, HostConfig, HostError, HostItem, HostSampler, MIN_RATE_WINDOW, names,
};
use vigilo::metrics::{Snapshot, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The gauges of `name` as `(labels, value)`, labels rendered `{a="b"}`.
fn gauges(snapshot: &Snapshot, name: &str) -> Vec<(String, f64)> {
    snapshot
        .named(name)
        .map(|s| match s.value {
            Value::Gauge(v) => (s.labels.to_string(), v),
            ref other => panic!("{name}{} is not a gauge: {other:?}", s.labels),
        })
        .collect()
}

/// The single unlabelled gauge `name`.
fn gauge(snapshot: &Snapshot, name: &str) -> f64 {
    match snapshot.get(name, &[]).map(|s| &s.value) {
        Some(Value::Gauge(v)) => *v,
        other => panic!("{name}: expected a gauge, found {other:?}"),
    }
}

fn assert_ratio(name: &str, labels: &str, v: f64) {
    assert!(
        (0.0..=1.0).contains(&v),
        "{name}{labels} = {v} not in 0..=1"
    );
}

/// Lets a rate window pass so the next refresh reports rates.
fn wait_rate_window() {
    std::thread::sleep(MIN_RATE_WINDOW + Duration::from_millis(50));
}

/// Mounts of a block device with a common on-disk file system, from `/proc/mounts`.
fn real_mounts() -> Vec<String> {
    let config = HostConfig::default();
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount, fs) = (fields.next()?, fields.next()?, fields.next()?);
            let common = [
                "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "zfs",
            ];
            (device.starts_with("/dev/")
                && common.contains(&fs)
                && !config.excludes_mount(mount, fs)
                && !mount.starts_with("/run")
                && !mount.starts_with("/etc"))
            .then(|| format!("{device} on {mount} ({fs})"))
        })
        .collect()
}

#[test]
fn default_items_are_in_range() -> TestResult {
    let registry = Registry::new();
    let mut sampler = HostSampler::new(&registry, HostConfig::default())?;
    assert!(registry.is_empty(), "new() must not write");
    wait_rate_window();
    let stats = sampler.refresh()?;
    println!("refresh: {stats:?}");
    assert!(stats.written > 0);
    let snap = registry.snapshot();
    for s in &snap.series {
        assert!(s.value.as_f64().is_finite(), "{}{}", s.name, s.labels);
        println!("{}{} = {:?}", s.name, s.labels, s.value);
    }

    assert_ratio(
        names::CPU_USAGE_RATIO,
        "",
        gauge(&snap, names::CPU_USAGE_RATIO),
    );
    let cores = gauges(&snap, names::CPU_CORE_USAGE_RATIO);
    assert!(!cores.is_empty(), "no core series");
    for (labels, v) in &cores {
        assert_ratio(names::CPU_CORE_USAGE_RATIO, labels, *v);
    }
    assert!(
        snap.get(names::CPU_CORE_USAGE_RATIO, &[(names::LABEL_CORE, "0")])
            .is_some()
    );

    for name in [names::LOAD1, names::LOAD5, names::LOAD15] {
        assert!(gauge(&snap, name) >= 0.0, "{name}");
    }

    let (used, total) = (
        gauge(&snap, names::MEMORY_USED_BYTES),
        gauge(&snap, names::MEMORY_TOTAL_BYTES),
    );
    assert!(
        total > 0.0 && used > 0.0 && used <= total,
        "memory {used}/{total}"
    );
    assert_ratio(
        names::MEMORY_USAGE_RATIO,
        "",
        gauge(&snap, names::MEMORY_USAGE_RATIO),
    );
    let (used, total) = (
        gauge(&snap, names::SWAP_USED_BYTES),
        gauge(&snap, names::SWAP_TOTAL_BYTES),
    );
    assert!(used >= 0.0 && used <= total, "swap {used}/{total}");
    assert_ratio(
        names::SWAP_USAGE_RATIO,
        "",
        gauge(&snap, names::SWAP_USAGE_RATIO),
    );

    let used = gauges(&snap, names::DISK_USED_BYTES);
    let total = gauges(&snap, names::DISK_TOTAL_BYTES);
    let ratio = gauges(&snap, names::DISK_USAGE_RATIO);
    println!("disks found: {used:?}");
    assert_eq!(used.len(), total.len());
    assert_eq!(used.len(), ratio.len());
    for (((labels, u), (_, t)), (_, r)) in used.iter().zip(&total).zip(&ratio) {
        assert!(*t > 0.0 && *u >= 0.0 && u <= t, "disk {labels}: {u}/{t}");
        assert_ratio(names::DISK_USAGE_RATIO, labels, *r);
        assert!(
            labels.contains("mount=") && labels.contains("device="),
            "{labels}"
        );
    }
    let real = real_mounts();
    println!("real mounts: {real:?}");
    if !real.is_empty() {
        assert!(
            !used.is_empty(),
            "no disk series though the machine has {real:?}"
        );
    }

    for name in [
        names::DISK_READ_BYTES_PER_SECOND,
        names::DISK_WRITTEN_BYTES_PER_SECOND,
        names::NETWORK_RECEIVE_BYTES_PER_SECOND,
        names::NETWORK_TRANSMIT_BYTES_PER_SECOND,
    ] {
        for (labels, v) in gauges(&snap, name) {
            assert!(v >= 0.0, "{name}{labels} = {v}");
        }
    }
    if Path::new("/sys/class/net/lo").exists() {
        let lo = [(names::LABEL_INTERFACE, "lo")];
        assert!(
            snap.get(names::NETWORK_RECEIVE_BYTES_PER_SECOND, &lo)
                .is_some(),
            "no rate for lo"
        );
    }

    assert!(gauge(&snap, names::PROCESSES) >= 1.0);
    assert!(gauge(&snap, names::PROCESS_RESIDENT_MEMORY_BYTES) > 0.0);
    assert!(gauge(&snap, names::PROCESS_CPU_USAGE_RATIO) >= 0.0);
    Ok(())
}

#[test]
fn only_configured_items_are_written() -> TestResult {
    let registry = Registry::new();
    let config = HostConfig::with_items(&[HostItem::Memory, HostItem::Load]);
    let mut sampler = HostSampler::new(&registry, config)?;
    let stats = sampler.refresh()?;
    assert_eq!(stats.written, 6);
    let found: Vec<String> = registry
        .metric_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        found,
        [
            names::LOAD1,
            names::LOAD15,
            names::LOAD5,
            names::MEMORY_TOTAL_BYTES,
            names::MEMORY_USAGE_RATIO,
            names::MEMORY_USED_BYTES,
        ]
    );
    Ok(())
}

#[test]
fn interface_filter_skips_interfaces() -> TestResult {
    let registry = Registry::new();
    let config = HostConfig {
        exclude_interfaces: vec!["*".into()],
        ..HostConfig::with_items(&[HostItem::Network])
    };
    let mut sampler = HostSampler::new(&registry, config)?;
    wait_rate_window();
    sampler.refresh()?;
    assert!(registry.is_empty(), "{:?}", registry.snapshot());
    Ok(())
}

#[test]
fn own_process_is_found() -> TestResult {
    let registry = Registry::new();
    let mut sampler = HostSampler::new(&registry, HostConfig::with_items(&[HostItem::OwnProcess]))?;
    // Burn CPU for a while so the ratio has something to show.
    let start = Instant::now();
    let mut x: u64 = 1;
    while start.elapsed() < Duration::from_millis(300) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    let stats = sampler.refresh()?;
    assert_eq!(stats.written, 2, "{stats:?}");
    let snap = registry.snapshot();
    let rss = gauge(&snap, names::PROCESS_RESIDENT_MEMORY_BYTES);
    let cpu = gauge(&snap, names::PROCESS_CPU_USAGE_RATIO);
    println!("own rss {rss} B, cpu {cpu}");
    assert!(rss > 1024.0 * 1024.0, "rss {rss}");
    // Other tests run on threads of this process too: at most every core busy.
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    assert!(cpu > 0.0 && cpu <= cores + 0.5, "cpu {cpu}");
    Ok(())
}

/// Liveness of watched names, on Linux, where a process name is the kernel's `comm`.
#[cfg(target_os = "linux")]
mod liveness {
    use std::path::Path;
    use std::process::{Child, Command};

    use vigilo::Registry;
    use vigilo::host::{HostConfig, HostSampler, names};
    use vigilo::metrics::Value;

    use super::TestResult;

    /// A child process that is killed and reaped when dropped.
    struct Probe(Child);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn up(registry: &Registry, name: &str) -> Option<f64> {
        match registry
            .snapshot()
            .get(names::PROCESS_UP, &[(names::LABEL_NAME, name)])
            .map(|s| s.value.clone())
        {
            Some(Value::Gauge(v)) => Some(v),
            _ => None,
        }
    }

    /// Linux: the process name is the kernel's `comm`, taken from the path that was executed.
    #[test]
    fn watched_process_liveness() -> TestResult {
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("no sleep binary")?;
        let dir = tempfile::tempdir()?;
        // Longer than Linux's 15-byte process name: matched through the executable's file name.
        let long_name = format!("vigilo-probe-{}", std::process::id());
        let copy = dir.path().join(&long_name);
        std::fs::copy(sleep, &copy)?;
        // Started through a symlink: the process name is the link's, the executable is `sleep`.
        let short_name = format!("vp{}", std::process::id() % 1_000_000);
        let link = dir.path().join(&short_name);
        std::os::unix::fs::symlink(sleep, &link)?;
        let missing = format!("vigilo-absent-{}", std::process::id());

        let mut by_exe = Probe(Command::new(&copy).arg("60").spawn()?);
        let by_name = Probe(Command::new(&link).arg("60").spawn()?);

        let registry = Registry::new();
        let config = HostConfig {
            processes_watched: vec![long_name.clone(), short_name.clone(), missing.clone()],
            ..HostConfig::with_items(&[])
        };
        let mut sampler = HostSampler::new(&registry, config)?;
        sampler.refresh()?;
        assert_eq!(up(&registry, &long_name), Some(1.0), "{long_name}");
        assert_eq!(up(&registry, &short_name), Some(1.0), "{short_name}");
        assert_eq!(up(&registry, &missing), Some(0.0));

        by_exe.0.kill()?;
        by_exe.0.wait()?;
        sampler.refresh()?;
        assert_eq!(
            up(&registry, &long_name),
            Some(0.0),
            "{long_name} after kill"
        );
        assert_eq!(up(&registry, &short_name), Some(1.0));
        drop(by_name);
        sampler.refresh()?;
        assert_eq!(
            up(&registry, &short_name),
            Some(0.0),
            "{short_name} after kill"
        );
        Ok(())
    }
}

#[test]
fn config_from_toml() -> TestResult {
    let config: HostConfig = toml::from_str(
        r#"
        interval = "1m30s"
        items = ["cpu", "disk_io", "own_process"]
        processes_watched = ["nginx"]
        exclude_interfaces = ["lo", "veth*"]
        "#,
    )?;
    assert_eq!(config.interval, Duration::from_secs(90));
    assert_eq!(
        config.items,
        [HostItem::Cpu, HostItem::DiskIo, HostItem::OwnProcess]
    );
    assert_eq!(
        config.exclude_filesystems,
        HostConfig::default().exclude_filesystems
    );

    let empty: HostConfig = toml::from_str("")?;
    assert_eq!(empty, HostConfig::default());
    let round_trip: HostConfig = toml::from_str(&toml::to_string(&config)?)?;
    assert_eq!(round_trip, config);
    Ok(())
}

#[test]
fn config_errors_are_clear() {
    let err = match toml::from_str::<HostConfig>("intervall = \"1s\"") {
        Ok(c) => panic!("unknown key accepted: {c:?}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("intervall"), "{err}");

    let err = match toml::from_str::<HostConfig>("interval = \"1 sec\"") {
        Ok(c) => panic!("bad duration accepted: {c:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("\"1 sec\"") && err.contains("interval"),
        "{err}"
    );

    let err = match toml::from_str::<HostConfig>("items = [\"cpuu\"]") {
        Ok(c) => panic!("unknown item accepted: {c:?}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cpuu"), "{err}");

    let zero = HostConfig {
        interval: Duration::ZERO,
        ..HostConfig::default()
    };
    match HostSampler::new(&Registry::new(), zero) {
        Err(HostError::InvalidConfig { reason }) => assert!(reason.contains("interval")),
        other => panic!("zero interval: {other:?}"),
    }
}

#[test]
fn collector_writes_and_stops_promptly() -> TestResult {
    let registry = Registry::new();
    let config = HostConfig {
        interval: Duration::from_millis(100),
        ..HostConfig::with_items(&[HostItem::Memory, HostItem::Network])
    };
    let collector = HostCollector::start(&registry, config)?;
    let notices = collector.notices();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    while last < 4 {
        let notice = notices.recv_deadline(deadline)?;
        assert!(notice.seq > last);
        last = notice.seq;
        if let Err(e) = notice.result {
            panic!("refresh {} failed: {e}", notice.seq);
        }
    }
    assert!(collector.is_running());
    assert!(collector.refreshes() >= 4);
    assert_eq!(collector.errors(), 0);
    assert!(collector.last_error().is_none());
    let snap = registry.snapshot();
    assert!(gauge(&snap, names::MEMORY_TOTAL_BYTES) > 0.0);
    assert!(snap.get(names::REFRESH_ERRORS_TOTAL, &[]).is_some());
    collector.stop()?;
    Ok(())
}

#[test]
fn collector_stop_does_not_wait_for_the_interval() -> TestResult {
    let registry = Registry::new();
    let config = HostConfig {
        interval: Duration::from_secs(3600),
        ..HostConfig::with_items(&[HostItem::Load])
    };
    let collector = HostCollector::start(&registry, config)?;
    let first = collector.notices().recv_timeout(Duration::from_secs(30))?;
    assert_eq!(first.seq, 1);
    assert!(registry.snapshot().get(names::LOAD1, &[]).is_some());
    let asked = Instant::now();
    collector.stop()?;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    Ok(())
}
