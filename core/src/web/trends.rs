//! The recent values of every item, for the board's charts: one fixed ring of [`SLOTS`] values
//! per item, a slot being the evaluator's tick or [`MIN_SLOT`], whichever is longer (an hour at
//! the default 1 s tick), and the item's last [`MARKERS`] severity changes.
//!
//! Each slot keeps the worst value sampled in it (the highest, or the lowest for a `below`
//! rule), so a spike between two samples of a slot still shows. Missing samples (no data, a
//! pause) leave gaps. An item that is no longer on the status board loses its ring; at most
//! [`MAX_ITEMS`] items are charted (the first ones in the status's order, worst first).
//!
//! Memory per item: the ring, `SLOTS` × 4 bytes (`f32`: a chart needs no more precision),
//! plus the markers, the thresholds, the id and the value's text (`Trend::heap_bytes`), and
//! the map's entry: 3,457 bytes with a full ring and every marker, as the test below measures
//! (the rule name and labels are shared with the evaluator's); so at most about 33 MiB at
//! `MAX_ITEMS`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::Severity;
use crate::clock::Timestamp;
use crate::metrics::Labels;
use crate::units::Unit;

/// Values kept per item.
pub(super) const SLOTS: usize = 720;
/// The shortest slot.
pub(super) const MIN_SLOT: Duration = Duration::from_secs(5);
/// Severity changes kept per item.
pub(super) const MARKERS: usize = 16;
/// Items charted at most.
pub(super) const MAX_ITEMS: usize = 10_000;

/// One item as the monitor sees it now.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub(crate) rule: Arc<str>,
    pub(crate) labels: Labels,
    pub(crate) value: Option<f64>,
    pub(crate) severity: Severity,
    pub(crate) since: Timestamp,
    pub(crate) unit: Unit,
    /// The rule fires below its thresholds.
    pub(crate) below: bool,
    /// The rule's levels: severity and threshold, lowest first.
    pub(crate) levels: Vec<(Severity, f64)>,
    /// The value as people read it (or `no data`).
    pub(crate) value_text: String,
}

/// Every item at one moment, in the status's order (worst first).
#[derive(Debug, Clone)]
pub(crate) struct Readings {
    pub(crate) at: Timestamp,
    pub(crate) items: Vec<Reading>,
}

/// A fixed ring of slot values, oldest first; NaN is a gap.
#[derive(Debug)]
pub(super) struct Ring {
    values: Box<[f32]>,
    /// Index of the next write.
    next: usize,
    len: usize,
    /// The slot number (time / slot length) of the newest value.
    newest: i64,
}

impl Ring {
    fn new() -> Self {
        Ring {
            values: vec![f32::NAN; SLOTS].into_boxed_slice(),
            next: 0,
            len: 0,
            newest: 0,
        }
    }

    fn push(&mut self, v: f32) {
        if let Some(cell) = self.values.get_mut(self.next) {
            *cell = v;
        }
        self.next = (self.next + 1) % SLOTS;
        self.len = (self.len + 1).min(SLOTS);
    }

    /// Puts `v` into `slot`, keeping the worse of two values of one slot (`below`: the lower).
    fn put(&mut self, slot: i64, v: f32, below: bool) {
        if self.len == 0 || slot > self.newest {
            let gap = if self.len == 0 {
                0
            } else {
                usize::try_from(slot - self.newest - 1)
                    .unwrap_or(SLOTS)
                    .min(SLOTS)
            };
            for _ in 0..gap {
                self.push(f32::NAN);
            }
            self.push(v);
            self.newest = slot;
        } else if slot == self.newest {
            let last = (self.next + SLOTS - 1) % SLOTS;
            if let Some(cell) = self.values.get_mut(last) {
                *cell = worse(*cell, v, below);
            }
        }
        // An older slot (the clock went back): dropped.
    }

    /// The values, oldest first, and the slot number of the first.
    pub(super) fn values(&self) -> (i64, Vec<f32>) {
        let start = (self.next + SLOTS - self.len) % SLOTS;
        let values = (0..self.len)
            .filter_map(|i| self.values.get((start + i) % SLOTS).copied())
            .collect();
        (self.newest - self.len as i64 + 1, values)
    }
}

/// The worse of two values for an `above` (higher) or `below` (lower) rule; NaN loses.
pub(super) fn worse(a: f32, b: f32, below: bool) -> f32 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else if below {
        a.min(b)
    } else {
        a.max(b)
    }
}

