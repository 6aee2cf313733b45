//! Sending one request body to every Alertmanager peer, as Alertmanager's high-availability
//! documentation asks (to each peer, never through a load balancer).

use vigilo_plugin_sdk::json::Value;
use vigilo_plugin_sdk::{Config, DeliveryError, http, log};

/// The peers' base URLs: `urls` (a list) or `url` (one), not both.
pub fn urls(config: &Config) -> Result<Vec<String>, DeliveryError> {
    let urls = match (
        config.get_opt::<String>("url")?,
        config.get_opt::<Vec<String>>("urls")?,
    ) {
        (Some(one), None) => vec![one],
        (None, Some(list)) if !list.is_empty() => list,
        (None, Some(_)) => return Err(DeliveryError::permanent("config: `urls` is empty")),
        (Some(_), Some(_)) => {
            return Err(DeliveryError::permanent(
                "config: set `url` (one Alertmanager) or `urls` (every peer of a cluster), not both",
            ));
        }
        (None, None) => {
            return Err(DeliveryError::permanent(
                "config: `url` or `urls` is required",
            ));
        }
    };
    Ok(urls)
}

/// POSTs `body` to `<url>/api/v2/alerts` of every peer, one after the other. Delivered when
/// at least one peer took it (the peers share what they notified; a peer that missed it gets
/// the next send, and in fleet mode every firing alert is sent again each `resend_interval`);
/// each peer's failure is logged. When every peer failed: retryable if any failure was.
pub fn post_all(
    urls: &[String],
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<(), DeliveryError> {
    let mut failures: Vec<http::Error> = Vec::new();
    for base in urls {
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        match http::post_json(&url, headers, body) {
            Ok(response) => log::debug!("posted to {url}: HTTP {}", response.status),
            Err(e) => {
                log::warn!("Alertmanager peer {url} failed: {e}");
                failures.push(e);
            }
        }
    }
    if failures.len() < urls.len() {
        return Ok(());
    }
    let message = failures
        .iter()
        .map(http::Error::message)
        .collect::<Vec<_>>()
        .join("; ");
    if failures.iter().any(http::Error::is_retryable) {
        Err(DeliveryError::retryable(message))
    } else {
        Err(DeliveryError::permanent(message))
    }
}
