//! The TOML configuration: registry, host collector, evaluator, rules and coverage expectations,
//! with errors that name the file, line, column, key and reason.
//!
//! ```toml
//! [host]
//! interval = "1s"
//!
//! [[rule]]
//! name = "cpu"
//! metric = "host_cpu_usage_ratio"
//! aggregation = "avg"              # last (default), avg, min, max, rate, p99…
//! window = "1m"                    # required by every aggregation but last
//! comparison = "above"             # or "below"; default above
//! annotations = { summary = "CPU at {{value}}" }
//! [rule.warning]                   # info, warning, minor, major, critical
//! threshold = "70%"                # a number, or "NN%" meaning NN/100
//! [rule.major]
//! threshold = 0.8
//! for = "1m"
//! clear = 0.75
//! [rule.critical]
//! threshold = "95%"
//! for = "30s"
//! occurrences = 3
//! within = "10m"
//!
//! [[expect]]
//! metric = "host_disk_usage_ratio"
//! every_series = true
//! ```
//!
//! Per rule, also: `select` (label matchers: `{ mount = "/", device = "!=tmpfs" }`, with `=~` and
//! `!~` for anchored regexes), `clear_for`, `labels`, `flap = { changes, within }`,
//! `no_data = { after, severity }`, `empty_window = "resolve" | "keep"` and
//! `schedule = { timezone, hours, days }` with `outside_schedule = "resolve" | "suppress"`; what
//! each means over
//! time is in [`rules::semantics`](crate::rules::semantics). Level tables may also
//! be named by the seed product's Korean names, quoted as TOML requires for non-ASCII keys:
//! `[rule."긴급"]` is `[rule.major]`. Unknown keys are errors everywhere.

mod aggregation_raw;
mod canary_raw;
mod channels_raw;
mod error;
mod export_raw;
mod fields;
mod log_raw;
mod pipeline_raw;
mod probe_raw;
mod raw;
mod routes_raw;
mod slo_raw;
mod threshold;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

pub use error::{ConfigError, Location};
use fields::{Failure, Problem};
use raw::RawConfig;

use crate::eval::EvaluatorConfig;
use crate::host::HostConfig;
use crate::metrics::RegistryConfig;
use crate::pipeline::{PipelineConfig, PluginSource};
use crate::plugin::PluginHostConfig;
use crate::rules::{Matcher, Rule};
use crate::web::HttpConfig;

/// A coverage declaration (the seed's "unregistered items"): a metric that should exist and be
/// watched by some rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The metric expected.
    pub metric: String,
    /// Which of its series are meant (empty: all of them).
    pub select: Vec<Matcher>,
    /// If true, every selected series must be watched by some rule; if false, at least one
    /// selected series must exist and be watched.
    pub every_series: bool,
}

/// A loaded, validated configuration.
///
/// ```
/// use vigilo::{Severity, config::Config};
///
/// let config = Config::from_str_named(r#"
///     [[rule]]
///     name = "cpu"
///     metric = "host_cpu_usage_ratio"
///     [rule.major]
///     threshold = "80%"
///     for = "1m"
/// "#, "inline.toml")?;
/// let major = config.rules[0].level(Severity::Major);
/// assert_eq!(major.map(|l| l.threshold), Some(0.8));
///
/// let err = Config::from_str_named("[[rule]]\nname = \"cpu\"\nmetrc = \"x\"\n", "bad.toml")
///     .unwrap_err();
/// assert!(err.to_string().starts_with("bad.toml:3:1: rule \"cpu\", key `metrc`: unknown field"));
/// # Ok::<(), vigilo::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `[registry]`.
    pub registry: RegistryConfig,
    /// `[host]`.
    pub host: HostConfig,
    /// `[evaluator]`.
    pub evaluator: EvaluatorConfig,
    /// `[[rule]]`, in file order, names unique.
    pub rules: Vec<Rule>,
    /// `[[expect]]`, in file order.
    pub expect: Vec<Expectation>,
    /// `[notify]`, `[[channel]]`, `[recipients]`, `[groups]`, `[[route]]`, `[[inhibit]]`,
    /// `[[maintenance]]`, `[[action]]` and `[[recovery]]`: the alert pipeline.
    pub pipeline: PipelineConfig,
    /// `[plugins]`: the plugin host (instances, memory, compilation cache, where bundled
    /// plugins are).
    pub plugins: PluginHostConfig,
    /// `[http]`: the opt-in endpoint serving the exposition, the status board and the status
    /// API ([`crate::web`]); none without the section.
    pub http: Option<HttpConfig>,
    /// `[[slo]]`, in file order; each one's generated rule (`slo:<name>`) is in `rules`.
    pub slos: Vec<crate::slo::Slo>,
    /// `[[canary]]`: canary analyses ([`crate::canary`]), in file order, names unique.
    pub canaries: Vec<crate::canary::CanarySpec>,
    /// `[export.remote_write]`, `[export.otlp]`: push export ([`crate::export`]).
    pub export: crate::export::ExportConfig,
    /// `[[log]]`: log files followed ([`crate::host::logs`]), in file order, names unique.
    pub logs: Vec<crate::host::logs::LogSpec>,
    /// `[[probe]]`: synthetic checks ([`crate::host::probes`]), in file order, names unique.
    pub probes: Vec<crate::host::probes::ProbeSpec>,
}

