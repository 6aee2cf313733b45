//! The whole path through a [`Monitor`]: a record crosses a threshold, the evaluator reports
//! it, the pipeline delivers it; a recovery action fixes the metric and the resolve follows;
//! reloads keep what is open.

use std::sync::Arc;
use std::time::Duration;

use vigilo::Severity;
use vigilo::alert::AlertStatus;
use vigilo::config::Config;
use vigilo::monitor::{Monitor, MonitorError};
use vigilo::pipeline::{Event, EventKind};

use crate::support::{Recorder, Sink, secs};

const SERVICE: &str = r#"
    [evaluator]
    tick = "100ms"

    [[rule]]
    name = "queue"
    metric = "queue_depth"
    annotations = { summary = "queue at {{value}}" }
    [rule.warning]
    threshold = 100
    [rule.critical]
    threshold = 1000

    [[channel]]
    name = "chat"

    [[route]]
    name = "ops"
    channels = ["chat"]
    repeat_interval = "0s"

    [[action]]
    name = "drain"
    [[recovery]]
    rules = ["queue"]
    min_severity = "critical"
    action = "drain"
    cooldown = "1s"
"#;

fn wait(events: &crossbeam_channel::Receiver<Event>, what: impl Fn(&Event) -> bool) -> Event {
    loop {
        let e = events
            .recv_timeout(secs(10))
            .expect("the expected event within 10 s");
        if what(&e) {
            return e;
        }
    }
}

fn start(text: &str, chat: &Arc<Sink>, drain: &Arc<Recorder>) -> Monitor {
    let config: Config = text.parse().unwrap();
    Monitor::builder(config)
        .without_host_items()
        .channel(Arc::clone(chat) as _)
        .action(Arc::clone(drain) as _)
        .start()
        .unwrap()
}

#[test]
fn a_crossing_is_delivered_and_the_recovery_action_leads_to_the_resolve() {
    let (chat, drain) = (Sink::new("chat"), Recorder::new("drain"));
    let monitor = start(SERVICE, &chat, &drain);
    let events = monitor.subscribe().unwrap();
    let queue = monitor.registry().gauge("queue_depth", &[]).unwrap();
    queue.set(10.0);
    queue.set(150.0);
    let d = wait(&events, |e| e.kind == EventKind::Delivered);
    assert_eq!(d.severity, Some(Severity::Warning));
    // Critical: the action runs and drains the queue; the evaluator sees it and resolves.
    let q = queue.clone();
    drain.on_run(move || {
        q.set(0.0);
    });
    queue.set(5000.0);
    // The run and the resolve race; the resolve's notification waits for the run's outcome.
    let mut seen = (false, false);
    while seen != (true, true) {
        let e = wait(&events, |e| {
            matches!(e.kind, EventKind::ActionFinished | EventKind::Resolved)
        });
        if e.kind == EventKind::ActionFinished {
            seen.0 = true;
        } else {
            seen.1 = true;
        }
    }
    monitor.settle(secs(10)).unwrap();
    let sent = chat.take();
    let statuses: Vec<(AlertStatus, Severity)> =
        sent.iter().map(|a| (a.status, a.severity)).collect();
    assert_eq!(
        statuses,
        [
            (AlertStatus::Firing, Severity::Warning),
            (AlertStatus::Firing, Severity::Critical),
            (AlertStatus::Resolved, Severity::Normal)
        ]
    );
    assert!(
        sent[2].annotations["recovery"].contains("drain #1 succeeded"),
        "{:?}",
        sent[2].annotations
    );
    assert_eq!(sent[1].annotations["summary"], "queue at 5000");
    let status = monitor.status().unwrap();
    assert!(status.incidents.is_empty());
    assert!(status.to_json().contains("\"pipeline\""));
    let report = monitor.stop(secs(5)).unwrap();
    assert_eq!(report.outbox_left, 0);
    // Stopped means let go: no worker thread still holds the channel or the action (a C
    // caller's free callback runs before `stop` returns).
    assert_eq!(
        Arc::strong_count(&chat),
        1,
        "the channel is still held after stop"
    );
    assert_eq!(
        Arc::strong_count(&drain),
        1,
        "the action is still held after stop"
    );
}

#[test]
fn a_reload_with_a_bad_file_keeps_the_running_config() {
    let (chat, drain) = (Sink::new("chat"), Recorder::new("drain"));
    let monitor = start(SERVICE, &chat, &drain);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        SERVICE.replace("channels = [\"chat\"]", "channels = [\"chta\"]"),
    )
    .unwrap();
    let err = monitor.reload_file(&bad).unwrap_err();
    assert!(matches!(err, MonitorError::Config(_)));
    let text = err.to_string();
    assert!(
        text.contains("bad.toml:19:") && text.contains("unknown channel \"chta\""),
        "{text}"
    );
    // Still running on the old configuration.
    let events = monitor.subscribe().unwrap();
    monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(200.0);
    let d = wait(&events, |e| e.kind == EventKind::Delivered);
    assert_eq!(d.channel.as_deref(), Some("chat"));
}

