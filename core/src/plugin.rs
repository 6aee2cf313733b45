//! What a plugin may do, as the operator configures it: per plugin ([`PluginSettings`]: file,
//! memory cap, deadline, allowed hosts, granted commands, SMTP server, its own settings) and per
//! plugin host ([`PluginHostConfig`]).
//!
//! This is plain data: `core` reads it from the configuration file (`[[channel]]`, `[[action]]`,
//! `[plugins]`) without knowing how plugins run; `vigilo-plugin-host` enforces it in its
//! wasmtime sandbox and re-exports these types.
//!
//! Both deserialize from TOML (or any serde format). Durations are humane strings (`"2s"`,
//! `"500ms"`), sizes are bytes or strings with a unit (`"32MiB"`, `"64KiB"`, `"1GB"`).
//!
//! ```
//! use vigilo::plugin::PluginSettings;
//!
//! let s: PluginSettings = toml::from_str(r#"
//!     name = "restart-nginx"
//!     path = "/etc/vigilo/plugins/restart.wasm"
//!     sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//!     memory_limit = "16MiB"
//!     deadline = "1s"
//!     allowed_hosts = ["hooks.example.com", "127.0.0.1:9093"]
//!
//!     [[exec_grants]]
//!     command = "/usr/bin/systemctl"
//!     args = ["restart", "nginx|php-fpm"]
//!     timeout = "30s"
//!
//!     [config]
//!     service = "nginx"
//! "#).unwrap();
//! assert_eq!(s.memory_limit, 16 << 20);
//! assert_eq!(s.exec_grants[0].args.len(), 2);
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::serde_duration;
use serde::{Deserialize, Deserializer};

/// One plugin as the operator configured it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// The plugin's name: unique per host, used in logs, errors and the audit trail.
    pub name: String,
    /// The component file (`.wasm`). Empty when loaded from bytes.
    #[serde(default)]
    pub path: PathBuf,
    /// If set, the file's SHA-256 (hex, optionally prefixed `sha256:`) must match or the
    /// plugin is refused. Checked at every load and reload.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The most linear memory one instance may use (default 32 MiB).
    #[serde(default = "default_memory_limit", deserialize_with = "de_bytes")]
    pub memory_limit: usize,
    /// How long one call may compute (default 2 s): the time the guest actually runs. Time it
    /// spends blocked (waiting for HTTP, a command, a mail server, a sleep) is not counted;
    /// `call_timeout` bounds that.
    #[serde(default = "default_deadline", with = "serde_duration")]
    pub deadline: Duration,
    /// How long one call may take in all, wall clock, whatever it does or waits for (sleeps,
    /// HTTP, commands, mail). Zero (the default): [`CALL_TIMEOUT_FACTOR`] × `deadline` (8 s
    /// with the default 2 s deadline), so the wall bound follows the compute deadline the
    /// operator chose, stretched only to let a granted command or the SMTP exchange run to the
    /// timeout the operator gave it; see [`call_limit`](Self::call_limit). Any other value
    /// overrides that. At the limit the call is ended, its instance freed and its commands
    /// killed.
    #[serde(default, with = "serde_duration")]
    pub call_timeout: Duration,
    /// Calls of this plugin that may run at once (default 4); one more fails at once with the
    /// host's `Busy` error. Whatever its value, every loaded plugin keeps one pooled instance of
    /// the host's `max_instances` for itself, so the calls of one plugin cannot take them all.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: u32,
    /// Commands one call may run through `exec` (default 8); further requests are denied.
    #[serde(default = "default_max_exec_runs")]
    pub max_exec_runs: u32,
    /// Where the plugin may send `wasi:http` requests: `"host"` (the scheme's default port:
    /// 80 for http, 443 for https), `"host:port"`, `"host:*"` (any port) or `"[::1]:8080"`.
    /// Names compare case-insensitively and exactly (no wildcards in the name).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Connect, first-byte and between-bytes timeout of each outgoing HTTP request (default
    /// 5 s). A plugin may ask for shorter, never longer.
    #[serde(default = "default_http_timeout", with = "serde_duration")]
    pub http_timeout: Duration,
    /// Commands the plugin may run (action plugins only; a channel with grants is refused).
    #[serde(default)]
    pub exec_grants: Vec<ExecGrant>,
    /// The SMTP server the `mail` import sends through; none: every send is denied.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// Handed to the plugin as JSON on every call.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

