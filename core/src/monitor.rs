//! The one entry point: a [`Monitor`] runs everything a configuration describes (registry,
//! host items, evaluator, alert pipeline, channels and actions) and stops it cleanly.
//!
//! `core` does not run WebAssembly: channels and actions that are plugins (`plugin = "…"` or
//! `path = "…"` in the configuration) are loaded through a [`PluginLoader`], which
//! `vigilo-plugin-host` provides (and whose `start` function builds a whole monitor from a
//! file in one call). Channels and actions written in the embedding program are handed to the
//! builder by name.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vigilo::alert::{Alert, Channel, DeliveryError};
//! use vigilo::config::Config;
//! use vigilo::monitor::Monitor;
//!
//! struct Log;
//! impl Channel for Log {
//!     fn name(&self) -> &str { "log" }
//!     fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
//!         eprintln!("[{}] {}", alert.severity, alert.rule);
//!         Ok(())
//!     }
//! }
//!
//! let config: Config = r#"
//!     [[rule]]
//!     name = "queue"
//!     metric = "queue_depth"
//!     [rule.major]
//!     threshold = 100
//!
//!     [[channel]]
//!     name = "log"
//!
//!     [[route]]
//!     name = "all"
//!     channels = ["log"]
//! "#.parse()?;
//! let monitor = Monitor::builder(config).without_host_items().channel(Arc::new(Log)).start()?;
//! monitor.registry().gauge("queue_depth", &[])?.set(150.0);
//! monitor.stop(Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::Severity;
use crate::alert::{Action, Channel};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::coverage::CoverageReport;
use crate::eval::{EvalError, Evaluator, EvaluatorHandle, Told};
use crate::exposition::{Exposition, Sample};
use crate::host::{HostCollector, HostError, Watchers};
use crate::metrics::Registry;
use crate::pipeline::{
    self, AckRequest, ActionConfig, ChannelConfig, Event, HistoryQuery, Implementations, Incident,
    IncidentId, Pipeline, PipelineError, PipelineStats, PluginSource, Silence, SilenceId,
    SilenceRequest, SqliteStore, StopReport, Store,
};
use crate::plugin::PluginSettings;
use crate::rules::Comparison;
use crate::slo::{SloBoard, SloReport, SloRunner};
use crate::status::StatusReport;
use crate::web::{HttpError, Reading, Readings, Server, Source};

/// Loads channel and action plugins for a [`Monitor`] (`vigilo-plugin-host` implements it with
/// its wasmtime sandbox).
pub trait PluginLoader: Send + Sync {
    /// Loads the channel described by `settings` from `source` (a bundled name or a file).
    fn load_channel(
        &self,
        source: &PluginSource,
        settings: &PluginSettings,
    ) -> Result<Arc<dyn Channel>, String>;
    /// Loads the action described by `settings` from `source`.
    fn load_action(
        &self,
        source: &PluginSource,
        settings: &PluginSettings,
    ) -> Result<Arc<dyn Action>, String>;
}

/// Why a monitor could not start, reload or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The configuration is invalid (located).
    #[error("{}", .0.with_excerpt())]
    Config(#[from] ConfigError),
    /// The evaluator refused.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The pipeline refused.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The host collector could not start.
    #[error(transparent)]
    Host(#[from] HostError),
    /// An SLO could not start (`[[slo]]`).
    #[error(transparent)]
    Slo(#[from] crate::slo::SloError),
    /// The `[http]` endpoint could not start.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// An `[export.*]` section could not start.
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// A plugin could not be loaded.
    #[error("{kind} {name:?}: {message}")]
    Plugin {
        /// `channel` or `action`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why.
        message: String,
    },
    /// A plugin is configured but the monitor has no loader (use `vigilo-plugin-host`).
    #[error(
        "{kind} {name:?} is a plugin, but this monitor has no plugin loader: start it through \
         vigilo-plugin-host, or implement the {kind} natively and pass it to the builder"
    )]
    NoLoader {
        /// `channel` or `action`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A reload was refused by one part (`plugins`, `rules`, `pipeline`); nothing changed.
    #[error("reload refused by the {part}: {source}; nothing changed")]
    Reload {
        /// The part that refused.
        part: &'static str,
        /// Why.
        #[source]
        source: Box<MonitorError>,
    },
    /// A native channel or action is configured but was not given to the builder.
    #[error(
        "{kind} {name:?} has no `plugin` or `path`, so it must be implemented by the program, \
         but no {kind} of that name was given to the monitor"
    )]
    MissingNative {
        /// `channel` or `action`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
}

