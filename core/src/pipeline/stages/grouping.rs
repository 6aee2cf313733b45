//! The grouping stage: alerts of a route are gathered into groups that notify together. A
//! group notifies after its wait, at most once per interval about new changes, tells the
//! resolve of what it told fired, holds back what is suppressed (and tells it when that ends),
//! and keeps outside its route's schedule. Repeats and escalation are in `repeats.rs`.
//!
//! What a route told about an incident is the one record on the incident (`RouteRecord`);
//! a group keeps only what it still has to tell (a pending change, a member held back).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::Severity;
use crate::alert::AlertStatus;
use crate::clock::Timestamp;
use crate::pipeline::effects::{Effect, Effects, Notify, Told};
use crate::pipeline::event::EventKind;
use crate::pipeline::incident::{Incident, IncidentId};
use crate::pipeline::notification::{
    DigestPart, NotificationKind, digest_alert, item_alert, set_key,
};
use crate::pipeline::settings::{OutsideSchedule, Route, tier_channels};
use crate::pipeline::timers::{GroupKey, Timer};

use super::view::View;

/// One item in a group.
pub(crate) struct Member {
    pub(crate) status: AlertStatus,
    pub(crate) severity: Severity,
    /// Changed since the group last told.
    pub(crate) pending: bool,
    /// Why it is held back, if it is.
    pub(crate) suppressed: Option<String>,
}

/// Alerts of one route that are notified together.
pub(crate) struct Group {
    pub(crate) labels: BTreeMap<String, String>,
    /// Each item alone (the route does not group).
    pub(crate) per_item: bool,
    /// Notifies without waiting: the store's meta-alert, alone in its group.
    pub(crate) urgent: bool,
    pub(crate) members: BTreeMap<IncidentId, Member>,
    pub(crate) created_at: Timestamp,
    pub(crate) last_flush: Option<Timestamp>,
    pub(crate) flush_at: Option<Timestamp>,
    pub(crate) repeat_at: Option<Timestamp>,
    /// A repeat came due while what it would repeat was held back: it goes out when that ends.
    pub(crate) repeat_held: bool,
    /// Notifications sent (numbers digests in their keys) and repeats.
    pub(crate) sends: u32,
    pub(crate) repeats: u32,
}

/// The groups of every route.
#[derive(Default)]
pub(crate) struct Grouping {
    pub(crate) groups: HashMap<GroupKey, Group>,
    /// The groups each incident is a member of.
    pub(crate) member_of: HashMap<IncidentId, Vec<GroupKey>>,
    /// Groups with members (or a repeat) held back, looked at again when a suppression ends.
    pub(crate) suppressed: HashSet<GroupKey>,
    /// Escalations that came due while their incident was held back.
    pub(crate) held_escalations: HashSet<(IncidentId, Arc<str>)>,
}

/// The store's meta-alert is never grouped with others nor kept waiting: it is the one
/// notification that may go out while the store cannot commit, alone.
pub(crate) fn is_urgent(inc: &Incident) -> bool {
    &*inc.item.rule == crate::pipeline::STORE_FAILING_RULE && inc.meta_channel.is_none()
}

