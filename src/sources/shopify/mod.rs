//! Shopify source over the Admin GraphQL API (`/admin/api/<version>/graphql.json`).
//!
//! Streams: `orders` (incremental by `updated_at`, or a bulk operation for a large first
//! sync, see [`bulk`]), `abandoned_checkouts` (by `updated_at`; recovered ones, with
//! `completedAt`, are deleted) and a daily `reconcile` of order ids that marks orders deleted
//! from the shop, only from a complete listing and never more than a few percent at once.
//! Credentials are an access token or a client id and secret exchanged for a cached,
//! expiring token (client-credentials grant). Requests are paced from
//! `extensions.cost.throttleStatus`; a `THROTTLED` answer (HTTP 200) is waited out for as
//! long as the restore rate implies. See `docs/shopify.md`.

mod api;
mod bulk;
mod convert;
pub mod query;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::api::{
    AbandonedData, Envelope, GqlError, IdsData, LinesNode, NodeData, OrdersCountData, OrdersData,
    RefundLinesNode, RefundsBatchData, RefundsNode, ScopesData, ShopAndScopesData, ShopData,
    ThrottleStatus, WireOrder, WireRefundLine,
};
use super::http::{HttpClient, Redactor, excerpt};
use super::{SourceError, SyncContext};
use crate::config::{ExposeSecret, ShopifyAuth, ShopifySettings, StoreSettings};
use crate::domain::{StoreInfo, StoreTz};
use crate::runtime::{Clock, Shutdown};
use crate::store::Page;

/// THROTTLED answers waited out for one request before the run gives up.
const MAX_THROTTLED: u32 = 50;
/// The abandoned-checkout cursor: the start of the last run that read the whole list of
/// checkouts updated since the previous one. (Named apart from the old `created_at` cursor
/// `abandoned_checkouts`, so a database synced before recovered checkouts were excluded
/// reads every checkout once more and drops the recovered ones.)
const ABANDONED_STREAM: &str = "abandoned_checkouts_updated";
/// Orders older than this need the `read_all_orders` scope.
const RECENT_DAYS: i64 = 60;

/// A Shopify store.
pub struct ShopifySource {
    name: String,
    settings: Box<ShopifySettings>,
    http: HttpClient,
    lookback: Duration,
    /// The last throttle status Shopify reported, and when.
    bucket: Mutex<Option<(ThrottleStatus, tokio::time::Instant)>>,
    /// The last request's round trip, for the pacing margin.
    rtt: Mutex<StdDuration>,
    /// Per query name, the requested cost Shopify reported over okrsync's estimate: Shopify
    /// says "running a query is the best way to find out its true cost", so pacing follows
    /// what it reports rather than okrsync's model alone.
    learned: Mutex<HashMap<String, f64>>,
    /// Scopes read with the shop's facts by [`ShopifySource::store_info`], used once.
    access: Mutex<Option<Access>>,
    /// A token exchanged with client credentials and when to renew it. The daemon keeps a
    /// source for the life of its job, so it exchanges once per token lifetime, not per run.
    token: Mutex<Option<(String, tokio::time::Instant)>>,
}

/// The stored position holding the last cost-bucket status Shopify reported (not a stream).
const BUCKET_STREAM: &str = "shopify_bucket";

/// Items of the first page of a query while the bucket is unknown (see `affordable_page`).
const UNKNOWN_BUCKET_PAGE: u32 = 2;

/// Slack added to the round trip in the pacing margin: the shop's clock and ours differ, and
/// its bucket may restore in steps rather than continuously.
const CLOCK_SLACK: StdDuration = StdDuration::from_millis(50);

/// The position of the `orders` stream, stored as JSON in the `cursors` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
enum Cursor {
    /// Everything changed up to (at, id) is stored; `id` is the GID's number.
    Incremental { at: DateTime<Utc>, id: u64 },
    /// A bulk backfill: the operation, when it was started (orders updated up to then are
    /// in it), and how many of its orders (sorted by id) are stored.
    Bulk {
        operation: String,
        started_at: DateTime<Utc>,
        done: u64,
    },
}

/// Which optional data the token can read.
#[derive(Debug, Clone, Default)]
struct Access {
    scopes: Option<HashSet<String>>,
}

impl Access {
    /// `None` when the scopes could not be listed.
    fn all_orders(&self) -> Option<bool> {
        self.scopes.as_ref().map(|s| s.contains("read_all_orders"))
    }
}

