//! Allocates (and touches) memory forever: the host must stop it at its memory cap.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(_config: String, _alert: Alert) -> Result<(), DeliveryError> {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&kept);
        }
    }
}
