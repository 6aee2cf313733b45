//! Where each canary stands, as the status board shows it: read back from the score and
//! verdict series its runs publish.

use serde::Serialize;

use super::{SCORE_SERIES, VERDICT_SERIES, Verdict};
use crate::metrics::{MetricKind, Registry};

/// A canary's last published score and, once a run completed, its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryStatus {
    /// The canary's name.
    pub canary: String,
    /// The score after the last interval compared, 0–100.
    pub score: Option<f64>,
    /// The verdict of the completed run (`None` while a run is going or none completed).
    pub verdict: Option<Verdict>,
}

/// The canaries whose runs published a score or a verdict in `registry`, by name.
pub(crate) fn statuses(registry: &Registry) -> Vec<CanaryStatus> {
    let mut out: Vec<CanaryStatus> = Vec::new();
    for (series, is_score) in [(SCORE_SERIES, true), (VERDICT_SERIES, false)] {
        for info in registry.series_of(series) {
            let Some(name) = info.labels.get("canary") else {
                continue;
            };
            if info.kind != MetricKind::Gauge {
                continue;
            }
            let Ok(gauge) = registry.gauge(series, &[("canary", name)]) else {
                continue;
            };
            let value = gauge.value();
            let at = match out.iter().position(|c| c.canary == name) {
                Some(i) => i,
                None => {
                    out.push(CanaryStatus {
                        canary: name.to_owned(),
                        score: None,
                        verdict: None,
                    });
                    out.len() - 1
                }
            };
            if let Some(c) = out.get_mut(at) {
                if is_score {
                    c.score = Some(value);
                } else {
                    c.verdict = Verdict::from_gauge(value);
                }
            }
        }
    }
    out.sort_by(|a, b| a.canary.cmp(&b.canary));
    out
}
