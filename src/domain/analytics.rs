//! Normalized records from analytics and site sources: daily traffic, PageSpeed samples and
//! product reviews. Dates are local days as the provider reports them (configure the
//! property or site in the store's time zone; `check --online` warns for GA4 when not).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// Traffic of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyTraffic {
    pub date: NaiveDate,
    /// Sessions (GA4 `sessions`, Plausible `visits`, Matomo `nb_visits`).
    pub sessions: u64,
    pub visitors: Option<u64>,
    /// Sessions that bounced, when the provider reports it.
    pub bounces: Option<u64>,
    /// GA4 `engagedSessions`.
    pub engaged_sessions: Option<u64>,
}

/// One PageSpeed Insights run of one URL with one strategy, on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSpeedSample {
    pub date: NaiveDate,
    pub url: String,
    pub strategy: String,
    /// Lighthouse performance score, 0–100.
    pub score: Decimal,
    /// Largest Contentful Paint, milliseconds.
    pub lcp_ms: Option<u64>,
    /// First Contentful Paint, milliseconds.
    pub fcp_ms: Option<u64>,
    /// Cumulative Layout Shift (unitless).
    pub cls: Option<Decimal>,
    /// Total Blocking Time, milliseconds.
    pub tbt_ms: Option<u64>,
}

/// One approved product review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: String,
    pub product_id: String,
    pub created_at: DateTime<Utc>,
    /// 0–5 stars (0: none given).
    pub rating: u8,
    pub verified: bool,
}
