//! The monitor: created from TOML, given C channels and event callbacks, started, asked,
//! stopped and destroyed.
//!
//! A `vigilo_monitor *` is a token: every call looks it up in the table of live monitors, so a
//! destroyed handle is refused (`VIGILO_STATUS_STALE_HANDLE`) rather than dereferenced, and a
//! call running on another thread keeps the monitor alive until it returns.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use vigilo::Registry;
use vigilo::alert::Channel;
use vigilo::config::{Config, ConfigError};
use vigilo::monitor::{Monitor, MonitorError};
use vigilo::pipeline::{PipelineError, PluginSource};

use crate::args::{millis, non_null};
use crate::callbacks::{CChannel, Owned, Subscription, UserData};
use crate::error::{Failure, fail, guard, vigilo_status};
use crate::runner::inside_callback_of;
use crate::strings::{c_str, c_text};
use crate::views::{EventFn, vigilo_deliver_fn, vigilo_event_callback, vigilo_free_fn};

/// A monitor: registry, host items, evaluator, alert pipeline, channels and actions, from one
/// TOML configuration. Opaque.
pub struct vigilo_monitor {
    registry: Registry,
    state: Mutex<State>,
    /// Held for the whole of a stop, so that a second `stop` or `free` racing the first
    /// returns only once the first has finished (callbacks ended, user data freed).
    stopping: Mutex<()>,
}

enum State {
    /// Created, not started: C channels and subscriptions may be added.
    Configured {
        config: Box<Config>,
        channels: Vec<Arc<dyn Channel>>,
        subscribers: Vec<(EventFn, Owned)>,
    },
    Running {
        monitor: Arc<Monitor>,
        subscriptions: Vec<Subscription>,
    },
    /// Being stopped, or stopped.
    Stopped,
}

/// The live monitors, by token.
static LIVE: LazyLock<Mutex<HashMap<usize, Arc<vigilo_monitor>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn token(m: *const vigilo_monitor) -> usize {
    m as usize
}

/// The live monitor behind `m`.
pub(crate) fn lookup(m: *const vigilo_monitor) -> Result<Arc<vigilo_monitor>, Failure> {
    if m.is_null() {
        return Err(fail(vigilo_status::NullArgument, "monitor is NULL"));
    }
    LIVE.lock().get(&token(m)).cloned().ok_or_else(|| {
        fail(
            vigilo_status::StaleHandle,
            "this monitor was destroyed (or never created)",
        )
    })
}

impl vigilo_monitor {
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The running monitor, for a call that needs one.
    pub(crate) fn running(&self) -> Result<Arc<Monitor>, Failure> {
        match &*self.state.lock() {
            State::Running { monitor, .. } => Ok(Arc::clone(monitor)),
            State::Configured { .. } => Err(fail(
                vigilo_status::State,
                "the monitor is not started: call vigilo_monitor_start first",
            )),
            State::Stopped => Err(fail(vigilo_status::State, "the monitor is stopped")),
        }
    }
}

/// The status and message for a monitor error.
pub(crate) fn monitor_failure(e: MonitorError) -> Failure {
    let status = match &e {
        MonitorError::Config(_)
        | MonitorError::Plugin { .. }
        | MonitorError::NoLoader { .. }
        | MonitorError::MissingNative { .. } => vigilo_status::Config,
        MonitorError::Pipeline(
            PipelineError::UnknownIncident(_) | PipelineError::UnknownSilence(_),
        ) => vigilo_status::NotFound,
        MonitorError::Pipeline(PipelineError::BadRequest(_)) => vigilo_status::InvalidArgument,
        MonitorError::Pipeline(
            PipelineError::MissingChannel(_)
            | PipelineError::MissingAction(_)
            | PipelineError::UnconfiguredChannel(_)
            | PipelineError::UnconfiguredAction(_),
        ) => vigilo_status::Config,
        _ => vigilo_status::Monitor,
    };
    fail(status, e.to_string())
}

fn config_failure(e: ConfigError) -> Failure {
    let status = match &e {
        ConfigError::Read { .. } => vigilo_status::Io,
        _ => vigilo_status::Config,
    };
    fail(status, e.with_excerpt())
}

/// Registers a new monitor and writes its handle to `out`.
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn publish(config: Config, out: *mut *mut vigilo_monitor) -> Result<(), Failure> {
    non_null(out, "out")?;
    let monitor = Arc::new(vigilo_monitor {
        registry: Registry::with_config(config.registry.clone()),
        stopping: Mutex::new(()),
        state: Mutex::new(State::Configured {
            config: Box::new(config),
            channels: Vec::new(),
            subscribers: Vec::new(),
        }),
    });
    let ptr = Arc::as_ptr(&monitor).cast_mut();
    LIVE.lock().insert(token(ptr), monitor);
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { out.write(ptr) };
    Ok(())
}