/// Everything at a glance: items, open incidents, silences, coverage, pipeline counters.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorStatus {
    /// Every item, worst first.
    pub status: StatusReport,
    /// Open incidents, oldest first.
    pub incidents: Vec<Incident>,
    /// Silences not yet ended.
    pub silences: Vec<Silence>,
    /// Expected items without a rule, rules that never reported, rules no route reaches.
    pub coverage: CoverageReport,
    /// The pipeline's counters.
    pub pipeline: PipelineStats,
    /// Each `[[slo]]`'s error budget and burn rates.
    pub slos: Vec<SloReport>,
    /// Each canary that published a score: its score and, once its run completed, its verdict.
    pub canaries: Vec<crate::canary::CanaryStatus>,
}

impl MonitorStatus {
    /// As JSON (the status board's data).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Builds a [`Monitor`].
pub struct MonitorBuilder {
    config: Config,
    registry: Option<Registry>,
    clock: Arc<dyn Clock>,
    loader: Option<Arc<dyn PluginLoader>>,
    channels: HashMap<String, Arc<dyn Channel>>,
    actions: HashMap<String, Arc<dyn Action>>,
    store: Option<Box<dyn Store>>,
    host_items: bool,
}

impl MonitorBuilder {
    /// Records into an existing registry (default: a new one from `[registry]`).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The clock for the evaluator and the pipeline (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Loads plugins for channels and actions configured with `plugin` or `path`.
    pub fn loader(mut self, loader: Arc<dyn PluginLoader>) -> Self {
        self.loader = Some(loader);
        self
    }

