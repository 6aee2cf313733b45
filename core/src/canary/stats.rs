//! The statistics of a canary comparison: the Mann-Whitney U test on two distributions given as
//! *tie groups* (for each distinct value, in increasing order, how many canary and how many
//! baseline observations have it), and the location summaries the effect size is made of.
//!
//! Both kinds of data reduce to tie groups: two histogram deltas by merging their sorted bucket
//! lists (a bucket is one tie group: its observations are indistinguishable), in
//! O(buckets); two lists of samples by sorting them and grouping equal values, in O(n log n).
//! One U, one tie correction and one p-value then serve both.
//!
//! The p-value is the tie-corrected normal approximation with continuity correction, as scipy's
//! `mannwhitneyu(method="asymptotic")` and statrs' `mannwhitneyu` compute it; the normal tail is
//! statrs' [`Normal`]. The unit tests check it against statrs' sample-based implementation.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::metrics::HistogramSnapshot;

/// Which way the test looks, from the canary's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alternative {
    /// The canary is stochastically greater than the baseline.
    Greater,
    /// The canary is stochastically less than the baseline.
    Less,
    /// Either.
    TwoSided,
}

/// The result of one Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UTest {
    /// U of the canary: the number of (canary, baseline) pairs where the canary's value is
    /// greater, ties counting one half.
    pub u: f64,
    /// The p-value under the chosen alternative, in `[0, 1]`.
    pub p_value: f64,
}

/// Mann-Whitney U from tie groups `(canary count, baseline count)` in increasing order of value.
/// `None` if either side has no observation.
pub(crate) fn mann_whitney(
    groups: impl IntoIterator<Item = (u64, u64)>,
    alternative: Alternative,
) -> Option<UTest> {
    let (mut n1, mut n2) = (0.0f64, 0.0f64);
    let mut u1 = 0.0f64;
    let mut ties = 0.0f64;
    for (c, b) in groups {
        let (c, b) = (c as f64, b as f64);
        // Each canary value here beats every baseline value below and ties with those here.
        u1 += c * (n2 + b / 2.0);
        n1 += c;
        n2 += b;
        let t = c + b;
        ties += t * t * t - t;
    }
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let u2 = n1 * n2 - u1;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    // Every value tied: no evidence either way.
    let p_value = if variance > 0.0 {
        let z = (u - mu - 0.5) / variance.sqrt();
        (factor * Normal::standard().sf(z)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Some(UTest { u: u1, p_value })
}

/// Tie groups of two histogram deltas: their bucket lists merged by key.
pub(crate) fn bucket_groups<'a>(
    canary: &'a HistogramSnapshot,
    baseline: &'a HistogramSnapshot,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let mut c = canary.keyed_buckets().iter().peekable();
    let mut b = baseline.keyed_buckets().iter().peekable();
    std::iter::from_fn(move || match (c.peek(), b.peek()) {
        (Some(&&(kc, nc)), Some(&&(kb, nb))) => Some(if kc < kb {
            c.next();
            (nc, 0)
        } else if kb < kc {
            b.next();
            (0, nb)
        } else {
            c.next();
            b.next();
            (nc, nb)
        }),
        (Some(&&(_, nc)), None) => {
            c.next();
            Some((nc, 0))
        }
        (None, Some(&&(_, nb))) => {
            b.next();
            Some((0, nb))
        }
        (None, None) => None,
    })
}

/// Tie groups of two sample lists, each already sorted by `f64::total_cmp`.
pub(crate) fn sample_groups<'a>(
    canary: &'a [f64],
    baseline: &'a [f64],
) -> impl Iterator<Item = (u64, u64)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let value = match (canary.get(i), baseline.get(j)) {
            (Some(&c), Some(&b)) => {
                if c.total_cmp(&b).is_le() {
                    c
                } else {
                    b
                }
            }
            (Some(&c), None) => c,
            (None, Some(&b)) => b,
            (None, None) => return None,
        };
        let start = (i, j);
        while canary.get(i).is_some_and(|&v| v == value) {
            i += 1;
        }
        while baseline.get(j).is_some_and(|&v| v == value) {
            j += 1;
        }
        Some(((i - start.0) as u64, (j - start.1) as u64))
    })
}

/// Count, median and mean of one side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub count: u64,
    pub median: f64,
    pub mean: f64,
}

