//! The pipeline's thread and the handle callers hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select};
use parking_lot::Mutex;

use super::PipelineError;
use super::dispatcher::Dispatcher;
use super::event::{Event, HistoryQuery};
use super::incident::{AckRequest, Incident, IncidentId};
use super::journal::Journal;
use super::settings::PipelineConfig;
use super::silence::{Silence, SilenceId, SilenceRequest};
use super::sqlite::SqliteStore;
use super::stats::PipelineStats;
use super::store::Store;
use super::workers::Done;
use crate::alert::{Action, Channel};
use crate::clock::{Clock, SystemClock};
use crate::eval::{ItemSnapshot, Transition};
use crate::slo::SloSnapshot;

type Reply<T> = Sender<T>;

/// Implementations handed over with a reload.
pub(crate) struct Implementations {
    pub(crate) channels: HashMap<String, Arc<dyn Channel>>,
    pub(crate) actions: HashMap<String, Arc<dyn Action>>,
}

enum Command {
    Incidents(Reply<Vec<Incident>>),
    Incident(IncidentId, Reply<Option<Incident>>),
    Ack(IncidentId, AckRequest, Reply<Result<(), PipelineError>>),
    Unack(IncidentId, Reply<Result<(), PipelineError>>),
    Silence(SilenceRequest, Reply<Result<SilenceId, PipelineError>>),
    ExpireSilence(SilenceId, Reply<Result<(), PipelineError>>),
    Silences(Reply<Vec<Silence>>),
    History(HistoryQuery, Reply<Result<Vec<Event>, PipelineError>>),
    Stats(Reply<PipelineStats>),
    Subscribe(Reply<Receiver<Event>>),
    Settle(Duration, Reply<Result<(), PipelineError>>),
    Reload(
        Box<(PipelineConfig, Implementations)>,
        Reply<Result<(), PipelineError>>,
    ),
    Stop(Duration, Reply<StopReport>),
}

/// Builds a [`Pipeline`]: its configuration, the implementation of every channel and action
/// the configuration names, a clock and a store.
pub struct PipelineBuilder {
    config: PipelineConfig,
    clock: Arc<dyn Clock>,
    store: Option<Box<dyn Store>>,
    impls: Implementations,
}

impl PipelineBuilder {
    /// The clock every timer reads (default: the system clock). Tests use a
    /// [`ManualClock`](crate::clock::ManualClock) and [`Pipeline::settle`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where state is kept (default: an in-memory [`SqliteStore`] sized by `[notify]`).
    pub fn store(mut self, store: Box<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The implementation of the configured channel called `channel.name()`.
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.impls
            .channels
            .insert(channel.name().to_owned(), channel);
        self
    }

    /// The implementation of the configured action called `action.name()`.
    pub fn action(mut self, action: Arc<dyn Action>) -> Self {
        self.impls.actions.insert(action.name().to_owned(), action);
        self
    }

    /// Starts the pipeline's thread, reading transitions from `transitions` (the receiver
    /// [`Evaluator::new`](crate::eval::Evaluator::new) returns).
    ///
    /// Fails if a configured channel or action has no implementation, or an implementation was
    /// given for a name the configuration does not have.
    pub fn start(self, transitions: Receiver<Transition>) -> Result<Pipeline, PipelineError> {
        for name in self.impls.channels.keys() {
            if self.config.channel(name).is_none() {
                return Err(PipelineError::UnconfiguredChannel(name.clone()));
            }
        }
        for name in self.impls.actions.keys() {
            if self.config.action(name).is_none() {
                return Err(PipelineError::UnconfiguredAction(name.clone()));
            }
        }
        let (results_tx, results_rx) = crossbeam_channel::unbounded();
        let mut store: Box<dyn Store> = match self.store {
            Some(s) => s,
            None => Box::new(
                SqliteStore::in_memory(
                    self.config.notify.history_limit,
                    self.config.notify.history_max_age,
                )
                .map_err(PipelineError::Store)?,
            ),
        };
        let mut state = store.load().map_err(PipelineError::Store)?;
        if state.identity.is_empty() {
            // A store that keeps no identity: one for this run, so keys stay unique.
            state.identity = super::sqlite::new_identity().map_err(PipelineError::Store)?;
        }
        let journal = Arc::new(Mutex::new(Journal::new(
            store,
            std::mem::take(&mut state.identity),
            state.last_event,
            super::journal::Restored {
                items: std::mem::take(&mut state.item_states),
                slos: std::mem::take(&mut state.slo_states),
                learned: std::mem::take(&mut state.learned),
                logs: std::mem::take(&mut state.log_offsets),
            },
            self.config.notify.subscriber_capacity,
        )));
        let d = Dispatcher::start(
            Arc::clone(&self.clock),
            self.config,
            Arc::clone(&journal),
            state,
            &self.impls.channels,
            &self.impls.actions,
            results_tx,
        )?;
        let (control, commands) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("vigilo-pipeline".into())
            .spawn(move || run(d, transitions, results_rx, commands))
            .map_err(PipelineError::Spawn)?;
        Ok(Pipeline {
            control,
            journal,
            clock: self.clock,
            thread: Some(thread),
        })
    }
}