impl PluginSettings {
    /// Settings with every default: no network, no commands, no mail, an empty config.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        PluginSettings {
            name: name.into(),
            path: path.into(),
            sha256: None,
            memory_limit: default_memory_limit(),
            deadline: default_deadline(),
            call_timeout: Duration::ZERO,
            max_concurrent_calls: default_max_concurrent_calls(),
            max_exec_runs: default_max_exec_runs(),
            allowed_hosts: Vec::new(),
            http_timeout: default_http_timeout(),
            exec_grants: Vec::new(),
            smtp: None,
            config: empty_object(),
        }
    }
}

/// The default wall-clock bound of a call, as a multiple of its compute `deadline`: a call
/// ends at `CALL_TIMEOUT_FACTOR × deadline` unless `call_timeout` says otherwise.
///
/// Why 4: a call's own compute is bounded by `deadline`; the rest of its wall time is waiting
/// (HTTP answers, a command, the SMTP server). Four times the deadline (8 s by default) leaves
/// a plugin three deadlines of waiting, enough for a receiver that answers within seconds,
/// while a guest that sleeps, re-requests a slow endpoint in a loop or reads a trickled body
/// is ended within that small multiple of what the operator granted it, not after a fixed
/// time unrelated to it.
pub const CALL_TIMEOUT_FACTOR: u32 = 4;

impl PluginSettings {
    /// The wall-clock bound of one call: `call_timeout` if not zero; else [`CALL_TIMEOUT_FACTOR`] ×
    /// `deadline`, or `deadline` plus the longest timeout the operator granted a wait of the
    /// plugin (an exec grant's `timeout`, the SMTP server's `timeout`) if that is longer, so a
    /// granted command or a mail is not cut short by a bound meant for the guest itself.
    pub fn call_limit(&self) -> Duration {
        if !self.call_timeout.is_zero() {
            return self.call_timeout;
        }
        let granted = self
            .exec_grants
            .iter()
            .map(|g| g.timeout)
            .chain(self.smtp.as_ref().map(|s| s.timeout))
            .max()
            .unwrap_or(Duration::ZERO);
        self.deadline
            .saturating_mul(CALL_TIMEOUT_FACTOR)
            .max(self.deadline.saturating_add(granted))
    }
}

/// A command an action plugin may run.
///
/// The plugin names the command by its absolute path, exactly as granted (no `PATH` search, no
/// shell). `args` holds one regular expression per argument position: the call must pass
/// exactly that many arguments and each must match its pattern as a whole (the pattern is
/// anchored: `"nginx|redis"` accepts `nginx` or `redis`, nothing else). An empty `args`
/// grants the command with no arguments only.
///
/// Patterns are matched against arguments as given, so write them with options in mind: a
/// pattern like `[a-z0-9-]+` also accepts `-rf` and `--help`. Start the class with what an
/// option cannot start with (`[a-z0-9][a-z0-9-]*`), or set `end_of_options = true` to have
/// `--` passed before the arguments, so the command reads none of them as an option. By
/// default (`ascii_only = true`) an argument with any character outside ASCII is refused,
/// because Unicode classes match more than they seem to (`\d` matches Arabic, Devanagari and
/// full-width digits, `\w` letters of every script). Arguments are at most 256 in number and
/// 64 KiB in all.
///
/// The process starts with an empty environment, `/` as working directory, standard input
/// closed, in a process group of its own. When it exits or its `timeout` passes, the whole
/// group is killed (`SIGKILL`), so nothing it started outlives it. Standard output and error
/// keep their last `max_output` bytes each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecGrant {
    /// Absolute path of the executable.
    pub command: PathBuf,
    /// One anchored regular expression per argument position.
    #[serde(default)]
    pub args: Vec<String>,
    /// Killed (with its process group) after this long (default 30 s).
    #[serde(default = "default_exec_timeout", with = "serde_duration")]
    pub timeout: Duration,
    /// Bytes of stdout and of stderr kept, the last ones (default 64 KiB).
    #[serde(default = "default_max_output", deserialize_with = "de_bytes")]
    pub max_output: usize,
    /// Pass `--` before the plugin's arguments (default false).
    #[serde(default)]
    pub end_of_options: bool,
    /// Refuse arguments with characters outside ASCII (default true).
    #[serde(default = "yes")]
    pub ascii_only: bool,
}

