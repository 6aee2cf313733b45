//! Delivery: retries with backoff, permanent errors, fallback, the meta-alert, a hung channel,
//! the rate limit, idempotency keys.

use std::time::{Duration, Instant};

use vigilo::Severity;
use vigilo::alert::{AlertStatus, DeliveryError};
use vigilo::pipeline::{CHANNEL_FAILING_RULE, EventKind, RATE_LIMITED_RULE};

use crate::support::{Harness, secs};

const FLAKY: &str = r#"
    [[channel]]
    name = "hook"
    retry = { attempts = 5, backoff = "2s", max_backoff = "1m" }
    fallback = "mail"
    [[channel]]
    name = "mail"

    [[route]]
    name = "ops"
    channels = ["hook"]
    repeat_interval = "0s"
"#;

fn retryable() -> Result<(), DeliveryError> {
    Err(DeliveryError::Retryable("HTTP 503".into()))
}

#[test]
fn a_channel_that_fails_three_times_then_succeeds_delivers_exactly_once() {
    let mut h = Harness::new(FLAKY);
    h.sink("hook")
        .script(vec![retryable(), retryable(), retryable()]);
    h.set("cpu", &[], Severity::Major);
    assert_eq!(h.sink("hook").attempts.lock().len(), 1);
    // Backoff 2 s, 4 s, 8 s with jitter between half and all of it: 14 s covers them.
    h.run_for(secs(14), secs(1));
    let attempts = h.sink("hook").attempts.lock().clone();
    assert_eq!(attempts.len(), 4, "three failures, then the success");
    assert!(
        attempts
            .iter()
            .all(|a| a.idempotency_key == attempts[0].idempotency_key)
    );
    assert_eq!(h.sink("hook").take().len(), 1, "delivered exactly once");
    // Three failures in a row raised the meta-alert on the fallback, and the success
    // resolved it; the alert itself never needed the fallback.
    let mail = h.sink("mail").take();
    assert!(
        mail.iter().all(|a| a.rule == CHANNEL_FAILING_RULE),
        "{mail:?}"
    );
    assert_eq!(
        mail.iter().map(|a| a.status).collect::<Vec<_>>(),
        [AlertStatus::Firing, AlertStatus::Resolved]
    );
    h.run_for(secs(600), secs(60));
    assert_eq!(
        h.sink("hook").attempts.lock().len(),
        4,
        "nothing more after delivery"
    );
    let retrying = h.history(&[EventKind::Retrying]);
    assert_eq!(retrying.len(), 3);
    assert!(
        retrying[0].detail.contains("HTTP 503"),
        "{}",
        retrying[0].detail
    );
    let stats = h.pipeline.stats().unwrap();
    // Delivered: the alert, and the meta-alert raised and resolved on the fallback.
    assert_eq!(
        (stats.delivered, stats.retries, stats.failed, stats.outbox),
        (3, 3, 0, 0)
    );
}

#[test]
fn retries_back_off_exponentially_with_bounded_jitter() {
    let mut h = Harness::new(FLAKY);
    h.sink("hook").always(retryable());
    h.set("cpu", &[], Severity::Major);
    let mut times = vec![h.now()];
    let mut seen = 1;
    for _ in 0..200 {
        h.advance(Duration::from_millis(250));
        let n = h.sink("hook").attempts.lock().len();
        if n > seen {
            seen = n;
            times.push(h.now());
        }
        if n == 5 {
            break;
        }
    }
    assert_eq!(times.len(), 5, "five attempts in all");
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].since(w[0]).as_secs_f64())
        .collect();
    for (i, (gap, nominal)) in gaps.iter().zip([2.0, 4.0, 8.0, 16.0]).enumerate() {
        assert!(
            *gap >= nominal / 2.0 - 0.25 && *gap <= nominal + 0.25,
            "gap {i} = {gap} s, nominal {nominal} s: {gaps:?}"
        );
    }
}

#[test]
fn a_channel_that_always_fails_falls_back_and_raises_the_meta_alert() {
    let mut h = Harness::new(FLAKY);
    h.sink("hook").always(retryable());
    h.set("cpu", &[], Severity::Critical);
    h.run_for(secs(60), secs(1));
    let mail = h.sink("mail").take();
    let rules: Vec<&str> = mail.iter().map(|a| a.rule.as_str()).collect();
    assert!(
        rules.contains(&"cpu"),
        "the fallback delivered the alert: {rules:?}"
    );
    assert!(
        rules.contains(&CHANNEL_FAILING_RULE),
        "and the meta-alert: {rules:?}"
    );
    let meta = mail
        .iter()
        .find(|a| a.rule == CHANNEL_FAILING_RULE)
        .unwrap();
    assert_eq!(meta.labels["channel"], "hook");
    assert_eq!(meta.severity, Severity::Major);
    assert!(
        meta.annotations["summary"].contains("HTTP 503"),
        "{:?}",
        meta.annotations
    );
    assert!(
        h.sink("hook")
            .delivered
            .lock()
            .iter()
            .all(|a| a.rule != CHANNEL_FAILING_RULE),
        "the meta-alert never goes to the failing channel"
    );
    let failing = h.incident_of(CHANNEL_FAILING_RULE);
    assert_eq!(failing.meta_channel.as_deref(), Some("hook"));
    assert_eq!(
        h.history(&[EventKind::Fallback]).len(),
        1,
        "cpu; the meta-alert went to mail directly"
    );
    let failed = h.history(&[EventKind::Failed]);
    assert!(
        failed[0].detail.contains("gave up after 5 attempt(s)"),
        "{}",
        failed[0].detail
    );
    // The channel recovers: the meta-alert resolves.
    *h.sink("hook").delivered.lock() = Vec::new();
    h.sink("hook").script(vec![Ok(())]);
    h.sink("hook").always(Ok(()));
    h.set("cpu", &[], Severity::Normal);
    h.settle();
    assert!(
        h.incidents()
            .iter()
            .all(|i| &*i.item.rule != CHANNEL_FAILING_RULE)
    );
    let resolved = h.sink("mail").take();
    assert!(
        resolved
            .iter()
            .any(|a| a.rule == CHANNEL_FAILING_RULE && a.status == AlertStatus::Resolved),
        "{resolved:?}"
    );
}

