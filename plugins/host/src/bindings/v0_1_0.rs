//! `vigilo:plugin@0.1.0` (frozen): generated bindings, the host side of its imports,
//! conversions.

use std::time::Duration;

use vigilo::alert::{self as core, Alert};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::CallError;
use super::glue::version_glue;
use crate::exec::ExecFailure;
use crate::mail::MailFailure;
use crate::state::HostState;

version_glue!(wit: "../wit/0.1.0", alert: a, added: {});
