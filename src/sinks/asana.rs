//! The `asana_goal` sink: sets the current value of an Asana goal's metric per key result,
//! `POST {api_base}/goals/{goal_gid}/setMetricCurrentValue` with
//! `{"data": {"current_number_value": <value>}}` and `Authorization: Bearer <token>`.
//! Rates go as fractions (Asana shows 0.25 as 25 % on a percentage metric), money as the
//! number of the decimal string. A goal without a metric (Asana answers 400) or any other
//! 4xx but 429 is a configuration error: recorded with the goal named, not hammered.

use serde_json::{Value as Json, json};

use super::{SendError, Sink, SinkHttp, key_result_id, target_and_value};
use crate::config::{AsanaGoalSettings, ExposeSecret};
use crate::store::OutboxRow;

pub struct AsanaGoalSink {
    settings: AsanaGoalSettings,
    http: SinkHttp,
}

impl AsanaGoalSink {
    pub(super) fn new(settings: AsanaGoalSettings, http: SinkHttp) -> AsanaGoalSink {
        AsanaGoalSink { settings, http }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.settings.api_base.as_str().trim_end_matches('/')
        )
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "Authorization",
                format!("Bearer {}", self.settings.token.expose_secret()),
            ),
            ("Accept", "application/json".to_string()),
        ]
    }

    async fn get(&self, path: &str) -> Result<(u16, String), SendError> {
        self.http
            .request(reqwest::Method::GET, &self.url(path), None, &self.headers())
            .await
    }
}

/// The goal's metric as `GET /goals/{gid}` gives it (`data.metric`), if any.
fn metric(text: &str) -> Option<Json> {
    let v: Json = serde_json::from_str(text).ok()?;
    v.pointer("/data/metric").filter(|m| !m.is_null()).cloned()
}

impl Sink for AsanaGoalSink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let kr = key_result_id(&body);
        let (gid, value) = target_and_value(&self.http.name, &body, &self.settings.goals, "goal")?;
        let payload = json!({"data": {"current_number_value": value}}).to_string();
        self.http
            .request(
                reqwest::Method::POST,
                &self.url(&format!("goals/{gid}/setMetricCurrentValue")),
                Some((payload.into_bytes(), "application/json")),
                &self.headers(),
            )
            .await
            .map(|(status, _)| status)
            .map_err(|e| {
                let e = e.permanent_if_4xx();
                let hint = match e.status {
                    Some(400) => "; does the goal have a numeric metric? (Asana: open the goal → Metric → Set a metric: number, percentage or currency)",
                    Some(401) => "; the personal access token is wrong or revoked (Asana: My settings → Apps → Manage developer apps)",
                    Some(403) => "; the token's user cannot edit this goal",
                    Some(404) => "; no such goal: check the gid (the number in the goal's URL)",
                    _ => "",
                };
                SendError {
                    message: format!("{} (goal {gid} of key result `{kr}`){hint}", e.message),
                    ..e
                }
            })
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        let (_, me) = self.get("users/me").await.map_err(|e| {
            format!(
                "{}; check the sink's token (Asana: My settings → Apps → Manage developer apps → personal access token)",
                e.message
            )
        })?;
        let who: Json = serde_json::from_str(&me).unwrap_or(Json::Null);
        let mut notes = vec![format!(
            "token of {}",
            who.pointer("/data/name")
                .and_then(Json::as_str)
                .unwrap_or("an Asana user")
        )];
        let mut problems = Vec::new();
        for (kr, gid) in &self.settings.goals {
            match self
                .get(&format!("goals/{gid}?opt_fields=name,metric"))
                .await
            {
                Ok((_, text)) => match metric(&text) {
                    Some(_) => notes.push(format!("goal {gid} (key result `{kr}`) has a metric")),
                    None => problems.push(format!(
                        "goal {gid} (key result `{kr}`) has no metric: open the goal in Asana → Metric → Set a metric (number, percentage or currency)"
                    )),
                },
                Err(e) => problems.push(format!("goal {gid} (key result `{kr}`): {}", e.message)),
            }
        }
        if problems.is_empty() {
            Ok(notes)
        } else {
            Err(problems.join("; "))
        }
    }
}
