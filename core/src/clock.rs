//! Time: every part of vigilo reads it through a [`Clock`], so tests can use a [`ManualClock`].

use std::fmt;
use std::num::NonZeroI64;
use std::ops::{Add, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time: nanoseconds since the Unix epoch (UTC), about 292 years either side.
///
/// `Option<Timestamp>` takes 8 bytes, as `Timestamp` does: the evaluator keeps several per
/// item. (The nanoseconds are stored with the sign bit flipped in a `NonZeroI64`; `i64::MIN`,
/// the one value that cannot be stored, becomes `i64::MIN + 1`.)
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp(NonZeroI64);

/// Flipping the sign bit maps every value but `i64::MIN` to a non-zero one.
const SIGN: i64 = i64::MIN;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp::from_nanos(0);

    /// From nanoseconds since the epoch (`i64::MIN` is read as `i64::MIN + 1`).
    pub const fn from_nanos(nanos: i64) -> Self {
        let n = if nanos == i64::MIN {
            i64::MIN + 1
        } else {
            nanos
        };
        match NonZeroI64::new(n ^ SIGN) {
            Some(v) => Timestamp(v),
            // `n ^ SIGN` is zero only for `n == i64::MIN`, excluded above.
            None => Timestamp(NonZeroI64::MAX),
        }
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp::from_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0.get() ^ SIGN
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.as_nanos().div_euclid(1_000_000)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(
            u64::try_from(self.as_nanos().saturating_sub(earlier.as_nanos())).unwrap_or(0),
        )
    }

    /// As a `jiff` timestamp, for calendars and time zones.
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(i128::from(self.as_nanos()))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// From a `jiff` timestamp (saturating outside ±292 years of the epoch).
    pub fn from_jiff(t: jiff::Timestamp) -> Self {
        let n = t
            .as_nanosecond()
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        Timestamp::from_nanos(n as i64)
    }

    /// Parses RFC 3339, e.g. `2026-03-08T01:59:00-05:00`.
    pub fn parse(s: &str) -> Result<Self, jiff::Error> {
        s.parse::<jiff::Timestamp>().map(Self::from_jiff)
    }
}

impl Default for Timestamp {
    /// The epoch.
    fn default() -> Self {
        Timestamp::EPOCH
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_nanos().cmp(&other.as_nanos())
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Timestamp").field(&self.as_nanos()).finish()
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp::from_nanos(self.as_nanos().saturating_add(nanos(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp::from_nanos(self.as_nanos().saturating_sub(nanos(d)))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_jiff(), f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    /// RFC 3339, as written by `Serialize`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_nanos(nanos(since))
    }
}

/// A clock that moves only when told to: for tests and rule simulations.
///
/// ```
/// use std::time::Duration;
/// use vigilo::clock::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_secs(100));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Timestamp::from_secs(105));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start.as_nanos())),
        }
    }

    /// Sets the time (it may go backwards; the evaluator ignores samples older than its last).
    pub fn set(&self, t: Timestamp) {
        // SeqCst: tests read the clock from other threads right after setting it.
        self.now.store(t.as_nanos(), Ordering::SeqCst);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        // SeqCst: as in `set`.
        self.now.fetch_add(nanos(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        // SeqCst: as in `set`.
        Timestamp::from_nanos(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_timestamp_is_as_small_as_one_and_order_is_kept() {
        assert_eq!(std::mem::size_of::<Option<Timestamp>>(), 8);
        let values = [i64::MIN + 1, -5_000, -1, 0, 1, 7_000, i64::MAX];
        for w in values.windows(2) {
            let (a, b) = (Timestamp::from_nanos(w[0]), Timestamp::from_nanos(w[1]));
            assert!(a < b, "{a:?} < {b:?}");
            assert_eq!(a.as_nanos(), w[0]);
        }
        assert_eq!(Timestamp::from_nanos(i64::MIN).as_nanos(), i64::MIN + 1);
        assert_eq!(Timestamp::default(), Timestamp::EPOCH);
        assert_eq!(Timestamp::EPOCH.as_nanos(), 0);
        assert_eq!(
            Timestamp::from_nanos(i64::MIN + 3) - Duration::from_secs(1),
            Timestamp::from_nanos(i64::MIN + 1)
        );
        assert_eq!(
            format!("{:?}", Timestamp::from_secs(2)),
            "Timestamp(2000000000)"
        );
    }

    #[test]
    fn arithmetic_and_display() {
        let t = Timestamp::parse("2026-11-23T00:00:00Z").unwrap();
        assert_eq!(
            (t + Duration::from_secs(90)).since(t),
            Duration::from_secs(90)
        );
        assert_eq!(t.since(t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(t.to_string(), "2026-11-23T00:00:00Z");
        assert!(SystemClock.now() > t - Duration::from_secs(86400 * 365));
    }
}
