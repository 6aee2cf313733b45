//! Routing and the notification policy.

use vigilo::Severity;
use vigilo::alert::AlertStatus;
use vigilo::pipeline::{AckRequest, EventKind, SilenceRequest};

use crate::support::{Harness, brief, rules, secs};

const ONE_ROUTE: &str = r#"
    [recipients]
    kim = { email = "kim@example.com", phone = "+82-10-1111-2222" }
    lee = { email = "lee@example.com" }
    boss = { email = "boss@example.com", chat = "U-BOSS" }
    [groups]
    oncall = ["kim", "lee"]

    [[channel]]
    name = "mail"
    address = "email"
    [[channel]]
    name = "sms"
    address = "phone"

    [[route]]
    name = "ops"
    channels = ["mail", "sms"]
    recipients = ["oncall"]
    repeat_interval = "0s"
"#;

#[test]
fn a_firing_item_is_notified_at_once_on_every_channel_with_its_addresses() {
    let mut h = Harness::new(ONE_ROUTE);
    h.set("cpu", &[("host", "a")], Severity::Major);
    let mail = h.sink("mail").take();
    let sms = h.sink("sms").take();
    assert_eq!(
        brief(&mail),
        [(AlertStatus::Firing, Severity::Major, "cpu".into())]
    );
    assert_eq!(mail[0].recipients, ["kim@example.com", "lee@example.com"]);
    assert_eq!(sms[0].recipients, ["+82-10-1111-2222"], "lee has no phone");
    assert_eq!(
        mail[0].idempotency_key, sms[0].idempotency_key,
        "one key per change and route"
    );
    assert_eq!(mail[0].incident, Some(1));
    assert_eq!(mail[0].labels["host"], "a");
    assert_eq!(h.incident_of("cpu").severity, Severity::Major);
}

#[test]
fn the_same_severity_again_is_deduplicated_and_a_change_is_sent() {
    let mut h = Harness::new(ONE_ROUTE);
    h.set("cpu", &[], Severity::Warning);
    h.set("cpu", &[], Severity::Warning);
    assert_eq!(h.sink("mail").take().len(), 1, "dedup");
    h.set("cpu", &[], Severity::Critical);
    let sent = h.sink("mail").take();
    assert_eq!(
        brief(&sent),
        [(AlertStatus::Firing, Severity::Critical, "cpu".into())]
    );
    assert_eq!(
        sent[0].previous,
        Severity::Warning,
        "previous is what the route told"
    );
    assert!(!h.history(&[EventKind::Deduplicated]).is_empty());
}

#[test]
fn resolved_is_sent_only_to_routes_that_told_the_firing_and_only_if_wanted() {
    let mut h = Harness::new(
        &(format!(
            "{}
        [[route]]
        name = \"quiet\"
        rules = [\"disk\"]
        channels = [\"mail\"]
        send_resolved = false
    ",
            ONE_ROUTE.replace(
                "[[route]]\n    name = \"ops\"",
                "[[route]]\n    name = \"ops\"\n    rules = [\"cpu\"]"
            )
        ) + &rules(&["cpu", "disk"])),
    );
    h.set("cpu", &[], Severity::Major);
    h.set("cpu", &[], Severity::Normal);
    let sent = h.sink("mail").take();
    assert_eq!(
        brief(&sent),
        [
            (AlertStatus::Firing, Severity::Major, "cpu".into()),
            (AlertStatus::Resolved, Severity::Normal, "cpu".into())
        ]
    );
    assert_eq!(
        sent[1].previous,
        Severity::Major,
        "a resolve reports what it resolved from"
    );
    assert_ne!(sent[0].idempotency_key, sent[1].idempotency_key);
    assert!(h.incidents().is_empty());
    // The quiet route (disk) does not send resolves.
    h.set("disk", &[], Severity::Warning);
    h.set("disk", &[], Severity::Normal);
    assert_eq!(
        brief(&h.sink("mail").take()),
        [(AlertStatus::Firing, Severity::Warning, "disk".into())]
    );
}

#[test]
fn routes_match_in_order_with_continue_and_severities_and_unrouted_is_recorded() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "pager"
        [[channel]]
        name = "chat"
        [[channel]]
        name = "mail"

        [[route]]
        name = "pager"
        match = { team = "ops" }
        min_severity = "major"
        channels = ["pager"]
        continue = true
        [[route]]
        name = "ops-chat"
        match = { team = "ops" }
        channels = ["chat"]
        [[route]]
        name = "db-mail"
        match = { team = "db" }
        channels = ["mail"]
    "#,
    );
    let ops = |h: &mut Harness, rule: &str, s: Severity| {
        h.set_on(
            rule,
            "m",
            &[],
            s,
            [("team".to_owned(), "ops".to_owned())].into(),
        )
    };
    ops(&mut h, "cpu", Severity::Warning);
    assert!(
        h.sink("pager").take().is_empty(),
        "below the pager's severities"
    );
    assert_eq!(h.sink("chat").take().len(), 1);
    ops(&mut h, "cpu", Severity::Critical);
    assert_eq!(h.sink("pager").take().len(), 1, "continue: pager and chat");
    assert_eq!(h.sink("chat").take().len(), 1);
    // No route for team=web, no default route: recorded, counted, never silent.
    h.set_on(
        "web",
        "m",
        &[],
        Severity::Major,
        [("team".to_owned(), "web".to_owned())].into(),
    );
    assert_eq!(h.history(&[EventKind::Unrouted]).len(), 1);
    assert_eq!(h.pipeline.stats().unwrap().unrouted, 1);
}

