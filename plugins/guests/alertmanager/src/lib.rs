//! # vigilo-alertmanager: Prometheus Alertmanager (API v2)
//!
//! POSTs alerts to `<url>/api/v2/alerts` of one Alertmanager, or of every peer of a cluster,
//! so that a fleet's Alertmanager groups, silences, inhibits and routes vigilo's alerts with
//! everyone else's.
//!
//! Each alert becomes an Alertmanager alert with
//! - labels: `alertname` = the rule, `severity` = the severity name, then the alert's labels and
//!   the configured `extra_labels` (an extra label replaces an item label of the very same
//!   name; the alert's own `alertname`/`severity` labels, if any, are overridden). Characters
//!   a Prometheus label name cannot hold become `_` (`disk.mount` → `disk_mount`); two
//!   different names that would become the same one are refused (a permanent delivery error
//!   naming both), never merged;
//! - annotations: the alert's annotations, then `extra_annotations`, `summary` (the rule's, or
//!   a generated one), `metric`, `value`, `threshold` when known, and `fingerprint` (the item's
//!   fingerprint, the same on every replica and across restarts), each only where the ones
//!   before did not set it;
//! - `startsAt` = when the alert changed (RFC 3339); `endsAt` for a resolved alert, and in
//!   fleet mode for a firing one too (below);
//! - `generatorURL` if `generator_url` is configured.
//!
//! Alertmanager identifies an alert by its label set, and `severity` is one of the labels. So
//! a **resolved** alert is sent with the severity it had before (`previous`), which ends the
//! very alert that was firing; and when an item moves from one firing level to another (warning
//! → major), the array also carries the previous level's alert with `endsAt` set, so that the
//! old level does not linger.
//!
//! Outside fleet mode, Alertmanager resolves a firing alert by itself after `resolve_timeout`
//! (5 minutes by default) unless it is sent again: give the route a `repeat_interval` below that
//! if alerts must stay visible there for as long as they fire.
//!
//! ## Fleet mode
//!
//! With `resend_interval` set, the plugin behaves toward Alertmanager as Prometheus's notifier
//! does: every firing alert carries an `endsAt` of `ends_after` (4 × `resend_interval`) ahead,
//! and the route re-sends it every `resend_interval` (give the route that `repeat_interval`).
//! The exact rule for resolves is in `fleet.rs`: a replica's resolve ends only its **own**
//! alerts (those whose labels carry `replica_label`); a shared alert ends when the last replica
//! stops re-sending it, within `ends_after`. Alertmanager merges alerts by label set and the
//! latest `endsAt` wins, so no replica can end what another still reports.
//!
//! ## A cluster
//!
//! `urls` lists every peer: each request goes to each of them (Alertmanager's high-availability
//! setup asks senders not to use a load balancer). A delivery succeeds when one peer took it;
//! each peer that failed is logged; it fails (retryable if any peer's failure was) only when
//! every peer failed.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string | one of `url`, `urls` | Alertmanager's base URL, e.g. `http://alertmanager:9093` |
//! | `urls` | list of strings | | every peer of an Alertmanager cluster |
//! | `headers` | table of strings | none | extra request headers (basic auth behind a proxy …) |
//! | `extra_labels` | table of strings | none | labels added to every alert, e.g. `{ service = "orders-api" }` |
//! | `extra_annotations` | table of strings | none | annotations added to every alert (a rule's own annotation of the same name wins) |
//! | `generator_url` | string | none | a `{{field}}` URL template for `generatorURL` (a link back to a dashboard); each value is encoded for the part of the URL it lands in (the SDK's `template::render_url`) |
//! | `resend_interval` | duration (`"1m"`) | none: fleet mode off | fleet mode: how often the route re-sends a firing alert (its `repeat_interval`) |
//! | `ends_after` | duration | 4 × `resend_interval` | fleet mode: how far ahead a firing alert's `endsAt` is |
//! | `replica_label` | string | `replica` | fleet mode: the label that marks an alert as this replica's own |

mod fleet;
mod labels;
mod peers;

use std::collections::BTreeMap;

