//! Units: what a metric's values measure, and the one way vigilo shows a value with its unit
//! (the web board, its charts, annotation templates, the host agent's terminal board).
//!
//! Where a unit comes from, first match wins:
//!
//! 1. the unit given to [`Registry::describe`](crate::Registry::describe) (or a `metrics`
//!    facade `describe_*!`): `bytes`, `seconds`, `milliseconds`, `ratio`, `percent`,
//!    `bytes_per_second`, `kibibytes`, `bits_per_second`, `celsius` …; another word is shown
//!    after the number as it is;
//! 2. the metric name's suffix, after a counter's `_total`: `_bytes`, `_seconds`, `_ratio`,
//!    `_percent`, `_celsius`, `_bits`, each optionally followed by `_per_second`
//!    (`host_network_receive_bytes_per_second`);
//! 3. otherwise none: a plain number.
//!
//! A rule's `rate` of a counter (`*_total`) is that unit per second (seconds per second is a
//! ratio: `rate(process_cpu_seconds_total)` is shown as a percentage); a `rate` of anything else
//! counts observations per second. How each unit is shown:
//!
//! | unit | raw | shown |
//! |---|---|---|
//! | none | `1234.5678`, `0.5` | `1235`, `0.5` (4 significant digits) |
//! | ratio | `0.9225` | `92.3 %` |
//! | percent | `92.25` | `92.3 %` |
//! | bytes | `25276182528` | `23.5 GiB` (binary prefixes) |
//! | seconds | `0.0123`, `90`, `7200` | `12.3 ms`, `1m 30s`, `2h 0m` |
//! | bits | `1500000` | `1.5 Mbit` (decimal prefixes) |
//! | per second | `3145728` bytes/s | `3.0 MiB/s` |
//!
//! ```
//! use vigilo::units::Unit;
//!
//! assert_eq!(Unit::of_metric("host_cpu_usage_ratio", None).format(0.9225), "92.3 %");
//! assert_eq!(Unit::of_metric("host_memory_used_bytes", None).format(25276182528.0), "23.5 GiB");
//! assert_eq!(Unit::of_metric("req_latency", Some("milliseconds")).format(12.5), "12.5 ms");
//! assert_eq!(Unit::of_rate("http_requests_total", None).format(12.5), "12.5/s");
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// What a unit measures once scaled to its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Ratio,
    Percent,
    Bytes,
    Seconds,
    Bits,
    Celsius,
}

/// A unit vigilo knows: its word (as Prometheus and the `metrics` crate spell it), what it
/// measures, and the factor from its values to the base's.
struct Known {
    word: &'static str,
    base: Base,
    factor: f64,
}

const KNOWN: &[Known] = &[
    Known {
        word: "ratio",
        base: Base::Ratio,
        factor: 1.0,
    },
    Known {
        word: "percent",
        base: Base::Percent,
        factor: 1.0,
    },
    Known {
        word: "bytes",
        base: Base::Bytes,
        factor: 1.0,
    },
    Known {
        word: "kibibytes",
        base: Base::Bytes,
        factor: 1024.0,
    },
    Known {
        word: "mebibytes",
        base: Base::Bytes,
        factor: 1_048_576.0,
    },
    Known {
        word: "gibibytes",
        base: Base::Bytes,
        factor: 1_073_741_824.0,
    },
    Known {
        word: "tebibytes",
        base: Base::Bytes,
        factor: 1_099_511_627_776.0,
    },
    Known {
        word: "seconds",
        base: Base::Seconds,
        factor: 1.0,
    },
    Known {
        word: "milliseconds",
        base: Base::Seconds,
        factor: 1e-3,
    },
    Known {
        word: "microseconds",
        base: Base::Seconds,
        factor: 1e-6,
    },
    Known {
        word: "nanoseconds",
        base: Base::Seconds,
        factor: 1e-9,
    },
    Known {
        word: "bits",
        base: Base::Bits,
        factor: 1.0,
    },
    Known {
        word: "kilobits",
        base: Base::Bits,
        factor: 1e3,
    },
    Known {
        word: "megabits",
        base: Base::Bits,
        factor: 1e6,
    },
    Known {
        word: "gigabits",
        base: Base::Bits,
        factor: 1e9,
    },
    Known {
        word: "terabits",
        base: Base::Bits,
        factor: 1e12,
    },
    Known {
        word: "celsius",
        base: Base::Celsius,
        factor: 1.0,
    },
];

/// Index of the ratio entry in [`KNOWN`] (what seconds per second become).
const RATIO: usize = 0;
/// Index of the percent entry in [`KNOWN`] (what `%` names).
const PERCENT: usize = 1;

