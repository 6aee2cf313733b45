//! Returns Ok at once and touches nothing: the healthy neighbour of every hostile test, and the
//! guest of the "channel call with no I/O" bench.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(_config: String, _alert: Alert) -> Result<(), DeliveryError> {
        Ok(())
    }
}