    /// A channel implemented by the program, for the `[[channel]]` of the same name.
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.name().to_owned(), channel);
        self
    }

    /// An action implemented by the program, for the `[[action]]` of the same name.
    pub fn action(mut self, action: Arc<dyn Action>) -> Self {
        self.actions.insert(action.name().to_owned(), action);
        self
    }

    /// Where the pipeline keeps its state (default: `[store] path`, or in memory).
    pub fn store(mut self, store: Box<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Does not start the host collector (the service records its own metrics only).
    pub fn without_host_items(mut self) -> Self {
        self.host_items = false;
        self
    }

    /// Loads the plugins, then starts the evaluator, the pipeline and the host collector.
    pub fn start(self) -> Result<Monitor, MonitorError> {
        let plugins = Plugins {
            loader: self.loader,
            native_channels: self.channels,
            native_actions: self.actions,
            channels: HashMap::new(),
            actions: HashMap::new(),
        };
        let mut plugins = plugins;
        let impls = plugins.load(&self.config)?;
        let registry = self
            .registry
            .unwrap_or_else(|| Registry::with_config(self.config.registry.clone()));
        let (evaluator, transitions) = Evaluator::new(
            registry.clone(),
            self.config.rules.clone(),
            Arc::clone(&self.clock),
            self.config.evaluator.clone(),
        )?;
        let store: Box<dyn Store> = match self.store {
            Some(s) => s,
            None => {
                let sc = &self.config.pipeline.store;
                let notify = &self.config.pipeline.notify;
                let store = match &sc.path {
                    Some(path) => SqliteStore::open(
                        path,
                        sc.on_corrupt,
                        notify.history_limit,
                        notify.history_max_age,
                    ),
                    None => SqliteStore::in_memory(notify.history_limit, notify.history_max_age),
                }
                .map_err(PipelineError::Store)?;
                Box::new(store)
            }
        };
        let mut pipeline = Pipeline::builder(self.config.pipeline.clone())
            .clock(Arc::clone(&self.clock))
            .store(store);
        for c in impls.channels.into_values() {
            pipeline = pipeline.channel(c);
        }
        for a in impls.actions.into_values() {
            pipeline = pipeline.action(a);
        }
        let pipeline = Arc::new(pipeline.start(transitions)?);
        // Holds and occurrence counts resume where the last run left them, and what the
        // evaluator takes to have been told agrees with the open incidents (after a crash,
        // its checkpoint may be older or newer than them).
        let mut evaluator = evaluator;
        let told = pipeline
            .incidents()?
            .into_iter()
            .filter(|i| !pipeline::is_meta(i))
            .map(|i| {
                Told::new(
                    i.item.rule,
                    i.metric,
                    i.item.labels,
                    i.severity,
                    i.no_data,
                    i.changed_at,
                )
            })
            .collect();
        evaluator.restore_reconciled(
            pipeline.take_restored_item_states()?,
            told,
            self.config.pipeline.store.restore_grace,
        );
        evaluator.restore_learned(pipeline.take_restored_learned());
        let evaluator = Arc::new(evaluator.spawn()?);
        // `[[log]]` and `[[probe]]` run whenever configured, host items or not.
        let watchers = Arc::new(Watchers::start(
            &self.config.logs,
            &self.config.probes,
            &registry,
            pipeline.take_restored_log_offsets(),
        )?);
        let checkpoint = Checkpoint::start(
            Arc::clone(&evaluator),
            Arc::clone(&pipeline),
            Arc::clone(&watchers),
            self.config.pipeline.store.checkpoint,
        )
        .map_err(EvalError::Spawn)?;
        let p = Arc::clone(&pipeline);
        let save = Box::new(move |s| drop(p.save_slo_states(s)));
        let restored = pipeline.take_restored_slo_states()?;
        let times = (
            self.config.evaluator.tick,
            self.config.pipeline.store.checkpoint,
        );
        let slo = SloRunner::for_slos(
            &self.config.slos,
            times,
            &registry,
            &self.clock,
            restored,
            save,
        )?;
        let collector = if self.host_items {
            Some(HostCollector::start(&registry, self.config.host.clone())?)
        } else {
            None
        };
        // The exports read the registry on threads of their own (`[export.*]`).
        let exports = crate::export::Exports::start(&self.config.export, &registry, &self.clock)?;
        let http_config = self.config.http.clone();
        let state = Arc::new(Mutex::new(State {
            config: self.config,
            plugins,
            slos: slo.as_ref().map(SloRunner::board),
        }));
        let http = match http_config {
            Some(c) => {
                let board = Board {
                    registry: registry.clone(),
                    evaluator: Arc::clone(&evaluator),
                    pipeline: Arc::clone(&pipeline),
                    resolution: state.lock().config.evaluator.tick,
                    state: Arc::clone(&state),
                };
                Some(Server::start(&c, Arc::new(board))?)
            }
            None => None,
        };
        Ok(Monitor {
            registry,
            clock: self.clock,
            evaluator: Some(evaluator),
            pipeline: Some(pipeline),
            checkpoint: Some(checkpoint),
            slo,
            collector,
            watchers: Some(watchers),
            http,
            exports,
            state,
        })
    }
}

/// The channels and actions in use, and where new ones come from.
struct Plugins {
    loader: Option<Arc<dyn PluginLoader>>,
    native_channels: HashMap<String, Arc<dyn Channel>>,
    native_actions: HashMap<String, Arc<dyn Action>>,
    channels: HashMap<String, (ChannelConfig, Arc<dyn Channel>)>,
    actions: HashMap<String, (ActionConfig, Arc<dyn Action>)>,
}

impl Plugins {
    /// The implementations `config` needs, and the plugins are kept with them from now on.
    fn load(&mut self, config: &Config) -> Result<Implementations, MonitorError> {
        let (impls, kept) = self.prepare(config)?;
        self.commit(kept);
        Ok(impls)
    }

