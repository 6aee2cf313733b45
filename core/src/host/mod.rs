//! Host items through `sysinfo`: CPU, load, memory, swap, disks, network, processes and this
//! process, written into a [`Registry`](crate::Registry) as ordinary gauges.
//!
//! - [`HostConfig`] chooses the items ([`HostItem`]), the interval, the watched process names
//!   and the mount and interface filters; it reads from TOML.
//! - [`HostSampler`] does one synchronous refresh of the configured items.
//! - [`HostCollector`] runs a sampler on its own thread every interval until stopped.
//!
//! The series and their units are listed in [`names`]: base units (bytes, seconds), rates per
//! second, and every percentage as a `_ratio` in `0.0..=1.0` (except
//! `process_cpu_usage_ratio`, where 1.0 is one core and a multi-threaded process can go above).
//!
//! ```no_run
//! use vigilo::Registry;
//! use vigilo::host::{HostCollector, HostConfig};
//!
//! let registry = Registry::new();
//! let config: HostConfig = toml::from_str(r#"
//!     interval = "10s"
//!     processes_watched = ["nginx", "postgres"]
//! "#)?;
//! let collector = HostCollector::start(&registry, config)?;
//! // … the registry now holds host_cpu_usage_ratio, host_disk_usage_ratio{mount,device}, …
//! collector.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod collector;
mod config;
mod disks;
mod error;
pub mod logs;
pub mod names;
mod network;
pub mod probes;
mod process;
mod sampler;
mod series;
mod tally;
mod watchers;

pub use collector::{HostCollector, RefreshNotice};
pub use config::{
    DEFAULT_EXCLUDED_FILESYSTEMS, DEFAULT_EXCLUDED_MOUNT_POINTS, HostConfig, HostItem,
};
pub use error::HostError;
pub use sampler::{HostSampler, RefreshStats};
pub use tally::MIN_RATE_WINDOW;
pub use watchers::Watchers;
