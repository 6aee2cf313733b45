//! The TOML shapes of `[[channel]]` and `[[action]]`: where the plugin is, its sandbox, and for
//! channels the delivery policy (address kind, threads, retries, fallback, rate limit).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, fail};
use crate::pipeline::{
    ActionConfig, AddressKind, ChannelConfig, PluginSource, RateLimit, RetryPolicy,
};
use crate::plugin::{ExecGrant, PluginSettings, SmtpSettings};

/// A size in bytes (`"32MiB"` or a number).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bytes(usize);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::plugin::de_bytes(d).map(Bytes)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) attempts: Option<Spanned<u32>>,
    pub(super) backoff: Option<Dur>,
    pub(super) max_backoff: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRate {
    pub(super) count: u32,
    pub(super) per: Dur,
}

/// `[[channel]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    pub(super) name: Spanned<String>,
    pub(super) plugin: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<PathBuf>>,
    sha256: Option<String>,
    pub(super) memory_limit: Option<Bytes>,
    pub(super) deadline: Option<Dur>,
    pub(super) call_timeout: Option<Dur>,
    pub(super) max_concurrent_calls: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    pub(super) http_timeout: Option<Dur>,
    pub(super) smtp: Option<SmtpSettings>,
    pub(super) config: Option<serde_json::Value>,
    pub(super) address: Option<AddressKind>,
    pub(super) workers: Option<Spanned<usize>>,
    pub(super) retry: Option<RawRetry>,
    pub(super) fallback: Option<Spanned<String>>,
    pub(super) rate_limit: Option<Spanned<RawRate>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub(super) name: Spanned<String>,
    pub(super) plugin: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<PathBuf>>,
    sha256: Option<String>,
    pub(super) memory_limit: Option<Bytes>,
    pub(super) deadline: Option<Dur>,
    pub(super) call_timeout: Option<Dur>,
    pub(super) max_concurrent_calls: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    pub(super) http_timeout: Option<Dur>,
    #[serde(default)]
    pub(super) exec_grants: Vec<ExecGrant>,
    pub(super) max_exec_runs: Option<u32>,
    pub(super) config: Option<serde_json::Value>,
    pub(super) workers: Option<Spanned<usize>>,
}

fn plugin_source(
    plugin: Option<&Spanned<String>>,
    path: Option<&Spanned<PathBuf>>,
) -> Result<PluginSource, Failure> {
    match (plugin, path) {
        (Some(_), Some(p)) => Err(fail(
            p.span(),
            "path",
            "give either `plugin` (a bundled plugin's name) or `path` (a component file), not both",
        )),
        (Some(name), None) => {
            let n = name.get_ref();
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(
                    name.span(),
                    "plugin",
                    format!("bad plugin name {n:?}: a bundled plugin's name, such as \"webhook\""),
                ));
            }
            Ok(PluginSource::Bundled(n.clone()))
        }
        (None, Some(p)) => Ok(PluginSource::File(p.get_ref().clone())),
        (None, None) => Ok(PluginSource::Native),
    }
}

fn workers(w: Option<&Spanned<usize>>, default: usize) -> Result<usize, Failure> {
    match w {
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 64 => Err(fail(
            n.span(),
            "workers",
            "workers must be between 1 and 64",
        )),
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    }
}

/// The fields channels and actions share: where the plugin is and its sandbox.
struct Sandbox<'a> {
    name: &'a Spanned<String>,
    what: &'a str,
    plugin: Option<&'a Spanned<String>>,
    path: Option<&'a Spanned<PathBuf>>,
    sha256: &'a Option<String>,
    memory_limit: Option<Bytes>,
    deadline: Option<Dur>,
    call_timeout: Option<Dur>,
    max_concurrent_calls: Option<&'a Spanned<u32>>,
    allowed_hosts: &'a [String],
    http_timeout: Option<Dur>,
    config: &'a Option<serde_json::Value>,
}

