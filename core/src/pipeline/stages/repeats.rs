//! The grouping stage's clocks: repeats (while something a group told fires unacknowledged),
//! escalation tiers (when an incident stays unacknowledged), looking again at what a
//! suppression held when it ends, and rebuilding groups and their clocks from the incidents
//! after a restart or a reload.

use std::sync::Arc;
use std::time::Duration;

use crate::Severity;
use crate::alert::AlertStatus;
use crate::clock::Timestamp;
use crate::pipeline::effects::{Effect, Effects, Notify, Told};
use crate::pipeline::event::EventKind;
use crate::pipeline::incident::IncidentId;
use crate::pipeline::notification::{
    DigestPart, NotificationKind, digest_alert, item_alert, set_key,
};
use crate::pipeline::settings::{Route, tier_channels};
use crate::pipeline::timers::{GroupKey, Timer};

use super::grouping::{Group, Grouping, Member, is_urgent};
use super::view::View;

impl Grouping {
    /// A group's repeat came due: tell again what still fires, unacknowledged. What a
    /// suppression holds is repeated when it ends.
    pub(crate) fn on_repeat_timer(
        &mut self,
        gk: &GroupKey,
        at: Timestamp,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        let Some((_, route)) = view.routes.named(&gk.route) else {
            return;
        };
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        if g.repeat_at != Some(at) {
            return;
        }
        g.repeat_at = None;
        let Some(every) = route.repeat_interval else {
            return;
        };
        if let Some(s) = &route.schedule
            && !s.is_active(now)
        {
            if let Some(next) = s.next_change(now) {
                g.repeat_at = Some(next);
                fx.timer(next, Timer::Repeat(gk.clone()));
            }
            return;
        }
        let (any_firing, held) = self.repeat_now(gk, route, view, fx);
        if let Some(g) = self.groups.get_mut(gk) {
            if held {
                g.repeat_held = true;
                self.suppressed.insert(gk.clone());
                fx.push(Effect::ArmRecheck);
            } else if any_firing {
                let next = now + every;
                g.repeat_at = Some(next);
                fx.timer(next, Timer::Repeat(gk.clone()));
            }
        }
    }

    /// Repeats what the group told and still fires, unacknowledged and not held back; says
    /// whether anything told still fires and whether something was held back instead.
    fn repeat_now(
        &mut self,
        gk: &GroupKey,
        route: &Route,
        view: &View<'_>,
        fx: &mut Effects,
    ) -> (bool, bool) {
        let now = view.now;
        let Some(g) = self.groups.get(gk) else {
            return (false, false);
        };
        let candidates: Vec<IncidentId> = g
            .members
            .iter()
            .filter(|(id, m)| {
                m.status == AlertStatus::Firing && view.told(**id, &route.name).is_some()
            })
            .map(|(id, _)| *id)
            .collect();
        let due: Vec<IncidentId> = candidates
            .iter()
            .copied()
            .filter(|id| {
                view.incidents.incident(*id).is_some_and(|i| {
                    !i.is_acked(now) && route.selector.selects(&i.item.rule, &i.labels, i.severity)
                })
            })
            .collect();
        let (held, eligible): (Vec<IncidentId>, Vec<IncidentId>) =
            due.into_iter().partition(|id| view.held(*id).is_some());
        if !eligible.is_empty() {
            self.send_repeat(gk, route, &eligible, view, fx);
        }
        (
            !candidates.is_empty(),
            eligible.is_empty() && !held.is_empty(),
        )
    }

    fn send_repeat(
        &mut self,
        gk: &GroupKey,
        route: &Route,
        ids: &[IncidentId],
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        g.repeats += 1;
        let n = g.repeats;
        let g = &self.groups[gk];
        let alert = if g.per_item || ids.len() == 1 {
            let Some(tr) = view.incidents.get(ids[0]) else {
                return;
            };
            let mut alert = item_alert(
                &tr.inc,
                AlertStatus::Firing,
                tr.inc.severity,
                tr.inc.changed_at,
            );
            let what = format!("{}:{}:{}:r{n}", ids[0], route.name, tr.inc.changes);
            set_key(&mut alert, &what, view.identity);
            alert
        } else {
            let parts: Vec<DigestPart<'_>> = ids
                .iter()
                .filter_map(|id| {
                    Some(DigestPart {
                        incident: view.incidents.incident(*id)?,
                        status: AlertStatus::Firing,
                        severity: g.members.get(id)?.severity,
                    })
                })
                .collect();
            let worst = parts.iter().map(|p| p.severity).max().unwrap_or_default();
            let mut alert = digest_alert(&g.labels, &route.name, &parts, worst, now);
            let what = format!("g:{}:{}:r{n}", route.name, gk.key);
            set_key(&mut alert, &what, view.identity);
            alert
        };
        for id in ids {
            let mut e = view.incidents.event(EventKind::Repeated, *id, now);
            e.route = Some(route.name.clone());
            e.detail = format!("repeat #{n}: still firing, not acknowledged");
            fx.event(e);
            fx.push(Effect::Told(Told::Repeated(
                *id,
                Arc::clone(&gk.route),
                now,
            )));
        }
        fx.push(Effect::Notify(Box::new(Notify {
            alert,
            kind: NotificationKind::Repeat,
            route: Some(Arc::clone(&gk.route)),
            channels: route.channels.clone(),
            recipients: route.recipients.clone(),
            incidents: ids.to_vec(),
            tried: Vec::new(),
        })));
    }

