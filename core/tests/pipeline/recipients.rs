//! Per-recipient notification windows (seed 003: "the time or day it applies, and who receives
//! it"): a person outside their hours is skipped, waits for their window, or is dropped, per
//! channel if they wish; escalation tiers respect it; daylight saving is the zone's own.

use vigilo::Severity;
use vigilo::alert::AlertStatus;
use vigilo::clock::Timestamp;
use vigilo::pipeline::EventKind;

use crate::support::{Harness, START, secs};

// START is Monday 2026-11-23 00:00 UTC = 09:00 in Seoul.
const TEAM: &str = r#"
    [recipients.kim]                      # days, Seoul
    email = "kim@example.com"
    phone = "+82-10-1111-1111"
    schedule = { timezone = "Asia/Seoul", hours = ["09:00-18:00"], days = ["mon-fri"] }
    [recipients.lee]                      # nights, Seoul: waits for their window
    email = "lee@example.com"
    schedule = { timezone = "Asia/Seoul", hours = ["18:00-09:00"] }
    outside = "defer"
    [recipients.park]                     # SMS only at night, mail any time
    email = "park@example.com"
    phone = "+82-10-3333-3333"
    channels = { sms = { timezone = "Asia/Seoul", hours = ["22:00-07:00"] } }

    [[channel]]
    name = "mail"
    address = "email"
    [[channel]]
    name = "sms"
    address = "phone"

    [[route]]
    name = "ops"
    channels = ["mail", "sms"]
    recipients = ["kim", "lee", "park"]
    repeat_interval = "0s"
"#;

#[test]
fn people_outside_their_hours_are_skipped_or_wait_and_the_record_says_why() {
    let mut h = Harness::new(TEAM);
    h.set("cpu", &[], Severity::Major);
    // 09:00 Monday in Seoul: kim is on, lee waits for 18:00, park gets mail but no SMS.
    let mail = h.sink("mail").take();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].recipients, ["kim@example.com", "park@example.com"]);
    let sms = h.sink("sms").take();
    assert_eq!(sms.len(), 1);
    assert_eq!(
        sms[0].recipients,
        ["+82-10-1111-1111"],
        "park's SMS is for nights"
    );
    let record = &h.incident_of("cpu").routes[0];
    assert!(
        record.skipped.iter().any(
            |s| s.starts_with("lee: outside lee's hours for mail") && s.contains("deferred to")
        ),
        "{:?}",
        record.skipped
    );
    assert!(
        record
            .skipped
            .iter()
            .any(|s| s.starts_with("park: outside park's hours for sms") && s.ends_with("skipped")),
        "{:?}",
        record.skipped
    );
    let queued = h.history(&[EventKind::Queued]);
    assert!(
        queued.iter().any(|e| e.detail.contains("left out: lee")),
        "{queued:?}"
    );
    // lee's mail waits for 18:00 in Seoul (09:00 UTC) and goes out then, to lee alone, under
    // its own key.
    h.run_for(secs(9 * 3600 - 60), secs(600));
    assert!(h.sink("mail").take().is_empty());
    h.run_for(secs(120), secs(60));
    let later = h.sink("mail").take();
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0].recipients, ["lee@example.com"]);
    assert_ne!(later[0].idempotency_key, mail[0].idempotency_key);
    assert!(
        later[0].idempotency_key.contains(":to-lee@"),
        "{}",
        later[0].idempotency_key
    );
}

#[test]
fn a_notification_nobody_may_get_now_waits_for_the_first_window_instead_of_being_lost() {
    let mut h = Harness::new(
        r#"
        [recipients.kim]
        email = "kim@example.com"
        schedule = { timezone = "Asia/Seoul", hours = ["10:00-18:00"] }
        [recipients.lee]
        email = "lee@example.com"
        schedule = { timezone = "Asia/Seoul", hours = ["11:00-18:00"] }
        [recipients.choi]
        email = "choi@example.com"
        schedule = { timezone = "Asia/Seoul", hours = ["10:00-18:00"] }
        outside = "drop"
        [[channel]]
        name = "mail"
        address = "email"
        [[route]]
        name = "ops"
        channels = ["mail"]
        recipients = ["kim", "lee", "choi"]
        repeat_interval = "0s"
    "#,
    );
    h.set("cpu", &[], Severity::Major); // 09:00 Seoul: nobody is on
    assert!(h.sink("mail").take().is_empty());
    h.advance(secs(3600)); // 10:00: kim's window
    let sent = h.sink("mail").take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipients, ["kim@example.com"], "choi dropped it");
    h.advance(secs(3600)); // 11:00: lee's
    assert_eq!(h.sink("mail").take()[0].recipients, ["lee@example.com"]);
    let skipped = &h.incident_of("cpu").routes[0].skipped;
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("choi:") && s.ends_with("dropped")),
        "{skipped:?}"
    );
}

