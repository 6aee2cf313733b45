//! The incidents stage: one incident per item from the moment it leaves Normal until it is
//! back, and the one record of everything that happened to it (what each route told, the
//! acknowledgement, the recovery runs, the last delivery). It is the only writer of incidents:
//! other stages ask for a record through effects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::Severity;
use crate::clock::Timestamp;
use crate::eval::Transition;
use crate::metrics::Labels;
use crate::pipeline::PipelineError;
use crate::pipeline::effects::{Effect, Effects, RunEnd, Told};
use crate::pipeline::event::{Event, EventKind};
use crate::pipeline::incident::{
    Ack, AckRequest, ActionRun, DeliveryRecord, Incident, IncidentId, ItemKey, RunResult,
};
use crate::pipeline::store::StoreChange;
use crate::pipeline::timers::Timer;

/// An incident with what the pipeline needs beside it.
pub(crate) struct Tracked {
    pub(crate) inc: Incident,
    /// The latest transition's `from` and `since`.
    pub(crate) previous: Severity,
    pub(crate) since: Timestamp,
}

/// What a firing transition did to its incident.
pub(crate) struct Fired {
    pub(crate) id: IncidentId,
    /// Opened, or its severity or no-data state changed: news for the routes.
    pub(crate) changed: bool,
    /// Its severity went down (it may have been inhibiting lower ones).
    pub(crate) lowered: bool,
}

/// Open incidents, and resolved ones still referred to (a group telling the resolve, a
/// recovery run that will report into it).
#[derive(Default)]
pub(crate) struct Incidents {
    open: HashMap<ItemKey, IncidentId>,
    all: HashMap<IncidentId, Tracked>,
    /// Open incidents by metric and series labels (a higher severity on the same series
    /// inhibits the lower one).
    by_series: HashMap<(Arc<str>, Labels), Vec<IncidentId>>,
    next: u64,
    /// Incidents changed in this step, written at its end (only their last state).
    dirty: BTreeSet<IncidentId>,
    /// Incidents forgotten in this step, with their last state.
    closed: Vec<Incident>,
    /// Incidents opened since start.
    pub(crate) opened: u64,
}

impl Incidents {
    pub(crate) fn get(&self, id: IncidentId) -> Option<&Tracked> {
        self.all.get(&id)
    }

    pub(crate) fn incident(&self, id: IncidentId) -> Option<&Incident> {
        self.all.get(&id).map(|t| &t.inc)
    }

    /// The open incident of `item`.
    pub(crate) fn open_of(&self, item: &ItemKey) -> Option<IncidentId> {
        self.open.get(item).copied()
    }

    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Open incidents, oldest first.
    pub(crate) fn open_ids(&self) -> Vec<IncidentId> {
        let mut v: Vec<IncidentId> = self.open.values().copied().collect();
        v.sort();
        v
    }

    /// Every incident held, oldest first.
    pub(crate) fn ids(&self) -> Vec<IncidentId> {
        let mut v: Vec<IncidentId> = self.all.keys().copied().collect();
        v.sort();
        v
    }

    /// The number the next incident will get.
    pub(crate) fn next_id(&self) -> IncidentId {
        IncidentId(self.next + 1)
    }

    /// An event about an incident.
    pub(crate) fn event(&self, kind: EventKind, id: IncidentId, now: Timestamp) -> Event {
        let mut e = Event::new(kind, now);
        e.incident = Some(id);
        if let Some(t) = self.all.get(&id) {
            e.item = Some(t.inc.item.to_string());
            e.rule = Some(t.inc.item.rule.to_string());
            e.severity = Some(t.inc.severity);
        }
        e
    }

    /// An open incident of the same series at a higher severity than `id`'s, if any.
    pub(crate) fn higher_on_series(&self, id: IncidentId) -> Option<&Incident> {
        let inc = &self.all.get(&id)?.inc;
        self.by_series
            .get(&(Arc::clone(&inc.metric), inc.item.labels.clone()))
            .into_iter()
            .flatten()
            .filter(|o| **o != id)
            .filter_map(|o| self.all.get(o))
            .map(|t| &t.inc)
            .find(|o| o.is_open() && o.severity > inc.severity)
    }

