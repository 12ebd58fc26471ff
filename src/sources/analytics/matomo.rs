//! Matomo Reporting API: `VisitsSummary.get` with `period=day` over a date range. The
//! `token_auth` travels in the POST body, never in the URL. Matomo reports errors with
//! HTTP 200 and `{"result":"error","message":…}`, which is detected and turned into an error.
//! Days without visits come back as `[]` (0).

use chrono::NaiveDate;
use serde_json::Value;

use super::{Batch, FetchRange, Provider, client, count, parse_json, with_form};
use crate::config::{AnalyticsSettings, ExposeSecret, MatomoSettings};
use crate::domain::DailyTraffic;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;

pub struct Matomo {
    settings: MatomoSettings,
    http: HttpClient,
}

impl Matomo {
    pub fn new(
        a: &AnalyticsSettings,
        s: &MatomoSettings,
        clock: &Clock,
    ) -> Result<Matomo, SourceError> {
        Ok(Matomo {
            http: client(a, &[s.token.expose_secret()])?.with_clock(clock.clone()),
            settings: s.clone(),
        })
    }

    fn url(&self) -> String {
        let base = self.settings.base_url.as_str().trim_end_matches('/');
        if base.ends_with("index.php") {
            base.to_string()
        } else {
            format!("{base}/index.php")
        }
    }

    /// Calls an API method; query parameters identify it, the token goes in the body.
    async fn call(
        &self,
        method: &str,
        params: &[(&str, String)],
        shutdown: &Shutdown,
    ) -> Result<Value, SourceError> {
        let mut url = reqwest::Url::parse(&self.url())
            .map_err(|e| SourceError::Config(format!("bad Matomo base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("module", "API")
            .append_pair("method", method)
            .append_pair("format", "JSON");
        for (k, v) in params {
            url.query_pairs_mut().append_pair(k, v);
        }
        let token = self.settings.token.expose_secret().to_string();
        let resp = self
            .http
            .send(&format!("POST {url}"), shutdown, |c| {
                with_form(c.post(url.clone()), &[("token_auth", token.as_str())])
            })
            .await?;
        let v: Value = parse_json(&self.http, url.as_str(), &resp.body)?;
        if v.get("result").and_then(Value::as_str) == Some("error") {
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            let message = self.http.redactor().redact(message);
            let lower = message.to_lowercase();
            if lower.contains("token") || lower.contains("access") || lower.contains("auth") {
                return Err(SourceError::Auth {
                    url: url.to_string(),
                    status: resp.status,
                    body: format!(
                        "{message} (the token needs at least view access to site {})",
                        self.settings.site_id
                    ),
                    hint: String::new(),
                });
            }
            return Err(SourceError::Inconsistent {
                url: url.to_string(),
                detail: format!("Matomo answered an error: {message}"),
            });
        }
        Ok(v)
    }
}

/// Converts a `VisitsSummary.get` multi-day answer (`{"YYYY-MM-DD": {...} | []}`).
pub fn convert(v: &Value, url: &str) -> Result<Vec<DailyTraffic>, SourceError> {
    let obj = v.as_object().ok_or_else(|| SourceError::Inconsistent {
        url: url.to_string(),
        detail: "expected an object keyed by date".into(),
    })?;
    let mut out = Vec::new();
    for (day, m) in obj {
        let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
            return Err(SourceError::Inconsistent {
                url: url.to_string(),
                detail: format!("unexpected key `{day}` (not a date)"),
            });
        };
        let field = |k: &str| m.get(k).and_then(count);
        let sessions = field("nb_visits").unwrap_or(0);
        out.push(DailyTraffic {
            date,
            sessions,
            visitors: Some(field("nb_uniq_visitors").unwrap_or(0)),
            bounces: Some(field("bounce_count").unwrap_or(0).min(sessions)),
            engaged_sessions: None,
        });
    }
    Ok(out)
}

impl Provider for Matomo {
    async fn fetch(&self, range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        let params = [
            ("idSite", self.settings.site_id.clone()),
            ("period", "day".to_string()),
            ("date", format!("{},{}", range.from, range.to)),
        ];
        let v = self.call("VisitsSummary.get", &params, shutdown).await?;
        let mut days = convert(&v, &self.url())?;
        days.retain(|d| d.date <= range.today);
        Ok(Batch::Traffic(days))
    }

    async fn check_online(
        &self,
        store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        let v = self
            .call(
                "SitesManager.getSiteFromId",
                &[("idSite", self.settings.site_id.clone())],
                shutdown,
            )
            .await?;
        let mut notes = vec![format!(
            "token accepted for site {} ({})",
            self.settings.site_id,
            v.get("name").and_then(Value::as_str).unwrap_or("?")
        )];
        if let Some(tz) = v.get("timezone").and_then(Value::as_str)
            && tz != store_tz
        {
            notes.push(format!(
                "WARNING: the Matomo site's time zone is {tz} but the store's is {store_tz}: daily sessions and orders fall on different days; set the site's time zone to {store_tz}"
            ));
        }
        Ok(notes)
    }

    fn http(&self) -> &HttpClient {
        &self.http
    }
}
