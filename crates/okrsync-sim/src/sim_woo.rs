//! A simulated WooCommerce store on 127.0.0.1: REST API v3 wire format, OAuth 1.0a over http,
//! order and refund listings with WooCommerce's filters and paging, and injectable faults.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

use super::woo_data::{ORDER_STATUSES, SimState};
use crate::tz::StoreTz;
use okrsync_wire::oauth1 as oauth;

/// One request the store received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    /// 0 while unanswered (a `Hang`).
    pub status: u16,
    /// When the request arrived and when its answer was ready (`None` while unanswered).
    pub arrived: std::time::Instant,
    pub answered: Option<std::time::Instant>,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// This status with a WooCommerce-style JSON error body.
    Status(u16),
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// A PHP warning in HTML before the (valid) JSON body.
    Malformed,
    /// The page lacks its last row while the headers promise it.
    ShortPage,
    /// The page repeats its first row in place of its second (same row count): a caching or
    /// query plugin gone wrong. The second row's order is hidden from that page.
    RepeatRow,
    /// Never answers (until the store stops).
    Hang,
    /// Answers normally after this delay.
    Delay(Duration),
    /// This status (as [`FaultKind::Status`]), sent only once another request has been
    /// answered 200: lets a test order a failure after a success without guessing durations.
    StatusAfterAnOk(u16),
}

/// A fault for the next `times` requests whose `path?query&` contains `path_contains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: usize,
}

struct Shared {
    /// Network latency added to every answer, in microseconds (benchmarks).
    latency_us: std::sync::atomic::AtomicU64,
    state: Mutex<SimState>,
    requests: Mutex<Vec<RequestRecord>>,
    faults: Mutex<VecDeque<Fault>>,
    stop: watch::Receiver<bool>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: std::sync::atomic::AtomicUsize,
    peak_in_flight: std::sync::atomic::AtomicUsize,
}

/// The running store. Dropping it without [`SimWoo::stop`] leaves the server task running until
/// the runtime ends.
pub struct SimWoo {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimWoo {
    /// Serves `state` on 127.0.0.1 at a free port.
    pub async fn start(state: SimState) -> std::io::Result<SimWoo> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            latency_us: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(state),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            stop: stop_rx.clone(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            peak_in_flight: std::sync::atomic::AtomicUsize::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = crate::serve_until(listener, app, stop_rx);
        Ok(SimWoo {
            shared,
            addr,
            stop_tx,
            task,
        })
    }

