//! A plugin's settings turned into what the sandbox checks on every call: compiled exec
//! patterns, parsed host allowlist, a ready SMTP transport, the config as JSON text.

use std::sync::Arc;
use std::time::Duration;

use vigilo::clock::Clock;

use crate::audit::AuditLog;
use crate::grant::CompiledGrant;
use crate::mail::Mailer;
use crate::{LoadError, PluginHostConfig, PluginKind, PluginSettings};

/// Everything a call of one plugin needs, shared by its stores.
pub(crate) struct Policy {
    pub(crate) name: Arc<str>,
    pub(crate) memory_limit: usize,
    pub(crate) deadline: Duration,
    /// The call's wall-clock bound: `call_timeout`, or a multiple of `deadline`.
    pub(crate) call_timeout: Duration,
    pub(crate) max_concurrent_calls: u32,
    pub(crate) max_exec_runs: u32,
    pub(crate) allowed_hosts: Vec<AllowedHost>,
    pub(crate) http_timeout: Duration,
    /// Kept-alive plain-HTTP connections of this plugin (this generation of it).
    pub(crate) http_pool: Arc<crate::pool::Pool>,
    pub(crate) exec: Vec<CompiledGrant>,
    pub(crate) mailer: Option<Mailer>,
    pub(crate) config_json: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) log_max_messages: u32,
    pub(crate) log_max_bytes: usize,
    pub(crate) output_capacity: usize,
}

impl Policy {
    pub(crate) fn new(
        settings: &PluginSettings,
        kind: PluginKind,
        host: &PluginHostConfig,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditLog>,
    ) -> Result<Policy, LoadError> {
        let bad = |message: String| LoadError::Settings {
            name: settings.name.clone(),
            message,
        };
        if settings.name.is_empty() {
            return Err(bad("the name is empty".into()));
        }
        if settings.memory_limit == 0 || settings.memory_limit > host.max_memory {
            return Err(bad(format!(
                "memory_limit {} bytes is outside 1..={} (the host's max_memory)",
                settings.memory_limit, host.max_memory
            )));
        }
        if settings.deadline.is_zero() {
            return Err(bad("deadline is zero".into()));
        }
        if settings.max_concurrent_calls == 0 {
            return Err(bad("max_concurrent_calls is zero".into()));
        }
        if settings.http_timeout.is_zero() {
            return Err(bad("http_timeout is zero".into()));
        }
        if kind == PluginKind::Channel && !settings.exec_grants.is_empty() {
            return Err(bad(
                "exec_grants are given, but channel plugins may not run commands".into(),
            ));
        }
        let allowed_hosts = settings
            .allowed_hosts
            .iter()
            .map(|h| AllowedHost::parse(h).map_err(&bad))
            .collect::<Result<_, _>>()?;
        let exec = settings
            .exec_grants
            .iter()
            .map(|g| CompiledGrant::new(g).map_err(&bad))
            .collect::<Result<_, _>>()?;
        let mailer = settings
            .smtp
            .as_ref()
            .map(|s| Mailer::new(s).map_err(&bad))
            .transpose()?;
        let config_json = serde_json::to_string(&settings.config)
            .map_err(|e| bad(format!("config cannot be written as JSON: {e}")))?;
        Ok(Policy {
            name: Arc::from(settings.name.as_str()),
            memory_limit: settings.memory_limit,
            deadline: settings.deadline,
            call_timeout: settings.call_limit(),
            max_concurrent_calls: settings.max_concurrent_calls,
            max_exec_runs: settings.max_exec_runs,
            allowed_hosts,
            http_timeout: settings.http_timeout,
            http_pool: Arc::new(crate::pool::Pool::new(
                usize::try_from(settings.max_concurrent_calls).unwrap_or(usize::MAX),
            )),
            exec,
            mailer,
            config_json,
            clock,
            audit,
            log_max_messages: host.log_max_messages,
            log_max_bytes: host.log_max_bytes,
            output_capacity: host.output_capacity,
        })
    }
}

/// One entry of `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHost {
    /// Lower-case host name or address (IPv6 without brackets).
    host: String,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    /// The scheme's default port only.
    Default,
    Exactly(u16),
    Any,
}

impl AllowedHost {
    pub(crate) fn parse(s: &str) -> Result<AllowedHost, String> {
        let bad = |why: &str| {
            format!("allowed_hosts entry {s:?} {why}; use \"host\", \"host:port\" or \"host:*\"")
        };
        let s = s.trim();
        if s.contains("://") || s.contains('/') {
            return Err(bad("is a URL, not a host"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed '['"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("has junk after ']'"))?,
                    ),
                ),
            }
        } else if s.matches(':').count() > 1 {
            return Err(bad("looks like an IPv6 address without brackets"));
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '*' || c == '@') {
            return Err(bad("has no valid host"));
        }
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => PortRule::Exactly(p.parse().map_err(|_| bad("has an invalid port"))?),
        };
        Ok(AllowedHost {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a request to `host:port` (with `default_port` the scheme's) is allowed.
    pub(crate) fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.host.eq_ignore_ascii_case(host)
            && match self.port {
                PortRule::Default => port == default_port,
                PortRule::Exactly(p) => port == p,
                PortRule::Any => true,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts() {
        let h = AllowedHost::parse("Hooks.Example.com").unwrap();
        assert!(h.allows("hooks.example.com", 443, 443));
        assert!(!h.allows("hooks.example.com", 8443, 443));
        assert!(!h.allows("evil.example.com", 443, 443));
        let h = AllowedHost::parse("127.0.0.1:9093").unwrap();
        assert!(h.allows("127.0.0.1", 9093, 80));
        assert!(!h.allows("127.0.0.1", 80, 80));
        let h = AllowedHost::parse("[::1]:*").unwrap();
        assert!(h.allows("[::1]", 1234, 80));
        assert!(AllowedHost::parse("http://x").is_err());
        assert!(AllowedHost::parse("::1").is_err());
        assert!(AllowedHost::parse("x:port").is_err());
        assert!(AllowedHost::parse("*.example.com").is_err());
    }
}
