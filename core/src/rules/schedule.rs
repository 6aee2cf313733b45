//! When a rule is active: hours of the day and days of the week in a named time zone.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use crate::clock::Timestamp;

/// Hours and days in a time zone (from the maintained IANA database bundled by `jiff`).
///
/// A range like `22:00-06:00` runs overnight: it belongs to the day it starts on. Start is
/// inclusive, end exclusive. Local times come from the zone's rules, daylight saving included.
///
/// ```
/// use vigilo::clock::Timestamp;
/// use vigilo::rules::Schedule;
///
/// let office = Schedule::new("Asia/Seoul", &["09:00-18:00"], &["mon-fri"])?;
/// // 2026-11-23 is a Monday; 10:00 in Seoul is 01:00 UTC.
/// assert!(office.is_active(Timestamp::parse("2026-11-23T01:00:00Z")?));
/// assert!(!office.is_active(Timestamp::parse("2026-11-23T10:00:00Z")?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    zone_name: String,
    zone: TimeZone,
    /// `(start, end)`; end ≤ start means overnight.
    hours: Vec<(Time, Time)>,
    /// Indexed by `Weekday::to_monday_zero_offset`.
    days: [bool; 7],
}

impl std::fmt::Display for Schedule {
    /// `09:00-18:00 mon-fri Asia/Seoul` (`all day`, `every day` when unrestricted).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.hours.is_empty() {
            f.write_str("all day")?;
        }
        for (i, (a, b)) in self.hours.iter().enumerate() {
            let end = if *b == Time::MAX {
                "24:00".to_owned()
            } else {
                b.strftime("%H:%M").to_string()
            };
            write!(
                f,
                "{}{}-{end}",
                if i > 0 { "," } else { "" },
                a.strftime("%H:%M")
            )?;
        }
        if self.days.iter().all(|d| *d) {
            f.write_str(" every day")?;
        } else {
            let days: Vec<&str> = DAYS
                .iter()
                .filter(|(_, d)| self.days[d.to_monday_zero_offset() as usize])
                .map(|(n, _)| *n)
                .collect();
            write!(f, " {}", days.join(","))?;
        }
        write!(f, " {}", self.zone_name)
    }
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn parse_day(s: &str) -> Result<Weekday, String> {
    let t = s.trim().to_ascii_lowercase();
    DAYS.iter()
        .find(|(short, day)| t == *short || t == format!("{day:?}").to_ascii_lowercase())
        .map(|&(_, d)| d)
        .ok_or_else(|| format!("unknown day {s:?}: use mon, tue, wed, thu, fri, sat, sun"))
}

fn parse_time(s: &str) -> Result<Time, String> {
    let t = s.trim();
    if t == "24:00" {
        return Ok(Time::MAX);
    }
    Time::strptime("%H:%M", t).map_err(|_| format!("bad time {s:?}: use HH:MM, 00:00 to 24:00"))
}

impl Schedule {
    /// A schedule in time zone `zone` (an IANA name such as `Asia/Seoul`, or `UTC`), active in any
    /// of `hours` (`"HH:MM-HH:MM"`, empty for all day) on any of `days` (`mon`…`sun` or ranges like
    /// `mon-fri`; empty for every day).
    pub fn new(zone: &str, hours: &[&str], days: &[&str]) -> Result<Self, String> {
        let tz = TimeZone::get(zone).map_err(|_| format!("unknown time zone {zone:?}"))?;
        let mut ranges = Vec::new();
        for h in hours {
            let (a, b) = h
                .split_once('-')
                .ok_or_else(|| format!("bad hours {h:?}: use HH:MM-HH:MM"))?;
            let (start, end) = (parse_time(a)?, parse_time(b)?);
            if start == end {
                return Err(format!("bad hours {h:?}: start and end are the same"));
            }
            ranges.push((start, end));
        }
        let mut active = [days.is_empty(); 7];
        for d in days {
            let (first, last) = match d.split_once('-') {
                Some((a, b)) => (parse_day(a)?, parse_day(b)?),
                None => (parse_day(d)?, parse_day(d)?),
            };
            let mut day = first;
            loop {
                active[day.to_monday_zero_offset() as usize] = true;
                if day == last {
                    break;
                }
                day = day.next();
            }
        }
        Ok(Schedule {
            zone_name: zone.to_owned(),
            zone: tz,
            hours: ranges,
            days: active,
        })
    }