    /// The site URL, `http://127.0.0.1:PORT`; the API is under `/wp-json/wc/v3`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds `latency` before every answer, as a store far away (or slow to render) would.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.latency_us.store(
            latency.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Reads or changes the store between requests.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// The most requests the store was answering at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.shared
            .peak_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Queues a fault; faults apply in the order queued.
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.shared.faults).push_back(fault);
        }
    }

    /// Stops serving; hanging requests are released.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// A response before faults: status, extra headers, body.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: v.to_string(),
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({"code": code, "message": message, "data": {"status": status}}),
        )
    }

    fn invalid_param(param: &str, why: &str) -> Reply {
        Reply::json(
            400,
            &json!({
                "code": "rest_invalid_param",
                "message": format!("Invalid parameter(s): {param}"),
                "data": {"status": 400, "params": {param: why}, "details": {}}
            }),
        )
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> = url_query_pairs(&raw_query);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let index = {
        let mut reqs = lock(&shared.requests);
        reqs.push(RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
            status: 0,
            arrived: std::time::Instant::now(),
            answered: None,
        });
        reqs.len() - 1
    };
    let _in_flight = InFlight::enter(&shared);
    let latency = shared.latency_us.load(std::sync::atomic::Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    let fault = {
        let mut faults = lock(&shared.faults);
        // Filters match the path and query as sent (`/orders`, `&page=3&`).
        let target = format!("{path}?{raw_query}&");
        let pos = faults
            .iter()
            .position(|f| target.contains(&f.path_contains));
        pos.map(|i| {
            let f = &mut faults[i];
            f.times -= 1;
            let kind = f.kind.clone();
            if f.times == 0 {
                faults.remove(i);
            }
            kind
        })
    };
    let mut reply = match &fault {
        Some(FaultKind::Status(code)) => Some(Reply::error(
            *code,
            "internal_server_error",
            "There has been a critical error on this website.",
        )),
        Some(FaultKind::RateLimited { retry_after_secs }) => {
            let mut r = Reply::error(
                429,
                "woocommerce_rest_too_many_requests",
                "Too many requests. Please wait and try again.",
            );
            r.headers
                .push(("Retry-After", retry_after_secs.to_string()));
            Some(r)
        }
        Some(FaultKind::Hang) => {
            let mut stop = shared.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            Some(Reply::error(
                503,
                "sim_stopped",
                "The simulated store stopped.",
            ))
        }
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(*d).await;
            None
        }
        Some(FaultKind::StatusAfterAnOk(code)) => {
            let mut stop = shared.stop.clone();
            loop {
                let answered = lock(&shared.requests)
                    .iter()
                    .any(|r| r.answered.is_some() && r.status == 200);
                if answered || *stop.borrow() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
            Some(Reply::error(
                *code,
                "internal_server_error",
                "There has been a critical error on this website.",
            ))
        }
        _ => None,
    };
    if reply.is_none() {
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut st = lock(&shared.state);
        let store_now = st.date_skew.map(|skew| chrono::Utc::now() + skew);
        let mut r = route(
            &mut st,
            &method,
            &path,
            &raw_query,
            &query,
            &host,
            authorization.as_deref(),
        );
        drop(st);
        // The store's clock, as its `Date` header tells it (a store whose clock is off).
        if let Some(t) = store_now {
            r.headers
                .push(("Date", t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
        }
        match fault {
            Some(FaultKind::Malformed) => {
                r.body = format!(
                    "<br />\n<b>Warning</b>:  Undefined array key \"sim\" in \
                     <b>/var/www/html/wp-content/plugins/sim/sim.php</b> on line <b>42</b><br />\n{}",
                    r.body
                );
            }
            Some(FaultKind::ShortPage) => {
                if let Ok(Value::Array(mut rows)) = serde_json::from_str::<Value>(&r.body) {
                    rows.pop();
                    r.body = Value::Array(rows).to_string();
                }
            }
            Some(FaultKind::RepeatRow) => {
                if let Ok(Value::Array(mut rows)) = serde_json::from_str::<Value>(&r.body)
                    && rows.len() >= 2
                {
                    rows[1] = rows[0].clone();
                    r.body = Value::Array(rows).to_string();
                }
            }
            _ => {}
        }
        reply = Some(r);
    }
    let reply = reply.unwrap_or_else(|| Reply::error(500, "sim_error", "No reply."));
    if let Some(rec) = lock(&shared.requests).get_mut(index) {
        rec.status = reply.status;
        rec.answered = Some(std::time::Instant::now());
    }
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

/// Counts a request as being answered while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> InFlight<'a> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = shared.in_flight.fetch_add(1, SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn url_query_pairs(raw: &str) -> Vec<(String, String)> {
    Url::parse(&format!("http://x/?{raw}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The last value of a query parameter (PHP keeps the last one).
fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn route(
    st: &mut SimState,
    method: &Method,
    path: &str,
    raw_query: &str,
    q: &[(String, String)],
    host: &str,
    authorization: Option<&str>,
) -> Reply {
    let trimmed = path.trim_end_matches('/');
    if trimmed == "/wp-json" {
        return Reply::json(200, &site_index(st));
    }
    let Some(route) = trimmed.strip_prefix("/wp-json/wc/v3") else {
        return no_route();
    };
    if method != Method::GET {
        return no_route();
    }
    if st.https {
        // Over https WooCommerce takes HTTP Basic, or the key and secret as query parameters.
        let (key, secret) = match (basic_credentials(authorization), param(q, "consumer_key")) {
            (Some((k, s)), _) => (k, s),
            (None, Some(k)) => (
                k.to_string(),
                param(q, "consumer_secret").unwrap_or("").to_string(),
            ),
            (None, None) => return cannot_view(),
        };
        if key != st.consumer_key {
            return Reply::error(
                401,
                "woocommerce_rest_authentication_error",
                "Consumer key is invalid.",
            );
        }
        if secret != st.consumer_secret {
            return Reply::error(
                401,
                "woocommerce_rest_authentication_error",
                "Consumer secret is invalid.",
            );
        }
        return serve_api(st, route, q);
    }
    // Over http WooCommerce accepts only OAuth 1.0a in the query string.
    let has_oauth = q.iter().any(|(k, _)| k.starts_with("oauth_"));
    if !has_oauth {
        return cannot_view();
    }
    let url = match Url::parse(&format!("http://{host}{path}?{raw_query}")) {
        Ok(u) => u,
        Err(_) => return cannot_view(),
    };
    if param(q, "oauth_consumer_key") != Some(st.consumer_key.as_str()) {
        return Reply::error(
            401,
            "woocommerce_rest_authentication_error",
            "Consumer key is invalid.",
        );
    }
    if let Err(e) = oauth::verify("GET", &url, &st.consumer_secret) {
        return Reply::error(401, "woocommerce_rest_authentication_error", &e);
    }
    if let Err(e) = check_timestamp_and_nonce(st, q) {
        return Reply::error(401, "woocommerce_rest_authentication_error", e);
    }
    serve_api(st, route, q)
}

/// WooCommerce's `check_oauth_timestamp_and_nonce`: the timestamp within 15 minutes of the
/// server's clock either way, and a nonce not used with this key in the last 15 minutes.
fn check_timestamp_and_nonce(
    st: &mut SimState,
    q: &[(String, String)],
) -> Result<(), &'static str> {
    const WINDOW: i64 = 15 * 60;
    // The server's own clock (PHP's `time()`, skewed by `date_skew` like its `Date` header),
    // whatever dates the store's data carries.
    let now = (Utc::now() + st.date_skew.unwrap_or_default()).timestamp();
    let ts: i64 = param(q, "oauth_timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if ts < now - WINDOW || ts > now + WINDOW {
        return Err("Invalid timestamp.");
    }
    let nonce = param(q, "oauth_nonce").unwrap_or_default().to_string();
    if st.used_nonces.values().any(|n| n.contains(&nonce)) {
        return Err("Invalid nonce - nonce has already been used.");
    }
    st.used_nonces.entry(ts).or_default().push(nonce);
    st.used_nonces.retain(|t, _| *t >= now - WINDOW);
    Ok(())
}

/// `Authorization: Basic base64(key:secret)`.
fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    use base64::Engine;
    let b64 = header?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (k, s) = text.split_once(':')?;
    Some((k.to_string(), s.to_string()))
}

/// The authenticated API routes.
fn serve_api(st: &mut SimState, route: &str, q: &[(String, String)]) -> Reply {
    let segs: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["settings", "general"] => Reply::json(200, &general_settings(st)),
        ["orders"] => list_orders(st, q),
        ["orders", id] => match id.parse::<u64>().ok().and_then(|id| st.orders.get(&id)) {
            Some(o) => {
                let tz = st.tz();
                Reply::json(
                    200,
                    &serde_json::to_value(o.to_wire(&tz, &st.refunds)).unwrap_or(Value::Null),
                )
            }
            None => Reply::error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID."),
        },
        ["orders", id, "refunds"] => match id.parse::<u64>() {
            Ok(id) if st.orders.contains_key(&id) => {
                let tz = st.tz();
                let l = match parse_listing(q, &tz, &["date", "id", "include", "modified"]) {
                    Ok(l) => l,
                    Err(r) => return r,
                };
                let o = &st.orders[&id];
                let rows: Vec<Value> = o
                    .refund_ids
                    .iter()
                    .rev()
                    .filter_map(|r| st.refunds.get(r))
                    .map(|r| serde_json::to_value(r.to_wire(&tz, false)).unwrap_or(Value::Null))
                    .collect();
                paged(rows, l.per_page, l.start(), true)
            }
            _ => Reply::error(
                404,
                "woocommerce_rest_order_invalid_id",
                "Invalid order ID.",
            ),
        },
        ["refunds"] if st.refunds_listing => list_refunds(st, q),
        ["products", "reviews"] => list_reviews(st, q),
        _ => no_route(),
    }
}

fn no_route() -> Reply {
    Reply::error(
        404,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

fn cannot_view() -> Reply {
    Reply::error(
        401,
        "woocommerce_rest_cannot_view",
        "Sorry, you cannot list resources.",
    )
}

fn site_index(st: &SimState) -> Value {
    json!({
        "name": "Simulated Shop",
        "description": "okrsync demo store",
        "url": "",
        "home": "",
        "gmt_offset": st.gmt_offset,
        "timezone_string": st.timezone_string,
        "namespaces": ["oembed/1.0", "wc/v1", "wc/v2", "wc/v3", "wc/store/v1", "wp/v2"],
        "authentication": [],
        "routes": {}
    })
}

fn general_settings(st: &SimState) -> Value {
    json!([
        {"id": "woocommerce_default_country", "label": "Country and State", "type": "select", "default": "US:CA", "value": "FR"},
        {"id": "woocommerce_currency", "label": "Currency", "description": "This controls what currency prices are listed at in the catalog and which currency gateways will take payments in.", "type": "select", "default": "USD", "tip": "This controls what currency prices are listed at in the catalog and which currency gateways will take payments in.", "value": st.currency},
        {"id": "woocommerce_currency_pos", "label": "Currency position", "type": "select", "default": "left", "value": "right_space"},
        {"id": "woocommerce_price_thousand_sep", "label": "Thousand separator", "type": "text", "default": ",", "value": " "},
        {"id": "woocommerce_price_decimal_sep", "label": "Decimal separator", "type": "text", "default": ".", "value": ","},
        {"id": "woocommerce_price_num_decimals", "label": "Number of decimals", "type": "number", "default": "2", "value": "2"}
    ])
}

/// Parsed paging and date filters shared by orders and refunds.
struct Listing {
    per_page: usize,
    page: usize,
    /// `offset` overrides `page` (WP_Query semantics); `X-WP-Total` still counts every match.
    offset: Option<usize>,
    orderby: String,
    desc: bool,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    modified_after: Option<DateTime<Utc>>,
    modified_before: Option<DateTime<Utc>>,
    include: Vec<u64>,
    exclude: Vec<u64>,
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" | "" => Some(false),
        _ => None,
    }
}

/// WordPress's `rest_parse_date` for WooCommerce's filters: RFC 3339 with or without an offset;
/// naive values are UTC when `gmt`, else site-local.
fn parse_date(v: &str, gmt: bool, tz: &StoreTz) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    if gmt {
        return Some(Utc.from_utc_datetime(&naive));
    }
    match tz {
        StoreTz::Named(z) => z
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.with_timezone(&Utc)),
        StoreTz::Fixed(o) => o
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.with_timezone(&Utc)),
    }
}

