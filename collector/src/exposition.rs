//! Every series of a registry in the Prometheus text format (0.0.4) or in OpenMetrics 1.0.0.
//!
//! Counters and gauges are one sample each. A histogram becomes cumulative `_bucket` samples
//! at fixed `le` bounds ([`DEFAULT_BUCKETS`] unless configured), `_sum` and `_count`. vigilo
//! keeps histograms in fine log buckets (relative error 1/128, see
//! [`buckets`](crate::metrics::buckets)); each fine bucket is counted under the first `le` bound
//! at or above its lower edge, so an observation on a bound is counted under it (as `le`
//! means), and a `_bucket` count is exact for every observation more than 0.78 % above a bound. HELP and UNIT come from [`Registry::describe`]; OpenMetrics writes a
//! UNIT line only when the name ends in `_<unit>` (the format requires it), and an undescribed
//! metric gets a HELP naming its kind.
//!
//! Taking the snapshot never stops a writer, so a scrape never delays a record call.
//!
//! ```
//! # use vigilo_collector as vigilo;
//! use vigilo::Registry;
//! use vigilo::exposition::{Format, render};
//!
//! let registry = Registry::new();
//! registry.describe("jobs_total", None, "Jobs run")?;
//! registry.counter("jobs_total", &[("queue", "mail")])?.add(3);
//! let text = render(&registry, Format::Prometheus);
//! assert!(text.contains("# HELP jobs_total Jobs run\n# TYPE jobs_total counter\n"));
//! assert!(text.contains("jobs_total{queue=\"mail\"} 3\n"));
//! # Ok::<(), vigilo::MetricError>(())
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::Registry;
use crate::metrics::{Description, HistogramSnapshot, MetricKind, SeriesSnapshot, Value};

/// The `le` bounds of exported histograms unless configured: 1, 2.5 and 5 per decade from
/// 0.001 to 10 000 (then `+Inf`), wide enough for seconds, milliseconds and bytes counts alike.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
    100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 (text).
    OpenMetrics,
}

impl Format {
    /// The format a scraper asks for in its `Accept` header: OpenMetrics if it lists
    /// `application/openmetrics-text` (with a non-zero `q`), the Prometheus text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !params.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every series of `registry` in `format`, histograms at [`DEFAULT_BUCKETS`].
pub fn render(registry: &Registry, format: Format) -> String {
    let mut out = Exposition::new(format, DEFAULT_BUCKETS);
    out.registry(registry);
    out.finish()
}

/// A sample of a family that is not in the registry (the monitor's own state).
#[doc(hidden)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// An exposition being written: the registry's families, then any others, then `# EOF` for
/// OpenMetrics.
#[doc(hidden)]
pub struct Exposition<'a> {
    format: Format,
    buckets: &'a [f64],
    out: String,
}

impl<'a> Exposition<'a> {
    pub fn new(format: Format, buckets: &'a [f64]) -> Self {
        Exposition {
            format,
            buckets,
            out: String::new(),
        }
    }

    /// Every series of `registry`, one family per metric name.
    pub fn registry(&mut self, registry: &Registry) {
        let series = registry.snapshot_for_exposition();
        let descriptions = registry.descriptions();
        self.out.reserve(series.len() * 64);
        let mut rest = series.as_slice();
        while let Some(first) = rest.first() {
            let n = rest.iter().take_while(|s| s.name == first.name).count();
            let (family, tail) = rest.split_at(n);
            self.family(family, &descriptions);
            rest = tail;
        }
    }

    /// A family of samples computed elsewhere (counter or gauge).
    pub fn extra(&mut self, name: &str, kind: MetricKind, help: &str, samples: &[Sample]) {
        let base = self.family_name(name, kind);
        self.header(&base, kind, help, None);
        let sample_name = self.sample_name(name, kind);
        for s in samples {
            self.out.push_str(&sample_name);
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            write_labels(&mut self.out, labels.into_iter(), None);
            self.value(s.value);
        }
    }

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    fn family(&mut self, series: &[SeriesSnapshot], descriptions: &HashMap<Arc<str>, Description>) {
        let Some(first) = series.first() else { return };
        let name: &str = &first.name;
        let kind = first.value.kind();
        let base = self.family_name(name, kind);
        let described = descriptions.get(name);
        let help = described.map_or_else(
            || format!("vigilo {} {name}", kind_name(kind)),
            |d| d.help.clone(),
        );
        let unit = described
            .and_then(|d| d.unit.as_deref())
            .filter(|u| base.ends_with(&format!("_{u}")));
        self.header(&base, kind, &help, unit);
        let sample_name = self.sample_name(name, kind);
        for s in series {
            match &s.value {
                Value::Counter(n) => {
                    self.out.push_str(&sample_name);
                    write_labels(&mut self.out, s.labels.iter(), None);
                    let _ = writeln!(self.out, " {n}");
                }
                Value::Gauge(v) => {
                    self.out.push_str(&sample_name);
                    write_labels(&mut self.out, s.labels.iter(), None);
                    self.value(*v);
                }
                Value::Histogram(h) => self.histogram(name, s, h),
            }
        }
    }

