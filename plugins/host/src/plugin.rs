//! A loaded plugin: its pre-linked component, its policy, its circuit breaker, and the
//! handles ([`ChannelPlugin`], [`ActionPlugin`]) through which it is called.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use vigilo::alert::{Action, ActionError, ActionOutcome, Alert, Channel, DeliveryError};
use wasmtime::{Engine, Store};

use crate::bindings::{ActionPre, CallError, ChannelPre};
use crate::budget::CallBudget;
use crate::policy::Policy;
use crate::runtime::{IoRuntime, Meter, Metered};
use crate::shares::{Own, Shares};
use crate::state::{self, HostState, LOG_TARGET};
use crate::ticker::Ticker;
use crate::{PluginError, PluginKind, PluginSettings, limits};

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
    /// The runtime the calls are driven on (timers, network I/O).
    pub(crate) runtime: Arc<IoRuntime>,
    pub(crate) sha256: String,
    pub(crate) version: String,
    pub(crate) breaker: Breaker,
}

/// A named plugin: its settings and its current generation.
pub(crate) struct Registered {
    pub(crate) settings: PluginSettings,
    pub(crate) kind: PluginKind,
    pub(crate) current: RwLock<Arc<Loaded>>,
    /// Calls running now.
    pub(crate) in_flight: AtomicU32,
    /// The host's instances, and the one this plugin keeps (`shares.rs`).
    pub(crate) shares: Arc<Shares>,
    pub(crate) own: Own,
}

