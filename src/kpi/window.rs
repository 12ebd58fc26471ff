//! Reporting windows: whole local days in a store's time zone.
//!
//! A [`WindowSpec`] names a window (`quarter_to_date`, `2026-01-01..2026-03-31`); resolving it
//! against "today" in a store's time zone gives a [`DateRange`] of local days, and
//! [`DateRange::utc_bounds`] turns that into the half-open instant range that orders are tested
//! against. Nothing here reads the clock: callers pass `today`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};

use super::KpiError;
use crate::domain::StoreTz;

/// An inclusive range of local calendar days: `from` and `to` both belong to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// The instants covered by the range in `tz`, half-open: `[start of from, start of to + 1)`.
    /// DST change days are 23 or 25 hours long, as they are on the store's clock.
    pub fn utc_bounds(&self, tz: &StoreTz) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = tz.day_start(self.from);
        let end = match self.to.succ_opt() {
            Some(next) => tz.day_start(next),
            None => DateTime::<Utc>::MAX_UTC,
        };
        (start, end)
    }

    /// Whether the local day `d` is in the range.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }

    /// With `whole`, the range stretched to the end of its last month (a previous calendar
    /// month compared with the one before must end on that month's last day, not the 30th).
    fn whole_months_if(self, whole: bool) -> DateRange {
        if !whole {
            return self;
        }
        DateRange {
            from: self.from,
            to: month_of(self.to).to,
        }
    }

    /// The number of days in the range (0 or less only for a malformed range with from > to).
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}",
            self.from.format("%Y-%m-%d"),
            self.to.format("%Y-%m-%d")
        )
    }
}

/// A named or explicit reporting window (see `docs/kpis.md`, "Windows").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSpec {
    Today,
    Yesterday,
    Last7Days,
    Last30Days,
    Last90Days,
    WeekToDate,
    MonthToDate,
    QuarterToDate,
    YearToDate,
    PreviousMonth,
    PreviousQuarter,
    PreviousYear,
    /// From the store's first order to today: resolved from [`ALL_TIME_FROM`] (no store has
    /// an order before it); reports show the first order's day ([`WindowSpec::shown_from`]).
    AllTime,
    Explicit(DateRange),
    /// The span `kpis --compare` sets against a window (see [`Compare`]); never parsed from
    /// a config or the command line.
    Compared(Box<WindowSpec>, Compare),
}

/// What `okrsync kpis --compare` compares a window with (`docs/kpis.md`, "Comparing").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    /// The period just before: the N days before a rolling or explicit window, the same
    /// span of the previous week / month / quarter / year for a `*_to_date` window, the
    /// calendar period before a `previous_*` one.
    PreviousPeriod,
    /// The same dates a year earlier (29 February → 28 February).
    PreviousYear,
}

impl Compare {
    /// The CLI / JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compare::PreviousPeriod => "previous_period",
            Compare::PreviousYear => "previous_year",
        }
    }
}