#[test]
fn the_default_route_takes_what_no_other_route_takes() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "db"
        [[channel]]
        name = "catchall"
        [[route]]
        name = "db"
        match = { team = "db" }
        channels = ["db"]
        [[route]]
        name = "everything-else"
        default = true
        channels = ["catchall"]
    "#,
    );
    h.set_on(
        "slow-query",
        "m",
        &[],
        Severity::Minor,
        [("team".to_owned(), "db".to_owned())].into(),
    );
    h.set("cpu", &[], Severity::Minor);
    assert_eq!(brief(&h.sink("db").take())[0].2, "slow-query");
    assert_eq!(brief(&h.sink("catchall").take())[0].2, "cpu");
    assert!(h.history(&[EventKind::Unrouted]).is_empty());
}

#[test]
fn grouping_waits_then_sends_one_digest_then_respects_the_group_interval() {
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
    h.advance(secs(10));
    h.set("disk", &[("mount", "/data")], Severity::Major);
    h.set("disk", &[("mount", "/var")], Severity::Warning);
    h.advance(secs(19));
    assert!(
        h.sink("chat").take().is_empty(),
        "group_wait is 30 s from the first alert"
    );
    h.advance(secs(1));
    let digest = h.sink("chat").take();
    assert_eq!(digest.len(), 1, "one notification for the group");
    assert_eq!(
        digest[0].severity,
        Severity::Major,
        "the worst of the group"
    );
    assert_eq!(digest[0].labels["rule"], "disk");
    let summary = &digest[0].annotations["summary"];
    assert!(summary.starts_with("3 firing, 0 resolved"), "{summary}");
    assert!(
        digest[0].annotations["alerts"].contains("mount=\\\"/data\\\""),
        "{}",
        digest[0].annotations["alerts"]
    );
    // A change a minute later waits for the group interval (5 min after the first flush).
    h.advance(secs(60));
    h.set("disk", &[("mount", "/")], Severity::Critical);
    h.advance(secs(60 * 4 - 1));
    assert!(h.sink("chat").take().is_empty());
    h.advance(secs(1));
    let next = h.sink("chat").take();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].severity, Severity::Critical);
    let grouped = h.history(&[EventKind::Grouped]);
    assert_eq!(grouped.len(), 4, "every change waited for the group");
    assert!(
        grouped[0].detail.starts_with("group rule=disk notifies at"),
        "{}",
        grouped[0].detail
    );
}