/// Creates a monitor from `len` bytes of TOML (rules, host items, channels, routes, actions,
/// store, plugins: see `examples/pipeline.toml`). `name` (NULL for `"<config>"`) names the text
/// in error messages, which locate the problem as `name:line:column`. The monitor is not
/// started: add C channels and event callbacks, then call [`vigilo_monitor_start`].
///
/// Ownership: `*out` is the caller's, to destroy with [`vigilo_monitor_free`]. Thread safety:
/// every `vigilo_monitor_*` function may be called from any thread.
///
/// # Safety
/// `toml` points to `len` readable bytes (or is NULL with `len` 0); `name` is NULL or a
/// NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_new(
    toml: *const c_char,
    len: usize,
    name: *const c_char,
    out: *mut *mut vigilo_monitor,
) -> vigilo_status {
    guard(|| {
        non_null(out, "out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { c_text(toml, len, "toml") }?;
        let name = if name.is_null() {
            "<config>"
        } else {
            // SAFETY: per this function's contract.
            unsafe { c_str(name, "name") }?
        };
        let config = Config::from_str_named(text, name).map_err(config_failure)?;
        // SAFETY: per this function's contract.
        unsafe { publish(config, out) }
    })
}

/// Creates a monitor from the TOML file at `path` (relative paths in it are relative to the
/// file's folder). As [`vigilo_monitor_new`] otherwise.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_new_from_file(
    path: *const c_char,
    out: *mut *mut vigilo_monitor,
) -> vigilo_status {
    guard(|| {
        non_null(path, "path")?;
        non_null(out, "out")?;
        // SAFETY: per this function's contract.
        let path = unsafe { c_str(path, "path") }?;
        let config = Config::from_file(path).map_err(config_failure)?;
        // SAFETY: per this function's contract.
        unsafe { publish(config, out) }
    })
}

/// Implements the configured channel `name` (a `[[channel]]` without `plugin` or `path`) in C:
/// `deliver` is called for each alert routed to it, on threads vigilo starts for it (several
/// at once if the channel's `workers` allow), and may call back into this API (but not stop or
/// destroy this monitor). `free_user_data` (may be NULL) is called once, when no `deliver` can
/// run any more: before [`vigilo_monitor_stop`] or [`vigilo_monitor_free`] returns; also if
/// this function fails. Only before [`vigilo_monitor_start`].
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `name` is a NUL-terminated string;
/// `deliver` and `free_user_data` are valid functions for `user_data`, callable from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_add_channel(
    monitor: *mut vigilo_monitor,
    name: *const c_char,
    deliver: vigilo_deliver_fn,
    user_data: *mut c_void,
    free_user_data: vigilo_free_fn,
) -> vigilo_status {
    let user = Owned {
        data: UserData(user_data),
        free: free_user_data,
    };
    guard(move || {
        non_null(monitor, "monitor")?;
        non_null(name, "name")?;
        let deliver =
            deliver.ok_or_else(|| fail(vigilo_status::NullArgument, "deliver is NULL"))?;
        let m = lookup(monitor)?;
        // SAFETY: per this function's contract.
        let name = unsafe { c_str(name, "name") }?.to_owned();
        let mut state = m.state.lock();
        let State::Configured {
            config, channels, ..
        } = &mut *state
        else {
            return Err(fail(
                vigilo_status::State,
                "channels are added before vigilo_monitor_start",
            ));
        };
        match config.pipeline.channels.iter().find(|c| c.name == name) {
            None => {
                return Err(fail(
                    vigilo_status::Config,
                    format!("no [[channel]] named {name:?} in the configuration"),
                ));
            }
            Some(c) if c.source != PluginSource::Native => {
                return Err(fail(
                    vigilo_status::Config,
                    format!(
                        "channel {name:?} is a plugin in the configuration; a C channel's \
                         [[channel]] has no `plugin` or `path`"
                    ),
                ));
            }
            Some(_) => {}
        }
        if channels.iter().any(|c| c.name() == name) {
            return Err(fail(
                vigilo_status::InvalidArgument,
                format!("channel {name:?} was already added"),
            ));
        }
        channels.push(Arc::new(CChannel {
            name,
            deliver,
            runners: parking_lot::Mutex::new(Vec::new()),
            ended: std::sync::atomic::AtomicBool::new(false),
            user,
            token: token(monitor),
        }));
        Ok(())
    })
}

