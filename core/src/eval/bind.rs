//! Binding rules to series: fan-out over every matching series, as series come and go.

use std::collections::HashMap;
use std::sync::Arc;

use super::evaluator::{Evaluator, Item, Watched};
use super::window::Window;
use crate::clock::Timestamp;
use crate::metrics::{Labels, SeriesId, SeriesReader};
use crate::rules::{Matcher, Rule};

/// The registry's series grouped by metric, with per-label indexes built on first use, so a rule
/// with an equality matcher (`service = "api"`) looks only at the series that carry that value
/// instead of every series of the metric: binding stays linear with many rules on one metric.
struct SeriesIndex {
    by_metric: HashMap<Arc<str>, Vec<SeriesReader>>,
    /// `(metric, label)` → label value → positions in `by_metric[metric]`.
    by_label: HashMap<(Arc<str>, String), HashMap<String, Vec<usize>>>,
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
        }
    }

    /// The series of `metric` that `rule` selects, in id order.
    fn select(&mut self, metric: &Arc<str>, rule: &Rule) -> Vec<SeriesReader> {
        let Some(all) = self.by_metric.get(metric) else {
            return Vec::new();
        };
        // An equality matcher on a non-empty value narrows the search through an index.
        let equal = rule.matchers().iter().find_map(|m| match m {
            Matcher::Equal(l, v) if !v.is_empty() => Some((l, v)),
            _ => None,
        });
        let mut chosen: Vec<SeriesReader> = match equal {
            None => all
                .iter()
                .filter(|r| rule.selects(r.labels()))
                .cloned()
                .collect(),
            Some((label, value)) => {
                let index = self
                    .by_label
                    .entry((Arc::clone(metric), label.clone()))
                    .or_insert_with(|| {
                        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
                        for (i, r) in all.iter().enumerate() {
                            if let Some(v) = r.labels().get(label) {
                                index.entry(v.to_owned()).or_default().push(i);
                            }
                        }
                        index
                    });
                index
                    .get(value.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(|&i| all.get(i))
                    .filter(|r| rule.selects(r.labels()))
                    .cloned()
                    .collect()
            }
        };
        chosen.sort_by_key(SeriesReader::id);
        chosen
    }
}

impl Evaluator {
    /// Binds every rule to the series that exist now, keeping the state of items whose series
    /// is still there (or that wait for no data). Series are laid out in rule order.
    pub(super) fn rebind(&mut self, now: Timestamp) {
        self.generation = Some(self.registry.generation());
        let mut candidates = SeriesIndex::new(self.registry.readers());
        let mut old_series: HashMap<SeriesId, Watched> = self
            .series
            .drain(..)
            .map(|mut w| {
                w.users.clear();
                (w.id, w)
            })
            .collect();
        let mut series: Vec<Watched> = Vec::new();
        let mut index: HashMap<SeriesId, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut restored = std::mem::take(&mut self.restored);
        for (r, bound) in self.rules.iter_mut().enumerate() {
            let identity = (!restored.is_empty()).then(|| bound.rule.identity());
            let mut old: HashMap<Labels, Item> = bound
                .items
                .drain(..)
                .map(|it| (it.labels.clone(), it))
                .collect();
            let mut items = Vec::new();
            let readers = candidates.select(&bound.metric, &bound.rule);
            for reader in readers {
                let id = reader.id();
                let mut item = old.remove(reader.labels()).unwrap_or_else(|| {
                    let mut item = Item::new(reader.labels().clone(), now);
                    if let Some(state) = identity
                        .as_ref()
                        .and_then(|i| restored.remove(&(i.clone(), reader.labels().clone())))
                    {
                        item.state = state;
                        item.state.restart_clock(now);
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
                        users: Vec::new(),
                        armed: None,
                        dirty: true,
                        histogram_count: 0,
                    });
                    series.push(w);
                    series.len() - 1
                });
                let w = &mut series[s];
                w.window.keep = w.window.keep.max(bound.rule.window());
                w.users.push((r, items.len()));
                w.dirty = true;
                item.series = Some(s);
                item.queued = None;
                items.push(item);
            }
            let matched = !items.is_empty();
            for (_, mut item) in old {
                if item.placeholder && matched {
                    // Series match now: the stand-in goes, reported resolved if it had fired.
                    if let Some(change) = item.state.resolve(now) {
                        self.outbox.emit(bound.transition(&item, change));
                    }
                } else if bound.rule.no_data().is_some() {
                    // Keep waiting: no data will set in after its time.
                    item.series = None;
                    item.queued = None;
                    items.push(item);
                } else if let Some(change) = item.state.resolve(now) {
                    // The series is gone and nothing waits for it: report it resolved.
                    self.outbox.emit(bound.transition(&item, change));
                }
            }
            if items.is_empty() && bound.rule.no_data().is_some() {
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
                let mut placeholder = Item::new(Labels::from_pairs(&pairs), now);
                placeholder.placeholder = true;
                items.push(placeholder);
            }
            bound.items = items;
        }
        self.restored = restored;
        for w in old_series.values() {
            w.reader.disarm();
        }
        self.series = series;
        self.index = index;
        // Item indices changed: queue every pending deadline again under its new position.
        self.deadlines.clear();
        for (r, bound) in self.rules.iter_mut().enumerate() {
            for (i, item) in bound.items.iter_mut().enumerate() {
                item.queued = item.deadline;
                if let Some(d) = item.deadline {
                    self.deadlines.push(std::cmp::Reverse((d, r, i)));
                }
            }
        }
    }
}
