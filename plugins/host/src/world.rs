//! Checking a component against the contract before linking it: which world it implements,
//! which version of `vigilo:plugin`, and whether its imports fit its kind.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{LoadError, PluginKind};

/// The package every plugin implements.
pub(crate) const PACKAGE: &str = "vigilo:plugin";

/// A version of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) patch: u32,
}

impl Version {
    pub(crate) const V0_1_0: Version = Version {
        major: 0,
        minor: 1,
        patch: 0,
    };
    pub(crate) const V0_2_0: Version = Version {
        major: 0,
        minor: 2,
        patch: 0,
    };

    fn parse(s: &str) -> Option<Version> {
        let core = s.split(['-', '+']).next()?;
        let mut it = core.split('.').map(str::parse::<u32>);
        let v = Version {
            major: it.next()?.ok()?,
            minor: it.next()?.ok()?,
            patch: it.next()?.ok()?,
        };
        it.next().is_none().then_some(v)
    }

    /// Semver compatibility as the component model sees it: same major, and same minor while
    /// the major is 0.
    fn compatible(self, other: Version) -> bool {
        self.major == other.major && (self.major != 0 || self.minor == other.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The versions this host has bindings for, oldest first. Adding a version means adding a
/// module under `bindings/` and a line here.
pub(crate) const SUPPORTED: &[Version] = &[Version::V0_1_0, Version::V0_2_0];

/// The `vigilo:plugin` interfaces each kind may import (besides WASI).
fn allowed_imports(kind: PluginKind) -> &'static [&'static str] {
    match kind {
        PluginKind::Channel => &["types", "log", "clock", "mail"],
        PluginKind::Action => &["types", "log", "clock", "exec"],
    }
}

/// Splits `vigilo:plugin/channel@0.1.0` into (`channel`, `0.1.0`).
fn split_vigilo(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

/// Checks that `component` is a `kind` plugin this host can run and returns the bindings
/// version to use for it.
pub(crate) fn check(
    engine: &Engine,
    component: &Component,
    name: &str,
    kind: PluginKind,
) -> Result<Version, LoadError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
    let wrong_world = |detail: String| LoadError::WrongWorld {
        name: name.to_owned(),
        detail,
    };

    let find = |k: PluginKind| {
        exports
            .iter()
            .filter_map(|e| split_vigilo(e).map(|(iface, v)| (*e, iface, v)))
            .find(|(_, iface, _)| *iface == k.interface())
    };
    let Some((export, _, version)) = find(kind) else {
        let other = match kind {
            PluginKind::Channel => PluginKind::Action,
            PluginKind::Action => PluginKind::Channel,
        };
        return Err(wrong_world(match find(other) {
            Some((e, _, _)) => format!(
                "is {} plugin (it exports {e}), not {} plugin",
                other.with_article(),
                kind.with_article()
            ),
            None => format!(
                "does not export {PACKAGE}/{}: not {} plugin (its exports: {})",
                kind.interface(),
                kind.with_article(),
                if exports.is_empty() {
                    "none".to_owned()
                } else {
                    exports.join(", ")
                }
            ),
        }));
    };
    let Some(found) = Version::parse(version) else {
        return Err(wrong_world(format!(
            "exports {export}, whose version is not semver"
        )));
    };
    let Some(version) = SUPPORTED
        .iter()
        .copied()
        .rev()
        .find(|v| v.compatible(found))
    else {
        return Err(LoadError::UnsupportedVersion {
            name: name.to_owned(),
            version: found.to_string(),
            supported: SUPPORTED
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };

    for (import, _) in ty.imports(engine) {
        if let Some((iface, _)) = split_vigilo(import) {
            if !allowed_imports(kind).contains(&iface) {
                return Err(LoadError::ForbiddenImport {
                    name: name.to_owned(),
                    import: format!("{PACKAGE}/{iface}"),
                    kind,
                });
            }
        } else if !import.starts_with("wasi:") {
            return Err(LoadError::UnknownImport {
                name: name.to_owned(),
                import: import.to_owned(),
            });
        }
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(Version::parse("0.1.0"), Some(Version::V0_1_0));
        assert_eq!(Version::parse("0.1.7-rc1").map(|v| v.patch), Some(7));
        assert_eq!(Version::parse("0.1"), None);
        assert_eq!(Version::parse("0.1.0.0"), None);
        assert!(Version::V0_1_0.compatible(Version {
            major: 0,
            minor: 1,
            patch: 4
        }));
        assert!(!Version::V0_1_0.compatible(Version {
            major: 0,
            minor: 2,
            patch: 0
        }));
        assert_eq!(
            split_vigilo("vigilo:plugin/exec@0.1.0"),
            Some(("exec", "0.1.0"))
        );
        assert_eq!(split_vigilo("wasi:io/poll@0.2.0"), None);
    }
}
