//! `timeleft`: the seconds until the series reaches a target, from the least-squares line
//! through the window's samples.
//!
//! The fit is Prometheus's `predict_linear`: ordinary least squares over the samples inside
//! the window, with time measured from the evaluation, so the line's intercept is its value
//! *now* (`f(now)`) and its slope `b` is per second. What is reported follows Zabbix's
//! `timeleft`: the nearest future moment the line meets the target, in seconds from now:
//!
//! - `(target − f(now)) / b` when the line moves toward the target;
//! - `0` when `f(now)` is exactly the target;
//! - `1.7976931348623157e308` (`f64::MAX`, Zabbix's "cannot be reached") when the line is flat
//!   or moves away, including when it already crossed the target in the past: a level of the
//!   value itself is a plain threshold rule's job.
//!
//! Rules on it use `comparison = "below"` with thresholds in seconds (`threshold = "4h"` is
//! read as 14400): "full in less than 4 h". It needs two samples at distinct moments in the
//! window; a histogram has no value. The alert carries `time_left` (rounded down, to the minute past an hour; or `never`) and
//! `reaches_target_at` (RFC 3339) annotations.

use std::time::Duration;

use super::{Aggregation, Params, Scalars};
use crate::clock::Timestamp;

/// The settings of a `timeleft` aggregation (`[rule.timeleft]`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TimeLeft {
    /// The value whose reaching is predicted (e.g. `1.0` for a usage ratio: full).
    pub target: f64,
}

impl TimeLeft {
    /// The value reported when the target is not reached in the future (Zabbix's).
    pub const NEVER: f64 = f64::MAX;

    /// Predicts when the series reaches `target`.
    pub fn new(target: f64) -> Self {
        TimeLeft { target }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.target.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "timeleft target {} is not a finite number",
                self.target
            ))
        }
    }

    /// The seconds left at `s.now`, or `None` without two samples at distinct moments.
    pub(super) fn over(&self, s: &Scalars<'_>) -> Option<f64> {
        let (at_now, slope) = fit(s)?;
        Some(time_left(at_now, slope, self.target))
    }

    pub(super) fn annotations(&self, value: f64, now: Timestamp) -> Vec<(&'static str, String)> {
        if !(0.0..1e12).contains(&value) {
            return vec![("time_left", "never".to_owned())];
        }
        let secs = value.floor();
        // Whole minutes past an hour (an estimate, not a countdown), rounded down: never
        // more time than the line gives.
        let shown = if secs >= 3600.0 {
            (secs / 60.0).floor() * 60.0
        } else {
            secs
        };
        let at = now + Duration::from_secs_f64(secs);
        vec![
            (
                "time_left",
                crate::duration::format_duration(Duration::from_secs_f64(shown)),
            ),
            ("reaches_target_at", at.to_string()),
        ]
    }
}

pub(super) fn parse(name: &str, params: &Params) -> Option<Result<Aggregation, String>> {
    if name != "timeleft" {
        return None;
    }
    Some(params.timeleft.map(Aggregation::TimeLeft).ok_or_else(|| {
        "timeleft needs a target: add [rule.timeleft] with target = the value to predict \
         (e.g. 1.0 for a usage ratio)"
            .to_owned()
    }))
}

