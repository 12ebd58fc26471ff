//! The status server (`[http] listen`): the status page ([`page`]), health, readiness,
//! Prometheus metrics and the JSON APIs, all read from the same report model as the CLI
//! (`krs`, `kpis`, `history`, `logs`). Started by `okrsync run` beside the scheduler and
//! stopped by the same [`Shutdown`].
//!
//! Every route except `/healthz` requires the token when `[http] token` is set, as
//! `Authorization: Bearer <token>` or as the password of HTTP Basic auth (what a browser sends
//! after a 401); compared in constant time, never logged. Store webhooks will live
//! here too (`../shared/contracts.md`, "Store webhooks").

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::config::{ExposeSecret, Settings, StoreSelector};
use crate::daemon::keyresults::{self, KrReport};
use crate::daemon::page;
use crate::daemon::{Clock, Shutdown};
use crate::kpi::WindowSpec;
use crate::store::{RunStatus, RunTotals, Store};

/// Why the status server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "cannot listen on {addr} for the status server ([http] listen): {source}; choose a free port or remove [http] listen"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct AppState {
    settings: Arc<Settings>,
    db: Store,
    clock: Clock,
    /// SHA-256 of the expected bearer token: compared in constant time, whatever its length.
    token_hash: Option<[u8; 32]>,
}

type Shared = Arc<AppState>;