#[test]
fn repeats_while_firing_and_stop_when_acknowledged_and_resume_when_the_ack_expires() {
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
    h.advance(secs(3599));
    assert!(h.sink("chat").take().is_empty());
    h.advance(secs(1));
    let repeat = h.sink("chat").take();
    assert_eq!(repeat.len(), 1, "repeated after 1 h");
    assert!(
        repeat[0].idempotency_key.contains(":r1"),
        "{}",
        repeat[0].idempotency_key
    );
    let id = h.incident_of("cpu").id;
    h.pipeline
        .ack(
            id,
            AckRequest {
                by: "kim".into(),
                comment: "looking".into(),
                expires_after: Some(secs(90 * 60)),
                sticky: false,
            },
        )
        .unwrap();
    h.run_for(secs(3600), secs(600));
    assert!(h.sink("chat").take().is_empty(), "acknowledged: no repeat");
    h.run_for(secs(3600), secs(600));
    assert_eq!(
        h.sink("chat").take().len(),
        1,
        "the ack expired after 90 min: repeats resume"
    );
    assert!(!h.history(&[EventKind::Unacked]).is_empty());
}

#[test]
fn a_rise_in_severity_clears_a_non_sticky_ack_but_not_a_sticky_one() {
    let mut h = Harness::new(ONE_ROUTE);
    h.set("cpu", &[], Severity::Warning);
    h.set("mem", &[], Severity::Warning);
    let (cpu, mem) = (h.incident_of("cpu").id, h.incident_of("mem").id);
    let ack = |sticky| AckRequest {
        by: "kim".into(),
        comment: String::new(),
        expires_after: None,
        sticky,
    };
    h.pipeline.ack(cpu, ack(false)).unwrap();
    h.pipeline.ack(mem, ack(true)).unwrap();
    h.set("cpu", &[], Severity::Critical);
    h.set("mem", &[], Severity::Critical);
    assert!(h.incident_of("cpu").ack.is_none());
    assert!(h.incident_of("mem").ack.is_some());
    // A rise is news either way: both are notified.
    assert_eq!(h.sink("mail").take().len(), 4);
    assert!(
        h.pipeline.ack(cpu, AckRequest::default()).is_err(),
        "an ack needs `by`"
    );
}

#[test]
fn escalation_tells_the_next_tier_when_nobody_acknowledges() {
    let text = r#"
        [recipients]
        kim = { email = "kim@example.com" }
        boss = { email = "boss@example.com", phone = "+1-555-0100" }
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
        recipients = ["boss"]
        [[route.escalation]]
        after = "1h"
        recipients = ["boss"]
        channels = ["sms"]
    "#;
    let mut h = Harness::new(text);
    h.set("cpu", &[], Severity::Critical);
    assert_eq!(h.sink("mail").take()[0].recipients, ["kim@example.com"]);
    h.advance(secs(15 * 60 - 1));
    assert!(h.sink("mail").take().is_empty());
    h.advance(secs(1));
    let tier1 = h.sink("mail").take();
    assert_eq!(tier1[0].recipients, ["boss@example.com"]);
    assert!(
        tier1[0].annotations["escalation"].contains("tier 1 of 2"),
        "{:?}",
        tier1[0].annotations
    );
    h.advance(secs(45 * 60));
    assert_eq!(
        h.sink("sms").take()[0].recipients,
        ["+1-555-0100"],
        "tier 2 by SMS"
    );
    assert_eq!(h.incident_of("cpu").routes[0].escalated, 2);

    // Acknowledged before the first tier: nobody else is woken.
    let mut h = Harness::new(text);
    h.set("cpu", &[], Severity::Critical);
    let id = h.incident_of("cpu").id;
    h.advance(secs(600));
    h.pipeline
        .ack(
            id,
            AckRequest {
                by: "kim".into(),
                ..AckRequest::default()
            },
        )
        .unwrap();
    h.run_for(secs(7200), secs(300));
    assert_eq!(
        h.sink("mail").take().len(),
        1,
        "only the first notification"
    );
    assert!(h.sink("sms").take().is_empty());
    // Unacknowledged: escalation resumes at once (the tier is overdue).
    h.pipeline.unack(id).unwrap();
    h.settle();
    assert_eq!(h.sink("mail").take()[0].recipients, ["boss@example.com"]);
}

