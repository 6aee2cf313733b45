//! Carrying what anomaly rules learned across restarts: the evaluator hands out the points of
//! every item that learned a new one since it last asked, and takes them back before its
//! first sweep (see `rules/aggregation/anomaly.rs` for what is learned and its bounds).

use std::collections::HashMap;

use super::Evaluator;
use crate::rules::aggregation::{Learned, LearnedSnapshot};

impl Evaluator {
    /// What each anomaly rule's item learned, for the items that learned something since the
    /// last call (each is handed out once per change; the monitor's checkpoint writes them to
    /// the store). Empty without anomaly rules.
    pub fn learned_states(&mut self) -> Vec<LearnedSnapshot> {
        let mut out = Vec::new();
        for bound in &self.rules {
            let Some(a) = bound.rule.aggregation().learns() else {
                continue;
            };
            let identity = bound.rule.identity();
            for item in self.items.get_mut(bound.span()).unwrap_or_default() {
                if let Some(l) = item.learned.as_deref_mut().filter(|l| l.dirty) {
                    l.dirty = false;
                    out.push(l.snapshot(identity.clone(), item.labels.clone(), &a));
                }
            }
        }
        out
    }

    /// Gives learned points back (from [`learned_states`](Self::learned_states) of an earlier
    /// run): each applies to its item (same rule identity, same labels) when the item's
    /// series is bound. Points of rules whose identity changed are dropped.
    pub fn restore_learned(&mut self, states: Vec<LearnedSnapshot>) {
        let mut pending: HashMap<_, _> = states
            .into_iter()
            .map(|s| ((s.rule.clone(), s.labels.clone()), Learned::restore(s)))
            .collect();
        for bound in &self.rules {
            if pending.is_empty() {
                break;
            }
            let identity = bound.rule.identity();
            for item in self.items.get_mut(bound.span()).unwrap_or_default() {
                if let Some(l) = pending.remove(&(identity.clone(), item.labels.clone())) {
                    item.learned = Some(Box::new(l));
                }
            }
        }
        self.restored.learned.extend(pending);
        // Bind again so the points apply to series that exist now.
        self.generation = None;
    }
}
