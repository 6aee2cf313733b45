//! The `exec` import: running a command the operator granted (see [`ExecGrant`] for the
//! rules), killing its whole process group at its end or at its timeout, auditing every
//! request.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::audit::{AuditOutcome, AuditRecord};
use crate::grant::{CompiledGrant, shorten};
use crate::policy::Policy;

/// How long the output readers are waited for once the process group is dead (a process
/// that left the group with `setsid` may still hold the pipes).
const READER_GRACE: Duration = Duration::from_millis(500);
/// The most arguments a request may have.
const MAX_ARGS: usize = 256;
/// The most bytes all arguments of a request may have together.
const MAX_ARG_BYTES: usize = 64 * 1024;
const AUDIT_ARGS: usize = 32;

/// What a finished command reports.
pub(crate) struct ExecOutput {
    pub(crate) exit_code: Option<i32>,
    pub(crate) stdout_tail: String,
    pub(crate) stderr_tail: String,
    pub(crate) timed_out: bool,
}

/// Why a command did not run.
pub(crate) enum ExecFailure {
    Denied(String),
    Failed(String),
}

/// Refuses a request without looking at a grant (a cap reached); audits the refusal, with the
/// arguments' count and size but, when `keep_args` is false, not the arguments themselves.
pub(crate) fn refuse(
    policy: &Policy,
    command: &str,
    args: &[String],
    keep_args: bool,
    why: String,
) -> ExecFailure {
    audit(
        policy,
        command,
        args,
        keep_args,
        policy.clock.now(),
        Duration::ZERO,
        None,
        AuditOutcome::Denied(why.clone()),
    );
    ExecFailure::Denied(why)
}

/// Runs `command args` for the plugin of `policy` if a grant allows it; audits the request.
///
/// The process runs on a blocking thread of the host's shared runtime (`blocking`). If the returned future is dropped (the call ran past
/// its wall-clock limit), that thread is told at once, kills the process group within a few
/// milliseconds and reaps it.
pub(crate) async fn run(
    policy: Arc<Policy>,
    command: String,
    args: Vec<String>,
    blocking: Option<&tokio::runtime::Handle>,
) -> Result<ExecOutput, ExecFailure> {
    let bytes: usize = args.iter().map(String::len).sum();
    if args.len() > MAX_ARGS || bytes > MAX_ARG_BYTES {
        // Refused before anything else, and audited without the arguments themselves.
        return Err(refuse(
            &policy,
            &command,
            &args,
            false,
            format!(
                "{} argument(s) of {bytes} bytes in all; at most {MAX_ARGS} and {MAX_ARG_BYTES} bytes",
                args.len()
            ),
        ));
    }
    let started = policy.clock.now();
    let t0 = Instant::now();
    let grant = policy
        .exec
        .iter()
        .position(|g| g.command == command)
        .ok_or_else(|| {
            ExecFailure::Denied(format!(
                "{} is not granted to plugin {}",
                shorten(&command),
                policy.name
            ))
        })
        .and_then(|i| {
            policy.exec[i]
                .check_args(&args)
                .map(|()| i)
                .map_err(ExecFailure::Denied)
        });
    let result = match grant {
        Err(e) => Err(e),
        Ok(i) => {
            let cancel = Arc::new(AtomicBool::new(false));
            let _on_drop = CancelOnDrop(Arc::clone(&cancel));
            let (p, a) = (Arc::clone(&policy), args.clone());
            crate::runtime::spawn_blocking(blocking, move || {
                spawn_and_wait(&p.exec[i], &a, &cancel)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the command's thread failed: {e}")))
            .map_err(ExecFailure::Failed)
        }
    };
    let (exit_code, outcome) = match &result {
        Ok(o) if o.timed_out => (None, AuditOutcome::TimedOut),
        Ok(o) => (o.exit_code, AuditOutcome::Exited),
        Err(ExecFailure::Denied(m)) => (None, AuditOutcome::Denied(m.clone())),
        Err(ExecFailure::Failed(m)) => (None, AuditOutcome::Failed(m.clone())),
    };
    audit(
        &policy,
        &command,
        &args,
        true,
        started,
        t0.elapsed(),
        exit_code,
        outcome,
    );
    result
}

/// Sets the flag when dropped: the call's future is gone, the command must die.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // Release: the waiting thread's Acquire load sees it on its next check.
        self.0.store(true, Ordering::Release);
    }
}

#[allow(clippy::too_many_arguments)]
fn audit(
    policy: &Policy,
    command: &str,
    args: &[String],
    keep_args: bool,
    started: vigilo::clock::Timestamp,
    elapsed: Duration,
    exit_code: Option<i32>,
    outcome: AuditOutcome,
) {
    policy.audit.record(AuditRecord {
        plugin: policy.name.to_string(),
        command: shorten(command),
        args: if keep_args {
            args.iter().take(AUDIT_ARGS).map(|a| shorten(a)).collect()
        } else {
            Vec::new()
        },
        args_count: args.len(),
        args_bytes: args.iter().map(String::len).sum(),
        started,
        elapsed,
        exit_code,
        outcome,
    });
}

fn spawn_and_wait(
    g: &CompiledGrant,
    args: &[String],
    cancel: &AtomicBool,
) -> Result<ExecOutput, String> {
    let mut command = Command::new(Path::new(&g.command));
    if g.end_of_options {
        command.arg("--");
    }
    let mut child = command
        .args(args)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A new process group whose id is the child's pid: the whole tree can be killed.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", g.command))?;
    let stdout = reader(child.stdout.take(), g.max_output);
    let stderr = reader(child.stderr.take(), g.max_output);
    let (status, timed_out) = wait_with_timeout(&mut child, g.timeout, cancel)?;
    Ok(ExecOutput {
        exit_code: if timed_out { None } else { status.code() },
        stdout_tail: stdout.recv_timeout(READER_GRACE).unwrap_or_default(),
        stderr_tail: stderr.recv_timeout(READER_GRACE).unwrap_or_default(),
        timed_out,
    })
}

/// Waits for the child to exit, for `timeout` or for `cancel`, then kills its process group
/// (stragglers included) and reaps it. The leader is only observed (`WNOWAIT`) before the kill
/// so its pid, which is the group's id, cannot be reused in between.
fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<(ExitStatus, bool), String> {
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| "pid out of range".to_owned())?);
    let deadline = Instant::now() + timeout;
    let mut step = Duration::from_millis(1);
    let timed_out = loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => break false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
        let now = Instant::now();
        // Acquire: pairs with the Release in `CancelOnDrop::drop`.
        if now >= deadline || cancel.load(Ordering::Acquire) {
            break true;
        }
        thread::sleep(step.min(deadline - now));
        step = (step * 2).min(Duration::from_millis(20));
    };
    // ESRCH (the group is already empty) is the normal case after a clean exit.
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child
        .wait()
        .map_err(|e| format!("cannot reap the command: {e}"))?;
    Ok((status, timed_out))
}

/// Reads a pipe to its end on a thread, keeping the last `cap` bytes; the tail arrives on the
/// returned channel.
fn reader<R: Read + Send + 'static>(pipe: Option<R>, cap: usize) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let Some(mut pipe) = pipe else {
        let _ = tx.send(String::new());
        return rx;
    };
    thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.len() > cap.saturating_mul(2).max(8192) {
                        let cut = tail.len() - cap;
                        tail.drain(..cut);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let cut = tail.len().saturating_sub(cap);
        let _ = tx.send(String::from_utf8_lossy(&tail[cut..]).into_owned());
    });
    rx
}