    /// The implementations `config` needs: kept where the configuration did not change,
    /// loaded where it did. Nothing here changes until [`commit`](Self::commit).
    fn prepare(&self, config: &Config) -> Result<(Implementations, Kept), MonitorError> {
        let mut channels = HashMap::new();
        let mut kept_channels = HashMap::new();
        for c in &config.pipeline.channels {
            let imp = match self.channels.get(&c.name) {
                Some((old, imp)) if old == c => Arc::clone(imp),
                _ => self.load_one(
                    "channel",
                    &c.name,
                    &c.source,
                    &c.plugin,
                    |l, s, p| l.load_channel(s, p),
                    &self.native_channels,
                )?,
            };
            kept_channels.insert(c.name.clone(), (c.clone(), Arc::clone(&imp)));
            channels.insert(c.name.clone(), imp);
        }
        let mut actions = HashMap::new();
        let mut kept_actions = HashMap::new();
        for a in &config.pipeline.actions {
            let imp = match self.actions.get(&a.name) {
                Some((old, imp)) if old == a => Arc::clone(imp),
                _ => self.load_one(
                    "action",
                    &a.name,
                    &a.source,
                    &a.plugin,
                    |l, s, p| l.load_action(s, p),
                    &self.native_actions,
                )?,
            };
            kept_actions.insert(a.name.clone(), (a.clone(), Arc::clone(&imp)));
            actions.insert(a.name.clone(), imp);
        }
        Ok((
            Implementations { channels, actions },
            Kept {
                channels: kept_channels,
                actions: kept_actions,
            },
        ))
    }

    /// Keeps what a [`prepare`](Self::prepare) loaded, for the next reload to reuse.
    fn commit(&mut self, kept: Kept) {
        self.channels = kept.channels;
        self.actions = kept.actions;
    }

    fn load_one<T: ?Sized>(
        &self,
        kind: &'static str,
        name: &str,
        source: &PluginSource,
        settings: &PluginSettings,
        load: impl FnOnce(&dyn PluginLoader, &PluginSource, &PluginSettings) -> Result<Arc<T>, String>,
        native: &HashMap<String, Arc<T>>,
    ) -> Result<Arc<T>, MonitorError> {
        match source {
            PluginSource::Native => {
                native
                    .get(name)
                    .cloned()
                    .ok_or_else(|| MonitorError::MissingNative {
                        kind,
                        name: name.to_owned(),
                    })
            }
            _ => {
                let loader = self
                    .loader
                    .as_deref()
                    .ok_or_else(|| MonitorError::NoLoader {
                        kind,
                        name: name.to_owned(),
                    })?;
                load(loader, source, settings).map_err(|message| MonitorError::Plugin {
                    kind,
                    name: name.to_owned(),
                    message,
                })
            }
        }
    }
}

/// The plugins a configuration uses, with the settings they were loaded with.
struct Kept {
    channels: HashMap<String, (ChannelConfig, Arc<dyn Channel>)>,
    actions: HashMap<String, (ActionConfig, Arc<dyn Action>)>,
}

struct State {
    config: Config,
    plugins: Plugins,
    slos: Option<SloBoard>,
}

/// A running monitor: registry, host items, evaluator, pipeline, channels and actions.
///
/// Record through [`registry`](Self::registry); read the board with [`status`](Self::status);
/// act on incidents with [`ack`](Self::ack) and [`silence`](Self::silence); replace rules,
/// routes and policy with [`reload`](Self::reload) (open incidents are kept); end with
/// [`stop`](Self::stop). Dropping it stops it too.
pub struct Monitor {
    registry: Registry,
    clock: Arc<dyn Clock>,
    evaluator: Option<Arc<EvaluatorHandle>>,
    pipeline: Option<Arc<Pipeline>>,
    checkpoint: Option<Checkpoint>,
    slo: Option<SloRunner>,
    collector: Option<HostCollector>,
    /// The `[[log]]` watchers and `[[probe]]`s (shared with the checkpoint thread).
    watchers: Option<Arc<Watchers>>,
    http: Option<Server>,
    exports: crate::export::Exports,
    state: Arc<Mutex<State>>,
}

impl Monitor {
    /// Starts building a monitor for `config`.
    pub fn builder(config: Config) -> MonitorBuilder {
        MonitorBuilder {
            config,
            registry: None,
            clock: Arc::new(SystemClock),
            loader: None,
            channels: HashMap::new(),
            actions: HashMap::new(),
            store: None,
            host_items: true,
        }
    }

