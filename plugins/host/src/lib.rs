//! Runs vigilo's alert channels and recovery actions as sandboxed WebAssembly components.
//!
//! A plugin is a component (target `wasm32-wasip2`) implementing a world of the
//! `vigilo:plugin` contract (`plugins/wit`): `channel-plugin` or `action-plugin`. The
//! [`PluginHost`] loads it ([`PluginHost::load_channel`], [`PluginHost::load_action`]),
//! checks that it implements the expected world and imports only what its kind may use,
//! optionally checks a SHA-256 pin, compiles it once, and hands back a [`ChannelPlugin`]
//! (a [`vigilo::alert::Channel`]) or an [`ActionPlugin`] (a [`vigilo::alert::Action`]).
//!
//! # The sandbox
//!
//! Every call runs in a fresh instance with, per plugin ([`PluginSettings`]):
//!
//! * a memory cap (`memory_limit`) and a compute deadline (`deadline`: the time the guest
//!   actually runs, by epoch interruption); exceeding either stops the call with
//!   [`PluginError::MemoryExhausted`] or [`PluginError::Timeout`];
//! * a hard wall-clock limit on the whole call, whatever it waits for: by default
//!   [`vigilo::plugin::CALL_TIMEOUT_FACTOR`] × `deadline` ([`PluginSettings::call_limit`]),
//!   `call_timeout` when set; the call ends with [`PluginError::CallTimeout`], its instance is
//!   freed and its commands killed;
//! * at most `max_concurrent_calls` calls at once ([`PluginError::Busy`] beyond), and one of
//!   the host's pooled instances kept for each loaded plugin, so the calls of one plugin never
//!   take them all ([`PluginError::NoInstance`] when its own and the shared ones are busy);
//! * a stack of its own: the guest runs on a fiber of [`PluginHostConfig::call_stack`] bytes,
//!   so a caller needs no particular stack size (any thread, a tokio task included);
//! * bounds on what crosses the boundary: alert fields are cut before they enter the guest,
//!   strings it returns are cut to 4 KiB, its header maps and resources are limited;
//! * WASI with nothing granted: no files, no environment, no arguments, no sockets; stdout and
//!   stderr are captured (the last [`PluginHostConfig::output_capacity`] bytes) and logged;
//! * `wasi:http` outgoing requests only to `allowed_hosts` (authorities read strictly, plain-HTTP
//!   host names resolved once per request and pinned), with `http_timeout`; plain-HTTP requests
//!   reuse the plugin's kept-alive connections, HTTPS ones get a new connection each;
//! * `exec` (actions only) only for [`ExecGrant`]s, at most `max_exec_runs` per call, every
//!   request audited ([`AuditRecord`]);
//! * `mail` only through the plugin's [`SmtpSettings`] server, line endings normalised;
//! * `log` (capped per message and per call) and `clock` (the host's [`vigilo::clock::Clock`]).
//!
//! Everything a plugin says goes to the [`log`] facade: target `vigilo::plugin` (its log
//! import, stdout, stderr, faults) and `vigilo::plugin::audit` (exec requests), made inert
//! first (control characters shown as escapes, one record per log call), as is every string it
//! returns. A host error it can read carries no backtrace or host path.
//!
//! With `[plugins] cache_dir`, compiled components are kept on disk and run again only if they
//! verify as this host's own compilation ([`PluginHost::cache_stats`]).
//!
//! # Faults
//!
//! A trap, a timeout (compute or call) or an exhausted memory is a [`PluginError`]; the engine
//! and the other
//! plugins go on. After [`PluginHostConfig::breaker_threshold`] such faults in a row the plugin is
//! quarantined: calls fail at once with [`PluginError::Quarantined`] until
//! [`PluginHost::reload`] (which also picks up a new file) clears it.
//!
//! ```no_run
//! use vigilo_plugin_host::{PluginHostConfig, PluginHost, PluginSettings};
//! use vigilo::alert::Channel;
//!
//! let host = PluginHost::new(PluginHostConfig::default())?;
//! let mut settings = PluginSettings::new("webhook", "/etc/vigilo/plugins/webhook.wasm");
//! settings.allowed_hosts = vec!["hooks.example.com".into()];
//! let webhook = host.load_channel(settings)?;
//! assert_eq!(webhook.name(), "webhook");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audit;
mod bindings;
mod budget;
mod cache;
mod compiled;
mod error;
mod exec;
mod grant;
mod host;
mod http;
mod inert;
mod io_error;
mod limits;
mod loader;
mod mail;
mod output;
mod plugin;
mod policy;
mod pool;
mod runtime;
mod shares;
mod state;
mod ticker;
mod world;

use std::fmt;

pub use audit::{AuditOutcome, AuditRecord};
pub use cache::CacheStats;
pub use error::{LoadError, PluginError, PluginHostError};
pub use host::PluginHost;
pub use http::HTTP_LOG_TARGET;
pub use loader::{BundledResolver, WasmLoader, bundled_file, loader, monitor, start};
pub use plugin::{ActionPlugin, ChannelPlugin, PluginStatus};
pub use state::LOG_TARGET;
/// The settings are plain data defined in `vigilo::plugin` (core parses them from the
/// configuration file without knowing wasmtime); they are re-exported here for convenience.
pub use vigilo::plugin::{
    ExecGrant, PluginHostConfig, PluginSettings, SmtpCredentials, SmtpSettings, SmtpTls,
    parse_bytes,
};

/// The two kinds of plugin, one per world of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PluginKind {
    /// `channel-plugin`: delivers alerts.
    Channel,
    /// `action-plugin`: runs a recovery action.
    Action,
}

impl PluginKind {
    /// The interface the kind exports (`channel`, `action`).
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Channel => "channel",
            PluginKind::Action => "action",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            PluginKind::Channel => "a channel",
            PluginKind::Action => "an action",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.interface())
    }
}
