//! A loaded plugin: its pre-linked component, its policy, its circuit breaker, and the
//! handles ([`ChannelPlugin`], [`ActionPlugin`]) through which it is called.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use vigilo::alert::{Action, ActionError, ActionOutcome, Alert, Channel, DeliveryError};
use wasmtime::{Engine, Store};

use crate::bindings::{ActionPre, CallError, ChannelPre};
use crate::host::Ticker;
use crate::policy::Policy;
use crate::state::{self, HostState, LOG_TARGET};
use crate::{PluginError, PluginKind, PluginSettings};

/// The pre-linked component of a kind.
pub(crate) enum Pre {
    Channel(ChannelPre),
    Action(ActionPre),
}

/// One compiled generation of a plugin. A reload builds a new one and swaps it in; calls in
/// flight finish on the old one.
pub(crate) struct Loaded {
    pub(crate) pre: Pre,
    pub(crate) policy: Arc<Policy>,
    pub(crate) engine: Engine,
    /// Keeps the epoch ticker running while any generation of any plugin is alive.
    pub(crate) ticker: Arc<Ticker>,
    pub(crate) sha256: String,
    pub(crate) version: String,
    pub(crate) breaker: Breaker,
}

/// A named plugin: its settings and its current generation.
pub(crate) struct Slot {
    pub(crate) settings: PluginSettings,
    pub(crate) kind: PluginKind,
    pub(crate) current: RwLock<Arc<Loaded>>,
}

