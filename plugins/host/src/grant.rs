//! An exec grant compiled for checking requests: the command, one anchored pattern per
//! argument, the limits.

use std::path::Component;
use std::time::Duration;

use regex::Regex;

use crate::ExecGrant;

/// What the audit trail keeps of each argument.
pub(crate) const AUDIT_ARG: usize = 256;

/// A grant with its patterns compiled.
pub(crate) struct CompiledGrant {
    pub(crate) command: String,
    patterns: Vec<Regex>,
    pub(crate) timeout: Duration,
    pub(crate) max_output: usize,
    pub(crate) end_of_options: bool,
    ascii_only: bool,
}

impl CompiledGrant {
    pub(crate) fn new(g: &ExecGrant) -> Result<CompiledGrant, String> {
        let path = g.command.as_path();
        let Some(command) = path.to_str() else {
            return Err(format!("exec grant {} is not valid UTF-8", path.display()));
        };
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(format!(
                "exec grant {command:?} must be an absolute path without . or .."
            ));
        }
        if g.timeout.is_zero() {
            return Err(format!("exec grant {command:?} has a zero timeout"));
        }
        let patterns = g
            .args
            .iter()
            .map(|p| {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("exec grant {command:?}: bad pattern {p:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledGrant {
            command: command.to_owned(),
            patterns,
            timeout: g.timeout,
            max_output: g.max_output,
            end_of_options: g.end_of_options,
            ascii_only: g.ascii_only,
        })
    }

    /// Why `args` do not fit this grant, if they do not.
    pub(crate) fn check_args(&self, args: &[String]) -> Result<(), String> {
        if args.len() != self.patterns.len() {
            return Err(format!(
                "{} takes exactly {} argument(s) under its grant, not {}",
                self.command,
                self.patterns.len(),
                args.len()
            ));
        }
        for (i, (a, p)) in args.iter().zip(&self.patterns).enumerate() {
            if self.ascii_only && !a.is_ascii() {
                return Err(format!(
                    "argument {} {:?} of {} has characters outside ASCII, which its grant refuses",
                    i + 1,
                    shorten(a),
                    self.command
                ));
            }
            if !p.is_match(a) {
                return Err(format!(
                    "argument {} {:?} of {} does not match the granted pattern {}",
                    i + 1,
                    shorten(a),
                    self.command,
                    p.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// `s` made inert (it is the guest's text, see `inert.rs`) and cut to [`AUDIT_ARG`] bytes, with
/// its length when cut.
pub(crate) fn shorten(s: &str) -> String {
    let escaped = crate::inert::line(s);
    let s = escaped.as_ref();
    if s.len() <= AUDIT_ARG {
        return s.to_owned();
    }
    let mut end = AUDIT_ARG;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants() {
        let g = CompiledGrant::new(&ExecGrant::new(
            "/usr/bin/systemctl",
            &["restart", "nginx|redis"],
        ))
        .unwrap();
        assert!(g.check_args(&["restart".into(), "nginx".into()]).is_ok());
        let e = g
            .check_args(&["restart".into(), "nginx; rm -rf /".into()])
            .unwrap_err();
        assert!(e.contains("argument 2"), "{e}");
        assert!(
            g.check_args(&["restart".into()])
                .unwrap_err()
                .contains("exactly 2")
        );
        assert!(CompiledGrant::new(&ExecGrant::new("systemctl", &[])).is_err());
        assert!(CompiledGrant::new(&ExecGrant::new("/usr/../bin/sh", &[])).is_err());
        assert!(CompiledGrant::new(&ExecGrant::new("/bin/true", &["("])).is_err());
    }
}
