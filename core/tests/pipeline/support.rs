//! A pipeline on a virtual clock with recording channels and actions, fed transitions by hand.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use vigilo::Severity;
use vigilo::alert::{
    Action, ActionError, ActionOutcome, Alert, AlertStatus, Channel, DeliveryError,
};
use vigilo::clock::{Clock, ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::eval::Transition;
use vigilo::metrics::Labels;
use vigilo::pipeline::{Event, EventKind, HistoryQuery, Incident, Pipeline, PipelineBuilder};

/// 2026-11-23T00:00:00Z, a Monday.
pub const START: Timestamp = Timestamp::from_secs(1_795_392_000);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A channel that records what it delivers and answers from a script (default: delivered).
pub struct Sink {
    name: String,
    pub delivered: Mutex<Vec<Alert>>,
    pub attempts: Mutex<Vec<Alert>>,
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    always: Mutex<Option<Result<(), DeliveryError>>>,
    gate: Gate,
}

impl Sink {
    pub fn new(name: &str) -> Arc<Sink> {
        Arc::new(Sink {
            name: name.to_owned(),
            delivered: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            always: Mutex::new(None),
            gate: Gate::default(),
        })
    }

    /// The next answers, in order; then the default.
    pub fn script(&self, answers: Vec<Result<(), DeliveryError>>) {
        self.script.lock().extend(answers);
    }

    /// Every answer from now on.
    pub fn always(&self, answer: Result<(), DeliveryError>) {
        *self.always.lock() = Some(answer);
    }

    /// Calls block until `open` (a hung channel).
    pub fn hang(&self) {
        self.gate.close();
    }

    pub fn release(&self) {
        self.gate.open();
    }

    /// What was delivered since the last call.
    pub fn take(&self) -> Vec<Alert> {
        std::mem::take(&mut *self.delivered.lock())
    }
}

impl Channel for Sink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        self.gate.pass();
        self.attempts.lock().push(alert.clone());
        let answer = self
            .script
            .lock()
            .pop_front()
            .or_else(|| self.always.lock().clone())
            .unwrap_or(Ok(()));
        if answer.is_ok() {
            self.delivered.lock().push(alert.clone());
        }
        answer
    }
}

/// Blocks callers while closed.
#[derive(Default)]
pub struct Gate {
    closed: Mutex<bool>,
    cv: Condvar,
    pub waiting: Mutex<usize>,
}

impl Gate {
    pub fn close(&self) {
        *self.closed.lock() = true;
    }
    pub fn open(&self) {
        *self.closed.lock() = false;
        self.cv.notify_all();
    }
    pub fn pass(&self) {
        let mut closed = self.closed.lock();
        if *closed {
            *self.waiting.lock() += 1;
        }
        while *closed {
            self.cv.wait(&mut closed);
        }
    }
}

/// An action that records its runs; its outcome and a hook are set by the test.
pub struct Recorder {
    name: String,
    pub runs: Mutex<Vec<Alert>>,
    pub outcome: Mutex<Result<ActionOutcome, ActionError>>,
    pub gate: Gate,
    hook: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Recorder {
    pub fn new(name: &str) -> Arc<Recorder> {
        Arc::new(Recorder {
            name: name.to_owned(),
            runs: Mutex::new(Vec::new()),
            outcome: Mutex::new(Ok(ActionOutcome {
                success: true,
                message: "cache cleared, service restarted".into(),
                exit_code: Some(0),
                output_tail: "ok\n".into(),
                elapsed: Duration::from_millis(5),
            })),
            gate: Gate::default(),
            hook: Mutex::new(None),
        })
    }

    /// Something the action does (e.g. fix the metric).
    pub fn on_run(&self, f: impl Fn() + Send + 'static) {
        *self.hook.lock() = Some(Box::new(f));
    }
}

impl Action for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, alert: &Alert) -> Result<ActionOutcome, ActionError> {
        self.runs.lock().push(alert.clone());
        self.gate.pass();
        if let Some(f) = &*self.hook.lock() {
            f();
        }
        self.outcome.lock().clone()
    }
}

/// A pipeline fed by hand on a manual clock.
pub struct Harness {
    pub clock: ManualClock,
    pub pipeline: Pipeline,
    pub sinks: HashMap<String, Arc<Sink>>,
    pub actions: HashMap<String, Arc<Recorder>>,
    pub events: Receiver<Event>,
    tx: Sender<Transition>,
    severities: HashMap<String, (Severity, Timestamp)>,
}

pub fn config(text: &str) -> Config {
    Config::from_str_named(text, "pipeline.toml").unwrap_or_else(|e| panic!("{}", e.with_excerpt()))
}