/// `d` moved by `months` calendar months (negative: back), the day clamped to the month's
/// last day (31 March − 1 month = 28 or 29 February).
fn add_months(d: NaiveDate, months: i32) -> NaiveDate {
    let m = Months::new(months.unsigned_abs());
    let moved = if months < 0 {
        d.checked_sub_months(m)
    } else {
        d.checked_add_months(m)
    };
    moved.unwrap_or(if months < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// The `len` days just before `from`.
fn days_before(from: NaiveDate, len: i64) -> DateRange {
    let to = from.pred_opt().unwrap_or(from);
    let back = u64::try_from(len.max(1) - 1).unwrap_or(0);
    DateRange {
        from: to
            .checked_sub_days(Days::new(back))
            .unwrap_or(NaiveDate::MIN),
        to,
    }
}

/// A range moved by `months` calendar months, both ends clamped to their month's end.
fn shift_months(r: DateRange, months: i32) -> DateRange {
    DateRange {
        from: add_months(r.from, months),
        to: add_months(r.to, months),
    }
}

/// The first day `all_time` covers: before any online store's first order.
pub const ALL_TIME_FROM: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Every named window with its config/CLI name, in the order the docs list them.
const NAMED: &[(&str, WindowSpec)] = &[
    ("today", WindowSpec::Today),
    ("yesterday", WindowSpec::Yesterday),
    ("last_7_days", WindowSpec::Last7Days),
    ("last_30_days", WindowSpec::Last30Days),
    ("last_90_days", WindowSpec::Last90Days),
    ("week_to_date", WindowSpec::WeekToDate),
    ("month_to_date", WindowSpec::MonthToDate),
    ("quarter_to_date", WindowSpec::QuarterToDate),
    ("year_to_date", WindowSpec::YearToDate),
    ("previous_month", WindowSpec::PreviousMonth),
    ("previous_quarter", WindowSpec::PreviousQuarter),
    ("previous_year", WindowSpec::PreviousYear),
    ("all_time", WindowSpec::AllTime),
];

/// The valid window forms, for error messages.
pub(crate) fn valid_windows() -> String {
    let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
    format!("{}, or YYYY-MM-DD..YYYY-MM-DD", names.join(", "))
}

impl FromStr for WindowSpec {
    type Err = KpiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let invalid = |reason: String| KpiError::InvalidWindow {
            input: input.to_string(),
            reason,
        };
        let lower = input.to_ascii_lowercase();
        if let Some((_, w)) = NAMED.iter().find(|(n, _)| *n == lower) {
            return Ok(w.clone());
        }
        let Some((a, b)) = input.split_once("..") else {
            return Err(invalid(format!("valid windows: {}", valid_windows())));
        };
        let parse = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                invalid(format!(
                    "`{}` is not a date; write YYYY-MM-DD..YYYY-MM-DD (valid windows: {})",
                    d.trim(),
                    valid_windows()
                ))
            })
        };
        let (from, to) = (parse(a)?, parse(b)?);
        if from > to {
            return Err(invalid(format!(
                "the first day {from} is after the last day {to}; write the earlier day first"
            )));
        }
        Ok(WindowSpec::Explicit(DateRange { from, to }))
    }
}

impl WindowSpec {
    /// The name used in config files, the CLI and JSON (`quarter_to_date`,
    /// `2026-01-01..2026-03-31`).
    pub fn as_str(&self) -> String {
        match self {
            WindowSpec::Explicit(r) => r.to_string(),
            WindowSpec::Compared(w, c) => format!("{} ({})", w.as_str(), c.as_str()),
            named => NAMED
                .iter()
                .find(|(_, w)| w == named)
                .map(|(n, _)| (*n).to_string())
                .unwrap_or_default(),
        }
    }

    /// The local days the window covers when the store's local date is `today`.
    pub fn resolve(&self, today: NaiveDate) -> DateRange {
        let yesterday = today.pred_opt().unwrap_or(today);
        let last_n = |n: u64| DateRange {
            from: today
                .checked_sub_days(Days::new(n))
                .unwrap_or(NaiveDate::MIN),
            to: yesterday,
        };
        let to_today = |from: NaiveDate| DateRange { from, to: today };
        match self {
            WindowSpec::Today => to_today(today),
            WindowSpec::Yesterday => DateRange {
                from: yesterday,
                to: yesterday,
            },
            WindowSpec::Last7Days => last_n(7),
            WindowSpec::Last30Days => last_n(30),
            WindowSpec::Last90Days => last_n(90),
            WindowSpec::WeekToDate => to_today(week_of(today).from),
            WindowSpec::MonthToDate => to_today(month_of(today).from),
            WindowSpec::QuarterToDate => to_today(quarter_of(today).from),
            WindowSpec::YearToDate => to_today(year_of(today).from),
            WindowSpec::PreviousMonth => month_of(month_of(today).from.pred_opt().unwrap_or(today)),
            WindowSpec::PreviousQuarter => {
                quarter_of(quarter_of(today).from.pred_opt().unwrap_or(today))
            }
            WindowSpec::PreviousYear => year_of(year_of(today).from.pred_opt().unwrap_or(today)),
            WindowSpec::AllTime => to_today(ALL_TIME_FROM.min(today)),
            WindowSpec::Explicit(r) => *r,
            WindowSpec::Compared(w, c) => w.compared_range(today, *c),
        }
    }

