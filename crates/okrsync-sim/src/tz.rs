//! The simulated site's time zone as WordPress keeps it: an IANA `timezone_string`, or only a
//! `gmt_offset` in hours. The server side of what okrsync's `domain::StoreTz` reads.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

/// A site's zone: named, or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreTz {
    Named(Tz),
    Fixed(FixedOffset),
}

impl StoreTz {
    pub const UTC: StoreTz = StoreTz::Named(Tz::UTC);

    /// An IANA name, as WordPress stores `timezone_string`.
    pub fn parse(s: &str) -> Result<StoreTz, String> {
        s.trim()
            .parse::<Tz>()
            .map(StoreTz::Named)
            .map_err(|_| format!("`{s}` is not an IANA time zone"))
    }

    /// WordPress's `gmt_offset` (hours, possibly fractional: `"5.5"`, `-3`).
    pub fn from_gmt_offset_hours(hours: &str) -> Option<StoreTz> {
        let d: Decimal = hours.trim().parse().ok()?;
        let secs: i32 = (d * Decimal::from(3600)).round().try_into().ok()?;
        FixedOffset::east_opt(secs).map(StoreTz::Fixed)
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

    /// The calendar day, in this zone, of an instant.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        match self {
            StoreTz::Named(tz) => at.with_timezone(tz).date_naive(),
            StoreTz::Fixed(off) => at.with_timezone(off).date_naive(),
        }
    }
}