#[test]
fn escalation_tiers_respect_their_recipients_windows() {
    let mut h = Harness::new(
        r#"
        [recipients.kim]
        email = "kim@example.com"
        [recipients.lead]
        email = "lead@example.com"
        schedule = { timezone = "Asia/Seoul", hours = ["10:00-18:00"] }
        outside = "defer"
        [[channel]]
        name = "mail"
        address = "email"
        [[route]]
        name = "ops"
        channels = ["mail"]
        recipients = ["kim"]
        repeat_interval = "0s"
        [[route.escalation]]
        after = "15m"
        recipients = ["lead"]
    "#,
    );
    h.set("cpu", &[], Severity::Critical);
    assert_eq!(h.sink("mail").take()[0].recipients, ["kim@example.com"]);
    // Tier 1 is due at 09:15 Seoul; the lead's hours start at 10:00.
    h.run_for(secs(15 * 60), secs(60));
    assert!(h.sink("mail").take().is_empty(), "outside the lead's hours");
    h.run_for(secs(45 * 60), secs(60));
    let sent = h.sink("mail").take();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].recipients, ["lead@example.com"]);
    assert!(sent[0].annotations["escalation"].contains("tier 1"));
    assert_eq!(h.now(), START + secs(3600), "at 10:00 Seoul exactly");
}

#[test]
fn a_window_across_a_daylight_saving_change_opens_at_the_local_hour() {
    let mut h = Harness::new(
        r#"
        [recipients.ana]
        email = "ana@example.com"
        schedule = { timezone = "America/New_York", hours = ["09:00-17:00"], days = ["mon-fri"] }
        outside = "defer"
        [[channel]]
        name = "mail"
        address = "email"
        [[route]]
        name = "ops"
        channels = ["mail"]
        recipients = ["ana"]
        repeat_interval = "0s"
    "#,
    );
    // Saturday 2027-03-13 15:00 EST; the clocks go forward on Sunday at 02:00. Monday 09:00
    // is 13:00 UTC (EDT), not 14:00 UTC (EST).
    h.clock
        .set(Timestamp::parse("2027-03-13T20:00:00Z").unwrap());
    h.set("cpu", &[], Severity::Major);
    assert!(h.sink("mail").take().is_empty());
    let monday = Timestamp::parse("2027-03-15T13:00:00Z").unwrap();
    h.clock.set(monday - secs(1));
    h.settle();
    assert!(h.sink("mail").take().is_empty());
    h.advance(secs(1));
    let sent = h.sink("mail").take();
    assert_eq!(sent.len(), 1, "at 09:00 New York time, daylight saving on");
    assert_eq!(sent[0].status, AlertStatus::Firing);
}

#[test]
fn a_window_names_a_channel_that_exists_and_its_hours_are_checked() {
    let base = r#"
        [[channel]]
        name = "mail"
        address = "email"
        [recipients.kim]
        email = "kim@example.com"
    "#;
    let err = vigilo::config::Config::from_str_named(
        &format!("{base}channels = {{ pagr = {{ hours = [\"09:00-18:00\"] }} }}\n"),
        "vigilo.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("vigilo.toml:7:"), "{err}");
    assert!(
        err.contains("recipient \"kim\"") && err.contains("pagr"),
        "{err}"
    );
    let err = vigilo::config::Config::from_str_named(
        &format!("{base}schedule = {{ hours = [\"09:00-25:00\"] }}\n"),
        "vigilo.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("vigilo.toml:7:"), "{err}");
    assert!(err.contains("25:00"), "{err}");
}
