//! Recovery actions: one run per item at a time, cooldown, attempt cap, timeout, the outcome in
//! the notifications, and "recovered" only once the item is back to Normal.

use vigilo::Severity;
use vigilo::alert::{ActionError, AlertStatus};
use vigilo::pipeline::{EventKind, RunResult, SilenceRequest};

use crate::support::{Harness, rules, secs};

fn config() -> String {
    r#"
    [[channel]]
    name = "chat"
    [[route]]
    name = "ops"
    channels = ["chat"]
    repeat_interval = "0s"

    [[action]]
    name = "restart"
    [[recovery]]
    rules = ["nginx-up"]
    min_severity = "critical"
    action = "restart"
    cooldown = "5m"
    max_attempts = 2
    timeout = "30s"
    "#
    .to_owned()
        + &rules(&["nginx-up"])
}

#[test]
fn an_action_runs_for_the_severities_it_is_configured_for() {
    let mut h = Harness::new(&config());
    h.set("nginx-up", &[("name", "nginx")], Severity::Major);
    assert!(
        h.action("restart").runs.lock().is_empty(),
        "major is below critical"
    );
    h.set("nginx-up", &[("name", "nginx")], Severity::Critical);
    let runs = h.action("restart").runs.lock().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].labels["name"], "nginx");
    let inc = h.incident_of("nginx-up");
    assert_eq!(inc.actions.len(), 1);
    assert_eq!(inc.actions[0].result, RunResult::Succeeded);
    assert_eq!(inc.actions[0].outcome.as_ref().unwrap().exit_code, Some(0));
}

#[test]
fn one_run_per_item_at_a_time() {
    let h = Harness::new(&config());
    h.action("restart").gate.close();
    h.set_nowait_critical("a");
    // The run is blocked: more changes of the same item do not start a second one.
    wait_for(|| *h.action("restart").gate.waiting.lock() == 1);
    h.send_nowait(transition("a", Severity::Critical, Severity::Major));
    h.send_nowait(transition("a", Severity::Major, Severity::Critical));
    // Another item runs at the same time.
    h.send_nowait(transition("b", Severity::Normal, Severity::Critical));
    wait_for(|| *h.action("restart").gate.waiting.lock() == 2);
    assert_eq!(h.action("restart").runs.lock().len(), 2, "a once, b once");
    h.action("restart").gate.open();
    h.settle();
    let skipped = h.history(&[EventKind::ActionSkipped]);
    assert!(
        skipped.iter().any(|e| e.detail.contains("still going")),
        "{skipped:?}"
    );
}

#[test]
fn cooldown_and_attempt_cap_hold() {
    let mut h = Harness::new(&config());
    *h.action("restart").outcome.lock() = Err(ActionError::Failed("exit 1".into()));
    h.set("nginx-up", &[], Severity::Critical);
    assert_eq!(h.action("restart").runs.lock().len(), 1);
    h.advance(secs(299));
    assert_eq!(h.action("restart").runs.lock().len(), 1, "cooling down");
    h.advance(secs(1));
    assert_eq!(
        h.action("restart").runs.lock().len(),
        2,
        "second attempt after the cooldown"
    );
    h.run_for(secs(3600), secs(60));
    assert_eq!(
        h.action("restart").runs.lock().len(),
        2,
        "capped at 2 per incident"
    );
    assert!(
        h.history(&[EventKind::ActionSkipped])
            .iter()
            .any(|e| e.detail.contains("attempt cap"))
    );
    let inc = h.incident_of("nginx-up");
    assert!(inc.actions.iter().all(|r| r.result == RunResult::Failed));
    // A new incident of the same item gets new attempts, after the cooldown.
    h.set("nginx-up", &[], Severity::Normal);
    h.set("nginx-up", &[], Severity::Critical);
    assert_eq!(h.action("restart").runs.lock().len(), 3);
}

#[test]
fn a_run_past_its_timeout_is_recorded_and_the_item_stays_locked_until_it_returns() {
    let h = Harness::new(&config());
    h.action("restart").gate.close();
    h.set_nowait_critical("a");
    wait_for(|| *h.action("restart").gate.waiting.lock() == 1);
    h.clock.advance(secs(30));
    // Settle cannot finish while the run is out; look at the incident instead.
    wait_for(|| {
        h.pipeline
            .history(vigilo::pipeline::HistoryQuery {
                kinds: vec![EventKind::ActionFinished],
                ..Default::default()
            })
            .unwrap()
            .iter()
            .any(|e| e.detail.contains("timed out"))
    });
    h.action("restart").gate.open();
    h.settle();
    let inc = h.incident_of("nginx-up");
    assert_eq!(inc.actions[0].result, RunResult::TimedOut);
    let late = h.history(&[EventKind::ActionFinished]);
    assert!(
        late.iter().any(|e| e.detail.contains("returned late")),
        "{late:?}"
    );
}

#[test]
fn the_outcome_goes_into_the_next_notification_and_recovered_needs_normal() {
    let mut h = Harness::new(&config());
    h.set("nginx-up", &[], Severity::Critical);
    let first = h.sink("chat").take();
    assert!(
        !first[0].annotations.contains_key("recovery"),
        "sent before the action ran"
    );
    // The action succeeded, but the item is still critical: no "recovered".
    h.advance(secs(60));
    assert!(h.sink("chat").take().is_empty());
    // The evaluator puts it back to normal: the resolve carries the outcome.
    h.set("nginx-up", &[], Severity::Normal);
    let resolved = h.sink("chat").take();
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    let recovery = &resolved[0].annotations["recovery"];
    assert!(
        recovery.starts_with("restart #1 succeeded (exit 0): cache cleared"),
        "{recovery}"
    );
}

#[test]
fn a_silence_holds_recovery_actions_too() {
    let mut h = Harness::new(&config());
    h.pipeline
        .silence(SilenceRequest::new("kim", "maintenance", secs(600)).rule("nginx-up"))
        .unwrap();
    h.set("nginx-up", &[], Severity::Critical);
    assert!(h.action("restart").runs.lock().is_empty());
    assert!(
        h.history(&[EventKind::ActionSkipped])[0]
            .detail
            .contains("silence")
    );
}

fn transition(item: &str, from: Severity, to: Severity) -> vigilo::eval::Transition {
    vigilo::eval::Transition {
        rule: "nginx-up".into(),
        metric: "m".into(),
        labels: vigilo::Labels::from_pairs(&[("name", item)]),
        rule_labels: Default::default(),
        from,
        to,
        value: Some(0.0),
        threshold: Some(1.0),
        since: crate::support::START,
        at: crate::support::START,
        no_data: false,
        flapping: false,
        annotations: Default::default(),
    }
}

fn wait_for(mut f: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + secs(10);
    while !f() {
        assert!(std::time::Instant::now() < give_up, "timed out waiting");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

impl Harness {
    fn set_nowait_critical(&self, item: &str) {
        self.send_nowait(transition(item, Severity::Normal, Severity::Critical));
    }
}