use vigilo_plugin_sdk::json::{Map, Value, json};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, Severity, clock, log, time};

use fleet::Fleet;

struct Alertmanager;

impl Channel for Alertmanager {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let urls = peers::urls(config)?;
        let extra: BTreeMap<String, String> = config.get_or("headers", BTreeMap::new())?;
        let headers: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let fleet = Fleet::from_config(config)?;
        let alerts = alerts(config, alert, fleet.as_ref())?;
        if alerts.is_empty() {
            log::debug!(
                "{}: the resolve of a shared alert is not sent in fleet mode; it ends when \
                 the last replica stops re-sending it",
                alert.rule
            );
            return Ok(());
        }
        peers::post_all(&urls, &headers, &Value::Array(alerts))
    }
}

/// The Alertmanager alerts for one vigilo alert (see the crate documentation).
fn alerts(
    config: &Config,
    alert: &Alert,
    fleet: Option<&Fleet>,
) -> Result<Vec<Value>, DeliveryError> {
    let extra_labels: BTreeMap<String, String> = config.get_or("extra_labels", BTreeMap::new())?;
    let extra_annotations: BTreeMap<String, String> =
        config.get_or("extra_annotations", BTreeMap::new())?;
    let mut labels = labels::label_set(&alert.labels, &extra_labels)?;
    let generator_url = match config.get_opt::<String>("generator_url")? {
        // A URL: each value encoded for the part of it where it lands.
        Some(tpl) => Some(vigilo_plugin_sdk::template::render_url(
            &tpl,
            &vigilo_plugin_sdk::template::Vars::new(alert),
        )?),
        None => None,
    };
    let annotations = annotations(alert, &extra_annotations);
    labels.insert("alertname".into(), alert.rule.clone());
    let one = |severity: Severity, starts_ms: i64, ends_ms: Option<i64>| {
        let mut labels: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        labels.insert("severity".into(), Value::String(severity.name().into()));
        let mut a = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": time::rfc3339(starts_ms),
        });
        if let Some(ends) = ends_ms {
            a["endsAt"] = Value::String(time::rfc3339(ends));
        }
        if let Some(g) = &generator_url {
            a["generatorURL"] = Value::String(g.clone());
        }
        a
    };

    // Whether this replica may end the alert now: always outside fleet mode, only its own
    // alerts in fleet mode (fleet.rs).
    let may_end = fleet.is_none_or(|f| f.is_own(&alert.labels));
    let mut out = Vec::with_capacity(2);
    if alert.is_resolved() {
        // End the alert that was firing: same labels, so the same severity as before.
        let was = if alert.previous == Severity::Normal {
            alert.severity
        } else {
            alert.previous
        };
        if may_end {
            out.push(one(was, alert.since_ms, Some(alert.at_ms)));
        }
    } else {
        let ends = fleet.map(|f| clock::now_ms().saturating_add(f.ends_after_ms));
        out.push(one(alert.severity, alert.at_ms, ends));
        if alert.previous != Severity::Normal && alert.previous != alert.severity && may_end {
            out.push(one(alert.previous, alert.since_ms, Some(alert.at_ms)));
        }
    }
    Ok(out)
}

fn annotations(alert: &Alert, extra: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut a = Map::new();
    for (k, v) in &alert.annotations {
        a.insert(k.clone(), Value::String(v.clone()));
    }
    for (k, v) in extra {
        a.entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    a.entry("summary")
        .or_insert_with(|| Value::String(alert.summary()));
    a.entry("metric")
        .or_insert_with(|| Value::String(alert.metric.clone()));
    if let Some(v) = alert.value {
        a.entry("value")
            .or_insert_with(|| Value::String(v.to_string()));
    }
    if let Some(t) = alert.threshold {
        a.entry("threshold")
            .or_insert_with(|| Value::String(t.to_string()));
    }
    if !alert.fingerprint.is_empty() {
        a.entry("fingerprint")
            .or_insert_with(|| Value::String(alert.fingerprint.clone()));
    }
    a
}

vigilo_plugin_sdk::export_channel!(Alertmanager);
