//! Opens a raw TCP socket to the `addr` of its config (`{"addr":"127.0.0.1:1234"}`) and writes
//! to it. The host grants no sockets, so the connection must be refused.
wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "channel-plugin" });

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(config: String, _alert: Alert) -> Result<(), DeliveryError> {
        use std::io::Write;
        let addr =
            field(&config, "addr").ok_or_else(|| DeliveryError::Permanent("no addr".into()))?;
        match std::net::TcpStream::connect(addr.as_str()) {
            Ok(mut s) => {
                let _ = s.write_all(b"escaped\n");
                Err(DeliveryError::Permanent("connected".into()))
            }
            Err(e) => Err(DeliveryError::Permanent(format!("connect refused: {e}"))),
        }
    }
}

/// The string value of `"name":"…"` in a flat JSON object (enough for a test guest).
fn field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":\"");
    let start = json.find(&key)? + key.len();
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_owned())
}
