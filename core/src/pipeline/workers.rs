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
/// pipeline). [`close`](Self::close) also waits for them, for a while.
pub(crate) struct Pool<J> {
    tx: Sender<J>,
    /// Disconnected once every thread has ended (each holds a sender it drops last).
    ended: Receiver<()>,
}

impl<J> Pool<J> {
    /// Queues a job; false if every thread is gone.
    pub(crate) fn send(&self, job: J) -> bool {
        self.tx.send(job).is_ok()
    }

    /// Closes the queue and waits until `until` for the threads to end, which drops their
    /// reference to the channel or action: idle threads end at once; one inside a hung call is
    /// left to end on its own.
    pub(crate) fn close(self, until: Instant) {
        let Pool { tx, ended } = self;
        drop(tx);
        // Nothing is ever sent: this returns when the last thread's sender goes (or at `until`).
        let _ = ended.recv_deadline(until);
    }
}

fn spawn<J: Send + 'static>(
    name: &str,
    workers: usize,
    work: impl Fn(J) + Send + Sync + 'static,
) -> std::io::Result<Pool<J>> {
    let (tx, rx): (Sender<J>, Receiver<J>) = crossbeam_channel::unbounded();
    let (end_tx, ended) = crossbeam_channel::bounded::<()>(0);
    let work = Arc::new(work);
    for i in 0..workers.max(1) {
        let rx = rx.clone();
        let work = Arc::clone(&work);
        let end = end_tx.clone();
        thread::Builder::new()
            .name(format!("vigilo-{name}-{i}"))
            .spawn(move || {
                for job in rx {
                    work(job);
                }
                // The channel's (or action's) reference first, then the sign that this
                // thread is done with it.
                drop(work);
                drop(end);
            })?;
    }
    Ok(Pool { tx, ended })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set when dropped, after a delay: a channel whose last reference takes a while to go.
    struct SlowDrop(Arc<AtomicBool>);

    impl Drop for SlowDrop {
        fn drop(&mut self) {
            thread::sleep(Duration::from_millis(100));
            // Relaxed: read after `close` returned, which waited for this thread to end.
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn close_returns_once_the_threads_have_let_go_of_their_work() {
        let dropped = Arc::new(AtomicBool::new(false));
        let held = SlowDrop(Arc::clone(&dropped));
        let pool = spawn("t", 4, move |()| {
            let _ = &held;
        })
        .unwrap();
        assert!(pool.send(()));
        pool.close(Instant::now() + Duration::from_secs(10));
        assert!(
            dropped.load(Ordering::Relaxed),
            "close returned before the work was dropped"
        );
    }

    #[test]
    fn close_gives_up_on_a_hung_call_at_its_deadline() {
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
        let pool = spawn("t", 1, move |()| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
        })
        .unwrap();
        assert!(pool.send(()));
        started_rx.recv().unwrap();
        let t0 = Instant::now();
        pool.close(t0 + Duration::from_millis(50));
        assert!(t0.elapsed() < Duration::from_secs(5));
        drop(release_tx);
    }
}
