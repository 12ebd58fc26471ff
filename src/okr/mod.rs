//! Key-result progress and status (pure: no IO, no clock reads).
//!
//! A key result compares a KPI's current value with its `baseline` and `target`
//! (`kpi-definitions.md`, "Key-result progress"): [`evaluate`] gives progress on the 0–1 scale
//! and a status measured against [`expected_progress`], the elapsed fraction of the key
//! result's period. Callers pass `now`; nothing here reads the clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::StoreTz;
use crate::kpi::DateRange;

/// Which way a key result wants its KPI to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Move up from the baseline to the target (target > baseline).
    Increase,
    /// Move down from the baseline to the target (target < baseline).
    Decrease,
    /// Keep the value at or above the target.
    AtLeast,
    /// Keep the value at or below the target.
    AtMost,
}

const DIRECTIONS: &[(&str, Direction)] = &[
    ("increase", Direction::Increase),
    ("decrease", Direction::Decrease),
    ("at_least", Direction::AtLeast),
    ("at_most", Direction::AtMost),
];

impl Direction {
    /// The name used in config files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::AtLeast => "at_least",
            Direction::AtMost => "at_most",
        }
    }

    /// `increase` when the target is above the baseline, `decrease` when below, `None` when
    /// they are equal (then the key result must say `at_least` or `at_most`).
    pub fn infer(baseline: Decimal, target: Decimal) -> Option<Direction> {
        match target.cmp(&baseline) {
            std::cmp::Ordering::Greater => Some(Direction::Increase),
            std::cmp::Ordering::Less => Some(Direction::Decrease),
            std::cmp::Ordering::Equal => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direction name that is not one of `increase`, `decrease`, `at_least`, `at_most`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown direction `{0}`; use one of increase, decrease, at_least, at_most")]
pub struct UnknownDirection(pub String);

impl FromStr for Direction {
    type Err = UnknownDirection;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        DIRECTIONS
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, d)| *d)
            .ok_or_else(|| UnknownDirection(s.trim().to_string()))
    }
}

/// How a key result is doing compared with where it should be by now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    OnTrack,
    AtRisk,
    OffTrack,
}

impl Status {
    /// The name used in JSON: `on_track`, `at_risk`, `off_track`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OnTrack => "on_track",
            Status::AtRisk => "at_risk",
            Status::OffTrack => "off_track",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key result's score at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Progress in [0, 1]; `None` when the KPI's current value is undefined.
    pub progress: Option<Decimal>,
    /// Elapsed fraction of the key result's period, in [0, 1].
    pub expected: Decimal,
    /// `None` when progress is `None`.
    pub status: Option<Status>,
}

/// The elapsed fraction of `period` (whole local days in `tz`) at `now`: 0 before it starts,
/// 1 once it has ended.
pub fn expected_progress(period: &DateRange, tz: &StoreTz, now: DateTime<Utc>) -> Decimal {
    let (start, end) = period.utc_bounds(tz);
    if now <= start {
        return Decimal::ZERO;
    }
    if now >= end {
        return Decimal::ONE;
    }
    let elapsed = (now - start).num_milliseconds();
    let length = (end - start).num_milliseconds();
    Decimal::from(elapsed)
        .checked_div(Decimal::from(length))
        .map_or(Decimal::ONE, |f| f.clamp(Decimal::ZERO, Decimal::ONE))
}

/// Scores a key result: progress from `current` (per `direction`, `baseline` and `target`)
/// and its status against `expected`.
pub fn evaluate(
    direction: Direction,
    baseline: Decimal,
    target: Decimal,
    current: Option<Decimal>,
    expected: Decimal,
) -> Evaluation {
    let progress = current.map(|c| progress(direction, baseline, target, c));
    // Worse than where the key result started: never on track (kpi-definitions.md).
    let wrong_side = current.is_some_and(|c| match direction {
        Direction::Increase => c < baseline,
        Direction::Decrease => c > baseline,
        Direction::AtLeast | Direction::AtMost => false,
    });
    Evaluation {
        progress,
        expected,
        status: progress.map(|p| {
            if !wrong_side {
                status(p, expected)
            } else if expected < Decimal::new(3, 1) {
                Status::AtRisk
            } else {
                Status::OffTrack
            }
        }),
    }
}

