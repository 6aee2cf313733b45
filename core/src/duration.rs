//! Humane durations for configuration files: `"500ms"`, `"1s"`, `"1m30s"`, `"2h"`, `"1d"`.
//!
//! A duration is one or more `<integer><unit>` terms with no spaces between them, units going
//! from the largest to the smallest, each at most once. Units: `d` (24 h), `h`, `m`, `s`, `ms`,
//! `us` and `ns`. `"0s"` is a valid (zero) duration; whether zero is allowed is up to the caller.
//!
//! ```
//! use std::time::Duration;
//! use vigilo::duration::{format_duration, parse_duration};
//!
//! assert_eq!(parse_duration("1m30s")?, Duration::from_secs(90));
//! assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
//! assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
//! assert!(parse_duration("-1s").is_err());
//! # Ok::<(), vigilo::duration::DurationError>(())
//! ```
//!
//! Use [`serde_duration`] to read and write a `Duration` field as such a string.

use std::time::Duration;

/// The units, largest first: name and length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// The accepted units, for error messages.
const UNIT_LIST: &str = "d, h, m, s, ms, us, ns";

/// Why a duration string was refused. Every variant carries the string as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string is empty or only whitespace.
    #[error("empty duration: expected a number and a unit such as \"1s\" or \"500ms\"")]
    Empty,
    /// The string starts with a minus sign.
    #[error("invalid duration {input:?}: durations cannot be negative")]
    Negative {
        /// The rejected string.
        input: String,
    },
    /// A number is not followed by a unit (`"5"`).
    #[error("invalid duration {input:?}: number without a unit (units: {UNIT_LIST})")]
    MissingUnit {
        /// The rejected string.
        input: String,
    },
    /// A unit is not one of the accepted ones (`"5x"`).
    #[error("invalid duration {input:?}: unknown unit {unit:?} (units: {UNIT_LIST})")]
    UnknownUnit {
        /// The rejected string.
        input: String,
        /// The unit that was not recognised.
        unit: String,
    },
    /// Something other than a non-negative integer stands where a number should (`"1.5s"`,
    /// `"s"`, `"1s 2ms"`).
    #[error("invalid duration {input:?}: expected an integer followed by a unit at {at:?}")]
    InvalidNumber {
        /// The rejected string.
        input: String,
        /// The rest of the string from where a number was expected.
        at: String,
    },
    /// Units repeat or go from smaller to larger (`"30s1m"`).
    #[error(
        "invalid duration {input:?}: units must go from the largest to the smallest, each once"
    )]
    UnitOrder {
        /// The rejected string.
        input: String,
    },
    /// The value does not fit in a [`Duration`].
    #[error("invalid duration {input:?}: too large")]
    Overflow {
        /// The rejected string.
        input: String,
    },
}

/// Parses a humane duration such as `"1s"`, `"500ms"` or `"1m30s"` (see the [module
/// docs](self) for the grammar). Leading and trailing whitespace is ignored.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative {
            input: input.to_owned(),
        });
    }
    let mut rest = s;
    let mut total: u128 = 0;
    // Index in UNITS of the last unit seen; the next must come strictly after it.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::InvalidNumber {
                input: input.to_owned(),
                at: rest.to_owned(),
            });
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(if after.is_empty() {
                DurationError::MissingUnit {
                    input: input.to_owned(),
                }
            } else {
                DurationError::InvalidNumber {
                    input: input.to_owned(),
                    at: after.to_owned(),
                }
            });
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            });
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(DurationError::UnitOrder {
                input: input.to_owned(),
            });
        }
        last_unit = Some(index);
        let overflow = || DurationError::Overflow {
            input: input.to_owned(),
        };
        let value: u128 = number.parse().map_err(|_| overflow())?;
        total = value
            .checked_mul(UNITS[index].1)
            .and_then(|term| total.checked_add(term))
            .ok_or_else(overflow)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::Overflow {
        input: input.to_owned(),
    })?;
    // The remainder is below 10^9 and so fits in a u32.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way [`parse_duration`] reads it, largest units first, exactly
/// (`"1h30m"`, `"1s500ms"`, `"0s"`).
pub fn format_duration(duration: Duration) -> String {
    let mut rest = duration.as_nanos();
    if rest == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, nanos) in UNITS {
        let n = rest / nanos;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
            rest -= n * nanos;
        }
    }
    out
}

/// Serde helpers for a `Duration` field written as a humane string:
/// `#[serde(with = "vigilo::duration::serde_duration")]`.
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Settings {
///     #[serde(with = "vigilo::duration::serde_duration")]
///     timeout: Duration,
/// }
///
/// let s: Settings = toml::from_str("timeout = \"1m30s\"").unwrap();
/// assert_eq!(s.timeout, Duration::from_secs(90));
/// assert!(toml::from_str::<Settings>("timeout = \"90 seconds\"").is_err());
/// ```
pub mod serde_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as a string such as `"1m30s"`.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*duration))
    }

    /// Reads a duration string such as `"1m30s"`; the error names the string and what is wrong.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn single_units() {
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("3h"), Duration::from_secs(3 * 3600));
        assert_eq!(ok("1d"), Duration::from_secs(86_400));
        assert_eq!(ok("7us"), Duration::from_micros(7));
        assert_eq!(ok("9ns"), Duration::from_nanos(9));
        assert_eq!(ok(" 5s\n"), Duration::from_secs(5));
    }

    #[test]
    fn combinations() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h1m1s1ms"), Duration::from_millis(3_661_001));
        assert_eq!(ok("1d12h"), Duration::from_secs(36 * 3600));
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("1500ms"), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
    }

    #[test]
    fn rejects_negative() {
        let Err(err) = parse_duration("-1s") else {
            panic!("-1s parsed")
        };
        assert!(matches!(err, DurationError::Negative { .. }));
        assert!(err.to_string().contains("\"-1s\""), "{err}");
    }

    #[test]
    fn rejects_unknown_and_missing_units() {
        let Err(err) = parse_duration("5x") else {
            panic!("5x parsed")
        };
        assert_eq!(
            err,
            DurationError::UnknownUnit {
                input: "5x".into(),
                unit: "x".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("\"5x\"") && msg.contains("\"x\""), "{msg}");
        assert!(matches!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("5"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_duration("1m30"),
            Err(DurationError::MissingUnit { .. })
        ));
    }

    #[test]
    fn rejects_bad_numbers() {
        for s in ["s", "1.5s", "1s 2ms", "+1s", "1_000ms", "ms5"] {
            assert!(
                matches!(parse_duration(s), Err(DurationError::InvalidNumber { .. })),
                "{s:?}: {:?}",
                parse_duration(s)
            );
        }
    }

    #[test]
    fn rejects_unit_order() {
        for s in ["30s1m", "1s1s", "1ms1s"] {
            assert!(
                matches!(parse_duration(s), Err(DurationError::UnitOrder { .. })),
                "{s:?}"
            );
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999d"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("999999999999999999d"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(1500),
            Duration::from_secs(90),
            Duration::from_secs(86_400 + 3600 + 61),
            Duration::new(3, 7),
        ] {
            let s = format_duration(d);
            assert_eq!(ok(&s), d, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }
}
