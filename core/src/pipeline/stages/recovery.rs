//! The recovery stage: which action runs for which incident, one run per item at a time, a
//! cooldown between runs, a cap on runs per incident, a timeout. The outcome goes into the
//! incident's record (and so into the notifications that follow). "Recovered" is never claimed
//! here: only the evaluator putting the item back to Normal resolves the incident.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::alert::{Action, ActionError, ActionOutcome, AlertStatus};
use crate::clock::Timestamp;
use crate::pipeline::PipelineError;
use crate::pipeline::effects::{Effect, Effects, RunEnd};
use crate::pipeline::event::EventKind;
use crate::pipeline::incident::{ActionRun, Incident, IncidentId, ItemKey, RunResult};
use crate::pipeline::notification::{item_alert, set_key};
use crate::pipeline::settings::{ActionConfig, Recovery};
use crate::pipeline::timers::Timer;
use crate::pipeline::workers::{ActionJob, Done, Pool, action_pool};

use super::incidents::Incidents;
use super::suppression::Suppression;

/// An action: its settings and threads.
struct ActionState {
    config: ActionConfig,
    action: Arc<dyn Action>,
    pool: Pool<ActionJob>,
}

/// A recovery run in progress.
struct Run {
    item: ItemKey,
    incident: IncidentId,
    /// Index of the recovery in the configuration.
    recovery: usize,
    action: String,
    /// Index of its record in the incident's `actions`.
    record: usize,
    started: Timestamp,
    timed_out: bool,
}

/// Actions, their runs and cooldowns.
#[derive(Default)]
pub(crate) struct Recoveries {
    recoveries: Vec<Recovery>,
    actions: HashMap<String, ActionState>,
    runs: HashMap<u64, Run>,
    running: HashSet<ItemKey>,
    cooldowns: HashMap<(ItemKey, usize), Timestamp>,
    /// Runs per incident per recovery.
    attempts: HashMap<IncidentId, HashMap<usize, u32>>,
    next_run: u64,
    pub(crate) started: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
}

impl Recoveries {
    /// Starts the threads of the configured actions whose settings or implementation changed
    /// (nothing changes yet: [`commit`](Self::commit) takes them, or dropping them ends them).
    pub(crate) fn prepare(
        &self,
        configs: &[ActionConfig],
        impls: &HashMap<String, Arc<dyn Action>>,
        results: &crossbeam_channel::Sender<Done>,
    ) -> Result<Fresh, PipelineError> {
        let mut fresh = HashMap::new();
        for a in configs {
            let imp = impls
                .get(&a.name)
                .ok_or_else(|| PipelineError::MissingAction(a.name.clone()))?;
            let kept = self.actions.get(&a.name).is_some_and(|old| {
                old.config.workers == a.workers && Arc::ptr_eq(&old.action, imp)
            });
            if kept {
                continue;
            }
            let pool = action_pool(Arc::clone(imp), a.workers, results.clone())
                .map_err(PipelineError::Spawn)?;
            fresh.insert(
                a.name.clone(),
                ActionState {
                    config: a.clone(),
                    action: Arc::clone(imp),
                    pool,
                },
            );
        }
        Ok(Fresh(fresh))
    }

    /// Takes the actions of `configs`: the fresh ones, and the running ones kept.
    pub(crate) fn commit(
        &mut self,
        configs: &[ActionConfig],
        recoveries: Vec<Recovery>,
        fresh: Fresh,
    ) {
        let mut fresh = fresh.0;
        let mut actions = HashMap::new();
        for a in configs {
            let state = match fresh.remove(&a.name) {
                Some(new) => new,
                None => match self.actions.remove(&a.name) {
                    Some(mut old) => {
                        old.config = a.clone();
                        old
                    }
                    None => continue, // not reached: every action is fresh or kept
                },
            };
            actions.insert(a.name.clone(), state);
        }
        self.actions = actions;
        self.recoveries = recoveries;
    }

    /// Runs going now.
    pub(crate) fn in_flight(&self) -> usize {
        self.runs.len()
    }

