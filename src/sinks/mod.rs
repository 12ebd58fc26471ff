//! Sinks: where check-ins are pushed (a webhook, Slack, an Asana goal, a Notion page, a
//! Google sheet). One small [`Sink`] trait, a closed
//! enum [`AnySink`] built from `[[sinks]]`, one file per kind. Check-ins reach sinks only
//! through the outbox (`store::outbox`), written in the check-in's own transaction; the
//! delivery worker (`deliver.rs`) sends pending entries at least once, in check-in order per
//! key result, with the same idempotency key and body on every attempt.

mod asana;
pub mod deliver;
pub mod digest;
mod notion;
pub mod payload;
mod sheets;
mod slack;
mod webhook;

use std::time::Duration;

use serde_json::Value as Json;

use crate::config::{ExposeSecret, SinkKind, SinkSettings};
use crate::runtime::Clock;
use crate::sources::http::Redactor;
use crate::store::OutboxRow;

pub use deliver::{DeliveryRun, deliver_sink, worker};

/// A failed delivery attempt. `message` is redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    /// The HTTP status, when the sink answered.
    pub status: Option<u16>,
    pub message: String,
    /// The sink's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
    /// Resending the same request cannot succeed until the configuration changes (a goal
    /// without a metric, a missing page, a revoked token): the worker waits
    /// [`deliver::PERMANENT_RETRY`] instead of backing off, and `okrsync push` retries now.
    pub permanent: bool,
}

impl SendError {
    /// Marks a 4xx other than 408/429 as permanent (see [`SendError::permanent`]).
    pub(crate) fn permanent_if_4xx(mut self) -> SendError {
        if let Some(s) = self.status {
            self.permanent = (400..500).contains(&s) && s != 408 && s != 429;
        }
        self
    }
}

/// What every sink does.
#[allow(async_fn_in_trait)] // used through the closed enum only, never as `dyn`
pub trait Sink {
    /// Sends one outbox entry; `Ok` holds the 2xx status.
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError>;
    /// Reaches the service without changing anything there; notes on success.
    async fn check_online(&self) -> Result<Vec<String>, String>;
}

/// Every configured sink, built from its settings.
pub enum AnySink {
    Webhook(webhook::WebhookSink),
    Slack(slack::SlackSink),
    AsanaGoal(asana::AsanaGoalSink),
    Notion(notion::NotionSink),
    /// Boxed: the key pair and token cache make it several times larger than the others.
    GoogleSheets(Box<sheets::SheetsSink>),
}

impl AnySink {
    pub fn new(s: &SinkSettings, clock: &Clock) -> Result<AnySink, String> {
        let http = SinkHttp::new(s, clock)?;
        Ok(match &s.kind {
            SinkKind::Webhook(w) => AnySink::Webhook(webhook::WebhookSink::new(w.clone(), http)),
            SinkKind::Slack(w) => AnySink::Slack(slack::SlackSink::new(w.clone(), http)),
            SinkKind::AsanaGoal(a) => {
                AnySink::AsanaGoal(asana::AsanaGoalSink::new(a.clone(), http))
            }
            SinkKind::Notion(n) => AnySink::Notion(notion::NotionSink::new(n.clone(), http)),
            SinkKind::GoogleSheets(g) => {
                AnySink::GoogleSheets(Box::new(sheets::SheetsSink::new(g.clone(), http)?))
            }
        })
    }
}

impl Sink for AnySink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        if entry.digest_id.is_some() {
            return match self {
                // The document itself (or the body template filled from it).
                AnySink::Webhook(s) => s.send(entry).await,
                AnySink::Slack(s) => s.send_digest(entry).await,
                AnySink::GoogleSheets(s) => s.send_digest(entry).await,
                // Config refuses these in digest.sinks; an entry queued before such a change
                // is a configuration problem, not something a retry fixes.
                AnySink::AsanaGoal(_) | AnySink::Notion(_) => Err(SendError {
                    status: None,
                    message: "a digest does not apply to this sink (it holds one number per key result); remove it from digest.sinks".into(),
                    retry_after: None,
                    permanent: true,
                }),
            };
        }
        match self {
            AnySink::Webhook(s) => s.send(entry).await,
            AnySink::Slack(s) => s.send(entry).await,
            AnySink::AsanaGoal(s) => s.send(entry).await,
            AnySink::Notion(s) => s.send(entry).await,
            AnySink::GoogleSheets(s) => s.send(entry).await,
        }
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        match self {
            AnySink::Webhook(s) => s.check_online().await,
            AnySink::Slack(s) => s.check_online().await,
            AnySink::AsanaGoal(s) => s.check_online().await,
            AnySink::Notion(s) => s.check_online().await,
            AnySink::GoogleSheets(s) => s.check_online().await,
        }
    }
}

