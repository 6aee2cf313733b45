//! Judging one metric in one window, and scoring a window's metrics (the formula is in the
//! module documentation of [`crate::canary`]).

use std::collections::BTreeMap;

use super::report::{GroupScore, MetricResult, MetricVerdict, Scored, SideSummary, Verdict};
use super::spec::{CanaryMetric, CanarySpec, Direction, OnMissing};
use super::stats::{self, Alternative, Basis, Summary};
use crate::metrics::HistogramSnapshot;

/// One group's data for one metric in one window.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Data<'a> {
    /// The merged delta of the group's histogram series.
    Histogram(&'a HistogramSnapshot),
    /// The group's samples, sorted by `f64::total_cmp`.
    Samples(&'a [f64]),
}

impl Data<'_> {
    fn summary(&self) -> Option<Summary> {
        match self {
            Data::Histogram(h) => stats::summarize_histogram(h),
            Data::Samples(s) => stats::summarize_samples(s),
        }
    }
}

/// One group's side: how many series it has and their data (`None`: no series, or series of a
/// kind that does not match the other side's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side<'a> {
    pub series: usize,
    pub data: Option<Data<'a>>,
}

fn side_summary(side: &Side<'_>, summary: Option<&Summary>) -> SideSummary {
    SideSummary {
        series: side.series,
        count: summary.map_or(0, |s| s.count),
        median: summary.map(|s| s.median),
        mean: summary.map(|s| s.mean),
    }
}

fn percent(x: f64) -> String {
    format!("{:+.1} %", x * 100.0)
}

/// Compares `canary` with `baseline` for `metric`.
pub(crate) fn judge(
    spec: &CanarySpec,
    metric: &CanaryMetric,
    canary: Side<'_>,
    baseline: Side<'_>,
) -> MetricResult {
    let tolerance = spec.tolerance_of(metric);
    let (c_sum, b_sum) = (
        canary.data.and_then(|d| d.summary()),
        baseline.data.and_then(|d| d.summary()),
    );
    let mut result = MetricResult {
        metric: metric.metric.clone(),
        group: metric.group.clone(),
        weight: metric.weight,
        direction: metric.direction,
        critical: metric.critical,
        tolerance,
        verdict: MetricVerdict::NoData,
        reason: String::new(),
        p_value: None,
        u: None,
        effect: None,
        effect_basis: None,
        canary: side_summary(&canary, c_sum.as_ref()),
        baseline: side_summary(&baseline, b_sum.as_ref()),
    };
    let (verdict, reason) = match (canary.series, baseline.series, &c_sum, &b_sum) {
        (0, 0, _, _) => (
            MetricVerdict::MissingInBoth,
            "missing in both: no series of this metric in the canary or the baseline".to_owned(),
        ),
        (0, _, _, _) => (
            MetricVerdict::MissingInCanary,
            format!(
                "missing in canary: no series with {}={:?}",
                spec.label, spec.canary
            ),
        ),
        (_, 0, _, _) => (
            MetricVerdict::MissingInBaseline,
            format!(
                "missing in baseline: no series with {}={:?}",
                spec.label, spec.baseline
            ),
        ),
        (_, _, None, None) => (
            MetricVerdict::NoData,
            "no data: neither group has an observation in this window".to_owned(),
        ),
        (_, _, None, Some(b)) => (
            MetricVerdict::MissingInCanary,
            format!(
                "missing in canary: no observation in this window (the baseline has {})",
                b.count
            ),
        ),
        (_, _, Some(c), None) => (
            MetricVerdict::MissingInBaseline,
            format!(
                "missing in baseline: no observation in this window (the canary has {})",
                c.count
            ),
        ),
        (_, _, Some(c), Some(b)) => {
            return compare(spec, metric, canary, baseline, (c, b), result);
        }
    };
    result.verdict = verdict;
    result.reason = reason;
    result
}

