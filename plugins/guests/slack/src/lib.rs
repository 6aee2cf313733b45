//! # vigilo-slack: Slack incoming webhooks
//!
//! Posts one message per alert to a Slack [incoming webhook]: a one-line `text` (what the
//! notification shows) and an attachment coloured by severity (normal `#2e7d32`, info
//! `#1e88e5`, warning `#fdd835`, minor `#fb8c00`, major `#e64a19`, critical `#c62828`) with a
//! title, the summary as text, and fields (severity, status, metric, value, then the labels).
//! A resolved alert is green and titled `[Resolved]`.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `url` | string | required | the incoming-webhook URL (`hooks.slack.com` must be in `allowed_hosts`) |
//! | `channel` | string | the webhook's | channel override (legacy webhooks only) |
//! | `username` | string | the webhook's | sender name override (legacy webhooks only) |
//! | `icon_emoji` | string | the webhook's | e.g. `:rotating_light:` (legacy webhooks only) |
//! | `title_template` | string | `[{{severity_label}}] {{rule}}` (`[Resolved] {{rule}}`) | the attachment's title |
//! | `text_template` | string | `{{summary}}` | the attachment's text |
//! | `mention` | string | none | prepended to `text` when firing, e.g. `<!here>` or `<@U123>` |
//!
//! Templates use the SDK's `{{field}}` fields. Alert data (the fields' values, the labels in the
//! attachment) is escaped for Slack's markup (`&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`), so a
//! label value cannot mention `<!channel>`, hide a link or add formatting; the templates' own
//! text and `mention` are the operator's and are sent as written. The payload is built as JSON,
//! so every value stays one JSON string. Statuses follow the contract's retry policy (the
//! SDK's `http` module): 2xx is delivered; 408, 425, 429 and 5xx are retried;
//! other statuses (Slack answers 400 `invalid_payload`, 403, 404 `no_service` …) fail
//! permanently.
//!
//! [incoming webhook]: https://api.slack.com/messaging/webhooks

use vigilo_plugin_sdk::encode::{Context, encode};
use vigilo_plugin_sdk::json::{Value, json};
use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, http, log};

struct Slack;

impl Channel for Slack {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let url: String = config.get("url")?;
        let payload = payload(config, alert)?;
        let response = http::post_json(&url, &[], &payload)?;
        log::debug!("{} posted to Slack: HTTP {}", alert.rule, response.status);
        Ok(())
    }
}

/// The Slack message for `alert`.
fn payload(config: &Config, alert: &Alert) -> Result<Value, DeliveryError> {
    let default_title = if alert.is_resolved() {
        "[Resolved] {{rule}}"
    } else {
        "[{{severity_label}}] {{rule}}"
    };
    let title_tpl: String = config.get_or("title_template", default_title.to_owned())?;
    let text_tpl: String = config.get_or("text_template", "{{summary}}".to_owned())?;
    // Alert data is text in Slack's markup: `&`, `<` and `>` escaped, so a label cannot ping
    // `<!channel>`, link elsewhere or add formatting (the templates' own text is kept).
    let vars = Vars::new(alert);
    let title = template::render_as(&title_tpl, &vars, Context::Markup)?;
    let text = template::render_as(&text_tpl, &vars, Context::Markup)?;

    let mut fields = vec![
        field("Severity", alert.severity.label(), true)?,
        field("Status", alert.status.name(), true)?,
        field("Metric", &alert.metric, true)?,
    ];
    if let Some(v) = alert.value {
        let shown = match alert.threshold {
            Some(t) if !alert.is_resolved() => format!("{v} (threshold {t})"),
            _ => v.to_string(),
        };
        fields.push(field("Value", &shown, true)?);
    }
    if alert.is_resolved() {
        fields.push(field("Was", alert.previous.label(), true)?);
    }
    for (name, value) in &alert.labels {
        fields.push(field(name, value, true)?);
    }

    let mut headline = format!("{title}: {text}");
    if let Some(mention) = config.get_opt::<String>("mention")?
        && !alert.is_resolved()
    {
        headline = format!("{mention} {headline}");
    }

    let mut payload = json!({
        "text": headline,
        "attachments": [{
            "color": alert.severity.colour(),
            "fallback": format!("{title}: {text}"),
            "title": title,
            "text": text,
            "fields": fields,
            "footer": "vigilo",
            "ts": alert.at_ms.div_euclid(1000),
        }],
    });
    for key in ["channel", "username", "icon_emoji"] {
        if let Some(v) = config.get_opt::<String>(key)? {
            payload[key] = Value::String(v);
        }
    }
    Ok(payload)
}

/// An attachment field; its title and value are alert data, escaped for Slack's markup.
fn field(title: &str, value: &str, short: bool) -> Result<Value, DeliveryError> {
    Ok(json!({
        "title": encode(title, Context::Markup)?,
        "value": encode(value, Context::Markup)?,
        "short": short,
    }))
}

vigilo_plugin_sdk::export_channel!(Slack);