impl ExecGrant {
    /// A grant of `command` with one pattern per argument and the default timeout and cap.
    pub fn new(command: impl Into<PathBuf>, args: &[&str]) -> Self {
        ExecGrant {
            command: command.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            timeout: default_exec_timeout(),
            max_output: default_max_output(),
            end_of_options: false,
            ascii_only: true,
        }
    }
}

/// How the `mail` import reaches its SMTP server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or address of the server.
    pub server: String,
    /// Port (default: 465 for `tls`, 587 for `starttls`, 25 for `none`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Login, if the server wants one. The plugin never sees it.
    #[serde(default)]
    pub credentials: Option<SmtpCredentials>,
    /// Connection and command timeout (default 10 s).
    #[serde(default = "default_smtp_timeout", with = "serde_duration")]
    pub timeout: Duration,
}

/// Transport security for SMTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// No encryption at all (a relay on loopback, a test server).
    None,
}

/// SMTP login.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Settings of the host as a whole (one wasmtime engine shared by every plugin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginHostConfig {
    /// How many plugin instances may be alive at once, across all plugins (the size of the
    /// pooling allocator). Each loaded plugin keeps one for itself, so the calls of one plugin
    /// can never take them all; its further concurrent calls share the rest (`max_instances`
    /// − loaded plugins) and fail at once (`NoInstance`) when none is free. Load no more
    /// plugins than this: beyond it not every plugin can keep one (a warning says so at load).
    ///
    /// Each pooled instance reserves address space up front (wasmtime's default of about 4 GiB
    /// of virtual memory per linear memory, two memories per instance), not resident memory.
    pub max_instances: u32,
    /// The largest `memory_limit` any plugin may have (the memory reserved per pooled instance).
    #[serde(deserialize_with = "de_bytes")]
    pub max_memory: usize,
    /// The epoch ticker's period: the resolution of deadlines.
    #[serde(with = "serde_duration")]
    pub epoch_tick: Duration,
    /// The stack of each call (default 2 MiB): calls run on a stack of their own, whatever
    /// thread makes them. The guest's own WebAssembly stack may use half of it; deeper
    /// recursion traps cleanly.
    #[serde(deserialize_with = "de_bytes")]
    pub call_stack: usize,
    /// Consecutive faults (traps, timeouts, exhausted memory) that quarantine a plugin.
    pub breaker_threshold: u32,
    /// How many exec audit records are kept in memory (oldest dropped first).
    pub audit_capacity: usize,
    /// Log messages a plugin may send per call; the rest are counted and dropped.
    pub log_max_messages: u32,
    /// Bytes of one log message; longer ones are cut.
    #[serde(deserialize_with = "de_bytes")]
    pub log_max_bytes: usize,
    /// Bytes of a call's stdout and of its stderr kept for the log (the last ones).
    #[serde(deserialize_with = "de_bytes")]
    pub output_capacity: usize,
    /// An absolute directory where the plugin host keeps compiled plugins across runs, one
    /// entry per component and engine configuration, each with an HMAC-SHA256 tag under a key
    /// kept in the directory (owner-only): an entry that does not verify as this host's own
    /// compilation is never run, but compiled again and replaced. The directory must be owned
    /// by the host's user and writable by no one else (else the host refuses to start); it is
    /// created (0700) if missing. `None` (the default) compiles at every load.
    pub cache_dir: Option<PathBuf>,
    /// Where a `plugin = "webhook"` entry of the configuration finds its component:
    /// `<dir>/vigilo_webhook.wasm` (the bundled plugins as `cargo build --release --target
    /// wasm32-wasip2` names them). Relative to the configuration file's folder. `None`: the
    /// embedding program says where (see `vigilo-plugin-host`'s loader).
    pub dir: Option<PathBuf>,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        PluginHostConfig {
            max_instances: 64,
            max_memory: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            call_stack: 2 << 20,
            breaker_threshold: 3,
            audit_capacity: 1000,
            log_max_messages: 100,
            log_max_bytes: 2048,
            output_capacity: 8 << 10,
            cache_dir: None,
            dir: None,
        }
    }
}

