//! The bundled `vigilo-slack` plugin delivering a Slack incoming-webhook payload to a real
//! HTTP server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::peers::{HttpSink, load_channel, resolved, sample_alert};
use serde_json::json;
use vigilo::Severity;
use vigilo::alert::Channel;

#[test]
fn posts_an_attachment_coloured_by_severity() {
    let sink = HttpSink::start();
    let (_host, slack) = load_channel("vigilo-slack", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/services/T000/B000/XXXX"),
            "channel": "#ops",
            "username": "vigilo",
            "mention": "<!here>",
        });
    });
    slack.deliver(&sample_alert()).unwrap();

    let r = sink.next();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/T000/B000/XXXX");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["channel"], "#ops");
    assert_eq!(body["username"], "vigilo");
    assert_eq!(
        body["text"],
        "<!here> [Major] cpu-high: CPU at 93.5% on web-1"
    );
    let a = &body["attachments"][0];
    assert_eq!(a["color"], "#e64a19");
    assert_eq!(a["title"], "[Major] cpu-high");
    assert_eq!(a["text"], "CPU at 93.5% on web-1");
    assert_eq!(a["ts"], 1_700_000_060);
    let fields = a["fields"].as_array().unwrap();
    let field = |t: &str| {
        fields
            .iter()
            .find(|f| f["title"] == t)
            .map(|f| f["value"].clone())
    };
    assert_eq!(field("Severity"), Some(json!("Major")));
    assert_eq!(field("Status"), Some(json!("firing")));
    assert_eq!(field("Metric"), Some(json!("host.cpu.usage")));
    assert_eq!(field("Value"), Some(json!("93.5 (threshold 80)")));
    assert_eq!(field("host"), Some(json!("web-1")));
    assert_eq!(field("team"), Some(json!("ops")));
}

#[test]
fn every_severity_has_its_colour_and_resolved_is_green() {
    let sink = HttpSink::start();
    let (_host, slack) = load_channel("vigilo-slack", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/hook"), "text_template": "{{metric}} = {{value}}" });
    });
    let colours = [
        (Severity::Info, "#1e88e5"),
        (Severity::Warning, "#fdd835"),
        (Severity::Minor, "#fb8c00"),
        (Severity::Major, "#e64a19"),
        (Severity::Critical, "#c62828"),
    ];
    for (severity, colour) in colours {
        let mut alert = sample_alert();
        alert.severity = severity;
        slack.deliver(&alert).unwrap();
        let body = sink.next().json();
        assert_eq!(body["attachments"][0]["color"], colour, "{severity:?}");
        assert_eq!(body["attachments"][0]["text"], "host.cpu.usage = 93.5");
    }

    slack.deliver(&resolved(sample_alert())).unwrap();
    let body = sink.next().json();
    let a = &body["attachments"][0];
    assert_eq!(a["color"], "#2e7d32");
    assert_eq!(a["title"], "[Resolved] cpu-high");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("[Resolved] cpu-high"),
        "{body}"
    );
}

#[test]
fn slack_errors_are_reported() {
    let sink = HttpSink::start();
    let (_host, slack) = load_channel("vigilo-slack", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/hook") });
    });
    sink.set_status(404);
    let err = slack.deliver(&sample_alert()).unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    sink.set_status(503);
    let err = slack.deliver(&sample_alert()).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