/// Whether a check-in (its v1 `body`) is queued for sink `s`, given the body last queued for
/// it (`last`). Slack posts only on a change of status or a move by `threshold`; other sinks
/// receive every check-in, except that a goal or a page (Asana, Notion) only takes a value:
/// a check-in without one (the KPI is undefined) leaves the number there as it is.
pub fn wants(s: &SinkSettings, body: &Json, last: Option<&Json>) -> bool {
    match &s.kind {
        SinkKind::Slack(slack) => slack::wants(slack, body, last),
        SinkKind::Webhook(_) => true,
        SinkKind::AsanaGoal(_) | SinkKind::Notion(_) => {
            body.get("value").is_some_and(|v| !v.is_null())
        }
        // A log tab records every check-in; cells only take values.
        SinkKind::GoogleSheets(g) => {
            g.log_tab.is_some() || body.get("value").is_some_and(|v| !v.is_null())
        }
    }
}

/// The check-in's value as a JSON number for services that store numbers (Asana, Notion):
/// counts and rates (fractions) are numbers in the v1 body already; money is a decimal string
/// there and becomes a JSON number here, parsed by serde_json from its exact decimal text (the
/// one place a money value becomes a binary float, because these APIs store doubles).
pub fn value_number(body: &Json) -> Option<serde_json::Number> {
    match body.get("value")? {
        Json::Number(n) => Some(n.clone()),
        Json::String(s) => {
            let d: rust_decimal::Decimal = s.trim().parse().ok()?;
            serde_json::from_str(&d.normalize().to_string()).ok()
        }
        _ => None,
    }
}

/// The message of a JSON error body as Asana (`{"errors": [{"message": …}]}`) or Notion
/// (`{"object": "error", "code": …, "message": …}`) write it, whole (not cut like an excerpt).
fn service_message(text: &str) -> Option<String> {
    let v: Json = serde_json::from_str(text).ok()?;
    if let Some(errors) = v.get("errors").and_then(Json::as_array) {
        let m: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Json::as_str))
            .collect();
        return (!m.is_empty()).then(|| m.join("; "));
    }
    // Google: {"error": {"code", "message", "status"}} or, from the token endpoint,
    // {"error": "invalid_grant", "error_description": …}.
    if let Some(m) = v.pointer("/error/message").and_then(Json::as_str) {
        return Some(m.chars().take(500).collect());
    }
    if let Some(code) = v.get("error").and_then(Json::as_str) {
        let d = v
            .get("error_description")
            .and_then(Json::as_str)
            .unwrap_or("");
        return Some(format!("{code}: {d}").chars().take(500).collect());
    }
    let message = v.get("message").and_then(Json::as_str)?;
    Some(match v.get("code").and_then(Json::as_str) {
        Some(code) => format!("{code}: {message}"),
        None => message.to_string(),
    })
    .map(|m| m.chars().take(500).collect())
}

/// For sinks that update one target per key result (an Asana goal, a Notion page): the
/// target `targets` maps the body's key result to (`what` names the config key) and the value
/// as a number. A missing one is permanent: the same check-in can never succeed.
pub(crate) fn target_and_value<'t>(
    sink: &str,
    body: &Json,
    targets: &'t std::collections::BTreeMap<String, String>,
    what: &str,
) -> Result<(&'t String, serde_json::Number), SendError> {
    let kr = key_result_id(body);
    let refuse = |message: String| SendError {
        status: None,
        message,
        retry_after: None,
        permanent: true,
    };
    let Some(target) = targets.get(kr) else {
        return Err(refuse(format!(
            "sink `{sink}`: key result `{kr}` has no {what} in `{what}s`"
        )));
    };
    let Some(value) = value_number(body) else {
        return Err(refuse(format!(
            "sink `{sink}`: the check-in of key result `{kr}` has no numeric value"
        )));
    };
    Ok((target, value))
}

/// The key result id of a v1 body.
fn key_result_id(body: &Json) -> &str {
    body.pointer("/key_result/id")
        .and_then(Json::as_str)
        .unwrap_or_default()
}

