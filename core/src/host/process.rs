//! Process items: the process count, liveness of watched names, and this process's CPU and RSS.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use super::names;
use super::series::{FixedGauge, GaugeFamily};
use super::tally::{MIN_RATE_WINDOW, Tally};
use super::{HostConfig, HostError, HostItem};
use crate::Registry;

/// This process: its pid, gauges, and the CPU-time baseline of the previous reading.
struct Own {
    pid: Pid,
    cpu: FixedGauge,
    rss: FixedGauge,
    /// Accumulated CPU time in ms and when it was read.
    baseline: Option<(u64, Instant)>,
}

/// State of the process items.
pub(crate) struct Processes {
    count: Option<FixedGauge>,
    watched: Vec<String>,
    up: GaugeFamily<1>,
    /// Per watched name: seen running in this refresh.
    alive: Vec<bool>,
    own: Option<Own>,
    /// What the whole-table refresh reads.
    table_kind: ProcessRefreshKind,
}

impl Processes {
    pub(crate) fn new(config: &HostConfig) -> Result<Self, HostError> {
        let own = if config.collects(HostItem::OwnProcess) {
            let pid = sysinfo::get_current_pid().map_err(|source| HostError::System {
                what: "own process id",
                source,
            })?;
            Some(Own {
                pid,
                cpu: FixedGauge::new(names::PROCESS_CPU_USAGE_RATIO),
                rss: FixedGauge::new(names::PROCESS_RESIDENT_MEMORY_BYTES),
                baseline: None,
            })
        } else {
            None
        };
        let watched = config.processes_watched.clone();
        // Names, start times and status come with every process; threads ("tasks") are not
        // listed. The executable's path is read only when names are watched, once per process
        // (retried while unreadable, as another user's process is without privileges).
        let mut table_kind = ProcessRefreshKind::nothing().without_tasks();
        if !watched.is_empty() {
            table_kind = table_kind.with_exe(UpdateKind::OnlyIfNotSet);
        }
        Ok(Processes {
            count: config
                .collects(HostItem::Processes)
                .then(|| FixedGauge::new(names::PROCESSES)),
            alive: vec![false; watched.len()],
            watched,
            up: GaugeFamily::new([names::PROCESS_UP], &[names::LABEL_NAME]),
            own,
            table_kind,
        })
    }

    /// Whether the whole process table is read through sysinfo: for liveness, or for the
    /// count where it cannot be taken more cheaply.
    fn wants_table(&self) -> bool {
        !self.watched.is_empty() || (self.count.is_some() && !cfg!(target_os = "linux"))
    }

    /// Reads the process table and this process, without writing anything: the baseline for
    /// the first CPU reading.
    pub(crate) fn prime(&mut self, system: &mut System) {
        if self.wants_table() {
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, self.table_kind);
        }
        if let Some(own) = &mut self.own {
            refresh_own(system, own.pid);
            if let Some(p) = system.process(own.pid) {
                own.baseline = Some((p.accumulated_cpu_time(), Instant::now()));
            }
        }
    }

    /// Refreshes and writes the configured process items. Call after the CPU refresh: sysinfo
    /// skips a CPU refresh closer than 200 ms to the previous one, and a process CPU refresh
    /// counts as one.
    pub(crate) fn refresh(&mut self, system: &mut System, registry: &Registry, tally: &mut Tally) {
        let mut table_read = false;
        if self.wants_table() {
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, self.table_kind);
            table_read = true;
            self.write_liveness(system, registry, tally);
        }
        if let Some(count) = &mut self.count {
            let n = if table_read {
                system.processes().len()
            } else if let Some(n) = count_processes() {
                n
            } else {
                system.refresh_processes_specifics(ProcessesToUpdate::All, true, self.table_kind);
                system.processes().len()
            };
            tally.wrote(count.set(registry, n as f64).map(|()| 1));
        }
        if let Some(own) = &mut self.own {
            let written = refresh_and_write_own(system, registry, own, tally);
            tally.wrote(written);
        }
    }

    fn write_liveness(&mut self, system: &System, registry: &Registry, tally: &mut Tally) {
        if self.watched.is_empty() {
            return;
        }
        self.alive.fill(false);
        for process in system.processes().values() {
            if matches!(
                process.status(),
                ProcessStatus::Zombie | ProcessStatus::Dead
            ) {
                continue;
            }
            let name = process.name();
            let exe_name = process.exe().and_then(Path::file_name);
            for (alive, watched) in self.alive.iter_mut().zip(&self.watched) {
                let watched = OsStr::new(watched);
                if name == watched || exe_name == Some(watched) {
                    *alive = true;
                }
            }
        }
        self.up.begin();
        for (watched, alive) in self.watched.iter().zip(&self.alive) {
            let value = if *alive { 1.0 } else { 0.0 };
            tally.wrote(self.up.set(registry, &[watched.as_str()], [value]));
        }
    }
}

/// The number of processes without reading each one: on Linux, the numeric entries of `/proc`
/// (threads are not listed there), fifty times cheaper than a sysinfo table refresh. `None`
/// elsewhere or if `/proc` cannot be read.
fn count_processes() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.as_encoded_bytes();
                !name.is_empty() && name.iter().all(u8::is_ascii_digit)
            })
            .count(),
    )
}

/// Refreshes this process only: CPU times and memory, nothing else.
fn refresh_own(system: &mut System, pid: Pid) {
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing()
            .without_tasks()
            .with_cpu()
            .with_memory(),
    );
}

fn refresh_and_write_own(
    system: &mut System,
    registry: &Registry,
    own: &mut Own,
    tally: &mut Tally,
) -> Result<usize, HostError> {
    refresh_own(system, own.pid);
    let now = Instant::now();
    let Some(process) = system.process(own.pid) else {
        return Err(HostError::OwnProcessMissing {
            pid: own.pid.as_u32(),
        });
    };
    let cpu_ms = process.accumulated_cpu_time();
    own.rss.set(registry, process.memory() as f64)?;
    let mut written = 1;
    match own.baseline {
        Some((before_ms, before)) if now.duration_since(before) >= MIN_RATE_WINDOW => {
            let elapsed_ms = now.duration_since(before).as_secs_f64() * 1000.0;
            let ratio = cpu_ms.saturating_sub(before_ms) as f64 / elapsed_ms;
            own.cpu.set(registry, ratio)?;
            own.baseline = Some((cpu_ms, now));
            written += 1;
        }
        // Too short a window for a meaningful ratio: keep the baseline, report next time.
        Some(_) => tally.pending += 1,
        None => {
            own.baseline = Some((cpu_ms, now));
            tally.pending += 1;
        }
    }
    Ok(written)
}
