//! The bundled `vigilo-webhook` plugin, built for wasm32-wasip2 and loaded by the host,
//! delivering to a real HTTP server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::peers::{HttpSink, load_channel, resolved, sample_alert};
use serde_json::json;
use vigilo::alert::{Channel, DeliveryError};
use vigilo_plugin_host::PluginError;

#[test]
fn posts_the_alert_as_json_with_idempotency_key_and_headers() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/hooks/vigilo?team=ops"),
            "headers": { "Authorization": "Bearer t0ken", "X-Source": "vigilo-test" },
        });
    });
    let alert = sample_alert();
    webhook.deliver(&alert).unwrap();

    let r = sink.next();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/vigilo?team=ops");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("idempotency-key"),
        Some(alert.idempotency_key.as_str())
    );
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(r.header("x-source"), Some("vigilo-test"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );

    let body = r.json();
    assert_eq!(body["rule"], "cpu-high");
    assert_eq!(body["metric"], "host.cpu.usage");
    assert_eq!(body["severity"], "major");
    assert_eq!(body["previous"], "warning");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["value"], 93.5);
    assert_eq!(body["threshold"], 80.0);
    assert_eq!(body["labels"], json!({ "host": "web-1", "team": "ops" }));
    assert_eq!(body["annotations"]["summary"], "CPU at 93.5% on web-1");
    assert_eq!(body["summary"], "CPU at 93.5% on web-1");
    assert_eq!(body["idempotency_key"], alert.idempotency_key.as_str());
    assert_eq!(body["since_ms"], 1_700_000_000_000i64);
    assert_eq!(body["at_ms"], 1_700_000_060_000i64);
    assert_eq!(body["at"], "2023-11-14T22:14:20.000Z");
    assert_eq!(
        body["recipients"],
        json!(["ops@example.com", "+82-10-1234-5678"])
    );

    // The resolved alert carries its own key and status.
    let back = resolved(alert);
    webhook.deliver(&back).unwrap();
    let r = sink.next();
    assert_eq!(
        r.header("idempotency-key"),
        Some(back.idempotency_key.as_str())
    );
    let body = r.json();
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["severity"], "normal");
    assert_eq!(body["previous"], "major");
}

#[test]
fn renders_a_body_template_with_json_escaping() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/t"),
            "body_template": r#"{"text": "[{{severity}}] {{summary}}", "host": "{{labels.host}}", "n": {{value}}}"#,
        });
    });
    let mut alert = sample_alert();
    alert
        .annotations
        .insert("summary".into(), "CPU \"hot\"\non web-1".into());
    webhook.deliver(&alert).unwrap();
    let body = sink.next().json();
    assert_eq!(
        body,
        json!({ "text": "[major] CPU \"hot\"\non web-1", "host": "web-1", "n": 93.5 })
    );
}

#[test]
fn a_template_that_does_not_render_json_fails_permanently_without_sending() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/t"), "body_template": "{\"text\": {{summary}}}" });
    });
    let err = webhook.deliver(&sample_alert()).unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Permanent(m) if m.contains("valid JSON")),
        "{err:?}"
    );

    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/t"), "body_template": "{{sumary}}", "content_type": "text/plain" });
    });
    let err = webhook.deliver(&sample_alert()).unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Permanent(m) if m.contains("unknown field `sumary`")),
        "{err:?}"
    );
    assert!(sink.drain().is_empty());
}

#[test]
fn statuses_map_to_retryable_and_permanent() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/s") });
    });
    for (status, retryable) in [
        (503, true),
        (429, true),
        (500, true),
        (404, false),
        (400, false),
    ] {
        sink.set_status(status);
        let err = webhook.try_deliver(&sample_alert()).unwrap().unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "HTTP {status}: {err:?}");
        assert!(format!("{err:?}").contains(&status.to_string()), "{err:?}");
        sink.next();
    }
    sink.set_status(204);
    webhook.try_deliver(&sample_alert()).unwrap().unwrap();
}

#[test]
fn missing_url_and_unlisted_hosts_are_refused() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({});
    });
    let err = webhook.deliver(&sample_alert()).unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Permanent("config: missing required setting `url`".into())
    );

    // The server is up, but this plugin was not allowed to reach it.
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec!["hooks.example.com".into()];
        s.config = json!({ "url": sink.url("/x") });
    });
    match webhook.try_deliver(&sample_alert()) {
        Err(PluginError::Denied { .. }) => {}
        other => panic!("expected a denial, got {other:?}"),
    }
    let err = webhook.deliver(&sample_alert()).unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(
        sink.drain().is_empty(),
        "the unlisted host must not be reached"
    );
}

#[test]
fn a_ten_megabyte_annotation_is_cut_and_the_channel_stays_healthy() {
    let sink = HttpSink::start();
    let (_host, webhook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/hook") });
    });
    let mut big = sample_alert();
    big.annotations
        .insert("description".into(), "d".repeat(10 << 20));
    for _ in 0..4 {
        assert_eq!(webhook.try_deliver(&big), Ok(Ok(())));
        let body = sink.next().json();
        let d = body["annotations"]["description"].as_str().unwrap();
        assert!(
            d.len() < (64 << 10) + 64 && d.ends_with("bytes cut)"),
            "{} bytes",
            d.len()
        );
    }
    assert!(!webhook.status().quarantined);
    webhook.deliver(&sample_alert()).unwrap();
    assert_eq!(sink.next().json()["rule"], "cpu-high");
}
