//! The on-disk cache of compiled components (`[plugins] cache_dir`): only what this host
//! compiled itself is ever run from it.
//!
//! A cached artifact is native code that wasmtime maps and runs without any check of its own
//! (`Component::deserialize` is `unsafe` for that reason). So this cache, not wasmtime's,
//! keeps them, and an artifact is used only if it provably came from this host's compilation of
//! the exact component bytes with the exact engine configuration:
//!
//! - **The key.** A 256-bit key is generated (from the system's CSPRNG) the first time a host
//!   uses the directory and kept in `<cache_dir>/.vigilo-cache-key`, owner-only (0600) and
//!   owned by this user; a key file anyone else could read or write is refused, as ssh refuses
//!   such a private key.
//! - **An entry** is one file per (engine configuration, component): its name is the SHA-256 of
//!   the engine's compatibility hash and the component's SHA-256, and it holds an
//!   HMAC-SHA256 tag, then the engine's and the component's digests, then the artifact. The tag
//!   covers the digests and the artifact, so an entry is bound to the component it was compiled
//!   from and to the engine settings it was compiled with.
//! - **Before deserialising**, the tag is checked (in constant time) and the digests compared
//!   with the component being loaded and this engine's. A tampered artifact (its machine code
//!   overwritten), one swapped between two components, one of another engine configuration, a
//!   truncated or foreign file: all fail that check, are **never deserialised**, and the
//!   component is compiled again and its entry replaced, with a warning in the log and a count
//!   in [`CacheStats::rejected`] (see `PluginHost::cache_stats`).
//! - **The directory** must be owned by this user and writable by no one else, and every
//!   directory above it owned by this user or root and writable by no one else (or sticky, as
//!   `/tmp` is): otherwise the host refuses to start, naming the directory, as ssh does for
//!   its keys. It is created (0700) if missing.
//!
//! A sha256 pin (`PluginSettings::sha256`) therefore covers what runs: the pin checks the
//! component's bytes, and the only artifact that can run for them is the one compiled from
//! those bytes.

use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::PluginHostError;
use crate::state::LOG_TARGET;

/// The key file's name inside the cache directory.
const KEY_FILE: &str = ".vigilo-cache-key";
/// Bytes of the key.
const KEY_LEN: usize = 32;
/// What the tag covers before the digests: the entry format.
const FORMAT: &[u8] = b"vigilo-cache-v1";
/// The largest entry read (a component's artifact is a few MiB).
const MAX_ENTRY: u64 = 1 << 30;
/// Tag, engine digest, component digest.
const HEADER: usize = 32 + 32 + 32;

/// What the compilation cache did since the host started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Components loaded from a verified entry of `cache_dir`.
    pub hits: u64,
    /// Components compiled because `cache_dir` had no entry for them (or no `cache_dir`).
    pub misses: u64,
    /// Entries refused (tampered, swapped, of another engine configuration, truncated,
    /// unreadable): never run, the component compiled again and the entry replaced.
    pub rejected: u64,
}

/// The on-disk cache of one host.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: hmac::Key,
    /// SHA-256 of the engine's compatibility hash (its settings and wasmtime's version).
    engine: [u8; 32],
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
}

/// Compiles or loads components, through the disk cache when there is one.
pub(crate) struct Compiler {
    disk: Option<DiskCache>,
    /// Compilations without a cache directory.
    misses: AtomicU64,
}

impl Compiler {
    /// A compiler for `engine`, caching in `dir` if given (checked and prepared here).
    pub(crate) fn new(engine: &Engine, dir: Option<&Path>) -> Result<Compiler, PluginHostError> {
        let disk = dir.map(|d| DiskCache::open(d, engine)).transpose()?;
        Ok(Compiler {
            disk,
            misses: AtomicU64::new(0),
        })
    }

