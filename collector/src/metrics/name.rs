//! Prometheus naming rules for metric and label names.

use super::MetricError;

/// Checks a metric name against Prometheus' `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn validate_metric_name(name: &str) -> Result<(), MetricError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(MetricError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Checks label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed) and that none repeats.
pub fn validate_labels(metric: &str, labels: &[(&str, &str)]) -> Result<(), MetricError> {
    for (i, (label, _)) in labels.iter().enumerate() {
        let mut chars = label.chars();
        let ok = match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !label.starts_with("__")
            }
            _ => false,
        };
        if !ok {
            return Err(MetricError::InvalidLabelName {
                metric: metric.to_owned(),
                label: (*label).to_owned(),
            });
        }
        if labels[..i].iter().any(|(other, _)| other == label) {
            return Err(MetricError::DuplicateLabel {
                metric: metric.to_owned(),
                label: (*label).to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for good in ["a", "_a", "a:b_c9", "http_requests_total", ":x"] {
            assert!(validate_metric_name(good).is_ok(), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert!(validate_metric_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(validate_labels("m", &[("a", "x"), ("_b9", "")]).is_ok());
        for bad in ["", "9", "a:b", "__reserved", "a-b"] {
            assert!(validate_labels("m", &[(bad, "v")]).is_err(), "{bad}");
        }
        assert!(matches!(
            validate_labels("m", &[("a", "1"), ("a", "2")]),
            Err(MetricError::DuplicateLabel { .. })
        ));
    }
}