    /// The time zone's name.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// True if `t` falls in the schedule.
    pub fn is_active(&self, t: Timestamp) -> bool {
        let local = t.to_jiff().to_zoned_datetime(self.zone.clone());
        let time = local.time();
        let today = local.weekday();
        let day_on = |d: Weekday| self.days[d.to_monday_zero_offset() as usize];
        if self.hours.is_empty() {
            return day_on(today);
        }
        self.hours.iter().any(|&(start, end)| {
            if start < end {
                day_on(today) && time >= start && (time < end || end == Time::MAX)
            } else {
                // Overnight: the evening part belongs to today, the morning part to yesterday.
                (day_on(today) && time >= start) || (day_on(today.previous()) && time < end)
            }
        })
    }
}

impl Schedule {
    /// The first instant after `t` at which [`is_active`](Self::is_active) gives another answer
    /// than at `t`, if there is one within the next eight days (`None` for a schedule that is
    /// always or never active).
    ///
    /// ```
    /// use vigilo::clock::Timestamp;
    /// use vigilo::rules::Schedule;
    ///
    /// let office = Schedule::new("Asia/Seoul", &["09:00-18:00"], &["mon-fri"])?;
    /// // Saturday 2026-11-28 noon in Seoul: the next window opens Monday 09:00 KST.
    /// let next = office.next_change(Timestamp::parse("2026-11-28T03:00:00Z")?);
    /// assert_eq!(next, Some(Timestamp::parse("2026-11-30T00:00:00Z")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let now = self.is_active(t);
        self.edges(t, 1, 9)
            .into_iter()
            .find(|c| *c > t && self.is_active(*c) != now)
    }

    /// The last instant at or before `t` at which [`is_active`](Self::is_active) changed to its
    /// answer at `t` (when the current window opened, or closed), if within the past eight days.
    ///
    /// ```
    /// use vigilo::clock::Timestamp;
    /// use vigilo::rules::Schedule;
    ///
    /// let office = Schedule::new("UTC", &["09:00-17:00"], &["mon-fri"])?;
    /// let opened = office.previous_change(Timestamp::parse("2026-11-27T16:00:00Z")?);
    /// assert_eq!(opened, Some(Timestamp::parse("2026-11-27T09:00:00Z")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn previous_change(&self, t: Timestamp) -> Option<Timestamp> {
        let now = self.is_active(t);
        let just_before = |c: Timestamp| Timestamp::from_nanos(c.as_nanos().saturating_sub(1));
        self.edges(t, 9, 1)
            .into_iter()
            .rev()
            .filter(|c| *c <= t)
            .find(|c| self.is_active(*c) == now && self.is_active(just_before(*c)) != now)
    }

    /// Every instant, in order, from `back` days before `t`'s local date to `ahead` days after
    /// it, at which the answer may change: midnights and the ends of each range.
    fn edges(&self, t: Timestamp, back: i16, ahead: i16) -> Vec<Timestamp> {
        let today = t.to_jiff().to_zoned_datetime(self.zone.clone()).date();
        let mut candidates: Vec<Timestamp> = Vec::new();
        let mut push = |date: jiff::civil::Date, time: Time| {
            if let Ok(ts) = self
                .zone
                .to_ambiguous_timestamp(date.to_datetime(time))
                .compatible()
            {
                candidates.push(Timestamp::from_jiff(ts));
            }
        };
        for offset in -back..=ahead {
            let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
                continue;
            };
            push(date, Time::midnight());
            for &(start, end) in &self.hours {
                push(date, start);
                if end != Time::MAX {
                    push(date, end);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn seoul_office_hours() {
        let s = Schedule::new("Asia/Seoul", &["09:00-18:00"], &["mon-fri"]).unwrap();
        // Monday 2026-11-23 08:59:59 and 09:00 KST (UTC+9, no DST).
        assert!(!s.is_active(at("2026-11-22T23:59:59Z")));
        assert!(s.is_active(at("2026-11-23T00:00:00Z")));
        assert!(s.is_active(at("2026-11-23T08:59:59Z")));
        assert!(!s.is_active(at("2026-11-23T09:00:00Z")));
        // Saturday 10:00 KST.
        assert!(!s.is_active(at("2026-11-28T01:00:00Z")));
    }

    #[test]
    fn new_york_across_dst_start() {
        // 2026-03-08: clocks go 02:00 EST -> 03:00 EDT. 09:00-17:00 local is 14:00Z the Friday
        // before but 13:00Z the Monday after.
        let s = Schedule::new("America/New_York", &["09:00-17:00"], &[]).unwrap();
        assert!(s.is_active(at("2026-03-06T14:00:00Z")));
        assert!(!s.is_active(at("2026-03-06T13:30:00Z")));
        assert!(s.is_active(at("2026-03-09T13:00:00Z")));
        assert!(!s.is_active(at("2026-03-09T21:00:00Z")));
        // The skipped hour: a 02:00-03:00 window does not exist that night.
        let night = Schedule::new("America/New_York", &["02:00-03:00"], &[]).unwrap();
        assert!(night.is_active(at("2026-03-07T07:30:00Z"))); // 02:30 EST the day before
        assert!(!night.is_active(at("2026-03-08T07:00:00Z"))); // 03:00 EDT: the hour was skipped
    }

    #[test]
    fn overnight_ranges_belong_to_their_start_day() {
        let s = Schedule::new("UTC", &["22:00-06:00"], &["fri"]).unwrap();
        assert!(s.is_active(at("2026-11-27T23:00:00Z"))); // Friday night
        assert!(s.is_active(at("2026-11-28T05:59:00Z"))); // Saturday morning, Friday's range
        assert!(!s.is_active(at("2026-11-28T23:00:00Z"))); // Saturday night
        assert!(!s.is_active(at("2026-11-27T05:00:00Z"))); // Friday morning: Thursday's range
    }

    #[test]
    fn next_change_finds_window_edges() {
        let s = Schedule::new("UTC", &["09:00-17:00"], &["mon-fri"]).unwrap();
        // Friday 2026-11-27 16:00 → closes at 17:00; then opens Monday 09:00.
        assert_eq!(
            s.next_change(at("2026-11-27T16:00:00Z")),
            Some(at("2026-11-27T17:00:00Z"))
        );
        assert_eq!(
            s.next_change(at("2026-11-27T17:00:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
        let night = Schedule::new("UTC", &["22:00-06:00"], &[]).unwrap();
        assert_eq!(
            night.next_change(at("2026-11-27T23:00:00Z")),
            Some(at("2026-11-28T06:00:00Z"))
        );
        let always = Schedule::new("UTC", &[], &[]).unwrap();
        assert_eq!(always.next_change(at("2026-11-27T23:00:00Z")), None);
        // Across the DST start in New York, 09:00 local is 13:00Z on the Monday after.
        let ny = Schedule::new("America/New_York", &["09:00-17:00"], &["mon-fri"]).unwrap();
        assert_eq!(
            ny.next_change(at("2026-03-07T12:00:00Z")),
            Some(at("2026-03-09T13:00:00Z"))
        );
    }

    #[test]
    fn previous_change_finds_where_the_current_answer_began() {
        let s = Schedule::new("UTC", &["09:00-17:00"], &["mon-fri"]).unwrap();
        // Monday 08:00: closed since Friday 17:00.
        assert_eq!(
            s.previous_change(at("2026-11-30T08:00:00Z")),
            Some(at("2026-11-27T17:00:00Z"))
        );
        // At the opening instant itself.
        assert_eq!(
            s.previous_change(at("2026-11-30T09:00:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
        let night = Schedule::new("UTC", &["22:00-06:00"], &[]).unwrap();
        assert_eq!(
            night.previous_change(at("2026-11-28T05:00:00Z")),
            Some(at("2026-11-27T22:00:00Z"))
        );
        let always = Schedule::new("UTC", &[], &[]).unwrap();
        assert_eq!(always.previous_change(at("2026-11-27T23:00:00Z")), None);
    }

    #[test]
    fn bad_input() {
        assert!(
            Schedule::new("Mars/Olympus", &[], &[])
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(Schedule::new("UTC", &["9-5"], &[]).is_err());
        assert!(Schedule::new("UTC", &["09:00"], &[]).is_err());
        assert!(
            Schedule::new("UTC", &[], &["funday"])
                .unwrap_err()
                .contains("unknown day")
        );
    }
}
