//! Edges of the notification policy an operator who knows Alertmanager expects to hold:
//! repeats counted from the last notification, `group_by = ["..."]`, what a silence held
//! released when it ends (repeats and escalations too), resolves told to every escalation tier
//! that was paged, and a blip between two flushes that changes nothing.

use vigilo::Severity;
use vigilo::alert::AlertStatus;
use vigilo::pipeline::SilenceRequest;

use crate::support::{Harness, brief, config, secs};

#[test]
fn the_repeat_interval_counts_from_the_last_notification() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "disks"
        channels = ["chat"]
        group_by = ["rule"]
        group_wait = "30s"
        group_interval = "5m"
        repeat_interval = "1h"
    "#,
    );
    h.set("disk", &[("mount", "/")], Severity::Warning);
    h.advance(secs(30));
    assert_eq!(h.sink("chat").take().len(), 1, "notified at 30 s");
    h.advance(secs(270));
    h.set("disk", &[("mount", "/data")], Severity::Warning);
    h.advance(secs(30));
    assert_eq!(
        h.sink("chat").take().len(),
        1,
        "a new member, notified at 330 s"
    );
    // Alertmanager repeats an hour after the last notification: at 3,930 s, not 3,630 s.
    h.run_for(secs(3630 - 330), secs(60));
    assert!(
        h.sink("chat").take().is_empty(),
        "55 minutes after the last notification is too early"
    );
    h.run_for(secs(300), secs(60));
    let repeat = h.sink("chat").take();
    assert_eq!(repeat.len(), 1, "repeated 60 minutes after 330 s");
    assert!(repeat[0].idempotency_key.contains(":r1"), "{repeat:?}");
}

#[test]
fn group_by_dots_groups_by_every_label_and_is_refused_beside_other_labels() {
    let text = r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "each"
        channels = ["chat"]
        group_by = ["..."]
        group_wait = "10s"
        repeat_interval = "0s"
    "#;
    let mut h = Harness::new(text);
    h.set("disk", &[("mount", "/")], Severity::Warning);
    h.set("disk", &[("mount", "/data")], Severity::Warning);
    h.set("cpu", &[], Severity::Major);
    h.advance(secs(10));
    let sent = h.sink("chat").take();
    assert_eq!(
        sent.len(),
        3,
        "one group per label set, not one for all: {sent:?}"
    );
    assert!(sent.iter().all(|a| a.incident.is_some()), "each alone");
    // "..." means every label; beside another label it means nothing: refused, located.
    let err = vigilo::config::Config::from_str_named(
        &text.replace(r#"["..."]"#, r#"["...", "host"]"#),
        "vigilo.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("vigilo.toml:7:"), "{err}");
    assert!(err.contains("\"...\""), "{err}");
    let _ = config(text);
}

#[test]
fn a_repeat_held_by_a_silence_goes_out_when_the_silence_ends() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "ops"
        channels = ["chat"]
        repeat_interval = "1h"
    "#,
    );
    h.set("cpu", &[], Severity::Major);
    assert_eq!(h.sink("chat").take().len(), 1);
    h.advance(secs(600));
    h.pipeline
        .silence(SilenceRequest::new("kim", "deploy", secs(3300)).rule("cpu"))
        .unwrap();
    // The repeat was due at 60 min, inside the silence (10 to 65 min): held.
    h.run_for(secs(3300 - 1), secs(60));
    assert!(h.sink("chat").take().is_empty());
    h.advance(secs(1));
    let sent = h.sink("chat").take();
    assert_eq!(
        brief(&sent),
        [(AlertStatus::Firing, Severity::Major, "cpu".into())],
        "what the silence held and still fires is notified when it ends"
    );
    // And the next repeat an hour after that one.
    h.run_for(secs(3600 - 60), secs(60));
    assert!(h.sink("chat").take().is_empty());
    h.run_for(secs(120), secs(60));
    assert_eq!(h.sink("chat").take().len(), 1);
}

const ESCALATING: &str = r#"
    [recipients]
    kim = { email = "kim@example.com" }
    lead = { email = "lead@example.com", phone = "+1-555-0100" }
    [[channel]]
    name = "mail"
    address = "email"
    [[channel]]
    name = "sms"
    address = "phone"
    [[route]]
    name = "ops"
    channels = ["mail"]
    recipients = ["kim"]
    repeat_interval = "0s"
    [[route.escalation]]
    after = "15m"
    recipients = ["lead"]
    [[route.escalation]]
    after = "1h"
    recipients = ["lead"]
    channels = ["sms"]