/// A target written relative to the baseline (`"+10%"`, `"-5%"`, `"+2.5%"`) → the change
/// as a fraction (0.10, −0.05, 0.025). The sign is required; `None` for anything else.
pub fn parse_relative(text: &str) -> Option<Decimal> {
    let t = text.trim();
    let first = t.chars().next()?;
    let sign = match first {
        '+' => Decimal::ONE,
        '-' | '−' => Decimal::NEGATIVE_ONE,
        _ => return None,
    };
    let number = t[first.len_utf8()..].strip_suffix('%')?.trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let p: Decimal = number.parse().ok()?;
    Some(sign * p / Decimal::ONE_HUNDRED)
}

/// The target of a relative key result: `baseline × (1 + change)`.
pub fn relative_target(baseline: Decimal, change: Decimal) -> Option<Decimal> {
    baseline.checked_mul(Decimal::ONE + change)
}

fn progress(direction: Direction, baseline: Decimal, target: Decimal, current: Decimal) -> Decimal {
    let met = |yes: bool| if yes { Decimal::ONE } else { Decimal::ZERO };
    match direction {
        Direction::AtLeast => met(current >= target),
        Direction::AtMost => met(current <= target),
        Direction::Increase | Direction::Decrease => {
            let ratio = current
                .checked_sub(baseline)
                .zip(target.checked_sub(baseline))
                .and_then(|(done, todo)| done.checked_div(todo));
            match ratio {
                Some(r) => r.clamp(Decimal::ZERO, Decimal::ONE),
                // target == baseline (or amounts beyond the decimal range): reached or not.
                None if direction == Direction::Increase => met(current >= target),
                None => met(current <= target),
            }
        }
    }
}