    /// The registry to record into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A notice after each refresh of the host items (none without host items).
    pub fn host_refreshes(
        &self,
    ) -> Option<crossbeam_channel::Receiver<crate::host::RefreshNotice>> {
        self.collector.as_ref().map(HostCollector::notices)
    }

    fn pipeline(&self) -> Result<&Pipeline, MonitorError> {
        self.pipeline
            .as_deref()
            .ok_or(MonitorError::Pipeline(PipelineError::Stopped))
    }

    fn evaluator(&self) -> Result<&EvaluatorHandle, MonitorError> {
        self.evaluator
            .as_deref()
            .ok_or(MonitorError::Eval(EvalError::Stopped))
    }

    /// Items, incidents, silences, coverage (with the rules no route reaches) and counters.
    pub fn status(&self) -> Result<MonitorStatus, MonitorError> {
        status_of(
            self.evaluator()?,
            self.pipeline()?,
            &self.state,
            &self.registry,
        )
    }

    /// What each `[export.*]` section did so far, by name (`remote_write`, `otlp`).
    pub fn export_stats(&self) -> Vec<(&'static str, crate::export::ExportStats)> {
        self.exports.stats()
    }

    /// Reads what is new in every `[[log]]` now, on the caller's thread (the watchers' thread
    /// does it every `poll`); for tests and for a caller that wants the counts current.
    pub fn poll_logs(&self) {
        if let Some(w) = &self.watchers {
            w.poll_logs();
        }
    }

    /// Runs every `[[probe]]` once now, on the caller's thread, and records the results (the
    /// probes' thread runs each every `interval`).
    pub fn run_probes(&self) {
        if let Some(w) = &self.watchers {
            w.run_probes();
        }
    }

