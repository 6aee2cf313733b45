//! # vigilo-alertmanager: Prometheus Alertmanager (API v2)
//!
//! POSTs alerts to `<url>/api/v2/alerts`, so that a fleet's Alertmanager groups, silences,
//! inhibits and routes vigilo's alerts with everyone else's.
//!
//! Each alert becomes an Alertmanager alert with
//! - labels: `alertname` = the rule, `severity` = the severity name, then the alert's labels and
//!   the configured `extra_labels` (the alert's own `alertname`/`severity` labels, if any, are
//!   overridden; characters a Prometheus label name cannot hold become `_`: `disk.mount` →
//!   `disk_mount`);
//! - annotations: the alert's annotations, plus `summary` (if the rule has none), `metric`,
//!   `value` and `threshold` when known;
//! - `startsAt` = when the alert changed (RFC 3339), `endsAt` only for a resolved alert;
//! - `generatorURL` if `generator_url` is configured.
//!
//! Alertmanager identifies an alert by its label set, and `severity` is one of the labels. So
//! a **resolved** alert is sent with the severity it had before (`previous`), which ends the
//! very alert that was firing; and when an item moves from one firing level to another (warning
//! → major), the array also carries the previous level's alert with `endsAt` set, so that the
//! old level does not linger until Alertmanager's `resolve_timeout`.
//!
//! Alertmanager resolves a firing alert by itself after `resolve_timeout` (5 minutes by
//! default) unless it is sent again: give the route a `repeat_interval` below that if alerts
//! must stay visible there for as long as they fire.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string | required | Alertmanager's base URL, e.g. `http://alertmanager:9093` |
//! | `headers` | table of strings | none | extra request headers (basic auth behind a proxy …) |
//! | `extra_labels` | table of strings | none | labels added to every alert, e.g. `{ source = "vigilo" }` |
//! | `generator_url` | string | none | a `{{field}}` URL template for `generatorURL` (a link back to a dashboard); each value is encoded for the part of the URL it lands in (the SDK's `template::render_url`) |

use std::collections::BTreeMap;

use vigilo_plugin_sdk::json::{Map, Value, json};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, Severity, http, log, time};

struct Alertmanager;

impl Channel for Alertmanager {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let base: String = config.get("url")?;
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        let extra: BTreeMap<String, String> = config.get_or("headers", BTreeMap::new())?;
        let headers: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = Value::Array(alerts(config, alert)?);
        let response = http::post_json(&url, &headers, &body)?;
        log::debug!("{} posted to {url}: HTTP {}", alert.rule, response.status);
        Ok(())
    }
}

/// The Alertmanager alerts for one vigilo alert (see the crate documentation).
fn alerts(config: &Config, alert: &Alert) -> Result<Vec<Value>, DeliveryError> {
    let extra_labels: BTreeMap<String, String> = config.get_or("extra_labels", BTreeMap::new())?;
    let generator_url = match config.get_opt::<String>("generator_url")? {
        // A URL: each value encoded for the part of it where it lands.
        Some(tpl) => Some(vigilo_plugin_sdk::template::render_url(
            &tpl,
            &vigilo_plugin_sdk::template::Vars::new(alert),
        )?),
        None => None,
    };
    let annotations = annotations(alert);
    let one = |severity: Severity, starts_ms: i64, ends_ms: Option<i64>| {
        let mut labels = Map::new();
        for (k, v) in alert
            .labels
            .iter()
            .map(|(k, v)| (k, v))
            .chain(&extra_labels)
        {
            labels.insert(label_name(k), Value::String(v.clone()));
        }
        labels.insert("alertname".into(), Value::String(alert.rule.clone()));
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

    let mut out = Vec::with_capacity(2);
    if alert.is_resolved() {
        // End the alert that was firing: same labels, so the same severity as before.
        let was = if alert.previous == Severity::Normal {
            alert.severity
        } else {
            alert.previous
        };
        out.push(one(was, alert.since_ms, Some(alert.at_ms)));
    } else {
        out.push(one(alert.severity, alert.at_ms, None));
        if alert.previous != Severity::Normal && alert.previous != alert.severity {
            out.push(one(alert.previous, alert.since_ms, Some(alert.at_ms)));
        }
    }
    Ok(out)
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters become `_`.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

fn annotations(alert: &Alert) -> Map<String, Value> {
    let mut a = Map::new();
    for (k, v) in &alert.annotations {
        a.insert(k.clone(), Value::String(v.clone()));
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
    a
}

vigilo_plugin_sdk::export_channel!(Alertmanager);
