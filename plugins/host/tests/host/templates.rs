//! Every bundled plugin that builds a URL, a header or a body from alert data, with hostile
//! label values: each value either arrives intact, in its place (one path segment, one query
//! value, one form field, one JSON string, inert Slack text), or the call fails permanently
//! with a message naming the field, and nothing is sent. No value moves the request. (The
//! email plugin's headers: `bundled_email.rs`.)

use crate::peers::{HttpSink, load_action, load_channel, sample_alert};
use serde_json::json;
use vigilo::alert::{Alert, DeliveryError};

/// Values that moved the feature-flag plugin's requests before encoding by context.
const HOSTILE: &[&str] = &[
    "../admin/kill-all",
    "checkout/../../../admin/users/1",
    "checkout?admin=1",
    "%2e%2e%2f",
    "checkout#admin",
    "a\r\nX-Injected: 1",
    "new checkout",
    "..",
    "a&b=c+d",
    "<!channel>",
];

fn with_feature(value: &str) -> Alert {
    let mut a = sample_alert();
    a.labels.insert("feature".into(), value.into());
    a
}

/// `%XX` and (in forms) `+` decoded.
fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A form body's fields, decoded, in order.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (decode(k, true), decode(v, true))
        })
        .collect()
}

#[test]
fn feature_flag_urls_keep_each_label_in_its_path_segment() {
    let sink = HttpSink::start();
    let (_host, flag) = load_action("vigilo-feature-flag", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config =
            json!({ "url": sink.url("/api/flags/{{labels.feature}}?by={{labels.feature}}") });
    });
    let mut refused = 0;
    for value in HOSTILE {
        match flag.try_run(&with_feature(value)).unwrap() {
            Ok(outcome) => {
                assert!(outcome.success, "{value:?}: {outcome:?}");
                let r = sink.next();
                let (path, query) = r.path.split_once('?').expect("the query is kept");
                let segment = path.strip_prefix("/api/flags/").expect(&r.path);
                assert!(!segment.contains(['/', '?', '#']), "{value:?} → {}", r.path);
                assert_eq!(decode(segment, false), *value, "{}", r.path);
                let by = query.strip_prefix("by=").expect(&r.path);
                assert!(!by.contains(['&', '=', '#']), "{value:?} → {}", r.path);
                assert_eq!(decode(by, false), *value, "{}", r.path);
            }
            Err(message) => {
                refused += 1;
                assert!(
                    message.contains("labels.feature") && message.contains("URL path segment"),
                    "{value:?}: {message}"
                );
                assert!(sink.drain().is_empty(), "{value:?}: refused, yet sent");
            }
        }
    }
    // `../admin/kill-all`, `checkout/../../../admin/users/1` and `..` cannot stay one segment.
    assert_eq!(refused, 3);
    // An empty value would name the collection (`/api/flags/`): refused too.
    let r = flag.try_run(&with_feature("")).unwrap();
    assert!(r.is_err(), "{r:?}");
    assert!(sink.drain().is_empty());
}

#[test]
fn webhook_bodies_keep_each_label_one_json_string_or_one_form_field() {
    let sink = HttpSink::start();
    let (_host, json_hook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/json"),
            "body_template": r#"{"feature": "{{labels.feature}}", "source": "vigilo"}"#,
        });
    });
    let (_host2, form_hook) = load_channel("vigilo-webhook", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/form"),
            "content_type": "application/x-www-form-urlencoded",
            "body_template": "feature={{labels.feature}}&source=vigilo",
        });
    });
    for value in HOSTILE {
        let alert = with_feature(value);
        json_hook.try_deliver(&alert).unwrap().unwrap();
        let body = sink.next().json();
        assert_eq!(body, json!({ "feature": value, "source": "vigilo" }));
        form_hook.try_deliver(&alert).unwrap().unwrap();
        let fields = form(&sink.next().text());
        assert_eq!(
            fields,
            vec![
                ("feature".to_owned(), (*value).to_owned()),
                ("source".to_owned(), "vigilo".to_owned())
            ]
        );
    }
}

#[test]
fn sms_gateway_fields_keep_each_label_one_field() {
    let sink = HttpSink::start();
    for format in ["form", "json"] {
        let (_host, sms) = load_channel("vigilo-sms-gateway", |s| {
            s.allowed_hosts = vec![sink.host()];
            s.config = json!({
                "url": sink.url("/send"),
                "format": format,
                "fields": { "to": "{{recipient}}", "text": "{{labels.feature}}" },
                "recipients": ["+82-10-0000-0000"],
            });
        });
        for value in HOSTILE {
            let mut alert = with_feature(value);
            alert.recipients.clear();
            sms.try_deliver(&alert).unwrap().unwrap();
            let r = sink.next();
            let fields: Vec<(String, String)> = if format == "form" {
                form(&r.text())
            } else {
                let v = r.json();
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            };
            assert_eq!(
                fields,
                vec![
                    ("text".to_owned(), (*value).to_owned()),
                    ("to".to_owned(), "+82-10-0000-0000".to_owned())
                ],
                "{format}"
            );
        }
    }
}

#[test]
fn slack_messages_show_label_values_as_text_not_markup() {
    let sink = HttpSink::start();
    let (_host, slack) = load_channel("vigilo-slack", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url("/hook"),
            "text_template": "{{summary}} for <@U0TEAM>",
        });
    });
    let mut alert = with_feature("<!channel>");
    alert.annotations.insert(
        "summary".into(),
        "<http://evil.example|click here> & <!here>".into(),
    );
    slack.try_deliver(&alert).unwrap().unwrap();
    let raw = sink.next().text();
    for markup in ["<!channel>", "<!here>", "<http://evil"] {
        assert!(
            !raw.contains(markup),
            "{markup} reached Slack as markup: {raw}"
        );
    }
    let payload: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let text = payload["attachments"][0]["text"].as_str().unwrap();
    assert_eq!(
        text, "&lt;http://evil.example|click here&gt; &amp; &lt;!here&gt; for <@U0TEAM>",
        "the operator's own markup is kept"
    );
    let fields = payload["attachments"][0]["fields"].as_array().unwrap();
    assert!(
        fields.iter().any(|f| f["value"] == "&lt;!channel&gt;"),
        "{fields:?}"
    );
}

#[test]
fn alertmanager_generator_urls_keep_each_label_in_its_place() {
    let sink = HttpSink::start();
    let (_host, am) = load_channel("vigilo-alertmanager", |s| {
        s.allowed_hosts = vec![sink.host()];
        s.config = json!({
            "url": sink.url(""),
            "generator_url": "http://grafana.example/d/{{labels.feature}}?var={{labels.feature}}",
        });
    });
    for value in HOSTILE {
        match am.try_deliver(&with_feature(value)).unwrap() {
            Ok(()) => {
                let body = sink.next().json();
                let url = body[0]["generatorURL"].as_str().unwrap().to_owned();
                let rest = url.strip_prefix("http://grafana.example/d/").unwrap();
                let (segment, query) = rest.split_once("?var=").unwrap();
                assert!(!segment.contains(['/', '?', '#']), "{url}");
                assert!(!query.contains(['&', '#']), "{url}");
                assert_eq!(decode(segment, false), *value);
                assert_eq!(decode(query, false), *value);
            }
            Err(e) => {
                assert!(
                    matches!(&e, DeliveryError::Permanent(m) if m.contains("labels.feature")),
                    "{e}"
                );
                assert!(sink.drain().is_empty());
            }
        }
    }
}