fn parse_ids(v: &str) -> Option<Vec<u64>> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

fn parse_listing(
    q: &[(String, String)],
    tz: &StoreTz,
    orderbys: &[&str],
) -> Result<Listing, Reply> {
    let num = |name: &str, default: usize, max: usize| -> Result<usize, Reply> {
        match param(q, name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ if max == 100 => Err(Reply::invalid_param(
                    name,
                    &format!("{name} must be between 1 (inclusive) and 100 (inclusive)"),
                )),
                _ => Err(Reply::invalid_param(
                    name,
                    &format!("{name} is not of type integer."),
                )),
            },
        }
    };
    let per_page = num("per_page", 10, 100)?;
    let page = num("page", 1, usize::MAX)?;
    let offset = match param(q, "offset") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| Reply::invalid_param("offset", "offset is not of type integer."))?,
        ),
    };
    let orderby = param(q, "orderby").unwrap_or("date").to_string();
    if !orderbys.contains(&orderby.as_str()) {
        return Err(Reply::invalid_param(
            "orderby",
            &format!("orderby is not one of {}.", orderbys.join(", ")),
        ));
    }
    let desc = match param(q, "order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        _ => {
            return Err(Reply::invalid_param(
                "order",
                "order is not one of asc and desc.",
            ));
        }
    };
    let gmt = match param(q, "dates_are_gmt") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            Reply::invalid_param("dates_are_gmt", "dates_are_gmt is not of type boolean.")
        })?,
    };
    let date = |name: &str| -> Result<Option<DateTime<Utc>>, Reply> {
        match param(q, name) {
            None => Ok(None),
            Some(v) => parse_date(v, gmt, tz)
                .map(Some)
                .ok_or_else(|| Reply::invalid_param(name, "Invalid date.")),
        }
    };
    let ids = |name: &str| -> Result<Vec<u64>, Reply> {
        match param(q, name) {
            None => Ok(Vec::new()),
            Some(v) => parse_ids(v).ok_or_else(|| {
                Reply::invalid_param(name, &format!("{name}[0] is not of type integer."))
            }),
        }
    };
    Ok(Listing {
        per_page,
        page,
        offset,
        orderby,
        desc,
        after: date("after")?,
        before: date("before")?,
        modified_after: date("modified_after")?,
        modified_before: date("modified_before")?,
        include: ids("include")?,
        exclude: ids("exclude")?,
    })
}

