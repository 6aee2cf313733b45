//! Tries to read /etc/passwd. With nothing preopened the read must fail; the guest reports
//! what happened.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(_config: String, _alert: Alert) -> Result<(), DeliveryError> {
        match std::fs::read("/etc/passwd") {
            Ok(bytes) => Err(DeliveryError::Permanent(format!(
                "read succeeded: {} bytes",
                bytes.len()
            ))),
            Err(e) => Err(DeliveryError::Permanent(format!("read refused: {e}"))),
        }
    }
}
