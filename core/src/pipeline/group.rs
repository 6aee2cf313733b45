//! Groups notify: after their wait, at most once per interval, again while firing and not
//! acknowledged, and escalate incidents nobody acknowledged. Each notification fans out to the
//! route's channels, one outbox entry per channel.

use std::time::Duration;

use super::event::EventKind;
use super::incident::IncidentId;
use super::notification::{DigestPart, NotificationKind, digest_alert, item_alert, set_key};
use super::settings::{OutsideSchedule, Route};
use super::state::Dispatcher;
use super::timers::{GroupKey, Timer};
use crate::Severity;
use crate::alert::{Alert, AlertStatus};
use crate::clock::Timestamp;

/// Where a notification goes.
pub(crate) struct Target<'a> {
    pub(crate) route: &'a Route,
    pub(crate) channels: &'a [String],
    pub(crate) recipients: &'a [String],
}

impl Dispatcher {
    /// A group's flush timer came due.
    pub(crate) fn on_flush_timer(&mut self, gk: &GroupKey, at: Timestamp, now: Timestamp) {
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        if g.flush_at != Some(at) {
            return; // superseded by an earlier flush
        }
        g.flush_at = None;
        self.flush(gk, now);
    }

    /// Tells the route's channels what changed in the group.
    pub(crate) fn flush(&mut self, gk: &GroupKey, now: Timestamp) {
        let Some(route) = self
            .route_index(&gk.route)
            .map(|i| self.config.routes[i].clone())
        else {
            self.drop_group(gk);
            return;
        };
        if !self.groups.contains_key(gk) {
            return;
        }
        if let Some(schedule) = &route.schedule
            && !schedule.is_active(now)
        {
            self.outside_schedule(gk, &route, schedule.next_change(now), now);
            return;
        }
        let ids: Vec<IncidentId> = self.groups[gk]
            .members
            .iter()
            .filter(|(_, m)| m.pending)
            .map(|(id, _)| *id)
            .collect();
        let mut send: Vec<IncidentId> = Vec::new();
        let mut gone: Vec<IncidentId> = Vec::new();
        for id in ids {
            let suppression = self.suppression(id, now);
            let Some(m) = self.groups.get_mut(gk).and_then(|g| g.members.get_mut(&id)) else {
                continue;
            };
            if m.status == AlertStatus::Resolved {
                if self.runs.values().any(|r| r.incident == id && !r.timed_out) {
                    // A recovery run is still out: its outcome belongs in the resolve.
                    continue;
                }
                m.pending = false;
                let told_firing = matches!(m.notified, Some((AlertStatus::Firing, _)));
                if told_firing && route.send_resolved {
                    send.push(id);
                } else {
                    gone.push(id);
                }
                continue;
            }
            match suppression {
                Some(s) => {
                    let new = m.suppressed.as_deref() != Some(s.reason.as_str());
                    m.suppressed = Some(s.reason.clone());
                    self.suppressed.insert(gk.clone());
                    if new {
                        if s.kind == EventKind::Silenced {
                            self.stats.silenced += 1;
                        } else {
                            self.stats.inhibited += 1;
                        }
                        let mut e = self.incident_event(s.kind, id, now);
                        e.route = Some(route.name.clone());
                        e.detail = s.reason;
                        self.emit(e);
                    }
                    self.arm_recheck(now);
                }
                None => {
                    m.suppressed = None;
                    if m.notified == Some((AlertStatus::Firing, m.severity)) {
                        m.pending = false;
                    } else {
                        send.push(id);
                    }
                }
            }
        }
        for id in gone {
            self.leave_group(gk, id);
        }
        if !send.is_empty() {
            self.send_group(gk, &route, &send, now);
        }
        self.finish_group(gk, &route, now);
    }

