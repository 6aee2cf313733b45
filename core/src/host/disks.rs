//! Disk items: space per mount and I/O rates per device.

use std::collections::HashSet;
use std::time::Instant;

use sysinfo::{Disk, DiskRefreshKind, Disks};

use super::names;
use super::series::GaugeFamily;
use super::tally::{MIN_RATE_WINDOW, Tally};
use super::{HostConfig, HostError, HostItem};
use crate::Registry;

/// State of the disk items.
pub(crate) struct DiskItems {
    disks: Disks,
    /// Used, total and ratio per mount, when [`HostItem::Disks`] is collected.
    space: Option<GaugeFamily<3>>,
    /// Read and written rates per device, when [`HostItem::DiskIo`] is collected.
    io: Option<GaugeFamily<2>>,
    /// Mounts (`mount\0device`) whose I/O counters were read at the last I/O refresh: only
    /// those give a true rate at the next one (sysinfo reports a new disk's counters since boot).
    io_known: HashSet<String>,
    /// When the I/O counters were last read.
    io_read_at: Instant,
    /// For its mount filter.
    filter: HostConfig,
}

impl DiskItems {
    /// `None` if neither disk item is configured.
    pub(crate) fn new(config: &HostConfig) -> Result<Option<Self>, HostError> {
        let space = config.collects(HostItem::Disks);
        let io = config.collects(HostItem::DiskIo);
        if !space && !io {
            return Ok(None);
        }
        let disks = Disks::new().map_err(|source| HostError::System {
            what: "disk list",
            source,
        })?;
        Ok(Some(DiskItems {
            disks,
            space: space.then(|| {
                GaugeFamily::new(
                    [
                        names::DISK_USED_BYTES,
                        names::DISK_TOTAL_BYTES,
                        names::DISK_USAGE_RATIO,
                    ],
                    &[names::LABEL_MOUNT, names::LABEL_DEVICE],
                )
            }),
            io: io.then(|| {
                GaugeFamily::new(
                    [
                        names::DISK_READ_BYTES_PER_SECOND,
                        names::DISK_WRITTEN_BYTES_PER_SECOND,
                    ],
                    &[names::LABEL_DEVICE],
                )
            }),
            io_known: HashSet::new(),
            io_read_at: Instant::now(),
            filter: config.clone(),
        }))
    }

    /// Reads the mount table (and the I/O counters) without writing anything.
    pub(crate) fn prime(&mut self) {
        self.io_read_at = Instant::now();
        self.disks
            .refresh_specifics(true, self.refresh_kind(self.io.is_some()));
        if self.io.is_some() {
            self.io_known = self.mounts().map(|(_, key)| key).collect();
        }
    }

    fn refresh_kind(&self, read_io: bool) -> DiskRefreshKind {
        let mut kind = DiskRefreshKind::nothing();
        if self.space.is_some() {
            kind = kind.with_storage();
        }
        if read_io {
            kind = kind.with_io_usage();
        }
        kind
    }

    /// The disks that pass the mount filter, with their `mount\0device` key.
    fn mounts(&self) -> impl Iterator<Item = (&Disk, String)> {
        self.disks.iter().filter_map(|disk| {
            let mount = disk.mount_point().to_string_lossy();
            let fs = disk.file_system().to_string_lossy();
            if self.filter.excludes_mount(&mount, &fs) {
                return None;
            }
            let key = format!("{mount}\0{}", disk.name().to_string_lossy());
            Some((disk, key))
        })
    }

    pub(crate) fn refresh(&mut self, registry: &Registry, tally: &mut Tally) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.io_read_at);
        // Counters read over too short a window give a noisy rate: leave them for next time.
        let read_io = self.io.is_some() && elapsed >= MIN_RATE_WINDOW;
        self.disks
            .refresh_specifics(true, self.refresh_kind(read_io));
        if let Some(mut space) = self.space.take() {
            space.begin();
            for (disk, _) in self.mounts() {
                let total = disk.total_space();
                if total == 0 {
                    continue;
                }
                let used = total.saturating_sub(disk.available_space());
                let mount = disk.mount_point().to_string_lossy();
                let device = disk.name().to_string_lossy();
                let readings = [used as f64, total as f64, used as f64 / total as f64];
                tally.wrote(space.set(registry, &[&mount, &device], readings));
            }
            tally.removed += space.sweep(registry);
            self.space = Some(space);
        }
        if !read_io {
            if self.io.is_some() {
                tally.pending += 1;
            }
            return;
        }
        self.io_read_at = now;
        let Some(mut io) = self.io.take() else {
            return;
        };
        let secs = elapsed.as_secs_f64();
        let mut known = HashSet::with_capacity(self.io_known.len());
        let mut devices: HashSet<String> = HashSet::new();
        io.begin();
        for (disk, key) in self.mounts() {
            let device = disk.name().to_string_lossy();
            let first_sight = !self.io_known.contains(&key);
            known.insert(key);
            if devices.contains(device.as_ref()) {
                // Another mount of a device already reported.
                continue;
            }
            if first_sight {
                io.keep(&[&device]);
                tally.pending += 1;
                continue;
            }
            let usage = disk.usage();
            let readings = [
                usage.read_bytes as f64 / secs,
                usage.written_bytes as f64 / secs,
            ];
            tally.wrote(io.set(registry, &[&device], readings));
            devices.insert(device.into_owned());
        }
        tally.removed += io.sweep(registry);
        self.io = Some(io);
        self.io_known = known;
    }
}