    /// Where the `[http]` endpoint listens (the port chosen when configured as 0), if it runs.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(Server::address)
    }

    /// Each `[[slo]]`'s budget and burn rates after the SLO thread's last tick.
    pub fn slos(&self) -> Vec<SloReport> {
        self.slo.as_ref().map_or_else(Vec::new, SloRunner::reports)
    }

    /// Ticks the SLOs now, on the monitor's clock, and returns [`slos`](Self::slos) (the SLO
    /// thread also ticks every `[evaluator] tick`; with a manual clock this one is exact).
    pub fn tick_slos(&self) -> Vec<SloReport> {
        self.slo.as_ref().map_or_else(Vec::new, SloRunner::tick_now)
    }

    /// Open incidents, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>, MonitorError> {
        Ok(self.pipeline()?.incidents()?)
    }

    /// Acknowledges an open incident (see [`Pipeline::ack`]).
    pub fn ack(&self, id: IncidentId, ack: AckRequest) -> Result<(), MonitorError> {
        Ok(self.pipeline()?.ack(id, ack)?)
    }

    /// Removes an acknowledgement.
    pub fn unack(&self, id: IncidentId) -> Result<(), MonitorError> {
        Ok(self.pipeline()?.unack(id)?)
    }

    /// Creates a silence.
    pub fn silence(&self, request: SilenceRequest) -> Result<SilenceId, MonitorError> {
        Ok(self.pipeline()?.silence(request)?)
    }

    /// Ends a silence now.
    pub fn expire_silence(&self, id: SilenceId) -> Result<(), MonitorError> {
        Ok(self.pipeline()?.expire_silence(id)?)
    }

    /// Events from the history.
    pub fn history(&self, query: HistoryQuery) -> Result<Vec<Event>, MonitorError> {
        Ok(self.pipeline()?.history(query)?)
    }

    /// A live feed of the pipeline's events (see [`Pipeline::subscribe`]).
    pub fn subscribe(&self) -> Result<crossbeam_channel::Receiver<Event>, MonitorError> {
        Ok(self.pipeline()?.subscribe()?)
    }

    /// Waits until the pipeline is quiet (see [`Pipeline::settle`]).
    pub fn settle(&self, timeout: Duration) -> Result<(), MonitorError> {
        Ok(self.pipeline()?.settle(timeout)?)
    }

    /// Replaces rules, routes, policy, channels and actions. Channels and actions whose
    /// configuration did not change keep running; open incidents and what was already
    /// notified are kept. `[registry]`, `[host]`, `[evaluator]`, `[plugins]`, `[http]`, `[export.*]` and the
    /// `[[slo]]` tables take effect at the next start (the SLO's generated rules reload with the
    /// rules). On any error nothing changes.
    ///
    /// All or nothing: the new configuration is checked in full first (the rules as the running
    /// evaluator would take them, every plugin loaded, every channel and action the pipeline
    /// names implemented); if a part refuses, nothing changes and
    /// [`MonitorError::Reload`] names the part.
    pub fn reload(&self, config: Config) -> Result<(), MonitorError> {
        fn refused(part: &'static str) -> impl FnOnce(MonitorError) -> MonitorError {
            move |e| MonitorError::Reload {
                part,
                source: Box::new(e),
            }
        }
        let mut state = self.state.lock();
        Evaluator::check(&config.rules, &state.config.evaluator)
            .map_err(|e| refused("rules")(e.into()))?;
        let (impls, kept) = state.plugins.prepare(&config).map_err(refused("plugins"))?;
        // The pipeline checks that it has every implementation before it changes anything,
        // and starts new channel and action threads before it lets go of the old ones.
        self.pipeline()?
            .reload(config.pipeline.clone(), impls)
            .map_err(|e| refused("pipeline")(e.into()))?;
        // Checked above, so it takes them (unless its thread is gone).
        self.evaluator()?
            .reload(config.rules.clone())
            .map_err(|e| refused("rules")(e.into()))?;
        state.plugins.commit(kept);
        state.config = config;
        Ok(())
    }

    /// Reads `path` and [`reload`](Self::reload)s it; a file with an error changes nothing.
    pub fn reload_file(&self, path: impl AsRef<Path>) -> Result<(), MonitorError> {
        self.reload(Config::from_file(path)?)
    }

    /// Starts the configuration's `[[canary]]` named `name` now, on this monitor's registry
    /// and clock, so its `vigilo_canary_score` / `vigilo_canary_verdict` series feed this
    /// monitor's rules. Drive it with [`CanaryRun::tick`](crate::canary::CanaryRun::tick), or
    /// on a thread of its own with [`spawn`](crate::canary::CanaryRun::spawn).
    pub fn canary(
        &self,
        name: &str,
    ) -> Result<crate::canary::CanaryRun, crate::canary::CanaryError> {
        let spec = self
            .state
            .lock()
            .config
            .canaries
            .iter()
            .find(|c| c.name == name)
            .cloned();
        let spec = spec.ok_or_else(|| crate::canary::CanaryError::Unknown(name.to_owned()))?;
        crate::canary::CanaryRun::start(spec, &self.registry, Arc::clone(&self.clock))
    }

    /// The configuration running now.
    pub fn config(&self) -> Config {
        self.state.lock().config.clone()
    }

    /// Stops the host collector and the evaluator (judging what was recorded up to now), then
    /// the pipeline: transitions already made are handled, waiting groups notify now,
    /// deliveries get until `deadline`; those not started by then are not started (they stay in
    /// the outbox). A channel or action call still running at the deadline is waited for, as
    /// long as it takes: when this returns, no channel or action of this monitor runs, and the
    /// monitor's references to them are gone once it is dropped (which this does).
    pub fn stop(mut self, deadline: Duration) -> Result<StopReport, MonitorError> {
        self.shutdown(deadline)
    }

    fn shutdown(&mut self, deadline: Duration) -> Result<StopReport, MonitorError> {
        // First, so that nothing holds the evaluator or the pipeline any more.
        if let Some(mut h) = self.http.take() {
            h.stop();
        }
        if let Some(c) = self.collector.take() {
            c.stop()?;
        }
        // Each export sends what was recorded up to now, once.
        self.exports.stop();
        if let Some(c) = self.checkpoint.take() {
            c.stop();
        }
        // The logs' last offsets and counts, saved while the pipeline still runs.
        if let Some(w) = self.watchers.take().and_then(Arc::into_inner) {
            let offsets = w.stop();
            if let Some(p) = &self.pipeline
                && !offsets.is_empty()
            {
                p.save_log_offsets(offsets);
            }
        }
        if let Some(s) = self.slo.take() {
            s.stop(); // a last tick, judged below, and a last save
        }
        let pipeline = self.pipeline.take().and_then(Arc::into_inner);
        if let Some(e) = self.evaluator.take().and_then(Arc::into_inner) {
            // What was recorded before the stop is judged, in a last full sweep (new series,
            // pending crossings, due durations): its transitions go to the pipeline, which
            // handles them; then the last checkpoint.
            let mut evaluator = e.stop()?;
            evaluator.tick(self.clock.now());
            if let Some(p) = &pipeline {
                p.save_item_states(evaluator.item_states())?;
                p.save_learned(evaluator.learned_states());
            }
        }
        match pipeline {
            Some(p) => Ok(p.stop(deadline)?),
            None => Ok(StopReport::default()),
        }
    }
}