    /// True if a run for `id` is going and has not passed its timeout: its outcome belongs in
    /// the resolve, which waits for it.
    pub(crate) fn holds_resolve(&self, id: IncidentId) -> bool {
        self.runs.values().any(|r| r.incident == id && !r.timed_out)
    }

    /// True if a run (timed out or not) will still report into incident `id`'s record, which
    /// must stay until it does.
    pub(crate) fn refers_to(&self, id: IncidentId) -> bool {
        self.runs.values().any(|r| r.incident == id)
    }

    /// Counts the runs stored incidents recorded (the attempt cap and the cooldown carry over
    /// a restart).
    pub(crate) fn restore(&mut self, inc: &Incident) {
        for run in &inc.actions {
            let Some(i) = self.recoveries.iter().position(|r| r.action == run.action) else {
                continue;
            };
            *self
                .attempts
                .entry(inc.id)
                .or_default()
                .entry(i)
                .or_insert(0) += 1;
            // The cooldown resumes from the end of the last run.
            if let Some(end) = run.finished_at {
                let until = end + self.recoveries[i].cooldown;
                let cooldown = self.cooldowns.entry((inc.item.clone(), i)).or_insert(until);
                *cooldown = (*cooldown).max(until);
            }
        }
    }

    /// Forgets the run counts of an incident that is closed.
    pub(crate) fn forget(&mut self, id: IncidentId) {
        self.attempts.remove(&id);
    }

    /// Starts the recovery the incident calls for, if one may run now.
    pub(crate) fn consider(
        &mut self,
        id: IncidentId,
        incidents: &Incidents,
        suppression: &Suppression,
        identity: &str,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        if self.recoveries.is_empty() {
            return;
        }
        let Some(tr) = incidents.get(id).filter(|t| t.inc.is_open()) else {
            return;
        };
        let inc = &tr.inc;
        let Some((index, recovery)) = self.recoveries.iter().enumerate().find(|(_, r)| {
            r.selector
                .selects(&inc.item.rule, &inc.labels, inc.severity)
        }) else {
            return;
        };
        let attempts = self
            .attempts
            .get(&id)
            .and_then(|a| a.get(&index))
            .copied()
            .unwrap_or(0);
        let skip = if self.running.contains(&inc.item) {
            Some("a run for this item is still going".to_owned())
        } else if attempts >= recovery.max_attempts {
            Some(format!(
                "attempt cap reached ({} run(s) for this incident)",
                recovery.max_attempts
            ))
        } else if let Some(until) = self
            .cooldowns
            .get(&(inc.item.clone(), index))
            .copied()
            .filter(|u| *u > now)
        {
            fx.timer(until, Timer::Recovery(id));
            Some(format!("cooling down until {until}"))
        } else {
            suppression
                .held(inc, incidents, now)
                .filter(|s| s.kind == EventKind::Silenced)
                .map(|s| format!("held back: {}", s.reason))
        };
        if let Some(reason) = skip {
            let mut e = incidents.event(EventKind::ActionSkipped, id, now);
            e.action = Some(recovery.action.clone());
            e.detail = reason;
            fx.event(e);
            return;
        }
        let Some(pool) = self.actions.get(&recovery.action).map(|a| &a.pool) else {
            return;
        };
        let attempt = attempts + 1;
        let mut alert = item_alert(inc, AlertStatus::Firing, tr.previous, tr.since);
        let what = format!("{}:action:{}:{attempt}", id, recovery.action);
        set_key(&mut alert, &what, identity);
        self.next_run += 1;
        let token = self.next_run;
        if !pool.send(ActionJob { token, alert }) {
            return;
        }
        self.attempts.entry(id).or_default().insert(index, attempt);
        self.runs.insert(
            token,
            Run {
                item: inc.item.clone(),
                incident: id,
                recovery: index,
                action: recovery.action.clone(),
                record: incidents.next_run_record(id),
                started: now,
                timed_out: false,
            },
        );
        self.running.insert(inc.item.clone());
        fx.timer(now + recovery.timeout, Timer::ActionTimeout(token));
        self.started += 1;
        fx.push(Effect::RunStarted(
            id,
            ActionRun {
                action: recovery.action.clone(),
                attempt,
                started_at: now,
                finished_at: None,
                result: RunResult::Running,
                outcome: None,
                error: None,
            },
        ));
        let mut e = incidents.event(EventKind::ActionStarted, id, now);
        e.action = Some(recovery.action.clone());
        e.detail = format!("attempt {attempt} of {}", recovery.max_attempts);
        fx.event(e);
    }