pub(crate) fn default_memory_limit() -> usize {
    32 << 20
}
pub(crate) fn default_deadline() -> Duration {
    Duration::from_secs(2)
}
pub(crate) fn default_max_concurrent_calls() -> u32 {
    4
}
pub(crate) fn default_max_exec_runs() -> u32 {
    8
}
fn yes() -> bool {
    true
}
pub(crate) fn default_http_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_exec_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_output() -> usize {
    64 << 10
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(10)
}
pub(crate) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Parses `"32MiB"`, `"512KiB"`, `"1GB"`, `"4096"` or `"4096B"` into bytes. Public for the
/// plugin host's settings (another crate), not part of the documented API.
#[doc(hidden)]
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a number with an optional unit such as \"32MiB\"")
    })?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

pub(crate) fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Number(n) => usize::try_from(n).map_err(serde::de::Error::custom),
        Size::Text(s) => parse_bytes(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("32MiB"), Ok(32 << 20));
        assert_eq!(parse_bytes("1KB"), Ok(1000));
        assert_eq!(parse_bytes("77"), Ok(77));
        assert!(
            parse_bytes("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_bytes("MiB").is_err());
    }

    #[test]
    fn defaults_and_toml() {
        let s: PluginSettings =
            toml::from_str("name = \"x\"\npath = \"/p.wasm\"\nmemory_limit = 1048576").unwrap();
        assert_eq!(s.memory_limit, 1 << 20);
        assert_eq!(s.deadline, Duration::from_secs(2));
        assert_eq!(s.http_timeout, Duration::from_secs(5));
        assert_eq!(
            s.call_timeout,
            Duration::ZERO,
            "the default: derived from the deadline"
        );
        assert_eq!(
            s.call_limit(),
            Duration::from_secs(8),
            "4 × the 2 s deadline"
        );
        assert!(s.config.is_object());
        let s: PluginSettings =
            toml::from_str("name = \"x\"\ndeadline = \"250ms\"\ncall_timeout = \"3s\"").unwrap();
        assert_eq!(
            s.call_limit(),
            Duration::from_secs(3),
            "an explicit override"
        );
        let mut s = PluginSettings::new("restart", "/p.wasm");
        s.deadline = Duration::from_millis(500);
        assert_eq!(s.call_limit(), Duration::from_secs(2));
        s.exec_grants = vec![ExecGrant::new("/usr/bin/systemctl", &[])];
        assert_eq!(
            s.call_limit(),
            Duration::from_millis(30_500),
            "a granted command may run to its own timeout"
        );
        let err =
            toml::from_str::<PluginSettings>("name = \"x\"\ndeadline = \"soon\"").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        let err = toml::from_str::<PluginSettings>("name = \"x\"\nmemroy_limit = 1").unwrap_err();
        assert!(err.to_string().contains("memroy_limit"), "{err}");
        let h: PluginHostConfig = toml::from_str("max_memory = \"64MiB\"").unwrap();
        assert_eq!(h.max_memory, 64 << 20);
        assert_eq!(h.breaker_threshold, 3);
    }

    #[test]
    fn credentials_are_redacted() {
        let c = SmtpCredentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
