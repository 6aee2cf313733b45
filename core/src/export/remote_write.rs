//! Prometheus remote-write 1.0: a `WriteRequest` in protobuf, snappy block-compressed, POSTed
//! with the headers Prometheus's own sender sets.
//!
//! The four messages are those of Prometheus's `prompb/remote.proto` and `prompb/types.proto`
//! (field numbers as there), derived with prost: `WriteRequest.timeseries` = 1,
//! `TimeSeries.labels` = 1 and `.samples` = 2, `Label.name` = 1 and `.value` = 2,
//! `Sample.value` = 1 (double) and `.timestamp` = 2 (int64, ms). Metadata (field 3 of
//! `WriteRequest`) is optional in 1.0 and not sent. A real Prometheus receiver checks them in
//! `core/tests/all/export_remote_write.rs`.
//!
//! Each series is sent as Prometheus would scrape it: a counter or gauge as one sample, a
//! histogram as cumulative `_bucket{le}` series, `_sum` and `_count`. Labels are sorted by
//! name, `__name__` among them; the external labels are added to series that lack them.

use std::collections::BTreeMap;

use prost::Message;

use super::RemoteWriteConfig;
use super::queue::{Encoder, Request, Target};
use crate::Registry;
use crate::clock::Timestamp;
use crate::metrics::{SeriesSnapshot, Snapshot, Value};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The encoder and the target of `[export.remote_write]`.
pub(crate) fn prepare(c: &RemoteWriteConfig) -> (RemoteWrite, Target) {
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "application/x-protobuf".to_owned(),
        ),
        ("Content-Encoding".to_owned(), "snappy".to_owned()),
        (
            "X-Prometheus-Remote-Write-Version".to_owned(),
            "0.1.0".to_owned(),
        ),
    ];
    headers.extend(c.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let encoder = RemoteWrite {
        external: c.external_labels.clone(),
        buckets: c.buckets.clone(),
    };
    let target = Target {
        url: c.url.clone(),
        headers,
        interval: c.interval,
        queue: c.queue.clone(),
    };
    (encoder, target)
}

/// Registry readings as remote-write requests.
pub(crate) struct RemoteWrite {
    external: BTreeMap<String, String>,
    buckets: Vec<f64>,
}

impl Encoder for RemoteWrite {
    fn encode(
        &mut self,
        _registry: &Registry,
        snapshot: &Snapshot,
        at: Timestamp,
        max: usize,
    ) -> Vec<Request> {
        let ms = at.as_millis();
        let mut out = Vec::new();
        let mut batch: Vec<TimeSeries> = Vec::new();
        for s in &snapshot.series {
            for ts in self.series(s, ms) {
                batch.push(ts);
                if batch.len() >= max {
                    out.extend(request(std::mem::take(&mut batch)));
                }
            }
        }
        if !batch.is_empty() {
            out.extend(request(batch));
        }
        out
    }
}

impl RemoteWrite {
    /// The remote-write series of one registry series (one sample each).
    fn series(&self, s: &SeriesSnapshot, ms: i64) -> Vec<TimeSeries> {
        let one = |suffix: &str, le: Option<String>, value: f64| {
            let mut labels: BTreeMap<&str, String> =
                s.labels.iter().map(|(k, v)| (k, v.to_owned())).collect();
            for (k, v) in &self.external {
                labels.entry(k.as_str()).or_insert_with(|| v.clone());
            }
            if let Some(le) = le {
                labels.insert("le", le);
            }
            labels.insert("__name__", format!("{}{suffix}", s.name));
            TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|(name, value)| Label {
                        name: name.to_owned(),
                        value,
                    })
                    .collect(),
                samples: vec![Sample {
                    value,
                    timestamp: ms,
                }],
            }
        };
        match &s.value {
            Value::Counter(n) => vec![one("", None, *n as f64)],
            Value::Gauge(v) => vec![one("", None, *v)],
            Value::Histogram(h) => {
                let counts = h.counts_at(&self.buckets);
                let mut out = Vec::with_capacity(self.buckets.len() + 3);
                let mut cumulative = 0u64;
                for (le, n) in self.buckets.iter().zip(&counts) {
                    cumulative += n;
                    out.push(one("_bucket", Some(le.to_string()), cumulative as f64));
                }
                out.push(one("_bucket", Some("+Inf".to_owned()), h.count() as f64));
                out.push(one("_sum", None, h.sum()));
                out.push(one("_count", None, h.count() as f64));
                out
            }
        }
    }
}

/// One request body: the protobuf, snappy block-compressed.
fn request(timeseries: Vec<TimeSeries>) -> Option<Request> {
    let samples = timeseries.len();
    let proto = WriteRequest { timeseries }.encode_to_vec();
    match snap::raw::Encoder::new().compress_vec(&proto) {
        Ok(body) => Some(Request { body, samples }),
        // Only an input above snappy's 4 GiB limit fails; a batch is far below it.
        Err(e) => {
            log::error!("export remote_write: snappy refused a request of {samples} samples: {e}");
            None
        }
    }
}
