//! Synthetic checks (`[[probe]]`): HTTP(S) requests, TCP connections and name resolutions on
//! an interval, each within a timeout, recorded as gauges that ordinary rules alert on.
//!
//! ```toml
//! [[probe]]
//! name = "homepage"                      # the series' `probe` label; unique
//! http = "https://example.com/health"    # or tcp = "db.internal:5432", or dns = "example.com"
//! interval = "30s"
//! timeout = "5s"                         # resolve + connect + TLS + answer (+ body)
//! method = "GET"                         # or HEAD
//! status = [200, 204]                    # default: any 2xx
//! body = "ok"                            # a regex the body must match (first max_body bytes)
//! max_body = 1048576
//! ca_file = "/etc/ssl/private-ca.pem"    # trusted besides Mozilla's roots
//! verify = true                          # false: any certificate (its expiry still read)
//! labels = { team = "web" }
//! ```
//!
//! Series, labelled `probe = name` and `labels`: `probe_success` (1 or 0),
//! `probe_duration_seconds` (to the answer's head, or to the end of the body read for a
//! `body` check; to the failure for a failed one), `probe_http_status_code`, and for HTTPS
//! `probe_tls_cert_expiry_seconds` (seconds until the server certificate's `notAfter`, on the
//! system clock; negative once expired). A rule such as `probe_success` below 1, or
//! `probe_tls_cert_expiry_seconds` below `"14d"`, alerts on them.
//!
//! Built on hyper's HTTP/1 client (hyper is vigilo's HTTP server already) over rustls with
//! ring and Mozilla's roots (webpki-roots), and x509-parser for the certificate: well-kept
//! crates rather than hand-written HTTP or ASN.1; no OpenSSL. Names resolve through the
//! system's resolver. Every probe runs on the `vigilo-probes` thread's single-threaded tokio
//! runtime, each on its own interval, so a hung server holds only its own probe, for at
//! most its timeout. Needs the `probes` feature (the default).

#[cfg(feature = "probes")]
mod check;
#[cfg(feature = "probes")]
mod runner;
mod spec;
#[cfg(feature = "probes")]
mod tls;

#[cfg(feature = "probes")]
pub use check::{ProbeResult, check_once};
#[cfg(feature = "probes")]
pub use runner::ProbeRunner;
pub use spec::{
    CERT_EXPIRY_METRIC, DURATION_METRIC, HttpProbe, ProbeSpec, ProbeTarget, STATUS_METRIC,
    SUCCESS_METRIC,
};