impl Sandbox<'_> {
    fn build(self) -> Result<(PluginSource, PluginSettings), Failure> {
        let name = self.name.get_ref();
        if name.is_empty() {
            return Err(fail(
                self.name.span(),
                "name",
                format!("{} needs a name", self.what),
            ));
        }
        let source = plugin_source(self.plugin, self.path)?;
        let mut plugin = PluginSettings::new(name.clone(), PathBuf::new());
        if let PluginSource::File(p) = &source {
            plugin.path = p.clone();
        }
        plugin.sha256.clone_from(self.sha256);
        if let Some(m) = self.memory_limit {
            plugin.memory_limit = m.0;
        }
        if let Some(d) = self.deadline {
            plugin.deadline = d.0;
        }
        if let Some(d) = self.call_timeout {
            plugin.call_timeout = d.0;
        }
        if let Some(n) = self.max_concurrent_calls {
            if *n.get_ref() == 0 {
                return Err(fail(
                    n.span(),
                    "max_concurrent_calls",
                    "max_concurrent_calls must be at least 1",
                ));
            }
            plugin.max_concurrent_calls = *n.get_ref();
        }
        plugin.allowed_hosts = self.allowed_hosts.to_vec();
        if let Some(d) = self.http_timeout {
            plugin.http_timeout = d.0;
        }
        if let Some(c) = self.config {
            plugin.config = c.clone();
        }
        Ok((source, plugin))
    }
}

impl RawChannel {
    pub(super) fn build(&self) -> Result<ChannelConfig, Failure> {
        let (source, mut plugin) = Sandbox {
            name: &self.name,
            what: "a channel",
            plugin: self.plugin.as_ref(),
            path: self.path.as_ref(),
            sha256: &self.sha256,
            memory_limit: self.memory_limit,
            deadline: self.deadline,
            call_timeout: self.call_timeout,
            max_concurrent_calls: self.max_concurrent_calls.as_ref(),
            allowed_hosts: &self.allowed_hosts,
            http_timeout: self.http_timeout,
            config: &self.config,
        }
        .build()?;
        plugin.smtp.clone_from(&self.smtp);
        let mut retry = RetryPolicy::default();
        if let Some(r) = &self.retry {
            if let Some(a) = &r.attempts {
                if *a.get_ref() == 0 {
                    return Err(fail(
                        a.span(),
                        "retry.attempts",
                        "attempts must be at least 1",
                    ));
                }
                retry.attempts = *a.get_ref();
            }
            if let Some(b) = r.backoff {
                retry.backoff = b.0;
            }
            if let Some(m) = r.max_backoff {
                retry.max_backoff = m.0;
            }
        }
        let rate_limit = match &self.rate_limit {
            Some(r) if r.get_ref().count == 0 || r.get_ref().per.0.is_zero() => {
                return Err(fail(
                    r.span(),
                    "rate_limit",
                    "a rate limit needs count ≥ 1 and a period, e.g. { count = 20, per = \"1m\" }",
                ));
            }
            Some(r) => Some(RateLimit {
                count: r.get_ref().count,
                per: r.get_ref().per.0,
            }),
            None => None,
        };
        Ok(ChannelConfig {
            name: self.name.get_ref().clone(),
            source,
            plugin,
            address: self.address,
            workers: workers(self.workers.as_ref(), 1)?,
            retry,
            fallback: self.fallback.as_ref().map(|f| f.get_ref().clone()),
            rate_limit,
        })
    }
}

impl RawAction {
    pub(super) fn build(&self) -> Result<ActionConfig, Failure> {
        let (source, mut plugin) = Sandbox {
            name: &self.name,
            what: "an action",
            plugin: self.plugin.as_ref(),
            path: self.path.as_ref(),
            sha256: &self.sha256,
            memory_limit: self.memory_limit,
            deadline: self.deadline,
            call_timeout: self.call_timeout,
            max_concurrent_calls: self.max_concurrent_calls.as_ref(),
            allowed_hosts: &self.allowed_hosts,
            http_timeout: self.http_timeout,
            config: &self.config,
        }
        .build()?;
        plugin.exec_grants.clone_from(&self.exec_grants);
        if let Some(n) = self.max_exec_runs {
            plugin.max_exec_runs = n;
        }
        Ok(ActionConfig {
            name: self.name.get_ref().clone(),
            source,
            plugin,
            workers: workers(self.workers.as_ref(), 2)?,
        })
    }
}