impl Harness {
    pub fn new(text: &str) -> Harness {
        Harness::with(text, |b| b)
    }

    pub fn with(text: &str, extra: impl FnOnce(PipelineBuilder) -> PipelineBuilder) -> Harness {
        let config = config(text);
        let clock = ManualClock::new(START);
        let mut builder = Pipeline::builder(config.pipeline.clone()).clock(Arc::new(clock.clone()));
        let mut sinks = HashMap::new();
        for c in &config.pipeline.channels {
            let s = Sink::new(&c.name);
            sinks.insert(c.name.clone(), Arc::clone(&s));
            builder = builder.channel(s);
        }
        let mut actions = HashMap::new();
        for a in &config.pipeline.actions {
            let r = Recorder::new(&a.name);
            actions.insert(a.name.clone(), Arc::clone(&r));
            builder = builder.action(r);
        }
        let builder = extra(builder);
        let (tx, rx) = crossbeam_channel::unbounded();
        let pipeline = builder.start(rx).unwrap_or_else(|e| panic!("{e}"));
        let events = pipeline.subscribe().unwrap_or_else(|e| panic!("{e}"));
        Harness {
            clock,
            pipeline,
            sinks,
            actions,
            events,
            tx,
            severities: HashMap::new(),
        }
    }

    pub fn sink(&self, name: &str) -> &Arc<Sink> {
        &self.sinks[name]
    }

    pub fn action(&self, name: &str) -> &Arc<Recorder> {
        &self.actions[name]
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sends item `rule{labels}` (metric `metric_of(rule)`) to `to`, then settles.
    pub fn set(&mut self, rule: &str, labels: &[(&str, &str)], to: Severity) {
        self.set_on(rule, "m", labels, to, BTreeMap::new());
    }

    pub fn set_on(
        &mut self,
        rule: &str,
        metric: &str,
        labels: &[(&str, &str)],
        to: Severity,
        rule_labels: BTreeMap<String, String>,
    ) {
        let labels = Labels::from_pairs(labels);
        let key = format!("{rule}{labels}");
        let now = self.now();
        let (from, since) = self
            .severities
            .get(&key)
            .copied()
            .unwrap_or((Severity::Normal, START));
        self.severities.insert(key, (to, now));
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_owned(), format!("{rule}{labels} is {to}"));
        let t = Transition {
            rule: Arc::from(rule),
            metric: Arc::from(metric),
            labels,
            rule_labels,
            from,
            to,
            value: Some(f64::from(to.number()) * 10.0),
            threshold: Some(f64::from(to.number()) * 10.0 - 1.0),
            since,
            at: now,
            no_data: false,
            flapping: false,
            annotations,
        };
        self.tx.send(t).unwrap_or_else(|e| panic!("{e}"));
        self.settle();
    }

    /// Sends a raw transition without waiting.
    pub fn send_nowait(&self, t: Transition) {
        self.tx.send(t).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn settle(&self) {
        self.pipeline
            .settle(secs(20))
            .unwrap_or_else(|e| panic!("settle: {e}"));
    }

    /// Moves the virtual clock and settles.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
        self.settle();
    }

    /// Moves the clock in steps of `step` up to `total`, settling at each (so timers set on
    /// the way fire at their time).
    pub fn run_for(&self, total: Duration, step: Duration) {
        let end = self.now() + total;
        while self.now() < end {
            let next = (self.now() + step).min(end);
            self.clock.set(next);
            self.settle();
        }
    }

    pub fn incidents(&self) -> Vec<Incident> {
        self.pipeline.incidents().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn incident_of(&self, rule: &str) -> Incident {
        self.incidents()
            .into_iter()
            .find(|i| &*i.item.rule == rule)
            .unwrap_or_else(|| panic!("no open incident of {rule}"))
    }

    /// Events received so far (drained).
    pub fn drain_events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    pub fn history(&self, kinds: &[EventKind]) -> Vec<Event> {
        self.pipeline
            .history(HistoryQuery {
                limit: 10_000,
                kinds: kinds.to_vec(),
                ..HistoryQuery::default()
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// `(status, severity, rule)` of each alert, for compact assertions.
pub fn brief(alerts: &[Alert]) -> Vec<(AlertStatus, Severity, String)> {
    alerts
        .iter()
        .map(|a| (a.status, a.severity, a.rule.clone()))
        .collect()
}

/// `[[rule]]` tables for these rule names (routes and selectors may only name rules that exist).
pub fn rules(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("\n[[rule]]\nname = \"{n}\"\nmetric = \"m\"\n[rule.info]\nthreshold = 1\n")
        })
        .collect()
}
