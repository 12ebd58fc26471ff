//! A store's time zone: an IANA zone, or a fixed UTC offset when the store has only that
//! (WooCommerce sites configured with "UTC+5:30" instead of a city).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The time zone in which a store's days begin and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreTz {
    Named(Tz),
    Fixed(FixedOffset),
}

impl StoreTz {
    pub const UTC: StoreTz = StoreTz::Named(Tz::UTC);

    /// Parses an IANA name (`Europe/Paris`, `UTC`) or a fixed offset (`+05:30`, `UTC-3`).
    pub fn parse(s: &str) -> Result<StoreTz, String> {
        let s = s.trim();
        if let Ok(tz) = s.parse::<Tz>() {
            return Ok(StoreTz::Named(tz));
        }
        let rest = s.strip_prefix("UTC").unwrap_or(s);
        if let Some(off) = parse_offset(rest) {
            return Ok(StoreTz::Fixed(off));
        }
        Err(format!(
            "`{s}` is not a time zone: use an IANA name such as `Europe/Paris` or an offset such as `+05:30`"
        ))
    }

    /// WordPress's `gmt_offset` (hours, possibly fractional or a string: `"5.5"`, `-3`, `0`).
    pub fn from_gmt_offset_hours(hours: &str) -> Option<StoreTz> {
        let d: rust_decimal::Decimal = hours.trim().parse().ok()?;
        let secs = (d * rust_decimal::Decimal::from(3600)).round();
        let secs: i32 = secs.try_into().ok()?;
        FixedOffset::east_opt(secs).map(StoreTz::Fixed)
    }

    /// The name printed in reports and JSON (`Europe/Paris`, `UTC+05:30`).
    pub fn name(&self) -> String {
        match self {
            StoreTz::Named(tz) => tz.name().to_string(),
            StoreTz::Fixed(off) => {
                let secs = off.local_minus_utc();
                let sign = if secs < 0 { '-' } else { '+' };
                let a = secs.abs();
                format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
            }
        }
    }

    /// The calendar day, in this zone, of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            StoreTz::Named(tz) => at.with_timezone(tz).date_naive(),
            StoreTz::Fixed(off) => at.with_timezone(off).date_naive(),
        }
    }

    /// The offset from UTC in effect at an instant, in seconds.
    pub fn offset_seconds_at(&self, at: DateTime<Utc>) -> i32 {
        match self {
            StoreTz::Named(tz) => tz
                .offset_from_utc_datetime(&at.naive_utc())
                .fix()
                .local_minus_utc(),
            StoreTz::Fixed(off) => off.local_minus_utc(),
        }
    }

    /// The first instant of a local day. Where midnight does not exist (a DST jump at 00:00)
    /// the day starts at the first local time that does.
    pub fn day_start(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut t = date.and_time(NaiveTime::MIN);
        for _ in 0..4 {
            let found = match self {
                StoreTz::Named(tz) => tz
                    .from_local_datetime(&t)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc)),
                StoreTz::Fixed(off) => off
                    .from_local_datetime(&t)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc)),
            };
            if let Some(d) = found {
                return d;
            }
            t += chrono::Duration::minutes(30);
        }
        // Unreachable for real zones (no gap exceeds two hours); fall back to UTC midnight.
        Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
    }
}

impl std::fmt::Display for StoreTz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None => (body.parse::<i32>().ok()?, 0),
    };
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_offsets() {
        assert_eq!(
            StoreTz::parse("Europe/Paris").unwrap().name(),
            "Europe/Paris"
        );
        assert_eq!(StoreTz::parse("UTC+05:30").unwrap().name(), "UTC+05:30");
        assert_eq!(StoreTz::parse("-3").unwrap().name(), "UTC-03:00");
        assert!(StoreTz::parse("Mars/Olympus").is_err());
        assert_eq!(
            StoreTz::from_gmt_offset_hours("5.5").unwrap().name(),
            "UTC+05:30"
        );
        assert_eq!(
            StoreTz::from_gmt_offset_hours("-3").unwrap().name(),
            "UTC-03:00"
        );
    }

    #[test]
    fn day_start_follows_dst() {
        let paris = StoreTz::parse("Europe/Paris").unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(); // spring forward at 02:00
        assert_eq!(paris.day_start(d).to_rfc3339(), "2026-03-28T23:00:00+00:00");
        let next = d.succ_opt().unwrap();
        assert_eq!(
            paris.day_start(next).to_rfc3339(),
            "2026-03-29T22:00:00+00:00"
        );
        // Santiago skips midnight on its spring-forward day.
        let scl = StoreTz::parse("America/Santiago").unwrap();
        let gap = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        assert_eq!(scl.day_start(gap).to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }
}
