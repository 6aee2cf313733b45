//! The pipeline's stages, each with one job and the state that job needs (see the module docs
//! of `pipeline` and ARCHITECTURE.md): incidents, routing, suppression, grouping (with its
//! repeats and escalations), recipients, delivery and recovery. A stage decides and returns
//! effects; the dispatcher applies them. `view` is what a stage may read of the others.

pub(crate) mod channels;
pub(crate) mod delivery;
pub(crate) mod grouping;
pub(crate) mod incidents;
pub(crate) mod recipients;
pub(crate) mod recovery;
mod repeats;
pub(crate) mod routing;
pub(crate) mod suppression;
pub(crate) mod view;
