//! A per-thread cache for the registry's by-name functions (`Registry::add_counter`,
//! `set_gauge`, `record_histogram`, `counter`, `gauge`, `histogram`).
//!
//! Each thread remembers the last few names and label lists it recorded by, exactly as given
//! (the labels in the caller's order), with the series they reached, the registry and the
//! registry generation. A call that passes one of them again compares its strings with the
//! remembered copy (word-sized compares, no hashing, no decoding of the series' label text),
//! reads the generation (one atomic load) and uses the series: no epoch guard of the lock-free
//! set, no hash of the name and the six strings of three labels. Anything else is looked up
//! in the set as before and remembered, replacing the oldest entry (two allocations: the
//! copy of the strings and where each ends).
//!
//! The generation moves whenever a series is created or removed anywhere in the registry, so
//! a removed series is never reached from the cache: the first call after a change looks the
//! series up again, into the same entry. A program that keeps creating series pays the lookup
//! on those calls, as it did without the cache. An entry keeps its series' memory alive until
//! it is replaced or the thread ends (at most [`ENTRIES`] series per thread), even after the
//! series was removed.

use std::cell::RefCell;

use super::any_series::AnySeries;

/// How many name and label lists one thread remembers.
pub(crate) const ENTRIES: usize = 8;

struct Entry {
    registry: u64,
    generation: u64,
    /// The name, then each label's name and value, one after the other in `text`; part `i`
    /// ends `ends[i]` bytes from the start.
    text: Box<[u8]>,
    ends: Box<[u32]>,
    series: AnySeries,
}

impl Entry {
    /// True if this entry was made for `name{labels}` (in this order) of `registry`.
    #[inline]
    fn holds(&self, registry: u64, name: &str, labels: &[(&str, &str)]) -> bool {
        if self.registry != registry || self.ends.len() != 1 + 2 * labels.len() {
            return false;
        }
        let mut start = 0;
        let mut ends = self.ends.iter();
        let mut next = |part: &str| {
            let Some(&end) = ends.next() else {
                return false;
            };
            let end = end as usize;
            let same = self
                .text
                .get(start..end)
                .is_some_and(|stored| same_bytes(stored, part.as_bytes()));
            start = end;
            same
        };
        next(name) && labels.iter().all(|(k, v)| next(k) && next(v))
    }
}

struct Cache {
    list: Vec<Entry>,
    /// The next entry to replace once the list is full.
    next: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            list: Vec::new(),
            next: 0,
        })
    };
}

/// Applies `f` to the series remembered for `name{labels}` of registry `registry` at
/// `generation`; `None` (and `f` not called) if there is none, or while the thread's cache is
/// torn down or already in use further up this thread's stack.
#[inline]
pub(crate) fn with_cached<R>(
    registry: u64,
    generation: u64,
    name: &str,
    labels: &[(&str, &str)],
    f: impl FnOnce(&AnySeries) -> R,
) -> Option<R> {
    let mut f = Some(f);
    CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let entry = cache
                .list
                .iter()
                .find(|e| e.generation == generation && e.holds(registry, name, labels))?;
            f.take().map(|f| f(&entry.series))
        })
        .ok()
        .flatten()
}

/// Remembers that `name{labels}` of `registry` reached `series` at `generation`: in the entry
/// made for the same strings if there is one, else in a new one (replacing the oldest).
pub(crate) fn remember(
    registry: u64,
    generation: u64,
    name: &str,
    labels: &[(&str, &str)],
    series: &AnySeries,
) {
    // Nothing to do while the thread's cache is torn down or in use further up the stack.
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return;
        };
        if let Some(e) = cache
            .list
            .iter_mut()
            .find(|e| e.holds(registry, name, labels))
        {
            e.generation = generation;
            e.series = series.clone();
            return;
        }
        let mut text = Vec::with_capacity(
            name.len() + labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
        );
        let mut ends = Vec::with_capacity(1 + 2 * labels.len());
        for part in std::iter::once(name).chain(labels.iter().flat_map(|&(k, v)| [k, v])) {
            text.extend_from_slice(part.as_bytes());
            // Names and labels are far below 4 GiB; longer ones are simply not remembered.
            let Ok(end) = u32::try_from(text.len()) else {
                return;
            };
            ends.push(end);
        }
        let entry = Entry {
            registry,
            generation,
            text: text.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
            series: series.clone(),
        };
        if cache.list.len() < ENTRIES {
            cache.list.push(entry);
        } else {
            let i = cache.next % ENTRIES;
            cache.next = i + 1;
            if let Some(slot) = cache.list.get_mut(i) {
                *slot = entry;
            }
        }
    });
}