    /// Outside the route's schedule: defer what is pending to the next window, or drop it.
    fn outside_schedule(
        &mut self,
        gk: &GroupKey,
        route: &Route,
        next: Option<Timestamp>,
        now: Timestamp,
    ) {
        // A resolve of something this route never told is simply forgotten.
        let untold: Vec<IncidentId> = self.groups[gk]
            .members
            .iter()
            .filter(|(_, m)| {
                m.pending
                    && m.status == AlertStatus::Resolved
                    && !matches!(m.notified, Some((AlertStatus::Firing, _)))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in untold {
            self.leave_group(gk, id);
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
            self.finish_group(gk, route, now);
            return;
        }
        let defer = route.outside_schedule == OutsideSchedule::Defer;
        if let (true, Some(next)) = (defer, next) {
            if let Some(g) = self.groups.get_mut(gk) {
                g.flush_at = Some(next);
            }
            self.timers.set(next, Timer::Flush(gk.clone()));
            for id in pending {
                self.stats.deferred += 1;
                let mut e = self.incident_event(EventKind::Deferred, id, now);
                e.route = Some(route.name.clone());
                e.detail = format!("outside the route's schedule; next window at {next}");
                self.emit(e);
            }
            return;
        }
        for id in pending {
            self.stats.dropped += 1;
            let mut e = self.incident_event(EventKind::Dropped, id, now);
            e.route = Some(route.name.clone());
            e.detail = "outside the route's schedule (outside_schedule = \"drop\")".into();
            self.emit(e);
            let resolved = match self.groups.get_mut(gk).and_then(|g| g.members.get_mut(&id)) {
                Some(m) => {
                    m.pending = false;
                    m.status == AlertStatus::Resolved
                }
                None => false,
            };
            if resolved {
                self.leave_group(gk, id);
            }
        }
        self.finish_group(gk, route, now);
    }

    /// Builds and sends the group's notification about `send` (the members that changed).
    fn send_group(&mut self, gk: &GroupKey, route: &Route, send: &[IncidentId], now: Timestamp) {
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
            let Some(tr) = self.incidents.get(&id) else {
                return;
            };
            let m = &g.members[&id];
            let previous = m.notified.map_or(tr.previous, |(_, s)| s);
            let mut alert = item_alert(&tr.inc, m.status, previous, tr.since);
            let what = format!("{}:{}:{}", id, route.name, tr.inc.changes);
            set_key(&mut alert, &what, &self.identity);
            (alert, NotificationKind::Change)
        } else {
            let parts: Vec<DigestPart<'_>> = visible
                .iter()
                .filter_map(|id| {
                    let m = g.members.get(id)?;
                    Some(DigestPart {
                        incident: &self.incidents.get(id)?.inc,
                        status: m.status,
                        severity: m.severity,
                    })
                })
                .collect();
            let previous = g
                .members
                .values()
                .filter_map(|m| m.notified.map(|(_, s)| s))
                .max()
                .unwrap_or(Severity::Normal);
            let mut alert = digest_alert(&g.labels, &route.name, &parts, previous, now);
            let what = format!(
                "g:{}:{}:n{}",
                route.name,
                gk.key,
                self.next_notification + 1
            );
            set_key(&mut alert, &what, &self.identity);
            (alert, NotificationKind::Digest)
        };
        let incidents = visible;
        if let Some(g) = self.groups.get_mut(gk) {
            g.sends += 1;
            g.last_flush = Some(now);
            for id in send {
                if let Some(m) = g.members.get_mut(id) {
                    m.pending = false;
                    m.notified = Some((m.status, m.severity));
                }
            }
        }
        for id in send {
            self.mark_notified(*id, route, now);
        }
        let target = Target {
            route,
            channels: &route.channels,
            recipients: &route.recipients,
        };
        self.notify(&target, alert, kind, incidents, now);
        for id in send {
            let resolved = self
                .groups
                .get(gk)
                .and_then(|g| g.members.get(id))
                .is_some_and(|m| m.status == AlertStatus::Resolved);
            if resolved {
                self.leave_group(gk, *id);
            }
        }
    }

    /// Records on the incident what the route told, and starts its escalation clock.
    fn mark_notified(&mut self, id: IncidentId, route: &Route, now: Timestamp) {
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        let open = tr.inc.is_open();
        let severity = tr.inc.severity;
        let record = tr.inc.route_mut(&route.name);
        record.last_notified_at = Some(now);
        if open {
            record.notified = Some(severity);
            if record.first_notified_at.is_none() {
                record.first_notified_at = Some(now);
            }
        }
        self.save_incident(id);
        if open {
            self.arm_escalation(id, route, now);
        }
    }

    /// After a flush: removes an empty group, or arms its repeat.
    fn finish_group(&mut self, gk: &GroupKey, route: &Route, now: Timestamp) {
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        if g.members.is_empty() {
            self.drop_group(gk);
            return;
        }
        let firing_told = g
            .members
            .values()
            .any(|m| matches!(m.notified, Some((AlertStatus::Firing, _))));
        if let (Some(every), true, None) = (route.repeat_interval, firing_told, g.repeat_at) {
            let at = g.last_flush.unwrap_or(now) + every;
            g.repeat_at = Some(at);
            self.timers.set(at, Timer::Repeat(gk.clone()));
        }
    }

    pub(crate) fn leave_group(&mut self, gk: &GroupKey, id: IncidentId) {
        if let Some(g) = self.groups.get_mut(gk) {
            g.members.remove(&id);
        }
        if let Some(tr) = self.incidents.get_mut(&id) {
            tr.groups.retain(|k| k != gk);
        }
        self.close_if_done(id);
    }

    pub(crate) fn drop_group(&mut self, gk: &GroupKey) {
        let Some(g) = self.groups.remove(gk) else {
            return;
        };
        self.suppressed.remove(gk);
        for id in g.members.keys() {
            if let Some(tr) = self.incidents.get_mut(id) {
                tr.groups.retain(|k| k != gk);
            }
            self.close_if_done(*id);
        }
    }

    /// A group's repeat came due: tell again what still fires, unacknowledged.
    pub(crate) fn on_repeat_timer(&mut self, gk: &GroupKey, at: Timestamp, now: Timestamp) {
        let Some(route) = self
            .route_index(&gk.route)
            .map(|i| self.config.routes[i].clone())
        else {
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
                if let Some(g) = self.groups.get_mut(gk) {
                    g.repeat_at = Some(next);
                }
                self.timers.set(next, Timer::Repeat(gk.clone()));
            }
            return;
        }
        let candidates: Vec<IncidentId> = self.groups[gk]
            .members
            .iter()
            .filter(|(_, m)| {
                m.status == AlertStatus::Firing
                    && matches!(m.notified, Some((AlertStatus::Firing, _)))
            })
            .map(|(id, _)| *id)
            .collect();
        let any_firing = !candidates.is_empty();
        let eligible: Vec<IncidentId> = candidates
            .into_iter()
            .filter(|id| {
                self.incidents.get(id).is_some_and(|t| {
                    !t.inc.is_acked(now)
                        && route
                            .selector
                            .selects(&t.inc.item.rule, &t.inc.labels, t.inc.severity)
                })
            })
            .filter(|id| self.suppression(*id, now).is_none())
            .collect();
        if !eligible.is_empty() {
            self.send_repeat(gk, &route, &eligible, now);
        }
        if any_firing && let Some(g) = self.groups.get_mut(gk) {
            let next = now + every;
            g.repeat_at = Some(next);
            self.timers.set(next, Timer::Repeat(gk.clone()));
        }
    }

