//! The threads that call channels and actions. Each channel and each action has its own pool
//! fed by its own queue, so a slow, failing or hung one holds only its own threads; results
//! come back to the pipeline on one channel. A panic in a native channel or action is caught
//! and reported as a failure of that call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// ones exit after their call (they are not waited for). [`close`](Self::close) also waits
/// for them, as long as their calls take.
pub(crate) struct Pool<J> {
    tx: Sender<J>,
    /// Disconnected once every thread has ended (each holds a sender it drops last).
    ended: Receiver<()>,
    /// Set by `close`: jobs still queued are dropped, not started.
    closed: Arc<AtomicBool>,
}

impl<J> Pool<J> {
    /// Queues a job; false if every thread is gone.
    pub(crate) fn send(&self, job: J) -> bool {
        self.tx.send(job).is_ok()
    }

    /// Closes the queue and waits for the threads to end, which drops their reference to the
    /// channel or action: jobs not started yet are dropped (what they were for stays in the
    /// outbox), idle threads end at once, a thread inside a call ends when the call returns,
    /// however long that takes. So once this returns, no call of the channel or action runs.
    pub(crate) fn close(self) {
        let Pool { tx, ended, closed } = self;
        // Release: a worker that reads it (Acquire) before its next job sees the close.
        closed.store(true, Ordering::Release);
        drop(tx);
        // Nothing is ever sent: this returns when the last thread's sender goes.
        let _ = ended.recv();
    }
}

fn spawn<J: Send + 'static>(
    name: &str,
    workers: usize,
    work: impl Fn(J) + Send + Sync + 'static,
) -> std::io::Result<Pool<J>> {
    let (tx, rx): (Sender<J>, Receiver<J>) = crossbeam_channel::unbounded();
    let (end_tx, ended) = crossbeam_channel::bounded::<()>(0);
    let closed = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    for i in 0..workers.max(1) {
        let rx = rx.clone();
        let work = Arc::clone(&work);
        let end = end_tx.clone();
        let closed = Arc::clone(&closed);
        thread::Builder::new()
            .name(format!("vigilo-{name}-{i}"))
            .spawn(move || {
                for job in rx {
                    // Acquire: pairs with `close`'s Release store.
                    if closed.load(Ordering::Acquire) {
                        break;
                    }
                    work(job);
                }
                // The channel's (or action's) reference first, then the sign that this
                // thread is done with it.
                drop(work);
                drop(end);
            })?;
    }
    Ok(Pool { tx, ended, closed })
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
        pool.close();
        assert!(
            dropped.load(Ordering::Relaxed),
            "close returned before the work was dropped"
        );
    }

    #[test]
    fn close_waits_for_the_call_running_and_starts_no_queued_job() {
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let (started_tx, started_rx) = crossbeam_channel::unbounded::<()>();
        let returned = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&returned);
        let pool = spawn("t", 1, move |()| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            // Relaxed: read after `close` returned, which waited for this thread to end.
            seen.store(true, Ordering::Relaxed);
        })
        .unwrap();
        assert!(pool.send(()));
        assert!(pool.send(())); // queued behind the running call: never started
        started_rx.recv().unwrap();
        let closing = Arc::clone(&pool.closed);
        let releaser = thread::spawn(move || {
            // The call is held until `close` is under way.
            while !closing.load(Ordering::Acquire) {
                thread::yield_now();
            }
            release_tx.send(()).unwrap();
        });
        pool.close();
        assert!(
            returned.load(Ordering::Relaxed),
            "close returned while the call was still running"
        );
        assert_eq!(
            started_rx.try_iter().count(),
            0,
            "a queued job was started after close"
        );
        releaser.join().unwrap();
    }
}