    /// Sets the timer of the next escalation tier of incident `id` on route `r`, counted from
    /// the route's first notification of it (`first`, when that was just now and not yet on
    /// its record).
    pub(crate) fn arm_escalation(
        &self,
        id: IncidentId,
        r: usize,
        first: Option<Timestamp>,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let (Some(route), Some(name)) = (view.routes.get(r), view.routes.name(r)) else {
            return;
        };
        let Some(inc) = view.incidents.incident(id) else {
            return;
        };
        let record = inc.route(&route.name);
        let (Some(first), Some(tier)) = (
            record.and_then(|r| r.first_notified_at).or(first),
            route.escalation.get(record.map_or(0, |r| r.escalated)),
        ) else {
            return;
        };
        let due = (first + tier.after).max(view.now);
        fx.timer(due, Timer::Escalate(id, Arc::clone(name)));
    }

    /// An escalation timer came due: if nobody acknowledged, tell the next tier. One that
    /// comes due while the incident is held back goes out when that ends.
    pub(crate) fn on_escalate(
        &mut self,
        id: IncidentId,
        route_name: &Arc<str>,
        view: &View<'_>,
        fx: &mut Effects,
    ) {
        let now = view.now;
        let Some((_, route)) = view.routes.named(route_name) else {
            return;
        };
        let Some(tr) = view.incidents.get(id) else {
            return;
        };
        if !tr.inc.is_open() || tr.inc.is_acked(now) {
            return; // an ack's expiry arms it again
        }
        let Some(record) = tr.inc.route(&route.name) else {
            return;
        };
        let tier_index = record.escalated;
        let (Some(first), Some(tier)) =
            (record.first_notified_at, route.escalation.get(tier_index))
        else {
            return;
        };
        if first + tier.after > now {
            return; // stale: a newer timer is set
        }
        if view.held(id).is_some() {
            self.held_escalations.insert((id, Arc::clone(route_name)));
            fx.push(Effect::ArmRecheck);
            return;
        }
        let waited = now.since(first);
        let mut alert = item_alert(
            &tr.inc,
            AlertStatus::Firing,
            tr.inc.severity,
            tr.inc.changed_at,
        );
        alert.annotations.insert(
            "escalation".to_owned(),
            format!(
                "not acknowledged after {}: tier {} of {}",
                crate::duration::format_duration(Duration::from_secs(waited.as_secs())),
                tier_index + 1,
                route.escalation.len()
            ),
        );
        let what = format!("{}:{}:e{}", id, route.name, tier_index + 1);
        set_key(&mut alert, &what, view.identity);
        fx.push(Effect::Told(Told::Escalated(
            id,
            Arc::clone(route_name),
            tier_index + 1,
        )));
        let mut e = view.incidents.event(EventKind::Escalated, id, now);
        e.route = Some(route.name.clone());
        e.detail = format!(
            "tier {} ({}) after {}",
            tier_index + 1,
            tier.recipients.join(", "),
            crate::duration::format_duration(Duration::from_secs(waited.as_secs()))
        );
        fx.event(e);
        fx.push(Effect::Notify(Box::new(Notify {
            alert,
            kind: NotificationKind::Escalation,
            route: Some(Arc::clone(route_name)),
            channels: tier_channels(route, tier),
            recipients: tier.recipients.clone(),
            incidents: vec![id],
            tried: Vec::new(),
        })));
        // The next tier, from the same first notification.
        if let Some(next) = route.escalation.get(tier_index + 1) {
            let due = (first + next.after).max(now);
            fx.timer(due, Timer::Escalate(id, Arc::clone(route_name)));
        }
    }

    /// Escalation resumes where it stopped for every route that told incident `id` (an
    /// acknowledgement went).
    pub(crate) fn resume_escalation(&self, id: IncidentId, view: &View<'_>, fx: &mut Effects) {
        let Some(inc) = view.incidents.incident(id) else {
            return;
        };
        for record in &inc.routes {
            if let Some((r, _)) = view.routes.named(&record.route) {
                self.arm_escalation(id, r, None, view, fx);
            }
        }
    }

