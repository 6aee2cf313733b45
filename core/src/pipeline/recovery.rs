//! Recovery actions: which action runs for which incident, one run per item at a time, a
//! cooldown between runs, a cap on runs per incident, a timeout; the outcome goes into the
//! incident (and so into the notifications that follow). "Recovered" is never claimed here:
//! only the evaluator putting the item back to Normal resolves the incident.

use super::event::EventKind;
use super::incident::{ActionRun, IncidentId, RunResult};
use super::notification::{item_alert, set_key};
use super::state::{Dispatcher, Run};
use super::timers::Timer;
use super::workers::ActionJob;
use crate::alert::{ActionError, ActionOutcome, AlertStatus};
use crate::clock::Timestamp;

impl Dispatcher {
    /// Starts the recovery the incident calls for, if one may run now.
    pub(crate) fn consider_recovery(&mut self, id: IncidentId, now: Timestamp) {
        if self.config.recoveries.is_empty() {
            return;
        }
        let Some(tr) = self.incidents.get(&id) else {
            return;
        };
        if !tr.inc.is_open() {
            return;
        }
        let inc = &tr.inc;
        let Some((index, recovery)) = self.config.recoveries.iter().enumerate().find(|(_, r)| {
            r.selector
                .selects(&inc.item.rule, &inc.labels, inc.severity)
        }) else {
            return;
        };
        let recovery = recovery.clone();
        let item = inc.item.clone();
        let skip = if self.running.contains(&item) {
            Some("a run for this item is still going".to_owned())
        } else if tr.attempts.get(&index).copied().unwrap_or(0) >= recovery.max_attempts {
            Some(format!(
                "attempt cap reached ({} run(s) for this incident)",
                recovery.max_attempts
            ))
        } else if let Some(until) = self
            .cooldowns
            .get(&(item.clone(), index))
            .copied()
            .filter(|u| *u > now)
        {
            self.timers.set(until, Timer::Recovery(id));
            Some(format!("cooling down until {until}"))
        } else {
            self.suppression(id, now)
                .filter(|s| s.kind == EventKind::Silenced)
                .map(|s| format!("held back: {}", s.reason))
        };
        if let Some(reason) = skip {
            let mut e = self.incident_event(EventKind::ActionSkipped, id, now);
            e.action = Some(recovery.action.clone());
            e.detail = reason;
            self.emit(e);
            return;
        }
        let Some(pool) = self.actions.get(&recovery.action).map(|a| &a.pool) else {
            return;
        };
        let Some(tr) = self.incidents.get_mut(&id) else {
            return;
        };
        let attempt = tr.attempts.entry(index).or_insert(0);
        *attempt += 1;
        let attempt = *attempt;
        let mut alert = item_alert(&tr.inc, AlertStatus::Firing, tr.previous, tr.since);
        let what = format!("{}:action:{}:{attempt}", id, recovery.action);
        set_key(&mut alert, &what, &self.identity);
        self.next_run += 1;
        let token = self.next_run;
        if !pool.send(ActionJob { token, alert }) {
            return;
        }
        tr.inc.actions.push(ActionRun {
            action: recovery.action.clone(),
            attempt,
            started_at: now,
            finished_at: None,
            result: RunResult::Running,
            outcome: None,
            error: None,
        });
        let record = tr.inc.actions.len() - 1;
        self.runs.insert(
            token,
            Run {
                item: item.clone(),
                incident: id,
                recovery: index,
                action: recovery.action.clone(),
                record,
                started: now,
                timed_out: false,
            },
        );
        self.running.insert(item);
        self.timers
            .set(now + recovery.timeout, Timer::ActionTimeout(token));
        self.stats.actions_started += 1;
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::ActionStarted, id, now);
        e.action = Some(recovery.action);
        e.detail = format!("attempt {attempt} of {}", recovery.max_attempts);
        self.emit(e);
    }

    /// A run passed its timeout: recorded as timed out; the item stays locked until the run
    /// really returns.
    pub(crate) fn on_action_timeout(&mut self, token: u64, now: Timestamp) {
        let Some(run) = self.runs.get_mut(&token) else {
            return;
        };
        if run.timed_out {
            return;
        }
        run.timed_out = true;
        let (id, record, action) = (run.incident, run.record, run.action.clone());
        let elapsed = now.since(run.started);
        if let Some(r) = self
            .incidents
            .get_mut(&id)
            .and_then(|t| t.inc.actions.get_mut(record))
        {
            r.result = RunResult::TimedOut;
            r.finished_at = Some(now);
            r.error = Some(format!("no result after {elapsed:?}"));
        }
        self.stats.actions_failed += 1;
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::ActionFinished, id, now);
        e.action = Some(action);
        e.detail = format!("timed out after {elapsed:?}; the item stays locked until it returns");
        self.emit(e);
        self.release_held_resolve(id, now);
    }

    /// A resolve held for a run's outcome may go now.
    fn release_held_resolve(&mut self, id: IncidentId, now: Timestamp) {
        let groups = self
            .incidents
            .get(&id)
            .filter(|t| !t.inc.is_open())
            .map(|t| t.groups.clone())
            .unwrap_or_default();
        for gk in groups {
            self.schedule_flush(&gk, now);
        }
    }

    /// An action's thread finished a run.
    pub(crate) fn on_action_done(
        &mut self,
        token: u64,
        result: Result<ActionOutcome, ActionError>,
        now: Timestamp,
    ) {
        let Some(run) = self.runs.remove(&token) else {
            return;
        };
        self.running.remove(&run.item);
        let cooldown = self
            .config
            .recoveries
            .get(run.recovery)
            .map(|r| r.cooldown)
            .unwrap_or_default();
        self.cooldowns
            .insert((run.item.clone(), run.recovery), now + cooldown);
        let id = run.incident;
        let summary = match self
            .incidents
            .get_mut(&id)
            .and_then(|t| t.inc.actions.get_mut(run.record))
        {
            Some(r) => {
                if !run.timed_out {
                    r.finished_at = Some(now);
                    match &result {
                        Ok(o) => {
                            r.result = if o.success {
                                RunResult::Succeeded
                            } else {
                                RunResult::Failed
                            };
                            let mut o = o.clone();
                            o.message = super::truncate(&o.message, 4096);
                            o.output_tail = super::truncate_start(&o.output_tail, 4096);
                            r.outcome = Some(o);
                        }
                        Err(ActionError::Denied(m)) => {
                            r.result = RunResult::Denied;
                            r.error = Some(super::truncate(m, 4096));
                        }
                        Err(ActionError::Timeout(d)) => {
                            r.result = RunResult::TimedOut;
                            r.error = Some(format!("timed out after {d:?}"));
                        }
                        Err(e) => {
                            r.result = RunResult::Failed;
                            r.error = Some(super::truncate(&e.to_string(), 4096));
                        }
                    }
                }
                r.summary()
            }
            None => format!("{} returned after its incident closed", run.action),
        };
        if !run.timed_out {
            if matches!(&result, Ok(o) if o.success) {
                self.stats.actions_succeeded += 1;
            } else {
                self.stats.actions_failed += 1;
            }
        }
        self.save_incident(id);
        let mut e = self.incident_event(EventKind::ActionFinished, id, now);
        e.action = Some(run.action);
        e.detail = if run.timed_out {
            format!("returned late (after its timeout): {summary}")
        } else {
            summary
        };
        self.emit(e);
        if self.incidents.get(&id).is_some_and(|t| t.inc.is_open()) {
            self.timers.set(now + cooldown, Timer::Recovery(id));
        }
        self.release_held_resolve(id, now);
        self.close_if_done(id);
    }
}