impl Listing {
    /// The first row of the answer: `offset`, else `(page - 1) * per_page`.
    fn start(&self) -> usize {
        self.offset
            .unwrap_or_else(|| (self.page - 1).saturating_mul(self.per_page))
    }

    /// Whether a row with these dates passes the exclusive date bounds and id filters.
    fn keeps(&self, id: u64, created: DateTime<Utc>, modified: DateTime<Utc>) -> bool {
        self.after.is_none_or(|a| created > a)
            && self.before.is_none_or(|b| created < b)
            && self.modified_after.is_none_or(|a| modified > a)
            && self.modified_before.is_none_or(|b| modified < b)
            && (self.include.is_empty() || self.include.contains(&id))
            && !self.exclude.contains(&id)
    }

    /// Sorts (key, id) rows: by key, ties by id, both in the requested direction.
    fn sort<T>(&self, rows: &mut [(DateTime<Utc>, u64, T)]) {
        if self.orderby == "include" {
            let pos = |id: u64| {
                self.include
                    .iter()
                    .position(|i| *i == id)
                    .unwrap_or(usize::MAX)
            };
            rows.sort_by_key(|r| pos(r.1));
            return;
        }
        rows.sort_by(|a, b| {
            let o = if self.orderby == "id" {
                a.1.cmp(&b.1)
            } else {
                (a.0, a.1).cmp(&(b.0, b.1))
            };
            if self.desc { o.reverse() } else { o }
        });
    }
}