    fn send_repeat(&mut self, gk: &GroupKey, route: &Route, ids: &[IncidentId], now: Timestamp) {
        let Some(g) = self.groups.get_mut(gk) else {
            return;
        };
        g.repeats += 1;
        let n = g.repeats;
        let g = &self.groups[gk];
        let alert = if g.per_item || ids.len() == 1 {
            let Some(tr) = self.incidents.get(&ids[0]) else {
                return;
            };
            let mut alert = item_alert(
                &tr.inc,
                AlertStatus::Firing,
                tr.inc.severity,
                tr.inc.changed_at,
            );
            let what = format!(
                "{}:{}:{}:r{n}.{}",
                ids[0],
                route.name,
                tr.inc.changes,
                self.next_notification + 1
            );
            set_key(&mut alert, &what, &self.identity);
            alert
        } else {
            let parts: Vec<DigestPart<'_>> = ids
                .iter()
                .filter_map(|id| {
                    Some(DigestPart {
                        incident: &self.incidents.get(id)?.inc,
                        status: AlertStatus::Firing,
                        severity: g.members.get(id)?.severity,
                    })
                })
                .collect();
            let worst = parts.iter().map(|p| p.severity).max().unwrap_or_default();
            let mut alert = digest_alert(&g.labels, &route.name, &parts, worst, now);
            let what = format!(
                "g:{}:{}:r{n}.{}",
                route.name,
                gk.key,
                self.next_notification + 1
            );
            set_key(&mut alert, &what, &self.identity);
            alert
        };
        for id in ids {
            let mut e = self.incident_event(EventKind::Repeated, *id, now);
            e.route = Some(route.name.clone());
            e.detail = format!("repeat #{n}: still firing, not acknowledged");
            self.emit(e);
            if let Some(tr) = self.incidents.get_mut(id) {
                tr.inc.route_mut(&route.name).last_notified_at = Some(now);
            }
        }
        let target = Target {
            route,
            channels: &route.channels,
            recipients: &route.recipients,
        };
        self.notify(&target, alert, NotificationKind::Repeat, ids.to_vec(), now);
    }

