//! Google Analytics 4 Data API (`POST /v1beta/properties/{id}:runReport`), authenticated as a
//! service account: an RS256-signed JWT (claims `iss`, `scope`, `aud` = the key's
//! `token_uri`, `iat`, `exp`) is exchanged at `token_uri` with grant type
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` for an access token, cached until shortly
//! before it expires (`sources::google_auth`, shared with the Google Sheets sink).
//!
//! The report asks for dimension `date` and metrics `sessions`, `bounceRate`,
//! `engagedSessions` with `keepEmptyRows`; values arrive as strings and dates as `YYYYMMDD`.
//! GA4 restates the last 48 hours, so each sync re-reads the last 3 days. A day the report
//! leaves out counts as 0 only when it is complete (it ended more than 48 hours before the
//! current local day began); otherwise it stays unknown. Every sync re-reads the last 4 days,
//! so such a day is read again until it is complete (then it is stored: as reported, or 0) —
//! provided the source syncs at least once a day; a day that aged out unread stays unknown.
//!
//! GA4 answers 429 without `Retry-After` when a property quota is spent; the run then fails
//! at once (see [`crate::sources::http::RetryPolicy`]) and the next scheduled run tries again.
//! The access token and the signed assertion are redacted from every error.

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::{
    Batch, FetchRange, Provider, client, count, days, decimal, parse_json, with_form, with_json,
};
use crate::config::{AnalyticsSettings, Ga4Settings};
use crate::domain::DailyTraffic;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::google_auth::ServiceAccount;
pub use crate::sources::google_auth::{GRANT_TYPE, pem_to_der};
use crate::sources::http::HttpClient;

/// Read-only Analytics scope.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
/// Days GA4 may still restate.
const RESTATED_DAYS: i64 = 2;

pub struct Ga4 {
    settings: Ga4Settings,
    /// The key and its cached access token. The daemon keeps a source for the life of its
    /// job, so scheduled syncs reuse a token until shortly before it expires.
    account: ServiceAccount,
    http: HttpClient,
}

impl Ga4 {
    pub fn new(a: &AnalyticsSettings, s: &Ga4Settings, clock: &Clock) -> Result<Ga4, SourceError> {
        let account = ServiceAccount::new(&s.key, SCOPE)
            .map_err(|e| SourceError::Config(format!("analytics `{}`: {e}", a.name)))?;
        let [pem, body] = account.secrets();
        Ok(Ga4 {
            http: client(a, &[&pem, &body])?.with_clock(clock.clone()),
            settings: s.clone(),
            account,
        })
    }

    fn forget_token(&self) {
        self.account.forget();
    }

    /// An access token, exchanging a fresh JWT when the cached one is missing or expiring.
    async fn access_token(&self, shutdown: &Shutdown) -> Result<String, SourceError> {
        if let Some(t) = self.account.cached(self.http.now()) {
            self.http.redactor().add_late(&t);
            return Ok(t);
        }
        let uri = self.settings.key.token_uri.clone();
        let jwt = self
            .account
            .assertion(self.http.now())
            .map_err(|e| SourceError::Config(format!("GA4: {e}")))?;
        // The signed assertion grants a token for an hour: never in logs or errors.
        self.http.redactor().add_late(&jwt);
        let resp = self
            .http
            .send(&format!("POST {uri}"), shutdown, |c| {
                with_form(c.post(uri.clone()), &ServiceAccount::token_form(&jwt))
            })
            .await
            .map_err(|e| match e {
                SourceError::Auth { url, status, body, .. } | SourceError::Status { url, status, body }
                    if status == 400 || status == 401 || status == 403 =>
                {
                    SourceError::Auth {
                        url,
                        status,
                        body: format!(
                            "{body} — the service-account key was refused; check it is current and not deleted"
                        ),
                        hint: String::new(),
                    }
                }
                other => other,
            })?;
        let v: Value = parse_json(&self.http, uri.as_str(), &resp.body)?;
        let token = self.account.accept(&v, self.http.now()).map_err(|detail| {
            SourceError::Inconsistent {
                url: uri.to_string(),
                detail,
            }
        })?;
        self.http.redactor().add_late(&token);
        Ok(token)
    }

    fn report_url(&self) -> String {
        format!(
            "{}/v1beta/properties/{}:runReport",
            self.settings.api_base_url.as_str().trim_end_matches('/'),
            self.settings.property_id
        )
    }

    /// Runs a report; a 401 with a cached token drops the token and tries once more.
    async fn run_report(&self, body: &Value, shutdown: &Shutdown) -> Result<Value, SourceError> {
        let url = self.report_url();
        for attempt in 0..2 {
            let token = self.access_token(shutdown).await?;
            let r = self
                .http
                .send(&format!("POST {url}"), shutdown, |c| {
                    with_json(c.post(&url).bearer_auth(&token), body)
                })
                .await;
            match r {
                Ok(resp) => return parse_json(&self.http, &url, &resp.body),
                Err(SourceError::Auth { status: 401, .. }) if attempt == 0 => {
                    self.forget_token();
                }
                Err(SourceError::Auth {
                    url, status, body, ..
                }) => {
                    return Err(SourceError::Auth {
                        url,
                        status,
                        body: format!(
                            "{body} — grant the service account {} the Viewer role on property {}",
                            self.settings.key.client_email, self.settings.property_id
                        ),
                        hint: String::new(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(SourceError::Auth {
            url,
            status: 401,
            body: "a fresh access token was refused".into(),
            hint: String::new(),
        })
    }
}

/// Converts a runReport answer for `range` (see the module docs for missing days).
pub fn convert(v: &Value, range: FetchRange, url: &str) -> Result<Vec<DailyTraffic>, SourceError> {
    let bad = |detail: String| SourceError::Inconsistent {
        url: url.to_string(),
        detail,
    };
    let headers: Vec<&str> = v
        .get("metricHeaders")
        .and_then(Value::as_array)
        .map(|h| h.iter().filter_map(|m| m.get("name")?.as_str()).collect())
        .unwrap_or_default();
    let idx = |name: &str| headers.iter().position(|h| *h == name);
    let rows = v.get("rows").and_then(Value::as_array);
    let mut out = std::collections::BTreeMap::new();
    if let Some(rows) = rows {
        let s_i = idx("sessions").ok_or_else(|| bad("no `sessions` metric header".into()))?;
        for r in rows {
            let text = r
                .pointer("/dimensionValues/0/value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let date = NaiveDate::parse_from_str(text, "%Y%m%d")
                .map_err(|_| bad(format!("date `{text}` is not YYYYMMDD")))?;
            let metric =
                |i: Option<usize>| i.and_then(|i| r.get("metricValues")?.get(i)?.get("value"));
            let sessions = metric(Some(s_i))
                .and_then(count)
                .ok_or_else(|| bad(format!("sessions of {date} is not a count")))?;
            let engaged = metric(idx("engagedSessions")).and_then(count);
            let bounces = match engaged {
                // GA4: bounce rate = 1 − engagement rate, so bounces = sessions − engaged.
                Some(e) => Some(sessions.saturating_sub(e)),
                None => metric(idx("bounceRate")).and_then(decimal).map(|rate| {
                    let b = (rust_decimal::Decimal::from(sessions) * rate).round();
                    u64::try_from(b).unwrap_or(0).min(sessions)
                }),
            };
            out.insert(
                date,
                DailyTraffic {
                    date,
                    sessions,
                    visitors: None,
                    bounces,
                    engaged_sessions: engaged,
                },
            );
        }
    }
    let complete_before = range.today - Duration::days(RESTATED_DAYS);
    Ok(days(range.from, range.to.min(range.today))
        .filter_map(|d| {
            out.remove(&d).or_else(|| {
                (d < complete_before).then_some(DailyTraffic {
                    date: d,
                    sessions: 0,
                    visitors: None,
                    bounces: Some(0),
                    engaged_sessions: Some(0),
                })
            })
        })
        .collect())
}

fn report_body(from: NaiveDate, to: NaiveDate) -> Value {
    json!({
        "dateRanges": [{"startDate": from.to_string(), "endDate": to.to_string()}],
        "dimensions": [{"name": "date"}],
        "metrics": [{"name": "sessions"}, {"name": "bounceRate"}, {"name": "engagedSessions"}],
        "keepEmptyRows": true,
        "limit": 100000,
    })
}

impl Provider for Ga4 {
    async fn fetch(&self, range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        // GA4 restates the last 48 h: always re-read the last 3 days, plus the first complete
        // day, so a day left unknown while restatable is stored once it is final.
        let from = range
            .from
            .min(range.today - Duration::days(RESTATED_DAYS + 1));
        let range = FetchRange { from, ..range };
        let v = self
            .run_report(&report_body(range.from, range.to), shutdown)
            .await?;
        Ok(Batch::Traffic(convert(&v, range, &self.report_url())?))
    }

    async fn check_online(
        &self,
        store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        // The store's day, as every stored value is (UTC's day differs near midnight).
        let today = crate::domain::StoreTz::parse(store_tz).map_or_else(
            |_| self.http.now().date_naive(),
            |tz| tz.local_date(self.http.now()),
        );
        let v = self
            .run_report(&report_body(today - Duration::days(1), today), shutdown)
            .await?;
        let mut notes = vec![format!(
            "service account {} can read property {}",
            self.settings.key.client_email, self.settings.property_id
        )];
        match v.pointer("/metadata/timeZone").and_then(Value::as_str) {
            Some(tz) if tz != store_tz => notes.push(format!(
                "WARNING: the GA4 property's time zone is {tz} but the store's is {store_tz}: daily sessions and orders fall on different days; change the property's time zone (Admin → Property details) or the store's"
            )),
            Some(tz) => notes.push(format!("property time zone {tz} matches the store")),
            None => notes.push("the report did not state the property's time zone".into()),
        }
        Ok(notes)
    }

    fn http(&self) -> &HttpClient {
        &self.http
    }
}
