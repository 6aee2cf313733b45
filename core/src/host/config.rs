//! What the host collector collects, and how often.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HostError;
use crate::duration::serde_duration;

/// A group of host items that can be switched on or off (in TOML, its snake_case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostItem {
    /// `host_cpu_usage_ratio`: all cores together.
    Cpu,
    /// `host_cpu_core_usage_ratio{core}`: one series per logical core.
    CpuPerCore,
    /// `host_load1`, `host_load5`, `host_load15`.
    Load,
    /// `host_memory_used_bytes`, `host_memory_total_bytes`, `host_memory_usage_ratio`.
    Memory,
    /// `host_swap_used_bytes`, `host_swap_total_bytes`, `host_swap_usage_ratio`.
    Swap,
    /// `host_disk_used_bytes`, `host_disk_total_bytes`, `host_disk_usage_ratio`, per mount.
    Disks,
    /// `host_disk_read_bytes_per_second`, `host_disk_written_bytes_per_second`, per device.
    DiskIo,
    /// `host_network_receive_bytes_per_second`, `host_network_transmit_bytes_per_second`, per
    /// interface.
    Network,
    /// `host_processes`: the number of processes.
    Processes,
    /// `process_cpu_usage_ratio` and `process_resident_memory_bytes` of this process.
    OwnProcess,
}

impl HostItem {
    /// Every item, in declaration order.
    pub const ALL: [HostItem; 10] = [
        HostItem::Cpu,
        HostItem::CpuPerCore,
        HostItem::Load,
        HostItem::Memory,
        HostItem::Swap,
        HostItem::Disks,
        HostItem::DiskIo,
        HostItem::Network,
        HostItem::Processes,
        HostItem::OwnProcess,
    ];
}

/// File system types skipped by default: pseudo, virtual, in-memory and overlay file systems.
pub const DEFAULT_EXCLUDED_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "erofs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Mount points skipped by default, with everything mounted below them.
pub const DEFAULT_EXCLUDED_MOUNT_POINTS: &[&str] = &["/dev", "/proc", "/sys", "/run/credentials"];

/// Host collector settings. Every field has a default, so an empty TOML table is valid; unknown
/// keys are refused.
///
/// ```
/// use std::time::Duration;
/// use vigilo::host::{HostConfig, HostItem};
///
/// let config: HostConfig = toml::from_str(r#"
///     interval = "5s"
///     items = ["cpu", "memory", "disks"]
///     processes_watched = ["nginx"]
/// "#)?;
/// assert_eq!(config.interval, Duration::from_secs(5));
/// assert!(config.collects(HostItem::Memory));
/// assert!(!config.collects(HostItem::Network));
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Time between two refreshes of the collector thread; a humane string in TOML (`"1s"`,
    /// `"500ms"`, `"1m30s"`). Default 1 s.
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    /// The groups of items to collect. Default: all of them.
    pub items: Vec<HostItem>,
    /// Process names whose liveness is reported as `host_process_up{name}`. A running (not
    /// zombie) process matches when its name (on Linux the kernel's name, cut at 15 bytes) or
    /// the file name of its executable equals the entry exactly. The executable of another
    /// user's process is readable only with privileges, so without them a name longer than 15
    /// bytes matches only this user's processes. Default: none.
    pub processes_watched: Vec<String>,
    /// File system types (`ext4`, `tmpfs`…) whose mounts are skipped, compared exactly. Default:
    /// [`DEFAULT_EXCLUDED_FILESYSTEMS`].
    pub exclude_filesystems: Vec<String>,
    /// Mount points skipped together with everything mounted below them (`"/dev"` skips `/dev`
    /// and `/dev/shm`, not `/devices`). Default: [`DEFAULT_EXCLUDED_MOUNT_POINTS`].
    pub exclude_mount_points: Vec<String>,
    /// Network interfaces skipped: an exact name (`"lo"`) or a prefix ending in `*`
    /// (`"veth*"`). Default: none.
    pub exclude_interfaces: Vec<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            interval: Duration::from_secs(1),
            items: HostItem::ALL.to_vec(),
            processes_watched: Vec::new(),
            exclude_filesystems: DEFAULT_EXCLUDED_FILESYSTEMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            exclude_mount_points: DEFAULT_EXCLUDED_MOUNT_POINTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            exclude_interfaces: Vec::new(),
        }
    }
}

