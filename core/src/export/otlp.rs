//! OTLP/HTTP metrics: an `ExportMetricsServiceRequest` in protobuf (the OpenTelemetry
//! project's own generated messages, crate `opentelemetry-proto`), POSTed as
//! `application/x-protobuf`.
//!
//! One resource (the section's `resource` attributes, `service.name` defaulting to
//! `unknown_service`), one scope (`vigilo`, the crate's version), one metric per name with the
//! registry's description and unit:
//! - a counter: a `Sum`, monotonic, cumulative;
//! - a gauge: a `Gauge`;
//! - a histogram: a cumulative `Histogram` at the section's explicit `buckets`, with count,
//!   sum, min and max.
//!
//! A cumulative point's start time is when its series began counting as far as the export can
//! tell: the monitor's start for series there at the first reading, and for a series that
//! appeared later the previous reading (when it was not there yet).

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::OtlpConfig;
use super::queue::{Encoder, Request, Target};
use crate::Registry;
use crate::clock::Timestamp;
use crate::metrics::{Description, SeriesId, SeriesSnapshot, Snapshot, Value};

/// The encoder and the target of `[export.otlp]`; `started` is the monitor's start.
pub(crate) fn prepare(c: &OtlpConfig, started: Timestamp) -> (Otlp, Target) {
    let mut headers = vec![(
        "Content-Type".to_owned(),
        "application/x-protobuf".to_owned(),
    )];
    headers.extend(c.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut resource = c.resource.clone();
    resource
        .entry("service.name".to_owned())
        .or_insert_with(|| "unknown_service".to_owned());
    let encoder = Otlp {
        resource: resource.iter().map(|(k, v)| attribute(k, v)).collect(),
        buckets: c.buckets.clone(),
        started: nanos(started),
        previous: None,
        starts: HashMap::new(),
    };
    let target = Target {
        url: c.endpoint.clone(),
        headers,
        interval: c.interval,
        queue: c.queue.clone(),
    };
    (encoder, target)
}

/// Registry readings as OTLP requests.
pub(crate) struct Otlp {
    resource: Vec<KeyValue>,
    buckets: Vec<f64>,
    /// The monitor's start, ns since the epoch.
    started: u64,
    /// The previous reading's time, if any.
    previous: Option<u64>,
    /// Each series' start time, for the series of the previous reading.
    starts: HashMap<SeriesId, u64>,
}

impl Encoder for Otlp {
    fn encode(
        &mut self,
        registry: &Registry,
        snapshot: &Snapshot,
        at: Timestamp,
        max: usize,
    ) -> Vec<Request> {
        let now = nanos(at);
        let descriptions = registry.descriptions();
        let first_seen = self.previous.unwrap_or(self.started);
        let mut starts = HashMap::with_capacity(snapshot.series.len());
        let mut out = Vec::new();
        let mut metrics: Vec<Metric> = Vec::new();
        let mut points = 0usize;
        for s in &snapshot.series {
            let start = self.starts.get(&s.id).copied().unwrap_or(first_seen);
            starts.insert(s.id, start);
            let data = self.point(s, start, now);
            // A new metric when the name changes or a request was just closed.
            let same = metrics.last().is_some_and(|m| m.name == *s.name);
            if !same {
                let d: Option<&Description> = descriptions.get(&s.name);
                metrics.push(Metric {
                    name: s.name.to_string(),
                    description: d.map(|d| d.help.clone()).unwrap_or_default(),
                    unit: d.and_then(|d| d.unit.clone()).unwrap_or_default(),
                    data: Some(empty_like(&data)),
                    ..Metric::default()
                });
            }
            if let Some(m) = metrics.last_mut() {
                push(m, data);
            }
            points += 1;
            if points >= max {
                out.push(self.request(std::mem::take(&mut metrics)));
                points = 0;
            }
        }
        if !metrics.is_empty() {
            out.push(self.request(metrics));
        }
        self.starts = starts;
        self.previous = Some(now);
        out
    }
}

/// One data point, not yet in its metric.
enum Point {
    Sum(NumberDataPoint),
    Gauge(NumberDataPoint),
    Histogram(HistogramDataPoint),
}

impl Otlp {
    fn point(&self, s: &SeriesSnapshot, start: u64, now: u64) -> Point {
        let attributes: Vec<KeyValue> = s.labels.iter().map(|(k, v)| attribute(k, v)).collect();
        let number = |value: number_data_point::Value, start: u64| NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(value),
            ..NumberDataPoint::default()
        };
        match &s.value {
            Value::Counter(n) => Point::Sum(number(
                number_data_point::Value::AsInt(i64::try_from(*n).unwrap_or(i64::MAX)),
                start,
            )),
            Value::Gauge(v) => Point::Gauge(number(number_data_point::Value::AsDouble(*v), 0)),
            Value::Histogram(h) => Point::Histogram(HistogramDataPoint {
                attributes: attributes.clone(),
                start_time_unix_nano: start,
                time_unix_nano: now,
                count: h.count(),
                sum: Some(h.sum()),
                bucket_counts: h.counts_at(&self.buckets),
                explicit_bounds: self.buckets.clone(),
                min: h.min(),
                max: h.max(),
                ..HistogramDataPoint::default()
            }),
        }
    }

    fn request(&self, metrics: Vec<Metric>) -> Request {
        let samples = metrics.iter().map(points).sum();
        let body = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: self.resource.clone(),
                    ..Resource::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "vigilo".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    metrics,
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        }
        .encode_to_vec();
        Request { body, samples }
    }
}

/// A metric's data of the kind of `p`, with no points yet.
fn empty_like(p: &Point) -> metric::Data {
    let cumulative = AggregationTemporality::Cumulative as i32;
    match p {
        Point::Sum(_) => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        Point::Gauge(_) => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        Point::Histogram(_) => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: cumulative,
        }),
    }
}

/// Adds `p` to `m` (whose kind it is: the registry keeps one kind per name).
fn push(m: &mut Metric, p: Point) {
    match (&mut m.data, p) {
        (Some(metric::Data::Sum(s)), Point::Sum(p)) => s.data_points.push(p),
        (Some(metric::Data::Gauge(g)), Point::Gauge(p)) => g.data_points.push(p),
        (Some(metric::Data::Histogram(h)), Point::Histogram(p)) => h.data_points.push(p),
        (data, p) => {
            log::error!(
                "export otlp: metric {} holds {data:?}, not a point like {}",
                m.name,
                match p {
                    Point::Sum(_) => "a sum's",
                    Point::Gauge(_) => "a gauge's",
                    Point::Histogram(_) => "a histogram's",
                }
            );
        }
    }
}

/// The data points of a metric.
fn points(m: &Metric) -> usize {
    match &m.data {
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_)) | None => 0,
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// Nanoseconds since the epoch (0 before it).
fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(0)
}
