//! # vigilo-exec-recovery: run an operator-granted recovery command
//!
//! An **action** plugin: when a rule's recovery action fires, it runs `command` with `args`
//! through the host's `exec` import ("clear the cache and restart the service"). The host runs
//! only commands the operator granted to this plugin (absolute path, argument patterns), with
//! no shell, an empty environment and a timeout, and audits every run.
//!
//! The outcome reports success (exit status 0, or one of `success_codes`), the exit code, and
//! the tail of the output (standard error after standard output, at most 2000 bytes). A command
//! that is not granted, or cannot be started, is an error: the action was not attempted.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `command` | string | required | absolute path of the program, e.g. `/usr/local/bin/restart-cache` |
//! | `args` | list of strings | `[]` | arguments, each a `{{field}}` template: `["--service", "{{labels.service}}"]` |
//! | `success_codes` | list of integers | `[0]` | exit codes that count as success |

use vigilo_plugin_sdk::exec::{self, ExecError};
use vigilo_plugin_sdk::{Action, ActionOutcome, Alert, Config, log};

/// At most this many bytes of output go into the outcome.
const TAIL: usize = 2000;

struct ExecRecovery;

impl Action for ExecRecovery {
    fn run(config: &Config, alert: &Alert) -> Result<ActionOutcome, String> {
        let command: String = config.get("command")?;
        let arg_templates: Vec<String> = config.get_or("args", Vec::new())?;
        let success_codes: Vec<i32> = config.get_or("success_codes", vec![0])?;
        let mut args = Vec::with_capacity(arg_templates.len());
        for tpl in &arg_templates {
            args.push(alert.render(tpl)?);
        }

        let out = exec::run(&command, &args).map_err(|e| match e {
            ExecError::Denied(m) => format!("{command}: not granted: {m}"),
            ExecError::Failed(m) => format!("{command}: could not start: {m}"),
        })?;

        let success = !out.timed_out && out.exit_code.is_some_and(|c| success_codes.contains(&c));
        let message = match (out.timed_out, out.exit_code) {
            (true, _) => format!("{command} timed out and was killed"),
            (false, Some(code)) => format!("{command} exited with status {code}"),
            (false, None) => format!("{command} was killed by a signal"),
        };
        let mut output = out.stdout_tail;
        if !out.stderr_tail.is_empty() {
            if !output.is_empty() && !output.ends_with('\n') {
                output.push('\n');
            }
            output.push_str(&out.stderr_tail);
        }
        log::info!("{} recovery: {message}", alert.rule);
        Ok(ActionOutcome {
            success,
            message,
            exit_code: out.exit_code,
            output_tail: tail(&output, TAIL).to_owned(),
        })
    }
}

/// The last `max` bytes of `s`, cut on a character boundary.
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

vigilo_plugin_sdk::export_action!(ExecRecovery);
