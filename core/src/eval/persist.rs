//! Carrying item states across a restart: the evaluator hands out the state of every item that
//! is not at rest, and takes such states back before its first sweep, so a hold in progress,
//! the occurrences counted so far and the severity last reported resume where they were (an
//! item that recovered meanwhile is then reported resolved, once).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Evaluator;
use super::state::ItemState;
use crate::metrics::Labels;

/// The saved state of one item: its rule's identity, its series' labels, its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemSnapshot {
    /// The rule's [`identity`](crate::rules::Rule::identity): a state is only given back to the
    /// same rule on the same item.
    pub rule: String,
    /// The series' labels.
    pub labels: Labels,
    state: ItemState,
}

impl Evaluator {
    /// The state of every item that is not at rest (at Normal with nothing in progress).
    pub fn item_states(&self) -> Vec<ItemSnapshot> {
        let mut out = Vec::new();
        for bound in &self.rules {
            let mut identity = None;
            let items = self.items.get(bound.span()).unwrap_or_default();
            for item in items.iter().filter(|i| !i.state.at_rest()) {
                let rule = identity
                    .get_or_insert_with(|| bound.rule.identity())
                    .clone();
                out.push(ItemSnapshot {
                    rule,
                    labels: item.labels.clone(),
                    state: item.state.clone(),
                });
            }
        }
        out
    }

    /// Gives saved states back: each applies to its item when the item's series is next bound
    /// (items that already exist take theirs at once). States of rules whose identity changed
    /// are dropped.
    pub fn restore_item_states(&mut self, states: Vec<ItemSnapshot>) {
        let mut pending: HashMap<(String, Labels), ItemState> = states
            .into_iter()
            .map(|s| ((s.rule, s.labels), s.state))
            .collect();
        for bound in &self.rules {
            if pending.is_empty() {
                break;
            }
            let identity = bound.rule.identity();
            for item in self.items.get_mut(bound.span()).unwrap_or_default() {
                if let Some(state) = pending.remove(&(identity.clone(), item.labels.clone())) {
                    item.state = state;
                }
            }
        }
        self.restored.extend(pending);
        // Bind again so the states apply to series that exist now.
        self.generation = None;
    }
}
