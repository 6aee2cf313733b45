//! Panics (which, in a wasm guest, prints to stderr and aborts with a trap).
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(_config: String, alert: Alert) -> Result<(), DeliveryError> {
        panic!("the panic guest panics on purpose (rule {})", alert.rule)
    }
}