/// A bound status server, not serving yet (binding first lets `run` fail fast on a busy port).
pub struct StatusServer {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl StatusServer {
    /// Binds `[http] listen`.
    pub async fn bind(
        settings: Arc<Settings>,
        db: Store,
        clock: Clock,
    ) -> Result<Option<StatusServer>, HttpError> {
        let Some(http) = settings.http.clone() else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .map_err(|source| HttpError::Bind {
                addr: http.listen,
                source,
            })?;
        let token_hash = http
            .token
            .as_ref()
            .map(|t| sha256(t.expose_secret().as_bytes()));
        let state = Arc::new(AppState {
            settings,
            db,
            clock,
            token_hash,
        });
        Ok(Some(StatusServer {
            listener,
            router: router(state),
        }))
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` fires.
    pub async fn serve(self, mut shutdown: Shutdown) {
        let addr = self.local_addr();
        tracing::info!(addr = ?addr, "status server listening");
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.recv().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "status server stopped");
        }
    }
}

fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/", get(status_page))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/krs", get(api_krs))
        .route("/api/kpis", get(api_kpis))
        .route("/api/logs", get(api_logs))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .with_state(state)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Whether an `Authorization` header carries the expected token (constant time): as a bearer
/// token, or as the password of HTTP Basic auth (any user name), which is how a browser can
/// send it to the status page (it asks for it on a 401).
fn token_matches(expected: &[u8; 32], header: Option<&str>) -> bool {
    let given = match header {
        Some(h) if h.starts_with("Bearer ") => h["Bearer ".len()..].to_string(),
        Some(h) if h.starts_with("Basic ") => {
            use base64::Engine as _;
            let Ok(raw) =
                base64::engine::general_purpose::STANDARD.decode(h["Basic ".len()..].trim())
            else {
                return false;
            };
            let Ok(text) = String::from_utf8(raw) else {
                return false;
            };
            match text.split_once(':') {
                Some((_, password)) => password.to_string(),
                None => return false,
            }
        }
        _ => return false,
    };
    // Both sides are 32-byte digests: the comparison reads every byte whatever differs, and
    // says nothing about the token's length.
    let given = sha256(given.trim().as_bytes());
    let diff = expected
        .iter()
        .zip(given.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

async fn require_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.token_hash {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token_matches(expected, given) {
            return (
                StatusCode::UNAUTHORIZED,
                [
                    (header::WWW_AUTHENTICATE, "Bearer"),
                    (
                        header::WWW_AUTHENTICATE,
                        "Basic realm=\"okrsync status ([http] token as the password)\", charset=\"UTF-8\"",
                    ),
                ],
                json_body(&json!({"error": "a valid token is required (Authorization: Bearer <[http] token>, or HTTP Basic auth with the token as the password)"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

fn json_body(v: &Json) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

fn json_response(status: StatusCode, v: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json_body(v),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_response(status, &json!({"error": message.to_string()}))
}

async fn readyz(State(state): State<Shared>) -> Response {
    let totals = match state.db.run_totals().await {
        Ok(t) => t,
        Err(e) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "reason": format!("the database cannot be read: {e}")}),
            );
        }
    };
    match readiness(&state.settings, &totals, state.clock.now()) {
        Ok(()) => json_response(StatusCode::OK, &json!({"ready": true})),
        Err(reason) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "reason": reason}),
        ),
    }
}

/// Ready when every store and every analytics source has a successful sync not older than
/// 3 of its schedule periods; otherwise the reasons, one per source, each naming it.
pub fn readiness(
    settings: &Settings,
    totals: &[RunTotals],
    now: DateTime<Utc>,
) -> Result<(), String> {
    let mut reasons = Vec::new();
    for (kind, name, _, schedule) in page::configured_sources(settings) {
        let last = totals
            .iter()
            .find(|t| t.store == name)
            .and_then(|t| t.last_success);
        let period = page::schedule_period(schedule, now);
        let what = kind.as_str();
        match last {
            None => reasons.push(format!(
                "{what} `{name}` has no successful sync yet (see `okrsync logs --store {name}`)"
            )),
            Some(t) if now - t > period * page::STALE_AFTER_PERIODS => reasons.push(format!(
                "the last successful sync of {what} `{name}` finished at {}, more than 3 schedule periods ({} s each) ago (see `okrsync logs --store {name} --failed`)",
                t.format("%Y-%m-%dT%H:%M:%SZ"),
                period.num_seconds(),
            )),
            Some(_) => {}
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

async fn current(state: &AppState) -> Result<Vec<KrReport>, Response> {
    keyresults::current_reports(&state.settings, &state.db, state.clock.now())
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// `GET /`: the status page (HTML), from the same model as `krs`, `history` and `logs`.
async fn status_page(State(state): State<Shared>) -> Response {
    match page::load(&state.settings, &state.db, state.clock.now()).await {
        Ok(model) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page::render(&model),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("the status page cannot be built: {e}\n"),
        )
            .into_response(),
    }
}

/// `GET /api/krs`: exactly the `krs --format json` array.
async fn api_krs(State(state): State<Shared>) -> Response {
    match current(&state).await {
        Ok(reports) => json_response(
            StatusCode::OK,
            &Json::Array(reports.iter().map(KrReport::to_json).collect()),
        ),
        Err(r) => r,
    }
}

/// `GET /api/kpis?store=&window=&product=`: the `kpis --format json` object.
async fn api_kpis(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let settings = &state.settings;
    let sel = match q.get("store").map(String::as_str) {
        Some("all") => StoreSelector::All,
        Some(name) if settings.store(name).is_some() => StoreSelector::Named(name.to_string()),
        Some(name) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown store `{name}` (configured: {}; or \"all\")",
                    settings
                        .stores
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        None if settings.stores.len() == 1 => StoreSelector::Named(settings.stores[0].name.clone()),
        None => StoreSelector::All,
    };
    let window_text = q.get("window").map_or("last_30_days", String::as_str);
    let window: WindowSpec = match window_text.parse() {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("window: {e}")),
    };
    let product = q
        .get("product")
        .map(String::as_str)
        .filter(|p| !p.is_empty());
    match keyresults::kpis_report(
        settings,
        &state.db,
        &sel,
        &window,
        state.clock.now(),
        product,
    )
    .await
    {
        Ok(report) => json_response(StatusCode::OK, &report.to_json()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /api/logs?limit=N&store=S&failed=true`: recent runs, as `logs --format json`.
async fn api_logs(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<u32>()) {
        None => 20,
        Some(Ok(n)) => n.min(1000),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "limit: expected a whole number (at most 1000)",
            );
        }
    };
    let failed = q.get("failed").is_some_and(|f| f == "true" || f == "1");
    match state.db.runs(q.get("store").cloned(), limit, failed).await {
        Ok(runs) => match serde_json::to_value(&runs) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<Shared>) -> Response {
    let reports = match current(&state).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let totals = match state.db.run_totals().await {
        Ok(t) => t,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&state.settings, &reports, &totals),
    )
        .into_response()
}

