//! Cached gauge handles for the host items: resolved on first write, reused afterwards, and for
//! labelled families removed from the registry when their labels stop being reported.

use std::collections::HashMap;

use super::HostError;
use crate::{Gauge, Registry};

/// One unlabelled gauge, resolved on its first write so an item that is never collected never
/// shows up in the registry.
pub(crate) struct FixedGauge {
    name: &'static str,
    gauge: Option<Gauge>,
}

impl FixedGauge {
    pub(crate) const fn new(name: &'static str) -> Self {
        FixedGauge { name, gauge: None }
    }

    /// Sets the gauge, creating the series on first use.
    pub(crate) fn set(&mut self, registry: &Registry, value: f64) -> Result<(), HostError> {
        let gauge = match &self.gauge {
            Some(g) => g,
            None => self.gauge.insert(registry.gauge(self.name, &[])?),
        };
        gauge.try_set(value)?;
        Ok(())
    }
}

/// One entry of a [`GaugeFamily`]: the label values (for removal) and the handles.
struct Entry {
    values: Box<[Box<str>]>,
    gauges: Box<[Gauge]>,
    /// The sweep in which the entry was last reported.
    seen: u64,
}

/// `N` gauges sharing one set of label names (for example used, total and ratio of a mount),
/// keyed by label values.
///
/// A refresh calls [`begin`](Self::begin), then [`set`](Self::set) or [`keep`](Self::keep) for
/// every label set it still sees, then [`sweep`](Self::sweep), which removes the series of the
/// label sets not seen.
pub(crate) struct GaugeFamily<const N: usize> {
    names: [&'static str; N],
    label_names: &'static [&'static str],
    entries: HashMap<Box<str>, Entry>,
    epoch: u64,
    /// Reused to build lookup keys without allocating.
    key: String,
}

impl<const N: usize> GaugeFamily<N> {
    pub(crate) fn new(names: [&'static str; N], label_names: &'static [&'static str]) -> Self {
        GaugeFamily {
            names,
            label_names,
            entries: HashMap::new(),
            epoch: 0,
            key: String::new(),
        }
    }

    /// Starts a refresh.
    pub(crate) fn begin(&mut self) {
        self.epoch += 1;
    }

    /// Builds the map key for `values` in `self.key`.
    fn build_key(&mut self, values: &[&str]) {
        self.key.clear();
        for v in values {
            self.key.push_str(v);
            // A NUL cannot appear in a mount point, device or interface name.
            self.key.push('\0');
        }
    }

    /// Sets the `N` gauges of the label set `values` (in the order of the label names),
    /// creating its series on first use. Returns how many series were written.
    pub(crate) fn set(
        &mut self,
        registry: &Registry,
        values: &[&str],
        readings: [f64; N],
    ) -> Result<usize, HostError> {
        self.build_key(values);
        let epoch = self.epoch;
        let entry = match self.entries.get_mut(self.key.as_str()) {
            Some(entry) => entry,
            None => {
                let labels: Vec<(&str, &str)> = self
                    .label_names
                    .iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect();
                let mut gauges = Vec::with_capacity(N);
                for name in self.names {
                    match registry.gauge(name, &labels) {
                        Ok(g) => gauges.push(g),
                        Err(e) => {
                            // Leave no half-created label set behind.
                            for created in &self.names[..gauges.len()] {
                                registry.remove(created, &labels);
                            }
                            return Err(e.into());
                        }
                    }
                }
                let values = values.iter().map(|v| Box::from(*v)).collect();
                self.entries
                    .entry(Box::from(self.key.as_str()))
                    .or_insert(Entry {
                        values,
                        gauges: gauges.into_boxed_slice(),
                        seen: epoch,
                    })
            }
        };
        entry.seen = epoch;
        for (gauge, value) in entry.gauges.iter().zip(readings) {
            gauge.try_set(value)?;
        }
        Ok(N)
    }

    /// Marks the label set `values` as still present without writing it (its series, if any,
    /// keep their values).
    pub(crate) fn keep(&mut self, values: &[&str]) {
        self.build_key(values);
        let epoch = self.epoch;
        if let Some(entry) = self.entries.get_mut(self.key.as_str()) {
            entry.seen = epoch;
        }
    }

    /// Removes from the registry the series of every label set not seen since
    /// [`begin`](Self::begin). Returns how many series were removed.
    pub(crate) fn sweep(&mut self, registry: &Registry) -> usize {
        let epoch = self.epoch;
        let mut removed = 0;
        self.entries.retain(|_, entry| {
            if entry.seen == epoch {
                return true;
            }
            let labels: Vec<(&str, &str)> = self
                .label_names
                .iter()
                .copied()
                .zip(entry.values.iter().map(|v| &**v))
                .collect();
            for name in self.names {
                if registry.remove(name, &labels) {
                    removed += 1;
                }
            }
            false
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_creates_updates_and_sweeps() -> Result<(), HostError> {
        let registry = Registry::new();
        let mut fam = GaugeFamily::new(["t_a", "t_b"], &["x", "y"]);
        fam.begin();
        assert_eq!(fam.set(&registry, &["1", "2"], [1.0, 2.0])?, 2);
        fam.set(&registry, &["3", "4"], [3.0, 4.0])?;
        assert_eq!(fam.sweep(&registry), 0);
        assert_eq!(registry.len(), 4);

        fam.begin();
        fam.set(&registry, &["1", "2"], [5.0, 6.0])?;
        assert_eq!(fam.sweep(&registry), 2);
        let snap = registry.snapshot();
        assert_eq!(snap.series.len(), 2);
        assert!(snap.get("t_b", &[("x", "1"), ("y", "2")]).is_some());
        assert!(snap.get("t_a", &[("x", "3"), ("y", "4")]).is_none());

        fam.begin();
        fam.keep(&["1", "2"]);
        assert_eq!(fam.sweep(&registry), 0);
        fam.begin();
        assert_eq!(fam.sweep(&registry), 2);
        assert!(registry.is_empty());
        Ok(())
    }

    #[test]
    fn fixed_gauge_is_created_on_first_write() -> Result<(), HostError> {
        let registry = Registry::new();
        let mut g = FixedGauge::new("t_fixed");
        assert!(registry.is_empty());
        g.set(&registry, 2.5)?;
        g.set(&registry, 3.5)?;
        assert_eq!(registry.len(), 1);
        assert!(g.set(&registry, f64::NAN).is_err());
        Ok(())
    }
}
