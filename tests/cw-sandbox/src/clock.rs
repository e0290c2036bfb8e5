//! The sandbox's clock and its date arithmetic. Owns the notion of "now" used for `_info/lastUpdated` and
//! date defaults (real time unless a test pinned it with `set_clock`/`advance_clock`), and the conversion between
//! Unix seconds and the `YYYY-MM-DDTHH:MM:SSZ` form ConnectWise uses, via Howard Hinnant's days-from-civil
//! algorithm, so no date crate is needed. Parsing also accepts the other ISO 8601 spellings a client may send
//! (fractional seconds, a `+HH:MM` offset, a bare date) and normalises them to UTC.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Real or pinned time, shared by the server and the test handle.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    pinned: Mutex<Option<i64>>,
}

impl Clock {
    /// Current time in Unix seconds.
    pub(crate) fn now(&self) -> i64 {
        match *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(t) => t,
            None => real_now(),
        }
    }

    pub(crate) fn set(&self, unix_seconds: i64) {
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = Some(unix_seconds);
    }

    /// Moves the clock forward (or back, for a negative value); a real clock becomes pinned at now + seconds.
    pub(crate) fn advance(&self, seconds: i64) {
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        let base = pinned.unwrap_or_else(real_now);
        *pinned = Some(base + seconds);
    }

    pub(crate) fn use_real(&self) {
        *self.pinned.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The HTTP `Date` header form (IMF-fixdate) of a Unix time: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix_seconds: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
pub fn format_utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Midnight UTC of the day containing `unix_seconds`.
pub fn start_of_day(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(86_400) * 86_400
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with an optional `Z` or `±HH:MM` suffix (no suffix = UTC).
pub fn parse_utc(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(range)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month as u32) as i64 {
        return None;
    }
    let mut secs = days_from_civil(year, month as u32, day as u32) * 86_400;
    if b.len() == 10 {
        return Some(secs);
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    if b.get(13) != Some(&b':') || hour > 23 || minute > 59 {
        return None;
    }
    let mut pos = 16;
    let mut second = 0;
    if b.get(pos) == Some(&b':') {
        second = num(17..19)?;
        if second > 59 {
            return None;
        }
        pos = 19;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            if pos == start {
                return None;
            }
        }
    }
    secs += hour * 3600 + minute * 60 + second;
    match b.get(pos) {
        None => Some(secs),
        Some(b'Z' | b'z') if pos + 1 == b.len() => Some(secs),
        Some(sign @ (b'+' | b'-')) if b.len() == pos + 6 && b[pos + 3] == b':' => {
            let offset = num(pos + 1..pos + 3)? * 3600 + num(pos + 4..pos + 6)? * 60;
            Some(if *sign == b'+' {
                secs - offset
            } else {
                secs + offset
            })
        }
        _ => None,
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
        for t in [
            0,
            1,
            59,
            86_399,
            951_782_400,
            1_767_225_600,
            4_102_444_800,
            -86_400 * 400,
        ] {
            assert_eq!(parse_utc(&format_utc(t)), Some(t));
        }
    }

    #[test]
    fn parses_iso_variants() {
        let base = parse_utc("2026-03-01T10:20:30Z").unwrap();
        assert_eq!(parse_utc("2026-03-01T10:20:30.123Z"), Some(base));
        assert_eq!(parse_utc("2026-03-01T12:20:30+02:00"), Some(base));
        assert_eq!(parse_utc("2026-03-01T10:20:30"), Some(base));
        assert_eq!(
            parse_utc("2026-03-01"),
            Some(base - 10 * 3600 - 20 * 60 - 30)
        );
        assert_eq!(parse_utc("2026-02-29"), None);
        assert_eq!(parse_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2026-03-01T10:20:30Zjunk"), None);
    }

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn pinned_clock_advances() {
        let clock = Clock::default();
        clock.set(1000);
        clock.advance(5);
        assert_eq!(clock.now(), 1005);
        clock.use_real();
        assert!(clock.now() > 1_700_000_000);
    }
}
