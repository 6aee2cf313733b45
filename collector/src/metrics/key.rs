//! Series identity: a metric name and a set of labels, hashed independently of label order so a
//! lookup with borrowed, unsorted labels finds the series without allocating.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

#[cfg(feature = "serde")]
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The labels of a series: name/value pairs, sorted by name, cheap to clone.
///
/// Stored as one shared string (each name and value prefixed by its length), so a label set is a
/// single small allocation however many pairs it has, and none when it is empty.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Option<Arc<str>>);

impl Labels {
    /// Builds a label set from pairs, sorted by name. Names are not validated here: the registry
    /// validates what it stores; this is for matching and display.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        if pairs.is_empty() {
            return Labels(None);
        }
        let mut sorted: Vec<(&str, &str)> = pairs.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut text =
            String::with_capacity(sorted.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
        for (k, v) in sorted {
            for part in [k, v] {
                text.push_str(&part.len().to_string());
                text.push(':');
                text.push_str(part);
            }
        }
        Labels(Some(Arc::from(text)))
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The pairs, sorted by label name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut rest = self.0.as_deref().unwrap_or("");
        std::iter::from_fn(move || {
            let k = take_part(&mut rest)?;
            let v = take_part(&mut rest)?;
            Some((k, v))
        })
    }

    /// The encoded form: equal label sets have equal encodings, and comparing two is one
    /// `memcmp` (the order is not the pairs' lexicographic order).
    pub(crate) fn encoded(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True if there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// True if these labels are exactly `pairs` (in any order, no duplicates in `pairs`).
    pub fn matches_exactly(&self, pairs: &[(&str, &str)]) -> bool {
        // The by-name record path compares a label set at every lookup. Callers usually pass
        // the pairs sorted by name, as they are stored: one pass in step settles it.
        let mut in_step = true;
        let mut ours = 0;
        let mut it = self.iter();
        // `pairs` first: when it runs out, none of ours is taken (and lost) by the zip.
        for ((pk, pv), (k, v)) in pairs.iter().zip(it.by_ref()) {
            ours += 1;
            if !(same(k, pk) && same(v, pv)) {
                in_step = false;
                break;
            }
        }
        if in_step {
            return ours == pairs.len() && it.next().is_none();
        }
        // Otherwise, any order: our names are distinct, so equal length plus every one of ours
        // found in `pairs` means the two sets are equal even if `pairs` repeats a name.
        let mut ours = 0;
        for (k, v) in self.iter() {
            if !pairs.iter().any(|(pk, pv)| same(k, pk) && same(v, pv)) {
                return false;
            }
            ours += 1;
        }
        ours == pairs.len()
    }
}

/// String equality without a call to `memcmp` for the short strings label names and values
/// usually are (the call costs more than comparing a dozen bytes).
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Takes one length-prefixed part (`<len>:<text>`) off the front of `rest`.
///
/// On the by-name record path (every lookup compares label sets): the length is read digit by
/// digit rather than through `split_once` and `str::parse`, which cost more than the compare.
#[inline]
fn take_part<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let bytes = rest.as_bytes();
    let mut len = 0usize;
    let mut i = 0;
    loop {
        let b = *bytes.get(i)?;
        i += 1;
        match b {
            b'0'..=b'9' => len = len.checked_mul(10)?.checked_add(usize::from(b - b'0'))?,
            b':' if i > 1 => break,
            _ => return None,
        }
    }
    // `i` is just past the ASCII ':', so it is a char boundary; `get` checks the others.
    let part = rest.get(i..i.checked_add(len)?)?;
    *rest = rest.get(i + len..)?;
    Some(part)
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

#[cfg(feature = "serde")]
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(feature = "serde")]
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

/// The digest of a stored label set, equal to that of the same pairs in any order.
pub(crate) fn label_digest_of(labels: &Labels) -> u64 {
    label_digest(labels.iter())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(h: impl Hash) -> u64 {
        foldhash::fast::FixedState::with_seed(1).hash_one(h)
    }

    #[test]
    fn lookup_hash_ignores_label_order() {
        let stored = Labels::from_pairs(&[("b", "2"), ("a", "1")]);
        let lookup = |pairs: &[(&str, &str)]| {
            hash_of(LookupKey {
                name: "m",
                labels: pairs,
            })
        };
        let mut h = foldhash::fast::FixedState::with_seed(1).build_hasher();
        h.write(b"m");
        h.write_u64(label_digest_of(&stored));
        assert_eq!(h.finish(), lookup(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            lookup(&[("b", "2"), ("a", "1")]),
            lookup(&[("a", "1"), ("b", "2")])
        );
        assert!(!stored.matches_exactly(&[("a", "1"), ("a", "1")]));
    }

    #[test]
    fn a_label_set_matches_only_the_same_pairs_in_any_order() {
        let l = Labels::from_pairs(&[("a", "1"), ("b", "2")]);
        assert!(l.matches_exactly(&[("a", "1"), ("b", "2")]));
        assert!(l.matches_exactly(&[("b", "2"), ("a", "1")]));
        assert!(!l.matches_exactly(&[("a", "1")]), "a prefix in step");
        assert!(!l.matches_exactly(&[("b", "2")]));
        assert!(!l.matches_exactly(&[("a", "1"), ("b", "2"), ("c", "3")]));
        assert!(!l.matches_exactly(&[("a", "1"), ("b", "3")]));
        assert!(!l.matches_exactly(&[("a", "1"), ("c", "2")]));
        assert!(!Labels::from_pairs(&[]).matches_exactly(&[("a", "1")]));
        assert!(Labels::from_pairs(&[]).matches_exactly(&[]));
        let long = "x".repeat(40);
        let l = Labels::from_pairs(&[("path", &long)]);
        assert!(l.matches_exactly(&[("path", &long)]));
        assert!(!l.matches_exactly(&[("path", &"x".repeat(39))]));
    }

    #[test]
    fn labels_round_trip_whatever_they_contain() {
        let odd = [
            ("z", "1:2"),
            ("a", ""),
            ("m", "x=y,\"q\"\n"),
            ("k", "터미널"),
        ];
        let l = Labels::from_pairs(&odd);
        assert_eq!(l.len(), 4);
        let back: Vec<(&str, &str)> = l.iter().collect();
        assert_eq!(
            back,
            [
                ("a", ""),
                ("k", "터미널"),
                ("m", "x=y,\"q\"\n"),
                ("z", "1:2")
            ]
        );
        assert_eq!(l.get("z"), Some("1:2"));
        assert!(l.matches_exactly(&odd));
        assert!(!l.matches_exactly(&odd[..3]));
        assert_eq!(Labels::from_pairs(&[]), Labels::default());
        assert!(Labels::default().is_empty());
    }

    #[test]
    fn display_escapes() {
        let l = Labels::from_pairs(&[("path", "a\"b"), ("code", "200")]);
        assert_eq!(l.to_string(), r#"{code="200",path="a\"b"}"#);
    }
}