/// A severity change: when, from what (unknown for the first one seen), to what.
#[derive(Debug, Clone, Copy)]
pub(super) struct Marker {
    pub(super) at: Timestamp,
    pub(super) from: Option<Severity>,
    pub(super) to: Severity,
}

/// One item's chart data.
#[derive(Debug)]
pub(super) struct Trend {
    pub(super) id: String,
    pub(super) rule: Arc<str>,
    pub(super) labels: Labels,
    pub(super) ring: Ring,
    pub(super) markers: VecDeque<Marker>,
    pub(super) severity: Severity,
    pub(super) since: Timestamp,
    pub(super) unit: Unit,
    pub(super) below: bool,
    pub(super) levels: Vec<(Severity, f64)>,
    pub(super) value_text: String,
    /// The round it was last seen in.
    round: u64,
}

impl Trend {
    fn new(id: String, r: &Reading, window_start: Timestamp) -> Self {
        let mut markers = VecDeque::with_capacity(MARKERS);
        // The state it is in began within the window: say so.
        if r.severity != Severity::Normal && r.since >= window_start {
            markers.push_back(Marker {
                at: r.since,
                from: None,
                to: r.severity,
            });
        }
        Trend {
            id,
            rule: Arc::clone(&r.rule),
            labels: r.labels.clone(),
            ring: Ring::new(),
            markers,
            severity: r.severity,
            since: r.since,
            unit: r.unit.clone(),
            below: r.below,
            levels: r.levels.clone(),
            value_text: r.value_text.clone(),
            round: 0,
        }
    }

    /// `rule{labels}`, as the history names the item.
    pub(super) fn item(&self) -> String {
        format!("{}{}", self.rule, self.labels)
    }

    /// Heap bytes this item holds of its own (its ring, markers, id, value text and
    /// thresholds; the rule name and labels are shared with the evaluator's).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.ring.values.len() * std::mem::size_of::<f32>()
            + self.markers.capacity() * std::mem::size_of::<Marker>()
            + self.id.capacity()
            + self.value_text.capacity()
            + self.levels.capacity() * std::mem::size_of::<(Severity, f64)>()
    }
}

/// Every charted item.
#[derive(Debug)]
pub(super) struct Trends {
    slot: Duration,
    items: HashMap<String, Trend>,
    /// Ids in the latest status order.
    order: Vec<String>,
    /// The time of the latest readings.
    at: Option<Timestamp>,
    round: u64,
}