    /// A run passed its timeout: recorded as timed out; the item stays locked until the run
    /// really returns, but a resolve no longer waits for it.
    pub(crate) fn on_timeout(
        &mut self,
        token: u64,
        incidents: &Incidents,
        now: Timestamp,
        fx: &mut Effects,
    ) {
        let Some(run) = self.runs.get_mut(&token) else {
            return;
        };
        if run.timed_out {
            return;
        }
        run.timed_out = true;
        let elapsed = now.since(run.started);
        fx.push(Effect::RunEnded(
            run.incident,
            run.record,
            RunEnd::TimedOut(now, format!("no result after {elapsed:?}")),
        ));
        self.failed += 1;
        let mut e = incidents.event(EventKind::ActionFinished, run.incident, now);
        e.action = Some(run.action.clone());
        e.detail = format!("timed out after {elapsed:?}; the item stays locked until it returns");
        fx.event(e);
        fx.push(Effect::ReleaseResolve(run.incident));
    }

    /// An action's thread finished a run.
    pub(crate) fn on_done(
        &mut self,
        token: u64,
        result: Result<ActionOutcome, ActionError>,
        now: Timestamp,
        fx: &mut Effects,
    ) -> Option<DoneRun> {
        let run = self.runs.remove(&token)?;
        self.running.remove(&run.item);
        let cooldown = self
            .recoveries
            .get(run.recovery)
            .map(|r| r.cooldown)
            .unwrap_or_default();
        self.cooldowns
            .insert((run.item.clone(), run.recovery), now + cooldown);
        if !run.timed_out {
            if matches!(&result, Ok(o) if o.success) {
                self.succeeded += 1;
            } else {
                self.failed += 1;
            }
            let (result, outcome, error) = match result {
                Ok(o) => {
                    let mut o = o;
                    o.message = crate::pipeline::truncate(&o.message, 4096);
                    o.output_tail = crate::pipeline::truncate_start(&o.output_tail, 4096);
                    let r = if o.success {
                        RunResult::Succeeded
                    } else {
                        RunResult::Failed
                    };
                    (r, Some(o), None)
                }
                Err(ActionError::Denied(m)) => (
                    RunResult::Denied,
                    None,
                    Some(crate::pipeline::truncate(&m, 4096)),
                ),
                Err(ActionError::Timeout(d)) => (
                    RunResult::TimedOut,
                    None,
                    Some(format!("timed out after {d:?}")),
                ),
                Err(e) => (
                    RunResult::Failed,
                    None,
                    Some(crate::pipeline::truncate(&e.to_string(), 4096)),
                ),
            };
            fx.push(Effect::RunEnded(
                run.incident,
                run.record,
                RunEnd::Returned {
                    at: now,
                    result,
                    outcome,
                    error,
                },
            ));
        }
        Some(DoneRun {
            incident: run.incident,
            record: run.record,
            action: run.action,
            timed_out: run.timed_out,
            cooldown_until: now + cooldown,
        })
    }

    /// At stop: closes every pool and waits for its threads (however long a run takes).
    pub(crate) fn close(&mut self) {
        for a in std::mem::take(&mut self.actions).into_values() {
            a.pool.close();
        }
    }
}

/// Threads started for actions by [`Recoveries::prepare`], not yet in use.
pub(crate) struct Fresh(HashMap<String, ActionState>);

/// A run that returned, for the dispatcher to report.
pub(crate) struct DoneRun {
    pub(crate) incident: IncidentId,
    pub(crate) record: usize,
    pub(crate) action: String,
    pub(crate) timed_out: bool,
    pub(crate) cooldown_until: Timestamp,
}
