//! Fleet mode: the end times a replica promises Alertmanager, the way Prometheus's notifier
//! does, so that one replica's recovery does not end an alert the others still report.
//!
//! Alertmanager merges the alerts it receives by their labels (the fingerprint of the label
//! set): the newest update wins, except that a firing alert keeps the latest `endsAt` any
//! sender gave it, and an update whose `endsAt` is already past ends the alert for everyone.
//! So in fleet mode (`resend_interval` set):
//! - a firing alert (and each repeat of it, the route's `repeat_interval`) is sent with
//!   `endsAt` = now + `ends_after` (4 × `resend_interval` unless set), and stays active in
//!   Alertmanager for as long as any replica re-sends it;
//! - the resolve of a **shared** alert (labels without the replica label) is not sent: the
//!   replica stops re-sending, and Alertmanager ends the alert at the latest `endsAt` a replica
//!   promised, at most `ends_after` after the last replica's last send;
//! - the resolve of the replica's **own** alert (its labels carry `replica_label`, `replica` by
//!   default) is sent with `endsAt` = the resolve's time, as outside fleet mode: no other
//!   replica reports that alert;
//! - when an item moves between firing levels, the previous level's alert is ended at once
//!   only if it is the replica's own; a shared one expires like a resolve (another replica may
//!   still see that level).

use vigilo_plugin_sdk::{Config, DeliveryError};

/// The fleet settings, if fleet mode is on.
pub struct Fleet {
    /// How long a firing alert stays active in Alertmanager after it was sent, in ms.
    pub ends_after_ms: i64,
    /// The label that marks an alert as the replica's own.
    pub replica_label: String,
}

impl Fleet {
    /// Reads `resend_interval`, `ends_after` and `replica_label`; fleet mode is off without
    /// `resend_interval`.
    pub fn from_config(config: &Config) -> Result<Option<Fleet>, DeliveryError> {
        let Some(resend) = config.get_opt::<String>("resend_interval")? else {
            for key in ["ends_after", "replica_label"] {
                if config.contains(key) {
                    return Err(DeliveryError::permanent(format!(
                        "config: `{key}` is a fleet-mode setting: set `resend_interval` too"
                    )));
                }
            }
            return Ok(None);
        };
        let resend_ms = duration_ms("resend_interval", &resend)?;
        let ends_after_ms = match config.get_opt::<String>("ends_after")? {
            Some(s) => duration_ms("ends_after", &s)?,
            None => resend_ms.saturating_mul(4),
        };
        if ends_after_ms <= resend_ms {
            return Err(DeliveryError::permanent(format!(
                "config: `ends_after` ({ends_after_ms} ms) must be longer than \
                 `resend_interval` ({resend_ms} ms), or every alert ends between two sends"
            )));
        }
        Ok(Some(Fleet {
            ends_after_ms,
            replica_label: config.get_or("replica_label", "replica".to_owned())?,
        }))
    }

    /// Whether an alert with these labels is this replica's own.
    pub fn is_own(&self, labels: &[(String, String)]) -> bool {
        labels.iter().any(|(k, _)| *k == self.replica_label)
    }
}

/// `text` (`500ms`, `30s`, `4m`, `1h`) in milliseconds; at least 1 s.
fn duration_ms(key: &str, text: &str) -> Result<i64, DeliveryError> {
    let bad = || {
        DeliveryError::permanent(format!(
            "config: `{key}` = {text:?} is not a duration such as \"30s\", \"1m\" or \"500ms\""
        ))
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(per).ok_or_else(bad)?;
    if ms < 1000 {
        return Err(DeliveryError::permanent(format!(
            "config: `{key}` = {text:?} is below 1s"
        )));
    }
    Ok(ms)
}
