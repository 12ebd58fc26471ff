//! PageSpeed Insights v5 (`GET /pagespeedonline/v5/runPagespeed`): the Lighthouse
//! performance score (0–1, stored as 0–100) and Core Web Vitals lab values (LCP, FCP, CLS,
//! TBT) for each configured URL and strategy, stamped with the store's local day. The
//! optional API key travels in the `X-goog-api-key` header, never in the URL.

use rust_decimal::Decimal;
use serde_json::Value;

use super::{Batch, FetchRange, Provider, client, count, decimal, parse_json};
use crate::config::{AnalyticsSettings, ExposeSecret, PageSpeedSettings};
use crate::domain::PageSpeedSample;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;

pub struct PageSpeed {
    settings: PageSpeedSettings,
    http: HttpClient,
}

impl PageSpeed {
    pub fn new(
        a: &AnalyticsSettings,
        s: &PageSpeedSettings,
        clock: &Clock,
    ) -> Result<PageSpeed, SourceError> {
        let secrets: Vec<&str> = s.api_key.iter().map(|k| k.expose_secret()).collect();
        Ok(PageSpeed {
            http: client(a, &secrets)?.with_clock(clock.clone()),
            settings: s.clone(),
        })
    }

    async fn run(
        &self,
        page: &reqwest::Url,
        strategy: &str,
        shutdown: &Shutdown,
    ) -> Result<Value, SourceError> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/pagespeedonline/v5/runPagespeed",
            self.settings.api_base_url.as_str().trim_end_matches('/')
        ))
        .map_err(|e| SourceError::Config(format!("bad PageSpeed api_base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("url", page.as_str())
            .append_pair("strategy", strategy)
            .append_pair("category", "performance");
        let key = self
            .settings
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_string());
        let resp = self
            .http
            .send(&format!("GET {url}"), shutdown, |c| {
                let r = c.get(url.clone());
                match &key {
                    Some(k) => r.header("X-goog-api-key", k),
                    None => r,
                }
            })
            .await?;
        parse_json(&self.http, url.as_str(), &resp.body)
    }
}

/// Converts one runPagespeed answer.
pub fn convert(
    v: &Value,
    date: chrono::NaiveDate,
    page: &str,
    strategy: &str,
) -> Result<PageSpeedSample, SourceError> {
    let lh = v.get("lighthouseResult");
    let score = lh
        .and_then(|l| l.pointer("/categories/performance/score"))
        .and_then(decimal)
        .ok_or_else(|| SourceError::Inconsistent {
            url: page.to_string(),
            detail: "the PageSpeed answer has no lighthouseResult.categories.performance.score (the page may have failed to load; see lighthouseResult.runtimeError)".into(),
        })?;
    let audit = |id: &str| lh.and_then(|l| l.get("audits")).and_then(|a| a.get(id));
    let ms = |id: &str| {
        audit(id)
            .and_then(|a| a.get("numericValue"))
            .and_then(count)
    };
    Ok(PageSpeedSample {
        date,
        url: page.to_string(),
        strategy: strategy.to_string(),
        score: (score * Decimal::ONE_HUNDRED).round_dp(1),
        lcp_ms: ms("largest-contentful-paint"),
        fcp_ms: ms("first-contentful-paint"),
        cls: audit("cumulative-layout-shift")
            .and_then(|a| a.get("numericValue"))
            .and_then(decimal)
            .map(|d| d.round_dp(4)),
        tbt_ms: ms("total-blocking-time"),
    })
}

impl Provider for PageSpeed {
    async fn fetch(&self, range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        let mut out = Vec::new();
        let mut failed = Vec::new();
        let mut first_error = None;
        for page in &self.settings.urls {
            for strategy in &self.settings.strategies {
                // One page that cannot be measured (a 500 from Lighthouse, no score) does not
                // lose the others; credentials and quota problems stop the run.
                let sample = match self.run(page, strategy, shutdown).await {
                    Ok(v) => convert(&v, range.today, page.as_str(), strategy),
                    Err(e) => Err(e),
                };
                match sample {
                    Ok(s) => out.push(s),
                    Err(
                        e @ (SourceError::Cancelled
                        | SourceError::Auth { .. }
                        | SourceError::QuotaExhausted { .. }),
                    ) => return Err(e),
                    Err(e) => {
                        failed.push(format!("{page} ({strategy}): {e}"));
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if out.is_empty()
            && let Some(e) = first_error
        {
            return Err(e);
        }
        Ok(Batch::PageSpeed(out, failed))
    }

    async fn check_online(
        &self,
        _store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        let page = &self.settings.urls[0];
        let strategy = &self.settings.strategies[0];
        let v = self.run(page, strategy, shutdown).await?;
        let s = convert(&v, chrono::NaiveDate::MIN, page.as_str(), strategy)?;
        Ok(vec![format!(
            "{page} ({strategy}): performance score {}",
            s.score
        )])
    }

    fn http(&self) -> &HttpClient {
        &self.http
    }
}