impl ShopifySource {
    pub fn new(
        store: &StoreSettings,
        s: &ShopifySettings,
        clock: &Clock,
    ) -> Result<ShopifySource, SourceError> {
        let mut redactor = Redactor::default();
        match &s.auth {
            ShopifyAuth::Token(t) => redactor.add(t.expose_secret()),
            ShopifyAuth::ClientCredentials {
                client_id,
                client_secret,
            } => {
                redactor.add(client_id.expose_secret());
                redactor.add(client_secret.expose_secret());
            }
        }
        let http = HttpClient::for_store(store, redactor)?.with_auth_hint(format!(
            "; check access_token (or client_id and client_secret) of store `{}` and that the app has the read_orders, read_all_orders and read_customers scopes",
            store.name
        ))
        .with_clock(clock.clone());
        Ok(ShopifySource {
            name: store.name.clone(),
            settings: Box::new(s.clone()),
            http,
            lookback: store.lookback,
            bucket: Mutex::new(None),
            rtt: Mutex::new(StdDuration::ZERO),
            learned: Mutex::new(HashMap::new()),
            access: Mutex::new(None),
            token: Mutex::new(None),
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The configured Admin API version (`2025-10`, `unstable`, …).
    pub(crate) fn api_version(&self) -> &str {
        &self.settings.api_version
    }

    pub(crate) fn endpoint(&self) -> String {
        format!(
            "{}/admin/api/{}/graphql.json",
            self.settings.shop.as_str().trim_end_matches('/'),
            self.settings.api_version
        )
    }

    /// Points restored while the margin lasts: one round trip plus [`CLOCK_SLACK`], plus one.
    fn margin(&self, restore_rate: f64) -> f64 {
        let rtt = *self.rtt.lock().unwrap_or_else(|e| e.into_inner());
        1.0 + restore_rate * (rtt + CLOCK_SLACK).as_secs_f64()
    }

    /// Waits until the bucket (as last reported, refilled since at the restore rate) holds
    /// `cost` points plus a margin (one round trip and the clock difference), so requests
    /// do not run into THROTTLED in steady state. Shopify admits a query only when the bucket
    /// holds its *requested* cost; it then charges the actual cost, which the next reported
    /// status reflects.
    async fn pace(&self, name: &str, cost: u32, shutdown: &Shutdown) -> Result<(), SourceError> {
        let ratio = self
            .learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(1.0);
        let cost = f64::from(cost) * ratio.max(1.0);
        let wait = {
            let guard = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            match *guard {
                Some((t, at)) if t.restore_rate > 0.0 => {
                    let need = (cost + self.margin(t.restore_rate)).min(t.maximum_available);
                    let now_available = (t.currently_available
                        + t.restore_rate * at.elapsed().as_secs_f64())
                    .min(t.maximum_available);
                    (now_available < need).then(|| (need - now_available) / t.restore_rate)
                }
                _ => None,
            }
        };
        if let Some(secs) = wait {
            tracing::debug!(store = %self.name, secs, "pacing: waiting for the cost bucket to refill");
            sleep(StdDuration::from_secs_f64(secs.min(60.0)), shutdown).await?;
        }
        Ok(())
    }

    /// The largest page (1 to `max` items) of query `name`, costing `fixed + n × per_item`
    /// by okrsync's model (scaled by what Shopify last reported for it), that the bucket
    /// holds now with the pacing margin: sent at once instead of waiting for a full page.
    fn affordable_page(&self, name: &str, fixed: u32, per_item: u32, max: u32) -> u32 {
        let guard = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let Some((t, at)) = *guard else {
            // A new process does not know the bucket (another run may just have drained it):
            // a small first page (~190 points for orders, restored within 2 s on a standard
            // shop) is never throttled, and its answer tells the bucket for the next pages.
            return max.min(UNKNOWN_BUCKET_PAGE);
        };
        drop(guard);
        let ratio = self
            .learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(1.0)
            .max(1.0);
        let available = (t.currently_available + t.restore_rate * at.elapsed().as_secs_f64())
            .min(t.maximum_available);
        let room = available - self.margin(t.restore_rate) - f64::from(fixed) * ratio;
        ((room / (f64::from(per_item) * ratio)).floor().max(1.0) as u32).min(max)
    }

    /// The Admin API access token: the configured one, or (client credentials) a cached
    /// token from the client-credentials grant, renewed a minute before it expires.
    async fn access_token(&self, shutdown: &Shutdown) -> Result<String, SourceError> {
        let (client_id, client_secret) = match &self.settings.auth {
            ShopifyAuth::Token(t) => return Ok(t.expose_secret().to_string()),
            ShopifyAuth::ClientCredentials {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        if let Some((t, until)) = &*self.token.lock().unwrap_or_else(|e| e.into_inner())
            && tokio::time::Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let url = format!(
            "{}/admin/oauth/access_token",
            self.settings.shop.as_str().trim_end_matches('/')
        );
        let resp = self
            .http
            .send(&format!("POST {url}"), shutdown, |c| {
                crate::sources::analytics::with_form(
                    c.post(&url),
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id.expose_secret()),
                        ("client_secret", client_secret.expose_secret()),
                    ],
                )
            })
            .await
            .map_err(|e| match e {
                SourceError::Auth { url, status, body, .. } | SourceError::Status { url, status, body }
                    if (400..500).contains(&status) =>
                {
                    SourceError::Auth {
                        url,
                        status,
                        body: format!(
                            "{body} — the client credentials were refused: check client_id and client_secret (Dev Dashboard → your app → Settings) and that the app is installed on this shop"
                        ),
                        hint: String::new(),
                    }
                }
                other => other,
            })?;
        // The body holds the token: errors below never quote it.
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| SourceError::Malformed {
            url: url.clone(),
            detail: e.to_string(),
            excerpt: "(not shown: it may hold a token)".into(),
        })?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SourceError::Inconsistent {
                url: url.clone(),
                detail: "the client-credentials answer has no access_token".into(),
            })?
            .to_string();
        // From now on the token is removed from every error and log line like the secrets.
        self.http.redactor().add_late(&token);
        let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let until = tokio::time::Instant::now()
            + StdDuration::from_secs(expires_in.saturating_sub(60).max(1));
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets an exchanged token (after the API refused it).
    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Sends one GraphQL document. Paces by cost, waits out THROTTLED, and turns any other
    /// `errors` into [`SourceError::GraphQl`] naming the query. Shared with the
    /// `shopify_sessions` analytics provider, so both pace and wait the same way.
    pub(crate) async fn gql<T: DeserializeOwned>(
        &self,
        name: &str,
        document: &str,
        variables: Value,
        cost: u32,
        shutdown: &Shutdown,
    ) -> Result<T, SourceError> {
        let url = self.endpoint();
        let body = serde_json::to_vec(&json!({"query": document, "variables": variables}))
            .map_err(|e| SourceError::Config(format!("cannot encode query {name}: {e}")))?;
        let token = self.access_token(shutdown).await?;
        let mut throttled = 0;
        loop {
            self.pace(name, cost, shutdown).await?;
            let sent = tokio::time::Instant::now();
            let resp = self
                .http
                .send(&format!("POST {url} ({name})"), shutdown, |c| {
                    c.post(&url)
                        .header("X-Shopify-Access-Token", &token)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                })
                .await
                .inspect_err(|e| {
                    if matches!(e, SourceError::Auth { .. }) {
                        self.forget_token();
                    }
                })?;
            let env: Envelope<T> =
                serde_json::from_slice(&resp.body).map_err(|e| SourceError::Malformed {
                    url: format!("{url} ({name})"),
                    detail: e.to_string(),
                    excerpt: self.http.redactor().redact(&excerpt(&resp.body)),
                })?;
            let status = env
                .extensions
                .as_ref()
                .and_then(|e| e.cost.as_ref())
                .and_then(|c| c.throttle_status);
            *self.rtt.lock().unwrap_or_else(|e| e.into_inner()) = sent.elapsed();
            if let Some(requested) = env
                .extensions
                .as_ref()
                .and_then(|e| e.cost.as_ref())
                .and_then(|c| c.requested_query_cost)
                .filter(|r| *r > 0.0 && cost > 0)
            {
                self.learned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_string(), requested / f64::from(cost));
            }
            if let Some(t) = status {
                *self.bucket.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((t, tokio::time::Instant::now()));
            }
            let errors = parse_errors(env.errors.as_ref());
            if errors
                .iter()
                .any(|e| e.code.as_deref() == Some("THROTTLED"))
            {
                throttled += 1;
                if throttled > MAX_THROTTLED {
                    return Err(SourceError::GraphQl {
                        url: url.clone(),
                        query: name.to_string(),
                        code: Some("THROTTLED".into()),
                        message: format!(
                            "still throttled after {MAX_THROTTLED} waits; another app may be using this shop's API budget"
                        ),
                    });
                }
                let requested = env
                    .extensions
                    .as_ref()
                    .and_then(|e| e.cost.as_ref())
                    .and_then(|c| c.requested_query_cost)
                    .unwrap_or(f64::from(cost));
                let secs = match status {
                    Some(t) if t.restore_rate > 0.0 => {
                        (((requested + self.margin(t.restore_rate)).min(t.maximum_available)
                            - t.currently_available)
                            / t.restore_rate)
                            .max(0.05)
                    }
                    _ => 1.0,
                };
                self.http.counters().retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(store = %self.name, query = name, wait_s = secs, "THROTTLED by Shopify; waiting for the bucket to refill");
                sleep(StdDuration::from_secs_f64(secs.min(60.0)), shutdown).await?;
                continue;
            }
            if let Some(first) = errors.first() {
                return Err(SourceError::GraphQl {
                    url: url.clone(),
                    query: name.to_string(),
                    code: first.code.clone(),
                    message: self.http.redactor().redact(
                        &errors
                            .iter()
                            .map(|e| e.message.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                });
            }
            return env.data.ok_or_else(|| SourceError::Malformed {
                url: format!("{url} ({name})"),
                detail: "neither `data` nor `errors`".into(),
                excerpt: self.http.redactor().redact(&excerpt(&resp.body)),
            });
        }
    }

    /// Reads the shop's time zone and currency, and with them the token's scopes (kept for
    /// the sync that follows, so a run with nothing new makes one request fewer).
    pub async fn store_info(&self, shutdown: &Shutdown) -> Result<StoreInfo, SourceError> {
        let d = match self
            .gql::<ShopAndScopesData>(
                "ShopAndScopes",
                query::SHOP_AND_SCOPES,
                json!({}),
                3,
                shutdown,
            )
            .await
        {
            Ok(d) => {
                *self.access.lock().unwrap_or_else(|e| e.into_inner()) =
                    d.current_app_installation.map(|i| Access {
                        scopes: Some(i.access_scopes.into_iter().map(|s| s.handle).collect()),
                    });
                ShopData { shop: d.shop }
            }
            // Scopes that cannot be listed are not a reason to fail: read the shop alone.
            Err(SourceError::GraphQl { .. }) => {
                self.gql("Shop", query::SHOP, json!({}), 1, shutdown)
                    .await?
            }
            Err(e) => return Err(e),
        };
        let timezone =
            StoreTz::parse(&d.shop.iana_timezone).map_err(|e| SourceError::Inconsistent {
                url: self.endpoint(),
                detail: format!("shop.ianaTimezone: {e}"),
            })?;
        Ok(StoreInfo {
            timezone,
            currency: d.shop.currency_code,
        })
    }

    /// The token's access scopes, or `None` when they cannot be listed.
    pub(crate) async fn scopes(&self, shutdown: &Shutdown) -> Option<HashSet<String>> {
        self.access(shutdown).await.scopes
    }

    async fn access(&self, shutdown: &Shutdown) -> Access {
        if let Some(a) = self.access.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return a;
        }
        match self
            .gql::<ScopesData>("Scopes", query::SCOPES, json!({}), 2, shutdown)
            .await
        {
            Ok(d) => Access {
                scopes: Some(
                    d.current_app_installation
                        .access_scopes
                        .into_iter()
                        .map(|s| s.handle)
                        .collect(),
                ),
            },
            Err(e) => {
                tracing::warn!(store = %self.name, "cannot list the token's access scopes: {e}");
                Access::default()
            }
        }
    }

    /// `check --online`: token, shop facts, `read_all_orders`, abandoned checkouts.
    pub async fn check_online(&self, shutdown: &Shutdown) -> Result<Vec<String>, SourceError> {
        let d: ShopData = self
            .gql("Shop", query::SHOP, json!({}), 1, shutdown)
            .await?;
        let mut notes = vec![
            format!("access token accepted by shop `{}`", d.shop.name),
            format!("timezone {}", d.shop.iana_timezone),
            format!("currency {}", d.shop.currency_code),
        ];
        let access = self.access(shutdown).await;
        match access.all_orders() {
            Some(true) => notes.push(
                "read_all_orders granted: the full order history is visible".into(),
            ),
            Some(false) => notes.push(format!(
                "WARNING: this token cannot see orders older than {RECENT_DAYS} days (the read_all_orders scope is missing): \
                 KPIs over older windows would be silently short; grant read_all_orders to the app and reinstall it"
            )),
            None => notes.push(
                "could not list the token's scopes: whether orders older than 60 days are visible is unknown".into(),
            ),
        }
        if let Some(scopes) = &access.scopes {
            for s in ["read_orders", "read_customers"] {
                if !scopes.contains(s) {
                    notes.push(format!("WARNING: scope {s} is missing"));
                }
            }
        }
        match self.abandoned_probe(shutdown).await {
            Ok(()) => {
                notes.push("abandoned checkouts readable: cart_abandonment_rate is computed".into())
            }
            Err(reason) => notes.push(format!(
                "abandoned checkouts not readable ({reason}): cart_abandonment_rate is null, not 0"
            )),
        }
        Ok(notes)
    }

    /// Whether `abandonedCheckouts` can be read; `Err` holds the reason.
    async fn abandoned_probe(&self, shutdown: &Shutdown) -> Result<(), String> {
        match self
            .gql::<AbandonedData>(
                "AbandonedCheckouts",
                query::ABANDONED,
                json!({"first": 1, "after": null, "query": null}),
                3,
                shutdown,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(SourceError::GraphQl { message, code, .. }) => Err(match code {
                Some(c) => format!("{c}: {message}"),
                None => format!(
                    "{message}; API version {} may not offer abandonedCheckouts",
                    self.settings.api_version
                ),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Syncs orders, abandoned checkouts and (when due) deleted-order reconciliation.
    pub async fn sync(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        self.seed_bucket(ctx).await?;
        let result = self.sync_streams(ctx).await;
        self.save_bucket(ctx).await?;
        result
    }

    /// A new process does not know the shop's cost bucket: another run may just have drained
    /// it. The last status Shopify reported, saved with the time it was read, gives an estimate
    /// (restored at the reported rate since), so the first query is paced like the others.
    async fn seed_bucket(&self, ctx: &SyncContext<'_>) -> Result<(), SourceError> {
        if self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Ok(());
        }
        let Some(saved) = ctx.cursor(BUCKET_STREAM).await? else {
            return Ok(());
        };
        let Ok(v) = serde_json::from_str::<Value>(&saved) else {
            return Ok(());
        };
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let (Some(available), Some(maximum), Some(rate), Some(at)) = (
            num("available"),
            num("maximum"),
            num("restore_rate"),
            v.get("at")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok()),
        ) else {
            return Ok(());
        };
        let elapsed = (ctx.clock.now() - at.with_timezone(&Utc))
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        let status = ThrottleStatus {
            maximum_available: maximum,
            currently_available: (available + rate * elapsed).min(maximum),
            restore_rate: rate,
        };
        *self.bucket.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((status, tokio::time::Instant::now()));
        Ok(())
    }

    /// Saves the last bucket status with the time, for the next process (see `seed_bucket`).
    async fn save_bucket(&self, ctx: &SyncContext<'_>) -> Result<(), SourceError> {
        let Some((t, at)) = *self.bucket.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Ok(());
        };
        let read_at =
            ctx.clock.now() - chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
        let saved = json!({
            "available": t.currently_available,
            "maximum": t.maximum_available,
            "restore_rate": t.restore_rate,
            "at": read_at.to_rfc3339(),
        });
        let page = Page {
            cursor: Some((BUCKET_STREAM.into(), saved.to_string())),
            ..Page::default()
        };
        ctx.db
            .commit_page(ctx.store_id, page, ctx.clock.now())
            .await?;
        Ok(())
    }

    async fn sync_streams(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        // The scopes come with the shop's facts, which are read at most daily: when they were
        // reused this run, the warning waits for the next read and a reconciliation (the one
        // step that needs them) lists them itself. A sync with nothing new stays at 2 requests.
        let known = self.access.lock().unwrap_or_else(|e| e.into_inner()).take();
        if known.as_ref().and_then(Access::all_orders) == Some(false) {
            tracing::warn!(store = %self.name, "the token lacks read_all_orders: orders older than {RECENT_DAYS} days are invisible (run `okrsync check --online`)");
        }
        let stored = if ctx.full {
            None
        } else {
            ctx.cursor("orders").await?
        };
        let cursor = match stored {
            None => None,
            Some(text) => Some(serde_json::from_str::<Cursor>(&text).map_err(|e| {
                SourceError::Inconsistent {
                    url: "cursor orders".into(),
                    detail: format!(
                        "stored cursor `{text}` is unreadable ({e}); run `okrsync sync --full`"
                    ),
                }
            })?),
        };
        let first_sync = cursor.is_none();
        let resumed_bulk = matches!(cursor, Some(Cursor::Bulk { .. }));
        let from = match cursor {
            Some(Cursor::Incremental { at, id }) => Some((at, id)),
            Some(Cursor::Bulk { .. }) => Some(bulk::backfill(self, ctx, cursor).await?),
            None => {
                let count = self.orders_count(ctx.shutdown).await;
                match count {
                    Some(n) if n > self.settings.bulk_threshold => {
                        tracing::info!(store = %self.name, orders = n, threshold = self.settings.bulk_threshold, "large first sync: using a bulk operation");
                        Some(bulk::backfill(self, ctx, None).await?)
                    }
                    _ => None,
                }
            }
        };
        // A backfill (first sync, `--full`, or a resumed bulk backfill) saw every order id
        // at its start: the first id listing is due one schedule tick later, not now.
        let backfill_from = if first_sync {
            Some(ctx.started_at)
        } else if resumed_bulk {
            from.map(|(at, _)| at)
        } else {
            None
        };
        self.incremental(ctx, from).await?;
        if let Some(at) = backfill_from {
            ctx.backfill_saw_every_id(at).await?;
        }
        self.abandoned(ctx).await?;
        // The orders are saved: a reconciliation that cannot be trusted is skipped (and
        // tried again next run), never a reason to fail the run.
        match self.reconcile_if_due(ctx, known).await {
            Err(SourceError::Cancelled) => Err(SourceError::Cancelled),
            Err(SourceError::Store(e)) => Err(SourceError::Store(e)),
            Err(e) => {
                tracing::warn!(store = %self.name, "deleted-order reconciliation skipped, nothing marked deleted; it is retried at the next sync: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    async fn orders_count(&self, shutdown: &Shutdown) -> Option<u64> {
        match self
            .gql::<OrdersCountData>(
                "OrdersCount",
                query::ORDERS_COUNT,
                json!({"query": null}),
                1,
                shutdown,
            )
            .await
        {
            Ok(d) => d.orders_count.map(|c| c.count),
            Err(e) => {
                tracing::warn!(store = %self.name, "ordersCount failed ({e}); paging normally");
                None
            }
        }
    }

    /// Pages through orders updated since `from` minus the lookback (everything when
    /// `None`), oldest change first, committing each page with its cursor.
    async fn incremental(
        &self,
        ctx: &mut SyncContext<'_>,
        from: Option<(DateTime<Utc>, u64)>,
    ) -> Result<(), SourceError> {
        let filter = from.map(|(at, _)| {
            format!(
                "updated_at:>='{}'",
                (at - self.lookback).format("%Y-%m-%dT%H:%M:%SZ")
            )
        });
        let mut pos = from;
        let mut after: Option<String> = None;
        let mut done = 0;
        loop {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            // The first page is sized to what the bucket holds now (a run with nothing new,
            // or the read after a backfill that drained the bucket, rarely needs more);
            // later pages are full and paced.
            let first = if after.is_none() {
                self.affordable_page("Orders", 2, query::orders_cost(1) - 2, query::ORDERS_FIRST)
            } else {
                query::ORDERS_FIRST
            };
            let vars = json!({
                "first": first,
                "after": after,
                "query": filter,
                "lines": query::LINES_PER_ORDER,
                "refunds": query::REFUNDS_PER_ORDER,
            });
            let d: OrdersData = self
                .gql(
                    "Orders",
                    &query::orders(),
                    vars,
                    query::orders_cost(first),
                    ctx.shutdown,
                )
                .await?;
            let mut rows = d.orders.nodes;
            let fetched = rows.len() as u64;
            let mut unreadable = Vec::new();
            for (i, o) in rows.iter_mut().enumerate() {
                match self.complete(o, ctx.shutdown).await {
                    Ok(()) => {}
                    // An order okrsync cannot read whole is left out and reported (the run ends
                    // `partial`) instead of blocking every order after it.
                    Err(SourceError::Inconsistent { detail, .. }) => {
                        tracing::warn!(store = %self.name, "skipped an order: {detail}");
                        ctx.skipped.push(detail);
                        unreadable.push(i);
                    }
                    Err(e) => return Err(e),
                }
            }
            for i in unreadable.into_iter().rev() {
                rows.remove(i);
            }
            self.fill_refund_lines(&mut rows, ctx.shutdown).await?;
            let mut page = orders_page(&rows)?;
            for o in &page.orders {
                let k = (o.modified_at, convert::gid_number(&o.platform_id));
                if pos.is_none_or(|p| k > p) {
                    pos = Some(k);
                }
            }
            // Never past this run's start: rows changed during the run are read next time.
            let (at, id) = match pos {
                Some(p) if p.0 <= ctx.started_at => p,
                _ => (ctx.started_at, 0),
            };
            page.cursor = Some((
                "orders".into(),
                cursor_json(&Cursor::Incremental { at, id }),
            ));
            super::distrust_future_dates(&self.name, &mut page, ctx.clock.now());
            page.overwrite = ctx.full;
            ctx.commit(fetched, page).await?;
            done += fetched;
            ctx.progress.update(&self.name, "orders", done, None);
            match d.orders.page_info {
                Some(p) if p.has_next_page && p.end_cursor.is_some() => after = p.end_cursor,
                _ => break,
            }
        }
        ctx.progress.finish(&self.name, "orders", done);
        Ok(())
    }

    /// Fetches line items beyond the first page and every refund when the page returned the
    /// [`query::REFUNDS_PER_ORDER`] cap (the list may be cut). Refund line items come after,
    /// for the whole page at once, from [`ShopifySource::fill_refund_lines`].
    async fn complete(&self, o: &mut WireOrder, shutdown: &Shutdown) -> Result<(), SourceError> {
        if o.refunds.len() >= query::REFUNDS_PER_ORDER as usize {
            let d: NodeData<RefundsNode> = self
                .gql(
                    "OrderRefunds",
                    &query::all_refunds(),
                    json!({"id": o.id, "first": query::ALL_REFUNDS_FIRST}),
                    query::all_refunds_cost(),
                    shutdown,
                )
                .await?;
            let all = d.node.map(|n| n.refunds).unwrap_or_default();
            if all.len() >= query::ALL_REFUNDS_FIRST as usize {
                return Err(SourceError::Inconsistent {
                    url: self.endpoint(),
                    detail: format!(
                        "order {} has {} or more refunds, more than okrsync reads per order; its returns would be short",
                        o.id,
                        query::ALL_REFUNDS_FIRST
                    ),
                });
            }
            if all.len() > o.refunds.len() {
                o.refunds = all;
            }
        }
        let mut next = o
            .line_items
            .page_info
            .as_ref()
            .filter(|p| p.has_next_page)
            .and_then(|p| p.end_cursor.clone());
        while let Some(after) = next.take() {
            let d: NodeData<LinesNode> = self
                .gql(
                    "OrderLines",
                    &query::more_lines(),
                    json!({"id": o.id, "first": query::MORE_LINES_FIRST, "after": after}),
                    query::more_lines_cost(),
                    shutdown,
                )
                .await?;
            let Some(n) = d.node else { break };
            o.line_items.nodes.extend(n.line_items.nodes);
            next = n
                .line_items
                .page_info
                .filter(|p| p.has_next_page)
                .and_then(|p| p.end_cursor);
        }
        Ok(())
    }

    /// Reads the line items of every refund in `orders` that has none yet: up to
    /// [`query::BATCH_REFUNDS`] refunds per `nodes(ids:)` request (cost-paced like every
    /// query), and a refund with more than [`query::BATCH_LINES_FIRST`] lines paged on by
    /// itself. A refund the shop no longer returns (deleted since it was listed) gets no lines
    /// and a warning: deleting a refund updates its order, which the incremental read after
    /// the backfill reads again.
    async fn fill_refund_lines(
        &self,
        orders: &mut [WireOrder],
        shutdown: &Shutdown,
    ) -> Result<u64, SourceError> {
        let pending: Vec<String> = orders
            .iter()
            .flat_map(|o| o.refunds.iter())
            .filter(|r| r.refund_line_items.is_none())
            .map(|r| r.id.clone())
            .collect();
        let mut found: HashMap<String, api::Connection<WireRefundLine>> = HashMap::new();
        let mut requests = 0;
        for ids in pending.chunks(query::BATCH_REFUNDS as usize) {
            let d: RefundsBatchData = self
                .gql(
                    "RefundLinesBatch",
                    &query::refund_lines_batch(),
                    json!({"ids": ids, "first": query::BATCH_LINES_FIRST}),
                    query::refund_lines_batch_cost(ids.len() as u32),
                    shutdown,
                )
                .await?;
            requests += 1;
            for n in d.nodes.into_iter().flatten() {
                let mut lines = n.refund_line_items;
                let mut next = lines
                    .page_info
                    .take()
                    .filter(|p| p.has_next_page)
                    .and_then(|p| p.end_cursor);
                while let Some(after) = next.take() {
                    let d: NodeData<RefundLinesNode> = self
                        .gql(
                            "RefundLines",
                            &query::refund_lines(),
                            json!({"id": n.id, "first": query::REFUND_LINES_FIRST, "after": after}),
                            query::refund_lines_cost(),
                            shutdown,
                        )
                        .await?;
                    requests += 1;
                    let Some(more) = d.node else { break };
                    lines.nodes.extend(more.refund_line_items.nodes);
                    next = more
                        .refund_line_items
                        .page_info
                        .filter(|p| p.has_next_page)
                        .and_then(|p| p.end_cursor);
                }
                found.insert(n.id, lines);
            }
        }
        for r in orders.iter_mut().flat_map(|o| o.refunds.iter_mut()) {
            if r.refund_line_items.is_none() {
                let lines = found.remove(&r.id).unwrap_or_else(|| {
                    tracing::warn!(store = %self.name, refund = %r.id, "the shop no longer returns this refund; its order is read again when it changes");
                    api::Connection::default()
                });
                r.refund_line_items = Some(lines);
            }
        }
        Ok(requests)
    }

    /// Reads abandoned checkouts updated since the stream's cursor (minus the lookback).
    /// Shopify's list includes recovered checkouts (`completedAt` set): those became orders,
    /// so they are deleted, not counted. There is no `UPDATED_AT` sort key, so the filtered
    /// list is read whole (by id) and the cursor (the run's start) is stored with its last
    /// page only. When the token or API version cannot read them, records that (the KPI is
    /// then null) and carries on.
    async fn abandoned(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        let since = if ctx.full {
            None
        } else {
            ctx.cursor(ABANDONED_STREAM)
                .await?
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|d| d.with_timezone(&Utc))
        };
        let filter = since.map(|at| {
            format!(
                "updated_at:>='{}'",
                (at - self.lookback).format("%Y-%m-%dT%H:%M:%SZ")
            )
        });
        let mut after: Option<String> = None;
        loop {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            // Like orders: the first page is what the bucket holds now, later ones full.
            let first = if after.is_none() {
                self.affordable_page("AbandonedCheckouts", 2, 1, query::CHECKOUTS_FIRST)
            } else {
                query::CHECKOUTS_FIRST
            };
            let r = self
                .gql::<AbandonedData>(
                    "AbandonedCheckouts",
                    query::ABANDONED,
                    json!({"first": first, "after": after, "query": filter}),
                    2 + first,
                    ctx.shutdown,
                )
                .await;
            let d = match r {
                Ok(d) => d,
                Err(SourceError::GraphQl { message, .. }) => {
                    tracing::warn!(store = %self.name, "abandoned checkouts not readable ({message}); cart_abandonment_rate stays null");
                    ctx.db.set_abandoned_access(ctx.store_id, None).await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let mut page = Page::default();
            for c in &d.abandoned_checkouts.nodes {
                if c.completed_at
                    .as_deref()
                    .is_some_and(|t| !t.trim().is_empty())
                {
                    page.completed_checkouts.push(c.id.clone());
                    continue;
                }
                let at = convert::instant(&c.id, "createdAt", &c.created_at).map_err(|e| {
                    SourceError::Inconsistent {
                        url: self.endpoint(),
                        detail: e.0,
                    }
                })?;
                page.abandoned_checkouts.push((c.id.clone(), at));
            }
            let next = match d.abandoned_checkouts.page_info {
                Some(p) if p.has_next_page && p.end_cursor.is_some() => p.end_cursor,
                _ => None,
            };
            if next.is_none() {
                page.cursor = Some((ABANDONED_STREAM.into(), ctx.started_at.to_rfc3339()));
            }
            let fetched = (page.abandoned_checkouts.len() + page.completed_checkouts.len()) as u64;
            ctx.commit(fetched, page).await?;
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        ctx.db
            .set_abandoned_access(ctx.store_id, Some(true))
            .await?;
        Ok(())
    }

    /// Marks stored orders the shop no longer lists as deleted, when the reconcile schedule
    /// says it is due (daily by default). Deleted orders never show up in `updated_at` queries.
    async fn reconcile_if_due(
        &self,
        ctx: &mut SyncContext<'_>,
        known: Option<Access>,
    ) -> Result<(), SourceError> {
        let now = ctx.clock.now();
        if !ctx.reconcile_due(&self.settings.reconcile_schedule).await? {
            return Ok(());
        }
        let access = match known {
            Some(a) => a,
            None => self.access(ctx.shutdown).await,
        };
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let d: IdsData = self
                .gql(
                    "OrderIds",
                    query::ORDER_IDS,
                    json!({"first": query::IDS_FIRST, "after": after}),
                    2 + query::IDS_FIRST,
                    ctx.shutdown,
                )
                .await?;
            seen.extend(d.orders.nodes.into_iter().map(|n| n.id));
            match d.orders.page_info {
                Some(p) if p.has_next_page => match p.end_cursor {
                    Some(c) => after = Some(c),
                    None => {
                        return Err(SourceError::Inconsistent {
                            url: self.endpoint(),
                            detail: "order-id listing: hasNextPage without an endCursor".into(),
                        });
                    }
                },
                Some(_) => break,
                None => {
                    return Err(SourceError::Inconsistent {
                        url: self.endpoint(),
                        detail: "order-id listing: a page without pageInfo; whether it was the last is unknown".into(),
                    });
                }
            }
        }
        // The listing must be complete: as many ids as the shop says it has.
        let expected = self.orders_count(ctx.shutdown).await;
        if expected != Some(seen.len() as u64) {
            return Err(SourceError::Inconsistent {
                url: self.endpoint(),
                detail: format!(
                    "order-id listing returned {} ids but ordersCount is {}; refusing to mark orders deleted from an incomplete listing",
                    seen.len(),
                    expected.map_or("unknown".to_string(), |c| c.to_string())
                ),
            });
        }
        // Orders created after the run began may be missing from the id listing; orders
        // older than 60 days are invisible without read_all_orders: neither is "deleted".
        let horizon = (access.all_orders() != Some(true))
            .then(|| ctx.started_at - Duration::days(RECENT_DAYS - 1));
        let stored = ctx.db.live_order_ids_created(ctx.store_id).await?;
        let listing = super::IdListing {
            seen: &seen,
            horizon,
            url: self.endpoint(),
            docs: "docs/shopify.md, \"Deleted orders\"",
        };
        // The listing was checked against ordersCount: an absent order is gone.
        let missing = super::absent_orders(ctx, stored, listing)?;
        super::mark_deleted(ctx, missing, now).await?;
        Ok(())
    }
}

fn parse_errors(v: Option<&Value>) -> Vec<ParsedError> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| match serde_json::from_value::<GqlError>(e.clone()) {
                Ok(g) => ParsedError {
                    message: g.message,
                    code: g.extensions.and_then(|x| x.code),
                },
                Err(_) => ParsedError {
                    message: e.to_string(),
                    code: None,
                },
            })
            .collect(),
        // `{"errors": "[API] Invalid API key …"}` and other non-list shapes.
        Some(other) => vec![ParsedError {
            message: other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string()),
            code: None,
        }],
    }
}

struct ParsedError {
    message: String,
    code: Option<String>,
}

async fn sleep(d: StdDuration, shutdown: &Shutdown) -> Result<(), SourceError> {
    let mut sd = shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = sd.recv() => Err(SourceError::Cancelled),
    }
}

fn cursor_json(c: &Cursor) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// Converts complete orders. An order whose refund lines were not read yet is refused, so
/// no order is ever stored (and counted) with part of its returns missing.
fn orders_page(rows: &[WireOrder]) -> Result<Page, SourceError> {
    let mut page = Page::default();
    for w in rows {
        if let Some(r) = w.refunds.iter().find(|r| r.refund_line_items.is_none()) {
            return Err(SourceError::Inconsistent {
                url: "orders".into(),
                detail: format!(
                    "order {} would be stored before the line items of its refund {} were read (a bug in okrsync; please report it)",
                    w.id, r.id
                ),
            });
        }
        page.orders
            .push(convert::order(w).map_err(|e| SourceError::Inconsistent {
                url: "orders".into(),
                detail: e.0,
            })?);
    }
    Ok(page)
}