/// A Prometheus label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A JSON value of the report model as a Prometheus sample value: numbers as they are,
/// money (a decimal string) as its number; `None` for null.
fn sample(v: &Json) -> Option<String> {
    match v {
        Json::Number(n) => Some(n.to_string()),
        Json::String(s) if s.parse::<rust_decimal::Decimal>().is_ok() => Some(s.clone()),
        _ => None,
    }
}

/// The metrics text: key results from the `krs` model (a null value has no sample), the
/// sync log's totals per store, analytics source and sink. Every configured store and
/// analytics source has its run, request, retry and record counters from the start (zero
/// before its first run), one sample per run outcome, and an `okrsync_source_info` sample
/// telling which kind of source a `store` label names.
pub fn render_metrics(settings: &Settings, reports: &[KrReport], totals: &[RunTotals]) -> String {
    let mut out = String::new();
    let configured = page::configured_sources(settings);
    let mut totals: Vec<RunTotals> = totals.to_vec();
    for (_, name, _, _) in &configured {
        let t = match totals.iter().position(|t| t.store == *name) {
            Some(i) => &mut totals[i],
            None => {
                totals.push(RunTotals {
                    store: name.to_string(),
                    runs: Vec::new(),
                    requests: 0,
                    retries: 0,
                    fetched: 0,
                    upserted: 0,
                    last_success: None,
                    data_as_of: None,
                });
                totals.last_mut().expect("just pushed")
            }
        };
        for status in [
            RunStatus::Ok,
            RunStatus::Partial,
            RunStatus::Failed,
            RunStatus::Skipped,
        ] {
            if !t.runs.iter().any(|(s, _)| s == status.as_str()) {
                t.runs.push((status.as_str().to_string(), 0));
            }
        }
        t.runs.sort();
    }
    totals.sort_by(|a, b| a.store.cmp(&b.store));
    let totals = &totals[..];
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let krs: Vec<(String, Json)> = reports
        .iter()
        .map(|r| (r.settings.id.clone(), r.to_json()))
        .collect();
    for (name, field, help) in [
        (
            "okrsync_key_result_value",
            "current",
            "Current value of the key result (money as a number).",
        ),
        (
            "okrsync_key_result_progress",
            "progress",
            "Progress of the key result, 0..1.",
        ),
        (
            "okrsync_key_result_expected_progress",
            "expected_progress",
            "Progress expected by now (elapsed share of the period), 0..1.",
        ),
    ] {
        family(&mut out, name, "gauge", help);
        for (id, j) in &krs {
            if j["current"].is_null() {
                continue;
            }
            if let Some(v) = sample(&j[field]) {
                let _ = writeln!(out, "{name}{{key_result=\"{}\"}} {v}", label(id));
            }
        }
    }
    family(
        &mut out,
        "okrsync_sync_runs_total",
        "counter",
        "Finished runs by store (or analytics source, or sink) and outcome.",
    );
    for t in totals {
        for (status, n) in &t.runs {
            let _ = writeln!(
                out,
                "okrsync_sync_runs_total{{store=\"{}\",status=\"{}\"}} {n}",
                label(&t.store),
                label(status)
            );
        }
    }
    for (name, help, get) in [
        (
            "okrsync_http_requests_total",
            "HTTP requests sent to the store's (or source's, or sink's) API, retries included.",
            (|t: &RunTotals| t.requests) as fn(&RunTotals) -> u64,
        ),
        (
            "okrsync_http_retries_total",
            "HTTP requests that were retries.",
            |t: &RunTotals| t.retries,
        ),
        (
            "okrsync_records_fetched_total",
            "Records read from the API.",
            |t: &RunTotals| t.fetched,
        ),
        (
            "okrsync_records_stored_total",
            "Records stored (inserted or updated).",
            |t: &RunTotals| t.upserted,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for t in totals {
            let _ = writeln!(out, "{name}{{store=\"{}\"}} {}", label(&t.store), get(t));
        }
    }
    family(
        &mut out,
        "okrsync_source_info",
        "gauge",
        "One sample per configured store and analytics source: what its `store` label names (kind `store` or `analytics`, and its platform or provider).",
    );
    for (kind, name, platform, _) in &configured {
        let kind = match kind {
            page::SourceKind::Store => "store",
            page::SourceKind::Analytics => "analytics",
        };
        let _ = writeln!(
            out,
            "okrsync_source_info{{store=\"{}\",kind=\"{kind}\",platform=\"{}\"}} 1",
            label(name),
            label(platform)
        );
    }
    family(
        &mut out,
        "okrsync_last_success_timestamp_seconds",
        "gauge",
        "Unix time the last successful run finished.",
    );
    for t in totals {
        if let Some(at) = t.last_success {
            let _ = writeln!(
                out,
                "okrsync_last_success_timestamp_seconds{{store=\"{}\"}} {}",
                label(&t.store),
                at.timestamp()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let expected = sha256(b"s3cret-token");
        assert!(token_matches(&expected, Some("Bearer s3cret-token")));
        assert!(!token_matches(&expected, Some("Bearer s3cret-toke")));
        assert!(!token_matches(&expected, Some("Bearer s3cret-token2")));
        assert!(!token_matches(&expected, Some("Basic s3cret-token")));
        assert!(!token_matches(&expected, Some("s3cret-token")));
        assert!(!token_matches(&expected, None));
        // Basic auth (what a browser sends): any user, the token as the password.
        use base64::Engine as _;
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(token_matches(
            &expected,
            Some(&basic("okrsync:s3cret-token"))
        ));
        assert!(token_matches(&expected, Some(&basic(":s3cret-token"))));
        assert!(!token_matches(
            &expected,
            Some(&basic("okrsync:s3cret-toke"))
        ));
        assert!(!token_matches(&expected, Some(&basic("s3cret-token"))));
        assert!(!token_matches(&expected, Some("Basic !!notbase64")));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn money_is_a_number_and_null_has_no_sample() {
        assert_eq!(sample(&json!("1234.50")).as_deref(), Some("1234.50"));
        assert_eq!(sample(&json!(0.2143)).as_deref(), Some("0.2143"));
        assert_eq!(sample(&json!(12)).as_deref(), Some("12"));
        assert_eq!(sample(&Json::Null), None);
        assert_eq!(sample(&json!("n/a")), None);
    }

    fn totals(store: &str, last: Option<DateTime<Utc>>) -> RunTotals {
        RunTotals {
            store: store.into(),
            runs: vec![],
            requests: 0,
            retries: 0,
            fetched: 0,
            upserted: 0,
            last_success: last,
            data_as_of: last,
        }
    }

    fn settings(schedule: &str) -> Settings {
        settings_with(schedule, "")
    }

    /// A hourly Plausible source linked to `main`.
    const TRAFFIC: &str = "[[analytics]]\nname = \"traffic\"\nprovider = \"plausible\"\nbase_url = \"https://plausible.example\"\nsite_id = \"shop.example\"\napi_key_env = \"P\"\nstores = [\"main\"]\nschedule = \"0 0 * * * *\"\n";

    fn settings_with(schedule: &str, extra: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("okrsync.toml");
        std::fs::write(
            &path,
            format!(
                "[[stores]]\nname = \"main\"\nplatform = \"woocommerce\"\nurl = \"https://shop.example\"\nconsumer_key_env = \"K\"\nconsumer_secret_env = \"S\"\nschedule = \"{schedule}\"\n{extra}"
            ),
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("K".into(), "ck_x".into()),
            ("S".into(), "cs_x".into()),
            ("P".into(), "plausible-key".into()),
        ]
        .into_iter()
        .collect();
        crate::config::load(&path, &env).unwrap()
    }

    #[test]
    fn ready_only_with_a_recent_successful_sync_of_every_store() {
        use chrono::TimeZone;
        // Every 15 minutes: 3 periods = 45 minutes.
        let s = settings("0 */15 * * * *");
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let err = readiness(&s, &[], now).unwrap_err();
        assert!(err.contains("no successful sync yet"), "{err}");
        let recent = now - chrono::Duration::minutes(44);
        assert_eq!(readiness(&s, &[totals("main", Some(recent))], now), Ok(()));
        let old = now - chrono::Duration::minutes(46);
        let err = readiness(&s, &[totals("main", Some(old))], now).unwrap_err();
        assert!(
            err.contains("more than 3 schedule periods (900 s each)"),
            "{err}"
        );
        // Another name's success does not count for this store.
        assert!(readiness(&s, &[totals("other", Some(now))], now).is_err());
    }

    #[test]
    fn an_analytics_source_counts_for_readiness_and_is_named_in_the_reason() {
        use chrono::TimeZone;
        let s = settings_with("0 */15 * * * *", TRAFFIC);
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let store_ok = totals("main", Some(now - chrono::Duration::minutes(5)));
        // The store is fresh, the source never synced: not ready, and the reason names it.
        let err = readiness(&s, std::slice::from_ref(&store_ok), now).unwrap_err();
        assert!(
            err.contains("analytics source `traffic` has no successful sync yet"),
            "{err}"
        );
        assert!(!err.contains("store `main`"), "{err}");
        // Hourly: 3 periods = 3 hours.
        let fresh = totals("traffic", Some(now - chrono::Duration::minutes(179)));
        assert_eq!(readiness(&s, &[store_ok.clone(), fresh], now), Ok(()));
        let old = totals("traffic", Some(now - chrono::Duration::minutes(181)));
        let err = readiness(&s, &[store_ok, old], now).unwrap_err();
        assert!(
            err.contains("analytics source `traffic`")
                && err.contains("more than 3 schedule periods (3600 s each)"),
            "{err}"
        );
    }

    #[test]
    fn metrics_have_counters_for_every_store_and_analytics_source_from_the_start() {
        let s = settings_with("0 */15 * * * *", TRAFFIC);
        let mut main = totals("main", None);
        main.runs = vec![("ok".into(), 2)];
        main.requests = 7;
        main.retries = 1;
        let text = render_metrics(&s, &[], &[main]);
        for line in [
            "okrsync_sync_runs_total{store=\"main\",status=\"ok\"} 2",
            "okrsync_sync_runs_total{store=\"main\",status=\"failed\"} 0",
            "okrsync_http_requests_total{store=\"main\"} 7",
            "okrsync_http_retries_total{store=\"main\"} 1",
            "okrsync_sync_runs_total{store=\"traffic\",status=\"ok\"} 0",
            "okrsync_sync_runs_total{store=\"traffic\",status=\"failed\"} 0",
            "okrsync_http_requests_total{store=\"traffic\"} 0",
            "okrsync_http_retries_total{store=\"traffic\"} 0",
            "okrsync_records_fetched_total{store=\"traffic\"} 0",
            "okrsync_records_stored_total{store=\"traffic\"} 0",
            "okrsync_source_info{store=\"main\",kind=\"store\",platform=\"woocommerce\"} 1",
            "okrsync_source_info{store=\"traffic\",kind=\"analytics\",platform=\"plausible\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        // Never a last-success sample for a source that never succeeded.
        assert!(!text.contains("okrsync_last_success_timestamp_seconds{store=\"traffic\"}"));
    }
}
