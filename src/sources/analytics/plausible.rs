//! Plausible Stats API v2: `POST /api/v2/query` with a Bearer key, metrics `visits`
//! (sessions), `visitors` and `bounce_rate` (a percentage) by `time:day`.
//!
//! Plausible allows 600 requests per hour per key; one sync makes one request, and a 429 is
//! retried after its `Retry-After` by the shared client. Days without visits are absent from
//! `results`; Plausible counts in real time, so a missing day up to today is 0.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Batch, FetchRange, Provider, client, count, days, decimal, parse_json, with_json};
use crate::config::{AnalyticsSettings, ExposeSecret, PlausibleSettings};
use crate::domain::DailyTraffic;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;

pub struct Plausible {
    settings: PlausibleSettings,
    http: HttpClient,
}

impl Plausible {
    pub fn new(
        a: &AnalyticsSettings,
        s: &PlausibleSettings,
        clock: &Clock,
    ) -> Result<Plausible, SourceError> {
        Ok(Plausible {
            http: client(a, &[s.api_key.expose_secret()])?.with_clock(clock.clone()),
            settings: s.clone(),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/api/v2/query",
            self.settings.base_url.as_str().trim_end_matches('/')
        )
    }

    async fn query(&self, body: Value, shutdown: &Shutdown) -> Result<Value, SourceError> {
        let url = self.url();
        let key = self.settings.api_key.expose_secret().to_string();
        let resp = self
            .http
            .send(&format!("POST {url}"), shutdown, |c| {
                with_json(c.post(&url).bearer_auth(&key), &body)
            })
            .await?;
        parse_json(&self.http, &url, &resp.body)
    }
}

/// Converts a v2 query response to daily traffic for the requested days.
pub fn convert(v: &Value, range: FetchRange, url: &str) -> Result<Vec<DailyTraffic>, SourceError> {
    let bad = |detail: String| SourceError::Inconsistent {
        url: url.to_string(),
        detail,
    };
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the answer has no `results` list".into()))?;
    let mut by_day: BTreeMap<NaiveDate, DailyTraffic> = BTreeMap::new();
    for r in results {
        let day = r
            .get("dimensions")
            .and_then(|d| d.get(0))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
            .ok_or_else(|| bad(format!("a result has no time:day dimension: {r}")))?;
        let m = r
            .get("metrics")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("a result has no metrics: {r}")))?;
        let visits = m
            .first()
            .and_then(count)
            .ok_or_else(|| bad(format!("`visits` of {day} is not a count")))?;
        let visitors = m.get(1).and_then(count);
        // bounce_rate is a percentage of visits: bounces = visits × rate / 100, rounded.
        let bounces = m.get(2).and_then(decimal).map(|pct| {
            let b = (Decimal::from(visits) * pct / Decimal::ONE_HUNDRED).round();
            u64::try_from(b).unwrap_or(0).min(visits)
        });
        by_day.insert(
            day,
            DailyTraffic {
                date: day,
                sessions: visits,
                visitors,
                bounces,
                engaged_sessions: None,
            },
        );
    }
    Ok(days(range.from, range.to.min(range.today))
        .map(|d| {
            by_day.remove(&d).unwrap_or(DailyTraffic {
                date: d,
                sessions: 0,
                visitors: Some(0),
                bounces: Some(0),
                engaged_sessions: None,
            })
        })
        .collect())
}

impl Provider for Plausible {
    async fn fetch(&self, range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        let body = json!({
            "site_id": self.settings.site_id,
            "metrics": ["visits", "visitors", "bounce_rate"],
            "date_range": [range.from.to_string(), range.to.to_string()],
            "dimensions": ["time:day"],
        });
        let v = self.query(body, shutdown).await?;
        Ok(Batch::Traffic(convert(&v, range, &self.url())?))
    }

    async fn check_online(
        &self,
        _store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        let body = json!({
            "site_id": self.settings.site_id,
            "metrics": ["visits"],
            "date_range": "7d",
        });
        let v = self.query(body, shutdown).await?;
        let visits = v
            .pointer("/results/0/metrics/0")
            .and_then(count)
            .unwrap_or(0);
        Ok(vec![format!(
            "key accepted for site {}; {} in the last 7 days (check the site's time zone in Plausible matches the store's)",
            self.settings.site_id,
            crate::text::plural(visits, "visit")
        )])
    }

    fn http(&self) -> &HttpClient {
        &self.http
    }
}
