//! The host's in-memory cache of compiled components, by content digest.
//!
//! A second plugin from the same file, or a reload of a file that did not change, reuses the
//! compiled component instead of compiling it again (seconds for a large component). The cache
//! holds at most [`CAPACITY`] digests and forgets the least recently used one beyond that, so a
//! service that reloads a changing plugin for months does not keep every version it ever saw.
//! A component still in use by a loaded plugin stays alive through that plugin's own reference.

use std::collections::HashMap;

/// How many distinct components the cache keeps.
pub(crate) const CAPACITY: usize = 32;

/// Compiled components (or anything cheap to clone) by sha256 digest, least recently used
/// forgotten first.
pub(crate) struct Compiled<C> {
    entries: HashMap<String, (C, u64)>,
    /// Bumped by every hit and insert: an entry's stamp says when it was last used.
    clock: u64,
    compilations: u64,
}

impl<C: Clone> Compiled<C> {
    pub(crate) fn new() -> Self {
        Compiled {
            entries: HashMap::new(),
            clock: 0,
            compilations: 0,
        }
    }

    /// The component compiled from the bytes with this digest, if the cache still has it.
    pub(crate) fn get(&mut self, digest: &str) -> Option<C> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(digest).map(|(c, used)| {
            *used = now;
            c.clone()
        })
    }

    /// Records a component just compiled, forgetting the least recently used one if full.
    pub(crate) fn insert(&mut self, digest: String, component: C) {
        self.clock += 1;
        self.compilations += 1;
        if !self.entries.contains_key(&digest) && self.entries.len() >= CAPACITY {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(d, _)| d.clone());
            if let Some(d) = oldest {
                self.entries.remove(&d);
            }
        }
        self.entries.insert(digest, (component, self.clock));
    }

    /// How many components were compiled (or read from the on-disk cache) since the host
    /// started; loads served from this cache do not count.
    pub(crate) fn compilations(&self) -> u64 {
        self.compilations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_returns_the_component_and_does_not_count_as_a_compilation() {
        let mut c = Compiled::new();
        assert_eq!(c.get("a"), None);
        c.insert("a".to_owned(), 1);
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.compilations(), 1);
    }

    #[test]
    fn beyond_capacity_the_least_recently_used_digest_is_forgotten() {
        let mut c = Compiled::new();
        for i in 0..CAPACITY {
            c.insert(format!("d{i}"), i);
        }
        // d0 is used again, so d1 is now the least recently used.
        assert_eq!(c.get("d0"), Some(0));
        c.insert("new".to_owned(), 99);
        assert_eq!(c.entries.len(), CAPACITY);
        assert_eq!(c.get("d1"), None);
        assert_eq!(c.get("d0"), Some(0));
        assert_eq!(c.get("new"), Some(99));
        assert_eq!(c.compilations(), CAPACITY as u64 + 1);
    }
}
