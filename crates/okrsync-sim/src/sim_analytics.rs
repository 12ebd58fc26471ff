//! Fake analytics providers over real HTTP, speaking each documented wire format: Plausible
//! Stats API v2, Matomo `VisitsSummary.get` (errors as HTTP 200), PageSpeed Insights v5 and
//! GA4 (token exchange verifying the JWT's RS256 signature with the public key, then
//! `runReport` with string values and `YYYYMMDD` dates). Used by `okrsync demo` and tests.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::NaiveDate;
use serde_json::{Value, json};

/// One day of simulated traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimDay {
    pub sessions: u64,
    pub visitors: u64,
    pub bounces: u64,
}

/// What the fake serves and checks.
#[derive(Debug, Clone, Default)]
pub struct SimAnalyticsState {
    /// Traffic by day; days absent here are absent from answers (GA4, Plausible) or `[]`
    /// (Matomo).
    pub days: BTreeMap<NaiveDate, SimDay>,
    /// Plausible Bearer key, Matomo token_auth.
    pub api_key: String,
    /// GA4: the PKCS#1 DER public key the JWT must verify with, and the token it issues.
    pub ga4_public_key: Vec<u8>,
    pub ga4_access_token: String,
    pub ga4_time_zone: String,
    /// PageSpeed: score 0..1 and LCP ms returned for every URL.
    pub pagespeed_score: String,
    pub pagespeed_lcp_ms: f64,
    /// PageSpeed: this URL fails with a Lighthouse error (HTTP 500).
    pub pagespeed_fail_url: Option<String>,
}

/// A canned answer given instead of the real one, `times` times.
#[derive(Debug, Clone)]
pub struct SimFault {
    /// Path prefix it applies to (`/api/v2/query`, `/token`, …).
    pub path: String,
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
    pub times: u32,
}

/// One request received: method, path, query and body (for secret checks).
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: String,
}

struct Shared {
    /// `http://<addr>/token`: the JWT's `aud` must be exactly this (the key's `token_uri`).
    token_uri: String,
    state: Mutex<SimAnalyticsState>,
    faults: Mutex<VecDeque<SimFault>>,
    requests: Mutex<Vec<SimRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake.
pub struct SimAnalytics {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl SimAnalytics {
    pub async fn start(state: SimAnalyticsState) -> std::io::Result<SimAnalytics> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token_uri: format!("http://{addr}/token"),
            state: Mutex::new(state),
            faults: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SimAnalytics { shared, addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimAnalyticsState) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }

    pub fn inject(&self, fault: SimFault) {
        lock(&self.shared.faults).push_back(fault);
    }

