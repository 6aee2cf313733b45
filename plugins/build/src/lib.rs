//! Builds vigilo's WebAssembly guest plugins on demand.
//!
//! The guests (`plugins/guests`, a separate Cargo workspace) target `wasm32-wasip2` and are not
//! part of the root workspace's build. Tests, benches and examples that need a real component
//! call [`build_guest`], which runs
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p <package> \
//!     --manifest-path plugins/guests/Cargo.toml --target-dir <repo>/target/wasm-guests
//! ```
//!
//! after adding the `wasm32-wasip2` target through rustup if it is missing, and returns the
//! path of the component (`<package with - as _>.wasm`).
//!
//! * Builds are serialised across processes by an exclusive lock on
//!   `<repo>/target/wasm-guests/.vigilo-build.lock` (parallel test binaries do not race), and
//!   within a process by a mutex.
//! * A package built once in a process is not built again by that process (the path is
//!   cached); cargo's own freshness check makes the first call cheap when nothing changed.
//! * Variables that would change how the guest is compiled (`RUSTFLAGS`, `CARGO_BUILD_TARGET`,
//!   a coverage wrapper …) are removed from the child's environment.
//!
//! ```no_run
//! let wasm = vigilo_plugin_build::build_guest("vigilo-webhook")?;
//! assert!(wasm.ends_with("vigilo_webhook.wasm"));
//! # Ok::<(), vigilo_plugin_build::BuildError>(())
//! ```

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The target every guest is built for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// How much of a failed command's standard error a [`BuildError`] keeps (its last bytes).
const STDERR_TAIL: usize = 4000;

/// Environment variables removed from the child cargo: they would compile the guests for the
/// wrong target or with host-only flags (sanitizers, coverage, `target-cpu=native`).
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

/// Why a guest could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The package name is empty or holds characters no Cargo package name has.
    #[error("invalid guest package name {0:?}")]
    InvalidPackage(String),
    /// `cargo` (or `rustup`) could not be started at all.
    #[error(
        "cannot run `{program}` to build the wasm guests (is the Rust toolchain on PATH?): {source}"
    )]
    ToolMissing {
        /// The program that failed to start.
        program: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The `wasm32-wasip2` target is not installed and `rustup target add` failed.
    #[error(
        "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed ({status}):\n{stderr_tail}"
    )]
    TargetMissing {
        /// rustup's exit status.
        status: String,
        /// The end of rustup's standard error.
        stderr_tail: String,
    },
    /// `cargo build` ran and failed.
    #[error("building guest package(s) {packages} failed ({status}):\n{stderr_tail}")]
    BuildFailed {
        /// The packages asked for, comma-separated.
        packages: String,
        /// cargo's exit status.
        status: String,
        /// The end of cargo's standard error (the compiler's messages).
        stderr_tail: String,
    },
    /// cargo succeeded but the expected component file is not there (a package that is not a
    /// `cdylib`, or a name that differs from its library's name).
    #[error("cargo built {package} but {} does not exist (is it a cdylib named after its package?)", path.display())]
    ArtifactMissing {
        /// The package.
        package: String,
        /// Where the component was expected.
        path: PathBuf,
    },
    /// A file needed for the build (the lock file, the target directory) could not be used.
    #[error("{what} ({}): {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The root of the vigilo repository (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// The guest workspace's manifest, `plugins/guests/Cargo.toml`.
pub fn guests_manifest() -> PathBuf {
    repo_root()
        .join("plugins")
        .join("guests")
        .join("Cargo.toml")
}

/// Where guests are built: `<repo>/target/wasm-guests` (apart from the host's target dir, so
/// host and guest builds never wait on each other's lock).
pub fn guest_target_dir() -> PathBuf {
    repo_root().join("target").join("wasm-guests")
}

