//! Typed errors: [`LoadError`] (a plugin could not be loaded or reloaded) and [`PluginError`]
//! (a call failed in the sandbox, as opposed to the plugin answering with an error of its own),
//! and how they map onto core's [`DeliveryError`] and [`ActionError`].

use std::path::PathBuf;
use std::time::Duration;

use vigilo::alert::{ActionError, DeliveryError};

use crate::PluginKind;

/// Why a plugin could not be loaded (or reloaded). Every variant names the plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("plugin {name}: cannot read {}: {source}", path.display())]
    Io {
        /// The plugin.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin {name}: {} is not a valid WebAssembly component: {message}", path.display())]
    Malformed {
        /// The plugin.
        name: String,
        /// The file (`<bytes>` when loaded from memory).
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The file's SHA-256 differs from the configured pin.
    #[error("plugin {name}: {} has sha256 {actual}, but the configuration pins {expected}", path.display())]
    PinMismatch {
        /// The plugin.
        name: String,
        /// The file.
        path: PathBuf,
        /// The configured digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// The component implements another world (an action loaded as a channel, or no vigilo
    /// world at all).
    #[error("plugin {name}: {detail}")]
    WrongWorld {
        /// The plugin.
        name: String,
        /// What it is and what was expected.
        detail: String,
    },
    /// The component imports an interface its kind of plugin may not use.
    #[error("plugin {name} imports {import}, which {kind} plugins may not use")]
    ForbiddenImport {
        /// The plugin.
        name: String,
        /// The import, without its version (`vigilo:plugin/exec`).
        import: String,
        /// The kind it was loaded as.
        kind: PluginKind,
    },
    /// The component imports something this host does not provide.
    #[error("plugin {name} imports {import}, which this host does not provide")]
    UnknownImport {
        /// The plugin.
        name: String,
        /// The import as the component names it.
        import: String,
    },
    /// The component targets a version of the contract this host does not know.
    #[error("plugin {name} targets vigilo:plugin@{version}; this host supports {supported}")]
    UnsupportedVersion {
        /// The plugin.
        name: String,
        /// The version it exports.
        version: String,
        /// The versions this host loads.
        supported: String,
    },
    /// The settings are unusable (a relative exec path, a bad pattern, a memory limit above the
    /// host's …).
    #[error("plugin {name}: invalid settings: {message}")]
    Settings {
        /// The plugin.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A plugin of that name is already loaded.
    #[error("plugin {0} is already loaded (use reload to replace it)")]
    Duplicate(String),
    /// No plugin of that name is loaded.
    #[error("no plugin named {0} is loaded")]
    NotLoaded(String),
    /// Wasmtime refused to link the component for another reason.
    #[error("plugin {name}: cannot link: {message}")]
    Link {
        /// The plugin.
        name: String,
        /// What wasmtime said.
        message: String,
    },
}

/// Why a call into a plugin failed in the sandbox. The host and the other plugins are not
/// affected by any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The guest trapped (`unreachable`, a panic, an out-of-bounds access, `exit`).
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap and the end of the guest's stderr (a panic message, say).
        message: String,
    },
    /// The guest computed past its deadline and was interrupted.
    #[error("plugin {plugin} ran past its {deadline:?} deadline and was stopped")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// Its deadline.
        deadline: Duration,
    },
    /// The call as a whole (the guest and everything it waited for) ran past the plugin's
    /// wall-clock bound (`call_timeout`, by default a multiple of its deadline) and was ended:
    /// its instance freed, its commands killed.
    #[error(
        "plugin {plugin}: the call ran past its {limit:?} wall-clock bound (call_timeout) and was ended"
    )]
    CallTimeout {
        /// The plugin.
        plugin: String,
        /// Its wall-clock bound (`PluginSettings::call_limit`).
        limit: Duration,
    },
    /// The plugin already has `max_concurrent_calls` calls running.
    #[error("plugin {plugin} is busy: {limit} calls already running (max_concurrent_calls)")]
    Busy {
        /// The plugin.
        plugin: String,
        /// Its `max_concurrent_calls`.
        limit: u32,
    },
    /// The guest tried to grow its memory past its cap and was stopped.
    #[error("plugin {plugin} tried to use more than its {limit} bytes of memory and was stopped")]
    MemoryExhausted {
        /// The plugin.
        plugin: String,
        /// Its cap in bytes.
        limit: usize,
    },
    /// The guest failed after the host refused it a capability (a host not allowed, a command
    /// not granted, mail without a server).
    #[error("plugin {plugin} was denied: {detail}")]
    Denied {
        /// The plugin.
        plugin: String,
        /// What was refused.
        detail: String,
    },
    /// Too many faults in a row: the plugin is quarantined until it is reloaded.
    #[error(
        "plugin {plugin} is quarantined after {faults} consecutive faults (last: {last}); reload it to try again"
    )]
    Quarantined {
        /// The plugin.
        plugin: String,
        /// The faults that tripped the breaker.
        faults: u32,
        /// The last of them.
        last: String,
    },
    /// Every instance this call could use is busy: the plugin's own one (every loaded plugin
    /// keeps one of the host's `max_instances`) runs another of its calls, and the shared rest
    /// are all in use. Not a fault of the plugin; retrying later may succeed.
    #[error(
        "plugin {plugin}: no pooled instance free (its own one is busy and the shared rest of max_instances = {max_instances} are in use)"
    )]
    NoInstance {
        /// The plugin.
        plugin: String,
        /// The host's `max_instances`.
        max_instances: u32,
    },
    /// A fresh instance could not be created (the instance pool is full, say).
    #[error("plugin {plugin}: cannot instantiate: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// What wasmtime said.
        message: String,
    },
}