impl HostConfig {
    /// A configuration collecting only `items`, with every other setting at its default.
    pub fn with_items(items: &[HostItem]) -> Self {
        HostConfig {
            items: items.to_vec(),
            ..HostConfig::default()
        }
    }

    /// True if `item` is among the configured items.
    pub fn collects(&self, item: HostItem) -> bool {
        self.items.contains(&item)
    }

    /// Checks what serde cannot: a non-zero interval and non-empty names.
    pub fn validate(&self) -> Result<(), HostError> {
        let invalid = |reason: String| Err(HostError::InvalidConfig { reason });
        if self.interval.is_zero() {
            return invalid("interval must be greater than zero".to_owned());
        }
        if self.processes_watched.iter().any(|n| n.is_empty()) {
            return invalid("processes_watched contains an empty name".to_owned());
        }
        if self.exclude_mount_points.iter().any(|m| m.is_empty()) {
            return invalid("exclude_mount_points contains an empty path".to_owned());
        }
        if let Some(bad) = self
            .exclude_interfaces
            .iter()
            .find(|p| p.is_empty() || p.trim_end_matches('*').contains('*'))
        {
            return invalid(format!(
                "exclude_interfaces entry {bad:?} must be a name or a prefix followed by one `*`"
            ));
        }
        Ok(())
    }

    /// True if the mount at `mount_point` with file system `fs_type` is skipped.
    pub fn excludes_mount(&self, mount_point: &str, fs_type: &str) -> bool {
        self.exclude_filesystems.iter().any(|f| f == fs_type)
            || self.exclude_mount_points.iter().any(|m| {
                let m = m.trim_end_matches('/');
                // "/" itself trims to "" and excludes every mount.
                mount_point
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }

    /// True if the network interface `name` is skipped.
    pub(crate) fn excludes_interface(&self, name: &str) -> bool {
        self.exclude_interfaces
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_filter() {
        let c = HostConfig::default();
        assert!(c.excludes_mount("/dev/shm", "ext4"));
        assert!(c.excludes_mount("/dev", "ext4"));
        assert!(!c.excludes_mount("/devices", "ext4"));
        assert!(c.excludes_mount("/var/lib/x", "overlay"));
        assert!(c.excludes_mount("/run/user/1000", "tmpfs"));
        assert!(!c.excludes_mount("/", "ext4"));
        assert!(!c.excludes_mount("/home", "xfs"));
        let c = HostConfig {
            exclude_mount_points: vec!["/mnt/".into()],
            ..HostConfig::default()
        };
        assert!(c.excludes_mount("/mnt/usb", "vfat"));
        assert!(!c.excludes_mount("/mntx", "vfat"));
    }

    #[test]
    fn interface_filter() {
        let c = HostConfig {
            exclude_interfaces: vec!["lo".into(), "veth*".into()],
            ..HostConfig::default()
        };
        assert!(c.excludes_interface("lo"));
        assert!(!c.excludes_interface("lo0"));
        assert!(c.excludes_interface("veth12ab"));
        assert!(!c.excludes_interface("eth0"));
        assert!(c.validate().is_ok());
        let bad = HostConfig {
            exclude_interfaces: vec!["v*eth".into()],
            ..HostConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn validation() {
        assert!(HostConfig::default().validate().is_ok());
        let zero = HostConfig {
            interval: Duration::ZERO,
            ..HostConfig::default()
        };
        assert!(zero.validate().is_err());
        let empty = HostConfig {
            processes_watched: vec![String::new()],
            ..HostConfig::default()
        };
        assert!(empty.validate().is_err());
    }
}
