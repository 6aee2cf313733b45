//! # vigilo-sms-gateway: HTTP SMS / KakaoTalk-style gateways
//!
//! Most SMS and messenger gateways (SMS providers, KakaoTalk business message relays, …) take
//! one HTTP request per message, as a form or a JSON object whose field names differ from one
//! provider to the next. This plugin is a template for all of them: the operator names the
//! fields and writes each as a `{{field}}` template; the plugin sends **one request per
//! recipient**, with `{{recipient}}` set to that recipient.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string | required | the gateway's endpoint (its host must be in `allowed_hosts`) |
//! | `format` | `"form"` or `"json"` | `"form"` | `application/x-www-form-urlencoded` or a JSON object |
//! | `fields` | table of strings | required unless `body_template` | field name → template, e.g. `to = "{{recipient}}"`, `text = "[{{severity}}] {{summary}}"` |
//! | `body_template` | string | none | with `format = "json"`: the whole body as a template (for nested JSON); values are JSON-escaped |
//! | `headers` | table of strings | none | extra headers, typically the provider's auth: `{ Authorization = "Bearer …" }` or `{ "X-Api-Key" = "…" }` |
//! | `recipients` | list of strings | none | used when the alert carries no recipients |
//! | `max_length` | integer | none | cut every rendered `fields` value to this many characters (SMS length limits) |
//!
//! Example (a form-based SMS provider):
//!
//! ```toml
//! [plugins.sms.config]
//! url = "https://sms.example.com/v1/send"
//! format = "form"
//! headers = { Authorization = "Bearer …" }
//! fields = { to = "{{recipient}}", from = "15881234", text = "[{{severity_ko}}] {{summary}}" }
//! ```
//!
//! Alert data is encoded for where it lands: each `fields` value is one form field
//! (form-encoded: `&`, `=`, `+`, `%` and line breaks stay inside it) or one JSON string
//! (the body is built as a JSON object, never pasted), and `body_template` values are escaped
//! for JSON strings. The URL and headers are the operator's and take no alert data.
//!
//! Every recipient is attempted even if an earlier one failed. The delivery then fails as a
//! whole, retryable if any failure was (under the contract's retry policy: 408, 425, 429, 5xx,
//! transport), naming the recipients that
//! failed; a host retry sends again to every recipient, so a provider that deduplicates on a
//! field holding `{{idempotency_key}}` avoids double messages.

use std::collections::BTreeMap;

use vigilo_plugin_sdk::json::{self, Map, Value};
use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, http, log};

struct SmsGateway;

impl Channel for SmsGateway {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let url: String = config.get("url")?;
        let format: String = config.get_or("format", "form".to_owned())?;
        let json_body = match format.as_str() {
            "form" => false,
            "json" => true,
            other => {
                return Err(DeliveryError::Permanent(format!(
                    "config: setting `format`: expected \"form\" or \"json\", got {other:?}"
                )));
            }
        };
        let fields: BTreeMap<String, String> = config.get_or("fields", BTreeMap::new())?;
        let body_template: Option<String> = config.get_opt("body_template")?;
        if body_template.is_some() && !json_body {
            return Err(DeliveryError::Permanent(
                "config: `body_template` needs `format = \"json\"`".into(),
            ));
        }
        if fields.is_empty() && body_template.is_none() {
            return Err(DeliveryError::Permanent(
                "config: missing required setting `fields` (or `body_template`)".into(),
            ));
        }
        let max_length: Option<usize> = config.get_opt("max_length")?;
        let extra: BTreeMap<String, String> = config.get_or("headers", BTreeMap::new())?;
        let headers: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let recipients: Vec<String> = if alert.recipients.is_empty() {
            config.get_or("recipients", Vec::new())?
        } else {
            alert.recipients.clone()
        };
        if recipients.is_empty() {
            return Err(DeliveryError::Permanent(
                "no recipients: the alert has none and `recipients` is not configured".into(),
            ));
        }

        let mut failures: Vec<(String, http::Error)> = Vec::new();
        for recipient in &recipients {
            let vars = Vars::new(alert).set("recipient", recipient.clone());
            let cut = |s: String| match max_length {
                Some(n) if s.chars().count() > n => s.chars().take(n).collect(),
                _ => s,
            };
            let result = if let Some(tpl) = &body_template {
                let body = template::render_body(tpl, &vars, "application/json")?;
                let value: Value = json::from_str(&body).map_err(|e| {
                    DeliveryError::Permanent(format!(
                        "config: `body_template` does not render valid JSON: {e}"
                    ))
                })?;
                http::post_json(&url, &headers, &value)
            } else if json_body {
                let mut object = Map::new();
                for (name, tpl) in &fields {
                    object.insert(
                        name.clone(),
                        Value::String(cut(template::render(tpl, &vars)?)),
                    );
                }
                http::post_json(&url, &headers, &Value::Object(object))
            } else {
                let mut rendered = Vec::with_capacity(fields.len());
                for (name, tpl) in &fields {
                    rendered.push((name.as_str(), cut(template::render(tpl, &vars)?)));
                }
                let pairs: Vec<(&str, &str)> =
                    rendered.iter().map(|(k, v)| (*k, v.as_str())).collect();
                http::post_form(&url, &headers, &pairs)
            };
            match result {
                Ok(r) => log::debug!("{} sent to {recipient}: HTTP {}", alert.rule, r.status),
                Err(e) => {
                    log::warn!("{} to {recipient} failed: {}", alert.rule, e.message());
                    failures.push((recipient.clone(), e));
                }
            }
        }

        if failures.is_empty() {
            return Ok(());
        }
        let retryable = failures.iter().any(|(_, e)| e.is_retryable());
        let message = format!(
            "{} of {} recipient(s) failed: {}",
            failures.len(),
            recipients.len(),
            failures
                .iter()
                .map(|(r, e)| format!("{r}: {}", e.message()))
                .collect::<Vec<_>>()
                .join("; ")
        );
        Err(if retryable {
            DeliveryError::Retryable(message)
        } else {
            DeliveryError::Permanent(message)
        })
    }
}

vigilo_plugin_sdk::export_channel!(SmsGateway);