/// Byte equality for the short strings names and labels are: up to 16 bytes compared as two
/// overlapping words from each end (no call to `memcmp`, no loop), longer ones by `memcmp`.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Each `get` below is in bounds for the `n` of its branch; a failed one reads as unequal.
    let word8 = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let word4 = |s: &[u8], at: usize| {
        s.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    match n {
        0 => true,
        1..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::metrics::{MetricError, MetricKind, Value};
    use crate::{Registry, RegistryConfig};

    fn counter_value(r: &Registry, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let wanted = crate::Labels::from_pairs(labels);
        r.snapshot()
            .series
            .into_iter()
            .find(|s| &*s.name == name && s.labels == wanted)
            .map(|s| match s.value {
                Value::Counter(n) => n,
                other => panic!("not a counter: {other:?}"),
            })
    }

    #[test]
    fn short_and_long_strings_compare_as_bytes() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(super::same_bytes(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!super::same_bytes(&a, &b), "{n} bytes, differing at {at}");
            }
            assert!(!super::same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn a_removed_series_is_never_recorded_into_from_the_cache() {
        let r = Registry::new();
        let labels = [("route", "/api"), ("status", "200")];
        r.add_counter("req_total", &labels, 1).unwrap();
        r.add_counter("req_total", &labels, 1).unwrap(); // from the cache
        assert_eq!(counter_value(&r, "req_total", &labels), Some(2));
        assert!(r.remove("req_total", &labels));
        r.add_counter("req_total", &labels, 5).unwrap();
        assert_eq!(counter_value(&r, "req_total", &labels), Some(5));
    }

    #[test]
    fn two_registries_on_one_thread_keep_their_own_series() {
        let (a, b) = (Registry::new(), Registry::new());
        for _ in 0..3 {
            a.add_counter("x_total", &[("k", "v")], 1).unwrap();
        }
        b.add_counter("x_total", &[("k", "v")], 10).unwrap();
        assert_eq!(counter_value(&a, "x_total", &[("k", "v")]), Some(3));
        assert_eq!(counter_value(&b, "x_total", &[("k", "v")]), Some(10));
    }

    #[test]
    fn labels_in_another_order_reach_the_same_series_and_others_do_not() {
        let r = Registry::new();
        r.add_counter("y_total", &[("a", "1"), ("b", "2")], 1)
            .unwrap();
        r.add_counter("y_total", &[("b", "2"), ("a", "1")], 1)
            .unwrap();
        r.add_counter("y_total", &[("a", "1"), ("b", "3")], 1)
            .unwrap();
        r.add_counter("y_total", &[("a", "1")], 1).unwrap();
        assert_eq!(
            counter_value(&r, "y_total", &[("a", "1"), ("b", "2")]),
            Some(2)
        );
        assert_eq!(
            counter_value(&r, "y_total", &[("b", "3"), ("a", "1")]),
            Some(1)
        );
        assert_eq!(counter_value(&r, "y_total", &[("a", "1")]), Some(1));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_cached_series_of_another_kind_is_still_refused() {
        let r = Registry::new();
        r.add_counter("z", &[], 1).unwrap();
        r.add_counter("z", &[], 1).unwrap();
        let err = r.set_gauge("z", &[], 1.0).unwrap_err();
        assert!(matches!(
            err,
            MetricError::KindMismatch {
                existing: MetricKind::Counter,
                requested: MetricKind::Gauge,
                ..
            }
        ));
        assert!(r.record_histogram("z", &[], 1.0).is_err());
        assert_eq!(counter_value(&r, "z", &[]), Some(2));
    }

    #[test]
    fn more_series_than_the_cache_holds_keep_exact_counts() {
        let r = Registry::with_config(RegistryConfig { max_series: 1000 });
        let names: Vec<String> = (0..3 * super::ENTRIES)
            .map(|i| format!("s{i}_total"))
            .collect();
        for round in 0..5u64 {
            for (i, n) in names.iter().enumerate() {
                r.add_counter(n, &[("i", &i.to_string())], round + 1)
                    .unwrap();
            }
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(counter_value(&r, n, &[("i", &i.to_string())]), Some(15));
        }
    }

    #[test]
    fn threads_record_through_their_own_caches_exactly() {
        let r = Registry::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1000u64 {
                        let status = if i % 2 == 0 { "200" } else { "500" };
                        r.add_counter("t_total", &[("status", status)], 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            counter_value(&r, "t_total", &[("status", "200")]),
            Some(2000)
        );
        assert_eq!(
            counter_value(&r, "t_total", &[("status", "500")]),
            Some(2000)
        );
    }
}
