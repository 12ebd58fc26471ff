//! Key-result progress and status (pure). TEMPORARY STUB, replaced on merge.
#![allow(dead_code, unused)]
use crate::domain::StoreTz;
use crate::kpi::DateRange;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Increase,
    Decrease,
    AtLeast,
    AtMost,
}
impl Direction {
    pub fn infer(baseline: Decimal, target: Decimal) -> Option<Direction> {
        todo!()
    }
    pub fn as_str(self) -> &'static str {
        todo!()
    }
}
impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        todo!()
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    OnTrack,
    AtRisk,
    OffTrack,
}
impl Status {
    pub fn as_str(self) -> &'static str {
        todo!()
    }
}
pub struct Evaluation {
    pub progress: Option<Decimal>,
    pub expected: Decimal,
    pub status: Option<Status>,
}
pub fn expected_progress(period: &DateRange, tz: &StoreTz, now: DateTime<Utc>) -> Decimal {
    todo!()
}
pub fn evaluate(
    direction: Direction,
    baseline: Decimal,
    target: Decimal,
    current: Option<Decimal>,
    expected: Decimal,
) -> Evaluation {
    todo!()
}
