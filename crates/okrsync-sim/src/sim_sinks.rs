//! Fake sink services: a webhook receiver that checks what `../shared/contracts.md` (Sinks)
//! promises (JSON body v1, `Idempotency-Key`, `X-Okrsync-Signature` verified with the shared
//! secret), and a Slack incoming webhook answering as Slack documents (`ok`; `no_service` for
//! an unknown URL; `no_text`/`invalid_payload` for a bad payload; 429 with `Retry-After`).
//! An Asana API (`/users/me`, `/goals/{gid}`, `POST /goals/{gid}/setMetricCurrentValue`,
//! bearer token, 400 for a goal without a metric) and a Notion API (`/v1/users/me`,
//! `/v1/pages/{id}` GET and PATCH of a Number property, bearer token, `Notion-Version`
//! required, 429 `rate_limited` with `Retry-After` for requests closer than
//! [`NOTION_MIN_GAP`]). All can be scripted to fail for a while and to delay their answers.

use std::collections::{BTreeMap, VecDeque};
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
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
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
    /// Asana / Notion: the token expected after `Bearer `.
    pub token: String,
    /// Asana goals by gid: `Some(current_number_value)` for a goal with a numeric metric,
    /// `None` for a goal without a metric.
    pub goals: BTreeMap<String, Option<serde_json::Value>>,
    /// Notion pages by id (hyphenated): property name → (type, value).
    pub pages: BTreeMap<String, BTreeMap<String, (String, serde_json::Value)>>,
    /// Notion: when the last request arrived (for the rate limit).
    pub last_arrival: Option<std::time::Instant>,
    /// Google Sheets: the service account's public key (PKCS#1 DER) the JWT must verify with,
    /// `http://<addr>/token` (the JWT's `aud`), the spreadsheet, its tabs, the cells written
    /// (A1 range → value), the rows appended (tab, row) and how many tokens were issued.
    pub sheets_public_key: Vec<u8>,
    pub token_uri: String,
    pub spreadsheet_id: String,
    pub tabs: Vec<String>,
    pub cells: BTreeMap<String, serde_json::Value>,
    pub appended: Vec<(String, Vec<serde_json::Value>)>,
    pub tokens_issued: u32,
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
    Asana,
    Notion,
    Sheets,
}

