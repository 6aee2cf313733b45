//! Transitions in: incidents opened, changed and resolved; routes chosen; the indexes that
//! inhibition and suppression read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::event::{Event, EventKind};
use super::incident::{Incident, IncidentId, ItemKey};
use super::settings::Route;
use super::state::{Dispatcher, Group, Member, Tracked};
use super::store::StoreChange;
use super::timers::{GroupKey, Timer};
use crate::Severity;
use crate::alert::AlertStatus;
use crate::clock::Timestamp;
use crate::eval::Transition;

/// Why a notification is held back.
pub(crate) struct Suppression {
    pub(crate) kind: EventKind,
    pub(crate) reason: String,
}

impl Dispatcher {
    /// A transition from the evaluator (or a synthetic one: the meta-alerts).
    pub(crate) fn on_transition(&mut self, t: Transition, now: Timestamp) {
        self.stats.transitions += 1;
        let item = ItemKey {
            rule: Arc::clone(&t.rule),
            labels: t.labels.clone(),
        };
        let mut e = Event::new(EventKind::Transition, now);
        // The incident it belongs to: the open one, or the one it is about to open.
        e.incident =
            self.open.get(&item).copied().or_else(|| {
                (t.to != Severity::Normal).then_some(IncidentId(self.next_incident + 1))
            });
        e.item = Some(item.to_string());
        e.rule = Some(t.rule.to_string());
        e.severity = Some(t.to);
        e.detail = describe(&t);
        self.emit(e);
        if t.to == Severity::Normal {
            self.resolve(&item, &t, now);
        } else {
            self.fire(item, &t, None, now);
        }
    }

