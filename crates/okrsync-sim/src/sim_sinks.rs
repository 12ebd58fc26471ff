//! Fake sink services: a webhook receiver that checks what `../shared/contracts.md` (Sinks)
//! promises (JSON body v1, `Idempotency-Key`, `X-Okrsync-Signature` verified with the shared
//! secret), and a Slack incoming webhook answering as Slack documents (`ok`; `no_service` for
//! an unknown URL; `no_text`/`invalid_payload` for a bad payload; 429 with `Retry-After`).
//! Both can be scripted to fail for a while and to delay their answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// A scripted answer given instead of the normal one (after the request is checked).
#[derive(Debug, Clone, PartialEq)]
pub enum SinkFault {
    /// Answer this status.
    Status(u16),
    /// Answer 429 with `Retry-After: <seconds>`.
    TooMany { retry_after_secs: u64 },
}

/// One request that reached the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRequest {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub signature: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The status answered (0 while the answer is being delayed).
    pub answered: u16,
}

#[derive(Debug, Default)]
pub struct SinkState {
    /// The webhook's shared secret; `None`: signatures are not required.
    pub secret: Option<String>,
    /// The Slack webhook path (`/services/T…/B…/…`): other paths answer 404 `no_service`.
    pub slack_path: String,
    pub faults: VecDeque<SinkFault>,
    /// Delay before answering (the request is recorded on arrival).
    pub delay: Duration,
    pub requests: Vec<SinkRequest>,
}

impl SinkState {
    /// The bodies answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<&SinkRequest> {
        self.requests
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Webhook,
    Slack,
}

struct Shared {
    kind: Kind,
    state: Mutex<SinkState>,
}

fn lock(m: &Mutex<SinkState>) -> MutexGuard<'_, SinkState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake sink.
pub struct SimSink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SimSink {
    /// A webhook receiver; `secret` makes it verify `X-Okrsync-Signature`.
    pub async fn webhook(secret: Option<&str>) -> std::io::Result<SimSink> {
        Self::start(
            Kind::Webhook,
            SinkState {
                secret: secret.map(str::to_string),
                ..SinkState::default()
            },
        )
        .await
    }

    /// A Slack incoming webhook at `path` (`/services/T…/B…/…`).
    pub async fn slack(path: &str) -> std::io::Result<SimSink> {
        Self::start(
            Kind::Slack,
            SinkState {
                slack_path: path.to_string(),
                ..SinkState::default()
            },
        )
        .await
    }

    async fn start(kind: Kind, state: SinkState) -> std::io::Result<SimSink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            kind,
            state: Mutex::new(state),
        });
        let app = Router::new()
            .fallback(any(handle))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SimSink { shared, addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with_state<R>(&self, f: impl FnOnce(&mut SinkState) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }
}

impl Drop for SimSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text(status: u16, body: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response()
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `sha256=<hex HMAC-SHA256>` as contracts.md defines it, computed independently (ring).
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Checks the v1 body shape (contracts.md): the fields and their types.
fn v1_problem(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("body is not JSON: {e}")),
    };
    if v.get("version") != Some(&serde_json::json!(1)) {
        return Some("version must be 1".into());
    }
    if v.get("event").and_then(|e| e.as_str()) != Some("key_result.checkin") {
        return Some("event must be key_result.checkin".into());
    }
    for k in [
        "idempotency_key",
        "key_result",
        "window",
        "value",
        "previous_value",
        "progress",
        "status",
        "at",
    ] {
        if v.get(k).is_none() {
            return Some(format!("missing `{k}`"));
        }
    }
    for k in [
        "id",
        "objective",
        "title",
        "kpi",
        "store",
        "baseline",
        "target",
    ] {
        if v.pointer(&format!("/key_result/{k}")).is_none() {
            return Some(format!("missing `key_result.{k}`"));
        }
    }
    None
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == axum::http::Method::HEAD {
        return text(405, "");
    }
    if method != axum::http::Method::POST {
        return text(405, "method not allowed");
    }
    let mut req = SinkRequest {
        path: uri.path().to_string(),
        idempotency_key: header(&headers, "idempotency-key"),
        signature: header(&headers, "x-okrsync-signature"),
        content_type: header(&headers, "content-type"),
        body: body.to_vec(),
        answered: 0,
    };
    // Checks as the service does them, before any scripted fault.
    let refused = {
        let st = lock(&shared.state);
        match shared.kind {
            Kind::Webhook => {
                if req.content_type.as_deref() != Some("application/json") {
                    Some(text(415, "Content-Type must be application/json"))
                } else if req.idempotency_key.is_none() {
                    Some(text(400, "missing Idempotency-Key"))
                } else if let Some(secret) = &st.secret
                    && req.signature.as_deref() != Some(&webhook_signature(secret, &req.body))
                {
                    Some(text(401, "bad or missing X-Okrsync-Signature"))
                } else {
                    v1_problem(&req.body).map(|p| text(422, &p))
                }
            }
            Kind::Slack => {
                if req.path != st.slack_path {
                    Some(text(404, "no_service"))
                } else {
                    match serde_json::from_slice::<serde_json::Value>(&req.body) {
                        Err(_) => Some(text(400, "invalid_payload")),
                        Ok(v) => match v.get("text").and_then(|t| t.as_str()) {
                            Some(t) if !t.trim().is_empty() => None,
                            _ => Some(text(400, "no_text")),
                        },
                    }
                }
            }
        }
    };
    let (index, delay, fault) = {
        let mut st = lock(&shared.state);
        let fault = if refused.is_none() {
            st.faults.pop_front()
        } else {
            None
        };
        st.requests.push(req.clone());
        (st.requests.len() - 1, st.delay, fault)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let resp = match (refused, fault) {
        (Some(r), _) => r,
        (None, Some(SinkFault::Status(s))) => text(s, "scripted failure"),
        (None, Some(SinkFault::TooMany { retry_after_secs })) => {
            let mut r = text(429, "rate limited");
            r.headers_mut()
                .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
            r
        }
        (None, None) => match shared.kind {
            Kind::Webhook => text(200, "{\"received\":true}"),
            Kind::Slack => text(200, "ok"),
        },
    };
    req.answered = resp.status().as_u16();
    lock(&shared.state).requests[index].answered = req.answered;
    resp
}
