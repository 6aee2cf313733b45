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
//! at_ms, at, idempotency_key, fingerprint, incident, recipients). With it, each value is
//! encoded for where it lands (the SDK's `template::render_body`): escaped for JSON strings when
//! the content type is JSON (the rendered body must then be valid JSON, else the delivery fails
//! permanently, naming the problem), percent-encoded as a form field for
//! `application/x-www-form-urlencoded`, as it is for any other type, e.g.
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

        // Each value encoded for the body's media type (JSON string, form field, text).
        let body = match config.get_opt::<String>("body_template")? {
            None => alert.to_json().to_string(),
            Some(tpl) => template::render_body(&tpl, &Vars::new(alert), &content_type)?,
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

vigilo_plugin_sdk::export_channel!(Webhook);
