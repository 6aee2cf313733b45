//! The `[[probe]]` sections (see [`crate::host::probes`]) and their conversion into checked
//! [`ProbeSpec`]s; a failure points at the key it is about.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, fail};
use crate::host::probes::{HttpProbe, ProbeSpec, ProbeTarget};

/// The largest body a probe reads.
const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One `[[probe]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    name: Spanned<String>,
    http: Option<Spanned<String>>,
    tcp: Option<Spanned<String>>,
    dns: Option<Spanned<String>>,
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    method: Option<Spanned<String>>,
    status: Option<Spanned<Vec<u16>>>,
    body: Option<Spanned<String>>,
    max_body: Option<Spanned<usize>>,
    ca_file: Option<PathBuf>,
    verify: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl RawProbe {
    fn target(&self, whole: Range<usize>) -> Result<ProbeTarget, Failure> {
        let http_only = |key: &'static str, span: Option<Range<usize>>| match span {
            Some(span) => Err(fail(
                span,
                key,
                format!("`{key}` applies to an http probe only"),
            )),
            None => Ok(()),
        };
        match (&self.http, &self.tcp, &self.dns) {
            (Some(url), None, None) => {
                let uri: http::Uri = url
                    .get_ref()
                    .parse()
                    .map_err(|e| fail(url.span(), "http", format!("bad URL: {e}")))?;
                let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
                if !scheme_ok || uri.host().is_none_or(str::is_empty) {
                    return Err(fail(
                        url.span(),
                        "http",
                        "an http probe needs an http:// or https:// URL with a host",
                    ));
                }
                let mut h = HttpProbe::new(uri);
                if let Some(m) = &self.method {
                    h.method = match m.get_ref().to_ascii_uppercase().as_str() {
                        "GET" => http::Method::GET,
                        "HEAD" => http::Method::HEAD,
                        other => {
                            return Err(fail(
                                m.span(),
                                "method",
                                format!("method {other:?}: a probe sends GET or HEAD"),
                            ));
                        }
                    };
                }
                if let Some(s) = &self.status {
                    if s.get_ref().iter().any(|c| !(100..=599).contains(c)) {
                        return Err(fail(s.span(), "status", "statuses are 100 to 599"));
                    }
                    s.get_ref().clone_into(&mut h.status);
                }
                if let Some(b) = &self.body {
                    let re = regex::bytes::RegexBuilder::new(b.get_ref())
                        .size_limit(10 * 1024 * 1024)
                        .build()
                        .map_err(|e| fail(b.span(), "body", format!("bad regex: {e}")))?;
                    h.body = Some(re);
                }
                if let Some(n) = &self.max_body {
                    if !(1..=MAX_BODY_LIMIT).contains(n.get_ref()) {
                        return Err(fail(
                            n.span(),
                            "max_body",
                            format!("max_body must be 1 to {MAX_BODY_LIMIT} bytes"),
                        ));
                    }
                    h.max_body = *n.get_ref();
                }
                h.ca_file.clone_from(&self.ca_file);
                h.verify = self.verify.unwrap_or(true);
                Ok(ProbeTarget::Http(h))
            }
            (None, Some(address), None) => {
                let a = address.get_ref();
                let port_ok = a
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !port_ok {
                    return Err(fail(address.span(), "tcp", "a tcp probe needs host:port"));
                }
                self.no_http_keys(http_only)?;
                Ok(ProbeTarget::Tcp(a.clone()))
            }
            (None, None, Some(name)) => {
                if name.get_ref().trim().is_empty() {
                    return Err(fail(name.span(), "dns", "a dns probe needs a name"));
                }
                self.no_http_keys(http_only)?;
                Ok(ProbeTarget::Dns(name.get_ref().trim().to_owned()))
            }
            _ => Err(fail(
                whole,
                "probe",
                "a probe has exactly one of `http`, `tcp` or `dns`",
            )),
        }
    }

    fn no_http_keys(
        &self,
        http_only: impl Fn(&'static str, Option<Range<usize>>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        http_only("method", self.method.as_ref().map(Spanned::span))?;
        http_only("status", self.status.as_ref().map(Spanned::span))?;
        http_only("body", self.body.as_ref().map(Spanned::span))?;
        http_only("max_body", self.max_body.as_ref().map(Spanned::span))
    }

    fn build(&self, whole: Range<usize>) -> Result<ProbeSpec, Failure> {
        if !cfg!(feature = "probes") {
            return Err(fail(
                whole,
                "probe",
                "[[probe]] needs vigilo's `probes` feature (a default feature): enable it in Cargo.toml",
            ));
        }
        let name = self.name.get_ref();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(fail(
                self.name.span(),
                "name",
                "a probe's name is 1 to 128 characters, none a control character",
            ));
        }
        let mut spec = ProbeSpec::new(name.as_str(), self.target(whole.clone())?);
        if let Some(i) = &self.interval {
            if i.get_ref().0 < Duration::from_millis(10) {
                return Err(fail(i.span(), "interval", "interval must be at least 10ms"));
            }
            spec.interval = i.get_ref().0;
        }
        if let Some(t) = &self.timeout {
            if t.get_ref().0.is_zero() {
                return Err(fail(
                    t.span(),
                    "timeout",
                    "timeout must be greater than zero",
                ));
            }
            spec.timeout = t.get_ref().0;
        }
        if spec.timeout > spec.interval {
            let span = self.timeout.as_ref().map_or(whole, Spanned::span);
            return Err(fail(
                span,
                "timeout",
                "timeout must be at most the interval (a check ends before the next starts)",
            ));
        }
        spec.labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Err(e) = crate::metrics::validate_labels("probe_success", &spec.series_labels()) {
            return Err(fail(
                self.name.span(),
                "labels",
                format!("{e} (a probe's labels are `probe` and `labels`)"),
            ));
        }
        Ok(spec)
    }
}

/// Builds every `[[probe]]`; names must be unique.
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(raw: &[Spanned<RawProbe>]) -> Result<Vec<ProbeSpec>, (Failure, String)> {
    let mut specs: Vec<ProbeSpec> = Vec::with_capacity(raw.len());
    for p in raw {
        let name = p.get_ref().name.get_ref();
        let context = format!("probe {name:?}");
        let spec = p
            .get_ref()
            .build(p.span())
            .map_err(|f| (f, context.clone()))?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err((
                fail(p.get_ref().name.span(), "name", "two probes have this name"),
                context,
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}