#[test]
fn a_reload_keeps_open_incidents_and_tells_nothing_twice() {
    let (chat, drain) = (Sink::new("chat"), Recorder::new("drain"));
    let monitor = start(SERVICE, &chat, &drain);
    let events = monitor.subscribe().unwrap();
    monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(200.0);
    wait(&events, |e| e.kind == EventKind::Delivered);
    let before = monitor.incidents().unwrap();
    assert_eq!(before.len(), 1);
    // New policy: repeat every 10 minutes, and a new rule.
    let new = SERVICE.replace("repeat_interval = \"0s\"", "repeat_interval = \"10m\"")
        + "\n[[rule]]\nname = \"errors\"\nmetric = \"errors_total\"\naggregation = \"rate\"\nwindow = \"1m\"\n[rule.major]\nthreshold = 5\n";
    monitor.reload(new.parse().unwrap()).unwrap();
    wait(&events, |e| e.kind == EventKind::Reloaded);
    monitor.settle(secs(10)).unwrap();
    let after = monitor.incidents().unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(chat.take().len(), 1, "nothing sent again by the reload");
    assert_eq!(monitor.config().rules.len(), 2);
}

#[test]
fn coverage_lists_rules_no_route_reaches() {
    let config: Config = r#"
        [[rule]]
        name = "cpu"
        metric = "cpu"
        labels = { team = "ops" }
        [rule.warning]
        threshold = 1
        [[rule]]
        name = "disk"
        metric = "disk"
        labels = { team = "storage" }
        [rule.warning]
        threshold = 1
        [[channel]]
        name = "chat"
        [[route]]
        name = "ops"
        match = { team = "ops" }
        channels = ["chat"]
    "#
    .parse()
    .unwrap();
    let monitor = Monitor::builder(config)
        .without_host_items()
        .channel(Sink::new("chat") as _)
        .start()
        .unwrap();
    let status = monitor.status().unwrap();
    assert_eq!(status.coverage.unrouted_rules, ["disk"]);
    drop(monitor);
    let _ = Duration::ZERO;
}

#[test]
fn a_plugin_channel_without_a_loader_is_a_clear_error() {
    let config: Config = r#"
        [[channel]]
        name = "hook"
        plugin = "webhook"
        config = { url = "http://127.0.0.1:9/" }
    "#
    .parse()
    .unwrap();
    let err = Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap_err();
    assert!(matches!(err, MonitorError::NoLoader { .. }), "{err}");
    assert!(err.to_string().contains("vigilo-plugin-host"), "{err}");
    let config: Config = "[[channel]]\nname = \"mine\"\n".parse().unwrap();
    let err = Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be implemented by the program"),
        "{err}"
    );
}

#[test]
fn a_reload_one_part_refuses_changes_nothing_and_names_the_part() {
    let (chat, drain) = (Sink::new("chat"), Recorder::new("drain"));
    let monitor = start(SERVICE, &chat, &drain);
    let events = monitor.subscribe().unwrap();
    // The file is sound (its own tick of 10 ms allows a 50 ms no-data wait), and its routes
    // and a new rule are fine; but the running evaluator ticks every 100 ms (`[evaluator]`
    // takes effect at the next start) and refuses the rule: the last part to apply. Nothing
    // may change, the routes included.
    let refused_by_rules = SERVICE
        .replace("tick = \"100ms\"", "tick = \"10ms\"")
        .replace("repeat_interval = \"0s\"", "repeat_interval = \"10m\"")
        + "\n[[rule]]\nname = \"beat\"\nmetric = \"beat\"\nno_data = { after = \"50ms\", severity = \"major\" }\n";
    let err = monitor
        .reload(refused_by_rules.parse().unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, MonitorError::Reload { part: "rules", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nothing changed"), "{err}");
    // A channel the program never gave: the plugins refuse, nothing changes either.
    let refused_by_plugins =
        SERVICE.replace("[[route]]", "[[channel]]\nname = \"pager\"\n[[route]]");
    let err = monitor
        .reload(refused_by_plugins.parse().unwrap())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            MonitorError::Reload {
                part: "plugins",
                ..
            }
        ),
        "{err}"
    );
    // Everything is as before: the configuration, the rules, the routes (no repeat), and the
    // pipeline never reloaded.
    let config = monitor.config();
    assert_eq!(config.rules.len(), 1);
    assert_eq!(config.pipeline.routes[0].repeat_interval, None);
    assert_eq!(config.pipeline.channels.len(), 1);
    monitor
        .registry()
        .gauge("queue_depth", &[])
        .unwrap()
        .set(200.0);
    let d = wait(&events, |e| {
        assert_ne!(e.kind, EventKind::Reloaded, "the pipeline reloaded");
        e.kind == EventKind::Delivered
    });
    assert_eq!(d.channel.as_deref(), Some("chat"));
    monitor.settle(secs(10)).unwrap();
    assert_eq!(
        monitor.status().unwrap().status.items.len(),
        1,
        "the old rules run"
    );
}