    /// The range a report shows for this window: `range` itself, except for `all_time`, which
    /// starts on `first_day` (the store's first order; today when it has none).
    pub fn shown(&self, range: DateRange, first_day: Option<NaiveDate>) -> DateRange {
        match self {
            WindowSpec::AllTime => DateRange {
                from: first_day.unwrap_or(range.to).clamp(range.from, range.to),
                to: range.to,
            },
            _ => range,
        }
    }

    /// Whether the window is complete before `today` (it ends yesterday or earlier, whatever
    /// today is): what a baseline must be, to be fixed at a period's start.
    pub fn ends_before_today(&self) -> bool {
        !matches!(
            self,
            WindowSpec::Today
                | WindowSpec::WeekToDate
                | WindowSpec::MonthToDate
                | WindowSpec::QuarterToDate
                | WindowSpec::YearToDate
                | WindowSpec::AllTime
        )
    }

    /// The window `compare` sets against this one when the store's local date is `today`.
    pub fn compared(&self, compare: Compare) -> WindowSpec {
        WindowSpec::Compared(Box::new(self.clone()), compare)
    }

    /// The days `kpis --compare` compares this window with (see [`Compare`]).
    pub fn compared_range(&self, today: NaiveDate, compare: Compare) -> DateRange {
        let r = self.resolve(today);
        if compare == Compare::PreviousYear {
            return shift_months(r, -12);
        }
        match self {
            // The same span of the previous week: Monday through the same weekday.
            WindowSpec::WeekToDate => DateRange {
                from: r
                    .from
                    .checked_sub_days(Days::new(7))
                    .unwrap_or(NaiveDate::MIN),
                to: r
                    .to
                    .checked_sub_days(Days::new(7))
                    .unwrap_or(NaiveDate::MIN),
            },
            // The 1st of the previous month / quarter / year through the same day of it
            // (clamped: 31 March → 1..28 February).
            WindowSpec::MonthToDate | WindowSpec::PreviousMonth => shift_months(r, -1),
            WindowSpec::QuarterToDate | WindowSpec::PreviousQuarter => shift_months(r, -3),
            WindowSpec::YearToDate | WindowSpec::PreviousYear => shift_months(r, -12),
            // Today, yesterday, rolling and explicit windows: as many days, just before.
            _ => days_before(r.from, r.days()),
        }
        .whole_months_if(matches!(
            self,
            WindowSpec::PreviousMonth | WindowSpec::PreviousQuarter
        ))
    }

    /// The span over which a key result's expected progress is measured: for `*_to_date`
    /// windows the whole week/month/quarter/year containing `today`; for every other window
    /// (today, yesterday, rolling, previous, explicit) the resolved window itself.
    pub fn period(&self, today: NaiveDate) -> DateRange {
        match self {
            WindowSpec::WeekToDate => week_of(today),
            WindowSpec::MonthToDate => month_of(today),
            WindowSpec::QuarterToDate => quarter_of(today),
            WindowSpec::YearToDate => year_of(today),
            other => other.resolve(today),
        }
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// `from..=to` where `to` is the day before `next` (the start of the following period).
fn until(from: NaiveDate, next: Option<NaiveDate>) -> DateRange {
    let to = next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX);
    DateRange { from, to }
}

/// The ISO week (Monday to Sunday) containing `d`.
fn week_of(d: NaiveDate) -> DateRange {
    let back = u64::from(d.weekday().num_days_from_monday());
    let from = d
        .checked_sub_days(Days::new(back))
        .unwrap_or(NaiveDate::MIN);
    let to = from
        .checked_add_days(Days::new(6))
        .unwrap_or(NaiveDate::MAX);
    DateRange { from, to }
}

/// The months `first_month..first_month + len` of `d`'s year, as a range of days.
fn months(d: NaiveDate, first_month: u32, len: u32) -> DateRange {
    let from = NaiveDate::from_ymd_opt(d.year(), first_month, 1).unwrap_or(d);
    let end_month = first_month + len; // 2..=13
    let next = if end_month > 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, end_month - 12, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), end_month, 1)
    };
    until(from, next)
}

