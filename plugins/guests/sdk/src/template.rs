//! A small `{{field}}` template language for message bodies, subjects and form fields.
//!
//! `render("[{{severity}}] {{summary}}", &Vars::new(&alert))` gives `[major] CPU at 93%`.
//! Spaces inside the braces are allowed (`{{ rule }}`); there are no loops, conditions or
//! filters. A `{{` without a closing `}}` and an unknown field name are errors (so that a typo
//! in the operator's configuration is reported, not silently sent), turned into
//! [`DeliveryError::Permanent`](crate::DeliveryError) by `?`.
//!
//! # Fields
//!
//! | field | value |
//! |---|---|
//! | `rule` | the rule's name |
//! | `metric` | the metric the rule watches |
//! | `severity` | `normal`, `info`, `warning`, `minor`, `major` or `critical` |
//! | `severity_label` | `Normal` … `Critical` |
//! | `severity_ko` | 정상, 무해, 주의, 위험, 긴급, 치명 |
//! | `severity_number` | 0 … 5 |
//! | `colour` (or `color`) | the severity's colour, `#rrggbb` |
//! | `previous` | the severity before, as `severity`; for a resolve, what it resolved from |
//! | `reported_severity` | `severity` while firing, `previous` for a resolve (what to show) |
//! | `peak` | the highest severity the item's problem reached, as `severity` |
//! | `status` | `firing` or `resolved` |
//! | `value`, `threshold` | the numbers that decided it (empty when absent) |
//! | `summary` | the `summary` annotation, or a generated line ([`Alert::summary`]) |
//! | `labels.NAME` | the label `NAME` (empty when absent) |
//! | `annotations.NAME` | the annotation `NAME` (empty when absent) |
//! | `at`, `since` | when it changed / when the previous state began, RFC 3339 UTC |
//! | `at_ms`, `since_ms` | the same in ms since the Unix epoch |
//! | `idempotency_key` | one per notification: the same for every attempt, different for every change |
//! | `fingerprint` | one per item: the same for its firing, escalations and resolve (empty for a digest) |
//! | `incident` | the host's incident number (empty if none) |
//! | `recipients` | every recipient, joined with `, ` |
//! | `recipient` | the one recipient a message is for, where the channel sends one message per recipient (else the first one, or empty) |
//!
//! A channel can add its own fields with [`Vars::set`].

use core::fmt;

use crate::{Alert, DeliveryError};

/// The values a template can use: the alert's fields plus extra ones set by the channel.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    alert: &'a Alert,
    extra: Vec<(String, String)>,
}

/// A template is malformed or names a field that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template: {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

impl From<TemplateError> for DeliveryError {
    fn from(e: TemplateError) -> Self {
        DeliveryError::Permanent(e.to_string())
    }
}

impl From<TemplateError> for String {
    fn from(e: TemplateError) -> Self {
        e.to_string()
    }
}

impl<'a> Vars<'a> {
    /// The fields of `alert`.
    pub fn new(alert: &'a Alert) -> Self {
        Vars {
            alert,
            extra: Vec::new(),
        }
    }

