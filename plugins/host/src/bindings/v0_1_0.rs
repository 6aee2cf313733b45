//! `vigilo:plugin@0.1.0`: generated bindings, the host side of its imports, conversions.

use std::time::Duration;

use vigilo::alert::{self as core, Alert};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::CallError;
use super::glue::version_glue;
use crate::exec::ExecFailure;
use crate::mail::MailFailure;
use crate::state::HostState;

mod channel_world {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "channel-plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

mod action_world {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "action-plugin",
        imports: { default: async },
        exports: { default: async },
        with: {
            "vigilo:plugin/types": super::channel_world::vigilo::plugin::types,
            "vigilo:plugin/log": super::channel_world::vigilo::plugin::log,
            "vigilo:plugin/clock": super::channel_world::vigilo::plugin::clock,
        },
    });
}

pub(crate) use action_world::ActionPluginPre;
pub(crate) use channel_world::ChannelPluginPre;

use action_world::vigilo::plugin::exec;
use channel_world::vigilo::plugin::{clock, log as wit_log, mail, types};

version_glue!();

fn to_wit(a: &Alert) -> types::Alert {
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    types::Alert {
        rule: a.rule.clone(),
        metric: a.metric.clone(),
        labels: pairs(&a.labels),
        annotations: pairs(&a.annotations),
        severity: severity(a.severity),
        previous: severity(a.previous),
        status: match a.status {
            core::AlertStatus::Firing => types::AlertStatus::Firing,
            core::AlertStatus::Resolved => types::AlertStatus::Resolved,
        },
        value: a.value,
        threshold: a.threshold,
        since_ms: a.since.as_millis(),
        at_ms: a.at.as_millis(),
        idempotency_key: a.idempotency_key.clone(),
        recipients: a.recipients.clone(),
    }
}