/// The HTTP client of one sink: its timeout, no redirects (a redirect would carry a signed
/// body or a token-bearing URL elsewhere), and the redactor of its secrets.
pub(crate) struct SinkHttp {
    client: reqwest::Client,
    redactor: Redactor,
    name: String,
    clock: Clock,
    /// Least time between two requests (a service's documented rate), if any.
    pace: Option<Duration>,
    next_slot: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl SinkHttp {
    fn new(s: &SinkSettings, clock: &Clock) -> Result<SinkHttp, String> {
        crate::sources::http::init_tls();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(s.timeout)
            .connect_timeout(s.timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("okrsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client of sink `{}`: {e}", s.name))?;
        let mut redactor = Redactor::default();
        match &s.kind {
            SinkKind::Webhook(w) => {
                if let Some(secret) = &w.secret {
                    redactor.add(secret.expose_secret());
                }
            }
            SinkKind::Slack(w) => {
                let url = w.url.expose_secret();
                redactor.add(url);
                // The path of an incoming-webhook URL is its token.
                if let Ok(u) = reqwest::Url::parse(url) {
                    redactor.add(u.path());
                }
            }
            SinkKind::AsanaGoal(a) => redactor.add(a.token.expose_secret()),
            SinkKind::Notion(n) => redactor.add(n.token.expose_secret()),
            // The key's PEM is added by the sink; tokens and assertions as they are made.
            SinkKind::GoogleSheets(_) => {}
        }
        let pace = match &s.kind {
            SinkKind::Notion(_) => Some(notion::PACE),
            _ => None,
        };
        Ok(SinkHttp {
            client,
            redactor,
            name: s.name.clone(),
            clock: clock.clone(),
            pace,
            next_slot: tokio::sync::Mutex::new(None),
        })
    }

    /// POSTs `body` with `headers`; 2xx → `Ok(status)`; anything else a [`SendError`] whose
    /// message names the sink (never the URL, which may be a credential) and is redacted.
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
        headers: &[(&str, String)],
    ) -> Result<(u16, String), SendError> {
        self.request(
            reqwest::Method::POST,
            url,
            Some((body, content_type)),
            headers,
        )
        .await
    }

    /// Sends one request (paced when the sink has a pace); 2xx → `Ok((status, body))`;
    /// anything else a redacted [`SendError`] naming the sink, never the URL.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<(Vec<u8>, &str)>,
        headers: &[(&str, String)],
    ) -> Result<(u16, String), SendError> {
        if let Some(pace) = self.pace {
            let mut slot = self.next_slot.lock().await;
            if let Some(at) = *slot {
                tokio::time::sleep_until(at).await;
            }
            *slot = Some(tokio::time::Instant::now() + pace);
        }
        let mut req = self.client.request(method, url);
        if let Some((body, content_type)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        for (k, v) in headers {
            match reqwest::header::HeaderValue::from_str(v) {
                Ok(mut value) => {
                    // Credentials stay out of any Debug print of the request.
                    value.set_sensitive(k.eq_ignore_ascii_case("authorization"));
                    req = req.header(*k, value);
                }
                Err(_) => req = req.header(*k, v),
            }
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let retry_after = crate::sources::http::parse_retry_after(resp.headers(), self.clock.now());
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok((status, text));
        }
        Err(SendError {
            status: Some(status),
            message: self.redactor.redact(&format!(
                "sink `{}` answered HTTP {status}: {}",
                self.name,
                service_message(&text)
                    .unwrap_or_else(|| crate::sources::http::excerpt(text.as_bytes()))
            )),
            retry_after,
            permanent: false,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> SendError {
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "could not connect".to_string()
        } else {
            "failed".to_string()
        };
        let mut chain = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            chain = s.to_string();
            src = s.source();
        }
        SendError {
            status: None,
            message: self.redactor.redact(&format!(
                "request to sink `{}` {what}{}",
                self.name,
                if chain.is_empty() {
                    String::new()
                } else {
                    format!(" ({chain})")
                }
            )),
            retry_after: None,
            permanent: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_json_numbers_from_their_exact_decimal_text() {
        let n = |v: Json| value_number(&json!({ "value": v })).map(|n| n.to_string());
        assert_eq!(n(json!("84.20")).as_deref(), Some("84.2"));
        assert_eq!(n(json!("1234567.891")).as_deref(), Some("1234567.891"));
        assert_eq!(
            n(json!("12.00")).as_deref(),
            Some("12"),
            "integral money stays integral"
        );
        assert_eq!(n(json!(0.2143)).as_deref(), Some("0.2143"));
        assert_eq!(n(json!(7)).as_deref(), Some("7"));
        assert_eq!(n(json!(null)), None);
        assert_eq!(n(json!("n/a")), None);
    }

    #[test]
    fn service_errors_are_quoted_whole() {
        assert_eq!(
            service_message(r#"{"errors":[{"message":"goal: Not a recognized ID","help":"…"}]}"#)
                .as_deref(),
            Some("goal: Not a recognized ID")
        );
        assert_eq!(
            service_message(r#"{"object":"error","status":404,"code":"object_not_found","message":"Could not find page"}"#)
                .as_deref(),
            Some("object_not_found: Could not find page")
        );
        assert_eq!(service_message("<html>"), None);
    }

    #[test]
    fn only_4xx_but_408_and_429_are_permanent() {
        let e = |s| {
            SendError {
                status: Some(s),
                message: String::new(),
                retry_after: None,
                permanent: false,
            }
            .permanent_if_4xx()
            .permanent
        };
        assert!(e(400) && e(401) && e(404) && e(422));
        assert!(!e(408) && !e(429) && !e(500) && !e(503));
    }
}
