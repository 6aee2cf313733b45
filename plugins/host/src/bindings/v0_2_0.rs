//! `vigilo:plugin@0.2.0`: generated bindings, the host side of its imports, conversions.
//! It added the item's fingerprint, its incident and its peak severity to the alert.

use std::time::Duration;

use vigilo::alert::{self as core, Alert};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::CallError;
use super::glue::version_glue;
use crate::exec::ExecFailure;
use crate::mail::MailFailure;
use crate::state::HostState;

version_glue!(wit: "../wit/0.2.0", alert: a, added: {
    peak: severity(a.peak.max(a.severity)),
    fingerprint: a.fingerprint.clone(),
    incident: a.incident,
});