#[test]
fn a_higher_severity_on_the_same_series_inhibits_the_lower_one() {
    let mut h = Harness::new(
        r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "all"
        channels = ["chat"]
        repeat_interval = "0s"
    "#,
    );
    // Two rules on the same series: the critical one inhibits the warning one.
    h.set_on(
        "disk-crit",
        "disk_usage",
        &[("mount", "/")],
        Severity::Critical,
        Default::default(),
    );
    h.set_on(
        "disk-warn",
        "disk_usage",
        &[("mount", "/")],
        Severity::Warning,
        Default::default(),
    );
    assert_eq!(
        brief(&h.sink("chat").take()),
        [(AlertStatus::Firing, Severity::Critical, "disk-crit".into())]
    );
    assert_eq!(h.history(&[EventKind::Inhibited]).len(), 1);
    // Another series is not inhibited.
    h.set_on(
        "disk-warn",
        "disk_usage",
        &[("mount", "/data")],
        Severity::Warning,
        Default::default(),
    );
    assert_eq!(h.sink("chat").take().len(), 1);
    // When the critical resolves, the warning that still fires is told.
    h.set_on(
        "disk-crit",
        "disk_usage",
        &[("mount", "/")],
        Severity::Normal,
        Default::default(),
    );
    let after = brief(&h.sink("chat").take());
    assert!(
        after.contains(&(AlertStatus::Resolved, Severity::Normal, "disk-crit".into())),
        "{after:?}"
    );
    assert!(
        after.contains(&(AlertStatus::Firing, Severity::Warning, "disk-warn".into())),
        "{after:?}"
    );
}

#[test]
fn a_declared_dependency_suppresses_the_alerts_of_that_host_only() {
    let mut h = Harness::new(
        &(r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "all"
        channels = ["chat"]
        repeat_interval = "0s"
        [[inhibit]]
        source = { rules = ["host-down"] }
        target = { rules = ["disk"] }
        equal = ["host"]
    "#
        .to_owned()
            + &rules(&["host-down", "disk"])),
    );
    h.set("host-down", &[("host", "db1")], Severity::Critical);
    h.set("disk", &[("host", "db1")], Severity::Major);
    h.set("disk", &[("host", "db2")], Severity::Major);
    let sent = h.sink("chat").take();
    let hosts: Vec<(&str, &str)> = sent
        .iter()
        .map(|a| (a.rule.as_str(), a.labels["host"].as_str()))
        .collect();
    assert_eq!(hosts, [("host-down", "db1"), ("disk", "db2")]);
    // The host comes back: its disk alert, still firing, is told now.
    h.set("host-down", &[("host", "db1")], Severity::Normal);
    let sent = h.sink("chat").take();
    assert!(
        sent.iter().any(|a| a.rule == "disk"
            && a.labels["host"] == "db1"
            && a.status == AlertStatus::Firing)
    );
}

#[test]
fn a_silence_holds_notifications_and_its_end_releases_what_still_fires() {
    let mut h = Harness::new(ONE_ROUTE);
    let id = h
        .pipeline
        .silence(
            SilenceRequest::new("kim", "replacing a disk", secs(3600))
                .rule("disk")
                .matcher("mount", "/data"),
        )
        .unwrap();
    h.set("disk", &[("mount", "/data")], Severity::Major);
    h.set("disk", &[("mount", "/")], Severity::Major);
    let sent = h.sink("mail").take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].labels["mount"], "/");
    assert_eq!(h.history(&[EventKind::Silenced]).len(), 1);
    assert_eq!(h.pipeline.silences().unwrap()[0].id, id);
    let held: Vec<Option<String>> = h.incidents().into_iter().map(|i| i.held_back).collect();
    assert!(
        held.iter().any(|r| r
            .as_deref()
            .is_some_and(|r| r.starts_with("silence 1 by kim"))),
        "{held:?}"
    );
    assert!(held.contains(&None));
    h.advance(secs(3600));
    let released = h.sink("mail").take();
    assert_eq!(released.len(), 1, "the silence ended: /data still fires");
    assert_eq!(released[0].labels["mount"], "/data");
    assert!(h.pipeline.silences().unwrap().is_empty());

    // Expired early through the API.
    let mut h = Harness::new(ONE_ROUTE);
    let id = h
        .pipeline
        .silence(SilenceRequest::new("kim", "", secs(3600)))
        .unwrap();
    h.set("cpu", &[], Severity::Minor);
    assert!(h.sink("mail").take().is_empty());
    h.pipeline.expire_silence(id).unwrap();
    h.settle();
    assert_eq!(h.sink("mail").take().len(), 1);
    assert!(h.pipeline.expire_silence(id).is_err(), "already gone");
    assert!(
        h.pipeline
            .silence(SilenceRequest::new("kim", "", secs(0)))
            .is_err()
    );
    assert!(
        h.pipeline
            .silence(SilenceRequest::new("kim", "", secs(1)).matcher("x", "=~("))
            .is_err()
    );
}

