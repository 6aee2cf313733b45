//! What a stage asks of the others: stages own their state and decide; they never call each
//! other. Each decision comes back as effects, which the dispatcher's one loop applies in order
//! (depth first: what applying an effect causes is applied before the next one), so the order
//! of events is the order of decisions.

use std::sync::Arc;

use super::event::Event;
use super::incident::{ActionRun, DeliveryRecord, IncidentId, RunResult};
use super::notification::NotificationKind;
use super::store::StoreChange;
use super::timers::Timer;
use crate::alert::{ActionOutcome, Alert};
use crate::clock::Timestamp;
use crate::eval::Transition;

/// One thing to do.
#[derive(Debug)]
pub(crate) enum Effect {
    /// A decision, for the history and the live feed (the journal numbers it).
    Event(Event),
    /// A change for the store, written at the end of the step.
    Save(StoreChange),
    /// A timer on the pipeline's clock.
    Timer(Timestamp, Timer),
    /// A meta-alert's change (a channel failing, the store failing), taken in like one of the
    /// evaluator's transitions; the string names the failing channel, which never gets it.
    Transition(Transition, Option<String>),
    /// An incident opened or changed: it goes to the groups of the routes that take it.
    Route(IncidentId),
    /// An incident resolved: the groups that told it fired tell the resolve.
    Resolved(IncidentId),
    /// A recovery action may be due for the incident.
    ConsiderRecovery(IncidentId),
    /// Something that held notifications back may have ended: groups look again.
    Recheck,
    /// Something is held back: the next moment a silence or maintenance window may change
    /// that gets a timer.
    ArmRecheck,
    /// After groups were rebuilt: each group's clocks continue from its incidents.
    ResumeGroupTimers,
    /// The groups of a resolved incident may tell its resolve now (a recovery run it waited
    /// for ended).
    ReleaseResolve(IncidentId),
    /// Escalation resumes for an incident (an acknowledgement went).
    ResumeEscalation(IncidentId),
    /// A resolved incident may be forgotten if nothing refers to it any more.
    MaybeClose(IncidentId),
    /// A notification for the channels and recipients of a target.
    Notify(Box<Notify>),
    /// What a route told about an incident: the one record of it, kept on the incident.
    Told(Told),
    /// A recovery run started, on the incident's record.
    RunStarted(IncidentId, ActionRun),
    /// A recovery run ended (or timed out): its record on the incident.
    RunEnded(IncidentId, usize, RunEnd),
    /// The last delivery of incidents on a route.
    Delivered(Vec<IncidentId>, String, DeliveryRecord),
}

/// A notification to send: the alert (its key set), where, why, about which incidents.
#[derive(Debug)]
pub(crate) struct Notify {
    pub(crate) alert: Alert,
    pub(crate) kind: NotificationKind,
    /// The route (`None` for a meta-alert sent straight to a fallback).
    pub(crate) route: Option<Arc<str>>,
    pub(crate) channels: Vec<String>,
    /// Recipient names: people and groups.
    pub(crate) recipients: Vec<String>,
    pub(crate) incidents: Vec<IncidentId>,
    /// Channels already tried (a fallback chain, a meta-alert's failing channel).
    pub(crate) tried: Vec<String>,
}

/// What a route told about one incident.
#[derive(Debug, Clone)]
pub(crate) enum Told {
    /// The incident joined one of the route's groups: the route keeps a record of it.
    Joined(IncidentId, RouteRef),
    /// The route notified the incident (firing at its severity, or its resolve).
    Notified(IncidentId, RouteRef, Timestamp),
    /// A repeat of it went out.
    Repeated(IncidentId, RouteRef, Timestamp),
    /// Escalation tier `n` (1-based) of the route was told.
    Escalated(IncidentId, RouteRef, usize),
    /// Who the recipients' windows left out of the route's last notification of it, and why.
    Skipped(IncidentId, RouteRef, Vec<String>),
}

/// A route, by name (as its records on incidents name it).
pub(crate) type RouteRef = Arc<str>;

/// How a recovery run ended.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// It passed its timeout (it may still return).
    TimedOut(Timestamp, String),
    /// It returned.
    Returned {
        at: Timestamp,
        result: RunResult,
        outcome: Option<ActionOutcome>,
        error: Option<String>,
    },
}

/// The effects of one decision, in order.
#[derive(Debug, Default)]
pub(crate) struct Effects(pub(crate) Vec<Effect>);

impl Effects {
    pub(crate) fn push(&mut self, e: Effect) {
        self.0.push(e);
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.0.push(Effect::Event(e));
    }

    pub(crate) fn save(&mut self, c: StoreChange) {
        self.0.push(Effect::Save(c));
    }

    pub(crate) fn timer(&mut self, at: Timestamp, t: Timer) {
        self.0.push(Effect::Timer(at, t));
    }

    pub(crate) fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.0)
    }
}
