//! The series of one `[[log]]`: one per distinct set of captured values, up to `max_series`,
//! their totals, and their counters in the registry.

use std::collections::HashMap;

use regex::bytes::CaptureLocations;

use super::spec::{LINES_METRIC, LogSpec, OVERFLOW_VALUE};
use crate::metrics::{Counter, Labels, Registry};

/// A captured value is cut to this many bytes (it comes from a file anyone may write to).
const MAX_VALUE: usize = 128;
/// Separates captured values in a series' key (never valid UTF-8, never in a value): every
/// key of captured values ends with it.
const SEPARATOR: u8 = 0xff;
/// The overflow series' key, which no key of captured values can be (it does not end with
/// the separator).
const OVERFLOW_KEY: &[u8] = b"\xff\xffoverflow";

struct Series {
    metric: String,
    labels: Labels,
    counter: Option<Counter>,
    total: u64,
    published: u64,
}

/// The counts of one log.
pub(super) struct Counts {
    spec_labels: Vec<(String, String)>,
    log: String,
    metric: String,
    /// The pattern's named groups: `(group index, label name)`.
    groups: Vec<(usize, String)>,
    max_series: usize,
    by_key: HashMap<Vec<u8>, usize>,
    series: Vec<Series>,
    overflow: Option<usize>,
    locations: CaptureLocations,
    key: Vec<u8>,
    lines: Series,
    registry: Registry,
}

