//! The pipeline's one loop: it owns the stages, hands each input (a transition, a timer, a
//! worker's result, a caller's request) to the stage it belongs to, and applies the effects
//! that come back, depth first, in order. Stages never call each other; whatever one stage's
//! decision means for another is an effect applied here. At the end of each step the step's
//! changes go to the journal whole (one transaction), and then what the step queued is handed
//! to the channels: each notification is committed before its first attempt.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::PipelineError;
use super::effects::{Effect, Effects};
use super::event::{Event, EventKind};
use super::incident::{Incident, IncidentId, ItemKey};
use super::journal::{Journal, Outcome};
use super::notification::NotificationId;
use super::settings::PipelineConfig;
use super::stages::channels::meta_transition;
use super::stages::delivery::{Delivery, Reads};
use super::stages::grouping::Grouping;
use super::stages::incidents::{Incidents, value_text};
use super::stages::recipients::Recipients;
use super::stages::recovery::Recoveries;
use super::stages::routing::Routes;
use super::stages::suppression::Suppression;
use super::stages::view::View;
use super::stats::PipelineStats;
use super::store::{StoreChange, StoredState};
use super::timers::{Timer, Timers};
use super::workers::Done;
use crate::Severity;
use crate::alert::{Action, Channel};
use crate::clock::{Clock, Timestamp};
use crate::eval::Transition;
use crate::metrics::Labels;

/// What the loop lends a stage to read: every stage but the one deciding.
macro_rules! view_of {
    ($d:expr, $now:expr) => {
        View {
            incidents: &$d.incidents,
            suppression: &$d.suppression,
            routes: &$d.routes,
            recovery: &$d.recovery,
            identity: &$d.identity,
            now: $now,
        }
    };
}

/// What the delivery stage reads.
macro_rules! reads_of {
    ($d:expr, $now:expr) => {
        Reads {
            incidents: &$d.incidents,
            recipients: &$d.recipients,
            notify: &$d.config.notify,
            identity: &$d.identity,
            hold_limit: $d.config.store.hold_limit,
            now: $now,
        }
    };
}

pub(super) use view_of;

/// Counters the loop keeps itself (the stages keep theirs).
#[derive(Debug, Default)]
struct Counters {
    transitions: u64,
    unrouted: u64,
    deduplicated: u64,
    inhibited: u64,
    silenced: u64,
    deferred: u64,
    dropped: u64,
}

/// The pipeline's state machine: the stages and the loop that applies their effects.
pub(crate) struct Dispatcher {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: PipelineConfig,
    pub(crate) journal: Arc<Mutex<Journal>>,
    /// The store's identity, part of every idempotency key.
    pub(super) identity: String,
    pub(super) incidents: Incidents,
    pub(super) suppression: Suppression,
    pub(super) routes: Routes,
    pub(super) grouping: Grouping,
    pub(super) recipients: Recipients,
    pub(super) delivery: Delivery,
    pub(super) recovery: Recoveries,
    pub(crate) timers: Timers,
    pub(super) results: Sender<Done>,
    /// This step's changes, handed to the journal whole at the end of the step.
    pub(super) step: Vec<StoreChange>,
    counters: Counters,
}

impl Dispatcher {
    /// A pipeline for `config` with the channels and actions given, resuming from `state`.
    pub(crate) fn start(
        clock: Arc<dyn Clock>,
        config: PipelineConfig,
        journal: Arc<Mutex<Journal>>,
        state: StoredState,
        channels: &HashMap<String, Arc<dyn Channel>>,
        actions: &HashMap<String, Arc<dyn Action>>,
        results: Sender<Done>,
    ) -> Result<Dispatcher, PipelineError> {
        let identity = journal.lock().identity().to_owned();
        let mut d = Dispatcher {
            clock,
            config: PipelineConfig::default(),
            journal,
            identity,
            incidents: Incidents::default(),
            suppression: Suppression::default(),
            routes: Routes::default(),
            grouping: Grouping::default(),
            recipients: Recipients::default(),
            delivery: Delivery::default(),
            recovery: Recoveries::default(),
            timers: Timers::default(),
            results,
            step: Vec::new(),
            counters: Counters::default(),
        };
        let now = d.clock.now();
        d.install(config, channels, actions, now)?;
        d.restore(state, now);
        d.commit();
        Ok(d)
    }

