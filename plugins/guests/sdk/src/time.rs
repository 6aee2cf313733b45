//! Formatting timestamps (ms since the Unix epoch, UTC) the way receivers want them, without
//! a date library in the guest.

/// The calendar date and time of `ms`: (year, month 1–12, day 1–31, hour, minute, second,
/// millisecond, weekday 0 = Sunday).
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (h, rem) = (in_day / 3_600_000, in_day % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (
        year,
        month as u32,
        day as u32,
        h as u32,
        m as u32,
        s as u32,
        milli as u32,
        weekday as u32,
    )
}

/// RFC 3339 in UTC with milliseconds: `2023-11-14T22:13:20.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli, _) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// RFC 5322 (email `Date:` header) in UTC: `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc5322(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _, wd) = civil(ms);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd as usize],
        MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc5322(1_700_000_000_123),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    }
}