/// One page of `rows` with `X-WP-Total` and `X-WP-TotalPages`.
fn paged(rows: Vec<Value>, per_page: usize, start: usize, headers: bool) -> Reply {
    let total = rows.len();
    let pages = total.div_ceil(per_page);
    let body: Vec<Value> = rows.into_iter().skip(start).take(per_page).collect();
    let mut r = Reply::json(200, &Value::Array(body));
    if headers {
        r.headers.push(("X-WP-Total", total.to_string()));
        r.headers.push(("X-WP-TotalPages", pages.to_string()));
    }
    r
}

fn list_orders(st: &SimState, q: &[(String, String)]) -> Reply {
    let tz = st.tz();
    let l = match parse_listing(
        q,
        &tz,
        &["date", "id", "include", "title", "slug", "modified"],
    ) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let status = param(q, "status").unwrap_or("any");
    let statuses: Vec<&str> = status
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for s in &statuses {
        if *s != "any" && !ORDER_STATUSES.contains(s) {
            return Reply::invalid_param(
                "status",
                &format!(
                    "status[0] is not one of any, {}.",
                    ORDER_STATUSES.join(", ")
                ),
            );
        }
    }
    let any = statuses.is_empty() || statuses.contains(&"any");
    let mut rows: Vec<(DateTime<Utc>, u64, &super::woo_data::SimOrder)> = st
        .orders
        .values()
        .filter(|o| {
            if any {
                o.status != "trash" || statuses.contains(&"trash")
            } else {
                statuses.contains(&o.status.as_str())
            }
        })
        .filter(|o| l.keeps(o.id, o.created, o.modified))
        .map(|o| {
            let key = if l.orderby == "modified" {
                o.modified
            } else {
                o.created
            };
            (key, o.id, o)
        })
        .collect();
    l.sort(&mut rows);
    let start = l.start();
    let total = rows.len();
    let body: Vec<Value> = rows
        .iter()
        .skip(start)
        .take(l.per_page)
        .map(|(_, _, o)| serde_json::to_value(o.to_wire(&tz, &st.refunds)).unwrap_or(Value::Null))
        .collect();
    let mut r = Reply::json(200, &Value::Array(body));
    r.headers.push(("X-WP-Total", total.to_string()));
    r.headers
        .push(("X-WP-TotalPages", total.div_ceil(l.per_page).to_string()));
    r
}

