//! Carrying item states across a restart: the evaluator hands out the state of every item that
//! is not at rest, and takes such states back before its first sweep, so a hold in progress,
//! the occurrences counted so far and the severity last reported resume where they were.
//!
//! After a crash the saved states may be older than what the pipeline holds (a checkpoint
//! every few seconds, incidents at every step), or newer (a checkpoint taken after a
//! transition the pipeline never committed). [`Evaluator::restore_reconciled`] makes them
//! agree: the pipeline's open incidents are the truth of what was told, and the first
//! evaluation of each item reports whatever differs from it, once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Evaluator;
use super::evaluator::Item;
use super::state::ItemState;
use super::transition::{Told, Transition};
use crate::Severity;
use crate::clock::Timestamp;
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

    /// Gives saved states back as they are: each applies to its item when the item's series is
    /// next bound (items that already exist take theirs at once). States of rules whose
    /// identity changed are dropped. After a crash, use
    /// [`restore_reconciled`](Self::restore_reconciled), which also makes them agree with the
    /// open incidents.
    pub fn restore_item_states(&mut self, states: Vec<ItemSnapshot>) {
        let pending: HashMap<(String, Labels), ItemState> = states
            .into_iter()
            .map(|s| ((s.rule, s.labels), s.state))
            .collect();
        self.give_back(pending);
    }

    /// Gives saved states back after a restart and makes them agree with `open`, the items
    /// the pipeline holds an open incident for (its store is the truth of what was told):
    ///
    /// - an item with an open incident is taken to have been reported at the incident's
    ///   severity: its first evaluation reports a resolve if it is Normal now, one change if
    ///   its severity differs, and nothing if it still fires at that severity. Its levels come
    ///   from the saved state when that is at least as recent as the incident, otherwise from
    ///   the incident (every level up to its severity active: holds in progress restart);
    /// - an item whose saved state says it was reported but that has no open incident (the
    ///   transition never reached the store) is reported afresh;
    /// - an open incident of a rule that no longer exists is reported resolved at once;
    /// - a saved item whose series is not recorded again within `grace` is given up: reported
    ///   resolved if it had been reported (as when a series is removed).
    pub fn restore_reconciled(
        &mut self,
        states: Vec<ItemSnapshot>,
        open: Vec<Told>,
        grace: Duration,
    ) {
        let now = self.clock().now();
        // Rule name → (identity, index).
        let rules: HashMap<Arc<str>, (String, usize)> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, b)| (Arc::clone(b.rule.shared_name()), (b.rule.identity(), i)))
            .collect();
        let by_identity: HashMap<&str, usize> =
            rules.values().map(|(id, i)| (id.as_str(), *i)).collect();
        let mut told: HashMap<(Arc<str>, Labels), Told> = HashMap::new();
        for t in open {
            if rules.contains_key(&t.rule) {
                told.insert((Arc::clone(&t.rule), t.labels.clone()), t);
            } else {
                self.outbox.emit(gone_rule_resolve(t, now));
            }
        }
        let mut pending: HashMap<(String, Labels), ItemState> = HashMap::new();
        for s in states {
            let Some(&r) = by_identity.get(s.rule.as_str()) else {
                continue; // the rule changed: its state does not apply
            };
            let rule = &self.rules[r].rule;
            let t = told.remove(&(Arc::clone(rule.shared_name()), s.labels.clone()));
            let mut state = s.state;
            state.reconcile(rule, t.as_ref(), true);
            pending.insert((s.rule, s.labels), state);
        }
        for ((name, labels), t) in told {
            let Some((identity, r)) = rules.get(&name) else {
                continue;
            };
            let mut state = ItemState::new(now);
            state.reconcile(&self.rules[*r].rule, Some(&t), false);
            pending.insert((identity.clone(), labels), state);
        }
        self.restored.until = Some(now + grace);
        self.give_back(pending);
    }

    /// Applies `pending` to the items that exist and keeps the rest for when their series are
    /// bound.
    fn give_back(&mut self, mut pending: HashMap<(String, Labels), ItemState>) {
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
        self.restored.states.extend(pending);
        // Bind again so the states apply to series that exist now.
        self.generation = None;
    }

    /// Past the grace period, gives up the saved states whose series never came back: an item
    /// that had been reported is reported resolved.
    pub(super) fn expire_restored(&mut self, now: Timestamp) {
        if self.restored.until.is_none_or(|u| now < u) {
            return;
        }
        self.restored.until = None;
        let states = std::mem::take(&mut self.restored.states);
        if states.is_empty() {
            return;
        }
        let by_identity: HashMap<String, usize> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, b)| (b.rule.identity(), i))
            .collect();
        for ((identity, labels), state) in states {
            let Some(&r) = by_identity.get(&identity) else {
                continue;
            };
            let mut item = Item::new(labels, super::evaluator::index_u32(r), now);
            item.state = state;
            if let Some(change) = item.state.resolve(now) {
                let mut t = self.rules[r].transition(&item, change, &self.registry);
                t.annotations.insert(
                    "resolved_because".to_owned(),
                    "its series was not recorded again after the restart".to_owned(),
                );
                self.outbox.emit(t);
            }
        }
    }
}

/// The resolve of an open incident whose rule is no longer configured.
fn gone_rule_resolve(t: Told, now: Timestamp) -> Transition {
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(
        "summary".to_owned(),
        format!("rule {} is no longer configured", t.rule),
    );
    annotations.insert(
        "resolved_because".to_owned(),
        "the rule was removed while vigilo was stopped".to_owned(),
    );
    Transition {
        rule: t.rule,
        metric: t.metric,
        labels: t.labels,
        rule_labels: std::collections::BTreeMap::new(),
        from: t.severity,
        to: Severity::Normal,
        value: None,
        threshold: None,
        since: t.at,
        at: now,
        no_data: false,
        flapping: false,
        annotations,
    }
}
