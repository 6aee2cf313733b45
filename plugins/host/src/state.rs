//! The data of one call's `Store`: a WASI context that grants nothing, the capped output
//! pipes, the memory cap, the deadline bookkeeping, and the capability imports' host side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{HostWallClock, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::PluginError;
use crate::exec::{self, ExecFailure, ExecOutput};
use crate::http::HttpPolicy;
use crate::mail::MailFailure;
use crate::output::CappedPipe;
use crate::policy::Policy;

/// Log target of everything a plugin says (its log import, stdout, stderr).
pub(crate) const LOG_TARGET: &str = "vigilo::plugin";

/// Store data of one plugin call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    http: HttpPolicy,
    limiter: MemoryCap,
    policy: Arc<Policy>,
    stdout: CappedPipe,
    stderr: CappedPipe,
    started: Instant,
    /// Time blocked in exec and mail (not counted against the deadline).
    host_time: Duration,
    timed_out: bool,
    denied: Option<String>,
    logs: u32,
    logs_dropped: u32,
}

/// The memory cap: growth past `limit` traps, and the trap is recognised afterwards.
struct MemoryCap {
    limit: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory cap of {} bytes reached",
                self.limit
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The host's clock as the guest's `wasi:clocks/wall-clock`.
struct WallClock(Arc<Policy>);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.clock.now().as_nanos()).unwrap_or(0))
    }
}

/// A fresh store for one call of the plugin of `policy`, its deadline armed.
pub(crate) fn new_store(engine: &Engine, policy: &Arc<Policy>, tick: Duration) -> Store<HostState> {
    let stdout = CappedPipe::new(policy.output_capacity);
    let stderr = CappedPipe::new(policy.output_capacity);
    // Nothing is inherited: no preopened directory, no environment, no arguments, no
    // sockets (TCP, UDP and name lookup are off and every address is refused).
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .wall_clock(WallClock(Arc::clone(policy)))
        .build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        http_ctx: WasiHttpCtx::new(),
        http: HttpPolicy::new(Arc::clone(policy)),
        limiter: MemoryCap {
            limit: policy.memory_limit,
            hit: false,
        },
        policy: Arc::clone(policy),
        stdout,
        stderr,
        started: Instant::now(),
        host_time: Duration::ZERO,
        timed_out: false,
        denied: None,
        logs: 0,
        logs_dropped: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(ticks(policy.deadline, tick));
    store.epoch_deadline_callback(move |mut cx| {
        let s = cx.data_mut();
        let waited = s.host_time + s.http.waited();
        let used = s.started.elapsed().saturating_sub(waited);
        if used >= s.policy.deadline {
            s.timed_out = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(ticks(
                s.policy.deadline - used,
                tick,
            )))
        }
    });
    store
}

/// Epoch ticks covering `d` (at least one).
fn ticks(d: Duration, tick: Duration) -> u64 {
    let t = tick.as_nanos().max(1);
    u64::try_from(d.as_nanos().div_ceil(t))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl HostState {
    pub(crate) fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy)
    }

    /// The log import: capped per message and per call.
    pub(crate) fn guest_log(&mut self, level: log::Level, message: &str) {
        if self.logs >= self.policy.log_max_messages {
            self.logs_dropped = self.logs_dropped.saturating_add(1);
            return;
        }
        self.logs += 1;
        let max = self.policy.log_max_bytes;
        if message.len() > max {
            let mut cut = max;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            log::log!(target: LOG_TARGET, level, "plugin {}: {}… ({} bytes cut)", self.policy.name, &message[..cut], message.len() - cut);
        } else {
            log::log!(target: LOG_TARGET, level, "plugin {}: {message}", self.policy.name);
        }
    }

    /// The exec import.
    pub(crate) fn exec(
        &mut self,
        command: &str,
        args: &[String],
    ) -> Result<ExecOutput, ExecFailure> {
        let t0 = Instant::now();
        let r = exec::run(&self.policy, command, args);
        self.host_time += t0.elapsed();
        if let Err(ExecFailure::Denied(why)) = &r {
            self.denied.get_or_insert_with(|| why.clone());
        }
        r
    }

    /// The mail import.
    pub(crate) fn mail(
        &mut self,
        from: &str,
        to: &[String],
        message: &str,
    ) -> Result<(), MailFailure> {
        let policy = Arc::clone(&self.policy);
        let Some(mailer) = &policy.mailer else {
            let why = format!("plugin {} has no SMTP server configured", policy.name);
            self.denied.get_or_insert_with(|| why.clone());
            return Err(MailFailure::Denied(why));
        };
        let t0 = Instant::now();
        let r = mailer.send(from, to, message);
        self.host_time += t0.elapsed();
        if let Err(MailFailure::Denied(why)) = &r {
            self.denied.get_or_insert_with(|| why.clone());
        }
        r
    }

    /// The first capability refused during the call, if any.
    pub(crate) fn denial(&self) -> Option<&str> {
        self.denied.as_deref().or(self.http.denied.as_deref())
    }

    /// Sends the call's stdout, stderr and dropped-log count to the log; returns the end of
    /// stderr (for trap messages).
    pub(crate) fn flush_output(&mut self) -> String {
        let name = &self.policy.name;
        let (out, out_dropped) = self.stdout.take();
        let (err, err_dropped) = self.stderr.take();
        if !out.is_empty() {
            log::info!(target: LOG_TARGET, "plugin {name} stdout{}: {}", dropped(out_dropped), out.trim_end());
        }
        if !err.is_empty() {
            log::warn!(target: LOG_TARGET, "plugin {name} stderr{}: {}", dropped(err_dropped), err.trim_end());
        }
        if self.logs_dropped > 0 {
            log::warn!(
                target: LOG_TARGET,
                "plugin {name}: {} log messages dropped (at most {} per call)",
                self.logs_dropped,
                self.policy.log_max_messages
            );
        }
        let last: Vec<&str> = err.trim_end().lines().rev().take(3).collect();
        last.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Turns a wasmtime error from instantiation or a call into a [`PluginError`].
    pub(crate) fn classify(&mut self, err: &wasmtime::Error, instantiating: bool) -> PluginError {
        let plugin = self.policy.name.to_string();
        let stderr = self.flush_output();
        if self.timed_out || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return PluginError::Timeout {
                plugin,
                deadline: self.policy.deadline,
            };
        }
        if self.limiter.hit {
            return PluginError::MemoryExhausted {
                plugin,
                limit: self.policy.memory_limit,
            };
        }
        let message = if let Some(exit) = err.downcast_ref::<I32Exit>() {
            format!("the plugin called exit({})", exit.0)
        } else if let Some(trap) = err.downcast_ref::<Trap>() {
            trap.to_string()
        } else {
            format!("{err:#}")
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let message = if stderr.is_empty() {
            message
        } else {
            format!("{message}; stderr: {stderr}")
        };
        if instantiating && err.downcast_ref::<Trap>().is_none() {
            // Refused before any guest code ran: a full instance pool, a resource limit.
            PluginError::Instantiate { plugin, message }
        } else {
            PluginError::Trap { plugin, message }
        }
    }
}

fn dropped(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} earlier bytes dropped)")
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}
