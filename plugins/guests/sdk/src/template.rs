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
//!
//! # Where values land
//!
//! Field values are alert data, which the operator does not control: render each template for
//! where its text goes, so every value is [encoded](crate::encode) for that place.
//! [`render_url`] for a URL, [`render_json`] for a JSON body, [`render_as`] with a
//! [`Context`] for anything else (a form body, a header, Slack text); [`render`] inserts values
//! as they are and is for plain text only. A value that cannot be encoded safely fails the
//! rendering, naming the field.

use core::fmt;

use crate::encode::{Context, EncodeError, encode};
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

/// Renders `template` with `vars`, inserting values as they are ([`Context::Text`]): for plain
/// text only, never for a URL, a header or a structured body.
pub fn render(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    render_as(template, vars, Context::Text)
}

/// Renders `template` with `vars`, escaping each value for use inside a JSON string literal
/// (`"text": "{{summary}}"` stays valid JSON whatever the summary holds):
/// [`render_as`] with [`Context::JsonString`].
pub fn render_json(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    render_as(template, vars, Context::JsonString)
}

/// Renders `template` with `vars`, each value [encoded](crate::encode) for `context` (the
/// template's own text is the operator's and is kept as written). A value that cannot be
/// encoded safely fails the rendering, naming the field: with `?`, a permanent delivery error.
///
/// ```
/// use vigilo_plugin_sdk::encode::Context;
/// use vigilo_plugin_sdk::template::{Vars, render_as};
/// use vigilo_plugin_sdk::{Alert, Severity};
///
/// let alert = Alert::builder("deploy", Severity::Major).label("team", "<!channel> & ops").build();
/// let text = render_as("Team {{labels.team}} paged", &Vars::new(&alert), Context::Markup)?;
/// assert_eq!(text, "Team &lt;!channel&gt; &amp; ops paged");
/// # Ok::<(), vigilo_plugin_sdk::template::TemplateError>(())
/// ```
pub fn render_as(
    template: &str,
    vars: &Vars<'_>,
    context: Context,
) -> Result<String, TemplateError> {
    render_with(template, vars, |_, value| encode(value, context))
}

/// Renders a request body template for its media type `content_type`: each value encoded by
/// [`Context::for_body`] (JSON → [`Context::JsonString`], a form →
/// [`Context::QueryValue`], else as it is); a JSON body must then parse as JSON, else the
/// rendering fails ("`body_template` does not render valid JSON: …").
pub fn render_body(
    template: &str,
    vars: &Vars<'_>,
    content_type: &str,
) -> Result<String, TemplateError> {
    let context = Context::for_body(content_type);
    let body = render_as(template, vars, context)?;
    if context == Context::JsonString
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&body)
    {
        return Err(TemplateError {
            message: format!("`body_template` does not render valid JSON: {e}"),
        });
    }
    Ok(body)
}

/// Renders a URL template (`http://flags.internal/api/flags/{{labels.feature}}?by={{rule}}`),
/// each value encoded for the part of the URL it lands in, as the template's own text places
/// it: in the scheme or host, [`Context::Host`]; in the path, [`Context::PathSegment`]; in the
/// query or fragment, [`Context::QueryValue`]. So no value can change where the request goes:
/// `../admin/kill-all` in the path, or an empty value there, fails the rendering (permanently,
/// naming the field), and `?`, `#`, `&` or `%2e%2e%2f` stay inside their segment or parameter.
///
/// ```
/// use vigilo_plugin_sdk::template::{Vars, render_url};
/// use vigilo_plugin_sdk::{Alert, Severity};
///
/// let tpl = "http://flags.internal/api/flags/{{labels.feature}}?reason={{summary}}";
/// let ok = Alert::builder("canary", Severity::Critical)
///     .label("feature", "new checkout")
///     .annotation("summary", "p99 > 2s & rising")
///     .build();
/// assert_eq!(
///     render_url(tpl, &Vars::new(&ok))?,
///     "http://flags.internal/api/flags/new%20checkout?reason=p99%20%3E%202s%20%26%20rising"
/// );
/// let hostile = Alert::builder("canary", Severity::Critical)
///     .label("feature", "../admin/kill-all")
///     .build();
/// let refused = render_url(tpl, &Vars::new(&hostile)).unwrap_err();
/// assert!(refused.to_string().contains("labels.feature"));
/// # Ok::<(), vigilo_plugin_sdk::template::TemplateError>(())
/// ```
pub fn render_url(template: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    render_with(template, vars, |so_far, value| {
        encode(value, url_context(so_far))
    })
}

/// Where a value lands in a URL whose text so far is `so_far`. Encoded values never hold `/`,
/// `?` or `#`, so only the template's own text moves from one part to the next.
fn url_context(so_far: &str) -> Context {
    let Some(at) = so_far.find("://") else {
        return Context::Host;
    };
    let rest = &so_far[at + 3..];
    if rest.contains(['?', '#']) {
        Context::QueryValue
    } else if rest.contains('/') {
        Context::PathSegment
    } else {
        Context::Host
    }
}

fn render_with(
    template: &str,
    vars: &Vars<'_>,
    mut encoded: impl FnMut(&str, &str) -> Result<String, EncodeError>,
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
        let value = encoded(&out, &value).map_err(|e| TemplateError {
            message: format!("field `{name}`: {e}"),
        })?;
        out.push_str(&value);
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
        let tpl = "http://h:8080/api/{{labels.host}}/x?q={{summary}}#{{rule}}";
        assert_eq!(
            render_url(tpl, &v).unwrap(),
            "http://h:8080/api/web-1/x?q=CPU%20%22hot%22%20on%20web-1#cpu-high"
        );
        let v2 = Vars::new(&a).set("evil", "../admin/kill-all");
        let e = render_url("http://h/api/{{evil}}", &v2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field `evil`") && e.contains("URL path segment"),
            "{e}"
        );
        let e = render_url("http://{{evil}}/x", &v2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("URL host"), "{e}");
        assert_eq!(
            render_url("http://h/api?x={{evil}}", &v2).unwrap(),
            "http://h/api?x=..%2Fadmin%2Fkill-all"
        );
        assert_eq!(render("no fields", &v).unwrap(), "no fields");
        assert_eq!(render("{{at}}", &v).unwrap(), "2023-11-14T22:14:20.000Z");
    }
}
