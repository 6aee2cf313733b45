//! One export's thread: every interval a reading of the registry becomes requests in a bounded
//! queue, and the queue is sent in order, retried with exponential backoff while the failure
//! may pass. The same discipline for every export format; the format is an [`Encoder`].
//!
//! - **Bounded**: at most `capacity` samples wait. When a new reading does not fit, the oldest
//!   requests go first (the newest reading is worth the most), and their samples are counted in
//!   `vigilo_export_samples_dropped_total`.
//! - **Retries**: 5xx, 429, 408 and transport failures are tried again after `min_backoff`,
//!   doubling to `max_backoff`, while new readings keep queueing behind; any other status drops
//!   the request (retrying cannot change the answer), counted in
//!   `vigilo_export_requests_failed_total`.
//! - **Never on the record path**: the thread only takes registry snapshots, which never stop a
//!   writer; no lock or channel is shared with a record call.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::{ExportCounters, QueueConfig};
use crate::Registry;
use crate::clock::{Clock, Timestamp};
use crate::metrics::Snapshot;

/// One encoded request body and the samples (data points) in it.
pub(crate) struct Request {
    pub body: Vec<u8>,
    pub samples: usize,
}

/// An export format: one registry reading as request bodies of at most `max` samples each.
pub(crate) trait Encoder: Send + 'static {
    fn encode(
        &mut self,
        registry: &Registry,
        snapshot: &Snapshot,
        at: Timestamp,
        max: usize,
    ) -> Vec<Request>;
}

/// Where and how the requests go.
pub(crate) struct Target {
    pub url: String,
    /// Content type, encoding and version headers of the format, then the operator's.
    pub headers: Vec<(String, String)>,
    pub interval: Duration,
    pub queue: QueueConfig,
}

/// How a request ended.
enum Sent {
    Ok,
    Retry(String),
    Drop(String),
}

/// The export's loop, until `stop` says so (or is dropped); then one last reading, each
/// waiting request tried once, all within one `queue.timeout`.
pub(crate) fn run(
    name: &str,
    mut encoder: impl Encoder,
    registry: &Registry,
    clock: &Arc<dyn Clock>,
    target: &Target,
    counters: &ExportCounters,
    stop: &Receiver<()>,
) {
    let agent = ureq::AgentBuilder::new()
        .timeout(target.queue.timeout)
        .user_agent(concat!("vigilo/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut pending = Pending::default();
    let mut next_read = Instant::now();
    let mut backoff = target.queue.min_backoff;
    let mut read = || {
        let snapshot = registry.snapshot();
        encoder.encode(
            registry,
            &snapshot,
            clock.now(),
            target.queue.max_samples_per_send,
        )
    };
    // Until stopped (a stop sent, or the sender gone), checked before each reading and send.
    while let Err(TryRecvError::Empty) = stop.try_recv() {
        let now = Instant::now();
        if now >= next_read {
            for r in read() {
                pending.push(r, target.queue.capacity, counters);
            }
            next_read = (next_read + target.interval).max(now);
        }
        let wait = match pending.requests.front() {
            None => next_read.saturating_duration_since(Instant::now()),
            Some(r) => match send(&agent, target, r) {
                Sent::Ok => {
                    counters.sent.add(r.samples as u64);
                    counters.bytes.add(r.body.len() as u64);
                    pending.pop();
                    backoff = target.queue.min_backoff;
                    continue;
                }
                Sent::Drop(why) => {
                    log::warn!("export {name}: request refused, dropped: {why}");
                    counters.failed.increment();
                    counters.dropped.add(r.samples as u64);
                    pending.pop();
                    continue;
                }
                Sent::Retry(why) => {
                    log::debug!("export {name}: will retry in {backoff:?}: {why}");
                    counters.retries.increment();
                    let wait = backoff.min(next_read.saturating_duration_since(Instant::now()));
                    backoff = (backoff * 2).min(target.queue.max_backoff);
                    wait
                }
            },
        };
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Stopping: what was recorded up to now, each request tried once, all within one
    // `timeout` (what is left then is dropped, counted).
    for r in read() {
        pending.push(r, target.queue.capacity, counters);
    }
    let until = Instant::now() + target.queue.timeout;
    for r in pending.requests {
        if Instant::now() >= until {
            counters.dropped.add(r.samples as u64);
            continue;
        }
        match send(&agent, target, &r) {
            Sent::Ok => {
                counters.sent.add(r.samples as u64);
                counters.bytes.add(r.body.len() as u64);
            }
            Sent::Retry(why) | Sent::Drop(why) => {
                log::warn!("export {name}: last request at stop not sent: {why}");
                counters.dropped.add(r.samples as u64);
            }
        }
    }
}

/// The requests waiting, oldest first, and their samples.
#[derive(Default)]
struct Pending {
    requests: VecDeque<Request>,
    samples: usize,
}

impl Pending {
    /// Queues `r`, dropping the oldest requests (counted) until it fits in `capacity`.
    fn push(&mut self, r: Request, capacity: usize, counters: &ExportCounters) {
        while self.samples + r.samples > capacity {
            let Some(old) = self.requests.pop_front() else {
                break;
            };
            self.samples -= old.samples;
            counters.dropped.add(old.samples as u64);
        }
        self.samples += r.samples;
        self.requests.push_back(r);
    }

    fn pop(&mut self) {
        if let Some(r) = self.requests.pop_front() {
            self.samples -= r.samples;
        }
    }
}

/// POSTs one request and classifies the answer.
fn send(agent: &ureq::Agent, target: &Target, r: &Request) -> Sent {
    let mut request = agent.post(&target.url);
    for (k, v) in &target.headers {
        request = request.set(k, v);
    }
    match request.send_bytes(&r.body) {
        Ok(_) => Sent::Ok,
        Err(ureq::Error::Status(status, response)) => {
            let mut text = String::new();
            // The first bytes of the answer, for the log; a receiver's body is not trusted.
            let _ = response.into_reader().take(256).read_to_string(&mut text);
            let why = format!("{} answered {status}: {}", target.url, text.trim());
            if status >= 500 || status == 429 || status == 408 {
                Sent::Retry(why)
            } else {
                Sent::Drop(why)
            }
        }
        Err(ureq::Error::Transport(t)) => Sent::Retry(t.to_string()),
    }
}