/// Both sides have data: the test and the effect size.
fn compare(
    spec: &CanarySpec,
    metric: &CanaryMetric,
    canary: Side<'_>,
    baseline: Side<'_>,
    (c, b): (&Summary, &Summary),
    mut result: MetricResult,
) -> MetricResult {
    let alternative = match metric.direction {
        Direction::HigherIsBad => Alternative::Greater,
        Direction::LowerIsBad => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    };
    let test = match (canary.data, baseline.data) {
        (Some(Data::Histogram(x)), Some(Data::Histogram(y))) => {
            stats::mann_whitney(stats::bucket_groups(x, y), alternative)
        }
        (Some(Data::Samples(x)), Some(Data::Samples(y))) => {
            stats::mann_whitney(stats::sample_groups(x, y), alternative)
        }
        _ => None,
    };
    let Some(test) = test else {
        // Both sides have observations, so only a kind mismatch gets here.
        result.verdict = MetricVerdict::NoData;
        result.reason = "the two groups' series are of different kinds: not compared".to_owned();
        return result;
    };
    let tolerance = result.tolerance;
    let (effect, basis) = stats::relative_change(c, b);
    let basis_name = match basis {
        Basis::Median => "median",
        Basis::Mean => "mean",
    };
    result.p_value = Some(test.p_value);
    result.u = Some(test.u);
    result.effect = effect.is_finite().then_some(effect);
    result.effect_basis = Some(basis_name);
    let significant = test.p_value < spec.alpha;
    let beyond = match metric.direction {
        Direction::HigherIsBad => effect > tolerance,
        Direction::LowerIsBad => effect < -tolerance,
        Direction::Either => effect.abs() > tolerance,
    };
    let (cv, bv) = match basis {
        Basis::Median => (c.median, b.median),
        Basis::Mean => (c.mean, b.mean),
    };
    let change = if effect.is_finite() {
        format!("{} ({basis_name} {cv:.6} vs {bv:.6})", percent(effect))
    } else {
        format!("{basis_name} {cv:.6} where the baseline's is 0")
    };
    let p = format!("p = {:.3e}", test.p_value);
    let tol = format!("{:.1} %", tolerance * 100.0);
    let (verdict, reason) = if significant && beyond {
        (
            MetricVerdict::Fail,
            format!(
                "canary {change}: beyond the {tol} tolerance, significant ({p} < {})",
                spec.alpha
            ),
        )
    } else if significant {
        (
            MetricVerdict::Pass,
            format!("canary {change}: significant ({p}) but within the {tol} tolerance"),
        )
    } else {
        let way = match metric.direction {
            Direction::HigherIsBad => " upwards",
            Direction::LowerIsBad => " downwards",
            Direction::Either => "",
        };
        (
            MetricVerdict::Pass,
            format!(
                "no significant difference{way} ({p} ≥ {}); canary {change}",
                spec.alpha
            ),
        )
    };
    result.verdict = verdict;
    result.reason = reason;
    result
}

/// Whether a result takes part in the score, and whether it counts as passed.
fn scored(spec: &CanarySpec, verdict: MetricVerdict) -> Option<bool> {
    match verdict {
        MetricVerdict::Pass => Some(true),
        MetricVerdict::Fail => Some(false),
        v if v.is_missing() && spec.on_missing == OnMissing::Fail => Some(false),
        _ => None,
    }
}

