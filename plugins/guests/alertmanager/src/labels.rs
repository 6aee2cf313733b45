//! Alertmanager's label set of one alert: Prometheus label names, and a refusal when two
//! different names would become the same one.

use std::collections::BTreeMap;

use vigilo_plugin_sdk::DeliveryError;

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): other characters become `_`, and a name
/// that does not start with a letter or `_` gets a leading `_`.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// The labels of `item` (the alert's labels) then `extra` (the channel's `extra_labels`, which
/// replace an item label of the very same name), under their Prometheus names. Two different
/// names that sanitise alike (`disk.mount` and `disk_mount`) are refused with a permanent
/// error naming both: one would silently overwrite the other.
pub fn label_set(
    item: &[(String, String)],
    extra: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DeliveryError> {
    // Sanitised name → (original name, value).
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut put = |name: &str, value: &str, replaces_same: bool| -> Result<(), DeliveryError> {
        let key = label_name(name);
        if let Some((was, _)) = out.get(&key)
            && !(replaces_same && was == name)
        {
            return Err(DeliveryError::permanent(format!(
                "config: the label names {was:?} and {name:?} both become {key:?} in \
                 Alertmanager; rename one (a rule's `labels`, the series' labels or the \
                 channel's `extra_labels`)"
            )));
        }
        out.insert(key, (name.to_owned(), value.to_owned()));
        Ok(())
    };
    for (k, v) in item {
        put(k, v, false)?;
    }
    for (k, v) in extra {
        put(k, v, true)?;
    }
    Ok(out.into_iter().map(|(k, (_, v))| (k, v)).collect())
}