    fn histogram(&mut self, name: &str, s: &SeriesSnapshot, h: &HistogramSnapshot) {
        let counts = h.counts_at(self.buckets);
        let mut cumulative = 0;
        for (le, n) in self.buckets.iter().zip(&counts) {
            cumulative += n;
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, s.labels.iter(), Some(&format_value(*le)));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, s.labels.iter(), Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count());
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, s.labels.iter(), None);
        self.value(h.sum());
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, s.labels.iter(), None);
        let _ = writeln!(self.out, " {}", h.count());
    }

    /// The family's name: OpenMetrics names a counter's family without its `_total`.
    fn family_name(&self, name: &str, kind: MetricKind) -> String {
        match (self.format, kind) {
            (Format::OpenMetrics, MetricKind::Counter) => {
                name.strip_suffix("_total").unwrap_or(name).to_owned()
            }
            _ => name.to_owned(),
        }
    }

    /// A counter's sample: OpenMetrics requires the `_total` suffix.
    fn sample_name(&self, name: &str, kind: MetricKind) -> String {
        match (self.format, kind) {
            (Format::OpenMetrics, MetricKind::Counter) if !name.ends_with("_total") => {
                format!("{name}_total")
            }
            _ => name.to_owned(),
        }
    }

    fn header(&mut self, name: &str, kind: MetricKind, help: &str, unit: Option<&str>) {
        let _ = write!(self.out, "# HELP {name} ");
        escape_help(&mut self.out, help, self.format);
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind_name(kind));
        if let (Some(unit), Format::OpenMetrics) = (unit, self.format) {
            let _ = writeln!(self.out, "# UNIT {name} {unit}");
        }
    }

    fn value(&mut self, v: f64) {
        let _ = writeln!(self.out, " {}", format_value(v));
    }
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    }
}

/// A float as both formats spell it (`+Inf`, `-Inf`, `NaN`, shortest round-trip otherwise).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// `{a="1",b="2"}` (with `le` last for a bucket), nothing for no labels.
fn write_labels<'l>(
    out: &mut String,
    labels: impl Iterator<Item = (&'l str, &'l str)>,
    le: Option<&'l str>,
) {
    let mut first = true;
    for (k, v) in labels.chain(le.map(|le| ("le", le))) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        if v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(v);
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// HELP text: backslash and newline escaped (and `"` in OpenMetrics).
fn escape_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn accept_headers_choose_the_format() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0")),
            Format::Prometheus
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram("latency_seconds", &[("route", "/a")]).unwrap();
        for v in [0.003, 0.02, 0.02, 0.7, 40_000.0] {
            h.record(v);
        }
        let text = render(&r, Format::Prometheus);
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"0.001\"} 0\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"0.025\"} 3\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"1\"} 4\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"10000\"} 4\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5\n"));
        assert!(text.contains("latency_seconds_count{route=\"/a\"} 5\n"));
        assert!(text.contains("latency_seconds_sum{route=\"/a\"} 40000.743\n"));
    }

    #[test]
    fn openmetrics_names_counters_by_family_and_ends_with_eof() {
        let r = Registry::new();
        r.describe("sent_bytes_total", Some("bytes"), "Bytes \"sent\"\nout")
            .unwrap();
        r.counter("sent_bytes_total", &[]).unwrap().add(7);
        r.gauge("temp", &[("room", "a\"b\\c\nd")]).unwrap().set(1.5);
        let text = render(&r, Format::OpenMetrics);
        assert!(
            text.contains("# HELP sent_bytes Bytes \\\"sent\\\"\\nout\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE sent_bytes counter\n# UNIT sent_bytes bytes\n"));
        assert!(text.contains("sent_bytes_total 7\n"));
        assert!(text.contains("temp{room=\"a\\\"b\\\\c\\nd\"} 1.5\n"));
        assert!(text.ends_with("# EOF\n"));
        let plain = render(&r, Format::Prometheus);
        assert!(plain.contains("# TYPE sent_bytes_total counter\n"));
        assert!(!plain.contains("# UNIT"));
        assert!(!plain.contains("# EOF"));
    }
}