/// Metric-name suffixes read as a unit, longest first where one ends another.
const SUFFIXES: [(&str, &str); 7] = [
    ("_milliseconds", "milliseconds"),
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio"),
    ("_percent", "percent"),
    ("_celsius", "celsius"),
    ("_bits", "bits"),
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Kind {
    /// A plain number.
    #[default]
    None,
    /// An entry of [`KNOWN`].
    Known(usize),
    /// A word vigilo does not know, shown after the number.
    Other(Arc<str>),
}

/// What a metric's values measure; [`format`](Self::format) shows a value with it.
///
/// The default is no unit (a plain number). Serialized as its [`name`](Self::name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unit {
    kind: Kind,
    per_second: bool,
}

impl Unit {
    /// No unit: a plain number.
    pub const NONE: Unit = Unit {
        kind: Kind::None,
        per_second: false,
    };

    /// A unit word as [`Registry::describe`](crate::Registry::describe) takes it: `bytes`,
    /// `milliseconds`, `ratio`, `bytes_per_second`, `count`, `count_per_second` … (any case).
    /// An unknown word is kept and shown after the number; an empty one, or `count`, is no
    /// unit.
    pub fn parse(word: &str) -> Unit {
        let word = word.trim().to_ascii_lowercase();
        let (stem, per_second) = match word
            .strip_suffix("_per_second")
            .or_else(|| word.strip_suffix("/s"))
        {
            Some(stem) => (stem, true),
            None => (word.as_str(), false),
        };
        let kind = match stem {
            "" | "count" | "1" => Kind::None,
            "%" => Kind::Known(PERCENT),
            s => match KNOWN.iter().position(|k| k.word == s) {
                Some(i) => Kind::Known(i),
                None => Kind::Other(Arc::from(word.as_str())),
            },
        };
        match kind {
            // An unknown word is shown whole, `_per_second` included.
            Kind::Other(_) => Unit {
                kind,
                per_second: false,
            },
            kind => Unit { kind, per_second },
        }
    }