/// The summary of a histogram delta (the median within the buckets' 0.78 % error, the mean
/// exact); `None` if it is empty.
pub(crate) fn summarize_histogram(h: &HistogramSnapshot) -> Option<Summary> {
    Some(Summary {
        count: h.count(),
        median: h.quantile(0.5)?,
        mean: h.mean()?,
    })
}

/// The summary of sorted samples; `None` if there are none.
pub(crate) fn summarize_samples(sorted: &[f64]) -> Option<Summary> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        *sorted.get(n / 2)?
    } else {
        (sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0
    };
    Some(Summary {
        count: n as u64,
        median,
        mean: sorted.iter().sum::<f64>() / n as f64,
    })
}

/// What the effect size was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    Median,
    Mean,
}

/// The relative change of the canary from the baseline, `canary / baseline - 1`, on the medians,
/// or on the means when the baseline's median is 0 (a mostly-zero series such as an error rate,
/// whose median hides a rise). Infinite (with the sign of the change) when the baseline is 0 on
/// both and the canary is not; 0 when both are 0.
pub(crate) fn relative_change(canary: &Summary, baseline: &Summary) -> (f64, Basis) {
    let (c, b, basis) = if baseline.median != 0.0 {
        (canary.median, baseline.median, Basis::Median)
    } else {
        (canary.mean, baseline.mean, Basis::Mean)
    };
    let change = if b != 0.0 {
        (c - b) / b.abs()
    } else if c == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(c)
    };
    (change, basis)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use statrs::stats_tests::Alternative as StatrsAlt;
    use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

    use super::*;
    use crate::Registry;
    use crate::metrics::buckets;

    /// A histogram's observations as samples, each at its bucket's midpoint.
    fn expand(h: &HistogramSnapshot) -> Vec<f64> {
        h.keyed_buckets()
            .iter()
            .flat_map(|&(k, n)| std::iter::repeat_n(buckets::midpoint(k), n as usize))
            .collect()
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    fn ours(x: &[f64], y: &[f64], alt: Alternative) -> UTest {
        let (x, y) = (sorted(x.to_vec()), sorted(y.to_vec()));
        mann_whitney(sample_groups(&x, &y), alt).unwrap()
    }

    fn theirs(x: &[f64], y: &[f64], alt: Alternative) -> (f64, f64) {
        let alt = match alt {
            Alternative::Greater => StatrsAlt::Greater,
            Alternative::Less => StatrsAlt::Less,
            Alternative::TwoSided => StatrsAlt::TwoSided,
        };
        mannwhitneyu(
            x,
            y,
            MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
            alt,
        )
        .unwrap()
    }

    /// A small deterministic generator (xorshift), so the tests need no `rand`.
    fn uniform(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn textbook_example() {
        // Mann and Whitney's tortoise and hare race (the Wikipedia illustration): finishing
        // order THHHHHTTTTTH; U of the tortoises (ranks 1, 7, 8, 9, 10, 11) is 25, of the hares
        // 11.
        let order = "THHHHHTTTTTH";
        let place = |who| {
            order
                .chars()
                .enumerate()
                .filter(move |&(_, c)| c == who)
                .map(|(i, _)| (i + 1) as f64)
                .collect::<Vec<_>>()
        };
        let (tortoises, hares) = (place('T'), place('H'));
        let t = ours(&tortoises, &hares, Alternative::TwoSided);
        assert_eq!(t.u, 25.0);
        let h = ours(&hares, &tortoises, Alternative::TwoSided);
        assert_eq!(h.u, 11.0);
        // z = (25 - 18 - 0.5) / sqrt(6 * 6 * 13 / 12) = 1.0408; two-sided p = 0.2980.
        assert!((t.p_value - 0.2980).abs() < 1e-3, "{}", t.p_value);
        assert_eq!(t.p_value, h.p_value);
    }

    #[test]
    fn ties_and_scipy_reference() {
        // scipy.stats.mannwhitneyu([19, 22, 16, 29, 24], [20, 11, 17, 12],
        //   method="asymptotic") gives U = 17, p = 0.1111 (scipy's documented example).
        let male = [19.0, 22.0, 16.0, 29.0, 24.0];
        let female = [20.0, 11.0, 17.0, 12.0];
        let r = ours(&male, &female, Alternative::TwoSided);
        assert_eq!(r.u, 17.0);
        assert!((r.p_value - 0.1111).abs() < 1e-3, "{}", r.p_value);
        // Ties: [1, 2, 2, 3] vs [2, 3, 3, 4]: U counts half pairs.
        // 1 beats nothing, each 2 ties one 2 (2 × ½), 3 beats the 2 and ties the two 3s.
        let r = ours(
            &[1.0, 2.0, 2.0, 3.0],
            &[2.0, 3.0, 3.0, 4.0],
            Alternative::Less,
        );
        assert_eq!(r.u, 3.0);
    }

    #[test]
    fn agrees_with_statrs_on_samples() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..60 {
            let n1 = 3 + round % 17;
            let n2 = 2 + (round * 7) % 23;
            // Coarse values make ties frequent.
            let shift = (round % 5) as f64 * 0.5;
            let x: Vec<f64> = (0..n1)
                .map(|_| (uniform(&mut seed) * 8.0 + shift).floor())
                .collect();
            let y: Vec<f64> = (0..n2)
                .map(|_| (uniform(&mut seed) * 8.0).floor())
                .collect();
            for alt in [
                Alternative::Greater,
                Alternative::Less,
                Alternative::TwoSided,
            ] {
                let r = ours(&x, &y, alt);
                let (u, p) = theirs(&x, &y, alt);
                assert_eq!(r.u, u, "round {round} {alt:?}");
                if p.is_finite() {
                    assert!(
                        (r.p_value - p).abs() < 1e-9,
                        "{round} {alt:?}: {r:?} vs {p}"
                    );
                }
            }
        }
    }

    #[test]
    fn histogram_groups_equal_the_expanded_samples() {
        let registry = Registry::new();
        let a = registry.histogram("a_seconds", &[]).unwrap();
        let b = registry.histogram("b_seconds", &[]).unwrap();
        let mut seed = 7;
        for _ in 0..2000 {
            a.record(0.01 + uniform(&mut seed) * 0.05);
            b.record(0.025 + uniform(&mut seed) * 0.05);
        }
        let (ha, hb) = (a.snapshot(), b.snapshot());
        for alt in [
            Alternative::Greater,
            Alternative::Less,
            Alternative::TwoSided,
        ] {
            let bucketed = mann_whitney(bucket_groups(&ha, &hb), alt).unwrap();
            // The same data as samples (each at its bucket's midpoint), through statrs.
            let (u, p) = theirs(&expand(&ha), &expand(&hb), alt);
            assert_eq!(bucketed.u, u);
            assert!((bucketed.p_value - p).abs() < 1e-9, "{bucketed:?} vs {p}");
        }
        // The canary here is lower: a one-sided "greater" test finds nothing.
        let greater = mann_whitney(bucket_groups(&ha, &hb), Alternative::Greater).unwrap();
        assert!(greater.p_value > 0.99);
        let less = mann_whitney(bucket_groups(&ha, &hb), Alternative::Less).unwrap();
        assert!(less.p_value < 1e-6);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(mann_whitney([(0, 3)], Alternative::TwoSided), None);
        assert_eq!(mann_whitney(std::iter::empty(), Alternative::Less), None);
        // All tied: no evidence.
        let r = mann_whitney([(5, 9)], Alternative::TwoSided).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.u, 22.5);
    }

    #[test]
    fn summaries_and_relative_change() {
        let s = summarize_samples(&[1.0, 2.0, 3.0, 10.0]).unwrap();
        assert_eq!((s.count, s.median, s.mean), (4, 2.5, 4.0));
        assert_eq!(summarize_samples(&[]), None);
        let base = Summary {
            count: 4,
            median: 2.0,
            mean: 4.0,
        };
        let up = Summary {
            median: 2.4,
            ..base
        };
        let (c, basis) = relative_change(&up, &base);
        assert!((c - 0.2).abs() < 1e-12);
        assert_eq!(basis, Basis::Median);
        let zero = Summary {
            count: 4,
            median: 0.0,
            mean: 0.0,
        };
        let errors = Summary {
            count: 4,
            median: 0.0,
            mean: 0.5,
        };
        assert_eq!(
            relative_change(&errors, &zero),
            (f64::INFINITY, Basis::Mean)
        );
        assert_eq!(relative_change(&zero, &zero), (0.0, Basis::Mean));
        let half = Summary {
            median: 0.0,
            mean: 0.25,
            ..zero
        };
        assert_eq!(relative_change(&errors, &half), (1.0, Basis::Mean));
    }
}