    /// Adds (or overrides) the field `name`, e.g. `recipient` for one message per recipient.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.extra.retain(|(k, _)| *k != name);
        self.extra.push((name, value.into()));
        self
    }

    /// The value of field `name`, or `None` if there is no such field.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.extra.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        let a = self.alert;
        if let Some(label) = name.strip_prefix("labels.") {
            return Some(a.label(label).unwrap_or_default().to_owned());
        }
        if let Some(ann) = name.strip_prefix("annotations.") {
            return Some(a.annotation(ann).unwrap_or_default().to_owned());
        }
        let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        Some(match name {
            "rule" => a.rule.clone(),
            "metric" => a.metric.clone(),
            "severity" => a.severity.name().to_owned(),
            "severity_label" => a.severity.label().to_owned(),
            "severity_ko" => a.severity.korean_name().to_owned(),
            "severity_number" => a.severity.number().to_string(),
            "colour" | "color" => a.severity.colour().to_owned(),
            "previous" => a.previous.name().to_owned(),
            "reported_severity" => a.reported_severity().name().to_owned(),
            "peak" => a.peak.name().to_owned(),
            "status" => a.status.name().to_owned(),
            "value" => number(a.value),
            "threshold" => number(a.threshold),
            "summary" => a.summary(),
            "at" => crate::time::rfc3339(a.at_ms),
            "since" => crate::time::rfc3339(a.since_ms),
            "at_ms" => a.at_ms.to_string(),
            "since_ms" => a.since_ms.to_string(),
            "idempotency_key" => a.idempotency_key.clone(),
            "fingerprint" => a.fingerprint.clone(),
            "incident" => a.incident.map(|i| i.to_string()).unwrap_or_default(),
            "recipients" => a.recipients.join(", "),
            "recipient" => a.recipients.first().cloned().unwrap_or_default(),
            _ => return None,
        })
    }
}

/// Renders `template` with `vars`, inserting values as they are.
pub fn render(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    render_with(template, vars, |out, v| out.push_str(v))
}

/// Renders `template` with `vars`, escaping each value for use inside a JSON string literal
/// (`"text": "{{summary}}"` stays valid JSON whatever the summary holds).
pub fn render_json(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    render_with(template, vars, |out, v| {
        let quoted = serde_json::Value::String(v.to_owned()).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
    })
}

fn render_with(
    template: &str,
    vars: &Vars<'_>,
    mut push: impl FnMut(&mut String, &str),
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError {
                message: format!(
                    "`{{{{` at byte {} is never closed",
                    template.len() - rest.len() + start
                ),
            });
        };
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| TemplateError {
            message: format!("unknown field `{name}` (see the SDK's template fields)"),
        })?;
        push(&mut out, &value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertStatus, Severity};

    pub(crate) fn alert() -> Alert {
        Alert {
            rule: "cpu-high".into(),
            metric: "host.cpu.usage".into(),
            labels: vec![("host".into(), "web-1".into())],
            annotations: vec![("summary".into(), "CPU \"hot\" on web-1".into())],
            severity: Severity::Major,
            previous: Severity::Warning,
            peak: Severity::Major,
            status: AlertStatus::Firing,
            value: Some(93.5),
            threshold: Some(80.0),
            since_ms: 1_700_000_000_000,
            at_ms: 1_700_000_060_000,
            idempotency_key: "k1".into(),
            fingerprint: "f1".into(),
            incident: Some(7),
            recipients: vec!["a@x".into(), "b@x".into()],
        }
    }

    #[test]
    fn renders_fields() {
        let a = alert();
        let v = Vars::new(&a);
        assert_eq!(
            render(
                "[{{severity}}] {{ rule }} {{value}}>{{threshold}} {{labels.host}}{{labels.nope}}",
                &v
            )
            .unwrap(),
            "[major] cpu-high 93.5>80 web-1"
        );
        assert_eq!(
            render("{{recipients}}|{{recipient}}", &v).unwrap(),
            "a@x, b@x|a@x"
        );
        let v = v.set("recipient", "b@x");
        assert_eq!(
            render("{{recipient}} {{severity_ko}}", &v).unwrap(),
            "b@x 긴급"
        );
        assert_eq!(
            render_json("{\"t\":\"{{summary}}\"}", &v).unwrap(),
            r#"{"t":"CPU \"hot\" on web-1"}"#
        );
        assert!(
            render("{{nope}}", &v)
                .unwrap_err()
                .to_string()
                .contains("unknown field `nope`")
        );
        assert!(render("x {{rule", &v).is_err());
        assert_eq!(render("no fields", &v).unwrap(), "no fields");
        assert_eq!(render("{{at}}", &v).unwrap(), "2023-11-14T22:14:20.000Z");
    }
}
