//! Opens an incident in another system when an item fires, updates it when it escalates, and
//! resolves it when the item is back to normal, in the style of PagerDuty's Events API v2:
//! one event per alert, `trigger` or `resolve`, with a `dedup_key` that is the same for every
//! event of one item, so the receiver keeps one incident per item.
//!
//! Settings: `url` (the events endpoint) and `routing_key` (the integration's key).

use vigilo_plugin_sdk::json::json;
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, Severity, http};

struct Incidents;

impl Channel for Incidents {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let url: String = config.get("url")?;
        let routing_key: String = config.get("routing_key")?;
        let body = json!({
            "routing_key": routing_key,
            "event_action": if alert.is_resolved() { "resolve" } else { "trigger" },
            // The item's fingerprint: the same for its firing, escalations and resolve.
            "dedup_key": alert.item_key(),
            "payload": {
                "summary": alert.summary(),
                // A resolve's own severity is normal: report what it resolved from.
                "severity": match alert.reported_severity() {
                    Severity::Critical => "critical",
                    Severity::Major | Severity::Minor => "error",
                    Severity::Warning => "warning",
                    _ => "info",
                },
                "source": alert.label("host").unwrap_or(&alert.rule),
                "custom_details": alert.to_json(),
            },
        });
        // This receiver answers 409 to a resolve of an incident already closed by hand:
        // nothing is left to do, so it counts as delivered.
        http::treat_status(409, http::Outcome::Delivered);
        http::post_json(&url, &[("Idempotency-Key", &alert.idempotency_key)], &body)?;
        Ok(())
    }
}

vigilo_plugin_sdk::export_channel!(Incidents);
