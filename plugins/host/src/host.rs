//! [`PluginHost`]: one wasmtime engine for every plugin, loading, reloading, the epoch ticker.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use vigilo::clock::{Clock, SystemClock};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::audit::{AuditLog, AuditRecord};
use crate::bindings::{self, ActionPre, ChannelPre};
use crate::cache::{CacheStats, Compiler};
use crate::compiled::Compiled;
use crate::plugin::{ActionPlugin, Breaker, ChannelPlugin, Loaded, PluginStatus, Pre, Registered};
use crate::policy::Policy;
use crate::runtime::IoRuntime;
use crate::shares::{Own, Shares};
use crate::state::HostState;
use crate::ticker::Ticker;
use crate::{LoadError, PluginHostConfig, PluginHostError, PluginKind, PluginSettings, world};

/// Runs channel and action plugins, each call in a fresh sandbox.
///
/// One [`wasmtime::Engine`] (pooling allocator, epoch interruption) is shared by every plugin,
/// with one ticker thread advancing its epoch every [`PluginHostConfig::epoch_tick`]. A component is
/// compiled and pre-linked once per load; each call gets a new `Store` and instance.
///
/// **Calls.** Every call is an async wasmtime call: the guest runs on a fiber with a stack of
/// its own ([`PluginHostConfig::call_stack`]), so the caller's thread stack does not matter,
/// and the caller's thread drives it to completion on a current-thread tokio runtime of the
/// call's own (the guest, its HTTP requests and their timers on that one thread; commands and
/// mail on the host's shared runtime). A call ends at the first of: its answer; its compute
/// deadline (the guest's own running time, see `runtime.rs`); its wall-clock bound
/// (`call_timeout`, by default 4 × the deadline), whatever it waits for: the call's future is
/// dropped, which frees its pooled instance and kills its commands. Each plugin runs at most
/// `max_concurrent_calls` calls at once, and keeps one pooled instance for itself (`shares.rs`).
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    channel_linker: Linker<HostState>,
    action_linker: Linker<HostState>,
    config: PluginHostConfig,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditLog>,
    ticker: Arc<Ticker>,
    runtime: Arc<IoRuntime>,
    plugins: RwLock<HashMap<String, Arc<Registered>>>,
    /// Serialises loads and reloads (compilation happens outside the map's lock).
    loading: Mutex<()>,
    /// Compiled components by the SHA-256 of their bytes: loading the same file again (a
    /// reload that did not change it, a second plugin from one component) costs a lookup.
    compiled: Mutex<Compiled<Component>>,
    /// Compiles, through the verified on-disk cache when `cache_dir` is set (`cache.rs`).
    compiler: Compiler,
    /// The pooled instances, one kept by each loaded plugin (`shares.rs`).
    shares: Arc<Shares>,
}

impl PluginHost {
    /// A host on the system clock.
    pub fn new(config: PluginHostConfig) -> Result<PluginHost, PluginHostError> {
        PluginHost::with_clock(config, Arc::new(SystemClock))
    }

