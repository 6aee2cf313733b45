//! After a crash, the evaluator's saved states and the pipeline's open incidents may disagree
//! (a checkpoint every few seconds, incidents at every step): `restore_reconciled` makes them
//! agree, on a virtual clock. The incidents are the truth of what was told; the first
//! evaluation reports what differs from them, once.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use vigilo::Severity::{self, Critical, Major, Normal, Warning};
use vigilo::clock::{Clock, ManualClock, Timestamp};
use vigilo::eval::{Evaluator, EvaluatorConfig, ItemSnapshot, Told, Transition};
use vigilo::metrics::{Labels, Registry};
use vigilo::rules::{Level, Rule};

use crate::support::{START, secs};

fn rule(hold: Duration) -> Rule {
    Rule::builder("load", "load")
        .level(Level::new(Warning, 10.0).hold_for(hold))
        .level(Level::new(Critical, 90.0).hold_for(hold))
        .no_data(secs(30), Major)
        .build()
        .unwrap()
}

/// One life of the evaluator on its own registry and clock, starting at `at`.
struct Life {
    registry: Registry,
    clock: ManualClock,
    ev: Evaluator,
    rx: Receiver<Transition>,
    /// Recorded again at every tick, as a live service would.
    values: Vec<(String, f64)>,
}

impl Life {
    fn new(at: Timestamp, rules: Vec<Rule>) -> Life {
        let registry = Registry::new();
        let clock = ManualClock::new(at);
        let (ev, rx) = Evaluator::new(
            registry.clone(),
            rules,
            Arc::new(clock.clone()),
            EvaluatorConfig::default(),
        )
        .unwrap();
        Life {
            registry,
            clock,
            ev,
            rx,
            values: Vec::new(),
        }
    }

    fn set(&mut self, item: &str, v: f64) {
        self.values.retain(|(i, _)| i != item);
        self.values.push((item.to_owned(), v));
    }

    /// Ticks every second for `d`; the transitions, as `(item, from, to)`.
    fn run(&mut self, d: Duration) -> Vec<(String, Severity, Severity)> {
        let end = self.clock.now() + d;
        let mut out = Vec::new();
        while self.clock.now() <= end {
            for (item, v) in &self.values {
                self.registry
                    .set_gauge("load", &[("item", item)], *v)
                    .unwrap();
            }
            self.ev.tick(self.clock.now());
            out.extend(
                self.rx
                    .try_iter()
                    .map(|t| (t.labels.get("item").unwrap_or("").to_owned(), t.from, t.to)),
            );
            self.clock.advance(secs(1));
        }
        out
    }
}

fn told(item: &str, severity: Severity, no_data: bool, at: Timestamp) -> Told {
    Told::new(
        Arc::from("load"),
        Arc::from("load"),
        Labels::from_pairs(&[("item", item)]),
        severity,
        no_data,
        at,
    )
}

/// The first life: `item` at `v` for a minute; its saved states.
fn first_life(item: &str, v: f64, hold: Duration) -> Vec<ItemSnapshot> {
    let mut life = Life::new(START, vec![rule(hold)]);
    life.set(item, v);
    life.run(secs(60));
    life.ev.item_states()
}

#[test]
fn a_state_newer_than_the_incident_reports_the_change_the_pipeline_never_got() {
    // The checkpoint saw Critical; the transition to it never reached the store.
    let saved = first_life("a", 95.0, Duration::ZERO);
    let mut life = Life::new(START + secs(120), vec![rule(Duration::ZERO)]);
    life.ev
        .restore_reconciled(saved, vec![told("a", Warning, false, START)], secs(60));
    life.set("a", 95.0);
    assert_eq!(life.run(secs(10)), [("a".to_owned(), Warning, Critical)]);
}

#[test]
fn a_state_that_says_it_fired_without_an_incident_fires_again() {
    // The checkpoint saw Warning; the transition never reached the store: no incident.
    let saved = first_life("a", 50.0, Duration::ZERO);
    let mut life = Life::new(START + secs(120), vec![rule(Duration::ZERO)]);
    life.ev.restore_reconciled(saved, Vec::new(), secs(60));
    life.set("a", 50.0);
    assert_eq!(life.run(secs(10)), [("a".to_owned(), Normal, Warning)]);
}

#[test]
fn an_incident_newer_than_the_checkpoint_is_resolved_once_or_kept_while_it_still_fires() {
    // A hold of a minute, and no checkpoint since the incident opened: still firing, it must
    // not be resolved while the hold starts over; back to normal, it resolves at once.
    let mut life = Life::new(START + secs(120), vec![rule(secs(60))]);
    life.ev.restore_reconciled(
        Vec::new(),
        vec![
            told("still", Critical, false, START),
            told("better", Critical, false, START),
            told("fixed", Warning, false, START),
        ],
        secs(60),
    );
    life.set("still", 95.0);
    life.set("better", 50.0);
    life.set("fixed", 1.0);
    let mut seen = life.run(secs(300));
    seen.sort();
    assert_eq!(
        seen,
        [
            ("better".to_owned(), Critical, Warning),
            ("fixed".to_owned(), Warning, Normal),
        ]
    );
}

#[test]
fn an_incident_of_a_rule_that_no_longer_exists_resolves_at_once() {
    let other = Rule::builder("other", "other")
        .level(Level::new(Warning, 1.0))
        .build()
        .unwrap();
    let mut life = Life::new(START + secs(120), vec![other]);
    life.ev
        .restore_reconciled(Vec::new(), vec![told("a", Major, false, START)], secs(60));
    let t: Vec<Transition> = {
        life.ev.tick(life.clock.now());
        life.rx.try_iter().collect()
    };
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((&*t[0].rule, t[0].from, t[0].to), ("load", Major, Normal));
    assert!(t[0].annotations["summary"].contains("no longer configured"));
}

#[test]
fn an_item_whose_series_does_not_come_back_resolves_after_the_grace() {
    let mut life = Life::new(START + secs(120), vec![rule(Duration::ZERO)]);
    life.ev.restore_reconciled(
        Vec::new(),
        vec![told("gone", Warning, false, START)],
        secs(60),
    );
    life.set("other", 1.0);
    assert_eq!(life.run(secs(58)), [], "within the grace it waits");
    let t = life.run(secs(5));
    assert_eq!(t, [("gone".to_owned(), Warning, Normal)]);
}

#[test]
fn an_item_in_no_data_stays_there_until_its_first_record() {
    let mut life = Life::new(START + secs(120), vec![rule(Duration::ZERO)]);
    life.ev.restore_reconciled(
        Vec::new(),
        vec![told("quiet", Major, true, START)],
        secs(600),
    );
    let g = life.registry.gauge("load", &[("item", "quiet")]).unwrap();
    assert_eq!(life.run(secs(60)), [], "no record: still in no data");
    g.set(1.0);
    assert_eq!(life.run(secs(5)), [("quiet".to_owned(), Major, Normal)]);
}
