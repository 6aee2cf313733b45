//! `[export.remote_write]` and `[export.otlp]`: what each export sends, where, how often, and
//! its queue. Plain data, compiled whatever the crate's features; a section whose feature is
//! off is refused when the configuration is read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::exposition::DEFAULT_BUCKETS;

/// The `[export]` sections; each export runs only when its section is present.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ExportConfig {
    /// `[export.remote_write]`: Prometheus remote-write 1.0.
    pub remote_write: Option<RemoteWriteConfig>,
    /// `[export.otlp]`: OTLP/HTTP metrics.
    pub otlp: Option<OtlpConfig>,
}

/// `[export.remote_write]`: every `interval`, the registry's series are sent to `url` as a
/// Prometheus remote-write 1.0 request (protobuf `WriteRequest`, snappy block compression).
///
/// ```toml
/// [export.remote_write]
/// url = "http://prometheus:9090/api/v1/write"
/// interval = "15s"
/// external_labels = { instance = "orders-api-1", replica = "a" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RemoteWriteConfig {
    /// The receiver's URL (`http://` or `https://`), e.g. Prometheus's `/api/v1/write`.
    pub url: String,
    /// How often the registry is read and sent. Default 15 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub interval: Duration,
    /// Labels added to every series that does not have them already (the series' own value
    /// wins, as in Prometheus): `instance`, `replica`, `cluster` …
    pub external_labels: BTreeMap<String, String>,
    /// Extra request headers (an `Authorization` …).
    pub headers: BTreeMap<String, String>,
    /// The `le` bounds histograms are sent at (`_bucket`, `_sum`, `_count`, as scraped).
    /// Default [`DEFAULT_BUCKETS`].
    pub buckets: Vec<f64>,
    /// Batching, retries and the bounded queue.
    pub queue: QueueConfig,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            url: String::new(),
            interval: Duration::from_secs(15),
            external_labels: BTreeMap::new(),
            headers: BTreeMap::new(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            queue: QueueConfig::default(),
        }
    }
}

/// `[export.otlp]`: every `interval`, the registry's series are sent to `endpoint` as an
/// OTLP/HTTP protobuf `ExportMetricsServiceRequest`: counters as cumulative monotonic sums,
/// gauges as gauges, histograms as cumulative explicit-bucket histograms.
///
/// ```toml
/// [export.otlp]
/// endpoint = "http://otel-collector:4318/v1/metrics"
/// resource = { "service.name" = "orders-api", "service.instance.id" = "orders-api-1" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's metrics URL, `http(s)://HOST:4318/v1/metrics`.
    pub endpoint: String,
    /// How often the registry is read and sent. Default 15 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub interval: Duration,
    /// Resource attributes (`service.name`, `service.instance.id`, `deployment.environment`
    /// …). `service.name` is `unknown_service` unless given, as the OpenTelemetry
    /// specification says.
    pub resource: BTreeMap<String, String>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// The explicit bucket bounds histograms are sent at. Default [`DEFAULT_BUCKETS`].
    pub buckets: Vec<f64>,
    /// Batching, retries and the bounded queue.
    pub queue: QueueConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: String::new(),
            interval: Duration::from_secs(15),
            resource: BTreeMap::new(),
            headers: BTreeMap::new(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            queue: QueueConfig::default(),
        }
    }
}

/// One export's queue: what waits to be sent, how much goes in one request, how failures are
/// retried. Defaults are Prometheus 2.42's `queue_config` where it has one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Samples (data points) waiting at most; when a new reading does not fit, the oldest
    /// requests are dropped and their samples counted in `samples_dropped`. Default 10 000.
    pub capacity: usize,
    /// Samples (data points) in one request at most. Default 2000.
    pub max_samples_per_send: usize,
    /// First wait after a failed request that may succeed later (5xx, 429, 408, no
    /// connection); doubled after each failure. Default 30 ms.
    #[serde(with = "crate::duration::serde_duration")]
    pub min_backoff: Duration,
    /// Longest wait between two tries. Default 5 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub max_backoff: Duration,
    /// One request's time limit (connect, send, answer). Default 10 s.
    #[serde(with = "crate::duration::serde_duration")]
    pub timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_samples_per_send: 2000,
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RemoteWriteConfig {
    /// Checks what serde cannot; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !cfg!(feature = "remote-write") {
            return Err(
                "this build of vigilo has no remote-write export: enable the crate's \
                        `remote-write` feature"
                    .to_owned(),
            );
        }
        check_url("url", &self.url)?;
        check_interval(self.interval)?;
        let pairs: Vec<(&str, &str)> = self
            .external_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::metrics::validate_labels("external_labels", &pairs)
            .map_err(|e| format!("external_labels: {e}"))?;
        check_buckets(&self.buckets)?;
        self.queue.validate()
    }
}

impl OtlpConfig {
    /// Checks what serde cannot; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !cfg!(feature = "otlp") {
            return Err(
                "this build of vigilo has no OTLP export: enable the crate's `otlp` feature"
                    .to_owned(),
            );
        }
        check_url("endpoint", &self.endpoint)?;
        check_interval(self.interval)?;
        if self.resource.keys().any(String::is_empty) {
            return Err("resource: an attribute name is empty".to_owned());
        }
        check_buckets(&self.buckets)?;
        self.queue.validate()
    }
}

impl QueueConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_samples_per_send == 0 {
            return Err("queue.max_samples_per_send: must be at least 1".to_owned());
        }
        if self.capacity < self.max_samples_per_send {
            return Err(format!(
                "queue.capacity ({}) is below queue.max_samples_per_send ({}): no request \
                 would ever fit",
                self.capacity, self.max_samples_per_send
            ));
        }
        if self.min_backoff.is_zero() || self.min_backoff > self.max_backoff {
            return Err(
                "queue.min_backoff: must be above zero and at most queue.max_backoff".to_owned(),
            );
        }
        if self.timeout.is_zero() {
            return Err("queue.timeout: must be above zero".to_owned());
        }
        Ok(())
    }
}

fn check_url(key: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!(
            "{key}: {url:?} is not an http:// or https:// URL with a host"
        )),
    }
}

fn check_interval(interval: Duration) -> Result<(), String> {
    if interval < Duration::from_millis(100) {
        return Err("interval: must be at least 100ms".to_owned());
    }
    Ok(())
}

fn check_buckets(buckets: &[f64]) -> Result<(), String> {
    if buckets.iter().any(|b| !b.is_finite()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err("buckets: must be finite and strictly increasing".to_owned());
    }
    Ok(())
}
