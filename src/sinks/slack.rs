//! The `slack` sink: a message to an incoming webhook when a key result changes status or
//! moves by `threshold`: title, old → new, a text progress bar, status. The webhook URL is
//! the credential (a secret, redacted everywhere).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use super::payload::field_text;
use super::{SendError, Sink, SinkHttp};
use crate::config::{ExposeSecret, SlackSettings};
use crate::kpi::{KpiId, Value};
use crate::store::OutboxRow;

pub struct SlackSink {
    settings: SlackSettings,
    http: SinkHttp,
}

impl SlackSink {
    pub(super) fn new(settings: SlackSettings, http: SinkHttp) -> SlackSink {
        SlackSink { settings, http }
    }
}

fn decimal(v: Option<&Json>) -> Option<Decimal> {
    match v? {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// See [`super::wants`].
pub(super) fn wants(s: &SlackSettings, body: &Json, last: Option<&Json>) -> bool {
    let Some(last) = last else { return true };
    if body.get("status") != last.get("status") {
        return true;
    }
    let Some(threshold) = s.threshold else {
        return true;
    };
    match (decimal(body.get("value")), decimal(last.get("value"))) {
        (Some(new), Some(old)) => (new - old).abs() >= threshold,
        _ => true,
    }
}

/// A value of the body as people read it (`21.43%`, `84.20`, `12`).
fn shown(body: &Json, v: Option<&Json>) -> String {
    let kind = body
        .pointer("/key_result/kpi")
        .and_then(Json::as_str)
        .and_then(|k| KpiId::from_str(k).ok())
        .map(KpiId::kind);
    match (kind, decimal(v)) {
        (Some(kind), Some(d)) => Value::of_kind(kind, d).display(),
        _ => v.map(field_text).unwrap_or_else(|| "—".into()),
    }
}

/// A ten-cell text progress bar: `███████░░░ 70%`.
fn bar(progress: Option<Decimal>) -> String {
    let Some(p) = progress else {
        return "no progress yet".to_string();
    };
    let clamped = p.clamp(Decimal::ZERO, Decimal::ONE);
    let filled = (clamped * Decimal::from(10))
        .round()
        .to_string()
        .parse::<usize>()
        .unwrap_or(0)
        .min(10);
    format!(
        "{}{} {}%",
        "█".repeat(filled),
        "░".repeat(10 - filled),
        (p * Decimal::from(100)).round()
    )
}

/// The Slack message of a check-in (`text` of an incoming-webhook payload).
pub fn message(body: &Json) -> String {
    let title = body
        .pointer("/key_result/title")
        .map(field_text)
        .unwrap_or_default();
    let status = match body.get("status").and_then(Json::as_str) {
        Some("on_track") => "on track",
        Some("at_risk") => "at risk",
        Some("off_track") => "off track",
        _ => "no status",
    };
    format!(
        "*{title}*\n{} → {}\n`{}` · {status}",
        shown(body, body.get("previous_value").filter(|v| !v.is_null())),
        shown(body, body.get("value")),
        bar(decimal(body.get("progress")))
    )
}

impl SlackSink {
    /// Posts a digest: its `text` (objectives, key results, changes, movers).
    pub(super) async fn send_digest(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let text = body
            .get("text")
            .and_then(Json::as_str)
            .unwrap_or("OKR digest");
        let payload = json!({ "text": text }).to_string();
        self.http
            .post(
                self.settings.url.expose_secret(),
                payload.into_bytes(),
                "application/json",
                &[],
            )
            .await
            .map(|(status, _)| status)
    }
}

impl Sink for SlackSink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
        let payload = json!({ "text": message(&body) }).to_string();
        self.http
            .post(
                self.settings.url.expose_secret(),
                payload.into_bytes(),
                "application/json",
                &[],
            )
            .await
            .map(|(status, _)| status)
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        // An empty payload posts nothing: a live webhook refuses it with `no_text` (or
        // `invalid_payload`); a revoked or mistyped one answers 403/404/410.
        match self
            .http
            .post(
                self.settings.url.expose_secret(),
                b"{}".to_vec(),
                "application/json",
                &[],
            )
            .await
        {
            Ok(_) => Ok(vec!["the webhook accepted an empty message".into()]),
            Err(e)
                if e.status == Some(400)
                    && ["no_text", "invalid_payload", "missing_text"]
                        .iter()
                        .any(|c| e.message.contains(c)) =>
            {
                Ok(vec!["incoming webhook is live (nothing was posted)".into()])
            }
            Err(e) => Err(format!(
                "{}; check the sink's url (Slack: Apps → Incoming Webhooks → the channel's URL)",
                e.message
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: Option<&str>) -> SlackSettings {
        SlackSettings {
            url: "https://hooks.slack.com/services/T/B/x".to_string().into(),
            threshold: threshold.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn posts_on_status_change_or_a_move_by_the_threshold() {
        let b = |v: f64, s: &str| json!({"value": v, "status": s});
        let s = settings(Some("0.01"));
        assert!(wants(&s, &b(0.20, "at_risk"), None));
        assert!(!wants(&s, &b(0.205, "at_risk"), Some(&b(0.20, "at_risk"))));
        assert!(wants(&s, &b(0.21, "at_risk"), Some(&b(0.20, "at_risk"))));
        assert!(wants(&s, &b(0.201, "on_track"), Some(&b(0.20, "at_risk"))));
        assert!(wants(
            &settings(None),
            &b(0.2001, "at_risk"),
            Some(&b(0.20, "at_risk"))
        ));
    }

    #[test]
    fn message_has_title_old_new_bar_and_status() {
        let body = json!({
            "key_result": {"title": "Conversion 2% → 3%", "kpi": "conversion_rate"},
            "value": 0.2143, "previous_value": 0.2101, "progress": 0.4614, "status": "on_track"
        });
        assert_eq!(
            message(&body),
            "*Conversion 2% → 3%*\n21.01% → 21.43%\n`█████░░░░░ 46%` · on track"
        );
    }
}