    /// The component for `bytes` (whose SHA-256 is `digest`, hex): from a verified cache
    /// entry, else compiled (and cached).
    pub(crate) fn component(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        match &self.disk {
            Some(disk) => disk.component(engine, digest, bytes),
            None => {
                // Relaxed: a statistic.
                self.misses.fetch_add(1, Ordering::Relaxed);
                Component::from_binary(engine, bytes)
            }
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> CacheStats {
        // Relaxed: statistics, each read on its own.
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match &self.disk {
            Some(d) => CacheStats {
                hits: load(&d.hits),
                misses: load(&d.misses),
                rejected: load(&d.rejected),
            },
            None => CacheStats {
                misses: load(&self.misses),
                ..CacheStats::default()
            },
        }
    }
}

impl DiskCache {
    fn open(dir: &Path, engine: &Engine) -> Result<DiskCache, PluginHostError> {
        let fail = |message: String| PluginHostError::Cache {
            path: dir.to_path_buf(),
            message,
        };
        if !dir.is_absolute() {
            return Err(fail("must be an absolute path".into()));
        }
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| fail(format!("cannot create it: {e}")))?;
        }
        check_dir(dir).map_err(fail)?;
        let key = read_or_create_key(dir).map_err(fail)?;
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            engine: hasher.0.finalize().into(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    fn component(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        let component: [u8; 32] = Sha256::digest(bytes).into();
        let mut name = Sha256::new();
        name.update(self.engine);
        name.update(component);
        let path = self.dir.join(format!("{}.cwasm", hex(&name.finalize())));
        match self.verified(&path, &component) {
            Ok(Some(artifact)) => {
                // SAFETY: `artifact` is exactly what `Component::serialize` produced in a host
                // holding this directory's key, for these component bytes and an engine of
                // this configuration: the HMAC-SHA256 tag over it, its engine digest and its
                // component digest was checked just now (in constant time) against the key,
                // and the digests against `component` and `self.engine`. A file anyone
                // without the key wrote or changed fails that check and never gets here.
                let loaded = unsafe { Component::deserialize(engine, artifact.as_slice()) };
                match loaded {
                    Ok(c) => {
                        // Relaxed: a statistic.
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(c);
                    }
                    Err(e) => self.reject(&path, digest, &format!("wasmtime refused it: {e:#}")),
                }
            }
            Ok(None) => {
                // Relaxed: a statistic.
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => self.reject(&path, digest, &why),
        }
        let c = Component::from_binary(engine, bytes)?;
        match c.serialize() {
            Ok(artifact) => self.store(&path, &component, &artifact),
            Err(e) => {
                log::warn!(target: LOG_TARGET, "compilation cache: cannot serialise component {digest}: {e:#}")
            }
        }
        Ok(c)
    }

    fn reject(&self, path: &Path, digest: &str, why: &str) {
        // Relaxed: a statistic.
        self.rejected.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            target: LOG_TARGET,
            "compilation cache: entry {} for component {digest} refused ({why}); it was not run, \
             the component is compiled again and the entry replaced",
            path.display()
        );
    }

    /// The artifact of the entry at `path` if it is there and verifies; `None` if there is none.
    fn verified(&self, path: &Path, component: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let mut data = Vec::new();
        File::open(path)
            .and_then(|f| f.take(MAX_ENTRY).read_to_end(&mut data))
            .map_err(|e| format!("cannot read it: {e}"))?;
        if data.len() <= HEADER {
            return Err(format!("{} bytes: too short", data.len()));
        }
        let (tag, covered) = data.split_at(32);
        hmac::verify(&self.key, &with_format(covered), tag).map_err(|_| {
            "its tag does not verify: not written by this host, or changed".to_owned()
        })?;
        let (engine, rest) = covered.split_at(32);
        let (comp, _) = rest.split_at(32);
        if engine != self.engine {
            return Err("compiled with another engine configuration".into());
        }
        if comp != component {
            return Err("compiled from another component".into());
        }
        Ok(Some(data.split_off(HEADER)))
    }

    /// Writes the entry for `component` atomically (a new file renamed over the old one).
    fn store(&self, path: &Path, component: &[u8; 32], artifact: &[u8]) {
        let mut covered = Vec::with_capacity(64 + artifact.len());
        covered.extend_from_slice(&self.engine);
        covered.extend_from_slice(component);
        covered.extend_from_slice(artifact);
        let tag = hmac::sign(&self.key, &with_format(&covered));
        let tmp = temp_name(path);
        let written =
            write_private(&tmp, &[tag.as_ref(), &covered]).and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            log::warn!(target: LOG_TARGET, "compilation cache: cannot write {}: {e}", path.display());
        }
    }
}

/// What the tag covers: the format, then `covered` (engine digest, component digest, artifact).
fn with_format(covered: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(FORMAT.len() + covered.len());
    m.extend_from_slice(FORMAT);
    m.extend_from_slice(covered);
    m
}

/// Creates `path` (which must not exist) readable by its owner only, with `parts` in it, synced.
fn write_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    for part in parts {
        f.write_all(part)?;
    }
    f.sync_all()
}

