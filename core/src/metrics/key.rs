//! Series identity: a metric name and a set of labels, hashed independently of label order so a
//! lookup with borrowed, unsorted labels finds the series without allocating.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The labels of a series: name/value pairs, sorted by name, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Arc<[(Box<str>, Box<str>)]>);

impl Labels {
    /// Builds a label set from pairs, sorted by name. Names are not validated here: the registry
    /// validates what it stores; this is for matching and display.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let mut owned: Vec<(Box<str>, Box<str>)> = pairs
            .iter()
            .map(|(k, v)| (Box::from(*k), Box::from(*v)))
            .collect();
        owned.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Labels(owned.into())
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
    }

    /// The pairs, sorted by label name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if these labels are exactly `pairs` (in any order, no duplicates in `pairs`).
    pub fn matches_exactly(&self, pairs: &[(&str, &str)]) -> bool {
        // Our names are distinct: equal length plus every one of ours found in `pairs` means the
        // two sets are equal even if `pairs` repeats a name.
        self.0.len() == pairs.len()
            && self
                .0
                .iter()
                .all(|(k, v)| pairs.iter().any(|(pk, pv)| **k == **pk && **v == **pv))
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::fmt::Display for Labels {
    /// `{a="1",b="2"}`, or nothing when there are no labels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"{}\"", v.escape_default())?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let pairs: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Labels::from_pairs(&pairs))
    }
}

/// Order-independent digest of label pairs: the wrapping sum of each pair's own hash.
fn label_digest<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let state = foldhash::fast::FixedState::with_seed(0x5eed_0f1a_be15);
    pairs.fold(0u64, |acc, (k, v)| {
        let mut h = state.build_hasher();
        h.write(k.as_bytes());
        h.write_u8(0xff);
        h.write(v.as_bytes());
        acc.wrapping_add(h.finish())
    })
}

/// The owned key of a series in the registry's map.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SeriesKey {
    pub(crate) name: Arc<str>,
    pub(crate) labels: Labels,
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.name.as_bytes());
        state.write_u64(label_digest(self.labels.iter()));
    }
}

/// A borrowed key: what a caller passes, labels in any order.
pub(crate) struct LookupKey<'a> {
    pub(crate) name: &'a str,
    pub(crate) labels: &'a [(&'a str, &'a str)],
}

impl Hash for LookupKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.name.as_bytes());
        state.write_u64(label_digest(self.labels.iter().copied()));
    }
}

impl papaya::Equivalent<SeriesKey> for LookupKey<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        *key.name == *self.name && key.labels.matches_exactly(self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(h: impl Hash) -> u64 {
        foldhash::fast::FixedState::with_seed(1).hash_one(h)
    }

    #[test]
    fn lookup_hash_ignores_label_order() {
        let owned = SeriesKey {
            name: "m".into(),
            labels: Labels::from_pairs(&[("b", "2"), ("a", "1")]),
        };
        let pairs = [("a", "1"), ("b", "2")];
        let lookup = LookupKey {
            name: "m",
            labels: &pairs,
        };
        assert_eq!(hash_of(&owned), hash_of(&lookup));
        assert!(papaya::Equivalent::equivalent(&lookup, &owned));
        let dup = [("a", "1"), ("a", "1")];
        assert!(!papaya::Equivalent::equivalent(
            &LookupKey {
                name: "m",
                labels: &dup
            },
            &owned
        ));
    }

    #[test]
    fn display_escapes() {
        let l = Labels::from_pairs(&[("path", "a\"b"), ("code", "200")]);
        assert_eq!(l.to_string(), r#"{code="200",path="a\"b"}"#);
    }
}
