//! Annotation templates: `{{value}}`, `{{threshold}}` (plain numbers), `{{value_human}}`,
//! `{{threshold_human}}` (with the metric's unit: `92.3 %`, `23.5 GiB`, `12.3 ms`; see
//! [`crate::units`]), `{{severity}}`, `{{rule}}`, `{{metric}}` and `{{labels.NAME}}`, filled in
//! when a transition is made.

use crate::metrics::Labels;
use crate::units::{Unit, number};

/// What a template can refer to.
pub(crate) struct Context<'a> {
    pub rule: &'a str,
    pub metric: &'a str,
    pub severity: crate::Severity,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub labels: &'a Labels,
    /// The unit of `value` and `threshold` (the rule's, see [`Rule::unit`](super::Rule::unit)).
    pub unit: &'a Unit,
}

const VARIABLES: [&str; 7] = [
    "value",
    "threshold",
    "value_human",
    "threshold_human",
    "severity",
    "rule",
    "metric",
];

/// Splits a template into literal text and `{{ name }}` references.
fn pieces(template: &str) -> Result<Vec<(&str, Option<&str>)>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {template:?}"))?;
        out.push((&rest[..open], Some(after[..close].trim())));
        rest = &after[close + 2..];
    }
    out.push((rest, None));
    Ok(out)
}

/// Checks that a template only uses known variables.
pub(crate) fn check(template: &str) -> Result<(), String> {
    for (_, var) in pieces(template)? {
        if let Some(v) = var
            && !(VARIABLES.contains(&v) || v.strip_prefix("labels.").is_some_and(|l| !l.is_empty()))
        {
            return Err(format!(
                "unknown variable {{{{{v}}}}}: use value, threshold, value_human, threshold_human, \
                 severity, rule, metric or labels.NAME"
            ));
        }
    }
    Ok(())
}

/// Fills a checked template in. Unknown labels render as empty.
pub(crate) fn render(template: &str, ctx: &Context<'_>) -> String {
    let Ok(parts) = pieces(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len() + 16);
    for (text, var) in parts {
        out.push_str(text);
        match var {
            None => {}
            Some("value") => {
                out.push_str(&ctx.value.map(number).unwrap_or_else(|| "no data".into()))
            }
            Some("threshold") => out.push_str(&ctx.threshold.map(number).unwrap_or_default()),
            Some("value_human") => out.push_str(&ctx.unit.format_or_no_data(ctx.value)),
            Some("threshold_human") => out.push_str(
                &ctx.threshold
                    .map(|t| ctx.unit.format(t))
                    .unwrap_or_default(),
            ),
            Some("severity") => out.push_str(ctx.severity.name()),
            Some("rule") => out.push_str(ctx.rule),
            Some("metric") => out.push_str(ctx.metric),
            Some(other) => {
                if let Some(label) = other.strip_prefix("labels.") {
                    out.push_str(ctx.labels.get(label).unwrap_or(""));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let labels = Labels::from_pairs(&[("mount", "/data")]);
        let ctx = Context {
            rule: "disk",
            metric: "host_disk_usage_ratio",
            severity: crate::Severity::Major,
            value: Some(0.8312),
            threshold: Some(0.8),
            labels: &labels,
            unit: &Unit::of_metric("host_disk_usage_ratio", None),
        };
        assert_eq!(
            render(
                "{{rule}}: {{ labels.mount }} at {{value}} > {{threshold}} ({{severity}})",
                &ctx
            ),
            "disk: /data at 0.8312 > 0.8 (major)"
        );
        assert_eq!(
            render("{{value_human}} > {{ threshold_human }}", &ctx),
            "83.1 % > 80.0 %"
        );
        let no_data = Context { value: None, ..ctx };
        assert_eq!(render("{{value_human}}", &no_data), "no data");
        assert_eq!(number(1234.5678), "1235");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.000012), "1.200e-5");
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(check("{{valu}}").unwrap_err().contains("unknown variable"));
        assert!(check("{{value").unwrap_err().contains("unclosed"));
        assert!(check("plain {{labels.x}}").is_ok());
    }
}
