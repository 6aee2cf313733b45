//! Testing your own rules in `cargo test`: feed timestamped values through them on a virtual
//! clock and look at the transitions they produce (what `promtool test rules` is for
//! Prometheus, as a library).
//!
//! Time starts at 0 and only moves when you say. Between the values you record, the evaluator
//! runs exactly as it would live: a full sweep every tick, threshold crossings seen at the
//! moment of the record, durations completing at their exact deadline.
//!
//! ```
//! use std::time::Duration;
//! use vigilo::{Severity, config::Config, testing::RuleTest};
//!
//! let config: Config = r#"
//!     [[rule]]
//!     name = "cpu"
//!     metric = "host_cpu_usage_ratio"
//!     [rule.warning]
//!     threshold = "70%"
//!     [rule.major]
//!     threshold = "80%"
//!     for = "1m"
//! "#.parse()?;
//! let s = Duration::from_secs;
//!
//! let mut test = RuleTest::new(config.rules)?;
//! test.gauge(s(0), "host_cpu_usage_ratio", &[], 0.50)?;
//! test.gauge(s(10), "host_cpu_usage_ratio", &[], 0.85)?;
//! test.advance_to(s(69));
//! let early = test.transitions();
//! assert_eq!(early.len(), 1);
//! assert_eq!((early[0].to, test.offset(early[0].at)), (Severity::Warning, s(10)));
//!
//! test.advance_to(s(70));
//! let major = test.transitions();
//! assert_eq!((major[0].to, test.offset(major[0].at)), (Severity::Major, s(70)));
//! assert_eq!(test.severity("cpu", &[]), Some(Severity::Major));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::clock::{ManualClock, Timestamp};
use crate::eval::{EvalError, Evaluator, EvaluatorConfig, Transition};
use crate::metrics::{MetricError, Registry};
use crate::rules::Rule;
use crate::{Labels, Severity};

/// Where simulated time starts: 2026-01-01T00:00:00Z, a Thursday.
pub const START: Timestamp = Timestamp::from_secs(1_767_225_600);

/// A rule set running on a virtual clock, with its own registry.
pub struct RuleTest {
    registry: Registry,
    clock: ManualClock,
    evaluator: Evaluator,
    transitions: Receiver<Transition>,
    start: Timestamp,
    now: Timestamp,
    next_tick: Timestamp,
    tick: Duration,
}

impl RuleTest {
    /// Starts `rules` at [`START`] with a 1 s tick.
    pub fn new(rules: Vec<Rule>) -> Result<Self, EvalError> {
        Self::starting_at(rules, START, EvaluatorConfig::default())
    }

    /// Starts `rules` at `start` (to test schedules on chosen dates) with `config`.
    pub fn starting_at(
        rules: Vec<Rule>,
        start: Timestamp,
        config: EvaluatorConfig,
    ) -> Result<Self, EvalError> {
        let registry = Registry::new();
        let clock = ManualClock::new(start);
        // Transitions are drained by the test; a large channel keeps them all in order.
        let config = EvaluatorConfig {
            channel_capacity: config.channel_capacity.max(65_536),
            ..config
        };
        let tick = config.tick.max(Duration::from_millis(1));
        let (evaluator, transitions) =
            Evaluator::new(registry.clone(), rules, Arc::new(clock.clone()), config)?;
        Ok(RuleTest {
            registry,
            clock,
            evaluator,
            transitions,
            start,
            now: start,
            next_tick: start,
            tick,
        })
    }

    /// The registry the rules read: record into it directly for anything the helpers don't cover.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The evaluator under test.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// The evaluator under test, to hand it saved state (as a restart would:
    /// [`Evaluator::restore_learned`], [`Evaluator::restore_item_states`]).
    pub fn evaluator_mut(&mut self) -> &mut Evaluator {
        &mut self.evaluator
    }

    /// Time since the start for a transition's timestamp.
    pub fn offset(&self, t: Timestamp) -> Duration {
        t.since(self.start)
    }

    /// Runs the evaluator up to `at` (from the start): every tick and every deadline on the
    /// way, in time order. Moving backwards does nothing.
    pub fn advance_to(&mut self, at: Duration) {
        let target = self.start + at;
        loop {
            let next = self
                .evaluator
                .next_deadline()
                .map_or(self.next_tick, |d| d.min(self.next_tick));
            if next > target {
                break;
            }
            let next = next.max(self.now);
            self.set_now(next);
            if next >= self.next_tick {
                self.evaluator.tick(next);
                self.next_tick = next + self.tick;
            } else {
                self.evaluator.poll(next);
            }
        }
        if target > self.now {
            self.set_now(target);
            self.evaluator.poll(target);
        }
    }

    fn set_now(&mut self, t: Timestamp) {
        self.now = t;
        self.clock.set(t);
    }

    /// At `at`, sets gauge `metric{labels}` to `value` (creating it), then lets the evaluator react.
    pub fn gauge(
        &mut self,
        at: Duration,
        metric: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), MetricError> {
        self.advance_to(at);
        self.registry.set_gauge(metric, labels, value)?;
        self.react();
        Ok(())
    }

    /// At `at`, adds `n` to counter `metric{labels}`, then lets the evaluator react.
    pub fn counter(
        &mut self,
        at: Duration,
        metric: &str,
        labels: &[(&str, &str)],
        n: u64,
    ) -> Result<(), MetricError> {
        self.advance_to(at);
        self.registry.add_counter(metric, labels, n)?;
        self.react();
        Ok(())
    }

    /// At `at`, records `values` into histogram `metric{labels}`, then lets the evaluator react.
    pub fn histogram(
        &mut self,
        at: Duration,
        metric: &str,
        labels: &[(&str, &str)],
        values: &[f64],
    ) -> Result<(), MetricError> {
        self.advance_to(at);
        let h = self.registry.histogram(metric, labels)?;
        for &v in values {
            h.try_record(v)?;
        }
        self.react();
        Ok(())
    }

    /// Removes series `metric{labels}` at `at` (a disk unmounted, a process gone).
    pub fn remove(&mut self, at: Duration, metric: &str, labels: &[(&str, &str)]) -> bool {
        self.advance_to(at);
        let removed = self.registry.remove(metric, labels);
        self.react();
        removed
    }

    fn react(&mut self) {
        // A new series is bound at the next sweep; an existing one reacts through its watch.
        if self.registry.generation() != self.generation_seen() {
            self.evaluator.tick(self.now);
        } else {
            self.evaluator.poll(self.now);
        }
    }

    fn generation_seen(&self) -> u64 {
        self.evaluator.bound_generation().unwrap_or(u64::MAX)
    }

    /// The transitions produced since the last call, in order.
    pub fn transitions(&mut self) -> Vec<Transition> {
        self.transitions.try_iter().collect()
    }

    /// The current severity of rule `rule` on the series with exactly `labels`.
    pub fn severity(&self, rule: &str, labels: &[(&str, &str)]) -> Option<Severity> {
        let want = Labels::from_pairs(labels);
        self.evaluator
            .status(self.now)
            .items
            .into_iter()
            .find(|i| &*i.rule == rule && i.labels == want)
            .map(|i| i.severity)
    }
}

impl std::fmt::Debug for RuleTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleTest")
            .field("now", &self.offset(self.now))
            .finish()
    }
}
