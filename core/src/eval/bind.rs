//! Binding rules to series: fan-out over every matching series, as series come and go.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::evaluator::{Evaluator, Item, Watched, index_u32};
use super::window::Window;
use crate::clock::Timestamp;
use crate::metrics::{Labels, SeriesId, SeriesReader};
use crate::rules::{Matcher, Rule};

/// `(hash of a label's value, position among the metric's series)`, sorted.
type ValueIndex = Vec<(u64, u32)>;

/// The registry's series grouped by metric, with per-label indexes built on first use, so a rule
/// with an equality matcher (`service = "api"`) looks only at the series that carry that value
/// instead of every series of the metric: binding stays linear with many rules on one metric.
struct SeriesIndex {
    by_metric: HashMap<Arc<str>, Vec<SeriesReader>>,
    /// `(metric, label)` → `(hash of the label's value, position in by_metric[metric])`,
    /// sorted: 16 bytes per series, where a map of owned values took ten times that, and the
    /// allocator keeps what a binding used at its peak.
    by_label: HashMap<(Arc<str>, String), ValueIndex>,
    hasher: foldhash::fast::FixedState,
}

impl SeriesIndex {
    fn new(readers: Vec<SeriesReader>) -> Self {
        let mut by_metric: HashMap<Arc<str>, Vec<SeriesReader>> = HashMap::new();
        for reader in readers {
            by_metric
                .entry(Arc::clone(reader.name()))
                .or_default()
                .push(reader);
        }
        SeriesIndex {
            by_metric,
            by_label: HashMap::new(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// Appends the series of `metric` that `rule` selects to `out`, in id order.
    fn select(&mut self, metric: &Arc<str>, rule: &Rule, out: &mut Vec<SeriesReader>) {
        let Some(all) = self.by_metric.get(metric) else {
            return;
        };
        let start = out.len();
        // An equality matcher on a non-empty value narrows the search through an index.
        let equal = rule.matchers().iter().find_map(|m| match m {
            Matcher::Equal(l, v) if !v.is_empty() => Some((l, v)),
            _ => None,
        });
        let hasher = &self.hasher;
        match equal {
            None => out.extend(all.iter().filter(|r| rule.selects(r.labels())).cloned()),
            Some((label, value)) => {
                let index = self
                    .by_label
                    .entry((Arc::clone(metric), label.clone()))
                    .or_insert_with(|| {
                        let mut index: Vec<(u64, u32)> = all
                            .iter()
                            .enumerate()
                            .filter_map(|(i, r)| {
                                let v = r.labels().get(label)?;
                                Some((hasher.hash_one(v), index_u32(i)))
                            })
                            .collect();
                        index.sort_unstable();
                        index
                    });
                let h = hasher.hash_one(value.as_str());
                let from = index.partition_point(|e| e.0 < h);
                out.extend(
                    index[from..]
                        .iter()
                        .take_while(|e| e.0 == h)
                        .filter_map(|&(_, i)| all.get(i as usize))
                        // A hash shared by two values is told apart here.
                        .filter(|r| rule.selects(r.labels()))
                        .cloned(),
                );
            }
        }
        if let Some(chosen) = out.get_mut(start..) {
            chosen.sort_by_key(SeriesReader::id);
        }
    }
}

impl Evaluator {
    /// Moves the arena's items back to their rules (one vector per rule, in rule order), for a
    /// rebinding. Spans are consecutive in rule order, as `rebind_from` lays them out.
    pub(super) fn take_items(&mut self) -> Vec<Vec<Item>> {
        let mut all = std::mem::take(&mut self.items).into_iter();
        self.rules
            .iter()
            .map(|b| all.by_ref().take(b.span().len()).collect())
            .collect()
    }

    /// Binds every rule to the series that exist now, keeping the state of items whose series
    /// is still there (or that wait for no data). Series are laid out in rule order.
    pub(super) fn rebind(&mut self, now: Timestamp) {
        let old = self.take_items();
        self.rebind_from(old, now);
    }

    /// [`rebind`](Self::rebind) with each rule's current items given (`old[r]` for rule `r`).
    pub(super) fn rebind_from(&mut self, mut old_items: Vec<Vec<Item>>, now: Timestamp) {
        self.generation = Some(self.registry.generation());
        // Every rule's series first (`selected[spans[r]]`), so that what is built next is
        // sized once: growing it would leave freed tables behind, which the allocator keeps.
        let mut candidates = SeriesIndex::new(self.registry.readers());
        let mut selected: Vec<SeriesReader> = Vec::new();
        let spans: Vec<(usize, usize)> = self
            .rules
            .iter()
            .map(|b| {
                let start = selected.len();
                candidates.select(b.rule.shared_metric(), &b.rule, &mut selected);
                (start, selected.len())
            })
            .collect();
        drop(candidates);
        let most = selected.len();
        let mut old_series: HashMap<SeriesId, Watched> =
            self.series.drain(..).map(|w| (w.id, w)).collect();
        let mut series: Vec<Watched> = Vec::with_capacity(most);
        let mut index: HashMap<SeriesId, usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(most, Default::default());
        // `(series, item)` for every item reading a series, in item order.
        let mut readers_of: Vec<(u32, u32)> = Vec::with_capacity(most);
        let old_count: usize = old_items.iter().map(Vec::len).sum();
        let mut arena: Vec<Item> = Vec::with_capacity(old_count.max(self.rules.len()));
        let mut restored = std::mem::take(&mut self.restored.states);
        for (r, bound) in self.rules.iter_mut().enumerate() {
            let rule_index = index_u32(r);
            let identity = (!restored.is_empty() || !self.restored.learned.is_empty())
                .then(|| bound.rule.identity());
            let mut old: HashMap<Labels, Item> = old_items
                .get_mut(r)
                .map(std::mem::take)
                .unwrap_or_default()
                .into_iter()
                .map(|it| (it.labels.clone(), it))
                .collect();
            let first = arena.len();
            let (from, to) = spans.get(r).copied().unwrap_or_default();
            for reader in selected.get(from..to).unwrap_or_default() {
                let id = reader.id();
                let mut item = old.remove(reader.labels()).unwrap_or_else(|| {
                    let mut item = Item::new(reader.labels().clone(), rule_index, now);
                    if let Some(state) = identity
                        .as_ref()
                        .and_then(|i| restored.remove(&(i.clone(), reader.labels().clone())))
                    {
                        item.state = state;
                        item.state.restart_clock(now);
                    }
                    if let Some(learned) = identity.as_ref().and_then(|i| {
                        self.restored
                            .learned
                            .remove(&(i.clone(), reader.labels().clone()))
                    }) {
                        item.learned = Some(Box::new(learned));
                    }
                    item
                });
                // A placeholder whose labels a real series carries becomes that series' item.
                item.placeholder = false;
                let s = *index.entry(id).or_insert_with(|| {
                    let w = old_series.remove(&id).unwrap_or_else(|| Watched {
                        id,
                        reader: reader.clone(),
                        window: Window::new(bound.rule.window()),
                        users_start: 0,
                        users_end: 0,
                        armed: None,
                        dirty: true,
                        histogram_count: 0,
                    });
                    series.push(w);
                    series.len() - 1
                });
                let w = &mut series[s];
                w.window.keep = w.window.keep.max(bound.rule.window());
                w.dirty = true;
                readers_of.push((index_u32(s), index_u32(arena.len())));
                item.rule = rule_index;
                item.series = Some(index_u32(s));
                item.queued = None;
                arena.push(item);
            }
            let matched = arena.len() > first;
            for (_, mut item) in old {
                if item.placeholder && matched {
                    // Series match now: the stand-in goes, reported resolved if it had fired.
                    if let Some(change) = item.state.resolve(now) {
                        self.outbox
                            .emit(bound.transition(&item, change, &self.registry));
                    }
                } else if bound.rule.no_data().is_some() {
                    // Keep waiting: no data will set in after its time.
                    item.rule = rule_index;
                    item.series = None;
                    item.queued = None;
                    arena.push(item);
                } else if let Some(change) = item.state.resolve(now) {
                    // The series is gone and nothing waits for it: report it resolved.
                    self.outbox
                        .emit(bound.transition(&item, change, &self.registry));
                }
            }
            if arena.len() == first && bound.rule.no_data().is_some() {
                // Nothing matches and nothing ever did: a placeholder lets no data set in.
                let pairs: Vec<(&str, &str)> = bound
                    .rule
                    .matchers()
                    .iter()
                    .filter_map(|m| match m {
                        Matcher::Equal(l, v) => Some((l.as_str(), v.as_str())),
                        _ => None,
                    })
                    .collect();
                let mut placeholder = Item::new(Labels::from_pairs(&pairs), rule_index, now);
                placeholder.placeholder = true;
                if let Some(state) = identity
                    .as_ref()
                    .and_then(|i| restored.remove(&(i.clone(), placeholder.labels.clone())))
                {
                    // A stand-in that was in no data before the restart stays there.
                    placeholder.state = state;
                    placeholder.state.restart_clock(now);
                }
                arena.push(placeholder);
            }
            bound.set_span(first..arena.len());
        }
        self.restored.states = restored;
        for w in old_series.values() {
            w.reader.disarm();
        }
        // Each series' readers, together: sorted by series, in item order within one.
        readers_of.sort_unstable();
        self.users = readers_of.iter().map(|&(_, item)| item).collect();
        let mut at = 0;
        for (s, w) in series.iter_mut().enumerate() {
            let start = at;
            while readers_of.get(at).is_some_and(|&(ws, _)| ws as usize == s) {
                at += 1;
            }
            w.users_start = index_u32(start);
            w.users_end = index_u32(at);
        }
        series.shrink_to_fit();
        index.shrink_to_fit();
        arena.shrink_to_fit();
        self.series = series;
        self.index = index;
        self.items = arena;
        // Item indices changed: queue every pending deadline again under its new position.
        self.deadlines.clear();
        for (i, item) in self.items.iter_mut().enumerate() {
            item.queued = item.deadline;
            if let Some(d) = item.deadline {
                self.deadlines.push(std::cmp::Reverse((d, index_u32(i))));
            }
        }
    }
}