    /// An item above Normal: opens its incident or updates it.
    pub(crate) fn fire(
        &mut self,
        item: ItemKey,
        t: &Transition,
        meta_channel: Option<String>,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Fired {
        let mut labels: BTreeMap<String, String> = t.rule_labels.clone();
        labels.extend(t.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
        let Some(id) = self.open.get(&item).copied() else {
            self.next += 1;
            let id = IncidentId(self.next);
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
            self.all.insert(
                id,
                Tracked {
                    inc,
                    previous: t.from,
                    since: t.since,
                },
            );
            self.open.insert(item, id);
            self.by_series
                .entry((Arc::clone(&t.metric), t.labels.clone()))
                .or_default()
                .push(id);
            self.opened += 1;
            self.dirty.insert(id);
            let mut e = self.event(EventKind::Opened, id, now);
            e.detail = format!("{} at {}", t.to, value_text(t.value));
            fx.event(e);
            return Fired {
                id,
                changed: true,
                lowered: false,
            };
        };
        self.dirty.insert(id);
        let Some(tr) = self.all.get_mut(&id) else {
            return Fired {
                id,
                changed: false,
                lowered: false,
            };
        };
        let inc = &mut tr.inc;
        let changed = t.to != inc.severity || t.no_data != inc.no_data;
        let flapping_changed = inc.flapping != t.flapping;
        inc.flapping = t.flapping;
        if !changed {
            let mut e = self.event(EventKind::Deduplicated, id, now);
            e.detail = if flapping_changed {
                format!(
                    "flapping {}: nothing to notify",
                    if t.flapping { "started" } else { "ended" }
                )
            } else {
                "severity unchanged: nothing to notify".to_owned()
            };
            fx.event(e);
            return Fired {
                id,
                changed: false,
                lowered: false,
            };
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
            let mut e = self.event(EventKind::Unacked, id, now);
            e.detail = format!("acknowledgement cleared: severity rose to {}", t.to);
            fx.event(e);
        }
        Fired {
            id,
            changed: true,
            lowered,
        }
    }

    /// An item back to Normal: resolves its incident.
    pub(crate) fn resolve(
        &mut self,
        item: &ItemKey,
        t: &Transition,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Option<IncidentId> {
        let id = self.open.remove(item)?;
        let tr = self.all.get_mut(&id)?;
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
        let series = (Arc::clone(&tr.inc.metric), item.labels.clone());
        if let Some(ids) = self.by_series.get_mut(&series) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_series.remove(&series);
            }
        }
        self.dirty.insert(id);
        let mut e = self.event(EventKind::Resolved, id, now);
        e.severity = Some(t.from);
        e.detail = format!("{} → normal", t.from);
        fx.event(e);
        Some(id)
    }

    /// Forgets a resolved incident (nothing refers to it any more).
    pub(crate) fn close(&mut self, id: IncidentId) {
        if self.all.get(&id).is_some_and(|t| !t.inc.is_open())
            && let Some(t) = self.all.remove(&id)
        {
            self.dirty.remove(&id);
            self.closed.push(t.inc);
        }
    }

    /// Records what a route told.
    pub(crate) fn told(&mut self, told: Told) {
        let (id, route) = match &told {
            Told::Joined(id, r)
            | Told::Notified(id, r, _)
            | Told::Repeated(id, r, _)
            | Told::Escalated(id, r, _)
            | Told::Skipped(id, r, _) => (*id, Arc::clone(r)),
        };
        let Some(tr) = self.all.get_mut(&id) else {
            return;
        };
        self.dirty.insert(id);
        let open = tr.inc.is_open();
        let severity = tr.inc.severity;
        let record = tr.inc.route_mut(&route);
        match told {
            Told::Joined(..) => {}
            Told::Notified(_, _, at) => {
                record.last_notified_at = Some(at);
                if open {
                    record.notified = Some(severity);
                    record.first_notified_at.get_or_insert(at);
                }
            }
            Told::Repeated(_, _, at) => record.last_notified_at = Some(at),
            Told::Escalated(_, _, tier) => record.escalated = record.escalated.max(tier),
            Told::Skipped(_, _, skipped) => record.skipped = skipped,
        }
    }

    /// Records the last delivery of incidents on a route.
    pub(crate) fn delivered(&mut self, ids: &[IncidentId], route: &str, record: DeliveryRecord) {
        for id in ids {
            if let Some(tr) = self.all.get_mut(id) {
                tr.inc.route_mut(route).last_delivery = Some(record.clone());
                self.dirty.insert(*id);
            }
        }
    }

    /// Records a recovery run that started.
    pub(crate) fn run_started(&mut self, id: IncidentId, run: ActionRun) {
        if let Some(tr) = self.all.get_mut(&id) {
            tr.inc.actions.push(run);
            self.dirty.insert(id);
        }
    }

    /// The index the next run of `id` will have in its records.
    pub(crate) fn next_run_record(&self, id: IncidentId) -> usize {
        self.all.get(&id).map_or(0, |t| t.inc.actions.len())
    }

    /// Records how a run ended; the run's one-line summary.
    pub(crate) fn run_ended(
        &mut self,
        id: IncidentId,
        record: usize,
        end: RunEnd,
    ) -> Option<String> {
        let tr = self.all.get_mut(&id)?;
        let r = tr.inc.actions.get_mut(record)?;
        match end {
            RunEnd::TimedOut(at, error) => {
                r.result = RunResult::TimedOut;
                r.finished_at = Some(at);
                r.error = Some(error);
            }
            RunEnd::Returned {
                at,
                result,
                outcome,
                error,
            } => {
                r.finished_at = Some(at);
                r.result = result;
                r.outcome = outcome;
                r.error = error;
            }
        }
        let summary = r.summary();
        self.dirty.insert(id);
        Some(summary)
    }

    /// Acknowledges an open incident.
    pub(crate) fn ack(
        &mut self,
        id: IncidentId,
        req: AckRequest,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), PipelineError> {
        if req.by.trim().is_empty() {
            return Err(PipelineError::BadRequest(
                "an acknowledgement needs `by`: who is on it".into(),
            ));
        }
        check_length("by", &req.by)?;
        check_length("comment", &req.comment)?;
        let tr = self
            .all
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
            fx.timer(at, Timer::AckExpiry(id));
        }
        self.dirty.insert(id);
        let mut e = self.event(EventKind::Acked, id, now);
        e.detail = match expires_at {
            Some(at) => format!("by {} until {at}: {}", req.by, req.comment),
            None => format!("by {}: {}", req.by, req.comment),
        };
        fx.event(e);
        Ok(())
    }

