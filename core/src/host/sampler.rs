//! One synchronous refresh of the configured host items.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

use super::disks::DiskItems;
use super::names;
use super::network::NetworkItems;
use super::process::Processes;
use super::series::{FixedGauge, GaugeFamily};
use super::tally::Tally;
use super::{HostConfig, HostError, HostItem};
use crate::Registry;

/// What one [`HostSampler::refresh`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshStats {
    /// Series written.
    pub written: usize,
    /// Series removed because what they describe is gone (an unmounted disk, a removed
    /// interface).
    pub removed: usize,
    /// Rates not written yet: a device or interface seen for the first time (its next refresh
    /// reports it), or a whole group whose window was shorter than [`MIN_RATE_WINDOW`](super::MIN_RATE_WINDOW).
    pub pending: usize,
    /// How long the refresh took.
    pub duration: Duration,
}

/// Reads the configured host items through `sysinfo` and writes them into a [`Registry`], one
/// synchronous [`refresh`](Self::refresh) at a time.
///
/// The sysinfo objects are created once and only the configured items are read from the
/// operating system. Gauge handles are resolved on the first write and cached; the series of a
/// disk or interface that disappears are removed from the registry. See [`names`](super::names)
/// for the series written.
///
/// Rates need two readings: [`new`](Self::new) takes the first one, so the first `refresh`
/// reports them, provided at least [`MIN_RATE_WINDOW`](super::MIN_RATE_WINDOW) has passed. CPU usage is also measured
/// between two readings, so the first `refresh` right after `new` can still show a long-term
/// average.
///
/// ```no_run
/// use vigilo::Registry;
/// use vigilo::host::{HostConfig, HostItem, HostSampler};
///
/// let registry = Registry::new();
/// let config = HostConfig::with_items(&[HostItem::Memory, HostItem::Load]);
/// let mut sampler = HostSampler::new(&registry, config)?;
/// let stats = sampler.refresh()?;
/// assert_eq!(stats.written, 6);
/// # Ok::<(), vigilo::host::HostError>(())
/// ```
pub struct HostSampler {
    registry: Registry,
    config: HostConfig,
    system: System,
    cpu: Option<FixedGauge>,
    cores: Option<GaugeFamily<1>>,
    load: Option<[FixedGauge; 3]>,
    memory: Option<[FixedGauge; 3]>,
    swap: Option<[FixedGauge; 3]>,
    processes: Processes,
    disks: Option<DiskItems>,
    network: Option<NetworkItems>,
}

impl std::fmt::Debug for HostSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSampler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HostSampler {
    /// Validates `config`, creates the sysinfo objects and takes a first reading of the
    /// configured items (the baseline of rates); nothing is written to `registry` yet.
    pub fn new(registry: &Registry, config: HostConfig) -> Result<HostSampler, HostError> {
        config.validate()?;
        let system = System::new().map_err(|source| HostError::System {
            what: "system information",
            source,
        })?;
        let wants = |item| config.collects(item);
        let triple = |a, b, c| [FixedGauge::new(a), FixedGauge::new(b), FixedGauge::new(c)];
        let mut sampler = HostSampler {
            registry: registry.clone(),
            system,
            cpu: wants(HostItem::Cpu).then(|| FixedGauge::new(names::CPU_USAGE_RATIO)),
            cores: wants(HostItem::CpuPerCore)
                .then(|| GaugeFamily::new([names::CPU_CORE_USAGE_RATIO], &[names::LABEL_CORE])),
            load: wants(HostItem::Load).then(|| triple(names::LOAD1, names::LOAD5, names::LOAD15)),
            memory: wants(HostItem::Memory).then(|| {
                triple(
                    names::MEMORY_USED_BYTES,
                    names::MEMORY_TOTAL_BYTES,
                    names::MEMORY_USAGE_RATIO,
                )
            }),
            swap: wants(HostItem::Swap).then(|| {
                triple(
                    names::SWAP_USED_BYTES,
                    names::SWAP_TOTAL_BYTES,
                    names::SWAP_USAGE_RATIO,
                )
            }),
            processes: Processes::new(&config)?,
            disks: DiskItems::new(&config)?,
            network: if wants(HostItem::Network) {
                Some(NetworkItems::new(&config)?)
            } else {
                None
            },
            config,
        };
        sampler.prime();
        Ok(sampler)
    }