    /// Takes the configuration's stages; the threads of channels and actions whose settings
    /// and implementation did not change keep running. Fails, changing nothing, if an
    /// implementation is missing.
    pub(super) fn install(
        &mut self,
        config: PipelineConfig,
        channels: &HashMap<String, Arc<dyn Channel>>,
        actions: &HashMap<String, Arc<dyn Action>>,
        now: Timestamp,
    ) -> Result<(), PipelineError> {
        for c in &config.channels {
            if !channels.contains_key(&c.name) {
                return Err(PipelineError::MissingChannel(c.name.clone()));
            }
        }
        for a in &config.actions {
            if !actions.contains_key(&a.name) {
                return Err(PipelineError::MissingAction(a.name.clone()));
            }
        }
        // Threads for new actions, then channels; if either fails, nothing has changed.
        let fresh = self
            .recovery
            .prepare(&config.actions, actions, &self.results)?;
        self.delivery
            .install(&config.channels, channels, &self.results, now)?;
        self.recovery
            .commit(&config.actions, config.recoveries.clone(), fresh);
        self.routes = Routes::new(config.routes.clone());
        self.recipients = Recipients::new(config.people.clone(), config.groups.clone());
        self.suppression
            .configure(config.maintenance.clone(), config.inhibit.clone());
        for id in self.incidents.ids() {
            if let Some(inc) = self.incidents.incident(id) {
                self.suppression.index(inc);
            }
        }
        self.config = config;
        Ok(())
    }

    /// Applies effects in order, depth first: what applying one causes is applied before the
    /// next.
    pub(super) fn apply(&mut self, effects: Vec<Effect>, now: Timestamp) {
        for e in effects {
            let mut fx = Effects::default();
            self.apply_one(e, now, &mut fx);
            if !fx.0.is_empty() {
                self.apply(fx.take(), now);
            }
        }
    }

    fn apply_one(&mut self, e: Effect, now: Timestamp, fx: &mut Effects) {
        match e {
            Effect::Event(e) => {
                self.count(e.kind);
                let e = self.journal.lock().emit(e);
                self.step.push(StoreChange::Event(Box::new(e)));
            }
            Effect::Save(c) => self.step.push(c),
            Effect::Timer(at, t) => self.timers.set(at, t),
            Effect::Transition(t, meta) => self.take_transition(&t, meta, false, now, fx),
            Effect::Route(id) => self.route(id, now, fx),
            Effect::Resolved(id) => self.grouping.resolved(id, &view_of!(self, now), fx),
            Effect::ConsiderRecovery(id) => self.recovery.consider(
                id,
                &self.incidents,
                &self.suppression,
                &self.identity,
                now,
                fx,
            ),
            Effect::Recheck => self.grouping.recheck(&view_of!(self, now), fx),
            Effect::ArmRecheck => self.suppression.arm_recheck(now, fx),
            Effect::ResumeGroupTimers => self.grouping.resume_timers(&view_of!(self, now), fx),
            Effect::ReleaseResolve(id) => {
                self.grouping.release_resolve(id, &view_of!(self, now), fx);
            }
            Effect::ResumeEscalation(id) => {
                self.grouping
                    .resume_escalation(id, &view_of!(self, now), fx);
            }
            Effect::MaybeClose(id) => {
                if !self.grouping.has(id) && !self.recovery.refers_to(id) {
                    self.incidents.close(id);
                    if self.incidents.get(id).is_none() {
                        self.recovery.forget(id);
                    }
                }
            }
            Effect::Notify(n) => self.delivery.notify(*n, &reads_of!(self, now), fx),
            Effect::Told(t) => self.incidents.told(t),
            Effect::RunStarted(id, run) => self.incidents.run_started(id, run),
            Effect::RunEnded(id, record, end) => {
                self.incidents.run_ended(id, record, end);
            }
            Effect::Delivered(ids, route, record) => {
                self.incidents.delivered(&ids, &route, record);
            }
        }
    }