    pub fn requests(&self) -> Vec<SimRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

fn reply(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn form(body: &str) -> BTreeMap<String, String> {
    url::Url::parse(&format!("http://x/?{body}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn dates(from: &str, to: &str) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::parse_from_str(from, "%Y-%m-%d").ok()?,
        NaiveDate::parse_from_str(to, "%Y-%m-%d").ok()?,
    ))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body = String::from_utf8_lossy(&body).to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    lock(&shared.requests).push(SimRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        authorization: authorization.clone(),
        body: body.clone(),
    });
    {
        let mut faults = lock(&shared.faults);
        if let Some(f) = faults
            .iter_mut()
            .find(|f| path.starts_with(&f.path) && f.times > 0)
        {
            f.times -= 1;
            let mut r = (
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                f.body.clone(),
            )
                .into_response();
            if let Some(s) = f.retry_after
                && let Ok(v) = s.to_string().parse()
            {
                r.headers_mut().insert("retry-after", v);
            }
            faults.retain(|f| f.times > 0);
            return r;
        }
    }
    let st = lock(&shared.state).clone();
    let bearer = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/v2/query") => plausible(&st, &bearer, &body),
        ("POST", "/index.php") => matomo(&st, uri.query().unwrap_or_default(), &body),
        ("GET", "/pagespeedonline/v5/runPagespeed") => pagespeed(&st, &headers, &uri),
        ("POST", "/token") => ga4_token(&st, &body, &shared.token_uri),
        ("POST", p) if p.starts_with("/v1beta/properties/") && p.ends_with(":runReport") => {
            ga4_report(&st, &bearer, &body)
        }
        _ => reply(404, json!({"error": "not found"})),
    }
}

fn plausible(st: &SimAnalyticsState, bearer: &str, body: &str) -> Response {
    if bearer != st.api_key {
        return reply(
            401,
            json!({"error": "Invalid API key or site ID. Please double-check the key and the site ID."}),
        );
    }
    let Ok(q) = serde_json::from_str::<Value>(body) else {
        return reply(400, json!({"error": "invalid JSON"}));
    };
    if q.get("site_id").and_then(Value::as_str).is_none() {
        return reply(
            400,
            json!({"error": "#/site_id: Required property site_id was not present."}),
        );
    }
    let range = q.get("date_range");
    let (from, to) = match range
        .and_then(Value::as_array)
        .and_then(|a| dates(a.first()?.as_str()?, a.get(1)?.as_str()?))
    {
        Some(r) => r,
        None => {
            let total: u64 = st.days.values().map(|d| d.sessions).sum();
            return reply(
                200,
                json!({"results": [{"metrics": [total], "dimensions": []}], "meta": {}, "query": q}),
            );
        }
    };
    let results: Vec<Value> = st
        .days
        .range(from..=to)
        .filter(|(_, d)| d.sessions > 0)
        .map(|(day, d)| {
            let pct = if d.sessions == 0 {
                0.0
            } else {
                (d.bounces as f64 * 100.0 / d.sessions as f64).round()
            };
            json!({"dimensions": [day.to_string()], "metrics": [d.sessions, d.visitors, pct]})
        })
        .collect();
    reply(200, json!({"results": results, "meta": {}, "query": q}))
}

fn matomo(st: &SimAnalyticsState, query: &str, body: &str) -> Response {
    let q = form(query);
    let b = form(body);
    if q.contains_key("token_auth") {
        return reply(
            200,
            json!({"result": "error", "message": "token_auth must be sent in the POST body"}),
        );
    }
    if b.get("token_auth").map(String::as_str) != Some(st.api_key.as_str()) {
        return reply(
            200,
            json!({"result": "error", "message": "You can't access this resource as it requires 'view' access for the website id = 1."}),
        );
    }
    match q.get("method").map(String::as_str) {
        Some("SitesManager.getSiteFromId") => reply(
            200,
            json!({"idsite": "1", "name": "Demo", "timezone": st.ga4_time_zone}),
        ),
        Some("VisitsSummary.get") if q.get("period").map(String::as_str) == Some("day") => {
            let date = q.get("date").cloned().unwrap_or_default();
            let Some((from, to)) = date.split_once(',').and_then(|(a, b)| dates(a, b)) else {
                return reply(
                    200,
                    json!({"result": "error", "message": "Date format must be: YYYY-MM-DD,YYYY-MM-DD"}),
                );
            };
            let mut out = serde_json::Map::new();
            for day in from.iter_days().take_while(|d| *d <= to) {
                let v = match st.days.get(&day) {
                    Some(d) if d.sessions > 0 => json!({
                        "nb_uniq_visitors": d.visitors, "nb_visits": d.sessions,
                        "nb_actions": d.sessions * 3, "bounce_count": d.bounces,
                        "bounce_rate": format!("{}%", d.bounces * 100 / d.sessions.max(1)),
                    }),
                    _ => json!([]),
                };
                out.insert(day.to_string(), v);
            }
            reply(200, Value::Object(out))
        }
        _ => reply(
            200,
            json!({"result": "error", "message": "The method is not supported"}),
        ),
    }
}

fn pagespeed(st: &SimAnalyticsState, headers: &HeaderMap, uri: &Uri) -> Response {
    let q = form(uri.query().unwrap_or_default());
    if q.contains_key("key") {
        return reply(
            400,
            json!({"error": {"code": 400, "message": "the fake expects the key in X-goog-api-key"}}),
        );
    }
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok());
    if !st.api_key.is_empty() && key != Some(st.api_key.as_str()) {
        return reply(
            400,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}),
        );
    }
    let url = q.get("url").cloned().unwrap_or_default();
    if st.pagespeed_fail_url.as_deref() == Some(url.as_str()) {
        return reply(
            500,
            json!({"error": {"code": 500, "message": "Lighthouse returned error: FAILED_DOCUMENT_REQUEST", "status": "INTERNAL"}}),
        );
    }
    let strategy = q
        .get("strategy")
        .cloned()
        .unwrap_or_else(|| "desktop".into());
    let score: Value = st
        .pagespeed_score
        .parse::<f64>()
        .map(Value::from)
        .unwrap_or(Value::Null);
    reply(
        200,
        json!({
            "id": url,
            "lighthouseResult": {
                "requestedUrl": url,
                "configSettings": {"formFactor": strategy},
                "categories": {"performance": {"id": "performance", "score": score}},
                "audits": {
                    "largest-contentful-paint": {"numericValue": st.pagespeed_lcp_ms, "displayValue": format!("{:.1} s", st.pagespeed_lcp_ms / 1000.0)},
                    "first-contentful-paint": {"numericValue": 900.5},
                    "cumulative-layout-shift": {"numericValue": 0.0123},
                    "total-blocking-time": {"numericValue": 120.0},
                }
            }
        }),
    )
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

