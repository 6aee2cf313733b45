//! The bundled `vigilo-feature-flag` action plugin (the kill switch) against a real feature-flag
//! service on loopback: a flag switched off with a templated URL and an authorised request,
//! refused hosts, failed answers reported as failed runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::json;
use vigilo::alert::{Action, ActionError, Alert};
use vigilo_plugin_host::{ActionPlugin, PluginHost};

use crate::peers::{load_action, sample_alert};

/// A small feature-flag service: `GET /api/flags/NAME` gives `{"name", "enabled"}`, `PUT` or
/// `PATCH` with `{"enabled": bool}` sets it (bearer token required). Unknown flags are 404.
struct FlagService {
    addr: String,
    flags: Arc<Mutex<BTreeMap<String, bool>>>,
    writes: Arc<Mutex<Vec<Write>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

/// A write the service received: method, path, idempotency key.
type Write = (String, String, Option<String>);

const TOKEN: &str = "flag-admin-token";

impl FlagService {
    fn start(flags: &[(&str, bool)]) -> FlagService {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap().to_string();
        let flags = Arc::new(Mutex::new(
            flags.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let (s, f, w) = (Arc::clone(&server), Arc::clone(&flags), Arc::clone(&writes));
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                answer(request, &f, &w);
            }
        });
        FlagService {
            addr,
            flags,
            writes,
            server,
            thread: Some(thread),
        }
    }

    fn enabled(&self, name: &str) -> Option<bool> {
        self.flags.lock().unwrap().get(name).copied()
    }
}

fn answer(
    mut request: tiny_http::Request,
    flags: &Mutex<BTreeMap<String, bool>>,
    writes: &Mutex<Vec<Write>>,
) {
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.to_string())
    };
    let method = request.method().to_string();
    let path = request.url().to_owned();
    let authorised = header("Authorization").as_deref() == Some(&format!("Bearer {TOKEN}"));
    let key = header("Idempotency-Key");
    let name = path.strip_prefix("/api/flags/").unwrap_or("").to_owned();
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let reply =
        |code: u16, text: String| tiny_http::Response::from_string(text).with_status_code(code);
    let response = if name.is_empty() {
        reply(404, "no such endpoint".into())
    } else if method == "GET" {
        match flags.lock().unwrap().get(&name) {
            Some(on) => reply(200, json!({"name": name, "enabled": on}).to_string()),
            None => reply(404, format!("no flag {name}")),
        }
    } else if !authorised {
        reply(401, "missing or wrong token".into())
    } else {
        writes.lock().unwrap().push((method, path.clone(), key));
        let wanted = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("enabled").and_then(serde_json::Value::as_bool));
        let mut flags = flags.lock().unwrap();
        match (flags.get_mut(&name), wanted) {
            (None, _) => reply(404, format!("no flag {name}")),
            (Some(_), None) => reply(
                400,
                format!("body must be {{\"enabled\": bool}}, got {body}"),
            ),
            (Some(on), Some(w)) => {
                *on = w;
                reply(200, json!({"name": name, "enabled": w}).to_string())
            }
        }
    };
    let _ = request.respond(response);
}

impl Drop for FlagService {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn alert_for(feature: &str) -> Alert {
    let mut a = sample_alert();
    a.labels.insert("feature".into(), feature.into());
    a
}

fn kill_switch(service: &FlagService, allowed: &str) -> (PluginHost, ActionPlugin) {
    let addr = service.addr.clone();
    let allowed = allowed.to_owned();
    load_action("vigilo-feature-flag", move |s| {
        s.allowed_hosts = vec![allowed];
        s.config = json!({
            "url": format!("http://{addr}/api/flags/{{{{labels.feature}}}}"),
            "method": "PATCH",
            "headers": { "Authorization": format!("Bearer {TOKEN}") },
        });
    })
}

#[test]
fn switches_the_alerts_feature_off_through_the_flag_api() {
    let service = FlagService::start(&[("new-checkout", true), ("search-v2", true)]);
    let (_host, action) = kill_switch(&service, &service.addr);
    let alert = alert_for("new-checkout");

    let outcome = action.run(&alert).unwrap();
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(
        outcome.message,
        format!(
            "PATCH http://{}/api/flags/new-checkout -> 200",
            service.addr
        )
    );
    assert!(
        outcome.output_tail.contains("\"enabled\":false"),
        "{outcome:?}"
    );
    // Only the alert's feature was switched, once, with the alert's idempotency key.
    assert_eq!(service.enabled("new-checkout"), Some(false));
    assert_eq!(service.enabled("search-v2"), Some(true));
    let writes = service.writes.lock().unwrap().clone();
    assert_eq!(
        writes,
        vec![(
            "PATCH".to_owned(),
            "/api/flags/new-checkout".to_owned(),
            Some(alert.idempotency_key.clone())
        )]
    );
}

#[test]
fn a_refusing_flag_service_is_a_failed_run_with_its_answer() {
    let service = FlagService::start(&[("new-checkout", true)]);
    let (_host, action) = kill_switch(&service, &service.addr);
    // A flag the service does not know: 404, reported as a failed run with the service's words.
    let outcome = action.run(&alert_for("no-such-flag")).unwrap();
    assert!(!outcome.success, "{outcome:?}");
    assert!(outcome.message.ends_with("-> 404"), "{outcome:?}");
    assert!(
        outcome.output_tail.contains("no flag no-such-flag"),
        "{outcome:?}"
    );
    assert_eq!(service.enabled("new-checkout"), Some(true));
}

#[test]
fn a_flag_service_outside_allowed_hosts_is_never_reached() {
    let service = FlagService::start(&[("new-checkout", true)]);
    // Allowed: another port only.
    let (_host, action) = kill_switch(&service, "127.0.0.1:1");
    let err = action.run(&alert_for("new-checkout")).unwrap_err();
    assert!(
        matches!(&err, ActionError::Denied(m) if m.contains("not in the allowed_hosts")),
        "{err:?}"
    );
    assert!(service.writes.lock().unwrap().is_empty());
    assert_eq!(service.enabled("new-checkout"), Some(true));
}

#[test]
fn a_body_template_that_is_not_json_is_an_error_before_anything_is_sent() {
    let service = FlagService::start(&[("new-checkout", true)]);
    let addr = service.addr.clone();
    let (_host, action) = load_action("vigilo-feature-flag", move |s| {
        s.allowed_hosts = vec![addr.clone()];
        s.config = json!({
            "url": format!("http://{addr}/api/flags/{{{{labels.feature}}}}"),
            "body_template": "{\"enabled\": false, \"reason\": {{summary}}}",
        });
    });
    let err = action
        .try_run(&alert_for("new-checkout"))
        .unwrap()
        .unwrap_err();
    assert!(err.contains("does not render valid JSON"), "{err}");
    assert!(service.writes.lock().unwrap().is_empty());
}
