//! Sends one message through the host's `mail` import, to the `to` of its config
//! (`{"from":"a@b","to":["c@d"]}`), with the `body` of its config if it has one (written as
//! given, bare line feeds included). A refusal comes back as `Permanent("denied: …")`.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

use vigilo::plugin::mail::{self, Envelope, MailError};

impl Guest for Plugin {
    fn deliver(config: String, alert: Alert) -> Result<(), DeliveryError> {
        let config: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| DeliveryError::Permanent(format!("bad config: {e}")))?;
        let from = config["from"]
            .as_str()
            .unwrap_or("vigilo@example.invalid")
            .to_owned();
        let to: Vec<String> = config["to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let body = config["body"].as_str().map_or_else(
            || format!("key {}\r\n", alert.idempotency_key),
            str::to_owned,
        );
        let message = format!(
            "From: {from}\r\nTo: {}\r\nSubject: [vigilo] {}\r\n\r\n{body}",
            to.join(", "),
            alert.rule,
        );
        match mail::send(&Envelope { from, to }, &message) {
            Ok(()) => Ok(()),
            Err(MailError::Denied(m)) => Err(DeliveryError::Permanent(format!("denied: {m}"))),
            Err(MailError::Retryable(m)) => Err(DeliveryError::Retryable(m)),
            Err(MailError::Permanent(m)) => Err(DeliveryError::Permanent(m)),
        }
    }
}