fn ga4_token(st: &SimAnalyticsState, body: &str, token_uri: &str) -> Response {
    match verify_jwt_grant(&st.ga4_public_key, body, token_uri, "analytics.readonly") {
        Ok(()) => reply(
            200,
            json!({"access_token": st.ga4_access_token, "expires_in": 3599, "token_type": "Bearer"}),
        ),
        Err((status, v)) => reply(status, v),
    }
}

/// Checks a Google token request as `oauth2.googleapis.com/token` does for a service account:
/// grant type, an RS256 JWT verifying with `public_key` (PKCS#1 DER), `aud` = `token_uri`, a
/// scope containing `scope`, `iss`, at most an hour of validity. `Err` holds the answer.
pub fn verify_jwt_grant(
    public_key: &[u8],
    body: &str,
    token_uri: &str,
    scope: &str,
) -> Result<(), (u16, Value)> {
    let f = form(body);
    if f.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err((400, json!({"error": "unsupported_grant_type"})));
    }
    let jwt = f.get("assertion").cloned().unwrap_or_default();
    let parts: Vec<&str> = jwt.split('.').collect();
    let invalid = |why: &str| {
        Err((
            400,
            json!({"error": "invalid_grant", "error_description": why}),
        ))
    };
    if parts.len() != 3 {
        return invalid("malformed JWT");
    }
    let (Some(header), Some(claims), Some(sig)) = (b64(parts[0]), b64(parts[1]), b64(parts[2]))
    else {
        return invalid("bad base64url");
    };
    let header: Value = serde_json::from_slice(&header).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&claims).unwrap_or_default();
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return invalid("alg must be RS256");
    }
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    if key.verify(signed.as_bytes(), &sig).is_err() {
        return invalid("Invalid JWT Signature.");
    }
    let (iat, exp) = (
        claims.get("iat").and_then(Value::as_i64).unwrap_or(0),
        claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
    );
    let aud_ok = claims
        .get("aud")
        .and_then(Value::as_str)
        .is_some_and(|a| a == token_uri);
    let scope_ok = claims
        .get("scope")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains(scope));
    if !aud_ok
        || !scope_ok
        || claims.get("iss").and_then(Value::as_str).is_none()
        || exp - iat > 3600
        || exp <= iat
    {
        return invalid("bad claims (iss, scope, aud, iat, exp)");
    }
    Ok(())
}

fn ga4_report(st: &SimAnalyticsState, bearer: &str, body: &str) -> Response {
    if bearer != st.ga4_access_token {
        return reply(
            401,
            json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
        );
    }
    let q: Value = serde_json::from_str(body).unwrap_or_default();
    let range = q.pointer("/dateRanges/0");
    let Some((from, to)) =
        range.and_then(|r| dates(r.get("startDate")?.as_str()?, r.get("endDate")?.as_str()?))
    else {
        return reply(
            400,
            json!({"error": {"code": 400, "message": "dateRanges required", "status": "INVALID_ARGUMENT"}}),
        );
    };
    let keep_empty = q.get("keepEmptyRows").and_then(Value::as_bool) == Some(true);
    // Days in the fake's map with 0 sessions are "empty rows": sent only with keepEmptyRows.
    let rows: Vec<Value> = st
        .days
        .range(from..=to)
        .filter(|(_, d)| keep_empty || d.sessions > 0)
        .map(|(day, d)| {
            let engaged = d.sessions - d.bounces.min(d.sessions);
            let rate = if d.sessions == 0 { 0.0 } else { d.bounces as f64 / d.sessions as f64 };
            json!({
                "dimensionValues": [{"value": day.format("%Y%m%d").to_string()}],
                "metricValues": [{"value": d.sessions.to_string()}, {"value": format!("{rate}")}, {"value": engaged.to_string()}],
            })
        })
        .collect();
    reply(
        200,
        json!({
            "dimensionHeaders": [{"name": "date"}],
            "metricHeaders": [
                {"name": "sessions", "type": "TYPE_INTEGER"},
                {"name": "bounceRate", "type": "TYPE_FLOAT"},
                {"name": "engagedSessions", "type": "TYPE_INTEGER"}
            ],
            "rowCount": rows.len(),
            "rows": rows,
            "metadata": {"currencyCode": "EUR", "timeZone": st.ga4_time_zone},
            "kind": "analyticsData#runReport"
        }),
    )
}