    /// A host whose plugins read `clock` (their `clock` import and `wasi:clocks/wall-clock`)
    /// and whose audit records are stamped by it.
    pub fn with_clock(
        config: PluginHostConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<PluginHost, PluginHostError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| PluginHostError::Engine(format!("{e:#}")))?;
        let compiler = Compiler::new(&engine, config.cache_dir.as_deref())?;
        let linker = |add: fn(&mut Linker<HostState>) -> wasmtime::Result<()>| {
            let mut l = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
            crate::io_error::add(&mut l)?;
            add(&mut l)?;
            Ok::<_, wasmtime::Error>(l)
        };
        let engine_err = |e: wasmtime::Error| PluginHostError::Engine(format!("{e:#}"));
        let channel_linker = linker(bindings::add_channel_imports).map_err(engine_err)?;
        let action_linker = linker(bindings::add_action_imports).map_err(engine_err)?;
        let ticker = Arc::new(Ticker::start(
            engine.clone(),
            config.epoch_tick.max(Duration::from_millis(1)),
        )?);
        let runtime = Arc::new(IoRuntime::new()?);
        let shares = Arc::new(Shares::new(config.max_instances));
        Ok(PluginHost {
            inner: Arc::new(Shared {
                shares,
                compiler,
                audit: Arc::new(AuditLog::new(config.audit_capacity)),
                engine,
                channel_linker,
                action_linker,
                config,
                clock,
                ticker,
                runtime,
                plugins: RwLock::new(HashMap::new()),
                loading: Mutex::new(()),
                compiled: Mutex::new(Compiled::new()),
            }),
        })
    }

    /// How many components this host has compiled (or read from `[plugins] cache_dir`) since
    /// it started. Loading a component it already compiled, by content, is served from memory
    /// and does not count: a second plugin from the same file, or a reload of an unchanged
    /// file, costs a lookup. The most recently used 32 components are kept.
    pub fn compilations(&self) -> u64 {
        self.inner.compiled.lock().compilations()
    }

    /// What the compilation cache did since the host started: components loaded from verified
    /// entries of `[plugins] cache_dir`, compiled for want of one, and entries **refused**
    /// (tampered with, swapped between components, of another engine configuration): those
    /// were never run, and each was replaced by a fresh compilation, with a warning in the log.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.compiler.stats()
    }

    /// The shared engine (to compare a raw wasmtime call with a plugin call, say).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads the channel plugin at `settings.path`.
    pub fn load_channel(&self, settings: PluginSettings) -> Result<ChannelPlugin, LoadError> {
        self.load(settings, None, PluginKind::Channel)
            .map(|registered| ChannelPlugin { registered })
    }

    /// Loads a channel plugin from `bytes` (`settings.path` is only used in messages, and
    /// such a plugin cannot be [reloaded](Self::reload) from disk).
    pub fn load_channel_bytes(
        &self,
        settings: PluginSettings,
        bytes: &[u8],
    ) -> Result<ChannelPlugin, LoadError> {
        self.load(settings, Some(bytes), PluginKind::Channel)
            .map(|registered| ChannelPlugin { registered })
    }

    /// Loads the action plugin at `settings.path`.
    pub fn load_action(&self, settings: PluginSettings) -> Result<ActionPlugin, LoadError> {
        self.load(settings, None, PluginKind::Action)
            .map(|registered| ActionPlugin { registered })
    }

    /// Loads an action plugin from `bytes`.
    pub fn load_action_bytes(
        &self,
        settings: PluginSettings,
        bytes: &[u8],
    ) -> Result<ActionPlugin, LoadError> {
        self.load(settings, Some(bytes), PluginKind::Action)
            .map(|registered| ActionPlugin { registered })
    }

    /// Re-reads and recompiles the plugin's file and swaps the new generation in atomically:
    /// calls in flight finish on the old one, later calls use the new one, and the circuit
    /// breaker starts afresh. On error the old generation stays.
    pub fn reload(&self, name: &str) -> Result<(), LoadError> {
        let _serial = self.inner.loading.lock();
        let registered = self
            .inner
            .plugins
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| LoadError::NotLoaded(name.to_owned()))?;
        if registered.settings.path.as_os_str().is_empty() {
            return Err(LoadError::Settings {
                name: name.to_owned(),
                message: "it was loaded from bytes and has no file to reload".into(),
            });
        }
        let loaded = self.compile(&registered.settings, None, registered.kind)?;
        *registered.current.write() = Arc::new(loaded);
        log::info!(target: crate::state::LOG_TARGET, "plugin {name} reloaded from {}", registered.settings.path.display());
        Ok(())
    }

    /// Forgets the plugin, giving back the pooled instance it kept; handles already given out
    /// keep working on its last generation (their calls then use shared instances only).
    pub fn unload(&self, name: &str) -> bool {
        let removed = self.inner.plugins.write().remove(name);
        if let Some(r) = &removed {
            self.inner.shares.release(&r.own);
        }
        removed.is_some()
    }

    /// The channel plugin called `name`, if one is loaded.
    pub fn channel(&self, name: &str) -> Option<ChannelPlugin> {
        let registered = self.inner.plugins.read().get(name).cloned()?;
        (registered.kind == PluginKind::Channel).then_some(ChannelPlugin { registered })
    }

    /// The action plugin called `name`, if one is loaded.
    pub fn action(&self, name: &str) -> Option<ActionPlugin> {
        let registered = self.inner.plugins.read().get(name).cloned()?;
        (registered.kind == PluginKind::Action).then_some(ActionPlugin { registered })
    }

    /// The names of the loaded plugins, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.plugins.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// The state of the plugin called `name`.
    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        self.inner.plugins.read().get(name).map(|s| s.status())
    }

    /// The exec audit trail, oldest first (at most [`PluginHostConfig::audit_capacity`] records).
    pub fn audit_log(&self) -> Vec<AuditRecord> {
        self.inner.audit.snapshot()
    }

    fn load(
        &self,
        settings: PluginSettings,
        bytes: Option<&[u8]>,
        kind: PluginKind,
    ) -> Result<Arc<Registered>, LoadError> {
        let _serial = self.inner.loading.lock();
        if self.inner.plugins.read().contains_key(&settings.name) {
            return Err(LoadError::Duplicate(settings.name));
        }
        let loaded = self.compile(&settings, bytes, kind)?;
        let name = settings.name.clone();
        let registered = Arc::new(Registered {
            settings,
            kind,
            current: RwLock::new(Arc::new(loaded)),
            in_flight: std::sync::atomic::AtomicU32::new(0),
            shares: Arc::clone(&self.inner.shares),
            own: Own::default(),
        });
        if let Some(over) = self.inner.shares.reserve(&registered.own) {
            log::warn!(target: crate::state::LOG_TARGET, "plugin {name}: {over}");
        }
        self.inner
            .plugins
            .write()
            .insert(name, Arc::clone(&registered));
        Ok(registered)
    }

    fn compile(
        &self,
        settings: &PluginSettings,
        bytes: Option<&[u8]>,
        kind: PluginKind,
    ) -> Result<Loaded, LoadError> {
        let s = &self.inner;
        let name = settings.name.clone();
        let (bytes, path): (Cow<'_, [u8]>, PathBuf) = match bytes {
            Some(b) => (Cow::Borrowed(b), display_path(&settings.path)),
            None => {
                let b = std::fs::read(&settings.path).map_err(|source| LoadError::Io {
                    name: name.clone(),
                    path: settings.path.clone(),
                    source,
                })?;
                (Cow::Owned(b), settings.path.clone())
            }
        };
        let sha256 = hex(&Sha256::digest(&bytes));
        if let Some(pin) = &settings.sha256 {
            let expected = normalise_pin(pin).ok_or_else(|| LoadError::Settings {
                name: name.clone(),
                message: format!("sha256 {pin:?} is not 64 hex digits"),
            })?;
            if expected != sha256 {
                return Err(LoadError::PinMismatch {
                    name,
                    path,
                    expected,
                    actual: sha256,
                });
            }
        }
        let policy = Policy::new(
            settings,
            kind,
            &s.config,
            Arc::clone(&s.clock),
            Arc::clone(&s.audit),
        )?;
        let cached = s.compiled.lock().get(&sha256);
        let component = match cached {
            Some(c) => c,
            None => {
                // Compiled outside the lock (seconds, for a large component), or read from a
                // verified entry of `[plugins] cache_dir` (see `cache.rs`).
                let c = s
                    .compiler
                    .component(&s.engine, &sha256, &bytes)
                    .map_err(|e| LoadError::Malformed {
                        name: name.clone(),
                        path: path.clone(),
                        message: format!("{e:#}"),
                    })?;
                s.compiled.lock().insert(sha256.clone(), c.clone());
                c
            }
        };
        let version = world::check(&s.engine, &component, &name, kind)?;
        let link = |e: wasmtime::Error| LoadError::Link {
            name: name.clone(),
            message: format!("{e:#}"),
        };
        let pre = match kind {
            PluginKind::Channel => {
                Pre::Channel(ChannelPre::new(version, &s.channel_linker, &component).map_err(link)?)
            }
            PluginKind::Action => {
                Pre::Action(ActionPre::new(version, &s.action_linker, &component).map_err(link)?)
            }
        };
        Ok(Loaded {
            pre,
            policy: Arc::new(policy),
            engine: s.engine.clone(),
            ticker: Arc::clone(&s.ticker),
            runtime: Arc::clone(&s.runtime),
            sha256,
            version: version.to_string(),
            breaker: Breaker::new(s.config.breaker_threshold),
        })
    }
}

