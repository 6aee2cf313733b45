//! The routing stage: which routes take an alert (in order, the first that matches and the
//! following ones while `continue` is set, else the default route), and which group of a route
//! an incident belongs to. Routes are found by index or by name in a table built once per
//! configuration, never by a search.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::Severity;
use crate::pipeline::incident::Incident;
use crate::pipeline::settings::Route;
use crate::pipeline::timers::GroupKey;

/// The configured routes.
#[derive(Default)]
pub(crate) struct Routes {
    routes: Vec<Route>,
    /// Each route's name, shared by the groups and records that name it.
    names: Vec<Arc<str>>,
    by_name: HashMap<Arc<str>, usize>,
}

impl Routes {
    pub(crate) fn new(routes: Vec<Route>) -> Routes {
        let names: Vec<Arc<str>> = routes.iter().map(|r| Arc::from(r.name.as_str())).collect();
        let by_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (Arc::clone(n), i))
            .collect();
        Routes {
            routes,
            names,
            by_name,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Route> {
        self.routes.get(i)
    }

    /// The route called `name`.
    pub(crate) fn named(&self, name: &str) -> Option<(usize, &Route)> {
        let i = *self.by_name.get(name)?;
        Some((i, self.routes.get(i)?))
    }

    /// The route's shared name.
    pub(crate) fn name(&self, i: usize) -> Option<&Arc<str>> {
        self.names.get(i)
    }

    /// The routes an alert goes to: in order, the first that matches (and the following ones
    /// while `continue` is set), else the default route.
    pub(crate) fn matching(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if r.default || !r.selector.selects(rule, labels, severity) {
                continue;
            }
            out.push(i);
            if !r.continue_matching {
                break;
            }
        }
        if out.is_empty() {
            out.extend(
                self.routes
                    .iter()
                    .position(|r| r.default && r.selector.selects(rule, labels, severity)),
            );
        }
        out
    }

    /// The group of route `i` that incident `inc` belongs to, and the group's labels. Every
    /// item alone without `group_by`; by every label with `group_by = ["..."]`; the
    /// pseudo-label `rule` is the rule's name. The store's meta-alert is always alone.
    pub(crate) fn group_key(
        &self,
        i: usize,
        inc: &Incident,
        alone: bool,
    ) -> Option<(GroupKey, BTreeMap<String, String>)> {
        let route = self.routes.get(i)?;
        let mut labels = BTreeMap::new();
        let key = if route.group_by.is_empty() || alone {
            inc.item.to_string()
        } else if route.groups_by_every_label() {
            labels.clone_from(&inc.labels);
            labels.insert("rule".to_owned(), inc.item.rule.to_string());
            inc.item.to_string()
        } else {
            let mut parts = Vec::with_capacity(route.group_by.len());
            for l in &route.group_by {
                let v = if l == "rule" {
                    inc.item.rule.to_string()
                } else {
                    inc.labels.get(l).cloned().unwrap_or_default()
                };
                parts.push(format!("{l}={v}"));
                labels.insert(l.clone(), v);
            }
            parts.join(",")
        };
        Some((
            GroupKey {
                route: Arc::clone(&self.names[i]),
                key: Arc::from(key),
            },
            labels,
        ))
    }
}
