//! What callers ask of the pipeline: acknowledge, silence, list, reload; and how it resumes
//! from its store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::PipelineError;
use super::event::{Event, EventKind};
use super::incident::{Ack, AckRequest, Incident, IncidentId, RunResult};
use super::request::StoreRequest;
use super::silence::{Silence, SilenceId, SilenceRequest};
use super::state::{ActionState, ChannelState, Dispatcher, Tracked};
use super::store::{StoreChange, StoredState};
use super::timers::{GroupKey, Timer};
use super::workers::{Done, action_pool, channel_pool};
use crate::alert::{Action, AlertStatus, Channel};
use crate::clock::Timestamp;
use crate::pipeline::settings::PipelineConfig;

impl Dispatcher {
    /// Open incidents, oldest first.
    pub(crate) fn incident_list(&self, now: Timestamp) -> Vec<Incident> {
        let mut v: Vec<Incident> = self
            .open
            .values()
            .filter_map(|id| self.incident_view(*id, now))
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    /// An incident as callers see it: with what holds it back now.
    pub(crate) fn incident_view(&self, id: IncidentId, now: Timestamp) -> Option<Incident> {
        let mut inc = self.incidents.get(&id)?.inc.clone();
        inc.held_back = self.suppression(id, now).map(|s| s.reason);
        Some(inc)
    }

    pub(crate) fn ack(
        &mut self,
        id: IncidentId,
        req: AckRequest,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        if req.by.trim().is_empty() {
            return Err(PipelineError::BadRequest(
                "an acknowledgement needs `by`: who is on it".into(),
            ));
        }
        check_length("by", &req.by)?;
        check_length("comment", &req.comment)?;
        let tr = self
            .incidents
            .get_mut(&id)
            .filter(|t| t.inc.is_open())
            .ok_or(PipelineError::UnknownIncident(id))?;
        let expires_at = req.expires_after.map(|d| now + d);
        tr.inc.ack = Some(Ack {
            by: req.by.clone(),
            comment: req.comment.clone(),
            at: now,
            expires_at,
            sticky: req.sticky,
        });
        if let Some(at) = expires_at {
            self.timers.set(at, Timer::AckExpiry(id));
        }
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::Acked, id, now);
        e.detail = match expires_at {
            Some(at) => format!("by {} until {at}: {}", req.by, req.comment),
            None => format!("by {}: {}", req.by, req.comment),
        };
        self.emit(e);
        Ok(())
    }