/// `GET /wc/v3/products/reviews`: `status` (default approved; `all`), paging, id order.
fn list_reviews(st: &SimState, q: &[(String, String)]) -> Reply {
    let tz = st.tz();
    let l = match parse_listing(q, &tz, &["date", "id", "include"]) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let status = param(q, "status").unwrap_or("approved");
    let mut rows: Vec<&crate::woo_data::SimReview> = st
        .reviews
        .iter()
        .filter(|r| status == "all" || r.status == status)
        .collect();
    rows.sort_by_key(|r| r.id);
    if l.desc {
        rows.reverse();
    }
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "date_created": crate::woo_data::naive(r.created, &tz),
                "date_created_gmt": r.created.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "product_id": r.product_id,
                "product_name": format!("Product {}", r.product_id),
                "status": r.status,
                "reviewer": "A. Customer",
                "review": "<p>Nice.</p>",
                "rating": r.rating,
                "verified": r.verified,
            })
        })
        .collect();
    paged(values, l.per_page, l.start(), true)
}

fn list_refunds(st: &SimState, q: &[(String, String)]) -> Reply {
    let tz = st.tz();
    let l = match parse_listing(q, &tz, &["date", "id", "include", "modified"]) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let parents = match param(q, "parent").map(parse_ids) {
        None => Vec::new(),
        Some(Some(v)) => v,
        Some(None) => return Reply::invalid_param("parent", "parent[0] is not of type integer."),
    };
    let parent_exclude = match param(q, "parent_exclude").map(parse_ids) {
        None => Vec::new(),
        Some(Some(v)) => v,
        Some(None) => {
            return Reply::invalid_param(
                "parent_exclude",
                "parent_exclude[0] is not of type integer.",
            );
        }
    };
    // A refund's modification date is its creation date: refunds are not edited.
    let mut rows: Vec<(DateTime<Utc>, u64, &super::woo_data::SimRefund)> = st
        .refunds
        .values()
        .filter(|r| l.keeps(r.id, r.created, r.created))
        .filter(|r| parents.is_empty() || parents.contains(&r.parent_id))
        .filter(|r| !parent_exclude.contains(&r.parent_id))
        .map(|r| (r.created, r.id, r))
        .collect();
    l.sort(&mut rows);
    let rows = rows
        .iter()
        .map(|(_, _, r)| serde_json::to_value(r.to_wire(&tz, true)).unwrap_or(Value::Null))
        .collect();
    paged(rows, l.per_page, l.start(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::woo_data::NewOrder;
    use rust_decimal::Decimal;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, h, m, 0).unwrap()
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// 12 orders: ids 100..=111; 100..=104 modified at 10:00 UTC (a tie), the rest at 10:00 + n
    /// minutes; 111 trashed.
    async fn store() -> SimWoo {
        let mut st = SimState::new("ck_k", "cs_s", "Europe/Paris", "EUR");
        for i in 0..12u32 {
            st.now_override = Some(if i < 5 { t(10, 0) } else { t(10, i) });
            st.add_order(NewOrder::new("completed", t(9, i), "x@y.test").line(
                1,
                "A",
                "A",
                1,
                Decimal::TEN,
            ));
        }
        st.now_override = Some(t(11, 0));
        st.set_status(111, "trash");
        let line = st.orders[&110].lines[0].id;
        st.refund(110, &[(line, 1)], Decimal::ZERO);
        st.now_override = None;
        SimWoo::start(st).await.unwrap()
    }

    async fn get(sim: &SimWoo, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let (key, secret) = sim.with_state(|s| (s.consumer_key.clone(), s.consumer_secret.clone()));
        let mut url = Url::parse(&format!("{}{}", sim.url(), path)).unwrap();
        let sig = oauth::sign(
            "GET",
            &url,
            &key,
            &secret,
            oauth::SignatureMethod::HmacSha256,
            &oauth::nonce(),
            Utc::now().timestamp() as u64,
        );
        url.query_pairs_mut().extend_pairs(sig);
        let r = client().get(url).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    fn ids(body: &str) -> Vec<u64> {
        let v: Value = serde_json::from_str(body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_u64().unwrap())
            .collect()
    }

    fn header(h: &reqwest::header::HeaderMap, k: &str) -> String {
        h.get(k).unwrap().to_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn paging_headers_and_exclusive_modified_after() {
        let sim = store().await;
        let (s, h, b) = get(
            &sim,
            "/wp-json/wc/v3/orders?per_page=5&page=2&orderby=id&order=asc",
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "X-WP-Total"), "11");
        assert_eq!(header(&h, "X-WP-TotalPages"), "3");
        assert_eq!(ids(&b), vec![105, 106, 107, 108, 109]);
        let (s, h, b) = get(&sim, "/wp-json/wc/v3/orders?per_page=5&page=9").await;
        assert_eq!((s, b.as_str()), (200, "[]"));
        assert_eq!(header(&h, "X-WP-Total"), "11");
        // 10:00 UTC is 11:00 in Paris; the bound is exclusive either way.
        let q = "/wp-json/wc/v3/orders?per_page=100&orderby=id&order=asc&modified_after=";
        let (_, _, gmt) = get(&sim, &format!("{q}2026-01-05T10:00:00&dates_are_gmt=true")).await;
        let (_, _, local) = get(&sim, &format!("{q}2026-01-05T11:00:00")).await;
        let (_, _, z) = get(&sim, &format!("{q}2026-01-05T10:00:00Z")).await;
        assert_eq!(ids(&gmt), vec![105, 106, 107, 108, 109, 110]);
        assert_eq!(ids(&local), ids(&gmt));
        assert_eq!(ids(&z), ids(&gmt));
        let (_, _, naive_as_local) = get(&sim, &format!("{q}2026-01-05T10:00:00")).await;
        assert_eq!(ids(&naive_as_local).len(), 11);
        let (s, _, b) = get(&sim, "/wp-json/wc/v3/orders?per_page=101").await;
        assert_eq!(s, 400);
        assert!(b.contains("rest_invalid_param"));
        let (s, _, _) = get(&sim, "/wp-json/wc/v3/orders?modified_after=yesterday").await;
        assert_eq!(s, 400);
        sim.stop().await;
    }

    #[tokio::test]
    async fn ties_order_by_id_in_sort_direction_and_trash_is_apart() {
        let sim = store().await;
        let (_, _, asc) = get(
            &sim,
            "/wp-json/wc/v3/orders?orderby=modified&order=asc&per_page=3",
        )
        .await;
        assert_eq!(ids(&asc), vec![100, 101, 102]);
        let q = "/wp-json/wc/v3/orders?orderby=modified&order=desc&per_page=100";
        let (_, _, desc) = get(&sim, q).await;
        assert_eq!(ids(&desc)[6..], [104, 103, 102, 101, 100]);
        assert!(!ids(&desc).contains(&111));
        let (_, _, trash) = get(&sim, "/wp-json/wc/v3/orders?status=trash").await;
        assert_eq!(ids(&trash), vec![111]);
        let (_, _, some) = get(&sim, "/wp-json/wc/v3/orders?status=refunded,trash").await;
        assert_eq!(ids(&some), vec![111, 110]);
        sim.stop().await;
    }

    #[tokio::test]
    async fn oauth_timestamps_out_of_window_and_replayed_nonces_are_refused() {
        let sim = store().await;
        let url = format!("{}/wp-json/wc/v3/orders", sim.url());
        let signed = |nonce: &str, ts: i64| {
            let mut u = Url::parse(&url).unwrap();
            let sig = oauth::sign(
                "GET",
                &u,
                "ck_k",
                "cs_s",
                oauth::SignatureMethod::HmacSha256,
                nonce,
                ts as u64,
            );
            u.query_pairs_mut().extend_pairs(sig);
            u
        };
        let now = Utc::now().timestamp();
        let r = client().get(signed("n-ok", now)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = client().get(signed("n-ok", now)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Invalid nonce - nonce has already been used.")
        );
        let r = client()
            .get(signed("n-old", now - 16 * 60))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(r.text().await.unwrap().contains("Invalid timestamp."));
        let r = client()
            .get(signed("n-new", now + 16 * 60))
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("Invalid timestamp."));
    }

    #[tokio::test]
    async fn only_oauth_is_accepted_over_http() {
        let sim = store().await;
        let url = format!("{}/wp-json/wc/v3/orders", sim.url());
        let r = client()
            .get(&url)
            .basic_auth("ck_k", Some("cs_s"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("woocommerce_rest_cannot_view")
        );
        let mut u = Url::parse(&url).unwrap();
        let sig = oauth::sign(
            "GET",
            &u,
            "ck_k",
            "cs_wrong",
            oauth::SignatureMethod::HmacSha1,
            "n1",
            1,
        );
        u.query_pairs_mut().extend_pairs(sig);
        let r = client().get(u).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client()
            .get(format!("{}/wp-json/", sim.url()))
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["timezone_string"], "Europe/Paris");
        let (s, _, b) = get(&sim, "/wp-json/wc/v3/settings/general").await;
        assert_eq!(s, 200);
        assert!(b.contains(r#""id":"woocommerce_currency""#) && b.contains(r#""value":"EUR""#));
        let reqs = sim.requests();
        assert_eq!(
            reqs[0]
                .authorization
                .as_deref()
                .map(|a| a.starts_with("Basic ")),
            Some(true)
        );
        assert_eq!(
            reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![401, 401, 200, 200]
        );
        sim.stop().await;
    }

    #[tokio::test]
    async fn refunds_listing_and_its_absence() {
        let sim = store().await;
        let (s, h, b) = get(&sim, "/wp-json/wc/v3/refunds").await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "X-WP-Total"), "1");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v[0]["parent_id"], 110);
        assert_eq!(v[0]["amount"], "12.00");
        assert_eq!(v[0]["line_items"][0]["quantity"], -1);
        assert_eq!(
            v[0]["line_items"][0]["meta_data"][0]["key"],
            "_refunded_item_id"
        );
        let (_, _, one) = get(&sim, "/wp-json/wc/v3/orders/110/refunds").await;
        let one: Value = serde_json::from_str(&one).unwrap();
        assert_eq!(one[0]["id"], v[0]["id"]);
        assert!(one[0].get("parent_id").is_none());
        let (_, _, order) = get(&sim, "/wp-json/wc/v3/orders?include=110").await;
        let order: Value = serde_json::from_str(&order).unwrap();
        assert_eq!(order[0]["refunds"][0]["total"], "-12.00");
        assert_eq!(order[0]["status"], "refunded");
        sim.with_state(|s| s.refunds_listing = false);
        let (s, _, b) = get(&sim, "/wp-json/wc/v3/refunds").await;
        assert_eq!(s, 404);
        assert!(b.contains("rest_no_route"));
        sim.stop().await;
    }

    #[tokio::test]
    async fn faults_are_observable() {
        let sim = store().await;
        let f = |kind, times| Fault {
            path_contains: "/orders".to_string(),
            kind,
            times,
        };
        sim.inject(f(FaultKind::Status(502), 2));
        assert_eq!(get(&sim, "/wp-json/wc/v3/orders").await.0, 502);
        assert_eq!(get(&sim, "/wp-json/wc/v3/settings/general").await.0, 200);
        assert_eq!(get(&sim, "/wp-json/wc/v3/orders").await.0, 502);
        assert_eq!(get(&sim, "/wp-json/wc/v3/orders").await.0, 200);

        sim.inject(f(
            FaultKind::RateLimited {
                retry_after_secs: 7,
            },
            1,
        ));
        let (s, h, _) = get(&sim, "/wp-json/wc/v3/orders").await;
        assert_eq!((s, header(&h, "Retry-After")), (429, "7".to_string()));

        sim.inject(f(FaultKind::Malformed, 1));
        let (s, _, b) = get(&sim, "/wp-json/wc/v3/orders").await;
        assert_eq!(s, 200);
        assert!(b.starts_with("<br />") && serde_json::from_str::<Value>(&b).is_err());
        assert!(b.contains("[{"));

        sim.inject(f(FaultKind::ShortPage, 1));
        let (_, h, b) = get(&sim, "/wp-json/wc/v3/orders?per_page=5").await;
        assert_eq!(header(&h, "X-WP-Total"), "11");
        assert_eq!(ids(&b).len(), 4);

        sim.inject(f(FaultKind::RepeatRow, 1));
        let (_, h, b) = get(
            &sim,
            "/wp-json/wc/v3/orders?per_page=5&orderby=id&order=asc",
        )
        .await;
        assert_eq!(header(&h, "X-WP-Total"), "11");
        assert_eq!(ids(&b), vec![100, 100, 102, 103, 104]);

        sim.inject(f(FaultKind::Delay(Duration::from_millis(300)), 1));
        let started = std::time::Instant::now();
        assert_eq!(get(&sim, "/wp-json/wc/v3/orders").await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));

        sim.inject(f(FaultKind::Hang, 1));
        let url = format!("{}/wp-json/wc/v3/orders", sim.url());
        let hung = client()
            .get(url)
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        assert!(hung.is_err_and(|e| e.is_timeout()));
        let last = sim.requests().pop().unwrap();
        assert_eq!(
            (last.path.as_str(), last.status),
            ("/wp-json/wc/v3/orders", 0)
        );
        sim.stop().await;
    }
}