/// Scores a window's metric results (in the order of `spec.metrics`).
pub(crate) fn score(spec: &CanarySpec, metrics: Vec<MetricResult>) -> Scored {
    // Group weights default to the total weight of the group's metrics.
    let mut groups: BTreeMap<&str, GroupScore> = BTreeMap::new();
    for m in &spec.metrics {
        let g = groups
            .entry(m.group.as_str())
            .or_insert_with(|| GroupScore {
                group: m.group.clone(),
                weight: 0.0,
                passed_weight: 0.0,
                scored_weight: 0.0,
                score: None,
            });
        g.weight += m.weight;
    }
    for (name, w) in &spec.group_weights {
        if let Some(g) = groups.get_mut(name.as_str()) {
            g.weight = *w;
        }
    }
    let mut critical_failed = Vec::new();
    for r in &metrics {
        let Some(passed) = scored(spec, r.verdict) else {
            continue;
        };
        if let Some(g) = groups.get_mut(r.group.as_str()) {
            g.scored_weight += r.weight;
            if passed {
                g.passed_weight += r.weight;
            }
        }
        if r.critical && !passed {
            critical_failed.push(r.metric.as_str());
        }
    }
    let (mut total, mut weights) = (0.0, 0.0);
    for g in groups.values_mut() {
        if g.scored_weight > 0.0 {
            let s = 100.0 * g.passed_weight / g.scored_weight;
            g.score = Some(s);
            total += g.weight * s;
            weights += g.weight;
        }
    }
    let (score, mut note) = if weights > 0.0 {
        (total / weights, None)
    } else {
        (
            0.0,
            Some("nothing could be scored: no metric had data in both groups".to_owned()),
        )
    };
    let verdict = if !critical_failed.is_empty() {
        note = Some(format!(
            "critical metric failed: {}",
            critical_failed.join(", ")
        ));
        Verdict::Fail
    } else if note.is_some() {
        Verdict::Fail
    } else if score >= spec.pass {
        Verdict::Pass
    } else if score >= spec.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Scored {
        score,
        verdict,
        note,
        groups: groups.into_values().collect(),
        metrics,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn spec() -> CanarySpec {
        CanarySpec::new("t")
            .metric(
                CanaryMetric::new("latency_seconds", Direction::HigherIsBad)
                    .weight(3.0)
                    .group("latency"),
            )
            .metric(CanaryMetric::new("errors_total", Direction::HigherIsBad).group("errors"))
            .metric(CanaryMetric::new("requests_total", Direction::LowerIsBad).group("errors"))
    }

    fn samples(v: &[f64]) -> Side<'_> {
        Side {
            series: 1,
            data: Some(Data::Samples(v)),
        }
    }

    #[test]
    fn judge_each_way() {
        let s = spec();
        let base: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 20)).collect();
        let worse: Vec<f64> = base.iter().map(|v| v * 1.3).collect();
        let slightly: Vec<f64> = base.iter().map(|v| v * 1.03).collect();
        let latency = &s.metrics[0];
        let r = judge(&s, latency, samples(&worse), samples(&base));
        assert_eq!(r.verdict, MetricVerdict::Fail, "{}", r.reason);
        assert!(r.reason.contains("+30.0 %"), "{}", r.reason);
        let r = judge(&s, latency, samples(&slightly), samples(&base));
        assert_eq!(r.verdict, MetricVerdict::Pass, "{}", r.reason);
        assert!(r.reason.contains("within"), "{}", r.reason);
        // Better is not worse.
        let r = judge(&s, latency, samples(&base), samples(&worse));
        assert_eq!(r.verdict, MetricVerdict::Pass, "{}", r.reason);
        let requests = &s.metrics[2];
        let r = judge(&s, requests, samples(&base), samples(&worse));
        assert_eq!(r.verdict, MetricVerdict::Fail, "{}", r.reason);
        let none = Side {
            series: 0,
            data: None,
        };
        let r = judge(&s, latency, none, samples(&base));
        assert_eq!(r.verdict, MetricVerdict::MissingInCanary);
        assert!(r.reason.starts_with("missing in canary"));
        let empty = samples(&[]);
        let r = judge(&s, latency, samples(&base), empty);
        assert_eq!(r.verdict, MetricVerdict::MissingInBaseline);
        assert_eq!(
            judge(&s, latency, empty, empty).verdict,
            MetricVerdict::NoData
        );
    }

    fn result(s: &CanarySpec, i: usize, verdict: MetricVerdict) -> MetricResult {
        let empty: Side<'_> = Side {
            series: 0,
            data: None,
        };
        let mut r = judge(s, &s.metrics[i], empty, empty);
        r.verdict = verdict;
        r
    }

    #[test]
    fn score_formula() {
        use MetricVerdict::*;
        let mut s = spec();
        // Latency (weight 3, its group weighs 3) fails; errors group (weight 2) all pass:
        // (3 × 0 + 2 × 100) / 5 = 40.
        let r = score(
            &s,
            vec![
                result(&s, 0, Fail),
                result(&s, 1, Pass),
                result(&s, 2, Pass),
            ],
        );
        assert!((r.score - 40.0).abs() < 1e-9);
        assert_eq!(r.verdict, Verdict::Fail);
        // Group weights rebalance: latency 1, errors 9 → 90, pass.
        s.group_weights.insert("latency".into(), 1.0);
        s.group_weights.insert("errors".into(), 9.0);
        let r = score(
            &s,
            vec![
                result(&s, 0, Fail),
                result(&s, 1, Pass),
                result(&s, 2, Pass),
            ],
        );
        assert!((r.score - 90.0).abs() < 1e-9, "{}", r.score);
        assert_eq!(r.verdict, Verdict::Pass);
        // Missing counts as failed by default, is left out with on_missing = ignore.
        let r = score(
            &s,
            vec![
                result(&s, 0, Pass),
                result(&s, 1, MissingInCanary),
                result(&s, 2, Pass),
            ],
        );
        assert!((r.score - 55.0).abs() < 1e-9, "{}", r.score);
        s.on_missing = OnMissing::Ignore;
        let r = score(
            &s,
            vec![
                result(&s, 0, Pass),
                result(&s, 1, MissingInCanary),
                result(&s, 2, NoData),
            ],
        );
        assert!((r.score - 100.0).abs() < 1e-9, "{}", r.score);
        // A critical metric's failure fails the run whatever the score.
        s.metrics[1].critical = true;
        s.on_missing = OnMissing::Fail;
        let r = score(
            &s,
            vec![
                result(&s, 0, Pass),
                result(&s, 1, Fail),
                result(&s, 2, Pass),
            ],
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.note.unwrap().contains("errors_total"));
        // Nothing scored: fail, with a note.
        let r = score(
            &s,
            vec![
                result(&s, 0, NoData),
                result(&s, 1, NoData),
                result(&s, 2, NoData),
            ],
        );
        assert_eq!((r.score, r.verdict), (0.0, Verdict::Fail));
    }
}