impl Config {
    /// Reads and validates the file at `path`; errors name it as given.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_str_named(&text, &path.display().to_string())?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Makes the relative paths (`path` of channels and actions, `[plugins] dir` and
    /// `cache_dir`, `[store] path`, a probe's `ca_file`) relative to `dir` (what [`from_file`](Self::from_file) does with the
    /// file's folder).
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut std::path::PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        for c in &mut self.pipeline.channels {
            if let PluginSource::File(p) = &mut c.source {
                fix(p);
                c.plugin.path.clone_from(p);
            }
        }
        for a in &mut self.pipeline.actions {
            if let PluginSource::File(p) = &mut a.source {
                fix(p);
                a.plugin.path.clone_from(p);
            }
        }
        if let Some(d) = &mut self.plugins.dir {
            fix(d);
        }
        if let Some(d) = &mut self.plugins.cache_dir {
            fix(d);
        }
        if let Some(p) = &mut self.pipeline.store.path {
            fix(p);
        }
        for p in &mut self.probes {
            if let crate::host::probes::ProbeTarget::Http(h) = &mut p.target
                && let Some(ca) = &mut h.ca_file
            {
                fix(ca);
            }
        }
    }

    /// Parses and validates `text`; errors call it `name`.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>| Location::of(name, text, span);
        let deserializer =
            toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
                location: at(e.span().unwrap_or(0..0)),
                message: e.message().to_owned(),
            })?;
        let raw = RawConfig::deserialize(deserializer).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (within, key) = error::path_at(text, span.start);
            // serde places a field given under two names at the table: point at the second.
            let twice = e
                .message()
                .strip_prefix("duplicate field `")
                .and_then(|rest| rest.strip_suffix('`'))
                .and_then(|field| error::duplicate_key(text, span.start, field));
            if let Some((second, name, first)) = twice {
                return ConfigError::Invalid {
                    location: at(second),
                    within,
                    key: Some(name.clone()),
                    message: format!("`{name}` is given twice: `{first}` names the same table"),
                };
            }
            ConfigError::Invalid {
                location: at(span),
                within,
                key,
                message: e.message().to_owned(),
            }
        })?;

        let host = match raw.host {
            Some(h) => {
                let span = h.span();
                let host = h.into_inner();
                host.validate().map_err(|e| ConfigError::Invalid {
                    location: at(span),
                    within: None,
                    key: Some("host".to_owned()),
                    message: e.to_string(),
                })?;
                host
            }
            None => HostConfig::default(),
        };
        let evaluator = match raw.evaluator {
            Some(e) if e.get_ref().tick.is_zero() => {
                return Err(ConfigError::Invalid {
                    location: at(e.span()),
                    within: None,
                    key: Some("evaluator.tick".to_owned()),
                    message: "tick must be greater than zero".to_owned(),
                });
            }
            Some(e) => e.into_inner(),
            None => EvaluatorConfig::default(),
        };

        let mut rules = Vec::with_capacity(raw.rule.len());
        let mut names: HashMap<&str, std::ops::Range<usize>> = HashMap::new();
        for r in &raw.rule {
            let name = r.get_ref().name.get_ref();
            let rule = r.get_ref().build(r.span(), evaluator.tick).map_err(|f| {
                located(&at, f, format!("rule {name:?}"), |location, key, error| {
                    ConfigError::Rule {
                        location,
                        rule: name.clone(),
                        key,
                        error,
                    }
                })
            })?;
            let name_span = r.get_ref().name.span();
            if let Some(first) = names.insert(name, name_span.clone()) {
                return Err(ConfigError::DuplicateRule {
                    location: at(name_span),
                    name: name.clone(),
                    first: at(first),
                });
            }
            rules.push(rule);
        }

        let mut expect = Vec::with_capacity(raw.expect.len());
        for e in &raw.expect {
            let context = format!("expect {:?}", e.get_ref().metric());
            let expectation = e.get_ref().build().map_err(|f| {
                // Expectations raise only messages of their own.
                located(&at, f, context, |location, key, error| {
                    ConfigError::Invalid {
                        location,
                        within: None,
                        key,
                        message: error.to_string(),
                    }
                })
            })?;
            expect.push(expectation);
        }

        let slos = slo_raw::build(&raw.slo, &mut rules).map_err(|(f, within)| {
            let message = |location, key, error: Box<crate::rules::RuleError>| {
                let (within, message) = (Some(within.clone()), error.to_string());
                ConfigError::Invalid {
                    location,
                    within,
                    key,
                    message,
                }
            };
            located(&at, f, within.clone(), message)
        })?;
        // A section's failure, located; a rule error inside it names no rule.
        let section_error = |(f, context): (Failure, String)| {
            located(&at, f, context, |location, key, error| ConfigError::Rule {
                location,
                rule: String::new(),
                key,
                error,
            })
        };
        let rule_names: std::collections::HashSet<&str> = rules.iter().map(Rule::name).collect();
        let pipeline = pipeline_raw::build(
            &pipeline_raw::RawPipeline {
                notify: raw.notify.as_ref(),
                channels: &raw.channel,
                people: &raw.recipients,
                groups: &raw.groups,
                routes: &raw.route,
                inhibit: &raw.inhibit,
                maintenance: &raw.maintenance,
                actions: &raw.action,
                recoveries: &raw.recovery,
            },
            &rule_names,
        )
        .map_err(section_error)?;
        let mut pipeline = pipeline;
        pipeline.store = raw.store;
        let http = match raw.http {
            Some(h) => {
                h.get_ref()
                    .validate()
                    .map_err(|message| ConfigError::Invalid {
                        location: at(h.span()),
                        within: None,
                        key: Some("http".to_owned()),
                        message,
                    })?;
                Some(h.into_inner())
            }
            None => None,
        };

        let canaries = canary_raw::build(&raw.canary).map_err(section_error)?;
        let export = export_raw::build(raw.export).map_err(section_error)?;
        let logs = log_raw::build(&raw.log).map_err(section_error)?;
        let probes = probe_raw::build(&raw.probe).map_err(section_error)?;

        Ok(Config {
            canaries,
            logs,
            probes,
            registry: raw.registry,
            host,
            evaluator,
            rules,
            expect,
            pipeline,
            plugins: raw.plugins,
            http,
            slos,
            export,
        })
    }
}

/// Turns a conversion failure into an error at its place, under `context`.
fn located(
    at: &impl Fn(std::ops::Range<usize>) -> Box<Location>,
    failure: Failure,
    context: String,
    rule_error: impl FnOnce(Box<Location>, Option<String>, Box<crate::rules::RuleError>) -> ConfigError,
) -> ConfigError {
    let location = at(failure.span);
    match failure.problem {
        Problem::Message(message) => ConfigError::Invalid {
            location,
            within: Some(context),
            key: failure.key,
            message,
        },
        Problem::Rule(error) => rule_error(location, failure.key, Box::new(error)),
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    /// [`Config::from_str_named`] with the name `<string>`.
    fn from_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_named(text, "<string>")
    }
}
