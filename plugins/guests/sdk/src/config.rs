//! The operator's settings for one plugin.
//!
//! The host passes them as a JSON object: in the host's TOML they are the plugin's `[config]`
//! table, e.g.
//!
//! ```toml
//! [plugins.ops-webhook.config]
//! url = "https://hooks.example.com/vigilo"
//! headers = { Authorization = "Bearer …" }
//! ```
//!
//! [`Config::get`] reads one setting into any `serde` type and explains what is wrong when it
//! cannot; [`ConfigError`] converts into [`DeliveryError::Permanent`](crate::DeliveryError)
//! with `?`, since retrying a delivery cannot fix a configuration.

use core::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::DeliveryError;

/// The plugin's settings: a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    settings: Map<String, Value>,
}

/// A setting is missing or has the wrong type, or the configuration is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// An error with this message (shown as `config: <message>`).
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for DeliveryError {
    fn from(e: ConfigError) -> Self {
        DeliveryError::Permanent(e.to_string())
    }
}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> Self {
        e.to_string()
    }
}

impl Config {
    /// Parses the JSON the host passes. An empty string is an empty configuration; anything
    /// but a JSON object is an error.
    pub fn parse(json: &str) -> Result<Config, ConfigError> {
        if json.trim().is_empty() {
            return Ok(Config::default());
        }
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(settings)) => Ok(Config { settings }),
            Ok(other) => Err(ConfigError::new(format!(
                "expected a JSON object of settings, got {}",
                kind(&other)
            ))),
            Err(e) => Err(ConfigError::new(format!("not valid JSON: {e}"))),
        }
    }

    /// A configuration made from a JSON value (handy in unit tests).
    pub fn from_value(value: Value) -> Result<Config, ConfigError> {
        match value {
            Value::Object(settings) => Ok(Config { settings }),
            other => Err(ConfigError::new(format!(
                "expected a JSON object of settings, got {}",
                kind(&other)
            ))),
        }
    }

    /// The required setting `key` as a `T`: `config.get::<String>("url")`.
    ///
    /// Errors name the key: "config: missing required setting `url`", "config: setting `port`:
    /// invalid type: string \"x\", expected u16".
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        self.get_opt(key)?
            .ok_or_else(|| ConfigError::new(format!("missing required setting `{key}`")))
    }

    /// The optional setting `key`: `None` if absent or `null`.
    pub fn get_opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.settings.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|e| ConfigError::new(format!("setting `{key}`: {e}"))),
        }
    }

    /// The setting `key`, or `default` if absent or `null`.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.get_opt(key)?.unwrap_or(default))
    }

    /// Whether the setting `key` is present (and not `null`).
    pub fn contains(&self, key: &str) -> bool {
        !matches!(self.settings.get(key), None | Some(Value::Null))
    }

    /// The whole configuration as one `serde` type (a struct with `#[derive(Deserialize)]`).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(Value::Object(self.settings.clone()))
            .map_err(|e| ConfigError::new(e.to_string()))
    }

    /// The raw settings.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.settings
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access_and_errors() {
        let c = Config::parse(r#"{"url": "http://x", "port": 8080, "n": null}"#).unwrap();
        assert_eq!(c.get::<String>("url").unwrap(), "http://x");
        assert_eq!(c.get::<u16>("port").unwrap(), 8080);
        assert_eq!(c.get_opt::<u16>("n").unwrap(), None);
        assert_eq!(c.get_or("missing", 3u8).unwrap(), 3);
        let e = c.get::<String>("missing").unwrap_err();
        assert_eq!(e.to_string(), "config: missing required setting `missing`");
        let e = c.get::<u16>("url").unwrap_err().to_string();
        assert!(e.starts_with("config: setting `url`: invalid type"), "{e}");
        let d: DeliveryError = e_of(Config::parse("[1]"));
        assert!(matches!(d, DeliveryError::Permanent(ref m) if m.contains("JSON object")));
        assert!(Config::parse("").unwrap().as_map().is_empty());
        assert!(Config::parse("{").is_err());
    }

    fn e_of(r: Result<Config, ConfigError>) -> DeliveryError {
        r.unwrap_err().into()
    }
}
