//! `host-agent try-plugin FILE`: one plugin, no monitor. Loads the `[[channel]]` (or
//! `[[action]]`) of FILE, sends it a sample alert, firing then resolved, and prints what
//! happened: each HTTP request the plugin made (method, URL, status), its log lines, the result
//! or the typed error, and the time taken.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use vigilo::Severity;
use vigilo::alert::{Alert, AlertStatus};
use vigilo::clock::{Clock, SystemClock};
use vigilo::config::Config;
use vigilo::pipeline::PluginSource;
use vigilo::plugin::PluginSettings;
use vigilo_plugin_host::{PluginHost, WasmLoader};

/// What `try-plugin` sends.
#[derive(Debug, Args)]
pub struct TryPlugin {
    /// A TOML file with one `[[channel]]` or `[[action]]` table, as in a vigilo configuration
    /// (`plugin = "webhook"` or `path = "…/my_channel.wasm"`, `allowed_hosts`, `config` …), and
    /// optionally `[plugins]`.
    pub file: PathBuf,
    /// The alert's rule name.
    #[arg(long, default_value = "try-plugin")]
    pub rule: String,
    /// Its severity when firing.
    #[arg(long, default_value = "major")]
    pub severity: Severity,
    /// A label, `NAME=VALUE` (repeat for several).
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    /// An annotation, `NAME=VALUE` (default: a `summary`).
    #[arg(long = "annotation", value_name = "NAME=VALUE")]
    pub annotations: Vec<String>,
    /// The value that crossed the threshold.
    #[arg(long)]
    pub value: Option<f64>,
    /// A recipient (repeat for several).
    #[arg(long = "recipient")]
    pub recipients: Vec<String>,
    /// Send only the firing alert, not its resolve.
    #[arg(long)]
    pub no_resolve: bool,
}

/// Prints every line plugins log (their log import, stdout, stderr, and the host's line per
/// HTTP request) as it comes.
struct Tracer {
    started: Instant,
}

impl log::Log for Tracer {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.target().starts_with(vigilo_plugin_host::LOG_TARGET)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let kind = if record.target() == vigilo_plugin_host::HTTP_LOG_TARGET {
            "http"
        } else {
            "log "
        };
        println!(
            "  {:>7.1} ms  {kind} {:<5} {}",
            self.started.elapsed().as_secs_f64() * 1000.0,
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

fn pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|i| {
            i.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{what} {i:?}: write NAME=VALUE"))
        })
        .collect()
}

/// The sample alert `t` describes, firing.
fn sample(t: &TryPlugin) -> Result<Alert, String> {
    let now = SystemClock.now();
    let summary = format!("a test alert of rule {} from host-agent try-plugin", t.rule);
    let mut alert = Alert::builder(&t.rule, t.severity)
        .annotation("summary", &summary)
        .at(now)
        .incident(1)
        .idempotency_key(&format!("try-plugin:{}:{}", t.rule, now.as_nanos()));
    for (name, value) in pairs(&t.labels, "label")? {
        alert = alert.label(&name, &value);
    }
    for (name, value) in pairs(&t.annotations, "annotation")? {
        alert = alert.annotation(&name, &value);
    }
    for r in &t.recipients {
        alert = alert.recipient(r);
    }
    if let Some(v) = t.value {
        alert = alert.value(v);
    }
    Ok(alert.build())
}

/// The resolve of `firing`.
fn resolve(firing: &Alert) -> Alert {
    let mut a = firing.clone();
    a.previous = a.severity;
    a.severity = Severity::Normal;
    a.status = AlertStatus::Resolved;
    a.at = SystemClock.now();
    a.idempotency_key.push_str(":resolved");
    a
}

/// Runs `try-plugin`; fails if the plugin cannot be loaded or a delivery fails.
pub fn run(t: &TryPlugin) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_file(&t.file)?;
    if config.plugins.cache_dir.is_none() {
        let cache = crate::state_dir().join("wasm-cache");
        if cache.is_absolute() && std::fs::create_dir_all(&cache).is_ok() {
            config.plugins.cache_dir = Some(cache);
        }
    }
    let channels = &config.pipeline.channels;
    let actions = &config.pipeline.actions;
    let (kind, source, settings): (&str, PluginSource, PluginSettings) =
        match (channels.as_slice(), actions.as_slice()) {
            ([c], []) => ("channel", c.source.clone(), c.plugin.clone()),
            ([], [a]) => ("action", a.source.clone(), a.plugin.clone()),
            _ => {
                return Err(format!(
                    "{}: try-plugin takes a file with exactly one [[channel]] or [[action]] \
                     ({} channel(s), {} action(s) found)",
                    t.file.display(),
                    channels.len(),
                    actions.len()
                )
                .into());
            }
        };
    if source == PluginSource::Native {
        return Err(format!(
            "{kind} {:?} has no `plugin` or `path`: nothing to load",
            settings.name
        )
        .into());
    }
    let tracer = Box::leak(Box::new(Tracer {
        started: Instant::now(),
    }));
    log::set_logger(tracer).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Trace);

    let host = PluginHost::new(config.plugins.clone())?;
    let loader = WasmLoader::new(host, config.plugins.dir.clone()).with_resolver(crate::bundled);
    let started = Instant::now();
    println!("{kind} {:?} from {}", settings.name, source);
    let firing = sample(t)?;
    let mut alerts = vec![firing.clone()];
    if !t.no_resolve {
        alerts.push(resolve(&firing));
    }
    let mut failed = false;
    if kind == "channel" {
        let channel = vigilo::monitor::PluginLoader::load_channel(&loader, &source, &settings)?;
        println!("loaded in {:.1} ms", ms(started));
        for alert in &alerts {
            match alert.status {
                AlertStatus::Firing => println!("firing ({}):", alert.severity),
                AlertStatus::Resolved => println!("resolved (from {}):", alert.previous),
            }
            let at = Instant::now();
            match channel.deliver(alert) {
                Ok(()) => println!("  delivered in {:.1} ms", ms(at)),
                Err(e) => {
                    failed = true;
                    println!("  {e} ({:.1} ms)", ms(at));
                }
            }
        }
    } else {
        let action = vigilo::monitor::PluginLoader::load_action(&loader, &source, &settings)?;
        println!("loaded in {:.1} ms", ms(started));
        let alert = &alerts[0];
        println!("firing ({}):", alert.severity);
        let at = Instant::now();
        match action.run(alert) {
            Ok(o) => println!(
                "  {} in {:.1} ms: {} (exit code {:?}){}",
                if o.success { "succeeded" } else { "failed" },
                ms(at),
                o.message,
                o.exit_code,
                if o.output_tail.is_empty() {
                    String::new()
                } else {
                    format!("\n  output: {}", o.output_tail.trim_end())
                }
            ),
            Err(e) => {
                failed = true;
                println!("  {e} ({:.1} ms)", ms(at));
            }
        }
    }
    if failed {
        return Err("the plugin failed (see above)".into());
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
