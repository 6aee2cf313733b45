//! Metric and label names of the host items, following Prometheus conventions: base units,
//! `_bytes`, `_per_second` rates, and percentages as `_ratio` values in `0.0..=1.0`.
//!
//! Every series is a gauge; [`REFRESH_ERRORS_TOTAL`] is the only counter.

/// All cores together, `0.0..=1.0`.
pub const CPU_USAGE_RATIO: &str = "host_cpu_usage_ratio";
/// One logical core, `0.0..=1.0`; label [`LABEL_CORE`] (`"0"`, `"1"`…).
pub const CPU_CORE_USAGE_RATIO: &str = "host_cpu_core_usage_ratio";
/// Load average over 1 minute.
pub const LOAD1: &str = "host_load1";
/// Load average over 5 minutes.
pub const LOAD5: &str = "host_load5";
/// Load average over 15 minutes.
pub const LOAD15: &str = "host_load15";
/// Memory in use (total minus available), bytes.
pub const MEMORY_USED_BYTES: &str = "host_memory_used_bytes";
/// Installed memory, bytes.
pub const MEMORY_TOTAL_BYTES: &str = "host_memory_total_bytes";
/// Used over total memory, `0.0..=1.0`.
pub const MEMORY_USAGE_RATIO: &str = "host_memory_usage_ratio";
/// Swap in use, bytes.
pub const SWAP_USED_BYTES: &str = "host_swap_used_bytes";
/// Swap size, bytes.
pub const SWAP_TOTAL_BYTES: &str = "host_swap_total_bytes";
/// Used over total swap, `0.0..=1.0` (0 without swap).
pub const SWAP_USAGE_RATIO: &str = "host_swap_usage_ratio";
/// Space in use on a mounted file system (total minus available to unprivileged users), bytes;
/// labels [`LABEL_MOUNT`], [`LABEL_DEVICE`].
pub const DISK_USED_BYTES: &str = "host_disk_used_bytes";
/// Size of a mounted file system, bytes; labels [`LABEL_MOUNT`], [`LABEL_DEVICE`].
pub const DISK_TOTAL_BYTES: &str = "host_disk_total_bytes";
/// Used over total space, `0.0..=1.0`; labels [`LABEL_MOUNT`], [`LABEL_DEVICE`].
pub const DISK_USAGE_RATIO: &str = "host_disk_usage_ratio";
/// Bytes read from a device per second since the previous refresh; label [`LABEL_DEVICE`].
pub const DISK_READ_BYTES_PER_SECOND: &str = "host_disk_read_bytes_per_second";
/// Bytes written to a device per second since the previous refresh; label [`LABEL_DEVICE`].
pub const DISK_WRITTEN_BYTES_PER_SECOND: &str = "host_disk_written_bytes_per_second";
/// Bytes received on an interface per second; label [`LABEL_INTERFACE`].
pub const NETWORK_RECEIVE_BYTES_PER_SECOND: &str = "host_network_receive_bytes_per_second";
/// Bytes sent on an interface per second; label [`LABEL_INTERFACE`].
pub const NETWORK_TRANSMIT_BYTES_PER_SECOND: &str = "host_network_transmit_bytes_per_second";
/// Number of processes (not threads).
pub const PROCESSES: &str = "host_processes";
/// 1.0 while a watched process runs, 0.0 otherwise; label [`LABEL_NAME`].
pub const PROCESS_UP: &str = "host_process_up";
/// CPU time this process used per second of wall time: 1.0 is one core fully busy, so it can
/// exceed 1.0 on a machine with several cores.
pub const PROCESS_CPU_USAGE_RATIO: &str = "process_cpu_usage_ratio";
/// Resident set size of this process, bytes.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Counter of collector-thread refreshes that failed (see
/// [`HostCollector::last_error`](super::HostCollector::last_error)).
pub const REFRESH_ERRORS_TOTAL: &str = "vigilo_host_refresh_errors_total";

/// Label of [`CPU_CORE_USAGE_RATIO`]: the core's index.
pub const LABEL_CORE: &str = "core";
/// Label of the disk items: where the file system is mounted.
pub const LABEL_MOUNT: &str = "mount";
/// Label of the disk items: the device as the mount table names it (`/dev/sda1`).
pub const LABEL_DEVICE: &str = "device";
/// Label of the network items: the interface name.
pub const LABEL_INTERFACE: &str = "interface";
/// Label of [`PROCESS_UP`]: the watched name.
pub const LABEL_NAME: &str = "name";

/// What each host item measures and its unit, given to the registry as descriptions (the
/// exposition's HELP and UNIT lines).
pub(crate) const DESCRIPTIONS: &[(&str, Option<&str>, &str)] = &[
    (
        CPU_USAGE_RATIO,
        Some("ratio"),
        "CPU in use, all cores together",
    ),
    (
        CPU_CORE_USAGE_RATIO,
        Some("ratio"),
        "CPU in use, one logical core",
    ),
    (LOAD1, None, "Load average over 1 minute"),
    (LOAD5, None, "Load average over 5 minutes"),
    (LOAD15, None, "Load average over 15 minutes"),
    (
        MEMORY_USED_BYTES,
        Some("bytes"),
        "Memory in use (total minus available)",
    ),
    (MEMORY_TOTAL_BYTES, Some("bytes"), "Installed memory"),
    (
        MEMORY_USAGE_RATIO,
        Some("ratio"),
        "Memory in use over installed memory",
    ),
    (SWAP_USED_BYTES, Some("bytes"), "Swap in use"),
    (SWAP_TOTAL_BYTES, Some("bytes"), "Swap size"),
    (
        SWAP_USAGE_RATIO,
        Some("ratio"),
        "Swap in use over swap size",
    ),
    (
        DISK_USED_BYTES,
        Some("bytes"),
        "Space in use on a mounted file system",
    ),
    (
        DISK_TOTAL_BYTES,
        Some("bytes"),
        "Size of a mounted file system",
    ),
    (
        DISK_USAGE_RATIO,
        Some("ratio"),
        "Space in use over size of a mounted file system",
    ),
    (
        DISK_READ_BYTES_PER_SECOND,
        None,
        "Bytes read from a device per second",
    ),
    (
        DISK_WRITTEN_BYTES_PER_SECOND,
        None,
        "Bytes written to a device per second",
    ),
    (
        NETWORK_RECEIVE_BYTES_PER_SECOND,
        None,
        "Bytes received on an interface per second",
    ),
    (
        NETWORK_TRANSMIT_BYTES_PER_SECOND,
        None,
        "Bytes sent on an interface per second",
    ),
    (PROCESSES, None, "Number of processes"),
    (
        PROCESS_UP,
        None,
        "1 while a watched process runs, 0 otherwise",
    ),
    (
        PROCESS_CPU_USAGE_RATIO,
        Some("ratio"),
        "CPU time this process used per second of wall time",
    ),
    (
        PROCESS_RESIDENT_MEMORY_BYTES,
        Some("bytes"),
        "Resident memory of this process",
    ),
    (
        REFRESH_ERRORS_TOTAL,
        None,
        "Host collector refreshes that failed",
    ),
];
