//! Requests another process queues for the running pipeline (the command line's acks and
//! silences), through the store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::incident::IncidentId;
use super::silence::SilenceRequest;

/// What another process may ask the running pipeline to do (see [`SqliteStore::submit`](super::SqliteStore::submit)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreRequest {
    /// Acknowledge an incident.
    Ack {
        /// The incident.
        incident: IncidentId,
        /// Who.
        by: String,
        /// Why.
        comment: String,
        /// Lapses after this many seconds.
        expires_after_secs: Option<u64>,
        /// Survives a rise in severity.
        sticky: bool,
    },
    /// Remove an acknowledgement.
    Unack {
        /// The incident.
        incident: IncidentId,
    },
    /// Create a silence.
    Silence {
        /// Rule names.
        rules: Vec<String>,
        /// Label matchers.
        matchers: std::collections::BTreeMap<String, String>,
        /// Seconds it lasts.
        duration_secs: u64,
        /// Who.
        created_by: String,
        /// Why.
        comment: String,
    },
    /// End a silence.
    ExpireSilence {
        /// The silence.
        silence: u64,
    },
}

impl StoreRequest {
    /// The silence request this stands for, if it is one.
    pub(crate) fn silence_request(&self) -> Option<SilenceRequest> {
        match self {
            StoreRequest::Silence {
                rules,
                matchers,
                duration_secs,
                created_by,
                comment,
            } => Some(SilenceRequest {
                rules: rules.clone(),
                matchers: matchers.clone(),
                starts_at: None,
                duration: Duration::from_secs(*duration_secs),
                created_by: created_by.clone(),
                comment: comment.clone(),
            }),
            _ => None,
        }
    }
}