    /// The configuration in use.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The registry written to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn wants_cpu(&self) -> bool {
        self.cpu.is_some() || self.cores.is_some()
    }

    /// The first reading of every configured item, written nowhere.
    fn prime(&mut self) {
        if self.wants_cpu() {
            self.system
                .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        }
        self.processes.prime(&mut self.system);
        if let Some(disks) = &mut self.disks {
            disks.prime();
        }
        if let Some(network) = &mut self.network {
            network.prime();
        }
    }

    /// Reads the configured items once and writes them to the registry.
    ///
    /// An item that fails does not stop the others: every item is tried, then the first
    /// failure is returned.
    pub fn refresh(&mut self) -> Result<RefreshStats, HostError> {
        let started = Instant::now();
        let mut tally = Tally::default();
        let registry = &self.registry;

        // CPU first: a process CPU refresh also reads the CPU times, and sysinfo ignores a
        // second reading within 200 ms.
        if self.cpu.is_some() || self.cores.is_some() {
            self.system
                .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        }
        if let Some(cpu) = &mut self.cpu {
            let usage = percent_to_ratio(self.system.global_cpu_usage());
            tally.wrote(cpu.set(registry, usage).map(|()| 1));
        }
        if let Some(cores) = &mut self.cores {
            cores.begin();
            let mut label = String::new();
            for (i, core) in self.system.cpus().iter().enumerate() {
                label.clear();
                // Writing to a String cannot fail.
                let _ = write!(label, "{i}");
                let usage = percent_to_ratio(core.usage());
                tally.wrote(cores.set(registry, &[&label], [usage]));
            }
            tally.removed += cores.sweep(registry);
        }

        if let Some(load) = &mut self.load {
            match System::load_average() {
                Ok(avg) => {
                    for (gauge, value) in load.iter_mut().zip([avg.one, avg.five, avg.fifteen]) {
                        tally.wrote(gauge.set(registry, value.max(0.0)).map(|()| 1));
                    }
                }
                Err(source) => tally.fail(HostError::System {
                    what: "load average",
                    source,
                }),
            }
        }

        if self.memory.is_some() || self.swap.is_some() {
            let mut kind = MemoryRefreshKind::nothing();
            if self.memory.is_some() {
                kind = kind.with_ram();
            }
            if self.swap.is_some() {
                kind = kind.with_swap();
            }
            self.system.refresh_memory_specifics(kind);
        }
        if let Some(memory) = &mut self.memory {
            let (used, total) = (self.system.used_memory(), self.system.total_memory());
            write_usage(memory, registry, used, total, &mut tally);
        }
        if let Some(swap) = &mut self.swap {
            let (used, total) = (self.system.used_swap(), self.system.total_swap());
            write_usage(swap, registry, used, total, &mut tally);
        }

        self.processes
            .refresh(&mut self.system, registry, &mut tally);
        if let Some(disks) = &mut self.disks {
            disks.refresh(registry, &mut tally);
        }
        if let Some(network) = &mut self.network {
            network.refresh(registry, &mut tally);
        }

        match tally.first_error {
            Some(e) => Err(e),
            None => Ok(RefreshStats {
                written: tally.written,
                removed: tally.removed,
                pending: tally.pending,
                duration: started.elapsed(),
            }),
        }
    }
}

/// sysinfo's percent (0–100) as a ratio clamped to `0.0..=1.0` (NaN, as on a first reading of
/// some platforms, becomes 0).
fn percent_to_ratio(percent: f32) -> f64 {
    let ratio = f64::from(percent) / 100.0;
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

/// Writes used, total and used/total (0 when total is 0).
fn write_usage(
    gauges: &mut [FixedGauge; 3],
    registry: &Registry,
    used: u64,
    total: u64,
    tally: &mut Tally,
) {
    let used = used.min(total);
    let ratio = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64
    };
    for (gauge, value) in gauges.iter_mut().zip([used as f64, total as f64, ratio]) {
        tally.wrote(gauge.set(registry, value).map(|()| 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(percent_to_ratio(50.0), 0.5);
        assert_eq!(percent_to_ratio(100.5), 1.0);
        assert_eq!(percent_to_ratio(-1.0), 0.0);
        assert_eq!(percent_to_ratio(f32::NAN), 0.0);
    }
}
