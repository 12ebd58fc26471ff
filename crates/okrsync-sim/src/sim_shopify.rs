//! A fake Shopify Admin GraphQL API on 127.0.0.1 for `okrsync demo` and the tests.
//!
//! Orders come from a [`SimState`] (the simulated WooCommerce data model) rendered in
//! Shopify's shapes, so one dataset can be served by both simulators and compared:
//! WooCommerce `cancelled` → `cancelledAt` set; `pending`/`failed`/`checkout-draft` → not
//! orders but abandoned checkouts; `trash` → deleted. The server reads the operation name
//! and variables of each document, checks `X-Shopify-Access-Token`, charges query cost to a
//! leaky bucket reported in `extensions.cost`, answers `THROTTLED` (HTTP 200) when it is
//! empty, and runs bulk operations whose JSONL result it serves itself.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::shopify_full;
use super::sim_analytics::SimDay;
use super::woo_data::{SimOrder, SimState};

/// Shopify's single-query cost cap.
const MAX_QUERY_COST: f64 = 1000.0;

/// The shop: order data plus what only Shopify has.
#[derive(Debug, Clone)]
pub struct ShopState {
    pub data: SimState,
    pub access_token: String,
    pub shop_name: String,
    /// Order ids (of `data`) that are test orders.
    pub test_orders: BTreeSet<u64>,
    /// Order ids deleted from the shop.
    pub deleted: BTreeSet<u64>,
    /// Abandoned checkouts besides the pending/failed orders of `data`.
    pub abandoned: BTreeMap<u64, DateTime<Utc>>,
    /// Scopes of the token (`read_all_orders` makes orders older than 60 days visible).
    pub scopes: Vec<String>,
    /// Checkouts (ids of `abandoned`) the buyer later completed: `abandonedCheckouts` still
    /// lists them (as Shopify does), with `completedAt` and `updatedAt` at this time.
    pub recovered: BTreeMap<u64, DateTime<Utc>>,
    /// The order-id listing (`OrderIds`) silently leaves out the last this many orders, as a
    /// listing cut short by the API would.
    pub ids_drop: usize,
    /// `OrderIds` pages come without `pageInfo`.
    pub ids_no_page_info: bool,
    /// `(client_id, client_secret)` of a Dev Dashboard app: `POST /admin/oauth/access_token`
    /// with `grant_type=client_credentials` and these exchanges them for `access_token`
    /// (valid `token_expires_in` seconds, as Shopify's 24 h tokens are).
    pub client_credentials: Option<(String, String)>,
    pub token_expires_in: u64,
    /// `false`: `abandonedCheckouts` answers ACCESS_DENIED.
    pub abandoned_access: bool,
    /// Online-store sessions per shop-local day, served by `shopifyqlQuery` (`FROM sessions`)
    /// to tokens with `read_reports` on API versions from 2025-10.
    pub sessions: BTreeMap<NaiveDate, SimDay>,
    pub bucket_max: f64,
    pub restore_rate: f64,
    /// `currentBulkOperation` polls before an operation completes.
    pub bulk_polls: u32,
    /// Every bulk operation started while this is set ends FAILED (`INTERNAL_SERVER_ERROR`).
    pub bulk_fail: bool,
    /// Network latency added to every answer (half before the shop reads the bucket, half
    /// after), so pacing and polling meet a realistic round trip.
    pub latency: Duration,
    /// Points added to every query's requested cost: Shopify's own estimate may differ from
    /// the cost model okrsync computes ("Running a query is the best way to find out its true
    /// cost", shopify.dev, GraphQL Admin API rate limits).
    pub cost_surcharge: f64,
    /// `THROTTLED` answers sent because the bucket held less than a query's requested cost
    /// (injected faults not counted).
    pub throttled: u64,
    bulk_ops: Vec<SimBulk>,
    bucket: f64,
    bucket_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct SimBulk {
    n: usize,
    status: &'static str,
    polls: u32,
    jsonl: String,
    roots: usize,
    fail: bool,
    /// The result has expired: `url` is null although `objectCount` is not 0.
    expired: bool,
}

impl ShopState {
    /// A shop serving `data` to `access_token`, with every scope and a standard bucket.
    pub fn new(data: SimState, access_token: &str) -> ShopState {
        ShopState {
            data,
            access_token: access_token.to_string(),
            shop_name: "Demo Shop".into(),
            test_orders: BTreeSet::new(),
            deleted: BTreeSet::new(),
            abandoned: BTreeMap::new(),
            recovered: BTreeMap::new(),
            ids_drop: 0,
            client_credentials: None,
            token_expires_in: 86399,
            ids_no_page_info: false,
            scopes: [
                "read_orders",
                "read_all_orders",
                "read_customers",
                "read_reports",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            abandoned_access: true,
            sessions: BTreeMap::new(),
            // Shopify's standard plan: a 2,000-point bucket restored at 100 points/s.
            bucket_max: 2000.0,
            restore_rate: 100.0,
            bulk_polls: 2,
            bulk_fail: false,
            latency: Duration::ZERO,
            cost_surcharge: 0.0,
            throttled: 0,
            bulk_ops: Vec::new(),
            bucket: 2000.0,
            bucket_at: None,
        }
    }

    /// A deterministic demo shop: the WooCommerce generator's history with one order in 50
    /// flagged as a test order, and about 40 online-store sessions per order on each
    /// shop-local day (for `shopifyqlQuery`).
    pub fn generate(seed: u64, now: DateTime<Utc>, days: u32, orders_per_day: u32) -> ShopState {
        let data = SimState::generate(seed, now, days, orders_per_day);
        let token = format!("shpat_demo{:016x}", seed.rotate_left(29) ^ 0x5A5A_5A5A);
        let today = data.tz().local_date(now);
        let mut st = ShopState::new(data, &token);
        let per_day = u64::from(orders_per_day) * 40;
        for i in 0..=u64::from(days) {
            let day = today - ChronoDuration::days(i as i64);
            let sessions = per_day + (i * 53 + seed) % (per_day / 4 + 1);
            st.sessions.insert(
                day,
                SimDay {
                    sessions,
                    visitors: sessions * 4 / 5,
                    bounces: sessions * 9 / 20,
                },
            );
        }
        st.test_orders = st
            .data
            .orders
            .keys()
            .filter(|id| *id % 50 == 7)
            .copied()
            .collect();
        st
    }

    /// Expires the results of every bulk operation run so far (Shopify keeps them 7 days):
    /// they then report `url: null` with their `objectCount`. Later operations are fresh.
    pub fn expire_bulk_results(&mut self) {
        for b in &mut self.bulk_ops {
            b.expired = true;
        }
    }

    fn is_order(&self, o: &SimOrder) -> bool {
        !matches!(
            o.status.as_str(),
            "pending" | "failed" | "checkout-draft" | "trash"
        ) && !self.deleted.contains(&o.id)
    }

    /// Orders the token can see, by id.
    fn visible(&self) -> Vec<&SimOrder> {
        let horizon = (!self.scopes.iter().any(|s| s == "read_all_orders"))
            .then(|| self.data.now() - ChronoDuration::days(60));
        self.data
            .orders
            .values()
            .filter(|o| self.is_order(o) && horizon.is_none_or(|h| o.created >= h))
            .collect()
    }

    /// Orders the token can see (what a complete first sync delivers).
    pub fn visible_orders(&self) -> usize {
        self.visible().len()
    }

    /// Abandoned checkouts: explicit ones and the orders that never completed.
    pub fn abandoned_checkouts(&self) -> Vec<(u64, DateTime<Utc>)> {
        let mut out: Vec<(u64, DateTime<Utc>)> =
            self.abandoned.iter().map(|(k, v)| (*k, *v)).collect();
        for o in self.data.orders.values() {
            if matches!(o.status.as_str(), "pending" | "failed" | "checkout-draft") {
                out.push((o.id, o.created));
            }
        }
        out.sort_by_key(|(id, at)| (*at, *id));
        out
    }

    /// Sets the cost bucket's level now (another client just spent the rest).
    pub fn set_bucket(&mut self, level: f64) {
        self.bucket = level.min(self.bucket_max);
        self.bucket_at = Some(Instant::now());
    }

    fn refill(&mut self) {
        let now = Instant::now();
        if let Some(at) = self.bucket_at {
            let add = self.restore_rate * now.duration_since(at).as_secs_f64();
            self.bucket = (self.bucket + add).min(self.bucket_max);
        } else {
            self.bucket = self.bucket_max;
        }
        self.bucket_at = Some(now);
    }
}

/// A `MoneyBag` as okrsync selects it (`shopMoney { amount }`): GraphQL answers only the
/// fields a query selects.
fn money(d: Decimal) -> Value {
    json!({"shopMoney": {"amount": format!("{:.2}", d.round_dp(2))}})
}

pub(crate) fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn line_json(o: &SimOrder, idx: usize) -> Value {
    let l = &o.lines[idx];
    let incl = o.prices_include_tax;
    let original = if incl {
        l.subtotal + l.subtotal_tax
    } else {
        l.subtotal
    };
    let discounted = if incl { l.total + l.total_tax } else { l.total };
    let disc = original - discounted;
    let rate: Value = serde_json::from_str(&o.tax_rate.normalize().to_string()).unwrap_or(json!(0));
    json!({
        "id": gid("LineItem", l.id),
        "name": l.name,
        "sku": l.sku,
        "quantity": l.quantity,
        "product": {"id": gid("Product", l.product_id)},
        "originalTotalSet": money(original),
        "discountAllocations": if disc.is_zero() { json!([]) } else { json!([{"allocatedAmountSet": money(disc)}]) },
        "taxLines": [{"rate": rate, "priceSet": money(l.total_tax)}],
    })
}

fn refund_lines_json(st: &ShopState, o: &SimOrder, refund_id: u64) -> Vec<Value> {
    let Some(r) = st.data.refunds.get(&refund_id) else {
        return Vec::new();
    };
    r.lines
        .iter()
        .map(|l| {
            let sub = if o.prices_include_tax {
                l.total + l.total_tax
            } else {
                l.total
            };
            json!({
                "id": gid("RefundLineItem", l.id),
                "lineItem": {"id": gid("LineItem", l.order_line_id)},
                "quantity": l.quantity,
                "subtotalSet": money(sub),
                "totalTaxSet": money(l.total_tax),
            })
        })
        .collect()
}

/// An order without connections; `refunds` limited to `refunds_first`.
fn order_json(st: &ShopState, o: &SimOrder, refunds_first: usize) -> Value {
    let refunded: Decimal = o
        .refund_ids
        .iter()
        .filter_map(|id| st.data.refunds.get(id))
        .map(|r| r.amount)
        .sum();
    let status = if refunded.is_zero() {
        "PAID"
    } else if refunded >= o.total() {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    };
    let refunds: Vec<Value> = o
        .refund_ids
        .iter()
        .filter_map(|id| st.data.refunds.get(id))
        .take(refunds_first)
        .map(|r| {
            json!({"id": gid("Refund", r.id), "createdAt": iso(r.created), "totalRefundedSet": money(r.amount)})
        })
        .collect();
    let shipping = if o.prices_include_tax {
        o.shipping + o.shipping_tax
    } else {
        o.shipping
    };
    json!({
        "id": gid("Order", o.id),
        "name": format!("#{}", o.id),
        "createdAt": iso(o.created),
        "updatedAt": iso(o.modified),
        "cancelledAt": (o.status == "cancelled").then(|| iso(o.modified)),
        "test": st.test_orders.contains(&o.id),
        "taxesIncluded": o.prices_include_tax,
        "email": o.email,
        "displayFinancialStatus": status,
        "currencyCode": o.currency,
        "customer": (o.customer_id > 0).then(|| json!({"id": gid("Customer", o.customer_id)})),
        "totalShippingPriceSet": money(shipping),
        "totalTaxSet": money(o.total_tax()),
        "totalPriceSet": money(o.total()),
        "totalRefundedSet": money(refunded),
        "refunds": refunds,
    })
}

/// A connection page over `items` starting after the offset in `after` (`"o:<n>"`).
fn paged(items: Vec<Value>, first: usize, after: Option<&str>) -> Value {
    let start = after
        .and_then(|a| a.strip_prefix("o:"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (start + first).min(items.len());
    let nodes: Vec<Value> = items.get(start..end).unwrap_or_default().to_vec();
    json!({
        "nodes": nodes,
        "pageInfo": {"hasNextPage": end < items.len(), "endCursor": (end > start).then(|| format!("o:{end}"))},
    })
}

/// One request the shop received.
#[derive(Debug, Clone)]
pub struct ShopRequest {
    pub path: String,
    /// The GraphQL operation name (`Orders`, `BulkRun`, …); empty for other paths.
    pub operation: String,
    pub variables: Value,
    pub token: Option<String>,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopFaultKind {
    /// HTTP 200 with a THROTTLED error, whatever the bucket holds.
    Throttled,
    /// This HTTP status.
    Status(u16),
}

/// A fault for the next `times` requests of `operation` (empty: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopFault {
    pub operation: String,
    pub kind: ShopFaultKind,
    pub times: usize,
}

struct Shared {
    state: Mutex<ShopState>,
    requests: Mutex<Vec<ShopRequest>>,
    faults: Mutex<VecDeque<ShopFault>>,
    base: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake shop.
pub struct SimShopify {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SimShopify {
    /// Serves `state` on 127.0.0.1 at a free port.
    pub async fn start(state: ShopState) -> std::io::Result<SimShopify> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            base: Mutex::new(format!("http://{addr}")),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = crate::serve_until(listener, app, rx);
        Ok(SimShopify {
            shared,
            addr,
            stop_tx,
            task,
        })
    }

    /// The shop URL to configure as `shop`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with_state<R>(&self, f: impl FnOnce(&mut ShopState) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }

    pub fn requests(&self) -> Vec<ShopRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn inject(&self, fault: ShopFault) {
        if fault.times > 0 {
            lock(&self.shared.faults).push_back(fault);
        }
    }

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

fn reply(status: u16, body: String, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

fn operation_name(doc: &str) -> String {
    let t = doc.trim_start();
    let rest = t
        .strip_prefix("query")
        .or_else(|| t.strip_prefix("mutation"))
        .unwrap_or("");
    rest.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn take_fault(shared: &Shared, op: &str) -> Option<ShopFaultKind> {
    let mut faults = lock(&shared.faults);
    let idx = faults
        .iter()
        .position(|f| f.operation.is_empty() || f.operation == op)?;
    let f = faults.get_mut(idx)?;
    f.times -= 1;
    let kind = f.kind.clone();
    if f.times == 0 {
        faults.remove(idx);
    }
    Some(kind)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_string();
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if method == Method::POST && path == "/admin/oauth/access_token" {
        lock(&shared.requests).push(ShopRequest {
            path: path.clone(),
            operation: "TokenExchange".into(),
            variables: Value::Null,
            token,
        });
        let form: BTreeMap<String, String> = url::Url::parse(&format!(
            "http://form.invalid/?{}",
            String::from_utf8_lossy(&body)
        ))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
        let st = lock(&shared.state);
        let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && st.client_credentials.as_ref().is_some_and(|(id, secret)| {
                form.get("client_id") == Some(id) && form.get("client_secret") == Some(secret)
            });
        return if ok {
            let body = json!({"access_token": st.access_token, "scope": st.scopes.join(","), "expires_in": st.token_expires_in});
            reply(200, body.to_string(), "application/json")
        } else {
            let body = json!({"error": "invalid_client", "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."});
            reply(400, body.to_string(), "application/json")
        };
    }
    if method == Method::GET
        && let Some(n) = path
            .strip_prefix("/bulk/")
            .and_then(|p| p.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<usize>().ok())
    {
        lock(&shared.requests).push(ShopRequest {
            path: path.clone(),
            operation: String::new(),
            variables: Value::Null,
            token,
        });
        let st = lock(&shared.state);
        return match st.bulk_ops.iter().find(|b| b.n == n) {
            Some(b) => reply(200, b.jsonl.clone(), "application/jsonl"),
            None => reply(404, "NoSuchKey".into(), "text/plain"),
        };
    }
    if method == Method::GET && path.starts_with("/admin/api/") && path.ends_with("/shop.json") {
        lock(&shared.requests).push(ShopRequest {
            path: path.clone(),
            operation: "ShopRest".into(),
            variables: Value::Null,
            token: token.clone(),
        });
        let st = lock(&shared.state);
        if token.as_deref() != Some(st.access_token.as_str()) {
            return reply(
                401,
                r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#.into(),
                "application/json",
            );
        }
        // The REST Admin API's shop resource (what ShopifyAPI's `Shop.current()` reads).
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.split(':').next())
            .filter(|h| h.ends_with(".myshopify.com"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{}.myshopify.com",
                    st.shop_name.to_lowercase().replace(' ', "-")
                )
            });
        let body = json!({"shop": {
            "id": 1, "name": st.shop_name, "myshopify_domain": host, "domain": host,
            "currency": st.data.currency, "iana_timezone": st.data.timezone_string,
        }});
        return reply(200, body.to_string(), "application/json; charset=utf-8");
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let doc = req
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let vars = req.get("variables").cloned().unwrap_or(json!({}));
    let op = match operation_name(&doc) {
        // Anonymous documents (`{ node(id: …) { … } }`, `query { currentAppInstallation … }`)
        // are told apart by their root field.
        op if !op.is_empty() => op,
        _ if doc.contains("node(id:") && doc.contains("on BulkOperation") => "BulkNode".into(),
        _ if doc.contains("currentAppInstallation") => "Scopes".into(),
        _ => String::new(),
    };
    lock(&shared.requests).push(ShopRequest {
        path: path.clone(),
        operation: op.clone(),
        variables: vars.clone(),
        token: token.clone(),
    });
    if method != Method::POST
        || !path.starts_with("/admin/api/")
        || !path.ends_with("/graphql.json")
    {
        return reply(404, r#"{"errors":"Not Found"}"#.into(), "application/json");
    }
    let expected = lock(&shared.state).access_token.clone();
    if token.as_deref() != Some(expected.as_str()) {
        return reply(
            401,
            r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#.into(),
            "application/json",
        );
    }
    let fault = take_fault(&shared, &op);
    if let Some(ShopFaultKind::Status(s)) = fault {
        return reply(
            s,
            r#"{"errors":"Internal error"}"#.into(),
            "application/json",
        );
    }
    let base = lock(&shared.base).clone();
    let latency = lock(&shared.state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency / 2).await;
    }
    let resp = graphql(&shared, &op, &doc, &vars, &path, &base, fault);
    if !latency.is_zero() {
        tokio::time::sleep(latency / 2).await;
    }
    resp
}

/// Answers one GraphQL document: cost check, bucket, then the data.
fn graphql(
    shared: &Shared,
    op: &str,
    doc: &str,
    vars: &Value,
    path: &str,
    base: &str,
    fault: Option<ShopFaultKind>,
) -> Response<Body> {
    let mut st = lock(&shared.state);
    let cost = requested_cost(op, vars) + st.cost_surcharge;
    st.refill();
    let status = |st: &ShopState| json!({"maximumAvailable": st.bucket_max, "currentlyAvailable": st.bucket, "restoreRate": st.restore_rate});
    if cost > MAX_QUERY_COST {
        let body = json!({"errors": [{"message": format!("Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."), "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST}}]});
        return reply(200, body.to_string(), "application/json");
    }
    if fault == Some(ShopFaultKind::Throttled) || st.bucket < cost {
        if fault.is_none() {
            st.throttled += 1;
        }
        let body = json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
            "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": null, "throttleStatus": status(&st)}},
        });
        return reply(200, body.to_string(), "application/json");
    }
    let answer = if op == "ShopifySessions" {
        shopifyql_answer(&st, api_version(path), vars)
    } else {
        answer(&mut st, op, doc, vars, base)
    };
    // Like Shopify, the bucket is charged the actual cost of what was returned (never more
    // than the requested cost), not the estimate.
    let actual = match &answer {
        Ok(data) if !matches!(op, "BulkRun" | "bulkOperationRunQuery" | "ShopifySessions") => {
            (object_cost(data) - 1.0).clamp(1.0, cost)
        }
        _ => cost,
    };
    st.bucket -= actual;
    let mut body = match answer {
        Ok(data) => json!({"data": data}),
        Err((code, message)) => {
            json!({"errors": [{"message": message, "extensions": {"code": code}}], "data": null})
        }
    };
    body["extensions"] = json!({"cost": {"requestedQueryCost": cost, "actualQueryCost": actual, "throttleStatus": status(&st)}});
    reply(200, body.to_string(), "application/json")
}

fn var_usize(vars: &Value, name: &str, default: usize) -> usize {
    vars.get(name)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .unwrap_or(default)
}

/// The cost of what an answer holds: 1 per object (a connection, with its `pageInfo`,
/// is 2 + its nodes), lists the sum of their items, scalars free.
fn object_cost(v: &Value) -> f64 {
    match v {
        Value::Object(m) => 1.0 + m.values().map(object_cost).sum::<f64>(),
        Value::Array(a) => a.iter().map(object_cost).sum(),
        _ => 0.0,
    }
}

/// Shopify's estimate: objects 1, connections 2 + first × node (see `sources::shopify::query`).
fn requested_cost(op: &str, vars: &Value) -> f64 {
    let first = var_usize(vars, "first", 1) as f64;
    match op {
        // `nodes(ids:)` is a list: every id costs a Refund (1) and its connection.
        "RefundLinesBatch" => {
            let ids = vars
                .get("ids")
                .and_then(Value::as_array)
                .map_or(0, Vec::len) as f64;
            ids * (3.0 + first * 6.0)
        }
        "Orders" => {
            let lines = var_usize(vars, "lines", 0) as f64;
            let refunds = var_usize(vars, "refunds", 0) as f64;
            2.0 + first * (12.0 + lines * 10.0 + refunds * 3.0)
        }
        "OrderLines" => 3.0 + first * 10.0,
        "RefundLines" => 3.0 + first * 6.0,
        "OrderRefunds" => 3.0 + first * 3.0,
        "OrderIds" | "AbandonedCheckouts" => 2.0 + first,
        "BulkRun" | "bulkOperationRunQuery" | "ShopifySessions" => 10.0,
        _ => 1.0,
    }
}

type Answer = Result<Value, (&'static str, String)>;

/// The `<version>` of `/admin/api/<version>/graphql.json`.
fn api_version(path: &str) -> &str {
    path.strip_prefix("/admin/api/")
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
}

/// `shopifyqlQuery` for `FROM sessions SHOW sessions[, bounce_rate] SINCE <day> UNTIL <day>
/// TIMESERIES day …`: every day of the period (0 when there were no sessions), values as
/// strings. Versions before 2025-10 do not have the field; tokens without `read_reports`
/// are denied, as Shopify does.
fn shopifyql_answer(st: &ShopState, version: &str, vars: &Value) -> Answer {
    if version != "unstable" && version < "2025-10" {
        return Err((
            "undefinedField",
            "Field 'shopifyqlQuery' doesn't exist on type 'QueryRoot'".into(),
        ));
    }
    if !st.scopes.iter().any(|s| s == "read_reports") {
        return Err((
            "ACCESS_DENIED",
            "Access denied for shopifyqlQuery field. Required access: `read_reports` access scope. Also: Level 2 access to Customer data including name, address, phone, and email fields.".into(),
        ));
    }
    let q = vars.get("query").and_then(Value::as_str).unwrap_or("");
    let parse_error =
        |m: String| Ok(json!({"shopifyqlQuery": {"parseErrors": [m], "tableData": null}}));
    let words: Vec<&str> = q.split_whitespace().collect();
    if words.get(..3) != Some(&["FROM", "sessions", "SHOW"][..]) {
        return parse_error(format!(
            "the fake shop only answers `FROM sessions SHOW …`, not `{q}`"
        ));
    }
    let after = |kw: &str| {
        words
            .iter()
            .position(|w| *w == kw)
            .and_then(|i| words.get(i + 1))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let (Some(since), Some(until)) = (after("SINCE"), after("UNTIL")) else {
        return parse_error("SINCE and UNTIL must be dates (YYYY-MM-DD)".into());
    };
    if !words.contains(&"TIMESERIES") {
        return parse_error("the fake shop only answers TIMESERIES day queries".into());
    }
    let bounce = q.contains("bounce_rate");
    let mut columns = vec![
        json!({"name": "day", "dataType": "DAY_TIMESTAMP", "displayName": "Day"}),
        json!({"name": "sessions", "dataType": "INTEGER", "displayName": "Sessions"}),
    ];
    if bounce {
        columns.push(
            json!({"name": "bounce_rate", "dataType": "PERCENT", "displayName": "Bounce rate"}),
        );
    }
    let mut rows = Vec::new();
    let mut day = since;
    while day <= until {
        let (sessions, bounces) = st
            .sessions
            .get(&day)
            .map(|d| (d.sessions, d.bounces))
            .unwrap_or((0, 0));
        let mut row = json!({"day": day.to_string(), "sessions": sessions.to_string()});
        if bounce {
            let rate = if sessions == 0 {
                Decimal::ZERO
            } else {
                (Decimal::from(bounces) / Decimal::from(sessions)).round_dp(6)
            };
            row["bounce_rate"] = json!(rate.to_string());
        }
        rows.push(row);
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    Ok(
        json!({"shopifyqlQuery": {"parseErrors": [], "tableData": {"columns": columns, "rows": rows}}}),
    )
}

fn since_filter(
    vars: &Value,
    field: &str,
) -> Result<Option<DateTime<Utc>>, (&'static str, String)> {
    let Some(q) = vars.get("query").and_then(Value::as_str) else {
        return Ok(None);
    };
    let prefix = format!("{field}:>='");
    let Some(rest) = q.trim().strip_prefix(&prefix) else {
        return Err((
            "BAD_REQUEST",
            format!("the fake shop does not understand query `{q}`"),
        ));
    };
    let ts = rest.trim_end_matches('\'');
    DateTime::parse_from_rfc3339(ts)
        .map(|d| Some(d.with_timezone(&Utc)))
        .map_err(|_| ("BAD_REQUEST", format!("`{ts}` is not a date-time")))
}

fn answer(st: &mut ShopState, op: &str, doc: &str, vars: &Value, base: &str) -> Answer {
    let after = vars.get("after").and_then(Value::as_str);
    match op {
        "Shop" => Ok(json!({"shop": {
            "name": st.shop_name, "ianaTimezone": st.data.timezone_string, "currencyCode": st.data.currency,
        }})),
        "ShopAndScopes" => Ok(json!({
            "shop": {"name": st.shop_name, "ianaTimezone": st.data.timezone_string, "currencyCode": st.data.currency},
            "currentAppInstallation": {
                "accessScopes": st.scopes.iter().map(|s| json!({"handle": s})).collect::<Vec<_>>(),
            },
        })),
        "Scopes" => Ok(json!({"currentAppInstallation": {
            "accessScopes": st.scopes.iter().map(|s| json!({"handle": s})).collect::<Vec<_>>(),
        }})),
        "OrdersCount" => {
            Ok(json!({"ordersCount": {"count": st.visible().len(), "precision": "EXACT"}}))
        }
        "Orders" => {
            if !doc.contains("sortKey: UPDATED_AT") {
                return Err(("BAD_REQUEST", "okrsync pages orders by UPDATED_AT".into()));
            }
            let first = var_usize(vars, "first", 0);
            if first == 0 || first > 250 {
                return Err(("BAD_REQUEST", format!("first must be 1..=250, got {first}")));
            }
            let since = since_filter(vars, "updated_at")?;
            let lines = var_usize(vars, "lines", 0);
            let refunds = var_usize(vars, "refunds", 0);
            let mut rows: Vec<&SimOrder> = st
                .visible()
                .into_iter()
                .filter(|o| since.is_none_or(|s| o.modified >= s))
                .collect();
            rows.sort_by_key(|o| (o.modified, o.id));
            // Cursors encode the last (updatedAt, id) seen, like Shopify's opaque cursors.
            let start = match after.and_then(|a| a.strip_prefix("k:")) {
                Some(k) => {
                    let (t, id) = k.split_once('|').unwrap_or(("", "0"));
                    let t = DateTime::parse_from_rfc3339(t)
                        .map(|d| d.with_timezone(&Utc))
                        .ok();
                    let id: u64 = id.parse().unwrap_or(0);
                    rows.iter()
                        .position(|o| Some((o.modified, o.id)) > t.map(|t| (t, id)))
                        .unwrap_or(rows.len())
                }
                None => 0,
            };
            let end = (start + first).min(rows.len());
            let nodes: Vec<Value> = rows[start..end]
                .iter()
                .map(|o| {
                    let mut v = order_json(st, o, refunds);
                    let all: Vec<Value> = (0..o.lines.len()).map(|i| line_json(o, i)).collect();
                    v["lineItems"] = paged(all, lines, None);
                    v
                })
                .collect();
            let end_cursor = rows[..end]
                .last()
                .filter(|_| end > start)
                .map(|o| format!("k:{}|{}", iso(o.modified), o.id));
            Ok(
                json!({"orders": {"nodes": nodes, "pageInfo": {"hasNextPage": end < rows.len(), "endCursor": end_cursor}}}),
            )
        }
        "OrderLines" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or("");
            let o = st
                .visible()
                .into_iter()
                .find(|o| gid("Order", o.id) == id)
                .cloned();
            Ok(match o {
                None => json!({"node": null}),
                Some(o) => {
                    let all: Vec<Value> = (0..o.lines.len()).map(|i| line_json(&o, i)).collect();
                    json!({"node": {"lineItems": paged(all, var_usize(vars, "first", 0), after)}})
                }
            })
        }
        "OrderRefunds" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or("");
            let o = st
                .visible()
                .into_iter()
                .find(|o| gid("Order", o.id) == id)
                .cloned();
            Ok(match o {
                None => json!({"node": null}),
                Some(o) => {
                    let v = order_json(st, &o, var_usize(vars, "first", 0));
                    json!({"node": {"refunds": v["refunds"]}})
                }
            })
        }
        "RefundLines" => {
            let id = vars.get("id").and_then(Value::as_str).unwrap_or("");
            let found = st
                .data
                .refunds
                .values()
                .find(|r| gid("Refund", r.id) == id)
                .map(|r| (r.id, r.parent_id));
            Ok(
                match found
                    .and_then(|(rid, oid)| st.data.orders.get(&oid).map(|o| (rid, o.clone())))
                {
                    None => json!({"node": null}),
                    Some((rid, o)) => {
                        let all = refund_lines_json(st, &o, rid);
                        json!({"node": {"refundLineItems": paged(all, var_usize(vars, "first", 0), after)}})
                    }
                },
            )
        }
        "OrderIds" => {
            let mut all: Vec<Value> = st
                .visible()
                .iter()
                .map(|o| json!({"id": gid("Order", o.id)}))
                .collect();
            all.truncate(all.len().saturating_sub(st.ids_drop));
            let mut page = paged(all, var_usize(vars, "first", 0), after);
            if st.ids_no_page_info
                && let Some(o) = page.as_object_mut()
            {
                o.remove("pageInfo");
            }
            Ok(json!({"orders": page}))
        }
        "AbandonedCheckouts" => {
            if !st.abandoned_access {
                return Err(("ACCESS_DENIED", "Access denied for abandonedCheckouts field. Required access: `read_orders` access scope.".into()));
            }
            let since = since_filter(vars, "updated_at")?;
            let all: Vec<Value> = st
                .abandoned_checkouts()
                .into_iter()
                .map(|(id, at)| {
                    let done = st.recovered.get(&id).copied();
                    (id, at, done, done.unwrap_or(at).max(at))
                })
                .filter(|(_, _, _, updated)| since.is_none_or(|s| *updated >= s))
                .map(|(id, at, done, updated)| {
                    json!({
                        "id": gid("AbandonedCheckout", id), "createdAt": iso(at),
                        "updatedAt": iso(updated), "completedAt": done.map(iso),
                    })
                })
                .collect();
            Ok(json!({"abandonedCheckouts": paged(all, var_usize(vars, "first", 0), after)}))
        }
        "RefundLinesBatch" => {
            if !doc.contains("nodes(ids: $ids)") || !doc.contains("... on Refund") {
                return Err((
                    "BAD_REQUEST",
                    "the fake shop answers RefundLinesBatch only as nodes(ids:) { ... on Refund }"
                        .into(),
                ));
            }
            let ids: Vec<String> = vars
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if ids.len() > 250 {
                return Err((
                    "BAD_REQUEST",
                    format!("nodes(ids:) takes at most 250 ids, got {}", ids.len()),
                ));
            }
            let first = var_usize(vars, "first", 0);
            let nodes: Vec<Value> = ids
                .iter()
                .map(|id| {
                    let found = st
                        .data
                        .refunds
                        .values()
                        .find(|r| gid("Refund", r.id) == *id)
                        .and_then(|r| st.data.orders.get(&r.parent_id).map(|o| (r.id, o)));
                    match found {
                        None => Value::Null,
                        Some((rid, o)) => json!({
                            "id": id,
                            "refundLineItems": paged(refund_lines_json(st, o, rid), first, None),
                        }),
                    }
                })
                .collect();
            Ok(json!({ "nodes": nodes }))
        }
        "BulkRun" => {
            let errors = bulk_query_text(doc)
                .map(|q| bulk_query_errors(&q))
                .unwrap_or_else(|e| vec![e]);
            if !errors.is_empty() {
                let errors: Vec<Value> = errors
                    .into_iter()
                    .map(|m| json!({"field": ["query"], "message": m, "code": "INVALID"}))
                    .collect();
                return Ok(
                    json!({"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": errors}}),
                );
            }
            if let Some(b) = st.bulk_ops.last()
                && matches!(b.status, "CREATED" | "RUNNING")
            {
                return Ok(
                    json!({"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": [
                        {"field": null, "message": format!("A bulk query operation for this app and shop is already in progress: {}.", gid("BulkOperation", b.n as u64))}
                    ]}}),
                );
            }
            let until = doc
                .split("updated_at:<='")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|d| d.with_timezone(&Utc));
            let (jsonl, roots) = bulk_jsonl(st, until);
            let n = st.bulk_ops.len() + 1;
            st.bulk_ops.push(SimBulk {
                n,
                status: "CREATED",
                polls: 0,
                jsonl,
                roots,
                fail: st.bulk_fail,
                expired: false,
            });
            Ok(
                json!({"bulkOperationRunQuery": {"bulkOperation": {"id": gid("BulkOperation", n as u64), "status": "CREATED"}, "userErrors": []}}),
            )
        }
        "bulkOperationRunQuery" => {
            // A bulk query passed as the `$query` variable (`mutation bulkOperationRunQuery(
            // $query: String!) { bulkOperationRunQuery(query: $query) { … } }`), answered from
            // the full order documents by the query's selection (okrsync's own `BulkRun` keeps
            // the answers its tests were written against).
            let Some(q) = vars.get("query").and_then(Value::as_str) else {
                return Err((
                    "INVALID_VARIABLE",
                    "Variable $query of type String! was provided invalid value".into(),
                ));
            };
            let errors = bulk_query_errors(q);
            if !errors.is_empty() {
                let errors: Vec<Value> = errors
                    .into_iter()
                    .map(|m| json!({"field": ["query"], "message": m}))
                    .collect();
                return Ok(
                    json!({"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": errors}}),
                );
            }
            if let Some(b) = st.bulk_ops.last()
                && matches!(b.status, "CREATED" | "RUNNING")
            {
                return Ok(
                    json!({"bulkOperationRunQuery": {"bulkOperation": null, "userErrors": [
                        {"field": null, "message": format!("A bulk query operation for this app and shop is already in progress: {}.", gid("BulkOperation", b.n as u64))}
                    ]}}),
                );
            }
            let (jsonl, roots) = full_bulk_jsonl(st, q)?;
            let n = st.bulk_ops.len() + 1;
            st.bulk_ops.push(SimBulk {
                n,
                status: "CREATED",
                polls: 0,
                jsonl,
                roots,
                fail: st.bulk_fail,
                expired: false,
            });
            Ok(json!({"bulkOperationRunQuery": {"bulkOperation": {
                "id": gid("BulkOperation", n as u64), "status": "CREATED", "createdAt": iso(st.data.now()),
            }, "userErrors": []}}))
        }
        "BulkNode" => {
            // `node(id: "gid://shopify/BulkOperation/N") { ... on BulkOperation { … } }`.
            let n = doc
                .split("gid://shopify/BulkOperation/")
                .nth(1)
                .map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|d| d.parse::<usize>().ok());
            let polls_needed = st.bulk_polls;
            let now = iso(st.data.now());
            let Some(b) = st.bulk_ops.iter_mut().find(|b| Some(b.n) == n) else {
                return Ok(json!({"node": null}));
            };
            advance_bulk(b, polls_needed);
            let done = b.status == "COMPLETED";
            let mut node = bulk_status_fields(b, base);
            node["createdAt"] = json!(now);
            node["completedAt"] = json!(done.then_some(now.clone()));
            node["fileSize"] = json!(done.then(|| b.jsonl.len().to_string()));
            Ok(json!({ "node": node }))
        }
        "BulkStatus" => {
            let polls_needed = st.bulk_polls;
            let Some(b) = st.bulk_ops.last_mut() else {
                return Ok(json!({"currentBulkOperation": null}));
            };
            advance_bulk(b, polls_needed);
            let mut op = bulk_status_fields(b, base);
            op["rootObjectCount"] = json!(b.roots.to_string());
            op["partialDataUrl"] = Value::Null;
            Ok(json!({ "currentBulkOperation": op }))
        }
        other => Err((
            "BAD_REQUEST",
            format!("the fake shop does not implement operation `{other}`"),
        )),
    }
}

/// One status read of a bulk operation: it completes (or fails) at the `polls_needed`th read.
fn advance_bulk(b: &mut SimBulk, polls_needed: u32) {
    if matches!(b.status, "CREATED" | "RUNNING") {
        b.polls += 1;
        b.status = match (b.polls >= polls_needed, b.fail) {
            (false, _) => "RUNNING",
            (true, false) => "COMPLETED",
            (true, true) => "FAILED",
        };
    }
}

/// The `updated_at` bounds of an orders search (`updated_at:>='…' AND updated_at:<'…'`, with
/// `>=`, `>`, `<=`, `<`, quoted or not): `(lower, lower inclusive, upper, upper inclusive)`.
type Bounds = (Option<DateTime<Utc>>, bool, Option<DateTime<Utc>>, bool);
fn updated_at_bounds(search: &str) -> Result<Bounds, (&'static str, String)> {
    let mut b: Bounds = (None, true, None, true);
    for term in search.split_whitespace() {
        if term == "AND" {
            continue;
        }
        let Some(cond) = term.strip_prefix("updated_at:") else {
            return Err((
                "BAD_REQUEST",
                format!("the fake shop does not understand the search term `{term}`"),
            ));
        };
        let (op, value) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| cond.strip_prefix(op).map(|v| (*op, v)))
            .ok_or(("BAD_REQUEST", format!("`{term}` has no comparison")))?;
        let value = value.trim_matches(|c| c == '\'' || c == '"');
        let t = DateTime::parse_from_rfc3339(value)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| ("BAD_REQUEST", format!("`{value}` is not a date-time")))?;
        match op {
            ">=" => b = (Some(t), true, b.2, b.3),
            ">" => b = (Some(t), false, b.2, b.3),
            "<=" => b = (b.0, b.1, Some(t), true),
            _ => b = (b.0, b.1, Some(t), false),
        }
    }
    Ok(b)
}

/// The JSONL of a bulk query over `orders` answered from the full order documents: each
/// order (ascending id) followed by the nodes of its connections (`lineItems`,
/// `discountApplications`, …) with `__parentId`, each line holding what the query selects.
fn full_bulk_jsonl(st: &ShopState, q: &str) -> Result<(String, usize), (&'static str, String)> {
    let fields = parse_selection(q).map_err(|e| ("BAD_REQUEST", e))?;
    let Some(orders) = fields.iter().find(|f| f.name == "orders") else {
        return Err((
            "BAD_REQUEST",
            "the fake shop answers bulk queries over `orders` only".into(),
        ));
    };
    let node_fields = |f: &Field| -> Option<Vec<Field>> {
        let edges = f.children.iter().find(|c| c.name == "edges")?;
        let node = edges.children.iter().find(|c| c.name == "node")?;
        Some(node.children.clone())
    };
    let Some(order_fields) = node_fields(orders) else {
        return Err(("BAD_REQUEST", "orders needs `edges { node { … } }`".into()));
    };
    let search = q
        .split_once("orders(")
        .and_then(|(_, r)| r.split_once(')'))
        .and_then(|(args, _)| args.split_once("query:"))
        .map(|(_, r)| r.trim())
        .and_then(|r| r.strip_prefix('"'))
        .and_then(|r| r.rsplit_once('"'))
        .map(|(s, _)| s.to_string())
        .unwrap_or_default();
    let (lo, lo_incl, hi, hi_incl) = updated_at_bounds(&search)?;
    let (plain, connections): (Vec<&Field>, Vec<&Field>) = order_fields
        .iter()
        .partition(|f| !f.children.iter().any(|c| c.name == "edges"));
    let plain: Vec<Field> = plain.into_iter().cloned().collect();
    let mut out = String::new();
    let mut roots = 0;
    for o in st.visible() {
        let after_lo = lo.is_none_or(|t| {
            if lo_incl {
                o.modified >= t
            } else {
                o.modified > t
            }
        });
        let before_hi = hi.is_none_or(|t| {
            if hi_incl {
                o.modified <= t
            } else {
                o.modified < t
            }
        });
        if !(after_lo && before_hi) {
            continue;
        }
        roots += 1;
        let parent = gid("Order", o.id);
        out.push_str(&shopify_full::project(&shopify_full::full_order(st, o), &plain).to_string());
        out.push('\n');
        for c in &connections {
            let children: Vec<Value> = match c.name.as_str() {
                "lineItems" => (0..o.lines.len())
                    .map(|i| shopify_full::full_line(o, i))
                    .collect(),
                "discountApplications" => shopify_full::full_discount_applications(o),
                other => {
                    return Err((
                        "BAD_REQUEST",
                        format!("the fake shop does not hold the order connection `{other}`"),
                    ));
                }
            };
            let fields = node_fields(c).unwrap_or_default();
            for child in children {
                let mut v = shopify_full::project(&child, &fields);
                v["__parentId"] = json!(parent);
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
    }
    Ok((out, roots))
}

/// The JSONL of a bulk export: all orders first, then their line items, then refund line
/// items (Shopify promises no order, so okrsync must not rely on one).
fn bulk_jsonl(st: &ShopState, until: Option<DateTime<Utc>>) -> (String, usize) {
    let rows: Vec<SimOrder> = st
        .visible()
        .into_iter()
        .filter(|o| until.is_none_or(|u| o.modified <= u))
        .cloned()
        .collect();
    let mut out = String::new();
    for o in rows.iter().rev() {
        out.push_str(&order_json(st, o, usize::MAX).to_string());
        out.push('\n');
    }
    for o in &rows {
        for i in 0..o.lines.len() {
            let mut l = line_json(o, i);
            l["__parentId"] = json!(gid("Order", o.id));
            out.push_str(&l.to_string());
            out.push('\n');
        }
    }
    (out, rows.len())
}

/// The `query:` argument of a `bulkOperationRunQuery` mutation document.
fn bulk_query_text(doc: &str) -> Result<String, String> {
    let rest = doc
        .split_once("bulkOperationRunQuery(")
        .and_then(|(_, r)| r.split_once("query:"))
        .map(|(_, r)| r.trim_start())
        .ok_or("Invalid bulk query: no query argument")?;
    let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    match de.next() {
        Some(Ok(q)) => Ok(q),
        _ => Err("Invalid bulk query: the query argument is not a string".into()),
    }
}

/// What both ways of reading a bulk operation's status answer: id, status, error code,
/// object count and, once completed and not expired, the file's URL.
fn bulk_status_fields(b: &SimBulk, base: &str) -> Value {
    let done = b.status == "COMPLETED";
    let objects = if b.status == "FAILED" {
        0
    } else {
        b.jsonl.lines().count()
    };
    json!({
        "id": gid("BulkOperation", b.n as u64), "status": b.status,
        "errorCode": (b.status == "FAILED").then_some("INTERNAL_SERVER_ERROR"),
        "objectCount": objects.to_string(),
        "url": (done && !b.expired).then(|| format!("{base}/bulk/{}.jsonl", b.n)),
    })
}

/// A field of a parsed selection set (inline fragments are flattened into their parent).
#[derive(Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) children: Vec<Field>,
}

/// Fields of the Admin schema okrsync's queries touch that are connections, and that are
/// plain lists (`[Refund!]!`, …).
const CONNECTION_FIELDS: &[&str] = &[
    "orders",
    "lineItems",
    "refundLineItems",
    "products",
    "variants",
    "customers",
    "fulfillmentOrders",
    "returns",
    "returnLineItems",
    "shippingLines",
    "transactions",
    "events",
    "metafields",
];
const LIST_FIELDS: &[&str] = &[
    "refunds",
    "discountAllocations",
    "taxLines",
    "fulfillments",
    "discountApplications",
];

/// Parses a GraphQL selection (`{ a(args) { b ... on T { c } } }`), skipping arguments,
/// aliases and the operation header.
pub(crate) fn parse_selection(q: &str) -> Result<Vec<Field>, String> {
    let mut chars = q.char_indices().peekable();
    let mut stack: Vec<Vec<Field>> = Vec::new();
    let mut top: Option<Vec<Field>> = None;
    // A pending `... on Type {` flattens into its parent: remember which `{` were fragments.
    let mut fragment_opens: Vec<bool> = Vec::new();
    let mut pending_fragment = false;
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() || c == ',' => {}
            '{' => {
                fragment_opens.push(pending_fragment);
                pending_fragment = false;
                stack.push(Vec::new());
            }
            '}' => {
                let fields = stack.pop().ok_or("Invalid bulk query: unbalanced `}`")?;
                let fragment = fragment_opens.pop().unwrap_or(false);
                match stack.last_mut() {
                    None => top = Some(fields),
                    Some(parent) if fragment => parent.extend(fields),
                    Some(parent) => match parent.last_mut() {
                        Some(f) if f.children.is_empty() => f.children = fields,
                        _ => return Err("Invalid bulk query: a selection without a field".into()),
                    },
                }
            }
            '(' => {
                let mut depth = 1;
                let mut in_str = false;
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    match (in_str, escaped, c) {
                        (true, true, _) => escaped = false,
                        (true, false, '\\') => escaped = true,
                        (true, false, '"') => in_str = false,
                        (false, _, '"') => in_str = true,
                        (false, _, '(') => depth += 1,
                        (false, _, ')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '.' => {
                // `...` then `on Type`: the type name is read as a word and dropped below.
                while chars.peek().is_some_and(|(_, c)| *c == '.') {
                    chars.next();
                }
                pending_fragment = true;
            }
            ':' => {
                // `alias: field`: the alias (the last field) is replaced by the field.
                if let Some(level) = stack.last_mut() {
                    level.pop();
                }
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some((j, c)) = chars.peek().copied() {
                    if c.is_alphanumeric() || c == '_' {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &q[i..end];
                if pending_fragment {
                    continue; // `on` and the type name
                }
                if let Some(level) = stack.last_mut() {
                    level.push(Field {
                        name: word.to_string(),
                        children: Vec::new(),
                    });
                }
                // Words before the first `{` (`query Name`) are the operation header.
            }
            other => return Err(format!("Invalid bulk query: unexpected `{other}`")),
        }
    }
    if !stack.is_empty() {
        return Err("Invalid bulk query: unbalanced `{`".into());
    }
    top.ok_or_else(|| "Invalid bulk query: no selection".into())
}

/// Shopify's documented limits of a bulk query (`bulkOperationRunQuery`: "The query must
/// include at least one connection field and supports up to five connections with a maximum
/// nesting depth of two levels"; a connection inside a list field is refused), with the
/// user-error messages Shopify answers.
fn bulk_query_errors(q: &str) -> Vec<String> {
    let fields = match parse_selection(q) {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    #[derive(Default)]
    struct Seen {
        connections: usize,
        depth: usize,
        in_list: bool,
    }
    fn walk(fields: &[Field], depth: usize, in_list: bool, seen: &mut Seen) {
        for f in fields {
            let connection = CONNECTION_FIELDS.contains(&f.name.as_str())
                || f.children.iter().any(|c| c.name == "edges");
            let list = LIST_FIELDS.contains(&f.name.as_str());
            let mut d = depth;
            if connection {
                seen.connections += 1;
                d += 1;
                seen.depth = seen.depth.max(d);
                if in_list {
                    seen.in_list = true;
                }
            }
            walk(&f.children, d, in_list || list, seen);
        }
    }
    let mut seen = Seen::default();
    walk(&fields, 0, false, &mut seen);
    let mut errors = Vec::new();
    if seen.in_list {
        errors.push(
            "Queries that contain a connection field within a list field are not currently supported."
                .to_string(),
        );
    }
    if seen.depth > 2 {
        errors.push(
            "Bulk queries cannot contain connections with a nesting depth greater than 2.".into(),
        );
    }
    if seen.connections > 5 {
        errors.push("Bulk queries cannot contain more than 5 connections.".into());
    }
    if seen.connections == 0 {
        errors.push("Bulk queries must contain at least one connection.".into());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tap's window filter: `>=` lower bound, strict `<` upper bound; other search terms
    /// are refused rather than ignored (an ignored filter would export every order).
    #[test]
    fn updated_at_bounds_keep_strictness_and_refuse_other_terms() {
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let b = updated_at_bounds(
            "updated_at:>='2026-01-01T00:00:00.000000Z' AND updated_at:<'2026-01-31T00:00:00.000000Z'",
        )
        .unwrap();
        assert_eq!(
            b,
            (
                t("2026-01-01T00:00:00Z"),
                true,
                t("2026-01-31T00:00:00Z"),
                false
            )
        );
        let b = updated_at_bounds(
            "updated_at:>2026-01-01T00:00:00Z updated_at:<='2026-02-01T00:00:00Z'",
        )
        .unwrap();
        assert_eq!(
            b,
            (
                t("2026-01-01T00:00:00Z"),
                false,
                t("2026-02-01T00:00:00Z"),
                true
            )
        );
        assert!(updated_at_bounds("status:open").is_err());
        assert!(updated_at_bounds("updated_at:>='yesterday'").is_err());
    }

    #[test]
    fn bulk_rules_follow_shopify() {
        let ok = "{ orders(query: \"a:'b'\") { edges { node { id refunds { id } lineItems { edges { node { id } } } } } } }";
        assert!(
            bulk_query_errors(ok).is_empty(),
            "{:?}",
            bulk_query_errors(ok)
        );
        let in_list = "{ orders { edges { node { refunds { refundLineItems { edges { node { id } } } } } } } }";
        assert_eq!(
            bulk_query_errors(in_list),
            [
                "Queries that contain a connection field within a list field are not currently supported."
            ]
        );
        let deep = "{ orders { edges { node { lineItems { edges { node { product { variants { edges { node { id } } } } } } } } } } }";
        assert_eq!(
            bulk_query_errors(deep),
            ["Bulk queries cannot contain connections with a nesting depth greater than 2."]
        );
        let six = "{ products { edges { node { a: metafields { edges { node { id } } } b: metafields { edges { node { id } } } c: metafields { edges { node { id } } } d: metafields { edges { node { id } } } e: metafields { edges { node { id } } } } } } }";
        assert_eq!(
            bulk_query_errors(six),
            ["Bulk queries cannot contain more than 5 connections."]
        );
        assert_eq!(
            bulk_query_errors("{ shop { id } }"),
            ["Bulk queries must contain at least one connection."]
        );
        let fragment = "query { nodes(ids: [\"x\"]) { ... on Order { id } } }";
        assert_eq!(bulk_query_errors(fragment).len(), 1);
    }
}
