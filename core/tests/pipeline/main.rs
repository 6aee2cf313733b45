//! The alert pipeline on a virtual clock: routing, every notification policy, delivery,
//! recovery actions, configuration errors and reload.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

mod config;
mod crash;
mod delivery;
mod end_to_end;
mod policy;
mod policy_edges;
mod recipients;
mod recovery;
mod restart;
mod store;
mod store_failing;
mod support;
