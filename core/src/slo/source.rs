//! Reading an SLO's series: counter and histogram increases since the last reading, with
//! resets handled as `rate` does.

use std::collections::HashMap;

use super::SloError;
use super::spec::{Selector, SloSource};
use crate::metrics::{MetricKind, Registry, SeriesId, SeriesReader, Value, buckets};

/// What a series stands for in the SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    /// Good or bad events (as the source says).
    Counted,
    Total,
    /// A histogram: both.
    Latency,
}

/// The last reading of a series: `(counted, total)`.
type Reading = (u64, u64);

/// An SLO's series and their last readings.
pub(super) struct Reader {
    source: SloSource,
    generation: Option<u64>,
    series: Vec<(SeriesReader, Role)>,
    last: HashMap<(SeriesId, Role), Reading>,
    started: bool,
    /// Series of the wrong kind, reported once each.
    pub(super) problems: Vec<SloError>,
}

fn selects(sel: &Selector, r: &SeriesReader) -> bool {
    **r.name() == *sel.metric && sel.select.iter().all(|m| m.matches(r.labels()))
}

impl Reader {
    pub(super) fn new(source: SloSource) -> Reader {
        Reader {
            source,
            generation: None,
            series: Vec::new(),
            last: HashMap::new(),
            started: false,
            problems: Vec::new(),
        }
    }

    /// Whether the count is of bad events (else good).
    pub(super) fn counts_bad(&self) -> bool {
        matches!(self.source, SloSource::Bad { .. })
    }

    fn roles(&self) -> Vec<(&Selector, Role, &'static str, MetricKind)> {
        match &self.source {
            SloSource::Good { good, total } => vec![
                (good, Role::Counted, "good", MetricKind::Counter),
                (total, Role::Total, "total", MetricKind::Counter),
            ],
            SloSource::Bad { bad, total } => vec![
                (bad, Role::Counted, "bad", MetricKind::Counter),
                (total, Role::Total, "total", MetricKind::Counter),
            ],
            SloSource::Latency { histogram, .. } => {
                vec![(histogram, Role::Latency, "latency", MetricKind::Histogram)]
            }
        }
    }

    /// Re-lists the selected series if the registry's set of series moved.
    fn bind(&mut self, registry: &Registry, slo: &str) {
        let generation = registry.generation();
        if self.generation == Some(generation) {
            return;
        }
        self.generation = Some(generation);
        let readers = registry.readers();
        let mut series = Vec::new();
        let mut problems = Vec::new();
        for (sel, role, name, wanted) in self.roles() {
            for r in readers.iter().filter(|r| selects(sel, r)) {
                if r.kind() == wanted {
                    series.push((r.clone(), role));
                } else {
                    problems.push(SloError::Kind {
                        slo: slo.to_owned(),
                        metric: sel.metric.clone(),
                        labels: r.labels().to_string(),
                        role: name,
                        found: r.kind(),
                        wanted,
                    });
                }
            }
        }
        let live: std::collections::HashSet<(SeriesId, Role)> =
            series.iter().map(|(r, role)| (r.id(), *role)).collect();
        self.last.retain(|k, _| live.contains(k));
        self.series = series;
        self.problems = problems;
    }

    /// A series' reading now.
    fn read(&self, r: &SeriesReader, role: Role) -> Reading {
        match (role, r.value()) {
            (Role::Counted, Value::Counter(n)) => (n, 0),
            (Role::Total, Value::Counter(n)) => (0, n),
            (Role::Latency, Value::Histogram(h)) => {
                let le = match self.source {
                    SloSource::Latency { le, .. } => le,
                    _ => f64::INFINITY,
                };
                let good = h
                    .keyed_buckets()
                    .iter()
                    .filter(|&&(key, _)| buckets::midpoint(key) <= le)
                    .map(|&(_, n)| n)
                    .sum();
                (good, h.count())
            }
            _ => (0, 0),
        }
    }

    /// The events counted since the last call: `(counted, total)`. The first call reads the
    /// baseline and counts nothing.
    pub(super) fn increase(&mut self, registry: &Registry, slo: &str) -> (u64, u64) {
        self.bind(registry, slo);
        let first = !self.started;
        self.started = true;
        let mut sum = (0u64, 0u64);
        let mut seen = Vec::with_capacity(self.series.len());
        for (r, role) in &self.series {
            let now = self.read(r, *role);
            seen.push(((r.id(), *role), now));
        }
        for (key, now) in seen {
            let before = self.last.insert(key, now);
            let delta = match before {
                _ if first => (0, 0),
                // New since the first reading: everything it counted is new.
                None => now,
                Some(b) if now.1 < b.1 || now.0 < b.0 => now, // a reset
                Some(b) => (now.0 - b.0, now.1 - b.1),
            };
            sum.0 = sum.0.saturating_add(delta.0);
            sum.1 = sum.1.saturating_add(delta.1);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Matcher;

    fn sel(metric: &str) -> Selector {
        Selector {
            metric: metric.into(),
            select: vec![Matcher::NotEqual("code".into(), "500".into())],
        }
    }

    #[test]
    fn baselines_increases_new_series_and_wrong_kinds() {
        let registry = Registry::new();
        let ok = registry
            .counter("ok_total", &[("code", "200")])
            .unwrap_or_else(|e| panic!("{e}"));
        let all = registry
            .counter("all_total", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        ok.add(50);
        all.add(60);
        let mut r = Reader::new(SloSource::Good {
            good: sel("ok_total"),
            total: sel("all_total"),
        });
        assert_eq!(r.increase(&registry, "s"), (0, 0), "the baseline");
        ok.add(9);
        all.add(10);
        assert_eq!(r.increase(&registry, "s"), (9, 10));
        // A series of the right name that the matchers leave out, one created later (counted
        // from zero), and one removed and created again (a reset: its new value counts).
        registry
            .counter("ok_total", &[("code", "500")])
            .unwrap_or_else(|e| panic!("{e}"))
            .add(7);
        registry
            .counter("ok_total", &[("code", "201")])
            .unwrap_or_else(|e| panic!("{e}"))
            .add(3);
        assert!(registry.remove("all_total", &[]));
        registry
            .counter("all_total", &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .add(4);
        assert_eq!(r.increase(&registry, "s"), (3, 4));
        assert!(r.problems.is_empty());
        // A gauge where a counter belongs is reported and left out.
        registry
            .gauge("ok_gauge", &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .set(1.0);
        let mut g = Reader::new(SloSource::Bad {
            bad: sel("ok_gauge"),
            total: sel("all_total"),
        });
        g.increase(&registry, "s");
        assert!(
            matches!(g.problems.as_slice(), [SloError::Kind { role: "bad", .. }]),
            "{:?}",
            g.problems
        );
    }
}
