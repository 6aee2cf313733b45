//! What a metric measures: its help text and unit, for exporters (HELP and UNIT lines) and the
//! board. Kept per metric name, apart from the series, so describing costs the record path
//! nothing and a description may come before or after the first series.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
#[cfg(feature = "serde")]
use serde::Serialize;

/// A metric's description, as given to [`Registry::describe`](super::Registry::describe).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Description {
    /// One line saying what the metric measures (Prometheus `HELP`).
    pub help: String,
    /// Its unit (Prometheus `UNIT`, e.g. `seconds`, `bytes`), if it has one.
    pub unit: Option<String>,
}

/// Descriptions by metric name.
#[derive(Default)]
pub(crate) struct Descriptions(RwLock<HashMap<Arc<str>, Description>>);

impl Descriptions {
    pub(crate) fn set(&self, name: &str, description: Description) {
        self.0.write().insert(Arc::from(name), description);
    }

    pub(crate) fn get(&self, name: &str) -> Option<Description> {
        self.0.read().get(name).cloned()
    }

    /// Every description, for one exposition (one lock, held while cloning).
    pub(crate) fn all(&self) -> HashMap<Arc<str>, Description> {
        self.0.read().clone()
    }
}
