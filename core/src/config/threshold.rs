//! A threshold as written in a level table, or a `timeleft` target.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A threshold: a number, a string `"NN%"` meaning NN/100, or a duration (`"4h"`) meaning its
/// seconds (for `timeleft` rules, whose value is in seconds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Threshold(pub(super) f64);

/// Parses `"70%"`, `"99.5 %"` into a ratio (0.7, 0.995), and a duration (`"4h"`, `"30m"`) into
/// its seconds (14400, 1800).
pub(super) fn parse_threshold(s: &str) -> Result<f64, String> {
    let Some(number) = s.trim().strip_suffix('%') else {
        return crate::duration::parse_duration(s.trim())
            .map(|d| d.as_secs_f64())
            .map_err(|_| {
                format!(
                    "threshold {s:?} is not a number: write a number such as 0.7, a percentage \
                     such as \"70%\" or a duration such as \"4h\" (its seconds)"
                )
            });
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v / 100.0)
        .ok_or_else(|| {
            format!(
                "bad percentage {s:?}: expected a number followed by %, such as \"70%\" or \"99.5%\""
            )
        })
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a number, a percentage string such as \"70%\" or a duration such as \"4h\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                if v.is_finite() {
                    Ok(Threshold(v))
                } else {
                    Err(E::custom(format!("threshold {v} is not a finite number")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                parse_threshold(v).map(Threshold).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