/// The circuit breaker: `threshold` consecutive faults quarantine the generation.
pub(crate) struct Breaker {
    threshold: u32,
    consecutive: AtomicU32,
    quarantined: AtomicBool,
    last_fault: Mutex<Option<String>>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32) -> Self {
        Breaker {
            threshold,
            consecutive: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
            last_fault: Mutex::new(None),
        }
    }

    fn check(&self, plugin: &str) -> Result<(), PluginError> {
        // Acquire: pairs with the Release in `record`, so the fault count and message written
        // before the quarantine are seen here.
        if self.quarantined.load(Ordering::Acquire) {
            return Err(PluginError::Quarantined {
                plugin: plugin.to_owned(),
                faults: self.consecutive.load(Ordering::Acquire),
                last: self.last_fault.lock().clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn record<T>(&self, result: &Result<T, PluginError>) {
        match result {
            Err(e) if e.is_fault() => {
                *self.last_fault.lock() = Some(e.to_string());
                // AcqRel: concurrent calls each count once, and the message above is
                // published with the count.
                let n = self
                    .consecutive
                    .fetch_add(1, Ordering::AcqRel)
                    .saturating_add(1);
                // Release: see `check`; `swap` tells exactly one caller to log.
                if self.threshold > 0
                    && n >= self.threshold
                    && !self.quarantined.swap(true, Ordering::AcqRel)
                {
                    log::error!(target: LOG_TARGET, "plugin {} quarantined after {n} consecutive faults; last: {e}", e.plugin());
                }
            }
            // Release: a success or an ordinary error ends the run of faults.
            _ => self.consecutive.store(0, Ordering::Release),
        }
    }
}

/// What the host knows about a plugin now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// Channel or action.
    pub kind: PluginKind,
    /// The contract version it was built against (`0.1.0`).
    pub version: String,
    /// The SHA-256 of its component file, hex.
    pub sha256: String,
    /// Faults in a row (traps, timeouts, exhausted memory) since the last good call.
    pub consecutive_faults: u32,
    /// Whether the breaker tripped (cleared by a reload).
    pub quarantined: bool,
    /// The last fault, if any.
    pub last_fault: Option<String>,
}

impl Slot {
    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    pub(crate) fn status(&self) -> PluginStatus {
        let l = self.current.read().clone();
        PluginStatus {
            name: self.settings.name.clone(),
            kind: self.kind,
            version: l.version.clone(),
            sha256: l.sha256.clone(),
            // Acquire: a status snapshot consistent with the last recorded fault.
            consecutive_faults: l.breaker.consecutive.load(Ordering::Acquire),
            quarantined: l.breaker.quarantined.load(Ordering::Acquire),
            last_fault: l.breaker.last_fault.lock().clone(),
        }
    }

    /// Runs `f` in a fresh store of the current generation; returns its answer and the first
    /// capability refused during the call.
    fn call<T>(
        &self,
        f: impl FnOnce(&Loaded, &mut Store<HostState>) -> Result<T, CallError>,
    ) -> Result<(T, Option<String>), PluginError> {
        let loaded = self.current.read().clone();
        loaded.breaker.check(self.name())?;
        let mut store = state::new_store(&loaded.engine, &loaded.policy, loaded.ticker.tick);
        let result = match f(&loaded, &mut store) {
            Ok(v) => {
                let s = store.data_mut();
                s.flush_output();
                Ok((v, s.denial().map(str::to_owned)))
            }
            Err(e) => Err(store.data_mut().classify(&e.error, e.instantiating)),
        };
        loaded.breaker.record(&result);
        if let Err(e) = &result {
            log::warn!(target: LOG_TARGET, "{e}");
        }
        result
    }

    /// Runs a call whose answer is the plugin's own `Result`: a plugin that failed after the
    /// host refused it a capability is reported as that denial, not as its own error.
    fn call_checked<T, E: std::fmt::Display>(
        &self,
        f: impl FnOnce(&Loaded, &mut Store<HostState>) -> Result<Result<T, E>, CallError>,
    ) -> Result<Result<T, E>, PluginError> {
        match self.call(f)? {
            (Err(e), Some(detail)) => Err(PluginError::Denied {
                plugin: self.name().to_owned(),
                detail: format!("{detail} (the plugin then failed: {e})"),
            }),
            (answer, _) => Ok(answer),
        }
    }
}

/// A loaded channel plugin. Cheap to clone; a reload through the host is seen by every clone.
#[derive(Clone)]
pub struct ChannelPlugin {
    pub(crate) slot: Arc<Slot>,
}

impl ChannelPlugin {
    /// Delivers `alert` in a fresh sandbox. The outer error is the sandbox's (trap, timeout,
    /// memory, denial, quarantine); the inner one is the plugin's own answer.
    pub fn try_deliver(&self, alert: &Alert) -> Result<Result<(), DeliveryError>, PluginError> {
        self.slot.call_checked(|l, store| match &l.pre {
            Pre::Channel(pre) => pre.deliver(store, alert),
            Pre::Action(_) => Ok(Err(DeliveryError::Permanent("not a channel".into()))),
        })
    }

    /// The plugin's current state (version, digest, breaker).
    pub fn status(&self) -> PluginStatus {
        self.slot.status()
    }
}

impl Channel for ChannelPlugin {
    fn name(&self) -> &str {
        self.slot.name()
    }

    /// [`try_deliver`](Self::try_deliver), with sandbox errors mapped as documented on
    /// `From<PluginError> for DeliveryError`.
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        self.try_deliver(alert).unwrap_or_else(|e| Err(e.into()))
    }
}

/// A loaded action plugin. Cheap to clone; a reload through the host is seen by every clone.
#[derive(Clone)]
pub struct ActionPlugin {
    pub(crate) slot: Arc<Slot>,
}

impl ActionPlugin {
    /// Runs the action for `alert` in a fresh sandbox. The outer error is the sandbox's; the
    /// inner one is the plugin's own failure message.
    pub fn try_run(&self, alert: &Alert) -> Result<Result<ActionOutcome, String>, PluginError> {
        let t0 = Instant::now();
        self.slot.call_checked(|l, store| match &l.pre {
            Pre::Action(pre) => pre.run(store, alert, || t0.elapsed()),
            Pre::Channel(_) => Ok(Err("not an action".into())),
        })
    }

    /// The plugin's current state (version, digest, breaker).
    pub fn status(&self) -> PluginStatus {
        self.slot.status()
    }
}

impl Action for ActionPlugin {
    fn name(&self) -> &str {
        self.slot.name()
    }

    /// [`try_run`](Self::try_run); a sandbox error maps as documented on
    /// `From<PluginError> for ActionError`, the plugin's own error to [`ActionError::Failed`].
    fn run(&self, alert: &Alert) -> Result<ActionOutcome, ActionError> {
        match self.try_run(alert) {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(m)) => Err(ActionError::Failed(format!(
                "action {}: {m}",
                self.slot.name()
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