fn status_of(
    evaluator: &EvaluatorHandle,
    pipeline: &Pipeline,
    state: &Mutex<State>,
    registry: &Registry,
) -> Result<MonitorStatus, MonitorError> {
    let (expect, rules, pipeline_config, slos) = {
        let s = state.lock();
        (
            s.config.expect.clone(),
            s.config.rules.clone(),
            s.config.pipeline.clone(),
            s.slos.as_ref().map_or_else(Vec::new, SloBoard::reports),
        )
    };
    let mut coverage = evaluator.coverage(expect)?;
    coverage.unrouted_rules = pipeline_config.unrouted_rules(&rules);
    Ok(MonitorStatus {
        status: evaluator.status()?,
        incidents: pipeline.incidents()?,
        silences: pipeline.silences()?,
        coverage,
        pipeline: pipeline.stats()?,
        slos,
        canaries: crate::canary::statuses(registry),
    })
}

/// What the `[http]` endpoint reads and acts on.
struct Board {
    registry: Registry,
    evaluator: Arc<EvaluatorHandle>,
    pipeline: Arc<Pipeline>,
    state: Arc<Mutex<State>>,
    /// The evaluator's tick.
    resolution: Duration,
}

impl Source for Board {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn state(&self, out: &mut Exposition<'_>) {
        use crate::metrics::MetricKind::{Counter, Gauge};
        let sample = |labels: Vec<(String, String)>, value: f64| Sample { labels, value };
        if let Ok(status) = self.evaluator.status() {
            let items: Vec<Sample> = status
                .items
                .iter()
                .map(|item| {
                    let mut labels = vec![("rule".to_owned(), item.rule.to_string())];
                    labels.extend(
                        item.labels
                            .iter()
                            .filter(|(k, _)| *k != "rule")
                            .map(|(k, v)| (k.to_owned(), v.to_owned())),
                    );
                    sample(labels, f64::from(item.severity.number()))
                })
                .collect();
            out.extra(
                "vigilo_item_severity",
                Gauge,
                "Severity of each watched item: 0 normal, 1 info, 2 warning, 3 minor, 4 major, 5 critical",
                &items,
            );
            let e = &status.evaluator;
            out.extra(
                "vigilo_evaluator_sweep_seconds",
                Gauge,
                "Duration of the evaluator's last full sweep",
                &[sample(vec![], e.last_tick_micros as f64 / 1e6)],
            );
            out.extra(
                "vigilo_evaluator_transitions_backlogged",
                Gauge,
                "Transitions waiting for the pipeline",
                &[sample(vec![], e.transitions_backlogged as f64)],
            );
            out.extra(
                "vigilo_evaluator_transitions_dropped_total",
                Counter,
                "Transitions dropped beyond the evaluator's backlog limit",
                &[sample(vec![], e.transitions_dropped as f64)],
            );
        }
        if let Ok(stats) = self.pipeline.stats() {
            out.extra(
                "vigilo_incidents_open",
                Gauge,
                "Open incidents",
                &[sample(vec![], stats.incidents_open as f64)],
            );
            out.extra(
                "vigilo_notifications_delivered_total",
                Counter,
                "Notification deliveries that succeeded",
                &[sample(vec![], stats.delivered as f64)],
            );
            out.extra(
                "vigilo_notifications_failed_total",
                Counter,
                "Notification delivery attempts that failed",
                &[sample(vec![], stats.failed as f64)],
            );
            out.extra(
                "vigilo_store_failing",
                Gauge,
                "1 while the store cannot commit (notifications are held in memory), else 0",
                &[sample(vec![], f64::from(u8::from(stats.store_failing)))],
            );
            out.extra(
                "vigilo_notifications_held",
                Gauge,
                "Notifications held because the store could not commit them",
                &[sample(vec![], stats.held_uncommitted as f64)],
            );
        }
    }

