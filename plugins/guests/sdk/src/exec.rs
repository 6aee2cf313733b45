//! Running commands the operator granted to this plugin (actions only: a channel that calls
//! [`run`] is refused at load time, since the channel world has no `exec` import).
//!
//! The host runs the command by absolute path, with no shell and an empty environment, checks
//! the arguments against the granted patterns, enforces a timeout, keeps only the tail of the
//! output and audits every call.

use crate::bindings::action::vigilo::plugin::exec as raw;

/// `Denied` (not granted, or arguments outside the granted patterns) or `Failed` (could not be
/// started).
pub use raw::ExecError;
/// What the process did: `exit_code` (`None` if killed), `stdout_tail`, `stderr_tail`,
/// `timed_out`.
pub use raw::Output;

/// Runs `command` (an absolute path the operator granted) with `args`, and waits for it.
pub fn run(command: &str, args: &[String]) -> Result<Output, ExecError> {
    raw::run(command, args)
}

impl Output {
    /// Whether the process exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}
