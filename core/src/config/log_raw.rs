//! The `[[log]]` sections (see [`crate::host::logs`]) and their conversion into checked
//! [`LogSpec`]s; a failure points at the key it is about.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, fail};
use crate::host::logs::LogSpec;

/// The largest `max_line` accepted: one line bound per log, held in its reading buffer.
const MAX_LINE_LIMIT: usize = 16 * 1024 * 1024;

/// One `[[log]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    name: Spanned<String>,
    path: Spanned<String>,
    pattern: Spanned<String>,
    metric: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    max_series: Option<Spanned<usize>>,
    max_line: Option<Spanned<usize>>,
    poll: Option<Spanned<Dur>>,
    max_read: Option<Spanned<u64>>,
    #[serde(default)]
    from_start: bool,
}

impl RawLog {
    fn build(&self, whole: Range<usize>) -> Result<LogSpec, Failure> {
        if !cfg!(feature = "logs") {
            return Err(fail(
                whole,
                "log",
                "[[log]] needs vigilo's `logs` feature (a default feature): enable it in Cargo.toml",
            ));
        }
        let name = self.name.get_ref();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(fail(
                self.name.span(),
                "name",
                "a log's name is 1 to 128 characters, none a control character",
            ));
        }
        if self.path.get_ref().trim().is_empty() {
            return Err(fail(
                self.path.span(),
                "path",
                "a log needs a path or a glob",
            ));
        }
        #[cfg(feature = "logs")]
        if let Err(e) = glob::Pattern::new(self.path.get_ref()) {
            return Err(fail(self.path.span(), "path", format!("bad glob: {e}")));
        }
        let pattern = regex::bytes::RegexBuilder::new(self.pattern.get_ref())
            .size_limit(10 * 1024 * 1024)
            .build()
            .map_err(|e| fail(self.pattern.span(), "pattern", format!("bad regex: {e}")))?;
        let mut spec = LogSpec::new(name.as_str(), self.path.get_ref().as_str(), pattern);
        if let Some(m) = &self.metric {
            if crate::metrics::validate_metric_name(m.get_ref()).is_err() {
                return Err(fail(
                    m.span(),
                    "metric",
                    format!("invalid metric name {:?}", m.get_ref()),
                ));
            }
            m.get_ref().clone_into(&mut spec.metric);
        }
        spec.labels = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The series' labels: `log`, the pattern's named groups, the static ones.
        let mut names: Vec<&str> = vec!["log"];
        names.extend(spec.captured_labels());
        names.extend(self.labels.keys().map(String::as_str));
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (*n, "")).collect();
        if let Err(e) = crate::metrics::validate_labels(&spec.metric, &pairs) {
            let seen: HashSet<&str> = spec.captured_labels().collect();
            let (span, key) = match &e {
                crate::metrics::MetricError::InvalidLabelName { label, .. }
                | crate::metrics::MetricError::DuplicateLabel { label, .. }
                    if seen.contains(label.as_str()) || label == "log" =>
                {
                    (self.pattern.span(), "pattern")
                }
                _ => (whole.clone(), "labels"),
            };
            return Err(fail(
                span,
                key,
                format!("{e} (a log's labels are `log`, its pattern's named groups and `labels`)"),
            ));
        }
        if let Some(n) = &self.max_series {
            if *n.get_ref() == 0 {
                return Err(fail(
                    n.span(),
                    "max_series",
                    "max_series must be at least 1",
                ));
            }
            spec.max_series = *n.get_ref();
        }
        if let Some(n) = &self.max_line {
            if !(1..=MAX_LINE_LIMIT).contains(n.get_ref()) {
                return Err(fail(
                    n.span(),
                    "max_line",
                    format!("max_line must be 1 to {MAX_LINE_LIMIT} bytes"),
                ));
            }
            spec.max_line = *n.get_ref();
        }
        if let Some(p) = &self.poll {
            if p.get_ref().0 < std::time::Duration::from_millis(10) {
                return Err(fail(p.span(), "poll", "poll must be at least 10ms"));
            }
            spec.poll = p.get_ref().0;
        }
        if let Some(n) = &self.max_read {
            if *n.get_ref() < spec.max_line as u64 {
                return Err(fail(
                    n.span(),
                    "max_read",
                    "max_read must be at least max_line (one whole line per poll)",
                ));
            }
            spec.max_read = *n.get_ref();
        }
        spec.from_start = self.from_start;
        Ok(spec)
    }
}

/// Builds every `[[log]]`; names must be unique.
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(raw: &[Spanned<RawLog>]) -> Result<Vec<LogSpec>, (Failure, String)> {
    let mut specs: Vec<LogSpec> = Vec::with_capacity(raw.len());
    for l in raw {
        let name = l.get_ref().name.get_ref();
        let context = format!("log {name:?}");
        let spec = l
            .get_ref()
            .build(l.span())
            .map_err(|f| (f, context.clone()))?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err((
                fail(l.get_ref().name.span(), "name", "two logs have this name"),
                context,
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}
