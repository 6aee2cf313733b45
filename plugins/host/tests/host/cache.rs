//! The compilation cache (`[plugins] cache_dir`) against someone who can write to it: a
//! tampered artifact (machine code overwritten), an artifact swapped between two components
//! (one of them pinned), an artifact of another engine configuration, are never executed; the
//! plugin still delivers from a fresh compilation, the entry is replaced, and the refusal is
//! counted. A directory other users can write is refused at start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vigilo_plugin_host::{PluginError, PluginHost, PluginHostConfig, PluginHostError};

use crate::common::{alert, guest, settings};

fn config(dir: &Path) -> PluginHostConfig {
    PluginHostConfig {
        max_instances: 8,
        breaker_threshold: 0,
        cache_dir: Some(dir.to_path_buf()),
        ..PluginHostConfig::default()
    }
}

/// The cache's entries (compiled artifacts), sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    v.sort();
    v
}

/// A private cache directory (0700) in a temporary one.
fn private_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    (tmp, dir)
}

/// Compiles `short` into `dir` with a fresh host and returns the entry it added.
fn compiled_entry(dir: &Path, config: PluginHostConfig, short: &str) -> PathBuf {
    let before = entries(dir);
    let host = PluginHost::new(config).unwrap();
    host.load_channel(settings(short, short)).unwrap();
    let added: Vec<_> = entries(dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    added[0].clone()
}

#[test]
fn an_artifact_whose_machine_code_was_overwritten_is_never_run() {
    let (_tmp, dir) = private_dir();
    let entry = compiled_entry(&dir, config(&dir), "healthy");
    // Overwrite the middle of the artifact (its code) with `int3` instructions.
    let mut bytes = std::fs::read(&entry).unwrap();
    let (from, to) = (bytes.len() / 4, bytes.len() * 3 / 4);
    bytes[from..to].fill(0xcc);
    std::fs::write(&entry, &bytes).unwrap();

    let host = PluginHost::new(config(&dir)).unwrap();
    let healthy = host.load_channel(settings("healthy", "healthy")).unwrap();
    // Had the artifact run, this process would have died of SIGTRAP here.
    assert_eq!(healthy.try_deliver(&alert()), Ok(Ok(())));
    let stats = host.cache_stats();
    assert_eq!((stats.hits, stats.rejected), (0, 1), "{stats:?}");
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        bytes,
        "the entry was replaced"
    );

    // The replaced entry is used by the next host, unchanged.
    let next = PluginHost::new(config(&dir)).unwrap();
    let again = next.load_channel(settings("healthy", "healthy")).unwrap();
    assert_eq!(again.try_deliver(&alert()), Ok(Ok(())));
    let stats = next.cache_stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.rejected),
        (1, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn an_artifact_swapped_between_two_components_is_never_run_and_the_pin_holds() {
    let (_tmp, dir) = private_dir();
    let healthy_entry = compiled_entry(&dir, config(&dir), "healthy");
    let trap_entry = compiled_entry(&dir, config(&dir), "trap");
    // The trapping component's code under the healthy one's name, and the other way round.
    let (h, t) = (
        std::fs::read(&healthy_entry).unwrap(),
        std::fs::read(&trap_entry).unwrap(),
    );
    std::fs::write(&healthy_entry, &t).unwrap();
    std::fs::write(&trap_entry, &h).unwrap();

    let host = PluginHost::new(config(&dir)).unwrap();
    let mut pinned = settings("pinned", "healthy");
    let digest = sha256_hex(&std::fs::read(guest("healthy")).unwrap());
    pinned.sha256 = Some(digest);
    let pinned = host.load_channel(pinned).unwrap();
    assert_eq!(
        pinned.try_deliver(&alert()),
        Ok(Ok(())),
        "the pinned plugin runs its own code"
    );
    let trap = host.load_channel(settings("trap", "trap")).unwrap();
    assert!(
        matches!(trap.try_deliver(&alert()), Err(PluginError::Trap { .. })),
        "and the other component its own"
    );
    assert_eq!(host.cache_stats().rejected, 2, "{:?}", host.cache_stats());
}

#[test]
fn an_artifact_of_another_engine_configuration_is_never_run() {
    let (_tmp, dir) = private_dir();
    let ours = compiled_entry(&dir, config(&dir), "healthy");
    let component = std::fs::read(guest("healthy")).unwrap();
    // Another engine configuration (wasmtime's defaults: no epoch interruption, no pooling)
    // compiles the same component.
    let other = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let artifact = other.precompile_component(&component).unwrap();

    // Its bare artifact under our entry's name.
    std::fs::write(&ours, &artifact).unwrap();
    let host = PluginHost::new(config(&dir)).unwrap();
    let healthy = host.load_channel(settings("healthy", "healthy")).unwrap();
    assert_eq!(healthy.try_deliver(&alert()), Ok(Ok(())));
    assert_eq!(host.cache_stats().rejected, 1, "{:?}", host.cache_stats());

    // The same, as a host holding this directory's key but configured otherwise would have
    // written it (a correct tag over the other engine's digest).
    let key = std::fs::read(dir.join(".vigilo-cache-key")).unwrap();
    let mut covered = engine_digest(&other).to_vec();
    covered.extend_from_slice(&sha256(&component));
    covered.extend_from_slice(&artifact);
    let mut signed = b"vigilo-cache-v1".to_vec();
    signed.extend_from_slice(&covered);
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &signed,
    );
    let mut entry = tag.as_ref().to_vec();
    entry.extend_from_slice(&covered);
    std::fs::write(&ours, &entry).unwrap();
    let host = PluginHost::new(config(&dir)).unwrap();
    let healthy = host.load_channel(settings("healthy", "healthy")).unwrap();
    assert_eq!(healthy.try_deliver(&alert()), Ok(Ok(())));
    assert_eq!(host.cache_stats().rejected, 1, "{:?}", host.cache_stats());
}

/// SHA-256 of an engine's compatibility hash, as the cache computes it.
fn engine_digest(engine: &wasmtime::Engine) -> [u8; 32] {
    use sha2::Digest;
    use std::hash::{Hash, Hasher};
    struct Feed(sha2::Sha256);
    impl Hasher for Feed {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut feed = Feed(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut feed);
    feed.0.finalize().into()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[test]
fn a_cache_dir_other_users_can_write_is_refused_at_start() {
    let (_tmp, dir) = private_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    match PluginHost::new(config(&dir)) {
        Err(e @ PluginHostError::Cache { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&dir.display().to_string()), "{text}");
            assert!(text.contains("writable by other users"), "{text}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a world-writable cache_dir was accepted"),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
