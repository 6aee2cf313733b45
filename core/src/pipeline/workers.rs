//! The threads that call channels and actions. Each channel and each action has its own pool
//! fed by its own queue, so a slow, failing or hung one holds only its own threads; results
//! come back to the pipeline on one channel. A panic in a native channel or action is caught
//! and reported as a failure of that call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::notification::NotificationId;
use crate::alert::{Action, ActionError, ActionOutcome, Alert, Channel, DeliveryError};

/// One delivery to do.
pub(crate) struct DeliveryJob {
    pub(crate) id: NotificationId,
    pub(crate) alert: Alert,
}

/// One action run to do.
pub(crate) struct ActionJob {
    pub(crate) token: u64,
    pub(crate) alert: Alert,
}

/// What a worker reports.
pub(crate) enum Done {
    Delivery {
        id: NotificationId,
        result: Result<(), DeliveryError>,
        elapsed: Duration,
    },
    Action {
        token: u64,
        result: Result<ActionOutcome, ActionError>,
    },
}

/// A pool of threads reading one queue. Dropping it closes the queue: idle threads exit, busy
/// ones exit after their call (they are not waited for, so a hung call never blocks the
/// pipeline).
pub(crate) struct Pool<J> {
    tx: Sender<J>,
}

impl<J> Pool<J> {
    /// Queues a job; false if every thread is gone.
    pub(crate) fn send(&self, job: J) -> bool {
        self.tx.send(job).is_ok()
    }
}

fn spawn<J: Send + 'static>(
    name: &str,
    workers: usize,
    work: impl Fn(J) + Send + Sync + 'static,
) -> std::io::Result<Pool<J>> {
    let (tx, rx): (Sender<J>, Receiver<J>) = crossbeam_channel::unbounded();
    let work = Arc::new(work);
    for i in 0..workers.max(1) {
        let rx = rx.clone();
        let work = Arc::clone(&work);
        thread::Builder::new()
            .name(format!("vigilo-{name}-{i}"))
            .spawn(move || {
                for job in rx {
                    work(job);
                }
            })?;
    }
    Ok(Pool { tx })
}

/// Threads delivering to `channel`.
pub(crate) fn channel_pool(
    channel: Arc<dyn Channel>,
    workers: usize,
    results: Sender<Done>,
) -> std::io::Result<Pool<DeliveryJob>> {
    let name = channel.name().to_owned();
    spawn(&name, workers, move |job: DeliveryJob| {
        let t0 = Instant::now();
        let result =
            catch_unwind(AssertUnwindSafe(|| channel.deliver(&job.alert))).unwrap_or_else(|_| {
                Err(DeliveryError::Retryable(format!(
                    "channel {} panicked",
                    channel.name()
                )))
            });
        let _ = results.send(Done::Delivery {
            id: job.id,
            result,
            elapsed: t0.elapsed(),
        });
    })
}

/// Threads running `action`.
pub(crate) fn action_pool(
    action: Arc<dyn Action>,
    workers: usize,
    results: Sender<Done>,
) -> std::io::Result<Pool<ActionJob>> {
    let name = action.name().to_owned();
    spawn(&name, workers, move |job: ActionJob| {
        let result =
            catch_unwind(AssertUnwindSafe(|| action.run(&job.alert))).unwrap_or_else(|_| {
                Err(ActionError::Failed(format!(
                    "action {} panicked",
                    action.name()
                )))
            });
        let _ = results.send(Done::Action {
            token: job.token,
            result,
        });
    })
}
