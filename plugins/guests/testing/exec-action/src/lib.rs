//! An action that runs the `command` with the `args` of its config
//! (`{"command":"/abs/path","args":["a","b"]}`) through the host's `exec` import and reports
//! the outcome (exit code, stdout tail). A refusal comes back as `Err("denied: …")`.
//! With `"repeat": n` it runs the command n times (stopping at the first refusal); with
//! `"big_args_mb": m` it adds one argument of m MiB.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "action-plugin" });

use exports::vigilo::plugin::action::Guest;
use vigilo::plugin::exec::{self, ExecError};
use vigilo::plugin::types::{ActionOutcome, Alert};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn run(config: String, _alert: Alert) -> Result<ActionOutcome, String> {
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| format!("bad config: {e}"))?;
        let command = config["command"].as_str().ok_or("no command")?;
        let mut args: Vec<String> = config["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(mb) = config["big_args_mb"].as_u64() {
            args.push("a".repeat((mb as usize) << 20));
        }
        let repeat = config["repeat"].as_u64().unwrap_or(1);
        for _ in 1..repeat {
            match exec::run(command, &args) {
                Ok(_) => {}
                Err(ExecError::Denied(m)) => return Err(format!("denied: {m}")),
                Err(ExecError::Failed(m)) => return Err(format!("failed: {m}")),
            }
        }
        match exec::run(command, &args) {
            Ok(out) => Ok(ActionOutcome {
                success: out.exit_code == Some(0),
                message: if out.timed_out {
                    "timed out".to_owned()
                } else {
                    format!("stderr: {}", out.stderr_tail)
                },
                exit_code: out.exit_code,
                output_tail: out.stdout_tail,
            }),
            Err(ExecError::Denied(m)) => Err(format!("denied: {m}")),
            Err(ExecError::Failed(m)) => Err(format!("failed: {m}")),
        }
    }
}