    pub(crate) fn unack(&mut self, id: IncidentId, now: Timestamp) -> Result<(), PipelineError> {
        let tr = self
            .incidents
            .get_mut(&id)
            .filter(|t| t.inc.is_open())
            .ok_or(PipelineError::UnknownIncident(id))?;
        if tr.inc.ack.take().is_none() {
            return Ok(());
        }
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::Unacked, id, now);
        e.detail = "by request".into();
        self.emit(e);
        self.resume_after_ack(id, now);
        Ok(())
    }

    pub(crate) fn on_ack_expiry(&mut self, id: IncidentId, now: Timestamp) {
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        let lapsed = tr
            .inc
            .ack
            .as_ref()
            .is_some_and(|a| a.expires_at.is_some_and(|e| e <= now));
        if !lapsed {
            return;
        }
        tr.inc.ack = None;
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::Unacked, id, now);
        e.detail = "the acknowledgement expired".into();
        self.emit(e);
        self.resume_after_ack(id, now);
    }

    /// Escalation resumes where it stopped; repeats resume at their next due time.
    fn resume_after_ack(&mut self, id: IncidentId, now: Timestamp) {
        let routes: Vec<String> = self
            .incidents
            .get(&id)
            .map(|t| t.inc.routes.iter().map(|r| r.route.clone()).collect())
            .unwrap_or_default();
        for name in routes {
            if let Some(route) = self
                .route_index(&name)
                .map(|i| self.config.routes[i].clone())
            {
                self.arm_escalation(id, &route, now);
            }
        }
    }

    pub(crate) fn silence(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
    ) -> Result<SilenceId, PipelineError> {
        check_length("created_by", &req.created_by)?;
        check_length("comment", &req.comment)?;
        let id = SilenceId(self.next_silence + 1);
        let s = Silence::from_request(id, req, now).map_err(PipelineError::BadRequest)?;
        self.next_silence += 1;
        self.timers.set(s.ends_at, Timer::SilenceEnd(id));
        if s.starts_at > now {
            self.timers.set(s.starts_at, Timer::Recheck);
        }
        let mut e = Event::new(EventKind::SilenceCreated, now);
        e.detail = format!(
            "silence {id} by {} from {} to {}: {}",
            s.created_by, s.starts_at, s.ends_at, s.comment
        );
        self.emit(e);
        self.batch.push(StoreChange::Silence(Box::new(s.clone())));
        self.silences.insert(id, s);
        Ok(id)
    }

    pub(crate) fn expire_silence(
        &mut self,
        id: SilenceId,
        now: Timestamp,
        by_request: bool,
    ) -> Result<(), PipelineError> {
        let s = self
            .silences
            .remove(&id)
            .ok_or(PipelineError::UnknownSilence(id))?;
        self.batch.push(StoreChange::SilenceRemoved(id));
        let mut e = Event::new(EventKind::SilenceExpired, now);
        e.detail = format!(
            "silence {id} by {} {}",
            s.created_by,
            if by_request {
                "expired by request"
            } else {
                "ended"
            }
        );
        self.emit(e);
        self.recheck_suppressed(now);
        Ok(())
    }

    pub(crate) fn on_silence_end(&mut self, id: SilenceId, now: Timestamp) {
        if self.silences.get(&id).is_some_and(|s| s.ends_at <= now) {
            let _ = self.expire_silence(id, now, false);
        }
    }

    pub(crate) fn on_recheck(&mut self, at: Timestamp, now: Timestamp) {
        if self.recheck_at == Some(at) {
            self.recheck_at = None;
        }
        self.recheck_suppressed(now);
    }

    /// Starts the threads of every channel and action; keeps those whose settings and
    /// implementation did not change.
    pub(crate) fn install(
        &mut self,
        config: &PipelineConfig,
        channels: &HashMap<String, Arc<dyn Channel>>,
        actions: &HashMap<String, Arc<dyn Action>>,
        results: &crossbeam_channel::Sender<Done>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        let mut new_channels = HashMap::new();
        for c in &config.channels {
            let imp = channels
                .get(&c.name)
                .ok_or_else(|| PipelineError::MissingChannel(c.name.clone()))?;
            if let Some(mut old) = self.channels.remove(&c.name)
                && old.config.workers == c.workers
                && Arc::ptr_eq(&old.channel, imp)
            {
                old.config = c.clone();
                new_channels.insert(c.name.clone(), old);
                continue;
            }
            let pool = channel_pool(Arc::clone(imp), c.workers, results.clone())
                .map_err(PipelineError::Spawn)?;
            let tokens = c.rate_limit.map_or(0.0, |r| f64::from(r.count));
            new_channels.insert(
                c.name.clone(),
                ChannelState {
                    config: c.clone(),
                    channel: Arc::clone(imp),
                    pool,
                    consecutive_failures: 0,
                    last_error: None,
                    failing: None,
                    tokens,
                    refilled_at: now,
                    held: Default::default(),
                    summary_armed: false,
                },
            );
        }
        let mut new_actions = HashMap::new();
        for a in &config.actions {
            let imp = actions
                .get(&a.name)
                .ok_or_else(|| PipelineError::MissingAction(a.name.clone()))?;
            if let Some(mut old) = self.actions.remove(&a.name)
                && old.config.workers == a.workers
                && Arc::ptr_eq(&old.action, imp)
            {
                old.config = a.clone();
                new_actions.insert(a.name.clone(), old);
                continue;
            }
            let pool = action_pool(Arc::clone(imp), a.workers, results.clone())
                .map_err(PipelineError::Spawn)?;
            new_actions.insert(
                a.name.clone(),
                ActionState {
                    config: a.clone(),
                    action: Arc::clone(imp),
                    pool,
                },
            );
        }
        self.channels = new_channels;
        self.actions = new_actions;
        Ok(())
    }

    /// Replaces routes, policy, channels and actions, keeping every open incident and what was
    /// already notified (nothing is told twice).
    pub(crate) fn reload(
        &mut self,
        config: PipelineConfig,
        channels: &HashMap<String, Arc<dyn Channel>>,
        actions: &HashMap<String, Arc<dyn Action>>,
        results: &crossbeam_channel::Sender<Done>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        self.install(&config, channels, actions, results, now)?;
        self.config = config;
        // Notifications for channels that are gone cannot be delivered: fail them openly.
        let orphans: Vec<_> = self
            .outbox
            .values()
            .filter(|n| !self.channels.contains_key(&n.channel))
            .map(|n| n.id)
            .collect();
        for id in orphans {
            if let Some(n) = self.outbox.remove(&id) {
                self.batch.push(StoreChange::NotificationDone(id));
                self.stats.failed += 1;
                let mut e = Event::new(EventKind::Failed, now);
                e.channel = Some(n.channel.clone());
                e.key = Some(n.alert.idempotency_key.clone());
                e.detail = "the channel was removed by a reload".into();
                self.emit(e);
            }
        }
        self.rebuild(now);
        let mut e = Event::new(EventKind::Reloaded, now);
        e.detail = format!(
            "{} route(s), {} channel(s), {} action(s); {} open incident(s) kept",
            self.config.routes.len(),
            self.config.channels.len(),
            self.config.actions.len(),
            self.open.len()
        );
        self.emit(e);
        Ok(())
    }

    /// Rebuilds groups, indexes and timers from the incidents (after a reload or a restart).
    pub(crate) fn rebuild(&mut self, now: Timestamp) {
        self.groups.clear();
        self.suppressed.clear();
        self.inhibit_index = vec![HashMap::new(); self.config.inhibit.len()];
        let mut ids: Vec<IncidentId> = self.incidents.keys().copied().collect();
        ids.sort();
        for id in &ids {
            if let Some(t) = self.incidents.get_mut(id) {
                t.groups.clear();
                t.inhibit_sources = vec![None; self.config.inhibit.len()];
            }
            self.update_inhibit_index(*id);
        }
        for id in ids {
            let Some(t) = self.incidents.get(&id) else {
                continue;
            };
            let ack_expiry = t.inc.ack.as_ref().and_then(|a| a.expires_at);
            if t.inc.is_open() {
                self.route_incident(id, now);
                let routes: Vec<String> = self.incidents[&id]
                    .inc
                    .routes
                    .iter()
                    .map(|r| r.route.clone())
                    .collect();
                for name in routes {
                    if let Some(route) = self
                        .route_index(&name)
                        .map(|i| self.config.routes[i].clone())
                    {
                        self.arm_escalation(id, &route, now);
                    }
                }
                if let Some(at) = ack_expiry {
                    self.timers.set(at, Timer::AckExpiry(id));
                }
            } else {
                self.rejoin_resolved(id, now);
            }
            self.close_if_done(id);
        }
        self.resume_group_timers(now);
    }

    /// After a rebuild, each group's clock continues from its incidents rather than from now:
    /// its wait from its oldest change, its interval and repeat from its last notification.
    fn resume_group_timers(&mut self, now: Timestamp) {
        let keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        for gk in keys {
            let Some(route) = self
                .route_index(&gk.route)
                .map(|i| self.config.routes[i].clone())
            else {
                continue;
            };
            let Some(g) = self.groups.get(&gk) else {
                continue;
            };
            let mut created = g.created_at;
            let mut last: Option<Timestamp> = None;
            for id in g.members.keys() {
                if let Some(t) = self.incidents.get(id) {
                    created = created.min(t.inc.changed_at);
                    if let Some(at) = t.inc.route(&route.name).and_then(|r| r.last_notified_at) {
                        last = Some(last.map_or(at, |l: Timestamp| l.max(at)));
                    }
                }
            }
            let pending = g.members.values().any(|m| m.pending);
            let told = g
                .members
                .values()
                .any(|m| matches!(m.notified, Some((AlertStatus::Firing, _))));
            if let Some(g) = self.groups.get_mut(&gk) {
                g.created_at = created;
                g.last_flush = last;
                g.flush_at = None;
                if let (Some(every), Some(l), true) = (route.repeat_interval, last, told) {
                    let at = (l + every).max(now);
                    g.repeat_at = Some(at);
                    self.timers.set(at, Timer::Repeat(gk.clone()));
                }
            }
            if pending {
                self.schedule_flush(&gk, now);
            }
        }
    }

    /// A resolved incident whose resolve was not yet sent joins the groups of the routes that
    /// told it fired.
    fn rejoin_resolved(&mut self, id: IncidentId, now: Timestamp) {
        let Some(t) = self.incidents.get(&id) else {
            return;
        };
        let told: Vec<(String, crate::Severity)> = t
            .inc
            .routes
            .iter()
            .filter_map(|r| Some((r.route.clone(), r.notified?)))
            .collect();
        for (name, severity) in told {
            let Some(route) = self
                .route_index(&name)
                .map(|i| self.config.routes[i].clone())
            else {
                continue;
            };
            let Some(t) = self.incidents.get_mut(&id) else {
                return;
            };
            let (gk, labels) = Self::group_key(&route, &t.inc);
            t.groups.push(gk.clone());
            let group = self.groups.entry(gk.clone()).or_insert_with(|| {
                super::state::Group::new(labels, route.group_by.is_empty(), now)
            });
            group.members.insert(
                id,
                super::state::Member {
                    status: AlertStatus::Resolved,
                    severity: crate::Severity::Normal,
                    notified: Some((AlertStatus::Firing, severity)),
                    pending: true,
                    suppressed: None,
                },
            );
            self.schedule_flush(&gk, now);
        }
    }

    /// Takes up what the store kept: open incidents, the outbox (attempted again with the same
    /// idempotency keys), silences.
    pub(crate) fn restore(&mut self, state: StoredState, now: Timestamp) {
        self.restored_item_states = state.item_states;
        self.restored_slo_states = state.slo_states;
        self.identity = state.identity;
        self.timers.set(now, Timer::Requests);
        self.next_incident = self.next_incident.max(state.last_incident);
        self.next_notification = self.next_notification.max(state.last_notification);
        self.next_silence = self.next_silence.max(state.last_silence);
        self.next_event = self.next_event.max(state.last_event);
        for mut inc in state.incidents {
            self.next_incident = self.next_incident.max(inc.id.0);
            // A run that was going when the process ended will never report.
            for run in inc
                .actions
                .iter_mut()
                .filter(|r| r.result == RunResult::Running)
            {
                run.result = RunResult::Failed;
                run.finished_at = Some(now);
                run.error = Some("interrupted: the process stopped while it ran".into());
            }
            let id = inc.id;
            if inc.is_open() {
                self.open.insert(inc.item.clone(), id);
                self.by_series
                    .entry((Arc::clone(&inc.metric), inc.item.labels.clone()))
                    .or_default()
                    .push(id);
            }
            let mut attempts = HashMap::new();
            for run in &inc.actions {
                if let Some(i) = self
                    .config
                    .recoveries
                    .iter()
                    .position(|r| r.action == run.action)
                {
                    *attempts.entry(i).or_insert(0) += 1;
                    // The cooldown resumes from the end of the last run.
                    if let Some(end) = run.finished_at {
                        let until = end + self.config.recoveries[i].cooldown;
                        let key = (inc.item.clone(), i);
                        let cooldown = self.cooldowns.entry(key).or_insert(until);
                        *cooldown = (*cooldown).max(until);
                    }
                }
            }
            let since = inc.changed_at;
            self.incidents.insert(
                id,
                Tracked {
                    inc,
                    previous: crate::Severity::Normal,
                    since,
                    groups: Vec::new(),
                    attempts,
                    inhibit_sources: Vec::new(),
                },
            );
        }
        for mut s in state.silences {
            if s.compile().is_err() || s.ends_at <= now {
                self.batch.push(StoreChange::SilenceRemoved(s.id));
                continue;
            }
            self.timers.set(s.ends_at, Timer::SilenceEnd(s.id));
            self.silences.insert(s.id, s);
        }
        self.rebuild(now);
        self.resume_meta_incidents(now);
        let mut outbox = state.outbox;
        outbox.sort_by_key(|n| n.id);
        for mut n in outbox {
            if !self.channels.contains_key(&n.channel) {
                self.batch.push(StoreChange::NotificationDone(n.id));
                continue;
            }
            n.due_at = n.due_at.max(now);
            let (id, due) = (n.id, n.due_at);
            self.outbox.insert(id, n);
            if due <= now {
                self.attempt(id);
            } else {
                self.timers.set(due, Timer::Retry(id));
            }
        }
    }

    /// The pipeline's own incidents the last run left open. A failing channel's stays open,
    /// the channel taken to be failing still, until it delivers again; one of a channel that
    /// is gone resolves now, and so does the store's (it loaded: it works; if it fails again,
    /// a new one opens).
    fn resume_meta_incidents(&mut self, now: Timestamp) {
        let threshold = self.config.notify.channel_failing_after.max(1);
        let metas: Vec<(IncidentId, Option<String>, bool)> = self
            .open
            .values()
            .filter_map(|id| {
                let inc = &self.incidents.get(id)?.inc;
                let store = &*inc.item.rule == super::unsaved::STORE_FAILING_RULE;
                (inc.meta_channel.is_some() || store)
                    .then(|| (*id, inc.meta_channel.clone(), store))
            })
            .collect();
        for (id, channel, store) in metas {
            let t = match channel {
                Some(c) => match self.channels.get_mut(&c) {
                    Some(ch) => {
                        ch.failing = Some(id);
                        ch.consecutive_failures = threshold;
                        continue;
                    }
                    None => self.meta_transition(
                        &c,
                        crate::Severity::Normal,
                        "the channel is no longer configured",
                        now,
                    ),
                },
                None if store => super::unsaved::store_transition(
                    crate::Severity::Normal,
                    "the store commits again",
                    now,
                ),
                None => continue,
            };
            let item = super::incident::ItemKey {
                rule: Arc::clone(&t.rule),
                labels: t.labels.clone(),
            };
            self.resolve(&item, &t, now);
        }
    }

    /// Applies what other processes queued in the store (acks, silences from the command line);
    /// looks again in half a second.
    pub(crate) fn poll_requests(&mut self, now: Timestamp) {
        match self.store.take_requests() {
            Ok(requests) => {
                for (id, request) in requests {
                    let result = self.apply_request(&request, now);
                    self.batch.push(StoreChange::RequestDone(id, result));
                }
            }
            Err(e) => {
                self.stats.store_errors += 1;
                self.stats.last_store_error = Some(e.to_string());
            }
        }
        self.timers
            .set(now + Duration::from_millis(500), Timer::Requests);
    }

    fn apply_request(&mut self, request: &StoreRequest, now: Timestamp) -> Result<String, String> {
        match request {
            StoreRequest::Ack {
                incident,
                by,
                comment,
                expires_after_secs,
                sticky,
            } => self
                .ack(
                    *incident,
                    AckRequest {
                        by: by.clone(),
                        comment: comment.clone(),
                        expires_after: expires_after_secs.map(Duration::from_secs),
                        sticky: *sticky,
                    },
                    now,
                )
                .map(|()| format!("incident {incident} acknowledged by {by}")),
            StoreRequest::Unack { incident } => self
                .unack(*incident, now)
                .map(|()| format!("incident {incident} no longer acknowledged")),
            StoreRequest::Silence { .. } => match request.silence_request() {
                Some(req) => self
                    .silence(req, now)
                    .map(|id| format!("silence {id} created")),
                None => Ok(String::new()),
            },
            StoreRequest::ExpireSilence { silence } => self
                .expire_silence(SilenceId(*silence), now, true)
                .map(|()| format!("silence {silence} expired")),
        }
        .map_err(|e| e.to_string())
    }

    /// At stop: every group with pending changes notifies now, without waiting.
    pub(crate) fn flush_all(&mut self, now: Timestamp) {
        let keys: Vec<_> = self
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
            self.flush(&gk, now);
        }
    }

    /// Runs every timer due at `now`.
    pub(crate) fn run_timers(&mut self, now: Timestamp) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Flush(gk) => self.on_flush_timer(&gk, at, now),
                Timer::Repeat(gk) => self.on_repeat_timer(&gk, at, now),
                Timer::Escalate(id, route) => self.on_escalate(id, &route, now),
                Timer::AckExpiry(id) => self.on_ack_expiry(id, now),
                Timer::SilenceEnd(id) => self.on_silence_end(id, now),
                Timer::Recheck => self.on_recheck(at, now),
                Timer::Retry(id) => self.on_retry(id, now),
                Timer::RateSummary(ch) => self.on_rate_summary(&ch, now),
                Timer::Recovery(id) => self.consider_recovery(id, now),
                Timer::ActionTimeout(token) => self.on_action_timeout(token, now),
                Timer::Requests => self.poll_requests(now),
                // Nothing to do here: the commit that ends the step writes what waits.
                Timer::StoreRetry => {}
            }
        }
    }

    /// A worker's report.
    pub(crate) fn on_done(&mut self, done: Done, now: Timestamp) {
        match done {
            Done::Delivery {
                id,
                result,
                elapsed,
            } => self.on_delivered(id, result, elapsed, now),
            Done::Action { token, result } => self.on_action_done(token, result, now),
        }
    }
}

/// The longest `by`, `created_by` or `comment` accepted: they are kept in incidents, silences
/// and the history.
const MAX_TEXT: usize = 4096;

fn check_length(what: &str, text: &str) -> Result<(), PipelineError> {
    if text.len() > MAX_TEXT {
        return Err(PipelineError::BadRequest(format!(
            "`{what}` is {} bytes long; at most {MAX_TEXT} are accepted",
            text.len()
        )));
    }
    Ok(())
}

/// How long `stop` waited and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Notifications delivered while stopping.
    pub delivered: u64,
    /// Notifications still in the outbox (in the store, if it is durable).
    pub outbox_left: usize,
    /// Deliveries and action runs that had not returned by the deadline.
    pub in_flight_left: usize,
    /// How long it took.
    pub took: Duration,
}