/// A captured value as a label value: UTF-8 (invalid bytes replaced), at most [`MAX_VALUE`]
/// bytes, cut at a character boundary.
fn label_value(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_VALUE + 4)]);
    let mut end = text.len().min(MAX_VALUE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Counts {
    /// The counts of `spec`. Without named groups its one series exists from the start (at
    /// 0), so a rule's `increase` or `rate` sees the first matching line too.
    pub(super) fn new(spec: &LogSpec, registry: &Registry) -> Counts {
        let groups = spec
            .pattern
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_owned())))
            .collect();
        let lines_labels = Labels::from_pairs(&[("log", spec.name.as_str())]);
        let lines_counter = registry
            .counter(LINES_METRIC, &[("log", spec.name.as_str())])
            .map_err(|e| log::warn!(target: "vigilo::logs", "log {}: {e}", spec.name))
            .ok();
        let mut counts = Counts {
            spec_labels: spec.labels.clone(),
            log: spec.name.clone(),
            metric: spec.metric.clone(),
            groups,
            max_series: spec.max_series.max(1),
            by_key: HashMap::new(),
            series: Vec::new(),
            overflow: None,
            locations: spec.pattern.capture_locations(),
            key: Vec::new(),
            lines: Series {
                metric: LINES_METRIC.to_owned(),
                labels: lines_labels,
                counter: lines_counter,
                total: 0,
                published: 0,
            },
            registry: registry.clone(),
        };
        if counts.groups.is_empty() {
            counts.add_series(Vec::new(), &[], 0);
        }
        counts
    }

    /// The full labels of the series whose captured values are `values`.
    fn labels_of(&self, values: &[String]) -> Vec<(String, String)> {
        let mut pairs = vec![("log".to_owned(), self.log.clone())];
        pairs.extend(
            self.groups
                .iter()
                .map(|(_, name)| name.clone())
                .zip(values.iter().cloned()),
        );
        pairs.extend(self.spec_labels.iter().cloned());
        pairs
    }

    fn add_series(&mut self, key: Vec<u8>, values: &[String], total: u64) -> usize {
        let pairs = self.labels_of(values);
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let counter = self
            .registry
            .counter(&self.metric, &borrowed)
            .map_err(|e| log::warn!(target: "vigilo::logs", "log {}: {e}", self.log))
            .ok();
        if let Some(c) = &counter {
            c.add(total);
        }
        self.series.push(Series {
            metric: self.metric.clone(),
            labels: Labels::from_pairs(&borrowed),
            counter,
            total,
            published: total,
        });
        let i = self.series.len() - 1;
        self.by_key.insert(key, i);
        i
    }

    /// Counts one line (already cut to the bound) if it matches.
    pub(super) fn line(&mut self, pattern: &regex::bytes::Regex, line: &[u8]) {
        self.lines.total += 1;
        if self.groups.is_empty() {
            if pattern.is_match(line)
                && let Some(s) = self.series.first_mut()
            {
                s.total += 1;
            }
            return;
        }
        if pattern.captures_read(&mut self.locations, line).is_none() {
            return;
        }
        self.key.clear();
        for &(g, _) in &self.groups {
            if let Some((a, b)) = self.locations.get(g) {
                // The key holds the label values as they will be (so a restored series is
                // found again); most values are short UTF-8 already, and copied as they are.
                let v = &line[a..b];
                if v.len() <= MAX_VALUE && std::str::from_utf8(v).is_ok() {
                    self.key.extend_from_slice(v);
                } else {
                    self.key.extend_from_slice(label_value(v).as_bytes());
                }
            }
            self.key.push(SEPARATOR);
        }
        let i = match self.by_key.get(self.key.as_slice()) {
            Some(&i) => i,
            None if self.series.len() < self.max_series => {
                let values: Vec<String> = self
                    .groups
                    .iter()
                    .map(|&(g, _)| {
                        self.locations
                            .get(g)
                            .map_or_else(String::new, |(a, b)| label_value(&line[a..b]))
                    })
                    .collect();
                let key = std::mem::take(&mut self.key);
                self.add_series(key, &values, 0)
            }
            None => match self.overflow {
                Some(i) => i,
                None => {
                    log::warn!(
                        target: "vigilo::logs",
                        "log {}: {} series reached (max_series); further values are counted as {OVERFLOW_VALUE}",
                        self.log,
                        self.max_series
                    );
                    let values = vec![OVERFLOW_VALUE.to_owned(); self.groups.len()];
                    let i = self.add_series(OVERFLOW_KEY.to_vec(), &values, 0);
                    self.overflow = Some(i);
                    i
                }
            },
        };
        self.series[i].total += 1;
    }

    /// Adds what was counted since the last call to the registry's counters.
    pub(super) fn publish(&mut self) {
        for s in self
            .series
            .iter_mut()
            .chain(std::iter::once(&mut self.lines))
        {
            if let Some(c) = &s.counter {
                c.add(s.total - s.published);
            }
            s.published = s.total;
        }
    }

    /// Every series' full labels and total (the lines read included), for a checkpoint.
    pub(super) fn totals(&self) -> Vec<(String, Labels, u64)> {
        self.series
            .iter()
            .chain(std::iter::once(&self.lines))
            .map(|s| (s.metric.clone(), s.labels.clone(), s.total))
            .collect()
    }

    /// Takes the totals of a checkpoint back (before anything is counted).
    pub(super) fn restore(&mut self, totals: &[(String, Labels, u64)]) {
        for (metric, labels, total) in totals {
            if labels.get("log") != Some(self.log.as_str()) {
                continue;
            }
            if *metric == self.lines.metric && *labels == self.lines.labels {
                self.lines.total = *total;
                self.lines.published = *total;
                if let Some(c) = &self.lines.counter {
                    c.add(*total);
                }
                continue;
            }
            if *metric != self.metric {
                continue; // the log counts into another metric now
            }
            let values: Vec<String> = self
                .groups
                .iter()
                .map(|(_, name)| labels.get(name).unwrap_or_default().to_owned())
                .collect();
            let overflow = !values.is_empty() && values.iter().all(|v| v == OVERFLOW_VALUE);
            let key = if overflow {
                OVERFLOW_KEY.to_vec()
            } else {
                let mut key = Vec::new();
                for v in &values {
                    key.extend_from_slice(v.as_bytes());
                    key.push(SEPARATOR);
                }
                key
            };
            if let Some(&i) = self.by_key.get(&key) {
                // Made at the start (a pattern without groups): it takes the saved total.
                let s = &mut self.series[i];
                if *total > s.total {
                    if let Some(c) = &s.counter {
                        c.add(total - s.total);
                    }
                    s.total = *total;
                    s.published = *total;
                }
                continue;
            }
            let i = self.add_series(key, &values, *total);
            if overflow {
                self.overflow = Some(i);
            }
        }
    }
}