    /// Sets the timer of the next escalation tier of incident `id` on `route`.
    pub(crate) fn arm_escalation(&mut self, id: IncidentId, route: &Route, now: Timestamp) {
        let Some(tr) = self.incidents.get(&id) else {
            return;
        };
        let Some(record) = tr.inc.route(&route.name) else {
            return;
        };
        let (Some(first), Some(tier)) = (
            record.first_notified_at,
            route.escalation.get(record.escalated),
        ) else {
            return;
        };
        let due = (first + tier.after).max(now);
        self.timers.set(
            due,
            Timer::Escalate(id, std::sync::Arc::from(route.name.as_str())),
        );
    }

    /// An escalation timer came due: if nobody acknowledged, tell the next tier.
    pub(crate) fn on_escalate(&mut self, id: IncidentId, route_name: &str, now: Timestamp) {
        let Some(route) = self
            .route_index(route_name)
            .map(|i| self.config.routes[i].clone())
        else {
            return;
        };
        let Some(tr) = self.incidents.get(&id) else {
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
        if self.suppression(id, now).is_some() {
            return; // the recheck when the suppression ends arms it again
        }
        let tier = tier.clone();
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
        set_key(&mut alert, &what, &self.identity);
        if let Some(tr) = self.incidents.get_mut(&id) {
            tr.inc.route_mut(&route.name).escalated = tier_index + 1;
        }
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::Escalated, id, now);
        e.route = Some(route.name.clone());
        e.detail = format!(
            "tier {} ({}) after {}",
            tier_index + 1,
            tier.recipients.join(", "),
            crate::duration::format_duration(Duration::from_secs(waited.as_secs()))
        );
        self.emit(e);
        let channels = if tier.channels.is_empty() {
            route.channels.clone()
        } else {
            tier.channels.clone()
        };
        let target = Target {
            route: &route,
            channels: &channels,
            recipients: &tier.recipients,
        };
        self.notify(&target, alert, NotificationKind::Escalation, vec![id], now);
        self.arm_escalation(id, &route, now);
    }

    /// Sends `alert` to every channel of the target (one outbox entry each), recipients filled
    /// in per channel. A "channel failing" meta-alert never goes to the failing channel: its
    /// fallback takes its place.
    pub(crate) fn notify(
        &mut self,
        target: &Target<'_>,
        alert: Alert,
        kind: NotificationKind,
        incidents: Vec<IncidentId>,
        now: Timestamp,
    ) {
        let avoid: Vec<String> = incidents
            .iter()
            .filter_map(|id| self.incidents.get(id)?.inc.meta_channel.clone())
            .collect();
        let mut channels: Vec<String> = Vec::new();
        for c in target.channels {
            let chosen = if avoid.contains(c) {
                self.channels.get(c).and_then(|s| s.config.fallback.clone())
            } else {
                Some(c.clone())
            };
            if let Some(c) = chosen
                && !avoid.contains(&c)
                && !channels.contains(&c)
            {
                channels.push(c);
            }
        }
        for c in channels {
            self.enqueue(
                &c,
                alert.clone(),
                kind,
                Some(&target.route.name),
                target.recipients,
                incidents.clone(),
                Vec::new(),
                now,
            );
        }
    }

    /// Looks again at groups whose members were held back (a silence ended, an inhibiting
    /// incident went away, a maintenance window may have closed).
    pub(crate) fn recheck_suppressed(&mut self, now: Timestamp) {
        let keys: Vec<GroupKey> = self.suppressed.drain().collect();
        for gk in keys {
            let Some(g) = self.groups.get(&gk) else {
                continue;
            };
            let held: Vec<IncidentId> = g
                .members
                .iter()
                .filter(|(_, m)| m.suppressed.is_some())
                .map(|(id, _)| *id)
                .collect();
            let any_pending = g.members.values().any(|m| m.pending);
            if any_pending {
                self.schedule_flush(&gk, now);
            }
            if let Some(route) = self
                .route_index(&gk.route)
                .map(|i| self.config.routes[i].clone())
            {
                for id in held {
                    self.arm_escalation(id, &route, now);
                }
            }
        }
    }

    /// Sets a timer for the next change of any maintenance window, so held-back alerts are
    /// looked at again when one ends.
    fn arm_recheck(&mut self, now: Timestamp) {
        let next = self
            .config
            .maintenance
            .iter()
            .filter_map(|m| m.window.next_change(now))
            .chain(
                self.silences
                    .values()
                    .flat_map(|s| [s.starts_at, s.ends_at])
                    .filter(|t| *t > now),
            )
            .min();
        if let Some(t) = next
            && self.recheck_at.is_none_or(|r| t < r || r <= now)
        {
            self.recheck_at = Some(t);
            self.timers.set(t, Timer::Recheck);
        }
    }
}
