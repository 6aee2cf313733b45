//! The plugin loader a [`vigilo::monitor::Monitor`] uses for channels and actions that are
//! WebAssembly components, and the one-call entry point [`start`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigilo::alert::{Action, Channel};
use vigilo::config::Config;
use vigilo::monitor::{Monitor, MonitorBuilder, MonitorError, PluginLoader};
use vigilo::pipeline::PluginSource;
use vigilo::plugin::PluginSettings;

use crate::PluginHost;

/// Turns a bundled plugin's name (`webhook`) into its component file.
pub type BundledResolver = dyn Fn(&str) -> Result<PathBuf, String> + Send + Sync;

/// Loads plugins into a [`PluginHost`] for a monitor. A bundled plugin (`plugin = "webhook"`)
/// is found as `<dir>/vigilo_webhook.wasm`, or through a resolver the program gives (one that
/// builds the bundled plugins on first use, say).
pub struct WasmLoader {
    host: PluginHost,
    dir: Option<PathBuf>,
    resolver: Option<Box<BundledResolver>>,
}

impl WasmLoader {
    /// A loader into `host`, finding bundled plugins in `dir`.
    pub fn new(host: PluginHost, dir: Option<PathBuf>) -> Self {
        WasmLoader {
            host,
            dir,
            resolver: None,
        }
    }

    /// Finds bundled plugins with `resolve` instead of in the directory.
    pub fn with_resolver(
        mut self,
        resolve: impl Fn(&str) -> Result<PathBuf, String> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Box::new(resolve));
        self
    }

    /// The host plugins are loaded into (its audit log, plugin status …).
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// The component file a source stands for.
    pub fn path_of(&self, source: &PluginSource) -> Result<PathBuf, String> {
        match source {
            PluginSource::File(p) => Ok(p.clone()),
            PluginSource::Bundled(name) => {
                if let Some(resolve) = &self.resolver {
                    return resolve(name);
                }
                let file = bundled_file(name);
                let dir = self.dir.as_ref().ok_or_else(|| {
                    format!(
                        "bundled plugin {name:?}: no directory to find {file} in; set \
                         `[plugins] dir` to where the bundled plugins are built"
                    )
                })?;
                let path = dir.join(&file);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!(
                        "bundled plugin {name:?}: {} does not exist (build the bundled plugins \
                         with `cargo build --release --target wasm32-wasip2 --manifest-path \
                         plugins/guests/Cargo.toml` and point `[plugins] dir` at the output)",
                        path.display()
                    ))
                }
            }
            PluginSource::Native => Err("a native implementation is not a plugin".into()),
            // A source a newer core offers: refused loudly, never read as another kind.
            other => Err(format!(
                "plugin source {other:?} is not supported by this host"
            )),
        }
    }

    fn settings(
        &self,
        source: &PluginSource,
        settings: &PluginSettings,
    ) -> Result<PluginSettings, String> {
        let mut s = settings.clone();
        s.path = self.path_of(source)?;
        // A reload loads the new generation under the same name.
        self.host.unload(&s.name);
        Ok(s)
    }
}

/// `webhook` → `vigilo_webhook.wasm`, as cargo names the bundled packages' components.
pub fn bundled_file(name: &str) -> String {
    format!("vigilo_{}.wasm", name.replace('-', "_"))
}

impl PluginLoader for WasmLoader {
    fn load_channel(
        &self,
        source: &PluginSource,
        settings: &PluginSettings,
    ) -> Result<Arc<dyn Channel>, String> {
        let s = self.settings(source, settings)?;
        self.host
            .load_channel(s)
            .map(|c| Arc::new(c) as Arc<dyn Channel>)
            .map_err(|e| e.to_string())
    }

    fn load_action(
        &self,
        source: &PluginSource,
        settings: &PluginSettings,
    ) -> Result<Arc<dyn Action>, String> {
        let s = self.settings(source, settings)?;
        self.host
            .load_action(s)
            .map(|a| Arc::new(a) as Arc<dyn Action>)
            .map_err(|e| e.to_string())
    }
}

/// A monitor builder for `config` whose plugins run in a new [`PluginHost`] configured by
/// `[plugins]`, finding bundled plugins in `[plugins] dir`. Add native channels, a clock or a
/// store to the builder, then `start` it.
pub fn monitor(config: Config) -> Result<MonitorBuilder, MonitorError> {
    let loader = loader(&config)?;
    Ok(Monitor::builder(config).loader(Arc::new(loader)))
}

/// The loader [`monitor`] uses, to give it a resolver first.
pub fn loader(config: &Config) -> Result<WasmLoader, MonitorError> {
    let host = PluginHost::new(config.plugins.clone()).map_err(|e| MonitorError::Plugin {
        kind: "plugin host",
        name: String::new(),
        message: e.to_string(),
    })?;
    Ok(WasmLoader::new(host, config.plugins.dir.clone()))
}

/// Everything from one file, in one call: reads the configuration (errors are located),
/// starts the plugin host, loads every channel and action, and starts the registry, the host
/// collector, the evaluator and the pipeline.
///
/// ```no_run
/// let monitor = vigilo_plugin_host::start("/etc/vigilo/vigilo.toml")?;
/// monitor.registry().counter("requests_total", &[("route", "/")])?.increment();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn start(path: impl AsRef<Path>) -> Result<Monitor, MonitorError> {
    monitor(Config::from_file(path)?)?.start()
}