fn temp_name(path: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    // Relaxed: only uniqueness matters.
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    PathBuf::from(name)
}

/// Checks that nobody but this user (and root) can change `dir` or what is in it: the
/// directory is ours and writable by us only; each directory above it is ours or root's and
/// writable by no one else, unless sticky (where nobody can rename what is not theirs).
fn check_dir(dir: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let meta = fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("is not a directory".into());
    }
    if meta.uid() != me {
        return Err(format!(
            "is owned by uid {}, not by this process's user (uid {me}): another user could \
             put native code in it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "is writable by other users (mode {:o}): anyone who can write it could put native \
             code in it; make it `chmod 700`",
            meta.mode() & 0o7777
        ));
    }
    for parent in dir.ancestors().skip(1) {
        let m =
            fs::metadata(parent).map_err(|e| format!("cannot read {}: {e}", parent.display()))?;
        let sticky = m.mode() & 0o1000 != 0;
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "sits in {}, owned by uid {}: that user could replace the cache directory",
                parent.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 && !sticky {
            return Err(format!(
                "sits in {}, writable by other users (mode {:o}): they could replace the \
                 cache directory",
                parent.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// The key in `dir`, created (owner-only) if there is none; refused if others can read or
/// write it. A key file of the wrong length (damaged) is replaced by a new key, with a
/// warning: every entry then fails to verify and is compiled again.
fn read_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], String> {
    let path = dir.join(KEY_FILE);
    if fs::symlink_metadata(&path).is_err() {
        create_key(&path, false)?;
    }
    if let Some(key) = read_key(&path)? {
        return Ok(key);
    }
    log::warn!(
        target: LOG_TARGET,
        "compilation cache: key {} is damaged (not {KEY_LEN} bytes); a new key replaces it, and \
         every entry will be compiled again",
        path.display()
    );
    create_key(&path, true)?;
    read_key(&path)?.ok_or_else(|| format!("key {}: cannot be replaced", path.display()))
}

/// The key at `path` if it is private to this user; `None` if it is not `KEY_LEN` bytes long.
fn read_key(path: &Path) -> Result<Option<[u8; KEY_LEN]>, String> {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("key {}: {e}", path.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "key file {} must be a regular file owned by this user (uid {me}) and readable by \
             it only (0600); it is uid {} mode {:o}",
            path.display(),
            meta.uid(),
            meta.permissions().mode() & 0o7777
        ));
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    File::open(path)
        .and_then(|f| f.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("key {}: {e}", path.display()))?;
    Ok(<[u8; KEY_LEN]>::try_from(bytes.as_slice()).ok())
}

/// Writes a new random key to `path` (0600), in a file of its own first. Then it is linked into
/// place, which keeps a key another host wrote meanwhile, or, with `replace`, renamed over the
/// damaged one.
fn create_key(path: &Path, replace: bool) -> Result<(), String> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "cannot draw a random key".to_owned())?;
    let tmp = temp_name(path);
    let placed = write_private(&tmp, &[&key]).and_then(|()| {
        if replace {
            fs::rename(&tmp, path)
        } else {
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            }
        }
    });
    let _ = fs::remove_file(&tmp);
    placed.map_err(|e| format!("cannot create the key {}: {e}", path.display()))
}

/// A [`Hasher`] feeding SHA-256, to digest the engine's compatibility hash.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_can_write_is_refused_and_a_private_one_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        fs::DirBuilder::new().mode(0o700).create(&cache).unwrap();
        assert_eq!(check_dir(&cache), Ok(()));
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&cache).unwrap_err();
        assert!(e.contains("writable by other users (mode 777)"), "{e}");
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&cache).unwrap_err();
        assert!(
            e.contains("sits in") && e.contains("writable by other users"),
            "{e}"
        );
    }

    #[test]
    fn the_key_is_created_owner_only_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = read_or_create_key(dir.path()).unwrap();
        assert_eq!(
            read_or_create_key(dir.path()).unwrap(),
            key,
            "the same key again"
        );
        let path = dir.path().join(KEY_FILE);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A damaged key is replaced (entries then fail to verify and are compiled again).
        fs::write(&path, b"short").unwrap();
        let fresh = read_or_create_key(dir.path()).unwrap();
        assert_ne!(fresh, key);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_or_create_key(dir.path()).unwrap_err();
        assert!(e.contains("(0600)") && e.contains("mode 644"), "{e}");
    }
}
