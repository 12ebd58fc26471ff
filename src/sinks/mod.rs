//! Sinks: where check-ins are pushed (a webhook, Slack). One small [`Sink`] trait, a closed
//! enum [`AnySink`] built from `[[sinks]]`, one file per kind. Check-ins reach sinks only
//! through the outbox (`store::outbox`), written in the check-in's own transaction; the
//! delivery worker (`deliver.rs`) sends pending entries at least once, in check-in order per
//! key result, with the same idempotency key and body on every attempt.

pub mod deliver;
pub mod payload;
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
}

impl AnySink {
    pub fn new(s: &SinkSettings, clock: &Clock) -> Result<AnySink, String> {
        let http = SinkHttp::new(s, clock)?;
        Ok(match &s.kind {
            SinkKind::Webhook(w) => AnySink::Webhook(webhook::WebhookSink::new(w.clone(), http)),
            SinkKind::Slack(w) => AnySink::Slack(slack::SlackSink::new(w.clone(), http)),
        })
    }
}

impl Sink for AnySink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        match self {
            AnySink::Webhook(s) => s.send(entry).await,
            AnySink::Slack(s) => s.send(entry).await,
        }
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        match self {
            AnySink::Webhook(s) => s.check_online().await,
            AnySink::Slack(s) => s.check_online().await,
        }
    }
}

/// Whether a check-in (its v1 `body`) is queued for sink `s`, given the body last queued for
/// it (`last`). Slack posts only on a change of status or a move by `threshold`; other sinks
/// receive every check-in.
pub fn wants(s: &SinkSettings, body: &Json, last: Option<&Json>) -> bool {
    match &s.kind {
        SinkKind::Slack(slack) => slack::wants(slack, body, last),
        SinkKind::Webhook(_) => true,
    }
}

/// The HTTP client of one sink: its timeout, no redirects (a redirect would carry a signed
/// body or a token-bearing URL elsewhere), and the redactor of its secrets.
pub(crate) struct SinkHttp {
    client: reqwest::Client,
    redactor: Redactor,
    name: String,
    clock: Clock,
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
        }
        Ok(SinkHttp {
            client,
            redactor,
            name: s.name.clone(),
            clock: clock.clone(),
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
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
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
                crate::sources::http::excerpt(text.as_bytes())
            )),
            retry_after,
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
        }
    }
}
