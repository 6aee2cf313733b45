//! The data of one call's `Store`: a WASI context that grants nothing, the capped output
//! pipes, the memory cap, the deadline bookkeeping, and the capability imports' host side.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{HostWallClock, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::PluginError;
use crate::budget::CallBudget;
use crate::exec::{self, ExecFailure, ExecOutput};
use crate::http::HttpPolicy;
use crate::inert;
use crate::mail::MailFailure;
use crate::output::CappedPipe;
use crate::policy::Policy;
use crate::runtime::Meter;

/// Bytes one `wasi:http` fields object (a header map) may hold.
const FIELD_SIZE_LIMIT: usize = 16 * 1024;
/// Resources (streams, pollables, requests, header maps …) one call may hold at once. With
/// [`FIELD_SIZE_LIMIT`] this bounds the header memory a guest can make the host hold outside its
/// own memory cap to 4 MiB.
const MAX_RESOURCES: usize = 256;
/// The longest a spinning guest runs between two yields to the runtime (so the call's
/// wall-clock limit can end it).
const YIELD_EVERY: Duration = Duration::from_millis(20);

/// Log target of everything a plugin says (its log import, stdout, stderr).
pub const LOG_TARGET: &str = "vigilo::plugin";

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
    /// The guest's running time (its compute deadline's clock).
    meter: Arc<Meter>,
    /// The host's shared runtime, for blocking work that may outlive the call.
    blocking: Option<tokio::runtime::Handle>,
    /// Commands run in this call.
    exec_runs: u32,
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

/// A fresh store for one call of the plugin of `policy`, its compute deadline armed on the
/// guest time `meter` measures.
pub(crate) fn new_store(
    engine: &Engine,
    policy: &Arc<Policy>,
    tick: Duration,
    meter: Arc<Meter>,
    blocking: Option<tokio::runtime::Handle>,
    budget: Arc<CallBudget>,
) -> Store<HostState> {
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
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    let mut http_ctx = WasiHttpCtx::new();
    http_ctx.set_field_size_limit(FIELD_SIZE_LIMIT);
    let state = HostState {
        wasi,
        table,
        http_ctx,
        http: HttpPolicy::new(Arc::clone(policy), budget),
        limiter: MemoryCap {
            limit: policy.memory_limit,
            hit: false,
        },
        policy: Arc::clone(policy),
        stdout,
        stderr,
        meter,
        blocking,
        exec_runs: 0,
        timed_out: false,
        denied: None,
        logs: 0,
        logs_dropped: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(ticks(policy.deadline.min(YIELD_EVERY), tick));
    // At each deadline: stop the guest if it has computed its share, else yield to the
    // runtime (so the call's wall-clock limit can take effect) and come back when the rest of
    // the share could be used up, or sooner.
    store.epoch_deadline_callback(move |mut cx| {
        let s = cx.data_mut();
        let used = s.meter.busy();
        if used >= s.policy.deadline {
            s.timed_out = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            let rest = (s.policy.deadline - used).min(YIELD_EVERY);
            Ok(UpdateDeadline::Yield(ticks(rest, tick)))
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
        // One call, one record: the message is cut, then made inert (its line breaks and
        // escape sequences shown as escapes, see `inert.rs`).
        let max = self.policy.log_max_bytes;
        if message.len() > max {
            let mut cut = max;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let shown = inert::line(&message[..cut]);
            log::log!(target: LOG_TARGET, level, "plugin {}: {shown}… ({} bytes cut)", self.policy.name, message.len() - cut);
        } else {
            let shown = inert::line(message);
            log::log!(target: LOG_TARGET, level, "plugin {}: {shown}", self.policy.name);
        }
    }

    /// The exec import: at most `max_exec_runs` commands per call.
    pub(crate) async fn exec(
        &mut self,
        command: String,
        args: Vec<String>,
    ) -> Result<ExecOutput, ExecFailure> {
        let policy = Arc::clone(&self.policy);
        let r = if self.exec_runs >= policy.max_exec_runs {
            Err(exec::refuse(
                &policy,
                &command,
                &args,
                true,
                format!(
                    "plugin {} may run at most {} command(s) per call",
                    policy.name, policy.max_exec_runs
                ),
            ))
        } else {
            self.exec_runs += 1;
            exec::run(policy, command, args, self.blocking.as_ref()).await
        };
        if let Err(ExecFailure::Denied(why)) = &r {
            self.denied
                .get_or_insert_with(|| crate::limits::head(why.clone()));
        }
        r
    }

    /// The mail import. The SMTP exchange runs on a blocking thread of the host's shared
    /// runtime; if the call is ended
    /// meanwhile, it still finishes (within the SMTP timeout) on its own.
    pub(crate) async fn mail(
        &mut self,
        from: String,
        to: Vec<String>,
        message: String,
    ) -> Result<(), MailFailure> {
        let policy = Arc::clone(&self.policy);
        if policy.mailer.is_none() {
            let why = format!("plugin {} has no SMTP server configured", policy.name);
            self.denied
                .get_or_insert_with(|| crate::limits::head(why.clone()));
            return Err(MailFailure::Denied(why));
        }
        let sent =
            crate::runtime::spawn_blocking(self.blocking.as_ref(), move || match &policy.mailer {
                Some(mailer) => mailer.send(&from, &to, &message),
                None => Err(MailFailure::Denied("no SMTP server".into())),
            })
            .await;
        let r = sent.unwrap_or_else(|e| Err(MailFailure::Retryable(format!("mail task: {e}"))));
        if let Err(MailFailure::Denied(why)) = &r {
            self.denied
                .get_or_insert_with(|| crate::limits::head(why.clone()));
        }
        r
    }

    /// The call's resources (what `io_error.rs` looks an error up in).
    pub(crate) fn resource_table(&self) -> &wasmtime::component::ResourceTable {
        &self.table
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
        // Each stream is one record, made inert (its lines joined by visible `\n` escapes).
        if !out.is_empty() {
            log::info!(target: LOG_TARGET, "plugin {name} stdout{}: {}", dropped(out_dropped), inert::line(out.trim_end()));
        }
        if !err.is_empty() {
            log::warn!(target: LOG_TARGET, "plugin {name} stderr{}: {}", dropped(err_dropped), inert::line(err.trim_end()));
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
        let last = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
        inert::line_owned(last)
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
        let message = inert::line_owned(message);
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