    /// The unit of a metric's values: its described unit if it has one, else what its name
    /// says (see the [module docs](self)).
    pub fn of_metric(name: &str, described: Option<&str>) -> Unit {
        if let Some(word) = described.filter(|w| !w.trim().is_empty()) {
            return Unit::parse(word);
        }
        let name = name.strip_suffix("_total").unwrap_or(name);
        let (stem, per_second) = match name.strip_suffix("_per_second") {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        SUFFIXES
            .iter()
            .find(|(suffix, _)| stem.ends_with(suffix))
            .map_or(Unit::NONE, |(_, word)| Unit {
                per_second,
                ..Unit::parse(word)
            })
    }

    /// The unit of a rule's `rate` of the metric: the counter's unit per second for a
    /// `*_total` counter (seconds per second is a ratio), else observations per second (the
    /// rate of a histogram).
    pub fn of_rate(name: &str, described: Option<&str>) -> Unit {
        if !name.ends_with("_total") {
            return Unit {
                kind: Kind::None,
                per_second: true,
            };
        }
        let unit = Unit::of_metric(name, described);
        match unit.kind {
            _ if unit.per_second => unit,
            Kind::Known(i)
                if KNOWN
                    .get(i)
                    .is_some_and(|k| k.base == Base::Seconds && k.factor == 1.0) =>
            {
                Unit {
                    kind: Kind::Known(RATIO),
                    per_second: false,
                }
            }
            kind => Unit {
                kind,
                per_second: true,
            },
        }
    }

    /// The unit's word: `bytes`, `milliseconds`, `ratio`, `bytes/s`, `/s` for a plain rate,
    /// and the empty string for no unit.
    pub fn name(&self) -> String {
        let word = match &self.kind {
            Kind::None => "",
            Kind::Known(i) => KNOWN.get(*i).map_or("", |k| k.word),
            Kind::Other(w) => w,
        };
        if self.per_second {
            format!("{word}/s")
        } else {
            word.to_owned()
        }
    }

    /// True for a plain number.
    pub fn is_none(&self) -> bool {
        self.kind == Kind::None && !self.per_second
    }

    /// `value` as people read it, with the unit (see the table in the [module docs](self)).
    pub fn format(&self, value: f64) -> String {
        if !value.is_finite() {
            return number(value);
        }
        let known = match &self.kind {
            Kind::Known(i) => KNOWN.get(*i),
            Kind::None | Kind::Other(_) => None,
        };
        let text = match (&self.kind, known) {
            (Kind::Other(word), _) => format!("{} {word}", number(value)),
            (_, Some(k)) => {
                let v = value * k.factor;
                match k.base {
                    Base::Ratio => percent(v * 100.0),
                    Base::Percent => percent(v),
                    Base::Bytes => bytes(v),
                    Base::Seconds => seconds(v),
                    Base::Bits => bits(v),
                    Base::Celsius => format!("{} °C", significant(v, 3)),
                }
            }
            (_, None) => number(value),
        };
        if self.per_second {
            format!("{text}/s")
        } else {
            text
        }
    }

    /// [`format`](Self::format), or `no data` for `None`.
    pub fn format_or_no_data(&self, value: Option<f64>) -> String {
        value.map_or_else(|| "no data".to_owned(), |v| self.format(v))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// A plain number as people read it: whole numbers as they are (below 10^15), others to 4
/// significant digits (4 decimals below 1), an exponent when that would show 0
/// (`0.000012` → `1.200e-5`). What `{{value}}` shows in an annotation.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = if v.abs() >= 1.0 {
        4usize.saturating_sub(v.abs().log10() as usize + 1)
    } else {
        4
    };
    let s = trim_fraction(format!("{v:.digits$}"));
    if s == "0" || s == "-0" {
        format!("{v:.3e}")
    } else {
        s
    }
}

/// Drops the trailing zeros of a fraction, and its point if nothing is left after it.
fn trim_fraction(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// `v` to `digits` significant digits (fewer left of a large number's point are not cut),
/// trailing zeros of the fraction dropped.
fn significant(v: f64, digits: usize) -> String {
    let whole = if v.abs() >= 1.0 {
        v.abs().log10().floor() as usize + 1
    } else {
        0
    };
    let decimals = if v.abs() >= 1.0 {
        digits.saturating_sub(whole)
    } else if v == 0.0 {
        0
    } else {
        // Leading zeros after the point count for nothing: 0.0012 to 3 digits is 0.00120.
        let zeros = (-v.abs().log10()).floor() as usize;
        (zeros + digits).min(12)
    };
    trim_fraction(fixed(v, decimals))
}

/// `v` with `decimals` decimals, a half rounded away from zero as the decimal number `v` was
/// written as (`0.9225` as a percentage is `92.3`, although the nearest double is a hair
/// below 0.9225).
fn fixed(v: f64, decimals: usize) -> String {
    let f = 10f64.powi(i32::try_from(decimals).unwrap_or(12));
    let scaled = v * f;
    // A relative nudge far below any shown digit, far above the error of one product.
    let rounded = (scaled + scaled * 1e-12).round() / f;
    format!("{rounded:.decimals$}")
}

/// A percentage: one decimal from 0.1 % up (`92.3 %`, `100.0 %`), 2 significant digits below.
fn percent(p: f64) -> String {
    if p == 0.0 || p.abs() >= 0.1 {
        format!("{} %", fixed(p, 1))
    } else {
        format!("{} %", significant(p, 2))
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `23.5 GiB`.
fn bytes(v: f64) -> String {
    const PREFIXES: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if v.abs() < 1024.0 {
        return format!("{} B", significant(v, 3));
    }
    let mut scaled = v / 1024.0;
    let mut unit = PREFIXES[0];
    for next in &PREFIXES[1..] {
        if scaled.abs() < 1024.0 {
            break;
        }
        scaled /= 1024.0;
        unit = next;
    }
    format!("{} {unit}", fixed(scaled, 1))
}

/// Bits in decimal units: `800 bit`, `1.5 Mbit`.
fn bits(v: f64) -> String {
    const PREFIXES: [(f64, &str); 4] =
        [(1e12, "Tbit"), (1e9, "Gbit"), (1e6, "Mbit"), (1e3, "kbit")];
    PREFIXES.iter().find(|(f, _)| v.abs() >= *f).map_or_else(
        || format!("{} bit", significant(v, 3)),
        |(f, p)| format!("{} {p}", fixed(v / f, 1)),
    )
}

/// A duration: `850 ns`, `12.3 µs`, `12.3 ms`, `1.5 s`, `1m 30s`, `2h 5m`, `3d 4h`.
fn seconds(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a == 0.0 {
        return "0 s".to_owned();
    }
    if a < 60.0 {
        let (scaled, unit) = if a < 1e-6 {
            (v * 1e9, "ns")
        } else if a < 1e-3 {
            (v * 1e6, "µs")
        } else if a < 1.0 {
            (v * 1e3, "ms")
        } else {
            (v, "s")
        };
        return format!("{} {unit}", significant(scaled, 3));
    }
    let whole = a.round() as u64;
    let (big, small, names) = if whole < 3600 {
        (whole / 60, whole % 60, ("m", "s"))
    } else if whole < 86_400 {
        (whole / 3600, whole % 3600 / 60, ("h", "m"))
    } else {
        (whole / 86_400, whole % 86_400 / 3600, ("d", "h"))
    };
    format!("{sign}{big}{} {small}{}", names.0, names.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(name: &str, described: Option<&str>, v: f64) -> String {
        Unit::of_metric(name, described).format(v)
    }

    #[test]
    fn names_say_the_unit() {
        assert_eq!(show("host_cpu_usage_ratio", None, 0.9225), "92.3 %");
        assert_eq!(show("host_cpu_usage_ratio", None, 0.06726), "6.7 %");
        assert_eq!(show("host_cpu_usage_ratio", None, 1.0), "100.0 %");
        assert_eq!(show("host_cpu_usage_ratio", None, 0.000001), "0.0001 %");
        assert_eq!(
            show("host_memory_used_bytes", None, 25276182528.0),
            "23.5 GiB"
        );
        assert_eq!(show("host_memory_used_bytes", None, 512.0), "512 B");
        assert_eq!(show("host_memory_used_bytes", None, 1536.0), "1.5 KiB");
        assert_eq!(
            show(
                "host_network_receive_bytes_per_second",
                None,
                3.0 * 1048576.0
            ),
            "3.0 MiB/s"
        );
        assert_eq!(show("host_disk_read_bytes_per_second", None, 0.0), "0 B/s");
        assert_eq!(show("request_duration_seconds", None, 0.0123), "12.3 ms");
        assert_eq!(
            show("request_duration_seconds", None, 0.000_004_2),
            "4.2 µs"
        );
        assert_eq!(show("request_duration_seconds", None, 1.5), "1.5 s");
        assert_eq!(show("job_age_seconds", None, 90.0), "1m 30s");
        assert_eq!(show("job_age_seconds", None, 7260.0), "2h 1m");
        assert_eq!(show("job_age_seconds", None, 3.0 * 86400.0), "3d 0h");
        assert_eq!(show("queue_depth", None, 150.0), "150");
        assert_eq!(show("host_load1", None, 0.5), "0.5");
        assert_eq!(show("queue_depth", None, 1234.5678), "1235");
        assert_eq!(show("net_sent_bytes_total", None, 2048.0), "2.0 KiB");
        assert_eq!(show("temp_celsius", None, 61.25), "61.3 °C");
        assert_eq!(show("link_bits", None, 1_500_000.0), "1.5 Mbit");
    }

    #[test]
    fn a_described_unit_wins_over_the_name() {
        assert_eq!(show("latency", Some("milliseconds"), 12.5), "12.5 ms");
        assert_eq!(show("latency", Some("milliseconds"), 1500.0), "1.5 s");
        assert_eq!(show("cache", Some("mebibytes"), 2048.0), "2.0 GiB");
        assert_eq!(show("x_ratio", Some("percent"), 50.0), "50.0 %");
        assert_eq!(show("net", Some("bits_per_second"), 2e9), "2.0 Gbit/s");
        assert_eq!(show("jobs", Some("count"), 3.0), "3");
        assert_eq!(show("jobs", Some("count_per_second"), 3.0), "3/s");
        assert_eq!(show("volts", Some("volts"), 3.3), "3.3 volts");
        assert_eq!(Unit::parse("Bytes_Per_Second").name(), "bytes/s");
        assert_eq!(Unit::parse("%").name(), "percent");
        assert_eq!(KNOWN.get(RATIO).map(|k| k.word), Some("ratio"));
    }

    #[test]
    fn rates() {
        assert_eq!(
            Unit::of_rate("http_requests_total", None).format(12.5),
            "12.5/s"
        );
        assert_eq!(
            Unit::of_rate("net_received_bytes_total", None).format(1048576.0),
            "1.0 MiB/s"
        );
        assert_eq!(
            Unit::of_rate("process_cpu_seconds_total", None).format(0.25),
            "25.0 %"
        );
        assert_eq!(
            Unit::of_rate("gc_pause_milliseconds_total", None).format(5.0),
            "5 ms/s"
        );
        // A histogram's rate counts observations.
        assert_eq!(
            Unit::of_rate("request_duration_seconds", None).format(4.0),
            "4/s"
        );
        assert_eq!(Unit::of_rate("request_duration_seconds", None).name(), "/s");
    }

    #[test]
    fn odd_values() {
        let u = Unit::of_metric("x_bytes", None);
        assert_eq!(u.format(f64::NAN), "NaN");
        assert_eq!(u.format(f64::INFINITY), "+Inf");
        assert_eq!(u.format(-2048.0), "-2.0 KiB");
        assert_eq!(Unit::of_metric("x_seconds", None).format(-90.0), "-1m 30s");
        assert_eq!(Unit::of_metric("x_seconds", None).format(0.0), "0 s");
        assert_eq!(u.format_or_no_data(None), "no data");
        assert_eq!(number(0.000012), "1.200e-5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(-0.5), "-0.5");
        assert!(Unit::NONE.is_none());
        assert_eq!(Unit::NONE.name(), "");
        assert_eq!(serde_json::to_string(&u).unwrap_or_default(), "\"bytes\"");
    }
}