    /// The loop's counters, from the decisions' events.
    fn count(&mut self, kind: EventKind) {
        let c = &mut self.counters;
        match kind {
            EventKind::Unrouted => c.unrouted += 1,
            EventKind::Deduplicated => c.deduplicated += 1,
            EventKind::Inhibited => c.inhibited += 1,
            EventKind::Silenced => c.silenced += 1,
            EventKind::Deferred => c.deferred += 1,
            EventKind::Dropped => c.dropped += 1,
            _ => {}
        }
    }

    /// A transition from the evaluator.
    pub(crate) fn on_transition(&mut self, t: &Transition, now: Timestamp) {
        self.counters.transitions += 1;
        let mut fx = Effects::default();
        self.take_transition(t, None, true, now, &mut fx);
        self.apply(fx.take(), now);
    }

    /// A transition (the evaluator's, recorded as a `Transition` event, or a meta-alert's):
    /// its incident opens, changes or resolves, and what that means for routes, recovery and
    /// suppression follows.
    pub(super) fn take_transition(
        &mut self,
        t: &Transition,
        meta_channel: Option<String>,
        evaluator: bool,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let item = ItemKey {
            rule: Arc::clone(&t.rule),
            labels: t.labels.clone(),
        };
        if evaluator {
            fx.event(self.transition_event(&item, t, now));
        }
        self.take_change(item, t, meta_channel, now, fx);
    }

    /// The `Transition` event of an evaluator's transition.
    fn transition_event(&self, item: &ItemKey, t: &Transition, now: Timestamp) -> Event {
        let mut e = Event::new(EventKind::Transition, now);
        // The incident it belongs to: the open one, or the one it is about to open.
        e.incident = self
            .incidents
            .open_of(item)
            .or_else(|| (t.to != Severity::Normal).then(|| self.incidents.next_id()));
        e.item = Some(item.to_string());
        e.rule = Some(t.rule.to_string());
        e.severity = Some(t.to);
        e.detail = describe(t);
        e
    }

    fn take_change(
        &mut self,
        item: ItemKey,
        t: &Transition,
        meta_channel: Option<String>,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        if t.to == Severity::Normal {
            if let Some(id) = self.incidents.resolve(&item, t, now, fx) {
                if let Some(inc) = self.incidents.incident(id) {
                    self.suppression.index(inc);
                }
                fx.push(Effect::Resolved(id));
                fx.push(Effect::Recheck);
                fx.push(Effect::MaybeClose(id));
            }
            return;
        }
        let fired = self.incidents.fire(item, t, meta_channel, now, fx);
        if !fired.changed {
            return;
        }
        if let Some(inc) = self.incidents.incident(fired.id) {
            self.suppression.index(inc);
        }
        fx.push(Effect::Route(fired.id));
        fx.push(Effect::ConsiderRecovery(fired.id));
        if fired.lowered {
            // It may have been inhibiting lower severities on the same item.
            fx.push(Effect::Recheck);
        }
    }

    /// An opened or changed incident goes to the groups of the routes that take it.
    fn route(&mut self, id: IncidentId, now: Timestamp, fx: &mut Effects) {
        let Some(inc) = self.incidents.incident(id) else {
            return;
        };
        let routes = self
            .routes
            .matching(&inc.item.rule, &inc.labels, inc.severity);
        if routes.is_empty() {
            if !self.grouping.has(id) {
                let meta = inc.meta_channel.is_some();
                let mut e = self.incidents.event(EventKind::Unrouted, id, now);
                e.detail = "no route takes this alert and there is no default route".into();
                fx.event(e);
                if meta {
                    self.delivery
                        .notify_meta_direct(id, &reads_of!(self, now), fx);
                }
            }
            return;
        }
        for r in routes {
            self.grouping.join(id, r, &view_of!(self, now), fx);
        }
    }

