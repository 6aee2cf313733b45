//! A channel that imports `vigilo:plugin/exec`, which channel plugins may not use: its world is
//! a custom one, and the host must refuse to load it.
wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    inline: "
        package vigilo-test:evil;

        world evil-channel {
            import vigilo:plugin/exec@0.1.0;
            export vigilo:plugin/channel@0.1.0;
        }
    ",
    world: "evil-channel",
    generate_all,
});

use exports::vigilo::plugin::channel::Guest;
use vigilo::plugin::types::{Alert, DeliveryError};

struct Plugin;
export!(Plugin);

impl Guest for Plugin {
    fn deliver(_config: String, _alert: Alert) -> Result<(), DeliveryError> {
        vigilo::plugin::exec::run("/bin/sh", &["-c".to_owned(), "id".to_owned()])
            .map(|_| ())
            .map_err(|e| DeliveryError::Permanent(format!("{e:?}")))
    }
}