/// Calls `callback` for every event of the monitor: each transition from the evaluator, each
/// delivery (`"delivered"`, `"retrying"`, `"failed"`), each recovery action's outcome
/// (`"action_finished"`) and every other decision of the pipeline, in order, on a thread of its
/// own. The callback may call back into this API (but not stop or destroy this monitor: that
/// is refused with `VIGILO_STATUS_STATE`). `free_user_data` (may be NULL) runs once after the
/// last call: before [`vigilo_monitor_stop`] or [`vigilo_monitor_free`] returns; also if this
/// function fails. Before or after the start.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`; `callback` and `free_user_data` are valid
/// functions for `user_data`, callable from another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_on_event(
    monitor: *mut vigilo_monitor,
    callback: vigilo_event_callback,
    user_data: *mut c_void,
    free_user_data: vigilo_free_fn,
) -> vigilo_status {
    let user = Owned {
        data: UserData(user_data),
        free: free_user_data,
    };
    guard(move || {
        non_null(monitor, "monitor")?;
        let callback =
            callback.ok_or_else(|| fail(vigilo_status::NullArgument, "callback is NULL"))?;
        let m = lookup(monitor)?;
        let mut state = m.state.lock();
        match &mut *state {
            State::Configured { subscribers, .. } => {
                subscribers.push((callback, user));
                Ok(())
            }
            State::Running {
                monitor: running,
                subscriptions,
            } => {
                subscriptions.push(subscribe(running, token(monitor), callback, user)?);
                Ok(())
            }
            State::Stopped => Err(fail(vigilo_status::State, "the monitor is stopped")),
        }
    })
}

/// A thread calling `callback` with every event of `running`.
fn subscribe(
    running: &Monitor,
    token: usize,
    callback: EventFn,
    user: Owned,
) -> Result<Subscription, Failure> {
    let events = running.subscribe().map_err(monitor_failure)?;
    Subscription::start(token, events, callback, user).map_err(|e| {
        fail(
            vigilo_status::Monitor,
            format!("cannot start a thread: {e}"),
        )
    })
}

/// Starts the monitor: loads the plugins its configuration names (bundled ones from
/// `[plugins] dir`), then the host collector, the evaluator and the pipeline. Every configured
/// C channel must have been added. On failure the monitor stays unstarted and may be fixed
/// (channels added) and started again.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_start(monitor: *mut vigilo_monitor) -> vigilo_status {
    guard(|| {
        let m = lookup(monitor)?;
        let mut state = m.state.lock();
        let State::Configured {
            config, channels, ..
        } = &*state
        else {
            return Err(fail(
                vigilo_status::State,
                "the monitor was already started",
            ));
        };
        let config = (**config).clone();
        let plugins = config
            .pipeline
            .channels
            .iter()
            .map(|c| &c.source)
            .chain(config.pipeline.actions.iter().map(|a| &a.source))
            .any(|s| *s != PluginSource::Native);
        // The plugin host (wasmtime) is only started when a plugin is configured.
        let mut builder = if plugins {
            with_plugins(config)?
        } else {
            Monitor::builder(config)
        };
        builder = builder.registry(m.registry.clone());
        for c in channels {
            builder = builder.channel(Arc::clone(c));
        }
        let running = Arc::new(builder.start().map_err(monitor_failure)?);
        let State::Configured { subscribers, .. } = std::mem::replace(&mut *state, State::Stopped)
        else {
            return Err(fail(vigilo_status::State, "the monitor changed state"));
        };
        let mut subscriptions = Vec::new();
        for (callback, user) in subscribers {
            subscriptions.push(subscribe(&running, token(monitor), callback, user)?);
        }
        *state = State::Running {
            monitor: running,
            subscriptions,
        };
        Ok(())
    })
}

/// A builder whose plugins the Wasm plugin host loads.
#[cfg(feature = "plugins")]
fn with_plugins(config: Config) -> Result<vigilo::monitor::MonitorBuilder, Failure> {
    vigilo_plugin_host::monitor(config).map_err(monitor_failure)
}

/// Built without the plugin host: the start refuses the plugins (no loader).
#[cfg(not(feature = "plugins"))]
fn with_plugins(config: Config) -> Result<vigilo::monitor::MonitorBuilder, Failure> {
    Ok(Monitor::builder(config))
}