    /// Runs every timer due at `now`.
    pub(crate) fn run_timers(&mut self, now: Timestamp) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            let mut fx = Effects::default();
            match timer {
                Timer::Flush(gk) => {
                    self.grouping
                        .on_flush_timer(&gk, at, &view_of!(self, now), &mut fx)
                }
                Timer::Repeat(gk) => {
                    self.grouping
                        .on_repeat_timer(&gk, at, &view_of!(self, now), &mut fx)
                }
                Timer::Escalate(id, route) => {
                    self.grouping
                        .on_escalate(id, &route, &view_of!(self, now), &mut fx)
                }
                Timer::AckExpiry(id) => self.incidents.ack_expired(id, now, &mut fx),
                Timer::SilenceEnd(id) => self.suppression.on_silence_end(id, now, &mut fx),
                Timer::Recheck => {
                    self.suppression.on_recheck(at);
                    fx.push(Effect::Recheck);
                }
                Timer::Retry(id) => {
                    let forgotten = self.delivery.on_retry(id, &reads_of!(self, now), &mut fx);
                    self.forget(&forgotten);
                }
                Timer::RateSummary(ch) => {
                    self.delivery
                        .on_rate_summary(&ch, &reads_of!(self, now), &mut fx);
                }
                Timer::Recovery(id) => fx.push(Effect::ConsiderRecovery(id)),
                Timer::ActionTimeout(token) => {
                    self.recovery
                        .on_timeout(token, &self.incidents, now, &mut fx);
                }
                Timer::Requests => self.poll_requests(now, &mut fx),
                // Nothing to do here: the commit that ends the step writes what waits.
                Timer::StoreRetry => {}
            }
            self.apply(fx.take(), now);
        }
    }

    /// A worker's report.
    pub(crate) fn on_done(&mut self, done: Done, now: Timestamp) {
        let mut fx = Effects::default();
        match done {
            Done::Delivery {
                id,
                result,
                elapsed,
            } => self
                .delivery
                .on_delivered(id, result, elapsed, &reads_of!(self, now), &mut fx),
            Done::Action { token, result } => {
                if let Some(run) = self.recovery.on_done(token, result, now, &mut fx) {
                    self.apply(fx.take(), now);
                    let summary = self
                        .incidents
                        .incident(run.incident)
                        .and_then(|i| i.actions.get(run.record))
                        .map(super::incident::ActionRun::summary)
                        .unwrap_or_else(|| {
                            format!("{} returned after its incident closed", run.action)
                        });
                    let mut e = self
                        .incidents
                        .event(EventKind::ActionFinished, run.incident, now);
                    e.action = Some(run.action);
                    e.detail = if run.timed_out {
                        format!("returned late (after its timeout): {summary}")
                    } else {
                        summary
                    };
                    fx.event(e);
                    if self
                        .incidents
                        .incident(run.incident)
                        .is_some_and(Incident::is_open)
                    {
                        fx.timer(run.cooldown_until, Timer::Recovery(run.incident));
                    }
                    fx.push(Effect::ReleaseResolve(run.incident));
                    fx.push(Effect::MaybeClose(run.incident));
                }
            }
        }
        self.apply(fx.take(), now);
    }

    /// Ends the step: its changes go to the journal whole, then what it queued goes to the
    /// channels (or is held while the store fails).
    pub(crate) fn commit(&mut self) {
        let now = self.clock.now();
        let mut outcome = self.write(now);
        if outcome.started_failing.is_some() || outcome.recovered.is_some() {
            let mut fx = Effects::default();
            self.store_news(&outcome, now, &mut fx);
            self.apply(fx.take(), now);
            outcome.saved = self.write(now).saved;
        }
        let mut fx = Effects::default();
        let forgotten = self
            .delivery
            .after_commit(outcome.saved, &reads_of!(self, now), &mut fx);
        self.forget(&forgotten);
        self.apply(fx.take(), now);
    }

    fn write(&mut self, now: Timestamp) -> Outcome {
        self.incidents.take_changes(&mut self.step);
        let step = std::mem::take(&mut self.step);
        self.journal.lock().commit(step, now)
    }

    /// Notifications taken out while the store failed never reach it.
    fn forget(&mut self, ids: &[NotificationId]) {
        if ids.is_empty() {
            return;
        }
        let mut journal = self.journal.lock();
        for id in ids {
            journal.forget_notification(*id);
        }
    }

    /// The store started failing (the meta-alert opens) or commits again (what was held goes
    /// out, the meta-alert resolves).
    fn store_news(&mut self, outcome: &Outcome, now: Timestamp, fx: &mut Effects) {
        let store = |to: Severity, summary: String| {
            meta_transition(
                super::STORE_FAILING_RULE,
                "vigilo_store_errors",
                Labels::from_pairs(&[]),
                (Severity::Normal, to),
                format!("vigilo store: {summary}"),
                now,
            )
        };
        if let Some(since) = outcome.recovered {
            let mut e = Event::new(EventKind::StoreFailing, now);
            e.detail = format!(
                "resolved: the store commits again after {}; {} held notification(s) go out",
                crate::duration::format_duration(std::time::Duration::from_secs(
                    now.since(since).as_secs()
                )),
                self.delivery.held_len()
            );
            fx.event(e);
            self.delivery.release_held(&reads_of!(self, now), fx);
            fx.push(Effect::Transition(
                store(Severity::Normal, "the store commits again".into()),
                None,
            ));
        }
        if let Some(error) = &outcome.started_failing {
            let mut e = Event::new(EventKind::StoreFailing, now);
            e.detail = format!("the store cannot commit: {error}; new notifications are held");
            fx.event(e);
            fx.push(Effect::Transition(
                store(
                    self.config.notify.meta_severity,
                    format!("the store cannot commit; notifications are held in memory: {error}"),
                ),
                None,
            ));
            if let Some(f) = self.journal.lock().failing() {
                fx.timer(f.retry_at, Timer::StoreRetry);
            }
        } else if let Some(f) = self.journal.lock().failing() {
            fx.timer(f.retry_at, Timer::StoreRetry);
        }
    }

    /// In-flight deliveries and action runs.
    pub(crate) fn in_flight(&self) -> usize {
        self.delivery.in_flight() + self.recovery.in_flight()
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let c = &self.counters;
        let d = &self.delivery.stats;
        let j = self.journal.lock().stats.clone();
        PipelineStats {
            transitions: c.transitions,
            incidents_open: self.incidents.open_count(),
            incidents_opened: self.incidents.opened,
            notifications: d.notifications,
            delivered: d.delivered,
            failed: d.failed,
            retries: d.retries,
            fallbacks: d.fallbacks,
            held_back: d.held_back,
            unrouted: c.unrouted,
            deduplicated: c.deduplicated,
            inhibited: c.inhibited,
            silenced: c.silenced,
            deferred: c.deferred,
            dropped: c.dropped,
            actions_started: self.recovery.started,
            actions_succeeded: self.recovery.succeeded,
            actions_failed: self.recovery.failed,
            outbox: self.delivery.outbox_len(),
            in_flight: self.in_flight(),
            events_dropped: j.events_dropped,
            store_errors: j.store_errors,
            last_store_error: j.last_store_error,
            store_failing: self.journal.lock().failing().is_some(),
            held_uncommitted: self.delivery.held_len(),
            held_summarised: d.held_summarised,
            events_lost: j.events_lost,
            groups: self.grouping.len(),
            timers: self.timers.len(),
        }
    }

    /// At stop: every group with pending changes notifies now, without waiting.
    pub(crate) fn flush_all(&mut self, now: Timestamp) {
        let mut fx = Effects::default();
        self.grouping.flush_all(&view_of!(self, now), &mut fx);
        self.apply(fx.take(), now);
    }

    /// At stop: closes every pool and waits for its threads to let go of the channel or action.
    pub(crate) fn close_pools(&mut self) {
        self.delivery.close();
        self.recovery.close();
    }
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