/// A call's place among the plugin's `max_concurrent_calls`; given back on drop.
struct Permit<'a>(&'a AtomicU32);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // AcqRel: pairs with the acquiring `fetch_update`; the count is the only shared state.
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What is asked of a plugin.
enum Request<'a> {
    Deliver(&'a Alert),
    Run(&'a Alert, Instant),
}

/// What the plugin answered (its own result).
enum Answer {
    Delivered(Result<(), DeliveryError>),
    Ran(Result<ActionOutcome, String>),
}

impl Answer {
    /// The plugin's own error message, if it failed (without "retry may help" or the like:
    /// once the host refused it something, the host's verdict is what counts).
    fn failed(&self) -> Option<String> {
        match self {
            Answer::Delivered(Err(e)) => Some(e.message().to_owned()),
            Answer::Ran(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

async fn invoke(
    pre: &Pre,
    store: &mut Store<HostState>,
    request: Request<'_>,
) -> Result<Answer, CallError> {
    match (pre, request) {
        (Pre::Channel(p), Request::Deliver(a)) => p.deliver(store, a).await.map(Answer::Delivered),
        (Pre::Action(p), Request::Run(a, started)) => {
            p.run(store, a, started).await.map(Answer::Ran)
        }
        (Pre::Channel(_), Request::Run(..)) => Ok(Answer::Ran(Err("not an action".into()))),
        (Pre::Action(_), Request::Deliver(_)) => Ok(Answer::Delivered(Err(
            DeliveryError::Permanent("not a channel".into()),
        ))),
    }
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
    /// Calls running now.
    pub in_flight: u32,
    /// The last fault, if any.
    pub last_fault: Option<String>,
}

impl Registered {
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
            // Acquire: a count consistent with the calls that started before this read.
            in_flight: self.in_flight.load(Ordering::Acquire),
        }
    }

    fn permit(&self, limit: u32) -> Result<Permit<'_>, PluginError> {
        // AcqRel: each caller sees the others' increments; the count alone is protected.
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(|_| Permit(&self.in_flight))
            .map_err(|_| PluginError::Busy {
                plugin: self.name().to_owned(),
                limit,
            })
    }

    /// Runs one request in a fresh store of the current generation, on a fiber, under the
    /// plugin's compute deadline and its wall-clock bound; returns the plugin's answer
    /// and the first capability refused during the call.
    fn call(
        &self,
        request: Request<'_>,
        oversized: bool,
    ) -> Result<(Answer, Option<String>), PluginError> {
        let loaded = self.current.read().clone();
        loaded.breaker.check(self.name())?;
        let _permit = self.permit(loaded.policy.max_concurrent_calls)?;
        let _instance = self
            .shares
            .acquire(&self.own)
            .ok_or_else(|| PluginError::NoInstance {
                plugin: self.name().to_owned(),
                max_instances: self.shares.max(),
            })?;
        let _ticking = loaded.ticker.enter();
        let meter = Meter::new();
        let limit = loaded.policy.call_timeout;
        let ends = tokio::time::Instant::now() + limit;
        let mut store = state::new_store(
            &loaded.engine,
            &loaded.policy,
            loaded.ticker.tick,
            Arc::clone(&meter),
            loaded.runtime.blocking(),
            CallBudget::new(ends),
        );
        let pre = &loaded.pre;
        let name = self.name();
        let outcome = loaded.runtime.block_on(async move {
            let outcome = tokio::time::timeout_at(
                ends,
                Metered::new(invoke(pre, &mut store, request), meter),
            )
            .await;
            let result = match outcome {
                Err(_elapsed) => {
                    store.data_mut().flush_output();
                    Err(PluginError::CallTimeout {
                        plugin: name.to_owned(),
                        limit,
                    })
                }
                Ok(Ok(answer)) => {
                    let s = store.data_mut();
                    s.flush_output();
                    Ok((answer, s.denial().map(str::to_owned)))
                }
                Ok(Err(e)) => Err(store.data_mut().classify(&e.error, e.instantiating)),
            };
            // The instance (and its place in the pool) goes now, whatever happened, on the
            // call's runtime: the tasks its requests left are ended there.
            drop(store);
            result
        });
        let result = outcome.unwrap_or_else(|e| {
            Err(PluginError::Instantiate {
                plugin: self.name().to_owned(),
                message: format!("cannot drive the call: {e}"),
            })
        });
        // A fault of a call whose alert had to be cut to the host's limits is the input's
        // doing, not the plugin's: it does not count towards quarantine.
        if !(oversized && result.as_ref().is_err_and(PluginError::is_fault)) {
            loaded.breaker.record(&result);
        }
        if let Err(e) = &result {
            log::warn!(target: LOG_TARGET, "{e}");
        }
        result
    }

    /// Runs a request whose answer is the plugin's own `Result`: a plugin that failed after
    /// the host refused it a capability is reported as that denial, not as its own error. An
    /// alert cut to the host's limits that then faults is not held against the plugin's health.
    fn call_checked(&self, request: Request<'_>, oversized: bool) -> Result<Answer, PluginError> {
        match self.call(request, oversized) {
            Ok((answer, Some(detail))) if answer.failed().is_some() => Err(PluginError::Denied {
                plugin: self.name().to_owned(),
                detail: format!(
                    "{detail} (the plugin then reported: {})",
                    answer.failed().unwrap_or_default()
                ),
            }),
            Ok((answer, _)) => Ok(answer),
            Err(e) => Err(e),
        }
    }
}

/// A loaded channel plugin. Cheap to clone; a reload through the host is seen by every clone.
#[derive(Clone)]
pub struct ChannelPlugin {
    pub(crate) registered: Arc<Registered>,
}

impl ChannelPlugin {
    /// Delivers `alert` in a fresh sandbox. The outer error is the sandbox's (trap, timeout,
    /// memory, denial, quarantine, busy); the inner one is the plugin's own answer.
    pub fn try_deliver(&self, alert: &Alert) -> Result<Result<(), DeliveryError>, PluginError> {
        let (alert, oversized) = limits::cap_alert(alert);
        match self
            .registered
            .call_checked(Request::Deliver(&alert), oversized)?
        {
            Answer::Delivered(r) => Ok(r),
            Answer::Ran(_) => Ok(Err(DeliveryError::Permanent("not a channel".into()))),
        }
    }

    /// The plugin's current state (version, digest, breaker, calls in flight).
    pub fn status(&self) -> PluginStatus {
        self.registered.status()
    }
}

impl Channel for ChannelPlugin {
    fn name(&self) -> &str {
        self.registered.name()
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
    pub(crate) registered: Arc<Registered>,
}

impl ActionPlugin {
    /// Runs the action for `alert` in a fresh sandbox. The outer error is the sandbox's; the
    /// inner one is the plugin's own failure message.
    pub fn try_run(&self, alert: &Alert) -> Result<Result<ActionOutcome, String>, PluginError> {
        let (alert, oversized) = limits::cap_alert(alert);
        match self
            .registered
            .call_checked(Request::Run(&alert, Instant::now()), oversized)?
        {
            Answer::Ran(r) => Ok(r),
            Answer::Delivered(_) => Ok(Err("not an action".into())),
        }
    }

    /// The plugin's current state (version, digest, breaker, calls in flight).
    pub fn status(&self) -> PluginStatus {
        self.registered.status()
    }
}

impl Action for ActionPlugin {
    fn name(&self) -> &str {
        self.registered.name()
    }

    /// [`try_run`](Self::try_run); a sandbox error maps as documented on
    /// `From<PluginError> for ActionError`, the plugin's own error to [`ActionError::Failed`].
    fn run(&self, alert: &Alert) -> Result<ActionOutcome, ActionError> {
        match self.try_run(alert) {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(m)) => Err(ActionError::Failed(format!(
                "action {}: {m}",
                self.registered.name()
            ))),
            Err(e) => Err(e.into()),
        }
    }
}
