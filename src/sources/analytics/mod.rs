//! Analytics and site sources: one file per provider behind [`Provider`], gathered in the
//! closed enum [`AnyAnalytics`]. Each fetches values for a range of local days (or, for
//! PageSpeed and reviews, the current state) and returns normalized [`Batch`]es; the daemon
//! stores them per (source, day) and KPIs join them with orders by day.

pub mod ga4;
pub mod matomo;
pub mod pagespeed;
pub mod plausible;
pub mod shopify_sessions;
pub mod woo_reviews;

use std::future::Future;
use std::sync::atomic::Ordering;

use chrono::NaiveDate;

use super::SourceError;
use super::http::{HttpClient, Redactor, RetryPolicy, excerpt};
use crate::config::{AnalyticsSettings, ProviderSettings};
use crate::domain::{DailyTraffic, PageSpeedSample, Review};
use crate::runtime::{Clock, Shutdown};

/// What to fetch: the local days `from..=to`, `today` being the current local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub today: NaiveDate,
}

/// Normalized records of one fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Daily traffic; days the provider did not report and that are not known complete are
    /// absent (unknown), never 0.
    Traffic(Vec<DailyTraffic>),
    /// Lighthouse samples, and the URL/strategy pairs that could not be measured (each named
    /// with its error; the run ends `partial` when there are some).
    PageSpeed(Vec<PageSpeedSample>, Vec<String>),
    /// Every approved review (the complete listing).
    Reviews(Vec<Review>),
}

/// The contract of an analytics provider.
pub trait Provider {
    /// Fetches the values of `range`.
    fn fetch(
        &self,
        range: FetchRange,
        shutdown: &Shutdown,
    ) -> impl Future<Output = Result<Batch, SourceError>> + Send;

    /// A few read-only calls checking credentials and access; returns findings to print.
    /// `store_tz` is the time zone of the linked store.
    fn check_online(
        &self,
        store_tz: &str,
        shutdown: &Shutdown,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;

    fn http(&self) -> &HttpClient;
}

/// One configured analytics source.
#[allow(clippy::large_enum_variant)] // one per run, built once
pub enum AnyAnalytics {
    Ga4(ga4::Ga4),
    Plausible(plausible::Plausible),
    Matomo(matomo::Matomo),
    PageSpeed(pagespeed::PageSpeed),
    WooReviews(woo_reviews::WooReviews),
    ShopifySessions(shopify_sessions::ShopifySessions),
}

/// Builds the shared HTTP client of an analytics source, redacting `secrets`. Google's
/// quota-limited APIs (GA4, PageSpeed) answer 429 without `Retry-After` when a quota is
/// spent; such a 429 fails the run at once instead of being retried.
pub(crate) fn client(a: &AnalyticsSettings, secrets: &[&str]) -> Result<HttpClient, SourceError> {
    let mut redactor = Redactor::default();
    for s in secrets {
        redactor.add(s);
    }
    let what = match &a.provider {
        ProviderSettings::Ga4(_) => {
            "the service-account key (credentials_file / credentials_env) and that the account has the Viewer role on the property"
        }
        ProviderSettings::Plausible(_) => "api_key (a Plausible Stats API key for this site)",
        ProviderSettings::Matomo(_) => "token (a Matomo auth token with view access to the site)",
        ProviderSettings::PageSpeed(_) => "api_key (a key with the PageSpeed Insights API enabled)",
        _ => "its credentials",
    };
    Ok(HttpClient::new(
        a.timeout,
        None,
        RetryPolicy {
            max_retries: a.max_retries,
            base: a.retry_base,
            retry_429_without_retry_after: !matches!(
                a.provider,
                ProviderSettings::Ga4(_) | ProviderSettings::PageSpeed(_)
            ),
        },
        redactor,
    )?
    .with_max_response_bytes(a.max_response_bytes)
    .with_auth_hint(format!("; check {what} of analytics source `{}`", a.name)))
}

/// Parses a JSON body, or says where it came from and how it begins (secrets redacted).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    http: &HttpClient,
    url: &str,
    body: &[u8],
) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|e| SourceError::Malformed {
        url: http.redactor().redact(url),
        detail: e.to_string(),
        excerpt: http.redactor().redact(&excerpt(body)),
    })
}

