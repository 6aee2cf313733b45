//! The log-linear bucket layout shared by histogram cells and snapshots.
//!
//! A finite value's magnitude `m` in `[2^MIN_EXP, 2^MAX_EXP)` falls in octave `e = floor(log2 m)`
//! and in one of [`SUB_BUCKETS`] equal-width sub-buckets of that octave, read straight from the top
//! mantissa bits (no logarithm on the record path). A bucket spans `2^e/64`, at most 1/64 of
//! any value in it, so its midpoint is within **1/128 ≈ 0.78 %** of every value in it: that is the
//! relative error bound of every quantile. Magnitudes below `2^MIN_EXP` (about 9.3e-10) count in
//! a zero bucket; magnitudes at or above `2^MAX_EXP` (about 1.1e15) count in the top bucket. Min,
//! max, sum and count are exact whatever the value, and quantile estimates are clamped to
//! `[min, max]`.

/// Sub-buckets per octave (a power of two: read from the top mantissa bits).
pub const SUB_BUCKETS: usize = 64;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Smallest octave kept apart from zero: 2^-30 ≈ 9.3e-10.
pub const MIN_EXP: i32 = -30;
/// One past the largest octave: 2^50 ≈ 1.1e15.
pub const MAX_EXP: i32 = 50;
/// Octaves per sign.
pub(crate) const OCTAVES: usize = (MAX_EXP - MIN_EXP) as usize;
/// Relative error bound of a bucket midpoint, for magnitudes within range.
pub const RELATIVE_ERROR: f64 = 1.0 / (2.0 * SUB_BUCKETS as f64);

/// Where a value is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// Magnitude below 2^MIN_EXP.
    Zero,
    /// `negative`, octave index from MIN_EXP, sub-bucket.
    Sub {
        negative: bool,
        octave: usize,
        sub: usize,
    },
}

/// Locates a finite value.
#[inline]
pub(crate) fn locate(value: f64) -> Bucket {
    let bits = value.to_bits();
    let negative = bits >> 63 == 1;
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exp < MIN_EXP {
        return Bucket::Zero;
    }
    if exp >= MAX_EXP {
        return Bucket::Sub {
            negative,
            octave: OCTAVES - 1,
            sub: SUB_BUCKETS - 1,
        };
    }
    let sub = ((bits >> (52 - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    Bucket::Sub {
        negative,
        octave: (exp - MIN_EXP) as usize,
        sub,
    }
}

/// A bucket's signed key: 0 for zero, `±(octave * SUB_BUCKETS + sub + 1)` otherwise, so that keys
/// sort in the order of the values they hold.
#[inline]
pub(crate) fn key(negative: bool, octave: usize, sub: usize) -> i32 {
    let k = (octave * SUB_BUCKETS + sub + 1) as i32;
    if negative { -k } else { k }
}

/// The midpoint of the bucket with this key: the value a quantile reports.
#[doc(hidden)]
pub fn midpoint(key: i32) -> f64 {
    if key == 0 {
        return 0.0;
    }
    let index = (key.unsigned_abs() - 1) as usize;
    let octave = (index / SUB_BUCKETS) as i32 + MIN_EXP;
    let sub = (index % SUB_BUCKETS) as f64;
    let magnitude = 2f64.powi(octave) * (1.0 + (sub + 0.5) / SUB_BUCKETS as f64);
    if key < 0 { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(v: f64) -> i32 {
        match locate(v) {
            Bucket::Zero => 0,
            Bucket::Sub {
                negative,
                octave,
                sub,
            } => key(negative, octave, sub),
        }
    }

    #[test]
    fn midpoint_within_bound() {
        for v in [
            1e-9, 0.001, 0.5, 1.0, 1.5, 3.0, 80.0, 12345.678, 1e14, -2.5, -1e-3,
        ] {
            let mid = midpoint(key_of(v));
            assert!(((mid - v) / v).abs() <= RELATIVE_ERROR, "{v} -> {mid}");
        }
    }

    #[test]
    fn keys_are_ordered_like_values() {
        let values = [
            -1e10, -3.0, -1.0, -1e-5, 0.0, 1e-12, 1e-5, 1.0, 1.01, 3.0, 1e10, 1e300,
        ];
        let keys: Vec<i32> = values.iter().map(|&v| key_of(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    }
}
