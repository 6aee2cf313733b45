//! What a stage may read of the others while it decides: never write. The dispatcher lends one
//! for each decision.

use crate::clock::Timestamp;
use crate::pipeline::incident::IncidentId;

use super::incidents::Incidents;
use super::recovery::Recoveries;
use super::routing::Routes;
use super::suppression::{Held, Suppression};

/// Read-only access to the stages a decision depends on.
pub(crate) struct View<'a> {
    pub(crate) incidents: &'a Incidents,
    pub(crate) suppression: &'a Suppression,
    pub(crate) routes: &'a Routes,
    pub(crate) recovery: &'a Recoveries,
    /// The store's identity, for idempotency keys.
    pub(crate) identity: &'a str,
    pub(crate) now: Timestamp,
}

impl View<'_> {
    /// Why incident `id` is held back now, if it is.
    pub(crate) fn held(&self, id: IncidentId) -> Option<Held> {
        let inc = self.incidents.incident(id)?;
        self.suppression.held(inc, self.incidents, self.now)
    }

    /// The severity route `route` last told incident `id` fired at, if it told.
    pub(crate) fn told(&self, id: IncidentId, route: &str) -> Option<crate::Severity> {
        self.incidents.incident(id)?.route(route)?.notified
    }
}