/// A count that may arrive as a JSON number or a string (`"123"`, `"12.0"`).
pub(crate) fn count(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| {
                s.parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative())
                    .and_then(|d| u64::try_from(d.round()).ok())
            })
        }
        _ => None,
    }
}

/// A decimal that may arrive as a JSON number or a string.
pub(crate) fn decimal(v: &serde_json::Value) -> Option<rust_decimal::Decimal> {
    use std::str::FromStr;
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    rust_decimal::Decimal::from_str(&text)
        .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
        .ok()
}

impl AnyAnalytics {
    /// Builds the source of one `[[analytics]]` entry.
    pub fn new(a: &AnalyticsSettings, clock: &Clock) -> Result<AnyAnalytics, SourceError> {
        Ok(match &a.provider {
            ProviderSettings::Ga4(s) => AnyAnalytics::Ga4(ga4::Ga4::new(a, s, clock)?),
            ProviderSettings::Plausible(s) => {
                AnyAnalytics::Plausible(plausible::Plausible::new(a, s, clock)?)
            }
            ProviderSettings::Matomo(s) => AnyAnalytics::Matomo(matomo::Matomo::new(a, s, clock)?),
            ProviderSettings::PageSpeed(s) => {
                AnyAnalytics::PageSpeed(pagespeed::PageSpeed::new(a, s, clock)?)
            }
            ProviderSettings::WooReviews(s) => {
                AnyAnalytics::WooReviews(woo_reviews::WooReviews::new(s, clock)?)
            }
            ProviderSettings::ShopifySessions(s) => {
                AnyAnalytics::ShopifySessions(shopify_sessions::ShopifySessions::new(s, clock)?)
            }
        })
    }

    pub async fn fetch(
        &self,
        range: FetchRange,
        shutdown: &Shutdown,
    ) -> Result<Batch, SourceError> {
        match self {
            AnyAnalytics::Ga4(p) => p.fetch(range, shutdown).await,
            AnyAnalytics::Plausible(p) => p.fetch(range, shutdown).await,
            AnyAnalytics::Matomo(p) => p.fetch(range, shutdown).await,
            AnyAnalytics::PageSpeed(p) => p.fetch(range, shutdown).await,
            AnyAnalytics::WooReviews(p) => p.fetch(range, shutdown).await,
            AnyAnalytics::ShopifySessions(p) => p.fetch(range, shutdown).await,
        }
    }

    pub async fn check_online(
        &self,
        store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        match self {
            AnyAnalytics::Ga4(p) => p.check_online(store_tz, shutdown).await,
            AnyAnalytics::Plausible(p) => p.check_online(store_tz, shutdown).await,
            AnyAnalytics::Matomo(p) => p.check_online(store_tz, shutdown).await,
            AnyAnalytics::PageSpeed(p) => p.check_online(store_tz, shutdown).await,
            AnyAnalytics::WooReviews(p) => p.check_online(store_tz, shutdown).await,
            AnyAnalytics::ShopifySessions(p) => p.check_online(store_tz, shutdown).await,
        }
    }

    /// Requests sent and retries made so far.
    pub fn request_counts(&self) -> (u64, u64) {
        let http = match self {
            AnyAnalytics::Ga4(p) => p.http(),
            AnyAnalytics::Plausible(p) => p.http(),
            AnyAnalytics::Matomo(p) => p.http(),
            AnyAnalytics::PageSpeed(p) => p.http(),
            AnyAnalytics::WooReviews(p) => p.http(),
            AnyAnalytics::ShopifySessions(p) => p.http(),
        };
        let c = http.counters();
        (
            c.requests.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
        )
    }
}

/// The days of `from..=to`.
pub(crate) fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

/// A JSON request body.
pub(crate) fn with_json(
    r: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    r.header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// An `application/x-www-form-urlencoded` request body.
pub(crate) fn with_form(
    r: reqwest::RequestBuilder,
    pairs: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut u = reqwest::Url::parse("http://form.invalid/").expect("constant URL parses");
    u.query_pairs_mut().extend_pairs(pairs);
    let body = u.query().unwrap_or_default().to_string();
    r.header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    )
    .body(body)
}
