//! # vigilo-webhook: a JSON POST to any HTTP endpoint
//!
//! Each alert is POSTed to `url`, with an `Idempotency-Key` header holding the alert's
//! idempotency key (a receiver that honours it drops the copy the host may send again after a
//! crash).
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string | required | where to POST (`http://` or `https://`; its host must be in the plugin's `allowed_hosts`) |
//! | `headers` | table of strings | none | extra request headers, e.g. `{ Authorization = "Bearer …" }` |
//! | `body_template` | string | the alert as JSON | a `{{field}}` template for the body (fields: see the SDK's `template` module) |
//! | `content_type` | string | `application/json` | the body's media type |
//!
//! Without `body_template` the body is the alert as JSON ([`Alert::to_json`]: rule, metric,
//! labels, annotations, severity, previous, peak, status, value, threshold, summary, since_ms,
//! at_ms, at, idempotency_key, fingerprint, incident, recipients). With it, values are escaped for JSON strings when the
//! content type is JSON, and the rendered body must then be valid JSON (else the delivery fails
//! permanently, naming the problem), e.g.
//!
//! ```toml
//! body_template = '{"text": "[{{severity}}] {{summary}}", "host": "{{labels.host}}"}'
//! ```
//!
//! Statuses and failures follow the contract's retry policy (the table in the SDK's `http`
//! module): 2xx delivered; 408, 425, 429, 5xx and transport failures retried; a host outside
//! `allowed_hosts` and any other status permanent.

use std::collections::BTreeMap;

use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, http, log};

struct Webhook;

impl Channel for Webhook {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let url: String = config.get("url")?;
        let extra: BTreeMap<String, String> = config.get_or("headers", BTreeMap::new())?;
        let content_type: String = config.get_or("content_type", "application/json".to_owned())?;
        let is_json = content_type.contains("json");

        let body = match config.get_opt::<String>("body_template")? {
            None => alert.to_json().to_string(),
            Some(tpl) => {
                let vars = Vars::new(alert);
                if is_json {
                    let body = template::render_json(&tpl, &vars)?;
                    if let Err(e) = serde_json_check(&body) {
                        return Err(DeliveryError::Permanent(format!(
                            "config: `body_template` does not render valid JSON: {e}"
                        )));
                    }
                    body
                } else {
                    template::render(&tpl, &vars)?
                }
            }
        };

        let mut headers: Vec<(&str, &str)> = vec![("Idempotency-Key", &alert.idempotency_key)];
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let response = http::check_status(
            &url,
            http::send("POST", &url, &headers, Some(&content_type), body.as_bytes())?,
        )?;
        log::debug!(
            "{} delivered to {url}: HTTP {}",
            alert.rule,
            response.status
        );
        Ok(())
    }
}

fn serde_json_check(body: &str) -> Result<(), String> {
    vigilo_plugin_sdk::json::from_str::<vigilo_plugin_sdk::json::Value>(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

vigilo_plugin_sdk::export_channel!(Webhook);