/// Where the component of `package` lands once built (whether or not it exists yet).
pub fn guest_path(package: &str) -> PathBuf {
    guest_target_dir()
        .join(GUEST_TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Builds the guest `package` (release, `wasm32-wasip2`) and returns its component's path.
///
/// The first call in a process runs cargo; later calls for the same package return the cached
/// path. Safe to call from many threads and processes at once.
pub fn build_guest(package: &str) -> Result<PathBuf, BuildError> {
    let mut paths = build_guests(&[package])?;
    paths
        .pop()
        .ok_or_else(|| BuildError::InvalidPackage(package.to_owned()))
}

/// Builds several guests with one cargo invocation (faster than one [`build_guest`] each when
/// none is built yet) and returns their paths in the same order.
pub fn build_guests(packages: &[&str]) -> Result<Vec<PathBuf>, BuildError> {
    for p in packages {
        if !valid_package_name(p) {
            return Err(BuildError::InvalidPackage((*p).to_owned()));
        }
    }
    // The process-wide cache; held during the build so that threads asking for the same
    // package wait for the one build instead of starting their own.
    let mut built = cache();
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !built.contains_key(*p))
        .collect();
    if !missing.is_empty() {
        let target_dir = guest_target_dir();
        fs::create_dir_all(&target_dir).map_err(|source| BuildError::Io {
            what: "cannot create the guest target directory",
            path: target_dir.clone(),
            source,
        })?;
        let lock_path = target_dir.join(".vigilo-build.lock");
        let lock = File::create(&lock_path).map_err(|source| BuildError::Io {
            what: "cannot open the guest build lock",
            path: lock_path.clone(),
            source,
        })?;
        // Released when `lock` is dropped (closed) at the end of this block.
        lock.lock().map_err(|source| BuildError::Io {
            what: "cannot lock the guest build lock",
            path: lock_path.clone(),
            source,
        })?;
        ensure_target()?;
        run_cargo(&missing, &target_dir)?;
        for p in missing {
            let path = guest_path(p);
            if !path.is_file() {
                return Err(BuildError::ArtifactMissing {
                    package: p.to_owned(),
                    path,
                });
            }
            built.insert(p.to_owned(), path);
        }
        drop(lock);
    }
    Ok(packages
        .iter()
        .filter_map(|p| built.get(*p).cloned())
        .collect())
}

fn cache() -> MutexGuard<'static, HashMap<String, PathBuf>> {
    static CACHE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // A panic while holding the lock leaves the map consistent (it is only inserted into after
    // a successful build), so a poisoned lock is still usable.
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn valid_package_name(p: &str) -> bool {
    !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Adds the guest target through rustup if `rustup target list --installed` lacks it. Without
/// rustup (a distribution toolchain) nothing is checked and cargo reports a missing target.
fn ensure_target() -> Result<(), BuildError> {
    let mut list = Command::new("rustup");
    list.args(["target", "list", "--installed"])
        .current_dir(repo_root());
    let Ok(out) = list.output() else {
        return Ok(());
    };
    if !out.status.success() {
        return Ok(());
    }
    let installed = String::from_utf8_lossy(&out.stdout);
    if installed.lines().any(|l| l.trim() == GUEST_TARGET) {
        return Ok(());
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", GUEST_TARGET])
        .current_dir(repo_root());
    let out = run(&mut add, "rustup")?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BuildError::TargetMissing {
            status: out.status.to_string(),
            stderr_tail: tail(&out.stderr),
        })
    }
}

/// `cargo build --release --target wasm32-wasip2`, with the variables of an enclosing build that
/// would compile a guest for the wrong target or with host-only flags removed (see
/// `SCRUBBED_ENV`). Add the manifest, packages and working directory to it.
pub fn guest_cargo() -> Command {
    let mut cmd = clean_cargo();
    cmd.args(["build", "--release", "--target", GUEST_TARGET]);
    cmd
}

/// `cargo`, without the variables of an enclosing build (see `SCRUBBED_ENV`): for running a
/// plugin crate's own `cargo test` on the machine's target.
pub fn clean_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn run_cargo(packages: &[&str], target_dir: &Path) -> Result<(), BuildError> {
    let mut cmd = guest_cargo();
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.arg("--manifest-path")
        .arg(guests_manifest())
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(repo_root());
    for p in packages {
        cmd.args(["-p", p]);
    }
    let out = run(&mut cmd, &program)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BuildError::BuildFailed {
            packages: packages.join(", "),
            status: out.status.to_string(),
            stderr_tail: tail(&out.stderr),
        })
    }
}

fn run(cmd: &mut Command, program: &str) -> Result<Output, BuildError> {
    cmd.output().map_err(|source| BuildError::ToolMissing {
        program: program.to_owned(),
        source,
    })
}

/// The last [`STDERR_TAIL`] bytes of `bytes`, cut at a line start when one is near.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.len() <= STDERR_TAIL {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(nl) if nl < 200 => format!("…\n{}", &cut[nl + 1..]),
        _ => format!("…{cut}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_package_name() {
        let p = guest_path("vigilo-test-healthy");
        assert!(p.ends_with("wasm-guests/wasm32-wasip2/release/vigilo_test_healthy.wasm"));
        assert!(guests_manifest().ends_with("plugins/guests/Cargo.toml"));
    }

    #[test]
    fn bad_names_are_refused_before_cargo_runs() {
        assert!(matches!(
            build_guest("../etc"),
            Err(BuildError::InvalidPackage(_))
        ));
        assert!(matches!(
            build_guest(""),
            Err(BuildError::InvalidPackage(_))
        ));
    }

    #[test]
    fn tails_keep_the_end() {
        let long = "x\n".repeat(5000);
        let t = tail(long.as_bytes());
        assert!(t.len() <= STDERR_TAIL + 8);
        assert!(t.starts_with('…'));
        assert_eq!(tail(b"short\n"), "short");
    }

    #[test]
    fn an_unknown_package_fails_with_cargo_s_message() {
        let err = build_guest("vigilo-no-such-guest-package").unwrap_err();
        match err {
            BuildError::BuildFailed { stderr_tail, .. } => {
                assert!(
                    stderr_tail.contains("vigilo-no-such-guest-package"),
                    "{stderr_tail}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
}