/// The calendar month containing `d`.
fn month_of(d: NaiveDate) -> DateRange {
    months(d, d.month(), 1)
}

/// The calendar quarter (Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec) containing `d`.
fn quarter_of(d: NaiveDate) -> DateRange {
    months(d, (d.month0() / 3) * 3 + 1, 3)
}

/// The calendar year containing `d`.
fn year_of(d: NaiveDate) -> DateRange {
    months(d, 1, 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn r(from: &str, to: &str) -> DateRange {
        DateRange {
            from: d(from),
            to: d(to),
        }
    }

    /// (window, today, resolved from, resolved to, period from, period to)
    const CASES: &[(&str, &str, &str, &str, &str, &str)] = &[
        // 2026-01-01 is a Thursday: its ISO week starts Monday 2025-12-29.
        (
            "today",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
        ),
        (
            "yesterday",
            "2026-01-01",
            "2025-12-31",
            "2025-12-31",
            "2025-12-31",
            "2025-12-31",
        ),
        (
            "last_7_days",
            "2026-01-01",
            "2025-12-25",
            "2025-12-31",
            "2025-12-25",
            "2025-12-31",
        ),
        (
            "last_30_days",
            "2026-01-01",
            "2025-12-02",
            "2025-12-31",
            "2025-12-02",
            "2025-12-31",
        ),
        (
            "last_90_days",
            "2026-01-01",
            "2025-10-03",
            "2025-12-31",
            "2025-10-03",
            "2025-12-31",
        ),
        (
            "week_to_date",
            "2026-01-01",
            "2025-12-29",
            "2026-01-01",
            "2025-12-29",
            "2026-01-04",
        ),
        (
            "month_to_date",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-31",
        ),
        (
            "quarter_to_date",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-03-31",
        ),
        (
            "year_to_date",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-01-01",
            "2026-12-31",
        ),
        (
            "previous_month",
            "2026-01-01",
            "2025-12-01",
            "2025-12-31",
            "2025-12-01",
            "2025-12-31",
        ),
        (
            "previous_quarter",
            "2026-01-01",
            "2025-10-01",
            "2025-12-31",
            "2025-10-01",
            "2025-12-31",
        ),
        (
            "previous_year",
            "2026-01-01",
            "2025-01-01",
            "2025-12-31",
            "2025-01-01",
            "2025-12-31",
        ),
        // Monday is the first day of its own week; Sunday the last.
        (
            "week_to_date",
            "2026-03-30",
            "2026-03-30",
            "2026-03-30",
            "2026-03-30",
            "2026-04-05",
        ),
        (
            "week_to_date",
            "2026-04-05",
            "2026-03-30",
            "2026-04-05",
            "2026-03-30",
            "2026-04-05",
        ),
        // Last day of a quarter, of a leap February and of a year.
        (
            "quarter_to_date",
            "2026-06-30",
            "2026-04-01",
            "2026-06-30",
            "2026-04-01",
            "2026-06-30",
        ),
        (
            "quarter_to_date",
            "2026-11-15",
            "2026-10-01",
            "2026-11-15",
            "2026-10-01",
            "2026-12-31",
        ),
        (
            "previous_quarter",
            "2026-04-01",
            "2026-01-01",
            "2026-03-31",
            "2026-01-01",
            "2026-03-31",
        ),
        (
            "previous_quarter",
            "2026-08-20",
            "2026-04-01",
            "2026-06-30",
            "2026-04-01",
            "2026-06-30",
        ),
        (
            "month_to_date",
            "2024-02-29",
            "2024-02-01",
            "2024-02-29",
            "2024-02-01",
            "2024-02-29",
        ),
        (
            "previous_month",
            "2024-03-15",
            "2024-02-01",
            "2024-02-29",
            "2024-02-01",
            "2024-02-29",
        ),
        (
            "month_to_date",
            "2026-12-31",
            "2026-12-01",
            "2026-12-31",
            "2026-12-01",
            "2026-12-31",
        ),
        (
            "year_to_date",
            "2026-12-31",
            "2026-01-01",
            "2026-12-31",
            "2026-01-01",
            "2026-12-31",
        ),
        (
            "previous_year",
            "2026-12-31",
            "2025-01-01",
            "2025-12-31",
            "2025-01-01",
            "2025-12-31",
        ),
        (
            "last_7_days",
            "2026-03-01",
            "2026-02-22",
            "2026-02-28",
            "2026-02-22",
            "2026-02-28",
        ),
        // Explicit windows resolve to themselves whatever today is.
        (
            "2026-01-01..2026-03-31",
            "2026-02-10",
            "2026-01-01",
            "2026-03-31",
            "2026-01-01",
            "2026-03-31",
        ),
        (
            " 2026-05-05 .. 2026-05-05 ",
            "2027-01-01",
            "2026-05-05",
            "2026-05-05",
            "2026-05-05",
            "2026-05-05",
        ),
    ];

    #[test]
    fn resolves_windows_and_periods() {
        for (w, today, rf, rt, pf, pt) in CASES {
            let spec: WindowSpec = w.parse().unwrap();
            assert_eq!(spec.resolve(d(today)), r(rf, rt), "resolve {w} on {today}");
            assert_eq!(spec.period(d(today)), r(pf, pt), "period {w} on {today}");
        }
    }

    #[test]
    fn all_time_runs_from_before_any_order_to_today() {
        let w: WindowSpec = "all_time".parse().unwrap();
        assert_eq!(w, WindowSpec::AllTime);
        assert_eq!(w.as_str(), "all_time");
        assert_eq!(w.resolve(d("2026-05-05")), r("1970-01-01", "2026-05-05"));
        assert_eq!(w.period(d("2026-05-05")), r("1970-01-01", "2026-05-05"));
        // Shown from the first order's day; today when there is none.
        let range = w.resolve(d("2026-05-05"));
        assert_eq!(
            w.shown(range, Some(d("2024-03-09"))),
            r("2024-03-09", "2026-05-05")
        );
        assert_eq!(w.shown(range, None), r("2026-05-05", "2026-05-05"));
        // Other windows are shown as resolved.
        let q = WindowSpec::QuarterToDate;
        let qr = q.resolve(d("2026-05-05"));
        assert_eq!(q.shown(qr, Some(d("2024-03-09"))), qr);
    }

    #[test]
    fn names_round_trip() {
        for (name, spec) in NAMED {
            assert_eq!(name.parse::<WindowSpec>().unwrap(), *spec);
            assert_eq!(spec.as_str(), *name);
        }
        let e: WindowSpec = "2026-01-01..2026-03-31".parse().unwrap();
        assert_eq!(e.as_str(), "2026-01-01..2026-03-31");
        assert_eq!(
            "QUARTER_TO_DATE".parse::<WindowSpec>().unwrap(),
            WindowSpec::QuarterToDate
        );
    }

    #[test]
    fn rejects_bad_windows_listing_valid_forms() {
        for bad in [
            "last_week",
            "",
            "2026-01-01",
            "2026-13-01..2026-12-31",
            "2026-01-01..x",
        ] {
            let err = bad.parse::<WindowSpec>().unwrap_err().to_string();
            assert!(err.contains("quarter_to_date"), "{bad}: {err}");
            assert!(err.contains("YYYY-MM-DD..YYYY-MM-DD"), "{bad}: {err}");
        }
        let err = "2026-03-31..2026-01-01"
            .parse::<WindowSpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("after"), "{err}");
    }

    #[test]
    fn days_and_contains() {
        let q1 = r("2026-01-01", "2026-03-31");
        assert_eq!(q1.days(), 31 + 28 + 31);
        assert!(q1.contains(d("2026-01-01")));
        assert!(q1.contains(d("2026-03-31")));
        assert!(!q1.contains(d("2025-12-31")));
        assert!(!q1.contains(d("2026-04-01")));
        assert_eq!(r("2026-05-05", "2026-05-05").days(), 1);
    }

    #[test]
    fn utc_bounds_follow_store_days_across_dst() {
        let paris = StoreTz::parse("Europe/Paris").unwrap();
        // 2026-03-29 is 23 hours long in Paris: 00:00 CET = 23:00 UTC the day before,
        // 24:00 CEST = 22:00 UTC.
        let (s, e) = r("2026-03-29", "2026-03-29").utc_bounds(&paris);
        assert_eq!(s.to_rfc3339(), "2026-03-28T23:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-03-29T22:00:00+00:00");
        assert_eq!((e - s).num_hours(), 23);
        // 2026-10-25 is 25 hours long: 00:00 CEST = 22:00 UTC, 24:00 CET = 23:00 UTC.
        let (s, e) = r("2026-10-25", "2026-10-25").utc_bounds(&paris);
        assert_eq!(s.to_rfc3339(), "2026-10-24T22:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-10-25T23:00:00+00:00");
        assert_eq!((e - s).num_hours(), 25);
        // A fixed offset never changes.
        let kolkata = StoreTz::parse("+05:30").unwrap();
        let (s, e) = r("2026-01-01", "2026-01-31").utc_bounds(&kolkata);
        assert_eq!(s.to_rfc3339(), "2025-12-31T18:30:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-01-31T18:30:00+00:00");
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        for spec in NAMED.iter().map(|(_, w)| w) {
            for today in [NaiveDate::MIN, NaiveDate::MAX] {
                let range = spec.resolve(today);
                let _ = spec.period(today);
                let _ = range.utc_bounds(&StoreTz::UTC);
                let _ = range.days();
            }
        }
    }

    /// (window, today, previous_period from, to, previous_year from, to)
    const COMPARED: &[(&str, &str, &str, &str, &str, &str)] = &[
        // Rolling: the 30 days before; a year earlier, the same dates.
        (
            "last_30_days",
            "2026-03-15",
            "2026-01-14",
            "2026-02-12",
            "2025-02-13",
            "2025-03-14",
        ),
        (
            "last_7_days",
            "2026-01-03",
            "2025-12-20",
            "2025-12-26",
            "2024-12-27",
            "2025-01-02",
        ),
        (
            "today",
            "2026-03-01",
            "2026-02-28",
            "2026-02-28",
            "2025-03-01",
            "2025-03-01",
        ),
        (
            "yesterday",
            "2026-03-01",
            "2026-02-27",
            "2026-02-27",
            "2025-02-28",
            "2025-02-28",
        ),
        // Month to date: the same span of the previous month, clamped to its last day.
        (
            "month_to_date",
            "2026-03-31",
            "2026-02-01",
            "2026-02-28",
            "2025-03-01",
            "2025-03-31",
        ),
        (
            "month_to_date",
            "2024-03-30",
            "2024-02-01",
            "2024-02-29",
            "2023-03-01",
            "2023-03-30",
        ),
        (
            "month_to_date",
            "2026-01-10",
            "2025-12-01",
            "2025-12-10",
            "2025-01-01",
            "2025-01-10",
        ),
        // Leap day: a year earlier it is 28 February.
        (
            "month_to_date",
            "2024-02-29",
            "2024-01-01",
            "2024-01-29",
            "2023-02-01",
            "2023-02-28",
        ),
        (
            "year_to_date",
            "2024-02-29",
            "2023-01-01",
            "2023-02-28",
            "2023-01-01",
            "2023-02-28",
        ),
        // Week to date: Monday through the same weekday of the week before.
        (
            "week_to_date",
            "2026-01-01",
            "2025-12-22",
            "2025-12-25",
            "2024-12-29",
            "2025-01-01",
        ),
        (
            "quarter_to_date",
            "2026-05-31",
            "2026-01-01",
            "2026-02-28",
            "2025-04-01",
            "2025-05-31",
        ),
        // Previous calendar periods: the whole period before.
        (
            "previous_month",
            "2026-03-10",
            "2026-01-01",
            "2026-01-31",
            "2025-02-01",
            "2025-02-28",
        ),
        (
            "previous_month",
            "2024-04-10",
            "2024-02-01",
            "2024-02-29",
            "2023-03-01",
            "2023-03-31",
        ),
        (
            "previous_quarter",
            "2026-08-01",
            "2026-01-01",
            "2026-03-31",
            "2025-04-01",
            "2025-06-30",
        ),
        (
            "previous_year",
            "2026-08-01",
            "2024-01-01",
            "2024-12-31",
            "2024-01-01",
            "2024-12-31",
        ),
        // Explicit: as many days just before.
        (
            "2026-03-01..2026-03-10",
            "2026-08-01",
            "2026-02-19",
            "2026-02-28",
            "2025-03-01",
            "2025-03-10",
        ),
    ];

    #[test]
    fn compared_windows_follow_the_rules_of_docs_kpis() {
        for (w, today, pf, pt, yf, yt) in COMPARED {
            let spec = WindowSpec::from_str(w).unwrap();
            let today = d(today);
            assert_eq!(
                spec.compared_range(today, Compare::PreviousPeriod),
                r(pf, pt),
                "{w} at {today}: previous_period"
            );
            assert_eq!(
                spec.compared_range(today, Compare::PreviousYear),
                r(yf, yt),
                "{w} at {today}: previous_year"
            );
            // The spec form resolves to the same days (what the loaders and KPIs use).
            assert_eq!(
                spec.compared(Compare::PreviousPeriod).resolve(today),
                r(pf, pt)
            );
        }
        assert_eq!(
            WindowSpec::MonthToDate
                .compared(Compare::PreviousYear)
                .as_str(),
            "month_to_date (previous_year)"
        );
    }

    #[test]
    fn a_compared_window_over_a_dst_change_keeps_the_stores_day_lengths() {
        // March 2026 to date on the 31st compares with February; the previous year's March
        // holds the spring change (2025-03-30 in Paris): 31 days, one of 23 hours.
        let paris = StoreTz::parse("Europe/Paris").unwrap();
        let r = WindowSpec::MonthToDate.compared_range(d("2026-03-31"), Compare::PreviousYear);
        assert_eq!(
            r,
            DateRange {
                from: d("2025-03-01"),
                to: d("2025-03-31")
            }
        );
        let (start, end) = r.utc_bounds(&paris);
        assert_eq!((end - start).num_hours(), 31 * 24 - 1);
        assert_eq!(start.to_rfc3339(), "2025-02-28T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2025-03-31T22:00:00+00:00");
    }

    #[test]
    fn compared_windows_at_extreme_dates_do_not_panic() {
        for w in NAMED.iter().map(|(_, w)| w) {
            for today in [NaiveDate::MIN, NaiveDate::MAX] {
                for c in [Compare::PreviousPeriod, Compare::PreviousYear] {
                    let _ = w.compared_range(today, c);
                }
            }
        }
    }
}