/// The least-squares line through the window's samples, time measured in seconds from
/// `s.now`: `(value at now, slope per second)`. `None` without two distinct moments.
pub(super) fn fit(s: &Scalars<'_>) -> Option<(f64, f64)> {
    let x = |t: Timestamp| (t.as_nanos() - s.now.as_nanos()) as f64 / 1e9;
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for &(t, v) in s.in_window() {
        n += 1.0;
        sx += x(t);
        sy += v;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(t, v) in s.in_window() {
        let dx = x(t) - mx;
        sxx += dx * dx;
        sxy += dx * (v - my);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

/// Zabbix's `timeleft` for a line at `at_now` moving by `slope` per second.
pub(super) fn time_left(at_now: f64, slope: f64, target: f64) -> f64 {
    if at_now == target {
        0.0
    } else if (slope > 0.0 && at_now < target) || (slope < 0.0 && at_now > target) {
        let t = (target - at_now) / slope;
        if t.is_finite() { t } else { TimeLeft::NEVER }
    } else {
        TimeLeft::NEVER
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Prometheus's `predict_linear(v[range], 0)` written as its source does: sums of x, y,
    /// xy and x² with x the sample time minus the evaluation time, then
    /// `slope = cov(x, y) / var(x)`, `intercept = mean(y) − slope · mean(x)`.
    fn prometheus_predict_linear(samples: &[(f64, f64)], eval: f64, ahead: f64) -> f64 {
        let n = samples.len() as f64;
        let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
        for &(t, v) in samples {
            let x = t - eval;
            sx += x;
            sy += v;
            sxy += x * v;
            sx2 += x * x;
        }
        let cov = sxy - sx * sy / n;
        let var = sx2 - sx * sx / n;
        let slope = cov / var;
        let intercept = sy / n - slope * sx / n;
        intercept + slope * ahead
    }

    #[test]
    fn the_fit_is_prometheus_predict_linear_and_the_answer_zabbix_timeleft() {
        // A noisy fill, by hand: t (s) and value.
        let raw = [
            (0.0, 9.0),
            (60.0, 13.0),
            (120.0, 13.0),
            (180.0, 19.0),
            (240.0, 21.0),
        ];
        let history: VecDeque<(Timestamp, f64)> = raw
            .iter()
            .map(|&(t, v)| (Timestamp::from_secs(1000 + t as i64), v))
            .collect();
        let now = Timestamp::from_secs(1000 + 240);
        let s = Scalars {
            history: &history,
            last: history[4],
            window: Duration::from_secs(300),
            now,
        };
        let (at_now, slope) = fit(&s).unwrap();
        // By hand: mean t = 120, mean v = 15; deviations of v: −6, −2, −2, 4, 6; Sxx = 36000,
        // Sxy = 120·6 + 60·2 + 0 + 60·4 + 120·6 = 1800 → slope 1/20 per s; at t = 240:
        // 15 + 120/20 = 21.
        assert!((slope - 0.05).abs() < 1e-12, "{slope}");
        assert!((at_now - 21.0).abs() < 1e-9, "{at_now}");
        let raw_abs: Vec<(f64, f64)> = raw.iter().map(|&(t, v)| (1000.0 + t, v)).collect();
        for ahead in [0.0, 600.0, 3600.0] {
            let prom = prometheus_predict_linear(&raw_abs, 1240.0, ahead);
            assert!(
                (at_now + slope * ahead - prom).abs() < 1e-9,
                "{ahead}: {prom}"
            );
        }
        // Zabbix's timeleft to 100: solve 21 + t/20 = 100 → t = 79 × 20 = 1580 s.
        let left = TimeLeft::new(100.0).over(&s).unwrap();
        assert!((left - 1580.0).abs() < 1e-6, "{left}");
        // Moving away from a target below, or one already crossed: never (f64::MAX).
        assert_eq!(TimeLeft::new(5.0).over(&s), Some(f64::MAX));
        assert_eq!(time_left(3.0, 0.0, 5.0), f64::MAX);
        // Approaching from above.
        assert_eq!(time_left(10.0, -0.5, 5.0), 10.0);
        assert_eq!(time_left(5.0, 1.0, 5.0), 0.0);
    }

    #[test]
    fn one_moment_has_no_line() {
        let history: VecDeque<(Timestamp, f64)> = [(Timestamp::from_secs(5), 1.0)].into();
        let s = Scalars {
            history: &history,
            last: history[0],
            window: Duration::from_secs(60),
            now: Timestamp::from_secs(5),
        };
        assert_eq!(TimeLeft::new(2.0).over(&s), None);
    }
}