    fn status_json(&self) -> Result<String, String> {
        status_of(&self.evaluator, &self.pipeline, &self.state, &self.registry)
            .map(|s| s.to_json())
            .map_err(|e| e.to_string())
    }

    fn history_json(&self, limit: usize) -> Result<String, String> {
        let query = HistoryQuery {
            limit,
            ..HistoryQuery::default()
        };
        let events = self.pipeline.history(query).map_err(|e| e.to_string())?;
        serde_json::to_string(&events).map_err(|e| e.to_string())
    }

    fn subscribe(&self) -> Option<crossbeam_channel::Receiver<Event>> {
        self.pipeline.subscribe().ok()
    }

    fn ack(&self, incident: u64, request: AckRequest) -> Result<(), String> {
        self.pipeline
            .ack(IncidentId(incident), request)
            .map_err(|e| e.to_string())
    }

    fn silence(&self, request: SilenceRequest) -> Result<u64, String> {
        self.pipeline
            .silence(request)
            .map(|id| id.0)
            .map_err(|e| e.to_string())
    }

    fn readings(&self) -> Result<Readings, String> {
        let status = self.evaluator.status().map_err(|e| e.to_string())?;
        // Each rule's levels and direction, by name (names are unique).
        let rules: HashMap<String, (Vec<(Severity, f64)>, bool)> = self
            .state
            .lock()
            .config
            .rules
            .iter()
            .map(|r| {
                let levels = r
                    .levels()
                    .iter()
                    .map(|l| (l.severity, l.threshold))
                    .collect();
                (
                    r.name().to_owned(),
                    (levels, r.comparison() == Comparison::Below),
                )
            })
            .collect();
        let items = status
            .items
            .into_iter()
            .map(|item| {
                let (levels, below) = rules.get(&*item.rule).cloned().unwrap_or_default();
                Reading {
                    rule: item.rule,
                    labels: item.labels,
                    value: item.value,
                    severity: item.severity,
                    since: item.since,
                    unit: item.unit,
                    below,
                    levels,
                    value_text: item.value_text,
                }
            })
            .collect();
        Ok(Readings {
            at: status.at,
            items,
        })
    }

    fn item_events(&self, item: &str, limit: usize) -> Result<Vec<Event>, String> {
        let query = HistoryQuery {
            limit,
            item: Some(item.to_owned()),
            ..HistoryQuery::default()
        };
        self.pipeline.history(query).map_err(|e| e.to_string())
    }

    fn resolution(&self) -> Duration {
        self.resolution
    }
}

/// Saves the evaluator's item states, what anomaly rules learned and the logs' offsets into
/// the store every `every`.
struct Checkpoint {
    stop: crossbeam_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoint {
    fn start(
        evaluator: Arc<EvaluatorHandle>,
        pipeline: Arc<Pipeline>,
        watchers: Arc<Watchers>,
        every: Duration,
    ) -> std::io::Result<Checkpoint> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let every = every.max(Duration::from_millis(100));
        let thread = std::thread::Builder::new()
            .name("vigilo-checkpoint".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let Ok(states) = evaluator.item_states() else {
                        break;
                    };
                    if pipeline.save_item_states(states).is_err() {
                        break;
                    }
                    if let Ok(learned) = evaluator.learned_states() {
                        pipeline.save_learned(learned);
                    }
                    let offsets = watchers.log_checkpoints();
                    if !offsets.is_empty() {
                        pipeline.save_log_offsets(offsets);
                    }
                }
            })?;
        Ok(Checkpoint {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::from_secs(5));
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("running", &self.pipeline.is_some())
            .finish()
    }
}
