//! The bundled `vigilo-sms-gateway` plugin sending one request per recipient, as a form or as
//! JSON, to a real HTTP server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::peers::{HttpSink, load_channel, sample_alert};
use serde_json::json;
use vigilo::alert::{Channel, DeliveryError};

/// `a=1&b=x+y` → pairs, percent-decoded.
fn form(body: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    body.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

#[test]
fn sends_one_form_per_recipient_with_auth_header() {
    let sink = HttpSink::start();
    let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/v1/send"),
            "format": "form",
            "headers": { "Authorization": "Bearer sms-key" },
            "fields": {
                "to": "{{recipient}}",
                "from": "15881234",
                "text": "[{{severity_ko}}] {{summary}}",
                "ref": "{{idempotency_key}}",
            },
        });
    });
    let mut alert = sample_alert();
    alert.recipients = vec!["+82-10-1111-2222".into(), "+82-10-3333-4444".into()];
    sms.deliver(&alert).unwrap();

    for to in ["+82-10-1111-2222", "+82-10-3333-4444"] {
        let r = sink.next();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/send");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.header("authorization"), Some("Bearer sms-key"));
        let fields = form(&r.text());
        assert_eq!(
            fields,
            vec![
                ("from".to_owned(), "15881234".to_owned()),
                ("ref".to_owned(), alert.idempotency_key.clone()),
                ("text".to_owned(), "[긴급] CPU at 93.5% on web-1".to_owned()),
                ("to".to_owned(), to.to_owned()),
            ]
        );
    }
    assert!(sink.drain().is_empty());
}

#[test]
fn sends_json_fields_and_json_body_templates() {
    let sink = HttpSink::start();
    let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/kakao"),
            "format": "json",
            "fields": { "receiver": "{{recipient}}", "message": "{{severity_label}}: {{rule}} {{value}}" },
            "max_length": 20,
        });
    });
    let mut alert = sample_alert();
    alert.recipients = vec!["user-1".into()];
    sms.deliver(&alert).unwrap();
    let r = sink.next();
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({ "receiver": "user-1", "message": "Major: cpu-high 93.5" })
    );

    // Nested JSON for KakaoTalk-style relays, with a recipient list from the config.
    let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/alimtalk"),
            "format": "json",
            "recipients": ["010-0000-0001"],
            "body_template": r#"{"to": "{{recipient}}", "template": {"code": "ALERT1", "vars": {"rule": "{{rule}}", "sev": "{{severity_ko}}"}}}"#,
        });
    });
    alert.recipients.clear();
    sms.deliver(&alert).unwrap();
    assert_eq!(
        sink.next().json(),
        json!({ "to": "010-0000-0001", "template": { "code": "ALERT1", "vars": { "rule": "cpu-high", "sev": "긴급" } } })
    );
}

#[test]
fn every_recipient_is_tried_and_failures_are_reported() {
    let sink = HttpSink::start();
    let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/send"), "fields": { "to": "{{recipient}}" } });
    });
    sink.set_status(500);
    let err = sms.deliver(&sample_alert()).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        format!("{err:?}").contains("2 of 2 recipient(s) failed"),
        "{err:?}"
    );
    let tried: Vec<String> = (0..2)
        .map(|_| form(&sink.next().text())[0].1.clone())
        .collect();
    assert_eq!(tried, vec!["ops@example.com", "+82-10-1234-5678"]);

    let mut alert = sample_alert();
    alert.recipients.clear();
    let err = sms.deliver(&alert).unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Permanent(m) if m.contains("no recipients")),
        "{err:?}"
    );

    let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({ "url": sink.url("/send"), "format": "xml", "fields": { "to": "{{recipient}}" } });
    });
    let err = sms.deliver(&sample_alert()).unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Permanent(m) if m.contains("`format`")),
        "{err:?}"
    );
}
