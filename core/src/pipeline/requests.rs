//! What callers ask of the pipeline, and how it resumes: the incident list, acknowledgements
//! and silences (from the API and, through the store, from other processes), a reload, and
//! taking up what the store kept at start. Each is handed to the stage it belongs to and its
//! effects applied by the dispatcher's loop.

use std::collections::HashMap;
use std::sync::Arc;

use super::PipelineError;
use super::dispatcher::{Dispatcher, view_of};
use super::effects::Effects;
use super::event::{Event, EventKind};
use super::incident::{AckRequest, Incident, IncidentId};
use super::request::StoreRequest;
use super::settings::PipelineConfig;
use super::silence::{SilenceId, SilenceRequest};
use super::stages::channels::meta_transition;
use super::stages::view::View;
use super::store::{StoreChange, StoredState};
use super::timers::Timer;
use crate::Severity;
use crate::alert::{Action, Channel};
use crate::clock::Timestamp;

impl Dispatcher {
    /// Open incidents, oldest first, each with what holds it back now.
    pub(crate) fn incident_list(&self, now: Timestamp) -> Vec<Incident> {
        self.incidents
            .open_ids()
            .into_iter()
            .filter_map(|id| self.incident_view(id, now))
            .collect()
    }

    /// An incident as callers see it: with what holds it back now.
    pub(crate) fn incident_view(&self, id: IncidentId, now: Timestamp) -> Option<Incident> {
        let mut inc = self.incidents.incident(id)?.clone();
        inc.held_back = self
            .suppression
            .held(&inc, &self.incidents, now)
            .map(|s| s.reason);
        Some(inc)
    }

    pub(crate) fn silences(&self) -> Vec<super::silence::Silence> {
        self.suppression.silences()
    }

    pub(crate) fn ack(
        &mut self,
        id: IncidentId,
        req: AckRequest,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        let mut fx = Effects::default();
        let r = self.incidents.ack(id, req, now, &mut fx);
        self.apply(fx.take(), now);
        r
    }

    pub(crate) fn unack(&mut self, id: IncidentId, now: Timestamp) -> Result<(), PipelineError> {
        let mut fx = Effects::default();
        let r = self.incidents.unack(id, now, &mut fx);
        self.apply(fx.take(), now);
        r
    }

    pub(crate) fn silence(
        &mut self,
        req: SilenceRequest,
        now: Timestamp,
    ) -> Result<SilenceId, PipelineError> {
        let mut fx = Effects::default();
        let r = self.suppression.silence(req, now, &mut fx);
        self.apply(fx.take(), now);
        r
    }

    pub(crate) fn expire_silence(
        &mut self,
        id: SilenceId,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        let mut fx = Effects::default();
        let r = self.suppression.expire(id, now, true, &mut fx);
        self.apply(fx.take(), now);
        r
    }

    /// Replaces routes, policy, channels and actions, keeping every open incident and what
    /// was already told (nothing is told twice). Changes nothing if it fails.
    pub(crate) fn reload(
        &mut self,
        config: PipelineConfig,
        channels: &HashMap<String, Arc<dyn Channel>>,
        actions: &HashMap<String, Arc<dyn Action>>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        self.install(config, channels, actions, now)?;
        let mut fx = Effects::default();
        self.delivery.fail_orphans(now, &mut fx);
        self.grouping.rebuild(&view_of!(self, now), &mut fx);
        let mut e = Event::new(EventKind::Reloaded, now);
        e.detail = format!(
            "{} route(s), {} channel(s), {} action(s); {} open incident(s) kept",
            self.routes.len(),
            self.config.channels.len(),
            self.config.actions.len(),
            self.incidents.open_count()
        );
        fx.event(e);
        self.apply(fx.take(), now);
        Ok(())
    }

    /// Takes up what the store kept: open incidents (groups and timers rebuilt from them),
    /// silences, the outbox (attempted again with the same idempotency keys), and the
    /// pipeline's own meta-alerts.
    pub(super) fn restore(&mut self, state: StoredState, now: Timestamp) {
        let mut fx = Effects::default();
        fx.timer(now, Timer::Requests);
        self.incidents
            .restore(state.incidents, state.last_incident, now, &mut fx);
        for id in self.incidents.ids() {
            if let Some(inc) = self.incidents.incident(id) {
                self.recovery.restore(inc);
                self.suppression.index(inc);
            }
        }
        self.suppression
            .restore(state.silences, state.last_silence, now, &mut fx);
        self.grouping.rebuild(&view_of!(self, now), &mut fx);
        self.apply(fx.take(), now);
        self.resume_meta_incidents(now);
        let mut fx = Effects::default();
        self.delivery
            .restore(state.outbox, state.last_notification, now, &mut fx);
        self.apply(fx.take(), now);
    }

    /// The pipeline's own incidents the last run left open. A failing channel's stays open,
    /// the channel taken to be failing still, until it delivers again; one of a channel that
    /// is gone resolves now, and so does the store's (it loaded: it works; if it fails again, a
    /// new one opens).
    fn resume_meta_incidents(&mut self, now: Timestamp) {
        let threshold = self.config.notify.channel_failing_after.max(1);
        let meta = self.config.notify.meta_severity;
        let mut fx = Effects::default();
        for id in self.incidents.open_ids() {
            let Some(inc) = self.incidents.incident(id) else {
                continue;
            };
            let (labels, rule) = (inc.item.labels.clone(), Arc::clone(&inc.item.rule));
            let t = match inc.meta_channel.clone() {
                Some(c) if self.delivery.resume_failing(&c, threshold) => continue,
                Some(c) => meta_transition(
                    super::CHANNEL_FAILING_RULE,
                    "vigilo_channel_failures",
                    labels,
                    (meta, Severity::Normal),
                    format!("alert channel {c}: the channel is no longer configured"),
                    now,
                ),
                None if &*rule == super::STORE_FAILING_RULE => meta_transition(
                    super::STORE_FAILING_RULE,
                    "vigilo_store_errors",
                    labels,
                    (meta, Severity::Normal),
                    "vigilo store: the store commits again".into(),
                    now,
                ),
                None => continue,
            };
            self.take_transition(&t, None, false, now, &mut fx);
        }
        self.apply(fx.take(), now);
    }

    /// Applies what other processes queued in the store (acks, silences from the command
    /// line); looks again in half a second.
    pub(super) fn poll_requests(&mut self, now: Timestamp, fx: &mut Effects) {
        let requests = self.journal.lock().take_requests();
        match requests {
            Ok(requests) => {
                for (id, request) in requests {
                    let result = self.apply_request(&request, now);
                    fx.save(StoreChange::RequestDone(id, result));
                }
            }
            Err(e) => {
                let mut j = self.journal.lock();
                j.stats.store_errors += 1;
                j.stats.last_store_error = Some(e.to_string());
            }
        }
        fx.timer(now + std::time::Duration::from_millis(500), Timer::Requests);
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
                        expires_after: expires_after_secs.map(std::time::Duration::from_secs),
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
                .expire_silence(SilenceId(*silence), now)
                .map(|()| format!("silence {silence} expired")),
        }
        .map_err(|e| e.to_string())
    }
}