/// Stops a running monitor: the host collector and the evaluator (judging what was recorded up
/// to now), then the pipeline, giving deliveries up to `deadline_ms` milliseconds to finish
/// (deliveries not started by then are not started: they stay in the outbox); then the event
/// callbacks. Metric handles keep working (recording into a registry nothing reads any more).
/// Refused (`VIGILO_STATUS_STATE`, nothing done) from inside one of this monitor's callbacks.
///
/// When it returns (with any status but `NULL_ARGUMENT`, `STALE_HANDLE` or that refusal), no
/// callback of this monitor (event callback, C channel `deliver`) runs or will run again,
/// and every `free_user_data` given to it was called: the caller may free what they use and
/// unload their code. A callback running past the deadline is waited for, as long as it
/// takes; so is a concurrent `vigilo_monitor_stop` or `vigilo_monitor_free` of this monitor
/// on another thread, and every call other threads are making with it.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_stop(
    monitor: *mut vigilo_monitor,
    deadline_ms: u64,
) -> vigilo_status {
    guard(|| {
        let m = lookup(monitor)?;
        if inside_callback_of(token(monitor)) {
            return Err(fail(
                vigilo_status::State,
                "a monitor cannot be stopped from inside its own callback: return first",
            ));
        }
        stop(&m, millis(deadline_ms))
    })
}

/// Stops `m` and returns once none of its callbacks runs or can run again and every user data
/// was freed (whoever started the stop).
fn stop(m: &vigilo_monitor, deadline: Duration) -> Result<(), Failure> {
    let _stopping = m.stopping.lock();
    let previous = std::mem::replace(&mut *m.state.lock(), State::Stopped);
    match previous {
        State::Running {
            monitor,
            subscriptions,
        } => {
            // Another thread may be in a call holding the monitor: it returns soon.
            let monitor = wait_for_sole_owner(monitor);
            // Returns once every delivery running has returned, and drops the monitor with its
            // C channels (their user data is freed here).
            let report = monitor.stop(deadline).map_err(monitor_failure);
            // The pipeline has stopped: the subscriptions see their channel end, and stop after
            // the callback running now returns (their user data is freed then).
            for s in subscriptions {
                s.stop();
            }
            report.map(|_| ())
        }
        // An unstarted monitor's channels and subscriptions (and their user data) go here.
        State::Configured { .. } | State::Stopped => Ok(()),
    }
}

/// Waits until no other thread is inside a call holding the monitor (each such call is short
/// or has a timeout of its own, like `vigilo_monitor_settle`). The state is `Stopped` by now,
/// so no new call can take it.
fn wait_for_sole_owner(mut monitor: Arc<Monitor>) -> Monitor {
    loop {
        match Arc::try_unwrap(monitor) {
            Ok(m) => return m,
            Err(shared) => {
                monitor = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Destroys a monitor: stops it if it runs (as [`vigilo_monitor_stop`], deliveries get 5
/// seconds), waits for the event callbacks and C channels running now to return (as long as
/// they take), frees every callback's user data, and makes the handle stale: a later call with
/// it is refused with `VIGILO_STATUS_STALE_HANDLE` (as long as the memory is not reused by a
/// new monitor). Metric handles stay valid until freed. NULL is a no-op. Refused
/// (`VIGILO_STATUS_STATE`, nothing done, the handle still valid) from inside one of this
/// monitor's callbacks.
///
/// When it returns `VIGILO_STATUS_OK` or `VIGILO_STATUS_MONITOR` (the stop reported a
/// problem), the monitor is gone: no callback of it runs or will run again, every
/// `free_user_data` given to it was called, and the caller may free what the callbacks use
/// and unload their code.
///
/// # Safety
/// `monitor` is NULL or a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_free(monitor: *mut vigilo_monitor) -> vigilo_status {
    if monitor.is_null() {
        return vigilo_status::Ok;
    }
    guard(|| {
        if inside_callback_of(token(monitor)) {
            return Err(fail(
                vigilo_status::State,
                "a monitor cannot be destroyed from inside its own callback: return first",
            ));
        }
        let m = LIVE.lock().remove(&token(monitor)).ok_or_else(|| {
            fail(
                vigilo_status::StaleHandle,
                "this monitor was already destroyed (or never created)",
            )
        })?;
        stop(&m, Duration::from_secs(5))
    })
}

/// Waits until the pipeline has handled every transition and delivery so far (for tests and
/// orderly shutdowns), for at most `timeout_ms` milliseconds.
///
/// # Safety
/// `monitor` is a handle from `vigilo_monitor_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vigilo_monitor_settle(
    monitor: *mut vigilo_monitor,
    timeout_ms: u64,
) -> vigilo_status {
    guard(|| {
        let running = lookup(monitor)?.running()?;
        running.settle(millis(timeout_ms)).map_err(monitor_failure)
    })
}
