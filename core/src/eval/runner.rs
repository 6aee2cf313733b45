//! Running the evaluator on its own thread.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, select};

use super::{EvalError, Evaluator, EvaluatorStats};
use crate::rules::Rule;

/// Work to run on the evaluator's thread, with the evaluator.
type Job = Box<dyn FnOnce(&Evaluator) + Send>;

enum Command {
    With(Job),
    Stats(Sender<EvaluatorStats>),
    Reload(Vec<Rule>, Sender<Result<(), EvalError>>),
    ItemStates(Sender<Vec<super::ItemSnapshot>>),
    Learned(Sender<Vec<super::LearnedSnapshot>>),
    Stop,
}

/// Controls an evaluator running on its own thread (see [`Evaluator::spawn`]). Dropping it
/// stops the thread.
pub struct EvaluatorHandle {
    control: Sender<Command>,
    thread: Option<JoinHandle<Evaluator>>,
}

impl Evaluator {
    /// Runs the evaluator on a thread named `vigilo-evaluator`: a full sweep every tick, and in
    /// between, an immediate evaluation whenever a watch fires or a duration comes due.
    pub fn spawn(self) -> Result<EvaluatorHandle, EvalError> {
        let (control, commands) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("vigilo-evaluator".into())
            .spawn(move || run(self, commands))
            .map_err(EvalError::Spawn)?;
        Ok(EvaluatorHandle {
            control,
            thread: Some(thread),
        })
    }
}

fn run(mut ev: Evaluator, commands: Receiver<Command>) -> Evaluator {
    let watch = ev.watch_receiver().clone();
    let tick = ev.config().tick.max(std::time::Duration::from_millis(1));
    let mut next_tick = ev.clock().now();
    loop {
        let now = ev.clock().now();
        if now >= next_tick {
            ev.tick(now);
            next_tick = now + tick;
        } else {
            ev.poll(now);
        }
        let wake = ev.next_deadline().map_or(next_tick, |d| d.min(next_tick));
        let timeout = wake.since(ev.clock().now());
        select! {
            recv(watch) -> event => {
                if let Ok(event) = event {
                    let now = ev.clock().now();
                    ev.handle_event(event, now);
                }
            }
            recv(commands) -> command => match command {
                Ok(Command::With(job)) => job(&ev),
                Ok(Command::Stats(reply)) => {
                    let _ = reply.send(ev.stats());
                }
                Ok(Command::Reload(rules, reply)) => {
                    let now = ev.clock().now();
                    let _ = reply.send(ev.reload(rules, now));
                }
                Ok(Command::ItemStates(reply)) => {
                    let _ = reply.send(ev.item_states());
                }
                Ok(Command::Learned(reply)) => {
                    let _ = reply.send(ev.learned_states());
                }
                Ok(Command::Stop) | Err(_) => return ev,
            },
            default(timeout) => {}
        }
    }
}

impl EvaluatorHandle {
    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T, EvalError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.control
            .send(make(tx))
            .map_err(|_| EvalError::Stopped)?;
        rx.recv().map_err(|_| EvalError::Stopped)
    }

    /// Runs `read` on the evaluator's thread, with the evaluator as it stands between two
    /// evaluations, and returns what it returns (the status board and the coverage report are
    /// read this way: `status`, `coverage`).
    pub fn with<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Evaluator) -> T + Send + 'static,
    ) -> Result<T, EvalError> {
        self.ask(|tx| {
            Command::With(Box::new(move |ev| {
                let _ = tx.send(read(ev));
            }))
        })
    }

    /// The evaluator's work counters.
    pub fn stats(&self) -> Result<EvaluatorStats, EvalError> {
        self.ask(Command::Stats)
    }

    /// Replaces the rules (see [`Evaluator::reload`]).
    pub fn reload(&self, rules: Vec<Rule>) -> Result<(), EvalError> {
        self.ask(|tx| Command::Reload(rules, tx))?
    }

    /// The state of every item not at rest (see [`Evaluator::item_states`]).
    pub fn item_states(&self) -> Result<Vec<super::ItemSnapshot>, EvalError> {
        self.ask(Command::ItemStates)
    }

    /// What anomaly rules' items learned since the last call (see
    /// [`Evaluator::learned_states`]).
    pub fn learned_states(&self) -> Result<Vec<super::LearnedSnapshot>, EvalError> {
        self.ask(Command::Learned)
    }

    /// Stops the thread and gives the evaluator back.
    pub fn stop(mut self) -> Result<Evaluator, EvalError> {
        let _ = self.control.send(Command::Stop);
        let thread = self.thread.take().ok_or(EvalError::Stopped)?;
        thread.join().map_err(|_| EvalError::Stopped)
    }
}

impl Drop for EvaluatorHandle {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.control.send(Command::Stop);
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for EvaluatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvaluatorHandle")
            .field("running", &self.thread.is_some())
            .finish()
    }
}