/// The alert pipeline: turns transitions into incidents, routes them, applies the notification
/// policy, delivers through channels with retries and fallbacks, runs recovery actions, and
/// records every decision as an [`Event`].
///
/// It runs on its own thread (`vigilo-pipeline`); channels and actions run on their own
/// threads, so neither a slow channel nor a hung action delays the evaluator or another
/// channel. Every method is a request to that thread and is safe to call from any thread.
///
/// ```
/// use std::sync::Arc;
/// use vigilo::alert::{Alert, Channel, DeliveryError};
/// use vigilo::config::Config;
/// use vigilo::pipeline::Pipeline;
///
/// struct Print;
/// impl Channel for Print {
///     fn name(&self) -> &str { "print" }
///     fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
///         println!("{} is {}", alert.rule, alert.severity);
///         Ok(())
///     }
/// }
///
/// let config: Config = r#"
///     [[channel]]
///     name = "print"
///     [[route]]
///     name = "everything"
///     channels = ["print"]
/// "#.parse()?;
/// let (_tx, transitions) = crossbeam_channel::unbounded();
/// let pipeline = Pipeline::builder(config.pipeline).channel(Arc::new(Print)).start(transitions)?;
/// assert!(pipeline.incidents()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipeline {
    control: Sender<Command>,
    /// The store's owner, which the evaluator's checkpoint and the SLO runner write through
    /// directly.
    journal: Arc<Mutex<Journal>>,
    clock: Arc<dyn Clock>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts building a pipeline for `config`.
    pub fn builder(config: PipelineConfig) -> PipelineBuilder {
        PipelineBuilder {
            config,
            clock: Arc::new(SystemClock),
            store: None,
            impls: Implementations {
                channels: HashMap::new(),
                actions: HashMap::new(),
            },
        }
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Result<T, PipelineError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.control
            .send(make(tx))
            .map_err(|_| PipelineError::Stopped)?;
        rx.recv().map_err(|_| PipelineError::Stopped)
    }

    /// Open incidents, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>, PipelineError> {
        self.ask(Command::Incidents)
    }

    /// One incident, open or resolved but still being notified.
    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, PipelineError> {
        self.ask(|tx| Command::Incident(id, tx))
    }

    /// Acknowledges an open incident: repeats and escalation stop (until the ack expires, or a
    /// rise in severity clears a non-sticky one).
    pub fn ack(&self, id: IncidentId, ack: AckRequest) -> Result<(), PipelineError> {
        self.ask(|tx| Command::Ack(id, ack, tx))?
    }

    /// Removes an acknowledgement: repeats and escalation resume.
    pub fn unack(&self, id: IncidentId) -> Result<(), PipelineError> {
        self.ask(|tx| Command::Unack(id, tx))?
    }

    /// Silences matching alerts for a while; returns the silence's number.
    pub fn silence(&self, request: SilenceRequest) -> Result<SilenceId, PipelineError> {
        self.ask(|tx| Command::Silence(request, tx))?
    }

    /// Ends a silence now; what it held back and still fires is notified.
    pub fn expire_silence(&self, id: SilenceId) -> Result<(), PipelineError> {
        self.ask(|tx| Command::ExpireSilence(id, tx))?
    }

    /// Silences not yet ended.
    pub fn silences(&self) -> Result<Vec<Silence>, PipelineError> {
        self.ask(Command::Silences)
    }

    /// Events from the history.
    pub fn history(&self, query: HistoryQuery) -> Result<Vec<Event>, PipelineError> {
        self.ask(|tx| Command::History(query, tx))?
    }

    /// Work counters.
    pub fn stats(&self) -> Result<PipelineStats, PipelineError> {
        self.ask(Command::Stats)
    }

    /// A live feed of events from now on. The feed holds `[notify] subscriber_capacity`
    /// events; a reader that falls further behind loses events (counted in
    /// [`PipelineStats::events_dropped`]) and never slows the pipeline.
    pub fn subscribe(&self) -> Result<Receiver<Event>, PipelineError> {
        self.ask(Command::Subscribe)
    }

    /// Brings the pipeline up to its clock's present and waits until it is quiet: every
    /// transition already sent is handled, every timer due now has run, and every delivery and
    /// action run started has returned (and whatever that caused, too). For tests on a virtual
    /// clock: move the clock, then settle. Fails after `timeout` of real time (a hung channel).
    pub fn settle(&self, timeout: Duration) -> Result<(), PipelineError> {
        self.ask(|tx| Command::Settle(timeout, tx))?
    }

    /// Replaces routes, policy, channels and actions; open incidents and what was already
    /// notified are kept, so nothing is told twice.
    pub(crate) fn reload(
        &self,
        config: PipelineConfig,
        impls: Implementations,
    ) -> Result<(), PipelineError> {
        self.ask(|tx| Command::Reload(Box::new((config, impls)), tx))?
    }

    /// The evaluator's item states the store held at start (taken once: later calls get
    /// nothing); give them to [`Evaluator::restore_reconciled`](crate::eval::Evaluator::restore_reconciled).
    pub(crate) fn take_restored_item_states(&self) -> Result<Vec<ItemSnapshot>, PipelineError> {
        Ok(self.journal.lock().take_restored_items())
    }

    /// Stores the evaluator's item states (a checkpoint), replacing the previous ones: written
    /// through the store's owner directly, not through the pipeline's thread.
    pub(crate) fn save_item_states(&self, states: Vec<ItemSnapshot>) -> Result<(), PipelineError> {
        let now = self.clock.now();
        self.journal.lock().save_item_states(states, now);
        Ok(())
    }

    /// The SLO rings the store held at start (taken once).
    pub(crate) fn take_restored_slo_states(&self) -> Result<Vec<SloSnapshot>, PipelineError> {
        Ok(self.journal.lock().take_restored_slos())
    }

    /// Stores the SLO rings (a checkpoint), replacing the previous ones.
    pub(crate) fn save_slo_states(&self, states: Vec<SloSnapshot>) -> Result<(), PipelineError> {
        let now = self.clock.now();
        self.journal.lock().save_slo_states(states, now);
        Ok(())
    }

    /// What anomaly rules' items had learned, from the store at start (taken once); give it
    /// to [`Evaluator::restore_learned`](crate::eval::Evaluator::restore_learned).
    pub(crate) fn take_restored_learned(&self) -> Vec<crate::eval::LearnedSnapshot> {
        self.journal.lock().take_restored_learned()
    }

    /// Stores what anomaly rules' items learned since the last save.
    pub(crate) fn save_learned(&self, states: Vec<crate::eval::LearnedSnapshot>) {
        let now = self.clock.now();
        self.journal.lock().save_learned(states, now);
    }

    /// Where each `[[log]]` had stopped reading, from the store at start (taken once).
    pub(crate) fn take_restored_log_offsets(&self) -> Vec<crate::host::logs::LogCheckpoint> {
        self.journal.lock().take_restored_logs()
    }

    /// Stores where each `[[log]]` stopped reading, with its counts.
    pub(crate) fn save_log_offsets(&self, logs: Vec<crate::host::logs::LogCheckpoint>) {
        let now = self.clock.now();
        self.journal.lock().save_log_offsets(logs, now);
    }

    /// Stops the thread: transitions already sent are handled, groups waiting notify now, and
    /// deliveries are given until `deadline` (real time) to finish. What is left stays in the
    /// store's outbox. Calls still running at the deadline are waited for (as long as they
    /// take); queued ones are not started.
    pub fn stop(mut self, deadline: Duration) -> Result<StopReport, PipelineError> {
        let report = self.ask(|tx| Command::Stop(deadline, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        report
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (tx, _rx) = crossbeam_channel::bounded(1);
            let _ = self.control.send(Command::Stop(Duration::from_secs(5), tx));
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// The longest the thread sleeps without looking at its clock (a manual clock does not wake
/// it).
const MAX_SLEEP: Duration = Duration::from_secs(1);

fn run(
    mut d: Dispatcher,
    transitions: Receiver<Transition>,
    results: Receiver<Done>,
    commands: Receiver<Command>,
) {
    let mut transitions = transitions;
    loop {
        let now = d.clock.now();
        d.run_timers(now);
        d.commit();
        let wait = d
            .timers
            .next()
            .map_or(MAX_SLEEP, |t| t.since(d.clock.now()))
            .min(MAX_SLEEP);
        select! {
            recv(transitions) -> t => match t {
                Ok(t) => {
                    let now = d.clock.now();
                    d.on_transition(&t, now);
                }
                Err(_) => transitions = never(),
            },
            recv(results) -> r => {
                if let Ok(done) = r {
                    let now = d.clock.now();
                    d.on_done(done, now);
                }
            }
            recv(commands) -> c => match c {
                Ok(Command::Stop(deadline, reply)) => {
                    let report = stop(&mut d, &transitions, &results, deadline);
                    let _ = reply.send(report);
                    return;
                }
                Ok(c) => command(&mut d, c, &transitions, &results),
                Err(_) => {
                    let _ = stop(&mut d, &transitions, &results, Duration::from_secs(5));
                    return;
                }
            },
            default(wait) => {}
        }
    }
}

fn command(
    d: &mut Dispatcher,
    c: Command,
    transitions: &Receiver<Transition>,
    results: &Receiver<Done>,
) {
    let now = d.clock.now();
    match c {
        Command::Incidents(r) => {
            let _ = r.send(d.incident_list(now));
        }
        Command::Incident(id, r) => {
            let _ = r.send(d.incident_view(id, now));
        }
        Command::Ack(id, ack, r) => {
            let _ = r.send(d.ack(id, ack, now));
        }
        Command::Unack(id, r) => {
            let _ = r.send(d.unack(id, now));
        }
        Command::Silence(req, r) => {
            let _ = r.send(d.silence(req, now));
        }
        Command::ExpireSilence(id, r) => {
            let _ = r.send(d.expire_silence(id, now));
        }
        Command::Silences(r) => {
            let _ = r.send(d.silences());
        }
        Command::History(q, r) => {
            d.commit();
            let _ = r.send(d.journal.lock().history(&q).map_err(PipelineError::Store));
        }
        Command::Stats(r) => {
            let _ = r.send(d.stats());
        }
        Command::Subscribe(r) => {
            let _ = r.send(d.journal.lock().subscribe(None));
        }
        Command::Settle(timeout, r) => {
            let _ = r.send(settle(d, transitions, results, timeout));
        }
        Command::Reload(boxed, r) => {
            let (config, impls) = *boxed;
            let _ = r.send(d.reload(config, &impls.channels, &impls.actions, now));
        }
        Command::Stop(..) => {}
    }
    d.commit();
}

fn settle(
    d: &mut Dispatcher,
    transitions: &Receiver<Transition>,
    results: &Receiver<Done>,
    timeout: Duration,
) -> Result<(), PipelineError> {
    let give_up = Instant::now() + timeout;
    loop {
        while let Ok(t) = transitions.try_recv() {
            let now = d.clock.now();
            d.on_transition(&t, now);
        }
        while let Ok(done) = results.try_recv() {
            let now = d.clock.now();
            d.on_done(done, now);
        }
        d.run_timers(d.clock.now());
        d.commit();
        if d.in_flight() == 0 && transitions.is_empty() && results.is_empty() {
            let now = d.clock.now();
            if d.timers.next().is_none_or(|t| t > now) {
                return Ok(());
            }
            continue;
        }
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PipelineError::Timeout(timeout));
        }
        if let Ok(done) = results.recv_timeout(left.min(Duration::from_millis(50))) {
            let now = d.clock.now();
            d.on_done(done, now);
        }
    }
}

fn stop(
    d: &mut Dispatcher,
    transitions: &Receiver<Transition>,
    results: &Receiver<Done>,
    deadline: Duration,
) -> StopReport {
    let started = Instant::now();
    let give_up = started + deadline;
    let delivered_before = d.stats().delivered;
    while let Ok(t) = transitions.try_recv() {
        let now = d.clock.now();
        d.on_transition(&t, now);
    }
    let now = d.clock.now();
    d.run_timers(now);
    d.flush_all(now);
    d.commit();
    while d.in_flight() > 0 {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match results.recv_timeout(left) {
            Ok(done) => {
                let now = d.clock.now();
                d.on_done(done, now);
                d.run_timers(now);
                d.commit();
            }
            Err(_) => break,
        }
    }
    d.commit();
    let stats = d.stats();
    let report = StopReport {
        delivered: stats.delivered - delivered_before,
        outbox_left: stats.outbox,
        in_flight_left: d.in_flight(),
        took: started.elapsed(),
    };
    // The workers end before the pipeline says it stopped, so a channel's or action's last
    // reference (and with it a C caller's free callback) goes before `stop` returns: jobs not
    // started are dropped (they stay in the outbox), calls running are waited for, however
    // long they take.
    d.close_pools();
    report
}

/// How long `stop` waited and what it left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Notifications delivered while stopping.
    pub delivered: u64,
    /// Notifications still in the outbox (in the store, if it is durable).
    pub outbox_left: usize,
    /// Deliveries and action runs that had not returned by the deadline.
    pub in_flight_left: usize,
    /// How long it took.
    pub took: Duration,
}
