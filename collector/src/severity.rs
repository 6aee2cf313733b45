//! The six-step severity ladder: Normal and the five levels above it.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "serde")]
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How bad an item is, from `Normal` (0) to `Critical` (5). Ordered: `Critical > Major > … > Normal`.
///
/// Each level has a stable English name, the seed product's Korean name, a number and a colour.
///
/// ```
/// # use vigilo_collector as vigilo;
/// use vigilo::Severity;
///
/// let s: Severity = "긴급".parse()?;
/// assert_eq!(s, Severity::Major);
/// assert_eq!(s.number(), 4);
/// assert!(Severity::Critical > s);
/// assert_eq!("warning".parse::<Severity>()?, Severity::Warning);
/// # Ok::<(), vigilo::severity::ParseSeverityError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Severity {
    /// 정상: all is well.
    #[default]
    Normal = 0,
    /// 무해: worth knowing, harmless.
    Info = 1,
    /// 주의: needs attention.
    Warning = 2,
    /// 위험: a problem.
    Minor = 3,
    /// 긴급: urgent, tell someone at once.
    Major = 4,
    /// 치명: the service is failing.
    Critical = 5,
}

impl Severity {
    /// All six, from Normal to Critical.
    pub const ALL: [Severity; 6] = [
        Severity::Normal,
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ];

    /// The five levels above Normal, lowest first.
    pub const LEVELS: [Severity; 5] = [
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ];

    /// 0 (Normal) to 5 (Critical).
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The level with this number.
    pub fn from_number(n: u8) -> Option<Severity> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// Lower-case English name: `normal`, `info`, `warning`, `minor`, `major`, `critical`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// The seed product's Korean name: 정상, 무해, 주의, 위험, 긴급, 치명.
    pub const fn korean_name(self) -> &'static str {
        match self {
            Severity::Normal => "정상",
            Severity::Info => "무해",
            Severity::Warning => "주의",
            Severity::Minor => "위험",
            Severity::Major => "긴급",
            Severity::Critical => "치명",
        }
    }

    /// Status colour as `#rrggbb`: green, blue, yellow, orange, dark orange, red.
    pub const fn colour(self) -> &'static str {
        match self {
            Severity::Normal => "#2e7d32",
            Severity::Info => "#1e88e5",
            Severity::Warning => "#fdd835",
            Severity::Minor => "#fb8c00",
            Severity::Major => "#e64a19",
            Severity::Critical => "#c62828",
        }
    }

    /// The colour as red, green, blue bytes.
    pub fn rgb(self) -> (u8, u8, u8) {
        let hex = u32::from_str_radix(&self.colour()[1..], 16).unwrap_or(0);
        ((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown severity {0:?}: expected normal, info, warning, minor, major, critical \
     (or 정상, 무해, 주의, 위험, 긴급, 치명, or 0-5)"
)]
pub struct ParseSeverityError(pub String);

impl FromStr for Severity {
    type Err = ParseSeverityError;

    /// Accepts the English names in any case, the Korean names, and the numbers 0-5.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Severity::ALL
            .into_iter()
            .find(|l| {
                t.eq_ignore_ascii_case(l.name())
                    || t == l.korean_name()
                    || t.parse::<u8>().ok() == Some(l.number())
            })
            .ok_or_else(|| ParseSeverityError(s.to_owned()))
    }
}

#[cfg(feature = "serde")]
impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(feature = "serde")]
impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Severity::ALL {
            assert_eq!(s.name().parse::<Severity>(), Ok(s));
            assert_eq!(s.korean_name().parse::<Severity>(), Ok(s));
            assert_eq!(s.name().to_uppercase().parse::<Severity>(), Ok(s));
            assert_eq!(Severity::from_number(s.number()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert!("severe".parse::<Severity>().is_err());
        assert!("6".parse::<Severity>().is_err());
    }

    #[test]
    fn ordered_and_numbered() {
        let numbers: Vec<u8> = Severity::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
        assert!(Severity::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Severity::Critical.rgb(), (0xc6, 0x28, 0x28));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_names() {
        assert_eq!(
            serde_json::to_string(&Severity::Major).unwrap(),
            "\"major\""
        );
        assert_eq!(
            serde_json::from_str::<Severity>("\"치명\"").unwrap(),
            Severity::Critical
        );
    }
}