#[test]
fn a_permanent_error_is_not_retried_and_goes_to_the_fallback_at_once() {
    let mut h = Harness::new(FLAKY);
    h.sink("hook").script(vec![Err(DeliveryError::Permanent(
        "HTTP 400: bad payload".into(),
    ))]);
    h.set("cpu", &[], Severity::Major);
    assert_eq!(h.sink("hook").attempts.lock().len(), 1);
    let mail = h.sink("mail").take();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rule, "cpu");
    h.run_for(secs(120), secs(10));
    assert_eq!(h.sink("hook").attempts.lock().len(), 1, "never retried");
}

#[test]
fn a_hung_channel_does_not_delay_another_channel() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "slow"
        [[channel]]
        name = "fast"
        [[route]]
        name = "slow"
        rules = []
        match = { via = "slow" }
        channels = ["slow"]
        [[route]]
        name = "fast"
        channels = ["fast"]
    "#,
    );
    h.sink("slow").hang();
    // Not through `set` (which settles and would wait for the hung call).
    let slow = transition("a", "slow");
    let fast = transition("b", "fast");
    let events = h.pipeline.subscribe().unwrap();
    let started = Instant::now();
    h.send_nowait(slow);
    h.send_nowait(fast);
    let delivered = loop {
        let e = events
            .recv_timeout(secs(10))
            .expect("the fast channel delivers");
        if e.kind == EventKind::Delivered {
            break e;
        }
    };
    assert_eq!(delivered.channel.as_deref(), Some("fast"));
    assert!(started.elapsed() < secs(5));
    assert!(h.sink("slow").delivered.lock().is_empty(), "still hung");
    h.sink("slow").release();
    h.settle();
    assert_eq!(h.sink("slow").take().len(), 1);
    let _ = &mut h;
}

fn transition(rule: &str, via: &str) -> vigilo::eval::Transition {
    vigilo::eval::Transition {
        rule: rule.into(),
        metric: "m".into(),
        labels: vigilo::Labels::from_pairs(&[("via", via)]),
        rule_labels: Default::default(),
        from: Severity::Normal,
        to: Severity::Major,
        value: Some(1.0),
        threshold: Some(0.5),
        since: crate::support::START,
        at: crate::support::START,
        no_data: false,
        flapping: false,
        annotations: Default::default(),
    }
}

#[test]
fn the_rate_limit_holds_notifications_back_and_sums_them_up_later() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "sms"
        rate_limit = { count = 2, per = "1m" }
        [[route]]
        name = "ops"
        channels = ["sms"]
        repeat_interval = "0s"
    "#,
    );
    for host in ["a", "b", "c", "d", "e"] {
        h.set("cpu", &[("host", host)], Severity::Major);
    }
    assert_eq!(h.sink("sms").take().len(), 2);
    assert_eq!(h.history(&[EventKind::RateLimited]).len(), 3);
    h.advance(secs(30));
    let summary = h.sink("sms").take();
    assert_eq!(summary.len(), 1, "one summary once a token is back");
    assert_eq!(summary[0].rule, RATE_LIMITED_RULE);
    assert!(
        summary[0].annotations["summary"].starts_with("3 notification(s) held back"),
        "{:?}",
        summary[0].annotations
    );
    assert_eq!(summary[0].value, Some(3.0));
    assert_eq!(h.pipeline.stats().unwrap().held_back, 3);
}

#[test]
fn idempotency_keys_name_the_incident_route_and_change() {
    let mut h = Harness::new(FLAKY);
    h.set("cpu", &[], Severity::Warning);
    h.set("cpu", &[], Severity::Major);
    h.set("cpu", &[], Severity::Normal);
    let keys: Vec<String> = h
        .sink("hook")
        .take()
        .into_iter()
        .map(|a| a.idempotency_key)
        .collect();
    // `{incident}:{route}:{change}@{store}.{content}`: the store's identity and a hash of what
    // the notification says make a key that no other store and no other news ever carries.
    let readable: Vec<&str> = keys.iter().map(|k| k.split('@').next().unwrap()).collect();
    assert_eq!(readable, ["1:ops:1", "1:ops:2", "1:ops:3"]);
    let tails: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| k.split_once('@').unwrap().1.split_once('.').unwrap())
        .collect();
    for (store, content) in &tails {
        assert_eq!(store.len(), 16, "{keys:?}");
        assert_eq!(content.len(), 16, "{keys:?}");
        assert!(
            store
                .chars()
                .chain(content.chars())
                .all(|c| c.is_ascii_hexdigit())
        );
    }
    assert!(
        tails.iter().all(|(s, _)| *s == tails[0].0),
        "one store: {keys:?}"
    );
    assert_ne!(tails[0].1, tails[1].1, "different news: {keys:?}");
}