    /// Removes an acknowledgement: escalation and repeats resume.
    pub(crate) fn unack(
        &mut self,
        id: IncidentId,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Result<(), PipelineError> {
        let tr = self
            .all
            .get_mut(&id)
            .filter(|t| t.inc.is_open())
            .ok_or(PipelineError::UnknownIncident(id))?;
        if tr.inc.ack.take().is_none() {
            return Ok(());
        }
        self.dirty.insert(id);
        let mut e = self.event(EventKind::Unacked, id, now);
        e.detail = "by request".into();
        fx.event(e);
        fx.push(Effect::ResumeEscalation(id));
        Ok(())
    }

    /// An acknowledgement's expiry came due.
    pub(crate) fn ack_expired(&mut self, id: IncidentId, now: Timestamp, fx: &mut Effects) {
        let Some(tr) = self.all.get_mut(&id) else {
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
        self.dirty.insert(id);
        let mut e = self.event(EventKind::Unacked, id, now);
        e.detail = "the acknowledgement expired".into();
        fx.event(e);
        fx.push(Effect::ResumeEscalation(id));
    }

    /// Takes up stored incidents (a run that was going when the process ended will never
    /// report: it is recorded as interrupted). Acknowledgement expiries are set again.
    pub(crate) fn restore(
        &mut self,
        stored: Vec<Incident>,
        last: u64,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        self.next = self.next.max(last);
        for mut inc in stored {
            self.next = self.next.max(inc.id.0);
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
                if let Some(at) = inc.ack.as_ref().and_then(|a| a.expires_at) {
                    fx.timer(at, Timer::AckExpiry(id));
                }
            }
            let since = inc.changed_at;
            self.all.insert(
                id,
                Tracked {
                    inc,
                    previous: Severity::Normal,
                    since,
                },
            );
        }
    }

    /// What changed in this step, for the store: the last state of each changed incident,
    /// then the forgotten ones.
    pub(crate) fn take_changes(&mut self, out: &mut Vec<StoreChange>) {
        for id in std::mem::take(&mut self.dirty) {
            if let Some(t) = self.all.get(&id) {
                out.push(StoreChange::Incident(Box::new(t.inc.clone())));
            }
        }
        for inc in std::mem::take(&mut self.closed) {
            let id = inc.id;
            out.push(StoreChange::Incident(Box::new(inc)));
            out.push(StoreChange::IncidentClosed(id));
        }
    }
}

/// The longest `by`, `created_by` or `comment` accepted: they are kept in incidents, silences
/// and the history.
pub(crate) const MAX_TEXT: usize = 4096;

pub(crate) fn check_length(what: &str, text: &str) -> Result<(), PipelineError> {
    if text.len() > MAX_TEXT {
        return Err(PipelineError::BadRequest(format!(
            "`{what}` is {} bytes long; at most {MAX_TEXT} are accepted",
            text.len()
        )));
    }
    Ok(())
}

pub(crate) fn value_text(v: Option<f64>) -> String {
    v.map_or_else(|| "no value".to_owned(), |v| format!("{v}"))
}