fn status(progress: Decimal, expected: Decimal) -> Status {
    let tenth = Decimal::new(1, 1);
    let three_tenths = Decimal::new(3, 1);
    if progress >= expected - tenth {
        Status::OnTrack
    } else if progress >= expected - three_tenths {
        Status::AtRisk
    } else {
        Status::OffTrack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn range(from: &str, to: &str) -> DateRange {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        DateRange {
            from: d(from),
            to: d(to),
        }
    }

    #[test]
    fn directions_parse_print_and_infer() {
        for (name, d) in DIRECTIONS {
            assert_eq!(name.parse::<Direction>().unwrap(), *d);
            assert_eq!(d.as_str(), *name);
        }
        let err = "up".parse::<Direction>().unwrap_err().to_string();
        assert!(err.contains("`up`") && err.contains("at_most"), "{err}");
        assert_eq!(
            Direction::infer(dec("0.18"), dec("0.25")),
            Some(Direction::Increase)
        );
        assert_eq!(
            Direction::infer(dec("0.25"), dec("0.18")),
            Some(Direction::Decrease)
        );
        assert_eq!(Direction::infer(dec("5"), dec("5.00")), None);
        assert_eq!(Status::OnTrack.as_str(), "on_track");
        assert_eq!(Status::AtRisk.as_str(), "at_risk");
        assert_eq!(Status::OffTrack.as_str(), "off_track");
    }

    #[test]
    fn progress_by_direction() {
        use Direction::*;
        // (direction, baseline, target, current, progress)
        let cases = [
            // increase 100 → 200: 150 is halfway; below baseline clamps to 0, beyond to 1.
            (Increase, "100", "200", "150", "0.5"),
            (Increase, "100", "200", "100", "0"),
            (Increase, "100", "200", "80", "0"),
            (Increase, "100", "200", "200", "1"),
            (Increase, "100", "200", "250", "1"),
            // (0.2143 − 0.18) / (0.25 − 0.18) = 0.0343 / 0.07 = 0.49
            (Increase, "0.18", "0.25", "0.2143", "0.49"),
            // decrease 0.10 → 0.05: 0.08 is 0.02/0.05 = 0.4 of the way.
            (Decrease, "0.10", "0.05", "0.08", "0.4"),
            (Decrease, "0.10", "0.05", "0.12", "0"),
            (Decrease, "0.10", "0.05", "0.05", "1"),
            (Decrease, "0.10", "0.05", "0.01", "1"),
            // at_least / at_most: met or not, the baseline plays no part.
            (AtLeast, "0", "50", "50", "1"),
            (AtLeast, "0", "50", "49.99", "0"),
            (AtLeast, "100", "50", "70", "1"),
            (AtMost, "0", "0.05", "0.05", "1"),
            (AtMost, "0", "0.05", "0.0501", "0"),
            (AtMost, "1", "0.05", "0", "1"),
            // baseline == target: reached or not, no division by zero.
            (Increase, "10", "10", "10", "1"),
            (Increase, "10", "10", "9", "0"),
            (Decrease, "10", "10", "11", "0"),
            (Decrease, "10", "10", "10", "1"),
        ];
        for (d, b, t, c, p) in cases {
            let e = evaluate(d, dec(b), dec(t), Some(dec(c)), Decimal::ZERO);
            assert_eq!(e.progress, Some(dec(p)), "{d} {b}→{t} at {c}");
            // Expected 0 is always met, except by a value worse than the baseline.
            let worse = match d {
                Increase => dec(c) < dec(b),
                Decrease => dec(c) > dec(b),
                _ => false,
            };
            let want = if worse {
                Status::AtRisk
            } else {
                Status::OnTrack
            };
            assert_eq!(e.status, Some(want), "{d} {b}→{t} at {c}");
        }
    }

    #[test]
    fn null_current_gives_null_progress_and_status() {
        for d in [
            Direction::Increase,
            Direction::Decrease,
            Direction::AtLeast,
            Direction::AtMost,
        ] {
            let e = evaluate(d, dec("1"), dec("2"), None, dec("0.5"));
            assert_eq!(
                e,
                Evaluation {
                    progress: None,
                    expected: dec("0.5"),
                    status: None
                }
            );
        }
    }

    #[test]
    fn status_boundaries() {
        // expected 0.6: on_track from 0.5, at_risk from 0.3, off_track below.
        // increase 0 → 100 so that progress = current / 100.
        let cases = [
            ("60", Status::OnTrack),
            ("50", Status::OnTrack),
            ("49.99", Status::AtRisk),
            ("30", Status::AtRisk),
            ("29.99", Status::OffTrack),
            ("0", Status::OffTrack),
        ];
        for (c, s) in cases {
            let e = evaluate(
                Direction::Increase,
                dec("0"),
                dec("100"),
                Some(dec(c)),
                dec("0.6"),
            );
            assert_eq!(e.status, Some(s), "current {c}");
        }
        // A met at_most at the end of its period is on track; an unmet one is off track.
        let done = evaluate(
            Direction::AtMost,
            dec("0"),
            dec("5"),
            Some(dec("4")),
            Decimal::ONE,
        );
        assert_eq!(done.status, Some(Status::OnTrack));
        let missed = evaluate(
            Direction::AtMost,
            dec("0"),
            dec("5"),
            Some(dec("6")),
            Decimal::ONE,
        );
        assert_eq!(missed.status, Some(Status::OffTrack));
        // With expected 0.25 an unmet at_least is at risk (0 ≥ 0.25 − 0.3), at 0.35 off track.
        let early = evaluate(
            Direction::AtLeast,
            dec("0"),
            dec("5"),
            Some(dec("4")),
            dec("0.25"),
        );
        assert_eq!(early.status, Some(Status::AtRisk));
        let later = evaluate(
            Direction::AtLeast,
            dec("0"),
            dec("5"),
            Some(dec("4")),
            dec("0.35"),
        );
        assert_eq!(later.status, Some(Status::OffTrack));
        // Decrease: 0.10 → 0.05 at 0.09 is progress 0.2; expected 0.3 → on_track (0.2 ≥ 0.2).
        let dec_case = evaluate(
            Direction::Decrease,
            dec("0.10"),
            dec("0.05"),
            Some(dec("0.09")),
            dec("0.3"),
        );
        assert_eq!(dec_case.progress, Some(dec("0.2")));
        assert_eq!(dec_case.status, Some(Status::OnTrack));
    }

    #[test]
    fn worse_than_the_baseline_is_never_on_track() {
        use Direction::*;
        // (direction, baseline, target, current, expected, status)
        let cases = [
            // Increase 100 → 200 at 95: progress 0. Early (expected 0.05) the plain rule says
            // on_track (0 ≥ 0.05 − 0.1); below the baseline it is at_risk.
            (Increase, "100", "200", "95", "0.05", Status::AtRisk),
            // expected 0.29: plain at_risk, still at_risk.
            (Increase, "100", "200", "95", "0.29", Status::AtRisk),
            // expected 0.3: plain at_risk (0 ≥ 0.3 − 0.3), below the baseline off_track.
            (Increase, "100", "200", "95", "0.3", Status::OffTrack),
            (Increase, "100", "200", "95", "0.9", Status::OffTrack),
            // At the baseline is not below it: the plain rule.
            (Increase, "100", "200", "100", "0.05", Status::OnTrack),
            (Increase, "100", "200", "100", "0.3", Status::AtRisk),
            // Decrease 0.10 → 0.05: 0.11 is worse than the start.
            (Decrease, "0.10", "0.05", "0.11", "0", Status::AtRisk),
            (Decrease, "0.10", "0.05", "0.11", "0.5", Status::OffTrack),
            (Decrease, "0.10", "0.05", "0.10", "0", Status::OnTrack),
            // Thresholds have no starting point to be worse than.
            (AtLeast, "100", "50", "20", "0.05", Status::OnTrack),
            (AtMost, "0", "0.05", "0.2", "0.05", Status::OnTrack),
        ];
        for (d, b, t, c, x, want) in cases {
            let e = evaluate(d, dec(b), dec(t), Some(dec(c)), dec(x));
            assert_eq!(e.status, Some(want), "{d} {b}→{t} at {c}, expected {x}");
        }
    }

    #[test]
    fn relative_targets_parse_and_apply() {
        assert_eq!(parse_relative("+10%"), Some(dec("0.10")));
        assert_eq!(parse_relative(" -5 % "), Some(dec("-0.05")));
        assert_eq!(parse_relative("+2.5%"), Some(dec("0.025")));
        assert_eq!(parse_relative("+0%"), Some(dec("0")));
        for bad in [
            "10%", "+10", "+%", "+ten%", "+1e3%", "", "0.1", "+-10%", "+10%%",
        ] {
            assert_eq!(parse_relative(bad), None, "{bad}");
        }
        // AOV 84.20 + 10 % = 92.62; 0.0213 − 5 % = 0.020235.
        assert_eq!(
            relative_target(dec("84.20"), dec("0.10")),
            Some(dec("92.62"))
        );
        assert_eq!(
            relative_target(dec("0.0213"), dec("-0.05")),
            Some(dec("0.020235"))
        );
    }

    #[test]
    fn expected_progress_is_elapsed_fraction_in_store_time() {
        let paris = StoreTz::parse("Europe/Paris").unwrap();
        // (period, now, expected)
        let cases = [
            // Q1 2026 in Paris: 90 days of 24 h (no DST change before 2026-03-29 … which is
            // in Q1: 2159 hours in all). Before the start 0, after the end 1.
            (
                range("2026-01-01", "2026-03-31"),
                "2025-12-31T22:59:59Z",
                "0",
            ),
            (
                range("2026-01-01", "2026-03-31"),
                "2025-12-31T23:00:00Z",
                "0",
            ),
            (
                range("2026-01-01", "2026-03-31"),
                "2026-03-31T22:00:00Z",
                "1",
            ),
            (
                range("2026-01-01", "2026-03-31"),
                "2026-06-01T00:00:00Z",
                "1",
            ),
            // One day: noon local is halfway.
            (
                range("2026-05-05", "2026-05-05"),
                "2026-05-05T10:00:00Z",
                "0.5",
            ),
            // The 25-hour day 2026-10-25 (22:00Z → 23:00Z next day): 5 h in is 0.2.
            (
                range("2026-10-25", "2026-10-25"),
                "2026-10-25T03:00:00Z",
                "0.2",
            ),
            // The 23-hour day 2026-03-29 (23:00Z → 22:00Z): 11.5 h in is 0.5.
            (
                range("2026-03-29", "2026-03-29"),
                "2026-03-29T10:30:00Z",
                "0.5",
            ),
        ];
        for (p, now, want) in cases {
            assert_eq!(
                expected_progress(&p, &paris, at(now)),
                dec(want),
                "{p} at {now}"
            );
        }
        // In UTC the same day has noon at 12:00Z.
        assert_eq!(
            expected_progress(
                &range("2026-05-05", "2026-05-05"),
                &StoreTz::UTC,
                at("2026-05-05T12:00:00Z")
            ),
            dec("0.5")
        );
    }
}