/// The fake Notion's rate rule: a request closer than this to the previous one is answered
/// 429 `rate_limited` (`Retry-After: 1`). Notion documents an average of 3 requests per second
/// with some bursts; this gap is looser than 1/3 s so that a client pacing at ~3/s passes
/// whatever the scheduling jitter, and any unpaced client fails.
pub const NOTION_MIN_GAP: Duration = Duration::from_millis(250);

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

    /// An Asana API accepting `token`; goals are added with [`SimSink::with_state`].
    pub async fn asana(token: &str) -> std::io::Result<SimSink> {
        Self::start(
            Kind::Asana,
            SinkState {
                token: token.to_string(),
                ..SinkState::default()
            },
        )
        .await
    }

    /// A Notion API accepting `token`; pages are added with [`SimSink::with_state`].
    pub async fn notion(token: &str) -> std::io::Result<SimSink> {
        Self::start(
            Kind::Notion,
            SinkState {
                token: token.to_string(),
                ..SinkState::default()
            },
        )
        .await
    }

    /// A Google Sheets API with its token endpoint (`/token`): the JWT must verify with
    /// `public_key` (PKCS#1 DER); `access_token` is the token it issues.
    pub async fn sheets(
        public_key: Vec<u8>,
        access_token: &str,
        spreadsheet_id: &str,
        tabs: &[&str],
    ) -> std::io::Result<SimSink> {
        Self::start(
            Kind::Sheets,
            SinkState {
                sheets_public_key: public_key,
                token: access_token.to_string(),
                spreadsheet_id: spreadsheet_id.to_string(),
                tabs: tabs.iter().map(|t| t.to_string()).collect(),
                ..SinkState::default()
            },
        )
        .await
    }

    async fn start(kind: Kind, mut state: SinkState) -> std::io::Result<SimSink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        state.token_uri = format!("http://{addr}/token");
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
    if v.get("type").and_then(|t| t.as_str()) == Some("digest") {
        return digest_problem(&v);
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

/// Checks a digest document (README, "Weekly digest"): its fields and their types.
fn digest_problem(v: &serde_json::Value) -> Option<String> {
    if v.get("event").and_then(|e| e.as_str()) != Some("okr.digest") {
        return Some("a digest's event must be okr.digest".into());
    }
    for k in ["idempotency_key", "at", "text"] {
        if !v.get(k).is_some_and(|x| x.is_string()) {
            return Some(format!("digest: `{k}` must be a string"));
        }
    }
    if v.get("since").is_none() {
        return Some("digest: missing `since`".into());
    }
    let Some(objectives) = v.get("objectives").and_then(|o| o.as_array()) else {
        return Some("digest: `objectives` must be an array".into());
    };
    for o in objectives {
        let Some(krs) = o.get("key_results").and_then(|k| k.as_array()) else {
            return Some("digest: each objective needs a `key_results` array".into());
        };
        for kr in krs {
            for k in [
                "id",
                "title",
                "value",
                "value_at_last_digest",
                "change",
                "progress",
                "expected_progress",
                "status",
            ] {
                if kr.get(k).is_none() {
                    return Some(format!("digest: a key result lacks `{k}`"));
                }
            }
        }
    }
    if !v.get("top_movers").is_some_and(|t| t.is_array()) {
        return Some("digest: `top_movers` must be an array".into());
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
    let api = matches!(shared.kind, Kind::Asana | Kind::Notion | Kind::Sheets);
    if !api && method == axum::http::Method::HEAD {
        return text(405, "");
    }
    if !api && method != axum::http::Method::POST {
        return text(405, "method not allowed");
    }
    let mut req = SinkRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: header(&headers, "authorization"),
        idempotency_key: header(&headers, "idempotency-key"),
        signature: header(&headers, "x-okrsync-signature"),
        content_type: header(&headers, "content-type"),
        body: body.to_vec(),
        answered: 0,
    };
    // Checks as the service does them, before any scripted fault.
    let mut answer = None;
    let refused = {
        let mut st = lock(&shared.state);
        match shared.kind {
            Kind::Asana => match asana(&mut st, &req, &headers, uri.query()) {
                Ok(ok) => {
                    answer = Some(ok);
                    None
                }
                Err(r) => Some(r),
            },
            Kind::Sheets => match sheets(&mut st, &req, uri.query()) {
                Ok(ok) => {
                    answer = Some(ok);
                    None
                }
                Err(r) => Some(r),
            },
            Kind::Notion => match notion(&mut st, &req, &headers) {
                Ok(ok) => {
                    answer = Some(ok);
                    None
                }
                Err(r) => Some(r),
            },
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
            Kind::Asana | Kind::Notion | Kind::Sheets => {
                answer.take().unwrap_or_else(|| text(500, ""))
            }
        },
    };
    req.answered = resp.status().as_u16();
    lock(&shared.state).requests[index].answered = req.answered;
    resp
}

fn json_answer(status: u16, v: serde_json::Value) -> Response {
    let mut r = text(status, &v.to_string());
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn asana_error(status: u16, message: &str) -> Response {
    json_answer(
        status,
        serde_json::json!({"errors": [{"message": message, "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors"}]}),
    )
}

/// Answers as Asana's API does, or refuses (`Err`). Changes are applied here; a scripted
/// fault afterwards only changes the answer (as if the reply were lost or refused by a proxy),
/// so tests scripting faults use them on requests that fail anyway or check state changes.
#[allow(clippy::result_large_err)] // a test server: an answer either way, built once
fn asana(
    st: &mut SinkState,
    req: &SinkRequest,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, Response> {
    if req.authorization.as_deref() != Some(&format!("Bearer {}", st.token)) {
        return Err(asana_error(401, "Not Authorized"));
    }
    let _ = (headers, query);
    let path = req.path.strip_prefix("/api/1.0").unwrap_or(&req.path);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["users", "me"]) => Ok(json_answer(
            200,
            serde_json::json!({"data": {"gid": "1199", "resource_type": "user", "name": "Sim Owner"}}),
        )),
        ("GET", ["goals", gid]) => match st.goals.get(*gid) {
            None => Err(asana_error(404, "goal: Not a recognized ID")),
            Some(metric) => Ok(json_answer(
                200,
                serde_json::json!({"data": {"gid": gid, "resource_type": "goal", "name": "Goal",
                    "metric": metric.as_ref().map(|v| serde_json::json!({"resource_subtype": "number", "current_number_value": v}))}}),
            )),
        },
        ("POST", ["goals", gid, "setMetricCurrentValue"]) => {
            if req.content_type.as_deref() != Some("application/json") {
                return Err(asana_error(400, "Invalid Request: Content-Type"));
            }
            let v: serde_json::Value = serde_json::from_slice(&req.body)
                .map_err(|_| asana_error(400, "Could not parse request data, invalid JSON"))?;
            let Some(data) = v.get("data").and_then(|d| d.as_object()) else {
                return Err(asana_error(400, "data: Missing input"));
            };
            let Some(n) = data.get("current_number_value").filter(|n| n.is_number()) else {
                return Err(asana_error(
                    400,
                    "current_number_value: Value is not a number",
                ));
            };
            match st.goals.get_mut(*gid) {
                None => Err(asana_error(404, "goal: Not a recognized ID")),
                Some(None) => Err(asana_error(
                    400,
                    "Cannot set the current value of a goal metric: the goal has no metric",
                )),
                Some(Some(current)) => {
                    *current = n.clone();
                    Ok(json_answer(
                        200,
                        serde_json::json!({"data": {"gid": gid, "resource_type": "goal", "metric": {"resource_subtype": "number", "current_number_value": n}}}),
                    ))
                }
            }
        }
        _ => Err(asana_error(404, "No matching route for request")),
    }
}

fn notion_error(status: u16, code: &str, message: &str) -> Response {
    json_answer(
        status,
        serde_json::json!({"object": "error", "status": status, "code": code, "message": message}),
    )
}

/// Answers as Notion's API does, or refuses (`Err`).
#[allow(clippy::result_large_err)] // a test server: an answer either way, built once
fn notion(
    st: &mut SinkState,
    req: &SinkRequest,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    let now = std::time::Instant::now();
    let last = st.last_arrival.replace(now);
    if last.is_some_and(|l| now.duration_since(l) < NOTION_MIN_GAP) {
        let mut r = notion_error(
            429,
            "rate_limited",
            "You have been rate limited. Please try again in a few minutes.",
        );
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
        return Err(r);
    }
    if req.authorization.as_deref() != Some(&format!("Bearer {}", st.token)) {
        return Err(notion_error(401, "unauthorized", "API token is invalid."));
    }
    match header(headers, "notion-version") {
        Some(v) if v == "2022-06-28" => {}
        other => {
            return Err(notion_error(
                400,
                "missing_version",
                &format!(
                    "Notion-Version header failed validation: Notion-Version header should be defined, instead was `{}`.",
                    other.unwrap_or_else(|| "undefined".into())
                ),
            ));
        }
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let not_found = |id: &str| {
        notion_error(
            404,
            "object_not_found",
            &format!(
                "Could not find page with ID: {id}. Make sure the relevant pages and databases are shared with your integration."
            ),
        )
    };
    let page_json = |id: &str, props: &BTreeMap<String, (String, serde_json::Value)>| {
        let properties: serde_json::Map<String, serde_json::Value> = props
            .iter()
            .map(|(k, (t, v))| {
                (
                    k.clone(),
                    serde_json::json!({"id": "x", "type": t, t.as_str(): v}),
                )
            })
            .collect();
        serde_json::json!({"object": "page", "id": id, "properties": properties})
    };
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["v1", "users", "me"]) => Ok(json_answer(
            200,
            serde_json::json!({"object": "user", "id": "b0t", "type": "bot", "name": "okrsync sim"}),
        )),
        ("GET", ["v1", "pages", id]) => match st.pages.get(*id) {
            None => Err(not_found(id)),
            Some(p) => Ok(json_answer(200, page_json(id, p))),
        },
        ("PATCH", ["v1", "pages", id]) => {
            if req.content_type.as_deref() != Some("application/json") {
                return Err(notion_error(
                    400,
                    "invalid_request",
                    "Content-Type must be application/json",
                ));
            }
            let v: serde_json::Value = serde_json::from_slice(&req.body)
                .map_err(|_| notion_error(400, "invalid_json", "Error parsing JSON body."))?;
            let Some(page) = st.pages.get_mut(*id) else {
                return Err(not_found(id));
            };
            let Some(props) = v.get("properties").and_then(|p| p.as_object()) else {
                return Err(notion_error(
                    400,
                    "validation_error",
                    "body failed validation: body.properties should be defined.",
                ));
            };
            for (name, value) in props {
                let Some((kind, _)) = page.get(name) else {
                    return Err(notion_error(
                        400,
                        "validation_error",
                        &format!("{name} is not a property that exists."),
                    ));
                };
                if kind != "number"
                    || value.as_object().map(|o| o.keys().collect::<Vec<_>>())
                        != Some(vec![&"number".to_string()])
                {
                    return Err(notion_error(
                        400,
                        "validation_error",
                        &format!("{name} is expected to be {kind}."),
                    ));
                }
                if !(value["number"].is_number() || value["number"].is_null()) {
                    return Err(notion_error(
                        400,
                        "validation_error",
                        &format!(
                            "body failed validation: body.properties.{name}.number should be a number or `null`."
                        ),
                    ));
                }
            }
            for (name, value) in props {
                if let Some(p) = page.get_mut(name) {
                    p.1 = value["number"].clone();
                }
            }
            let answer = page_json(id, page);
            Ok(json_answer(200, answer))
        }
        _ => Err(notion_error(
            400,
            "invalid_request_url",
            "Invalid request URL.",
        )),
    }
}

