//! Google Analytics 4 Data API (`POST /v1beta/properties/{id}:runReport`), authenticated as a
//! service account: an RS256-signed JWT (claims `iss`, `scope`, `aud` = the key's
//! `token_uri`, `iat`, `exp`) is exchanged at `token_uri` with grant type
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` for an access token, cached until shortly
//! before it expires.
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

use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use super::{
    Batch, FetchRange, Provider, client, count, days, decimal, parse_json, with_form, with_json,
};
use crate::config::{AnalyticsSettings, ExposeSecret, Ga4Settings};
use crate::domain::DailyTraffic;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;

/// Read-only Analytics scope.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
/// The JWT bearer grant type (RFC 7523).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Days GA4 may still restate.
const RESTATED_DAYS: i64 = 2;

pub struct Ga4 {
    settings: Ga4Settings,
    key: RsaKeyPair,
    http: HttpClient,
    /// The access token and when to renew it. The daemon keeps a source for the life of its
    /// job, so scheduled syncs reuse a token until shortly before it expires.
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a PEM block (`-----BEGIN PRIVATE KEY-----`) to DER.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("the private key is not valid PEM base64 ({e})"))
}

/// Builds and signs the JWT assertion for the token exchange.
pub fn assertion(
    key: &RsaKeyPair,
    client_email: &str,
    key_id: Option<&str>,
    aud: &str,
    now: DateTime<Utc>,
) -> Result<String, SourceError> {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = Value::String(kid.to_string());
    }
    let iat = now.timestamp();
    let claims = json!({
        "iss": client_email,
        "scope": SCOPE,
        "aud": aud,
        "iat": iat,
        "exp": iat + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| {
        SourceError::Config("cannot sign the GA4 JWT with the service-account key".into())
    })?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

impl Ga4 {
    pub fn new(a: &AnalyticsSettings, s: &Ga4Settings, clock: &Clock) -> Result<Ga4, SourceError> {
        let pem = s.key.private_key.expose_secret();
        let der = pem_to_der(pem).map_err(|e| {
            SourceError::Config(format!("analytics `{}`: service-account key: {e}", a.name))
        })?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            SourceError::Config(format!(
                "analytics `{}`: the service-account private_key is not an RSA PKCS#8 key ({e}); download a new JSON key",
                a.name
            ))
        })?;
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        Ok(Ga4 {
            http: client(a, &[pem, &body])?.with_clock(clock.clone()),
            settings: s.clone(),
            key,
            token: Mutex::new(None),
        })
    }

    fn cached(&self) -> Option<String> {
        let guard = self.token.lock().ok()?;
        match &*guard {
            Some((t, exp)) if self.http.now() < *exp => Some(t.clone()),
            _ => None,
        }
    }

    fn forget_token(&self) {
        if let Ok(mut g) = self.token.lock() {
            *g = None;
        }
    }

    /// An access token, exchanging a fresh JWT when the cached one is missing or expiring.
    async fn access_token(&self, shutdown: &Shutdown) -> Result<String, SourceError> {
        if let Some(t) = self.cached() {
            self.http.redactor().add_late(&t);
            return Ok(t);
        }
        let k = &self.settings.key;
        let uri = k.token_uri.clone();
        let jwt = assertion(
            &self.key,
            &k.client_email,
            k.private_key_id.as_deref(),
            uri.as_str(),
            self.http.now(),
        )?;
        // The signed assertion grants a token for an hour: never in logs or errors.
        self.http.redactor().add_late(&jwt);
        let resp = self
            .http
            .send(&format!("POST {uri}"), shutdown, |c| {
                with_form(
                    c.post(uri.clone()),
                    &[("grant_type", GRANT_TYPE), ("assertion", jwt.as_str())],
                )
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
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SourceError::Inconsistent {
                url: uri.to_string(),
                detail: "the token answer has no access_token".into(),
            })?
            .to_string();
        self.http.redactor().add_late(&token);
        let expires_in = v.get("expires_in").and_then(count).unwrap_or(3600) as i64;
        // Renew a minute early so a token never expires mid-request.
        let exp = self.http.now() + Duration::seconds((expires_in - 60).max(0));
        if let Ok(mut g) = self.token.lock() {
            *g = Some((token.clone(), exp));
        }
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