    /// An item above Normal: opens its incident or updates it, routes it, considers recovery.
    pub(crate) fn fire(
        &mut self,
        item: ItemKey,
        t: &Transition,
        meta_channel: Option<String>,
        now: Timestamp,
    ) -> IncidentId {
        let mut labels: BTreeMap<String, String> = t.rule_labels.clone();
        labels.extend(t.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        let (id, lowered) = match self.open.get(&item).copied() {
            None => {
                self.next_incident += 1;
                let id = IncidentId(self.next_incident);
                let inc = Incident {
                    id,
                    fingerprint: item.fingerprint(),
                    item: item.clone(),
                    metric: Arc::clone(&t.metric),
                    labels,
                    annotations: t.annotations.clone(),
                    severity: t.to,
                    peak: t.to,
                    value: t.value,
                    threshold: t.threshold,
                    no_data: t.no_data,
                    flapping: t.flapping,
                    opened_at: t.at,
                    changed_at: t.at,
                    resolved_at: None,
                    changes: 1,
                    ack: None,
                    routes: Vec::new(),
                    actions: Vec::new(),
                    meta_channel,
                    held_back: None,
                };
                self.incidents.insert(
                    id,
                    Tracked {
                        inc,
                        previous: t.from,
                        since: t.since,
                        groups: Vec::new(),
                        attempts: HashMap::new(),
                        inhibit_sources: vec![None; self.config.inhibit.len()],
                    },
                );
                self.open.insert(item.clone(), id);
                self.by_series
                    .entry((Arc::clone(&t.metric), t.labels.clone()))
                    .or_default()
                    .push(id);
                self.stats.incidents_opened += 1;
                let mut e = self.incident_event(EventKind::Opened, id, now);
                e.detail = format!("{} at {}", t.to, value_text(t.value));
                self.emit(e);
                (id, false)
            }
            Some(id) => {
                let Some(tr) = self.incidents.get_mut(&id) else {
                    return id;
                };
                let inc = &mut tr.inc;
                let changed = t.to != inc.severity || t.no_data != inc.no_data;
                let flapping_changed = inc.flapping != t.flapping;
                inc.flapping = t.flapping;
                if !changed {
                    self.save_incident(id);
                    self.stats.deduplicated += 1;
                    let mut e = self.incident_event(EventKind::Deduplicated, id, now);
                    e.detail = if flapping_changed {
                        format!(
                            "flapping {}: nothing to notify",
                            if t.flapping { "started" } else { "ended" }
                        )
                    } else {
                        "severity unchanged: nothing to notify".to_owned()
                    };
                    self.emit(e);
                    return id;
                }
                let rose = t.to > inc.severity;
                let lowered = t.to < inc.severity;
                let cleared_ack = rose && inc.ack.as_ref().is_some_and(|a| !a.sticky);
                if cleared_ack {
                    inc.ack = None;
                }
                inc.severity = t.to;
                inc.peak = inc.peak.max(t.to);
                inc.value = t.value;
                inc.threshold = t.threshold;
                inc.no_data = t.no_data;
                inc.annotations = t.annotations.clone();
                inc.labels = labels;
                inc.changed_at = t.at;
                inc.changes += 1;
                tr.previous = t.from;
                tr.since = t.since;
                if cleared_ack {
                    let mut e = self.incident_event(EventKind::Unacked, id, now);
                    e.detail = format!("acknowledgement cleared: severity rose to {}", t.to);
                    self.emit(e);
                }
                (id, lowered)
            }
        };
        self.update_inhibit_index(id);
        self.save_incident(id);
        self.route_incident(id, now);
        self.consider_recovery(id, now);
        if lowered {
            // It may have been inhibiting lower severities on the same item.
            self.recheck_suppressed(now);
        }
        id
    }

    /// An item back to Normal: resolves its incident and tells the routes that told it fired.
    pub(crate) fn resolve(&mut self, item: &ItemKey, t: &Transition, now: Timestamp) {
        let Some(id) = self.open.remove(item) else {
            return;
        };
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        tr.inc.severity = Severity::Normal;
        tr.inc.resolved_at = Some(t.at);
        tr.inc.annotations = t.annotations.clone();
        tr.inc.value = t.value;
        tr.inc.threshold = t.threshold;
        tr.inc.no_data = false;
        tr.inc.flapping = t.flapping;
        tr.inc.changes += 1;
        tr.previous = t.from;
        tr.since = t.since;
        let metric = Arc::clone(&tr.inc.metric);
        let groups = tr.groups.clone();
        let series = (metric, item.labels.clone());
        if let Some(ids) = self.by_series.get_mut(&series) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_series.remove(&series);
            }
        }
        self.update_inhibit_index(id);
        let mut e = self.incident_event(EventKind::Resolved, id, now);
        e.severity = Some(t.from);
        e.detail = format!("{} → normal", t.from);
        self.emit(e);
        self.save_incident(id);
        for gk in groups {
            if let Some(m) = self
                .groups
                .get_mut(&gk)
                .and_then(|g| g.members.get_mut(&id))
            {
                m.status = AlertStatus::Resolved;
                m.severity = Severity::Normal;
                m.pending = true;
                self.schedule_flush(&gk, now);
            }
        }
        self.recheck_suppressed(now);
        self.close_if_done(id);
    }

    /// Forgets a resolved incident once no group still has to tell about it and no recovery
    /// run refers to it.
    pub(crate) fn close_if_done(&mut self, id: IncidentId) {
        let done = self.incidents.get(&id).is_some_and(|t| {
            !t.inc.is_open() && t.groups.is_empty() && !self.runs.values().any(|r| r.incident == id)
        });
        if done {
            self.save_incident(id);
            self.incidents.remove(&id);
            self.batch.push(StoreChange::IncidentClosed(id));
        }
    }

    /// The routes an alert goes to: in order, the first that matches (and the following ones
    /// while `continue` is set), else the default route.
    pub(crate) fn matching_routes(
        &self,
        rule: &str,
        labels: &BTreeMap<String, String>,
        severity: Severity,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, r) in self.config.routes.iter().enumerate() {
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
                self.config
                    .routes
                    .iter()
                    .position(|r| r.default && r.selector.selects(rule, labels, severity)),
            );
        }
        out
    }

    /// Puts a firing incident's change into the groups of the routes that take it.
    pub(crate) fn route_incident(&mut self, id: IncidentId, now: Timestamp) {
        let Some(tr) = self.incidents.get(&id) else {
            return;
        };
        let inc = &tr.inc;
        let routes = self.matching_routes(&inc.item.rule, &inc.labels, inc.severity);
        let (never_routed, meta) = (tr.groups.is_empty(), inc.meta_channel.is_some());
        if routes.is_empty() {
            if never_routed {
                self.stats.unrouted += 1;
                let mut e = self.incident_event(EventKind::Unrouted, id, now);
                e.detail = "no route takes this alert and there is no default route".into();
                self.emit(e);
                if meta {
                    self.notify_meta_direct(id, now);
                }
            }
            return;
        }
        for r in routes {
            let route = self.config.routes[r].clone();
            self.join_group(id, &route, now);
        }
    }

    /// The group of `route` an incident belongs to.
    pub(crate) fn group_key(route: &Route, inc: &Incident) -> (GroupKey, BTreeMap<String, String>) {
        let mut labels = BTreeMap::new();
        let key = if route.group_by.is_empty() || is_urgent(inc) {
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
        (
            GroupKey {
                route: Arc::from(route.name.as_str()),
                key: Arc::from(key),
            },
            labels,
        )
    }

    fn join_group(&mut self, id: IncidentId, route: &Route, now: Timestamp) {
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        let (gk, labels) = Self::group_key(route, &tr.inc);
        let notified = tr
            .inc
            .route(&route.name)
            .and_then(|r| r.notified)
            .map(|s| (AlertStatus::Firing, s));
        let severity = tr.inc.severity;
        let first = !tr.groups.contains(&gk);
        if first {
            tr.groups.push(gk.clone());
            tr.inc.route_mut(&route.name);
        }
        let urgent = is_urgent(&tr.inc);
        let group = self.groups.entry(gk.clone()).or_insert_with(|| {
            let mut g = Group::new(labels, route.group_by.is_empty() || urgent, now);
            g.urgent = urgent;
            g
        });
        let member = group.members.entry(id).or_insert(Member {
            status: AlertStatus::Firing,
            severity,
            notified,
            pending: false,
            suppressed: None,
        });
        member.status = AlertStatus::Firing;
        member.severity = severity;
        let fresh = member.notified != Some((AlertStatus::Firing, severity));
        member.pending = fresh;
        let flush_due = fresh.then(|| self.schedule_flush(&gk, now)).flatten();
        let waits = flush_due.filter(|at| *at > now && !route.group_by.is_empty());
        let kind = match (fresh, waits) {
            (false, _) => EventKind::Deduplicated,
            (true, Some(_)) => EventKind::Grouped,
            (true, None) => EventKind::Routed,
        };
        let mut e = self.incident_event(kind, id, now);
        e.route = Some(route.name.clone());
        e.detail = match (fresh, waits) {
            (false, _) => format!("route already notified {severity}"),
            (true, Some(at)) => format!("group {} notifies at {at}", gk.key),
            (true, None) if first => format!("group {}", gk.key),
            (true, None) => format!("change to {severity}"),
        };
        if !fresh {
            self.stats.deduplicated += 1;
        }
        self.emit(e);
    }

    /// Sets the group's flush timer (group wait, then group interval); returns when it is due.
    pub(crate) fn schedule_flush(&mut self, gk: &GroupKey, now: Timestamp) -> Option<Timestamp> {
        let route = self
            .route_index(&gk.route)
            .map(|i| &self.config.routes[i])?;
        let g = self.groups.get_mut(gk)?;
        let (wait, interval) = if g.urgent {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (route.group_wait, route.group_interval)
        };
        let due = match g.last_flush {
            None => (g.created_at + wait).max(now),
            Some(last) => (last + interval).max(now),
        };
        if g.flush_at.is_none_or(|f| due < f) {
            g.flush_at = Some(due);
            self.timers.set(due, Timer::Flush(gk.clone()));
        }
        g.flush_at
    }

    /// Keeps the inhibit rules' source counts in step with incident `id`.
    pub(crate) fn update_inhibit_index(&mut self, id: IncidentId) {
        if self.config.inhibit.is_empty() {
            return;
        }
        if self.inhibit_index.len() != self.config.inhibit.len() {
            self.inhibit_index = vec![HashMap::new(); self.config.inhibit.len()];
        }
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        tr.inhibit_sources.resize(self.config.inhibit.len(), None);
        for (i, rule) in self.config.inhibit.iter().enumerate() {
            let inc = &tr.inc;
            let now_source = (inc.is_open()
                && rule
                    .source
                    .selects(&inc.item.rule, &inc.labels, inc.severity))
            .then(|| equal_values(&rule.equal, &inc.labels));
            if tr.inhibit_sources[i] == now_source {
                continue;
            }
            if let Some(old) = tr.inhibit_sources[i].take() {
                let index = &mut self.inhibit_index[i];
                if let Some(n) = index.get_mut(&old) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        index.remove(&old);
                    }
                }
            }
            if let Some(new) = &now_source {
                *self.inhibit_index[i].entry(new.clone()).or_insert(0) += 1;
            }
            tr.inhibit_sources[i] = now_source;
        }
    }

    /// Why incident `id` must not be notified now, if it must not: a silence, a maintenance
    /// window, a higher severity on the same series, or a declared dependency.
    pub(crate) fn suppression(&self, id: IncidentId, now: Timestamp) -> Option<Suppression> {
        let tr = self.incidents.get(&id)?;
        let inc = &tr.inc;
        let (rule, labels, severity) = (&*inc.item.rule, &inc.labels, inc.severity);
        if let Some(s) = self
            .silences
            .values()
            .find(|s| s.silences(now, rule, labels, severity))
        {
            return Some(Suppression {
                kind: EventKind::Silenced,
                reason: format!("silence {} by {} until {}", s.id, s.created_by, s.ends_at),
            });
        }
        if let Some(m) = self
            .config
            .maintenance
            .iter()
            .find(|m| m.window.is_active(now) && m.selector.selects(rule, labels, severity))
        {
            return Some(Suppression {
                kind: EventKind::Silenced,
                reason: format!("maintenance window {}", m.name),
            });
        }
        if let Some(higher) = self
            .by_series
            .get(&(Arc::clone(&inc.metric), inc.item.labels.clone()))
            .into_iter()
            .flatten()
            .filter(|o| **o != id)
            .filter_map(|o| self.incidents.get(o))
            .find(|o| o.inc.is_open() && o.inc.severity > severity)
        {
            return Some(Suppression {
                kind: EventKind::Inhibited,
                reason: format!(
                    "{} is {} on the same series",
                    higher.inc.item.rule, higher.inc.severity
                ),
            });
        }
        for (i, r) in self.config.inhibit.iter().enumerate() {
            if !r.target.selects(rule, labels, severity) {
                continue;
            }
            let values = equal_values(&r.equal, labels);
            let sources = self
                .inhibit_index
                .get(i)
                .and_then(|ix| ix.get(&values))
                .copied()
                .unwrap_or(0);
            let own = u32::from(tr.inhibit_sources.get(i).cloned().flatten() == Some(values));
            if sources > own {
                return Some(Suppression {
                    kind: EventKind::Inhibited,
                    reason: format!("inhibited by a firing source of inhibit rule #{}", i + 1),
                });
            }
        }
        None
    }
}

/// The store's meta-alert is never grouped with others nor kept waiting: it is the one
/// notification that may go out while the store cannot commit, alone.
fn is_urgent(inc: &Incident) -> bool {
    &*inc.item.rule == super::unsaved::STORE_FAILING_RULE && inc.meta_channel.is_none()
}

fn equal_values(equal: &[String], labels: &BTreeMap<String, String>) -> Vec<String> {
    equal
        .iter()
        .map(|l| labels.get(l).cloned().unwrap_or_default())
        .collect()
}

fn value_text(v: Option<f64>) -> String {
    v.map_or_else(|| "no value".to_owned(), |v| format!("{v}"))
}

fn describe(t: &Transition) -> String {
    let mut s = format!("{} → {} at {}", t.from, t.to, value_text(t.value));
    if let Some(th) = t.threshold {
        s.push_str(&format!(" (threshold {th})"));
    }
    if t.no_data {
        s.push_str(", no data");
    }
    if t.flapping {
        s.push_str(", flapping");
    }
    s
}