"#;

#[test]
fn the_resolve_reaches_every_escalation_tier_that_was_told() {
    let mut h = Harness::new(ESCALATING);
    h.set("cpu", &[], Severity::Critical);
    h.run_for(secs(3600), secs(60));
    assert_eq!(h.sink("mail").take().len(), 2, "kim, then the lead by mail");
    assert_eq!(h.sink("sms").take().len(), 1, "the lead by SMS");
    h.set("cpu", &[], Severity::Normal);
    let mail = h.sink("mail").take();
    let sms = h.sink("sms").take();
    assert!(
        mail.iter().all(|a| a.status == AlertStatus::Resolved),
        "{mail:?}"
    );
    let mut mailed: Vec<Vec<String>> = mail.iter().map(|a| a.recipients.clone()).collect();
    mailed.sort();
    assert_eq!(
        mailed,
        [
            vec!["kim@example.com".to_owned()],
            vec!["lead@example.com".to_owned()]
        ]
    );
    assert_eq!(
        brief(&sms),
        [(AlertStatus::Resolved, Severity::Normal, "cpu".into())]
    );
    assert_eq!(sms[0].recipients, ["+1-555-0100"]);
    let mut keys: Vec<&str> = mail
        .iter()
        .chain(&sms)
        .map(|a| a.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 3, "each tier's resolve is its own news");
}

#[test]
fn an_escalation_due_during_a_silence_goes_out_when_the_silence_ends() {
    let mut h = Harness::new(ESCALATING);
    h.set("cpu", &[], Severity::Critical);
    assert_eq!(h.sink("mail").take().len(), 1);
    h.advance(secs(600));
    h.pipeline
        .silence(SilenceRequest::new("kim", "deploy", secs(1800)).rule("cpu"))
        .unwrap();
    // Tier 1 was due at 15 min, inside the silence (10 to 40 min).
    h.run_for(secs(1800 - 60), secs(60));
    assert!(h.sink("mail").take().is_empty());
    h.run_for(secs(120), secs(60));
    let sent = h.sink("mail").take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].recipients, ["lead@example.com"]);
    assert!(sent[0].annotations["escalation"].contains("tier 1 of 2"));
    // Tier 2 keeps its own time (1 h after the first notification).
    h.run_for(secs(20 * 60), secs(60));
    assert_eq!(h.sink("sms").take().len(), 1, "tier 2 at 60 min");
}

#[test]
fn a_blip_between_two_flushes_is_not_news() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "disks"
        channels = ["chat"]
        group_by = ["rule"]
        group_wait = "30s"
        group_interval = "5m"
        repeat_interval = "0s"
    "#,
    );
    h.set("disk", &[("mount", "/")], Severity::Warning);
    h.set("disk", &[("mount", "/var")], Severity::Warning);
    h.advance(secs(30));
    assert_eq!(h.sink("chat").take().len(), 1);
    // `/` resolves and fires again at the same severity before the next flush.
    h.advance(secs(60));
    h.set("disk", &[("mount", "/")], Severity::Normal);
    h.advance(secs(10));
    h.set("disk", &[("mount", "/")], Severity::Warning);
    h.run_for(secs(600), secs(30));
    assert!(
        h.sink("chat").take().is_empty(),
        "nothing changed for the group between its flushes"
    );
    // At another severity it is one change, listed once, as firing. (A notification first, so
    // that the blip falls within the group interval that follows it.)
    h.set("disk", &[("mount", "/var")], Severity::Minor);
    assert_eq!(
        h.sink("chat").take().len(),
        1,
        "the interval had passed: at once"
    );
    h.advance(secs(10));
    h.set("disk", &[("mount", "/")], Severity::Normal);
    h.advance(secs(10));
    h.set("disk", &[("mount", "/")], Severity::Major);
    h.run_for(secs(600), secs(30));
    let sent = h.sink("chat").take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let summary = &sent[0].annotations["summary"];
    assert!(summary.starts_with("2 firing, 0 resolved"), "{summary}");
    assert!(summary.contains("disk{mount=\"/\"} (major)"), "{summary}");
    assert_eq!(sent[0].severity, Severity::Major);
}
