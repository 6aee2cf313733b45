//! One `[[probe]]`, validated: what to check, how often, within what time.

use std::path::PathBuf;
use std::time::Duration;

/// 1 if the last check succeeded, else 0.
pub const SUCCESS_METRIC: &str = "probe_success";
/// How long the last check took, in seconds (to the failure, for a failed one).
pub const DURATION_METRIC: &str = "probe_duration_seconds";
/// Seconds until the HTTPS server's certificate expires (negative once expired).
pub const CERT_EXPIRY_METRIC: &str = "probe_tls_cert_expiry_seconds";
/// The HTTP status of the last answer.
pub const STATUS_METRIC: &str = "probe_http_status_code";

/// What a probe checks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProbeTarget {
    /// An HTTP or HTTPS request.
    Http(HttpProbe),
    /// A TCP connection to `host:port`.
    Tcp(String),
    /// Resolving a name through the system's resolver.
    Dns(String),
}

/// The settings of an HTTP(S) probe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpProbe {
    /// `http://…` or `https://…`.
    pub url: http::Uri,
    /// `GET` (default) or `HEAD`.
    pub method: http::Method,
    /// The statuses that count as success (empty: any 2xx).
    pub status: Vec<u16>,
    /// A regex the body must match (read up to `max_body` bytes).
    pub body: Option<regex::bytes::Regex>,
    /// Bytes of the body read at most (default 1 MiB).
    pub max_body: usize,
    /// PEM certificates trusted besides Mozilla's roots (a private CA, a self-signed server).
    pub ca_file: Option<PathBuf>,
    /// Verify the server's certificate (default true). Without it the check still reports
    /// the certificate's expiry.
    pub verify: bool,
}

impl HttpProbe {
    /// A `GET` of `url` with the defaults.
    pub fn new(url: http::Uri) -> Self {
        HttpProbe {
            url,
            method: http::Method::GET,
            status: Vec::new(),
            body: None,
            max_body: 1024 * 1024,
            ca_file: None,
            verify: true,
        }
    }
}

/// One `[[probe]]`: a check run every `interval`, given up after `timeout`, recorded as
/// `probe_success`, `probe_duration_seconds` (and, for HTTP(S), `probe_http_status_code` and
/// `probe_tls_cert_expiry_seconds`) with the labels `probe = name` and `labels`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProbeSpec {
    /// Unique among the probes; the series' `probe` label.
    pub name: String,
    /// What it checks.
    pub target: ProbeTarget,
    /// How often (default 30 s).
    pub interval: Duration,
    /// How long a check may take in all: resolving, connecting, TLS, the answer and its body
    /// (default 5 s, at most the interval).
    pub timeout: Duration,
    /// Labels added to every series of this probe.
    pub labels: Vec<(String, String)>,
}

impl ProbeSpec {
    /// A probe named `name` of `target` with the defaults.
    pub fn new(name: impl Into<String>, target: ProbeTarget) -> Self {
        ProbeSpec {
            name: name.into(),
            target,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            labels: Vec::new(),
        }
    }

    /// `probe = name` and the probe's labels.
    pub fn series_labels(&self) -> Vec<(&str, &str)> {
        let mut out = vec![("probe", self.name.as_str())];
        out.extend(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        out
    }

    fn canonical(&self) -> String {
        let target = match &self.target {
            ProbeTarget::Http(h) => format!(
                "{} {} {:?} {:?} {} {:?} {}",
                h.method,
                h.url,
                h.status,
                h.body.as_ref().map(regex::bytes::Regex::as_str),
                h.max_body,
                h.ca_file,
                h.verify
            ),
            ProbeTarget::Tcp(a) => format!("tcp {a}"),
            ProbeTarget::Dns(n) => format!("dns {n}"),
        };
        format!(
            "{} {target} {:?} {:?} {:?}",
            self.name, self.interval, self.timeout, self.labels
        )
    }
}

impl PartialEq for ProbeSpec {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}