    /// Looks again at groups whose members, repeats or escalations were held back (a silence
    /// ended, an inhibiting incident went away, a maintenance window may have closed).
    pub(crate) fn recheck(&mut self, view: &View<'_>, fx: &mut Effects) {
        let now = view.now;
        let keys: Vec<GroupKey> = self.suppressed.drain().collect();
        for gk in keys {
            let Some((r, route)) = view.routes.named(&gk.route) else {
                continue;
            };
            let Some(g) = self.groups.get(&gk) else {
                continue;
            };
            let held: Vec<IncidentId> = g
                .members
                .iter()
                .filter(|(_, m)| m.suppressed.is_some())
                .map(|(id, _)| *id)
                .collect();
            let (pending, repeat_held) = (g.members.values().any(|m| m.pending), g.repeat_held);
            if pending {
                self.schedule_flush(&gk, view, fx);
            }
            for id in held {
                self.arm_escalation(id, r, None, view, fx);
            }
            if repeat_held && let Some(every) = route.repeat_interval {
                let (any_firing, still_held) = self.repeat_now(&gk, route, view, fx);
                if let Some(g) = self.groups.get_mut(&gk) {
                    if still_held {
                        self.suppressed.insert(gk.clone());
                    } else {
                        g.repeat_held = false;
                        if any_firing {
                            let next = now + every;
                            g.repeat_at = Some(next);
                            fx.timer(next, Timer::Repeat(gk.clone()));
                        }
                    }
                }
            }
        }
        let escalations: Vec<(IncidentId, Arc<str>)> = self.held_escalations.drain().collect();
        for (id, name) in escalations {
            if let Some((r, _)) = view.routes.named(&name) {
                self.arm_escalation(id, r, None, view, fx);
            }
        }
    }

    /// Rebuilds every group and its clocks from the incidents (after a reload or a restart):
    /// open incidents rejoin the routes that take them now, resolved ones whose resolve was
    /// not told yet rejoin the routes that told them fired; each group's wait runs from its
    /// oldest change, its interval and repeat from its last notification.
    pub(crate) fn rebuild(&mut self, view: &View<'_>, fx: &mut Effects) {
        self.groups.clear();
        self.member_of.clear();
        self.suppressed.clear();
        self.held_escalations.clear();
        for id in view.incidents.ids() {
            let Some(inc) = view.incidents.incident(id) else {
                continue;
            };
            if inc.is_open() {
                fx.push(Effect::Route(id));
                fx.push(Effect::ResumeEscalation(id));
            } else {
                self.rejoin_resolved(id, view, fx);
                fx.push(Effect::MaybeClose(id));
            }
        }
        fx.push(Effect::ResumeGroupTimers);
    }

    /// After a rebuild, each group's clock continues from its incidents rather than from now.
    pub(crate) fn resume_timers(&mut self, view: &View<'_>, fx: &mut Effects) {
        let now = view.now;
        let keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        for gk in keys {
            let Some((_, route)) = view.routes.named(&gk.route) else {
                continue;
            };
            let Some(g) = self.groups.get_mut(&gk) else {
                continue;
            };
            let mut created = g.created_at;
            let mut last: Option<Timestamp> = None;
            let mut told = false;
            for (id, m) in &g.members {
                if let Some(inc) = view.incidents.incident(*id) {
                    created = created.min(inc.changed_at);
                    let record = inc.route(&route.name);
                    if let Some(at) = record.and_then(|r| r.last_notified_at) {
                        last = Some(last.map_or(at, |l: Timestamp| l.max(at)));
                    }
                    told |= m.status == AlertStatus::Firing
                        && record.and_then(|r| r.notified).is_some();
                }
            }
            let pending = g.members.values().any(|m| m.pending);
            g.created_at = created;
            g.last_flush = last;
            g.flush_at = None;
            if let (Some(every), Some(l), true) = (route.repeat_interval, last, told) {
                let at = (l + every).max(now);
                g.repeat_at = Some(at);
                fx.timer(at, Timer::Repeat(gk.clone()));
            }
            if pending {
                self.schedule_flush(&gk, view, fx);
            }
        }
    }

    /// A resolved incident whose resolve was not yet told joins the groups of the routes that
    /// told it fired.
    fn rejoin_resolved(&mut self, id: IncidentId, view: &View<'_>, fx: &mut Effects) {
        let Some(inc) = view.incidents.incident(id) else {
            return;
        };
        let told: Vec<String> = inc
            .routes
            .iter()
            .filter(|r| r.notified.is_some())
            .map(|r| r.route.clone())
            .collect();
        for name in told {
            let Some((r, route)) = view.routes.named(&name) else {
                continue;
            };
            let Some((gk, labels)) = view.routes.group_key(r, inc, is_urgent(inc)) else {
                continue;
            };
            self.member_of.entry(id).or_default().push(gk.clone());
            let group = self.groups.entry(gk.clone()).or_insert_with(|| Group {
                labels,
                per_item: route.group_by.is_empty(),
                urgent: false,
                members: Default::default(),
                created_at: view.now,
                last_flush: None,
                flush_at: None,
                repeat_at: None,
                repeat_held: false,
                sends: 0,
                repeats: 0,
            });
            group.members.insert(
                id,
                Member {
                    status: AlertStatus::Resolved,
                    severity: Severity::Normal,
                    pending: true,
                    suppressed: None,
                },
            );
            self.schedule_flush(&gk, view, fx);
        }
    }
}