impl Grouping {
    /// Groups waiting or notified.
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }

    /// True if incident `id` is in a group (a group still has to tell about it).
    pub(crate) fn has(&self, id: IncidentId) -> bool {
        self.member_of.get(&id).is_some_and(|g| !g.is_empty())
    }

    /// Puts a firing incident's change into its group of route `r`.
    pub(crate) fn join(&mut self, id: IncidentId, r: usize, view: &View<'_>, fx: &mut Effects) {
        let (Some(inc), Some(route)) = (view.incidents.incident(id), view.routes.get(r)) else {
            return;
        };
        let now = view.now;
        let urgent = is_urgent(inc);
        let Some((gk, labels)) = view.routes.group_key(r, inc, urgent) else {
            return;
        };
        let severity = inc.severity;
        let memberships = self.member_of.entry(id).or_default();
        let first = !memberships.contains(&gk);
        if first {
            memberships.push(gk.clone());
            fx.push(Effect::Told(Told::Joined(id, Arc::clone(&gk.route))));
        }
        let group = self.groups.entry(gk.clone()).or_insert_with(|| Group {
            labels,
            per_item: route.group_by.is_empty() || urgent,
            urgent,
            members: BTreeMap::new(),
            created_at: now,
            last_flush: None,
            flush_at: None,
            repeat_at: None,
            repeat_held: false,
            sends: 0,
            repeats: 0,
        });
        let member = group.members.entry(id).or_insert(Member {
            status: AlertStatus::Firing,
            severity,
            pending: false,
            suppressed: None,
        });
        member.status = AlertStatus::Firing;
        member.severity = severity;
        let fresh = view.told(id, &route.name) != Some(severity);
        member.pending = fresh;
        let flush_due = fresh.then(|| self.schedule_flush(&gk, view, fx)).flatten();
        let waits = flush_due.filter(|at| *at > now && !route.group_by.is_empty());
        let kind = match (fresh, waits) {
            (false, _) => EventKind::Deduplicated,
            (true, Some(_)) => EventKind::Grouped,
            (true, None) => EventKind::Routed,
        };
        let mut e = view.incidents.event(kind, id, now);
        e.route = Some(route.name.clone());
        e.detail = match (fresh, waits) {
            (false, _) => format!("route already notified {severity}"),
            (true, Some(at)) => format!("group {} notifies at {at}", gk.key),
            (true, None) if first => format!("group {}", gk.key),
            (true, None) => format!("change to {severity}"),
        };
        fx.event(e);
    }

    /// An incident resolved: each group it is in tells the resolve at its next flush.
    pub(crate) fn resolved(&mut self, id: IncidentId, view: &View<'_>, fx: &mut Effects) {
        for gk in self.member_of.get(&id).cloned().unwrap_or_default() {
            if let Some(m) = self
                .groups
                .get_mut(&gk)
                .and_then(|g| g.members.get_mut(&id))
            {
                m.status = AlertStatus::Resolved;
                m.severity = Severity::Normal;
                m.pending = true;
                self.schedule_flush(&gk, view, fx);
            }
        }
    }

    /// Sets the group's flush timer (group wait, then group interval); returns when it is due.
    pub(crate) fn schedule_flush(
        &mut self,
        gk: &GroupKey,
        view: &View<'_>,
        fx: &mut Effects,
    ) -> Option<Timestamp> {
        let (_, route) = view.routes.named(&gk.route)?;
        let g = self.groups.get_mut(gk)?;
        let (wait, interval) = if g.urgent {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (route.group_wait, route.group_interval)
        };
        let due = match g.last_flush {
            None => (g.created_at + wait).max(view.now),
            Some(last) => (last + interval).max(view.now),
        };
        if g.flush_at.is_none_or(|f| due < f) {
            g.flush_at = Some(due);
            fx.timer(due, Timer::Flush(gk.clone()));
        }
        g.flush_at
    }

    /// The groups of a resolved incident tell its resolve as soon as their timing allows (a
    /// recovery run it waited for ended).
    pub(crate) fn release_resolve(&mut self, id: IncidentId, view: &View<'_>, fx: &mut Effects) {
        if view.incidents.incident(id).is_some_and(Incident::is_open) {
            return;
        }
        for gk in self.member_of.get(&id).cloned().unwrap_or_default() {
            self.schedule_flush(&gk, view, fx);
        }
    }

    /// A group's flush timer came due.
    pub(crate) fn on_flush_timer(
        &mut self,
        gk: &GroupKey,
        at: Timestamp,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        if g.flush_at != Some(at) {
            return; // superseded by an earlier flush
        }
        g.flush_at = None;
        self.flush(gk, view, fx);
    }

    /// At stop: every group with pending changes notifies now, without waiting.
    pub(crate) fn flush_all(&mut self, view: &View<'_>, fx: &mut Effects) {
        let keys: Vec<GroupKey> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.members
                    .values()
                    .any(|m| m.pending && m.suppressed.is_none())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for gk in keys {
            self.flush(&gk, view, fx);
        }
    }

    /// Tells the route's channels what changed in the group.
    pub(crate) fn flush(&mut self, gk: &GroupKey, view: &View<'_>, fx: &mut Effects) {
        let now = view.now;
        let Some((r, route)) = view.routes.named(&gk.route) else {
            self.drop_group(gk, fx);
            return;
        };
        if !self.groups.contains_key(gk) {
            return;
        }
        if let Some(schedule) = &route.schedule
            && !schedule.is_active(now)
        {
            self.outside_schedule(gk, route, schedule.next_change(now), view, fx);
            return;
        }
        self.absorb_blips(gk, route, view, fx);
        let ids: Vec<IncidentId> = self.groups[gk]
            .members
            .iter()
            .filter(|(_, m)| m.pending)
            .map(|(id, _)| *id)
            .collect();
        let mut send: Vec<IncidentId> = Vec::new();
        let mut gone: Vec<IncidentId> = Vec::new();
        let mut recheck = false;
        for id in ids {
            let held = view.held(id);
            let told = view.told(id, &route.name);
            let Some(m) = self.groups.get_mut(gk).and_then(|g| g.members.get_mut(&id)) else {
                continue;
            };
            if m.status == AlertStatus::Resolved {
                if view.recovery.holds_resolve(id) {
                    // A recovery run is still out: its outcome belongs in the resolve.
                    continue;
                }
                m.pending = false;
                if told.is_some() && route.send_resolved {
                    send.push(id);
                } else {
                    gone.push(id);
                }
                continue;
            }
            match held {
                Some(s) => {
                    let new = m.suppressed.as_deref() != Some(s.reason.as_str());
                    m.suppressed = Some(s.reason.clone());
                    self.suppressed.insert(gk.clone());
                    if new {
                        let mut e = view.incidents.event(s.kind, id, now);
                        e.route = Some(route.name.clone());
                        e.detail = s.reason;
                        fx.event(e);
                    }
                    recheck = true;
                }
                None => {
                    m.suppressed = None;
                    if told == Some(m.severity) {
                        m.pending = false;
                    } else {
                        send.push(id);
                    }
                }
            }
        }
        if recheck {
            fx.push(Effect::ArmRecheck);
        }
        for id in gone {
            self.leave(gk, id, fx);
        }
        let sent = !send.is_empty();
        if sent {
            self.send(gk, r, route, &send, view, fx);
        }
        self.finish(gk, route, sent, view, fx);
    }

    /// An item that resolved and fired again between two flushes is no news to the group:
    /// the old incident leaves without a resolve, and the new one is taken as told at the
    /// severity the old one was told (so only a different severity is notified).
    fn absorb_blips(&mut self, gk: &GroupKey, route: &Route, view: &View<'_>, fx: &mut Effects) {
        let Some(g) = self.groups.get(gk) else {
            return;
        };
        let mut pairs = Vec::new();
        for (old, m) in &g.members {
            if m.status != AlertStatus::Resolved || !m.pending {
                continue;
            }
            let (Some(old_inc), Some(told)) =
                (view.incidents.incident(*old), view.told(*old, &route.name))
            else {
                continue;
            };
            let Some(new) = view.incidents.open_of(&old_inc.item) else {
                continue;
            };
            if g.members.get(&new).is_some_and(|n| n.pending) {
                pairs.push((*old, new, told));
            }
        }
        for (old, new, told) in pairs {
            let severity = {
                let Some(g) = self.groups.get_mut(gk) else {
                    return;
                };
                let Some(n) = g.members.get(&new) else {
                    continue;
                };
                n.severity
            };
            let mut e = view.incidents.event(EventKind::Deduplicated, old, view.now);
            e.route = Some(route.name.clone());
            e.detail = format!(
                "resolved and fired again (incident {new}) before the group told it: no resolve"
            );
            fx.event(e);
            self.leave(gk, old, fx);
            if severity == told {
                if let Some(n) = self
                    .groups
                    .get_mut(gk)
                    .and_then(|g| g.members.get_mut(&new))
                {
                    n.pending = false;
                }
                fx.push(Effect::Told(Told::Notified(
                    new,
                    Arc::clone(&gk.route),
                    view.now,
                )));
                let mut e = view.incidents.event(EventKind::Deduplicated, new, view.now);
                e.route = Some(route.name.clone());
                e.detail = format!("route already notified {severity} (incident {old})");
                fx.event(e);
            }
        }
    }

    /// Outside the route's schedule: defer what is pending to the next window, or drop it.
    fn outside_schedule(
        &mut self,
        gk: &GroupKey,
        route: &Route,
        next: Option<Timestamp>,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        // A resolve of something this route never told is simply forgotten.
        let untold: Vec<IncidentId> = self.groups[gk]
            .members
            .iter()
            .filter(|(id, m)| {
                m.pending
                    && m.status == AlertStatus::Resolved
                    && view.told(**id, &route.name).is_none()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in untold {
            self.leave(gk, id, fx);
        }
        let Some(g) = self.groups.get(gk) else {
            return;
        };
        let pending: Vec<IncidentId> = g
            .members
            .iter()
            .filter(|(_, m)| m.pending)
            .map(|(id, _)| *id)
            .collect();
        if pending.is_empty() {
            self.finish(gk, route, false, view, fx);
            return;
        }
        let defer = route.outside_schedule == OutsideSchedule::Defer;
        if let (true, Some(next)) = (defer, next) {
            if let Some(g) = self.groups.get_mut(gk) {
                g.flush_at = Some(next);
            }
            fx.timer(next, Timer::Flush(gk.clone()));
            for id in pending {
                let mut e = view.incidents.event(EventKind::Deferred, id, now);
                e.route = Some(route.name.clone());
                e.detail = format!("outside the route's schedule; next window at {next}");
                fx.event(e);
            }
            return;
        }
        for id in pending {
            let mut e = view.incidents.event(EventKind::Dropped, id, now);
            e.route = Some(route.name.clone());
            e.detail = "outside the route's schedule (outside_schedule = \"drop\")".into();
            fx.event(e);
            let resolved = match self.groups.get_mut(gk).and_then(|g| g.members.get_mut(&id)) {
                Some(m) => {
                    m.pending = false;
                    m.status == AlertStatus::Resolved
                }
                None => false,
            };
            if resolved {
                self.leave(gk, id, fx);
            }
        }
        self.finish(gk, route, false, view, fx);
    }

    /// Builds and sends the group's notification about `send` (the members that changed), and
    /// the resolve of each to the escalation tiers that were told it fired.
    fn send(
        &mut self,
        gk: &GroupKey,
        r: usize,
        route: &Route,
        send: &[IncidentId],
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        let Some(g) = self.groups.get(gk) else {
            return;
        };
        let visible: Vec<IncidentId> = g
            .members
            .iter()
            .filter(|(id, m)| {
                send.contains(id) || (m.status == AlertStatus::Firing && m.suppressed.is_none())
            })
            .map(|(id, _)| *id)
            .collect();
        let (alert, kind) = if g.per_item || visible.len() == 1 {
            let id = send[0];
            let Some(tr) = view.incidents.get(id) else {
                return;
            };
            let m = &g.members[&id];
            let previous = view.told(id, &route.name).unwrap_or(tr.previous);
            let mut alert = item_alert(&tr.inc, m.status, previous, tr.since);
            let what = format!("{}:{}:{}", id, route.name, tr.inc.changes);
            set_key(&mut alert, &what, view.identity);
            (alert, NotificationKind::Change)
        } else {
            let parts: Vec<DigestPart<'_>> = visible
                .iter()
                .filter_map(|id| {
                    let m = g.members.get(id)?;
                    Some(DigestPart {
                        incident: view.incidents.incident(*id)?,
                        status: m.status,
                        severity: m.severity,
                    })
                })
                .collect();
            let previous = g
                .members
                .keys()
                .filter_map(|id| view.told(*id, &route.name))
                .max()
                .unwrap_or(Severity::Normal);
            let mut alert = digest_alert(&g.labels, &route.name, &parts, previous, now);
            // The notification counter is stored, so the readable part is unique across
            // restarts too (the key as a whole is unique anyway).
            let what = format!("g:{}:{}:n{}", route.name, gk.key, g.sends + 1);
            set_key(&mut alert, &what, view.identity);
            (alert, NotificationKind::Digest)
        };
        let resolved: Vec<IncidentId> = send
            .iter()
            .copied()
            .filter(|id| {
                g.members
                    .get(id)
                    .is_some_and(|m| m.status == AlertStatus::Resolved)
            })
            .collect();
        if let Some(g) = self.groups.get_mut(gk) {
            g.last_flush = Some(now);
            g.sends += 1;
            for id in send {
                if let Some(m) = g.members.get_mut(id) {
                    m.pending = false;
                }
            }
        }
        for id in send {
            fx.push(Effect::Told(Told::Notified(
                *id,
                Arc::clone(&gk.route),
                now,
            )));
            if view.incidents.incident(*id).is_some_and(Incident::is_open) {
                self.arm_escalation(*id, r, Some(now), view, fx);
            }
        }
        fx.push(Effect::Notify(Box::new(Notify {
            alert,
            kind,
            route: Some(Arc::clone(&gk.route)),
            channels: route.channels.clone(),
            recipients: route.recipients.clone(),
            incidents: visible,
            tried: Vec::new(),
        })));
        for id in &resolved {
            tell_tiers_resolved(*id, route, &gk.route, view, fx);
            self.leave(gk, *id, fx);
        }
    }

    /// After a flush: removes an empty group, or arms its repeat: an interval after the last
    /// notification (a notification moves it), while something it told fired.
    fn finish(
        &mut self,
        gk: &GroupKey,
        route: &Route,
        sent: bool,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        if g.members.is_empty() {
            self.drop_group(gk, fx);
            return;
        }
        // Something it told still fires (told at an earlier severity, or just now).
        let firing_told = g.members.iter().any(|(id, m)| {
            m.status == AlertStatus::Firing && (!m.pending || view.told(*id, &route.name).is_some())
        });
        let Some(every) = route.repeat_interval.filter(|_| firing_told) else {
            return;
        };
        if sent || g.repeat_at.is_none() {
            let at = g.last_flush.unwrap_or(now) + every;
            g.repeat_at = Some(at);
            g.repeat_held = false;
            fx.timer(at, Timer::Repeat(gk.clone()));
        }
    }

    pub(crate) fn leave(&mut self, gk: &GroupKey, id: IncidentId, fx: &mut Effects) {
        if let Some(g) = self.groups.get_mut(gk) {
            g.members.remove(&id);
        }
        if let Some(m) = self.member_of.get_mut(&id) {
            m.retain(|k| k != gk);
            if m.is_empty() {
                self.member_of.remove(&id);
            }
        }
        fx.push(Effect::MaybeClose(id));
    }

    pub(crate) fn drop_group(&mut self, gk: &GroupKey, fx: &mut Effects) {
        let Some(g) = self.groups.remove(gk) else {
            return;
        };
        self.suppressed.remove(gk);
        for id in g.members.keys() {
            if let Some(m) = self.member_of.get_mut(id) {
                m.retain(|k| k != gk);
                if m.is_empty() {
                    self.member_of.remove(id);
                }
            }
            fx.push(Effect::MaybeClose(*id));
        }
    }
}

/// The resolve of incident `id` to each escalation tier of `route` that was told it fired.
fn tell_tiers_resolved(
    id: IncidentId,
    route: &Route,
    name: &Arc<str>,
    view: &View<'_>,
    fx: &mut Effects,
) {
    let Some(tr) = view.incidents.get(id) else {
        return;
    };
    let told = tr.inc.route(&route.name).map_or(0, |r| r.escalated);
    for (n, tier) in route.escalation.iter().enumerate().take(told) {
        let previous = view.told(id, &route.name).unwrap_or(tr.previous);
        let mut alert = item_alert(&tr.inc, AlertStatus::Resolved, previous, tr.since);
        let what = format!("{}:{}:{}:e{}", id, route.name, tr.inc.changes, n + 1);
        set_key(&mut alert, &what, view.identity);
        fx.push(Effect::Notify(Box::new(Notify {
            alert,
            kind: NotificationKind::Escalation,
            route: Some(Arc::clone(name)),
            channels: tier_channels(route, tier),
            recipients: tier.recipients.clone(),
            incidents: vec![id],
            tried: Vec::new(),
        })));
    }
}
