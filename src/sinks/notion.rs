//! The `notion` sink: sets a number property of one page (a database row) per key result,
//! `PATCH {api_base}/v1/pages/{page_id}` with `{"properties": {"<property>": {"number": v}}}`,
//! `Authorization: Bearer <integration secret>`, `Notion-Version: 2022-06-28`. Requests are
//! paced under Notion's documented average of 3 per second ([`PACE`]); a 429 `rate_limited`
//! waits its `Retry-After` (the worker). Rates go as fractions (a Number property formatted
//! as percent shows 0.25 as 25 %); money as the number of the decimal string. A 4xx other
//! than 429 (page not shared with the integration, no such property, not a number) is a
//! configuration error: recorded with the page named, not hammered.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{SendError, Sink, SinkHttp, key_result_id, target_and_value};
use crate::config::{ExposeSecret, NotionSettings};
use crate::store::OutboxRow;

/// The `Notion-Version` header sent.
pub const NOTION_VERSION: &str = "2022-06-28";
/// Least time between two requests of one sink: under Notion's average of 3 per second.
pub const PACE: Duration = Duration::from_millis(350);

pub struct NotionSink {
    settings: NotionSettings,
    http: SinkHttp,
}

impl NotionSink {
    pub(super) fn new(settings: NotionSettings, http: SinkHttp) -> NotionSink {
        NotionSink { settings, http }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            self.settings.api_base.as_str().trim_end_matches('/')
        )
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "Authorization",
                format!("Bearer {}", self.settings.token.expose_secret()),
            ),
            ("Notion-Version", NOTION_VERSION.to_string()),
        ]
    }

    async fn get(&self, path: &str) -> Result<(u16, String), SendError> {
        self.http
            .request(reqwest::Method::GET, &self.url(path), None, &self.headers())
            .await
    }
}

fn hint(status: Option<u16>) -> &'static str {
    match status {
        Some(400) => {
            "; is the property's type Number and its name spelled as in Notion (case matters)?"
        }
        Some(401) => "; the integration secret is wrong or revoked (notion.so/my-integrations)",
        Some(403) => "; the integration lacks the `Update content` capability",
        Some(404) => {
            "; the page is not shared with the integration (page ••• → Connections → add it) or the id is wrong"
        }
        _ => "",
    }
}

impl Sink for NotionSink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let kr = key_result_id(&body);
        let (page, value) = target_and_value(&self.http.name, &body, &self.settings.pages, "page")?;
        let mut properties = serde_json::Map::new();
        properties.insert(self.settings.property.clone(), json!({ "number": value }));
        let payload = json!({ "properties": properties }).to_string();
        self.http
            .request(
                reqwest::Method::PATCH,
                &self.url(&format!("pages/{page}")),
                Some((payload.into_bytes(), "application/json")),
                &self.headers(),
            )
            .await
            .map(|(status, _)| status)
            .map_err(|e| {
                let e = e.permanent_if_4xx();
                SendError {
                    message: format!(
                        "{} (page {page}, property `{}`, key result `{kr}`){}",
                        e.message,
                        self.settings.property,
                        hint(e.status)
                    ),
                    ..e
                }
            })
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        let (_, me) = self
            .get("users/me")
            .await
            .map_err(|e| format!("{}{}", e.message, hint(e.status)))?;
        let who: Json = serde_json::from_str(&me).unwrap_or(Json::Null);
        let mut notes = vec![format!(
            "integration `{}`",
            who.get("name").and_then(Json::as_str).unwrap_or("?")
        )];
        let mut problems = Vec::new();
        let prop = &self.settings.property;
        for (kr, page) in &self.settings.pages {
            match self.get(&format!("pages/{page}")).await {
                Ok((_, text)) => {
                    let v: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
                    match v
                        .get("properties")
                        .and_then(|p| p.get(prop))
                        .and_then(|p| p.get("type"))
                        .and_then(Json::as_str)
                    {
                        Some("number") => notes.push(format!(
                            "page {page} (key result `{kr}`) has the Number property `{prop}`"
                        )),
                        Some(t) => problems.push(format!(
                            "page {page} (key result `{kr}`): property `{prop}` is of type {t}, not Number"
                        )),
                        None => problems.push(format!(
                            "page {page} (key result `{kr}`) has no property `{prop}` (names are case-sensitive)"
                        )),
                    }
                }
                Err(e) => problems.push(format!(
                    "page {page} (key result `{kr}`): {}{}",
                    e.message,
                    hint(e.status)
                )),
            }
        }
        if problems.is_empty() {
            Ok(notes)
        } else {
            Err(problems.join("; "))
        }
    }
}