impl PluginError {
    /// True for faults of the plugin itself (trap, timeout, exhausted memory): these count
    /// towards quarantine. Denials, a full pool and quarantine itself do not.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            PluginError::Trap { .. }
                | PluginError::Timeout { .. }
                | PluginError::CallTimeout { .. }
                | PluginError::MemoryExhausted { .. }
        )
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        match self {
            PluginError::Trap { plugin, .. }
            | PluginError::Timeout { plugin, .. }
            | PluginError::CallTimeout { plugin, .. }
            | PluginError::Busy { plugin, .. }
            | PluginError::MemoryExhausted { plugin, .. }
            | PluginError::Denied { plugin, .. }
            | PluginError::Quarantined { plugin, .. }
            | PluginError::NoInstance { plugin, .. }
            | PluginError::Instantiate { plugin, .. } => plugin,
        }
    }
}

/// How a sandbox failure reaches the delivery pipeline:
///
/// * trap, timeout (compute or call), exhausted memory, a full pool, no free instance, a busy
///   plugin → [`DeliveryError::Retryable`]: the fault
///   may be passing (a starved CPU, an input that will not recur), retrying with backoff is
///   cheap, and the breaker quarantines a plugin that keeps failing;
/// * denied, quarantined → [`DeliveryError::Permanent`]: retrying cannot help until the
///   operator changes the configuration or reloads the plugin, so the pipeline should move to
///   the fallback channel at once.
impl From<PluginError> for DeliveryError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Denied { .. } | PluginError::Quarantined { .. } => {
                DeliveryError::Permanent(e.to_string())
            }
            PluginError::Trap { .. }
            | PluginError::Timeout { .. }
            | PluginError::CallTimeout { .. }
            | PluginError::Busy { .. }
            | PluginError::MemoryExhausted { .. }
            | PluginError::NoInstance { .. }
            | PluginError::Instantiate { .. } => DeliveryError::Retryable(e.to_string()),
        }
    }
}

/// Timeout (compute or call) → [`ActionError::Timeout`], denied → [`ActionError::Denied`],
/// anything else (trap, exhausted memory, quarantine, a full pool, no free instance, busy) →
/// [`ActionError::Failed`].
impl From<PluginError> for ActionError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Timeout { deadline, .. } => ActionError::Timeout(deadline),
            PluginError::CallTimeout { limit, .. } => ActionError::Timeout(limit),
            PluginError::Denied { .. } => ActionError::Denied(e.to_string()),
            PluginError::Trap { .. }
            | PluginError::Busy { .. }
            | PluginError::MemoryExhausted { .. }
            | PluginError::Quarantined { .. }
            | PluginError::NoInstance { .. }
            | PluginError::Instantiate { .. } => ActionError::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let trap = PluginError::Trap {
            plugin: "p".into(),
            message: "m".into(),
        };
        assert!(trap.is_fault());
        assert!(DeliveryError::from(trap).is_retryable());
        let q = PluginError::Quarantined {
            plugin: "p".into(),
            faults: 3,
            last: "x".into(),
        };
        assert!(!q.is_fault());
        assert!(!DeliveryError::from(q.clone()).is_retryable());
        assert!(matches!(ActionError::from(q), ActionError::Failed(_)));
        let t = PluginError::Timeout {
            plugin: "p".into(),
            deadline: Duration::from_secs(2),
        };
        assert_eq!(
            ActionError::from(t),
            ActionError::Timeout(Duration::from_secs(2))
        );
    }
}

/// Why a host could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginHostError {
    /// Wasmtime refused the engine configuration (or the machine cannot reserve the pool).
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
    /// The runtime that drives calls could not be started.
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(std::io::Error),
    /// The compilation cache directory (`[plugins] cache_dir`) is unsafe or unusable: writable
    /// by other users, owned by another user, or its key file readable by others.
    #[error("[plugins] cache_dir {}: {message}", path.display())]
    Cache {
        /// The directory.
        path: PathBuf,
        /// What is wrong, and what to do about it.
        message: String,
    },
}