impl Trends {
    /// Slots of `resolution` (the evaluator's tick), at least [`MIN_SLOT`].
    pub(super) fn new(resolution: Duration) -> Self {
        Trends {
            slot: resolution.max(MIN_SLOT),
            items: HashMap::new(),
            order: Vec::new(),
            at: None,
            round: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn slot(&self) -> Duration {
        self.slot
    }

    pub(super) fn at(&self) -> Option<Timestamp> {
        self.at
    }

    fn slot_ms(&self) -> i64 {
        i64::try_from(self.slot.as_millis())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The slot number of `t`.
    pub(super) fn slot_of(&self, t: Timestamp) -> i64 {
        t.as_millis().div_euclid(self.slot_ms())
    }

    /// Where slot `n` starts, in milliseconds since the epoch.
    pub(super) fn slot_start_ms(&self, n: i64) -> i64 {
        n.saturating_mul(self.slot_ms())
    }

    /// Takes one set of readings: values into the rings, severity changes as markers; items
    /// no longer read are dropped.
    pub(super) fn record(&mut self, readings: &Readings) {
        self.round += 1;
        let round = self.round;
        let slot = self.slot_of(readings.at);
        let window =
            Duration::from_millis(u64::try_from(self.slot_ms()).unwrap_or(0) * SLOTS as u64);
        let window_start = readings.at - window;
        self.order.clear();
        for r in &readings.items {
            let id = crate::alert::fingerprint(&r.rule, &r.labels);
            if !self.items.contains_key(&id) {
                if self.items.len() >= MAX_ITEMS {
                    continue;
                }
                let trend = Trend::new(id.clone(), r, window_start);
                self.items.insert(id.clone(), trend);
            }
            let Some(t) = self.items.get_mut(&id) else {
                continue;
            };
            if t.severity != r.severity || t.since != r.since {
                if t.markers.len() == MARKERS {
                    t.markers.pop_front();
                }
                t.markers.push_back(Marker {
                    at: r.since,
                    from: Some(t.severity),
                    to: r.severity,
                });
                t.severity = r.severity;
                t.since = r.since;
            }
            t.unit = r.unit.clone();
            t.below = r.below;
            if t.levels != r.levels {
                t.levels = r.levels.clone();
            }
            t.value_text.clone_from(&r.value_text);
            let v = r.value.map_or(f32::NAN, |v| v as f32);
            t.ring.put(slot, v, t.below);
            t.round = round;
            self.order.push(id);
        }
        self.items.retain(|_, t| t.round == round);
        self.at = Some(readings.at);
    }

    /// The charted items in the latest status order.
    pub(super) fn in_order(&self) -> impl Iterator<Item = &Trend> {
        self.order.iter().filter_map(|id| self.items.get(id))
    }

    pub(super) fn get(&self, id: &str) -> Option<&Trend> {
        self.items.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(host: &str, value: Option<f64>, severity: Severity, since: Timestamp) -> Reading {
        Reading {
            rule: Arc::from("cpu"),
            labels: Labels::from_pairs(&[("host", host)]),
            value,
            severity,
            since,
            unit: Unit::of_metric("cpu_ratio", None),
            below: false,
            levels: vec![(Severity::Warning, 0.7), (Severity::Critical, 0.95)],
            value_text: "x".to_owned(),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_000_000 + secs)
    }

    #[test]
    fn a_slot_keeps_its_worst_value_and_gaps_stay_gaps() {
        let mut t = Trends::new(Duration::from_secs(1));
        assert_eq!(t.slot(), MIN_SLOT);
        let start = at(0);
        for (s, v) in [(0, 0.5), (1, 0.9), (2, 0.6), (5, 0.4), (20, 0.3)] {
            t.record(&Readings {
                at: at(s),
                items: vec![reading("a", Some(v), Severity::Normal, start)],
            });
        }
        let trend = t.in_order().next().map(|t| t.ring.values());
        let (first, values) = trend.unwrap_or_default();
        assert_eq!(first, t.slot_of(at(0)));
        // Slot 0 holds 0.5, 0.9, 0.6 (worst 0.9); slot 1 0.4; slots 2 and 3 nothing; slot 4 0.3.
        let shown: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
        assert_eq!(shown, ["0.9", "0.4", "NaN", "NaN", "0.3"]);
    }

    #[test]
    fn severity_changes_become_markers_and_gone_items_go() {
        let mut t = Trends::new(Duration::from_secs(5));
        let read = |host: &str, sev, since| Readings {
            at: at(100),
            items: vec![reading(host, Some(0.5), sev, since)],
        };
        t.record(&read("a", Severity::Normal, at(0)));
        t.record(&read("a", Severity::Warning, at(90)));
        t.record(&read("a", Severity::Critical, at(95)));
        let trend = t.in_order().next();
        let markers: Vec<(Option<Severity>, Severity)> = trend
            .map(|t| t.markers.iter().map(|m| (m.from, m.to)).collect())
            .unwrap_or_default();
        assert_eq!(
            markers,
            [
                (Some(Severity::Normal), Severity::Warning),
                (Some(Severity::Warning), Severity::Critical)
            ]
        );
        t.record(&read("b", Severity::Major, at(99)));
        let ids: Vec<String> = t.in_order().map(Trend::item).collect();
        assert_eq!(ids, ["cpu{host=\"b\"}"], "a is gone");
        let b = t.in_order().next().map(|t| t.markers.len());
        assert_eq!(b, Some(1), "b's state began within the window");
    }

    /// The memory bound the docs give, with a full ring and every marker.
    #[test]
    fn memory_per_item_is_bounded() {
        let mut t = Trends::new(Duration::from_secs(1));
        for s in 0..(SLOTS as i64 * 5 + 100) {
            let sev = if s % 2 == 0 {
                Severity::Normal
            } else {
                Severity::Warning
            };
            t.record(&Readings {
                at: at(s),
                items: vec![reading("web-1", Some(0.5), sev, at(s))],
            });
        }
        let trend = t.in_order().next();
        assert_eq!(trend.map(|t| t.markers.len()), Some(MARKERS));
        assert_eq!(trend.map(|t| t.ring.values().1.len()), Some(SLOTS));
        let heap = trend.map_or(0, Trend::heap_bytes);
        // With the map's entry: the key (a 16-character id) and the trend itself.
        let entry = std::mem::size_of::<String>() + 16 + std::mem::size_of::<Trend>();
        eprintln!(
            "chart memory per item: {} bytes ({heap} its own heap, {entry} the map's entry)",
            heap + entry
        );
        assert!(heap + entry <= 3600, "{} bytes", heap + entry);
    }
}