/// Core instances one component instance may use (a Rust `wasm32-wasip2` component has a few:
/// its module, the WASI adapter, their shims).
const PER_COMPONENT_CORE_INSTANCES: u32 = 16;
/// Linear memories one component instance may use (such a component has one).
const PER_COMPONENT_MEMORIES: u32 = 2;
/// Tables one component instance may use.
const PER_COMPONENT_TABLES: u32 = 8;

fn engine_config(c: &PluginHostConfig) -> Config {
    // Every total is `max_instances` times what one component instance may use, so that
    // `max_instances` calls can always instantiate: the instances are shared out per plugin
    // (`shares.rs`), and no component can exhaust the pool's memories, tables or core
    // instances with fewer component instances.
    let n = c.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_stacks(n)
        .total_core_instances(n.saturating_mul(PER_COMPONENT_CORE_INSTANCES))
        .total_memories(n.saturating_mul(PER_COMPONENT_MEMORIES))
        .total_tables(n.saturating_mul(PER_COMPONENT_TABLES))
        .max_core_instances_per_component(PER_COMPONENT_CORE_INSTANCES)
        .max_memories_per_component(PER_COMPONENT_MEMORIES)
        .max_tables_per_component(PER_COMPONENT_TABLES)
        .max_memory_size(c.max_memory);
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .async_stack_size(c.call_stack)
        .max_wasm_stack(c.call_stack / 2)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

fn display_path(p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() {
        PathBuf::from("<bytes>")
    } else {
        p.to_path_buf()
    }
}

fn normalise_pin(pin: &str) -> Option<String> {
    let hex = pin
        .trim()
        .strip_prefix("sha256:")
        .unwrap_or(pin.trim())
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins() {
        let d = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        assert_eq!(
            normalise_pin(&format!("sha256:{d}")),
            Some(d.to_ascii_lowercase())
        );
        assert_eq!(normalise_pin("abc"), None);
        assert_eq!(hex(&Sha256::digest(b"test")), d.to_ascii_lowercase());
    }
}