#[test]
fn a_maintenance_window_holds_notifications_and_releases_them_when_it_closes() {
    // START is Monday 00:00 UTC; the window is 00:00-01:00 every day.
    let mut h = Harness::new(&format!(
        "{ONE_ROUTE}
        [[maintenance]]
        name = \"nightly\"
        match = {{ host = \"db1\" }}
        schedule = {{ hours = [\"00:00-01:00\"] }}
    "
    ));
    h.set("disk", &[("host", "db1")], Severity::Major);
    assert!(h.sink("mail").take().is_empty());
    let silenced = h.history(&[EventKind::Silenced]);
    assert!(
        silenced[0].detail.contains("nightly"),
        "{}",
        silenced[0].detail
    );
    h.advance(secs(3600));
    assert_eq!(h.sink("mail").take().len(), 1, "01:00: the window closed");
}

#[test]
fn outside_a_routes_hours_notifications_are_deferred_or_dropped() {
    // START is Monday 00:00 UTC = 09:00 in Seoul; office hours 10:00-18:00 KST.
    let text = |outside: &str| {
        format!(
            r#"
        [[channel]]
        name = "chat"
        [[route]]
        name = "office"
        channels = ["chat"]
        schedule = {{ timezone = "Asia/Seoul", hours = ["10:00-18:00"], days = ["mon-fri"] }}
        outside_schedule = "{outside}"
        repeat_interval = "0s"
    "#
        )
    };
    let mut h = Harness::new(&text("defer"));
    h.set("cpu", &[], Severity::Major);
    assert!(h.sink("chat").take().is_empty());
    assert_eq!(h.history(&[EventKind::Deferred]).len(), 1);
    h.advance(secs(3599));
    assert!(h.sink("chat").take().is_empty());
    h.advance(secs(1));
    let sent = h.sink("chat").take();
    assert_eq!(sent.len(), 1, "sent when the window opens at 10:00 KST");

    let mut h = Harness::new(&text("drop"));
    h.set("cpu", &[], Severity::Major);
    h.advance(secs(1800));
    h.set("cpu", &[], Severity::Normal);
    h.advance(secs(3600));
    assert!(
        h.sink("chat").take().is_empty(),
        "dropped, and no resolve for what was never told"
    );
    assert_eq!(h.history(&[EventKind::Dropped]).len(), 1);
}

#[test]
fn every_decision_is_an_event_in_the_history_and_on_the_feed() {
    let mut h = Harness::new(ONE_ROUTE);
    h.set("cpu", &[("host", "a")], Severity::Major);
    h.set("cpu", &[("host", "a")], Severity::Normal);
    let kinds: Vec<EventKind> = h.drain_events().iter().map(|e| e.kind).collect();
    for k in [
        EventKind::Transition,
        EventKind::Opened,
        EventKind::Routed,
        EventKind::Queued,
        EventKind::Delivered,
        EventKind::Resolved,
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let by_item = h
        .pipeline
        .history(vigilo::pipeline::HistoryQuery {
            item: Some("cpu{host=\"a\"}".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_item.len() >= 6);
    assert!(by_item.windows(2).all(|w| w[0].seq < w[1].seq));
    let latest = h
        .pipeline
        .history(vigilo::pipeline::HistoryQuery::latest(2))
        .unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[1].seq, by_item.iter().map(|e| e.seq).max().unwrap());
}
