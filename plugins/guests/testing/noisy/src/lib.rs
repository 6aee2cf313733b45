//! Floods the log import (10 000 messages of 10 KiB), stdout and stderr (1 MiB each), then
//! fails with the host clock's reading: `Permanent("now-ms=<ms>")`.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

use vigilo::plugin::clock;
use vigilo::plugin::log::{self, Level};

impl Guest for Plugin {
    fn deliver(_config: String, _alert: Alert) -> Result<(), DeliveryError> {
        log::log(Level::Info, "noisy guest starts");
        let big = "x".repeat(10 * 1024);
        for _ in 0..10_000 {
            log::log(Level::Debug, &big);
        }
        let line = "y".repeat(1023);
        for _ in 0..1024 {
            println!("{line}");
            eprintln!("{line}");
        }
        println!("stdout-end-marker");
        eprintln!("stderr-end-marker");
        Err(DeliveryError::Permanent(format!(
            "now-ms={}",
            clock::now_ms()
        )))
    }
}