fn google_error(status: u16, code: &str, message: &str) -> Response {
    json_answer(
        status,
        serde_json::json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tab of an A1 range (`'My tab'!A:E` → `My tab`), if the range names one.
fn a1_tab(range: &str) -> Option<String> {
    let (tab, _) = range.rsplit_once('!')?;
    let tab = match tab.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(q) => q.replace("''", "'"),
        None => tab.to_string(),
    };
    Some(tab)
}

/// Answers as the Sheets API v4 (and Google's token endpoint) do, or refuses (`Err`).
#[allow(clippy::result_large_err)] // a test server: an answer either way, built once
fn sheets(
    st: &mut SinkState,
    req: &SinkRequest,
    query: Option<&str>,
) -> Result<Response, Response> {
    if req.path == "/token" && req.method == "POST" {
        let body = String::from_utf8_lossy(&req.body);
        return match crate::sim_analytics::verify_jwt_grant(
            &st.sheets_public_key,
            &body,
            &st.token_uri,
            "auth/spreadsheets",
        ) {
            Ok(()) => {
                st.tokens_issued += 1;
                Ok(json_answer(
                    200,
                    serde_json::json!({"access_token": st.token, "expires_in": 3599, "token_type": "Bearer"}),
                ))
            }
            Err((status, v)) => Err(json_answer(status, v)),
        };
    }
    if req.authorization.as_deref() != Some(&format!("Bearer {}", st.token)) {
        return Err(google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        ));
    }
    let q: BTreeMap<String, String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let parts: Vec<String> = req
        .path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (["v4", "spreadsheets", id] | ["v4", "spreadsheets", id, "values", _]) = parts.as_slice()
    else {
        return Err(google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
        ));
    };
    if *id != st.spreadsheet_id {
        return Err(google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
        ));
    }
    let range = parts.get(4).copied();
    let bad_range = |r: &str| {
        google_error(
            400,
            "INVALID_ARGUMENT",
            &format!("Unable to parse range: {r}"),
        )
    };
    match (req.method.as_str(), range) {
        ("GET", None) => {
            let sheets: Vec<serde_json::Value> = st
                .tabs
                .iter()
                .map(|t| serde_json::json!({"properties": {"title": t}}))
                .collect();
            Ok(json_answer(
                200,
                serde_json::json!({"properties": {"title": "OKR tracker"}, "sheets": sheets}),
            ))
        }
        ("PUT", Some(r)) | ("POST", Some(r)) => {
            let append = req.method == "POST";
            let r = if append {
                match r.strip_suffix(":append") {
                    Some(r) => r,
                    None => {
                        return Err(google_error(
                            404,
                            "NOT_FOUND",
                            "Requested entity was not found.",
                        ));
                    }
                }
            } else {
                r
            };
            match q.get("valueInputOption").map(String::as_str) {
                Some("RAW" | "USER_ENTERED") => {}
                _ => {
                    return Err(google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "'valueInputOption' is required but not specified",
                    ));
                }
            }
            let Some(tab) = a1_tab(r).filter(|t| st.tabs.contains(t)) else {
                return Err(bad_range(r));
            };
            let v: serde_json::Value = serde_json::from_slice(&req.body).map_err(|_| {
                google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            })?;
            if let Some(body_range) = v.get("range").and_then(|x| x.as_str())
                && body_range != r
            {
                return Err(google_error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!(
                        "Requested writing within range [{r}], but tried writing to [{body_range}]"
                    ),
                ));
            }
            let Some(rows) = v.get("values").and_then(|x| x.as_array()) else {
                return Err(google_error(400, "INVALID_ARGUMENT", "values: required"));
            };
            let ok_cell = |c: &serde_json::Value| {
                c.is_number() || c.is_string() || c.is_null() || c.is_boolean()
            };
            for row in rows {
                if !row
                    .as_array()
                    .is_some_and(|cells| cells.iter().all(ok_cell))
                {
                    return Err(google_error(
                        400,
                        "INVALID_ARGUMENT",
                        "Invalid values: each row must be a list of scalars",
                    ));
                }
            }
            if append {
                for row in rows {
                    st.appended
                        .push((tab.clone(), row.as_array().cloned().unwrap_or_default()));
                }
            } else {
                if rows.len() != 1 || rows[0].as_array().map(Vec::len) != Some(1) {
                    return Err(google_error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!(
                            "Requested writing within range [{r}], but tried writing to more cells"
                        ),
                    ));
                }
                st.cells.insert(r.to_string(), rows[0][0].clone());
            }
            Ok(json_answer(
                200,
                serde_json::json!({"spreadsheetId": id, "updatedRange": r, "updatedRows": rows.len()}),
            ))
        }
        _ => Err(google_error(
            404,
            "NOT_FOUND",
            "Requested entity was not found.",
        )),
    }
}
