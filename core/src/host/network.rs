//! Network items: receive and transmit rates per interface.

use std::collections::HashSet;
use std::time::Instant;

use sysinfo::Networks;

use super::names;
use super::series::GaugeFamily;
use super::tally::{MIN_RATE_WINDOW, Tally};
use super::{HostConfig, HostError};
use crate::Registry;

/// State of the network items.
pub(crate) struct NetworkItems {
    networks: Networks,
    rates: GaugeFamily<2>,
    /// Interfaces present at the last read: only those have a true rate at the next one.
    known: HashSet<String>,
    /// When the counters were last read.
    read_at: Instant,
    /// For its interface filter.
    filter: HostConfig,
}

impl NetworkItems {
    pub(crate) fn new(config: &HostConfig) -> Result<Self, HostError> {
        let networks = Networks::new().map_err(|source| HostError::System {
            what: "network interfaces",
            source,
        })?;
        Ok(NetworkItems {
            networks,
            rates: GaugeFamily::new(
                [
                    names::NETWORK_RECEIVE_BYTES_PER_SECOND,
                    names::NETWORK_TRANSMIT_BYTES_PER_SECOND,
                ],
                &[names::LABEL_INTERFACE],
            ),
            known: HashSet::new(),
            read_at: Instant::now(),
            filter: config.clone(),
        })
    }

    /// Reads the counters without writing anything.
    pub(crate) fn prime(&mut self) {
        self.read_at = Instant::now();
        self.networks.refresh(true);
        self.known = self.interfaces().map(str::to_owned).collect();
    }

    /// Interface names that pass the filter (sysinfo keys them by `OsString`; non-UTF-8 names
    /// are skipped).
    fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.networks
            .keys()
            .filter_map(|name| name.to_str())
            .filter(|name| !self.filter.excludes_interface(name))
    }

    pub(crate) fn refresh(&mut self, registry: &Registry, tally: &mut Tally) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.read_at);
        if elapsed < MIN_RATE_WINDOW {
            // Too short a window for a meaningful rate: keep the counters for next time.
            tally.pending += 1;
            return;
        }
        self.read_at = now;
        self.networks.refresh(true);
        let secs = elapsed.as_secs_f64();
        let mut known = HashSet::with_capacity(self.known.len());
        self.rates.begin();
        for (name, data) in self.networks.iter() {
            let Some(name) = name.to_str() else {
                continue;
            };
            if self.filter.excludes_interface(name) {
                continue;
            }
            known.insert(name.to_owned());
            if !self.known.contains(name) {
                tally.pending += 1;
                continue;
            }
            let readings = [
                data.received() as f64 / secs,
                data.transmitted() as f64 / secs,
            ];
            tally.wrote(self.rates.set(registry, &[name], readings));
        }
        tally.removed += self.rates.sweep(registry);
        self.known = known;
    }
}
