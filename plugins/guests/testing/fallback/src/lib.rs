//! Built with the SDK (contract 0.2.0): POSTs the alert to `primary`; if the host denies that
//! host, POSTs it to `fallback` instead with the denial in an `X-Denied` header. It shows that
//! a plugin sees a denial as its own, permanent error and can act on it.

use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, http};

struct Fallback;

impl Channel for Fallback {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let primary: String = config.get("primary")?;
        match http::post_json(&primary, &[], &alert.to_json()) {
            Ok(_) => Ok(()),
            Err(e) if e.is_denied() => {
                let fallback: String = config.get("fallback")?;
                http::post_json(&fallback, &[("X-Denied", e.message())], &alert.to_json())?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

vigilo_plugin_sdk::export_channel!(Fallback);
