//! # vigilo-feature-flag: switch a feature flag off (or on) through an HTTP API
//!
//! An **action** plugin: the kill switch of the DevOps seed. When a rule's recovery action
//! fires (a failing canary, a Critical burn rate), it sends one HTTP request to a feature-flag
//! service, so the feature is turned off instead of rolling the deployment back. Generic: the
//! method, URL, headers and body are settings, the URL and body `{{field}}` templates, so it
//! speaks to LaunchDarkly-, Unleash- or Flagsmith-style APIs and to in-house flag services.
//!
//! The host sends the request only to the plugin's `allowed_hosts`, with its timeouts; a host
//! not allowed is an error (the action was not attempted).
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string (template) | required | the flag's endpoint, e.g. `http://flags.internal/api/flags/{{labels.feature}}`; each value is encoded for the part of the URL it lands in (the SDK's `template::render_url`) |
//! | `method` | string | `PUT` | `PUT`, `PATCH`, `POST`, `DELETE` … |
//! | `body_template` | string (template) | `{"enabled": false}` | the request body; values are escaped for JSON strings when the content type is JSON (the rendered body must then be valid JSON), form-encoded for `application/x-www-form-urlencoded` |
//! | `content_type` | string | `application/json` | the body's media type |
//! | `headers` | table of strings | none | extra headers, e.g. `{ Authorization = "Bearer …" }` |
//!
//! Label values come from the monitored service, not the operator: in the URL's path each one
//! stays a single segment (`?`, `#`, `%` and spaces percent-encoded), and a value that would
//! still move the request (empty, `.`, `..`, or holding `/` or `\`, such as
//! `../admin/kill-all`) fails the run with a message naming the field, before any request is
//! sent. In the query each value stays one parameter's value.
//!
//! The request carries `Idempotency-Key` (the alert's key): a flag service that honours it
//! ignores a repeat. The outcome is a success for a 2xx answer, with the message
//! `PUT URL -> STATUS` and the start of the answer's body as output; any other answer is a
//! failed run (reported, not retried by the plugin: the recovery policy's attempts and
//! cooldown decide what happens next). A transport failure or a refused host is an error.

use std::collections::BTreeMap;

use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Action, ActionOutcome, Alert, Config, http, log};

/// At most this many bytes of the answer go into the outcome.
const OUTPUT: usize = 2000;

struct FeatureFlag;

impl Action for FeatureFlag {
    fn run(config: &Config, alert: &Alert) -> Result<ActionOutcome, String> {
        let vars = Vars::new(alert);
        // Each value encoded for the part of the URL it lands in: a label can never move the
        // request to another path or query (a value that cannot stay in place fails the run).
        let url = template::render_url(&config.get::<String>("url")?, &vars)?;
        let method: String = config.get_or("method", "PUT".to_owned())?;
        let content_type: String = config.get_or("content_type", "application/json".to_owned())?;
        let extra: BTreeMap<String, String> = config.get_or("headers", BTreeMap::new())?;
        let body_template: String =
            config.get_or("body_template", r#"{"enabled": false}"#.to_owned())?;
        let body = template::render_body(&body_template, &vars, &content_type)?;

        let mut headers: Vec<(&str, &str)> = vec![("Idempotency-Key", &alert.idempotency_key)];
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let response = http::send(
            &method,
            &url,
            &headers,
            Some(&content_type),
            body.as_bytes(),
        )
        .map_err(|e| format!("{method} {url}: {}", e.message()))?;
        let message = format!("{method} {url} -> {}", response.status);
        let success = response.is_success();
        if success {
            log::info!("{}: feature flag switched: {message}", alert.rule);
        } else {
            log::warn!("{}: feature flag not switched: {message}", alert.rule);
        }
        Ok(ActionOutcome {
            success,
            message,
            exit_code: None,
            output_tail: head(&response.text(), OUTPUT).to_owned(),
        })
    }
}

/// The first `max` bytes of `s`, cut on a character boundary.
fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

vigilo_plugin_sdk::export_action!(FeatureFlag);
