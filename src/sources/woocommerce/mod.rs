//! WooCommerce REST API v3 source.
//!
//! Streams, each with its own cursor: `orders` (`status=any`), `orders_trash`
//! (`status=trash`, which `any` omits) and `refunds` (`GET /wc/v3/refunds`, or per order on
//! stores older than 9.0). A first run (or `--full`) backfills by id; later runs read by
//! `modified` from the cursor minus a lookback, re-anchoring each page on the last row seen
//! so that rows moving mid-listing cannot be skipped. See `docs/reliability.md`.

mod api;
mod convert;
use okrsync_wire::oauth1 as oauth;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::api::{SiteIndex, WireOrder, WireRefund, WireReview};
use super::http::{HttpClient, HttpResponse, Redactor, excerpt};
use super::{SourceError, SyncContext};
use crate::config::{ExposeSecret, StoreSettings, WooAuth, WooSettings};
use crate::domain::{Review, StoreInfo, StoreTz};
use crate::runtime::{Clock, Shutdown};
use crate::store::Page;

/// WooCommerce caps `per_page` at 100.
const PER_PAGE: u64 = 100;
/// Orders whose refunds are fetched one order at a time, per committed page.
const REFUND_FALLBACK_BATCH: usize = 20;
/// Orders listed by the store but missing from the database fetched per reconciliation.
const UNKNOWN_FETCH_MAX: usize = 100;

/// A WooCommerce store.
pub struct WooSource {
    name: String,
    settings: WooSettings,
    http: HttpClient,
    lookback: Duration,
    /// The configured time zone: when set, the site index is not read at all.
    timezone: Option<StoreTz>,
}

/// The position of one stream, stored as JSON in the `cursors` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
enum Cursor {
    /// Backfill by id: rows before `offset` are stored, the largest id stored is `last_id`,
    /// and the backfill began at `started_at`.
    Backfill {
        offset: u64,
        last_id: u64,
        started_at: DateTime<Utc>,
    },
    /// Incremental: everything up to (at, id) is stored.
    Incremental { at: DateTime<Utc>, id: u64 },
}

/// An order as the id listing returns it (`_fields=id`).
#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

/// A listing okrsync pages through.
struct Listing {
    stream: &'static str,
    path: &'static str,
    /// Fixed query parameters (`status=any`).
    base: Vec<(String, String)>,
    /// The incremental lower bound parameter (exclusive): `modified_after` or `after`.
    since_param: &'static str,
    /// The incremental sort: `modified` or `date`.
    since_orderby: &'static str,
}

/// What a listing yields per row, so the pager can follow cursors.
trait Row: DeserializeOwned {
    /// The sort key of an incremental listing: (time, id).
    fn key(&self) -> Option<(DateTime<Utc>, u64)>;
    /// The row's id (the backfill's sort key).
    fn id(&self) -> u64;
}

impl Row for WireOrder {
    fn id(&self) -> u64 {
        self.id
    }

    fn key(&self) -> Option<(DateTime<Utc>, u64)> {
        convert::gmt(
            "order",
            self.id,
            "date_modified_gmt",
            &self.date_modified_gmt,
        )
        .ok()
        .map(|t| (t, self.id))
    }
}

impl Row for WireRefund {
    fn id(&self) -> u64 {
        self.id
    }

    fn key(&self) -> Option<(DateTime<Utc>, u64)> {
        convert::gmt(
            "refund",
            self.id,
            "date_created_gmt",
            &self.date_created_gmt,
        )
        .ok()
        .map(|t| (t, self.id))
    }
}

impl WooSource {
    pub fn new(
        store: &StoreSettings,
        w: &WooSettings,
        clock: &Clock,
    ) -> Result<WooSource, SourceError> {
        let mut redactor = Redactor::default();
        let key = w.consumer_key.expose_secret();
        let secret = w.consumer_secret.expose_secret();
        redactor.add(key);
        redactor.add(secret);
        redactor.add_basic(key, secret);
        let http = HttpClient::for_store(store, redactor)?
            .with_auth_hint(format!(
                "; check consumer_key and consumer_secret of store `{}` (a WooCommerce REST API key with Read permission)",
                store.name
            ))
            .with_max_concurrency(w.max_concurrency)
            .with_clock(clock.clone());
        Ok(WooSource {
            name: store.name.clone(),
            settings: w.clone(),
            http,
            lookback: store.lookback,
            timezone: store.timezone,
        })
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn site(&self) -> String {
        self.settings.url.as_str().trim_end_matches('/').to_string()
    }

    /// `GET <site>/wp-json/wc/v3/<path>?<query>` with the store's authentication.
    async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
        shutdown: &Shutdown,
    ) -> Result<HttpResponse, SourceError> {
        let mut url = reqwest::Url::parse(&format!("{}/wp-json/wc/v3/{path}", self.site()))
            .map_err(|e| SourceError::Config(format!("bad store URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let what = format!("GET {url}");
        let key = self.settings.consumer_key.expose_secret().to_string();
        let secret = self.settings.consumer_secret.expose_secret().to_string();
        let over_http = url.scheme() == "http";
        let now = self.http.now();
        let auth = self.settings.auth;
        self.http
            .send(&what, shutdown, |client| {
                if over_http {
                    // WooCommerce accepts only OAuth 1.0a over plain HTTP: never send Basic.
                    let mut signed = url.clone();
                    let ts = now.timestamp().max(0) as u64;
                    let params = oauth::sign(
                        "GET",
                        &url,
                        &key,
                        &secret,
                        oauth::SignatureMethod::HmacSha256,
                        &oauth::nonce(),
                        ts,
                    );
                    signed.query_pairs_mut().extend_pairs(&params);
                    client.get(signed)
                } else if auth == WooAuth::Query {
                    let mut with = url.clone();
                    with.query_pairs_mut()
                        .append_pair("consumer_key", &key)
                        .append_pair("consumer_secret", &secret);
                    client.get(with)
                } else {
                    client.get(url.clone()).basic_auth(&key, Some(&secret))
                }
            })
            .await
    }

    fn parse<T: DeserializeOwned>(
        &self,
        path: &str,
        resp: &HttpResponse,
    ) -> Result<T, SourceError> {
        serde_json::from_slice(&resp.body).map_err(|e| SourceError::Malformed {
            url: format!("{}/wp-json/wc/v3/{path}", self.site()),
            detail: e.to_string(),
            excerpt: self.http.redactor().redact(&excerpt(&resp.body)),
        })
    }

    /// The site's time zone from the public REST index (`timezone_string`, else `gmt_offset`).
    async fn site_timezone(
        &self,
        shutdown: &Shutdown,
        notes: &mut Vec<String>,
    ) -> Result<StoreTz, SourceError> {
        let index_url = format!("{}/wp-json/", self.site());
        let resp = match self
            .http
            .send(&format!("GET {index_url}"), shutdown, |c| c.get(&index_url))
            .await
        {
            Ok(r) => r,
            Err(SourceError::Auth { status, body, .. })
            | Err(SourceError::Status { status, body, .. }) => {
                return Err(SourceError::Inconsistent {
                    url: index_url,
                    detail: format!(
                        "the site's public REST index is not readable (HTTP {status}: {body}); security plugins often block it. \
                         Set `timezone` for this store in the config (e.g. timezone = \"Europe/Paris\") and okrsync will not read it"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let index: SiteIndex =
            serde_json::from_slice(&resp.body).map_err(|e| SourceError::Malformed {
                url: index_url.clone(),
                detail: e.to_string(),
                excerpt: excerpt(&resp.body),
            })?;
        Ok(match index.timezone_string.as_deref().map(str::trim) {
            Some(tz) if !tz.is_empty() => {
                notes.push(format!("timezone {tz} (from timezone_string)"));
                StoreTz::parse(tz).map_err(|e| SourceError::Inconsistent {
                    url: index_url.clone(),
                    detail: format!("timezone_string: {e}"),
                })?
            }
            _ => {
                let off = index.gmt_offset.clone().unwrap_or_else(|| "0".into());
                let tz = StoreTz::from_gmt_offset_hours(&off).ok_or_else(|| {
                    SourceError::Inconsistent {
                        url: index_url.clone(),
                        detail: format!("gmt_offset `{off}` is not an offset in hours"),
                    }
                })?;
                notes.push(format!(
                    "timezone {tz} (from gmt_offset; the site has no city time zone, so DST is not applied)"
                ));
                tz
            }
        })
    }

    /// Reads the store's time zone (`GET /wp-json/`) and currency (`settings/general`).
    pub async fn store_info(&self, shutdown: &Shutdown) -> Result<StoreInfo, SourceError> {
        let (info, _) = self.store_info_detailed(shutdown).await?;
        Ok(info)
    }

    async fn store_info_detailed(
        &self,
        shutdown: &Shutdown,
    ) -> Result<(StoreInfo, Vec<String>), SourceError> {
        let mut notes = Vec::new();
        let timezone = match self.timezone {
            Some(tz) => {
                notes.push(format!(
                    "timezone {tz} (from the config; the site index is not read)"
                ));
                tz
            }
            None => self.site_timezone(shutdown, &mut notes).await?,
        };
        let currency = match self.get("settings/general", &[], shutdown).await {
            Ok(resp) => {
                let settings: Vec<api::Setting> = self.parse("settings/general", &resp)?;
                settings
                    .iter()
                    .find(|s| s.id == "woocommerce_currency")
                    .and_then(|s| s.value.as_str().map(str::to_string))
            }
            Err(SourceError::Auth { .. }) | Err(SourceError::Status { .. }) => {
                notes.push("settings/general is not readable with this key; currency taken from the latest order".into());
                None
            }
            Err(e) => return Err(e),
        };
        let currency = match currency {
            Some(c) => c,
            None => {
                let q = vec![
                    ("per_page".to_string(), "1".to_string()),
                    ("status".to_string(), "any".to_string()),
                ];
                let resp = self.get("orders", &q, shutdown).await?;
                let orders: Vec<WireOrder> = self.parse("orders", &resp)?;
                orders
                    .first()
                    .map(|o| o.currency.clone())
                    .unwrap_or_default()
            }
        };
        notes.push(format!("currency {currency}"));
        Ok((StoreInfo { timezone, currency }, notes))
    }

    /// `check --online`: credentials, time zone, currency, and the refunds listing.
    pub async fn check_online(&self, shutdown: &Shutdown) -> Result<Vec<String>, SourceError> {
        let (_, mut notes) = self.store_info_detailed(shutdown).await?;
        let q = vec![
            ("per_page".to_string(), "1".to_string()),
            ("status".to_string(), "any".to_string()),
        ];
        let resp = self.get("orders", &q, shutdown).await?;
        let total = resp.header("x-wp-total").unwrap_or("?").to_string();
        notes.insert(
            0,
            format!(
                "credentials accepted; {} visible",
                total.parse::<u64>().map_or_else(
                    |_| format!("{total} orders"),
                    |n| crate::text::plural(n, "order")
                )
            ),
        );
        match self.get("refunds", &q, shutdown).await {
            Ok(_) => notes.push("refunds listing available (WooCommerce 9.0 or later)".into()),
            Err(SourceError::Status { status: 404, .. }) => notes.push(
                "no refunds listing (WooCommerce before 9.0): refunds are read per order".into(),
            ),
            Err(e) => return Err(e),
        }
        Ok(notes)
    }

    /// Every approved product review (`GET /wc/v3/products/reviews?status=approved`), paged
    /// like orders. Reviews are few, so each sync reads them all.
    pub async fn reviews(&self, shutdown: &Shutdown) -> Result<Vec<Review>, SourceError> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let q = vec![
                ("status".to_string(), "approved".to_string()),
                ("per_page".to_string(), PER_PAGE.to_string()),
                ("page".to_string(), page.to_string()),
                ("orderby".to_string(), "id".to_string()),
                ("order".to_string(), "asc".to_string()),
            ];
            let resp = self.get("products/reviews", &q, shutdown).await?;
            let rows: Vec<WireReview> = self.parse("products/reviews", &resp)?;
            let n = rows.len() as u64;
            for r in rows {
                if r.status != "approved" {
                    continue;
                }
                let created = convert::gmt("review", r.id, "date_created_gmt", &r.date_created_gmt)
                    .map_err(|detail| SourceError::Inconsistent {
                        url: format!("{}/wp-json/wc/v3/products/reviews", self.site()),
                        detail: detail.0,
                    })?;
                let rating = match &r.rating {
                    Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
                    Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
                    _ => 0,
                };
                out.push(Review {
                    id: r.id.to_string(),
                    product_id: r.product_id.to_string(),
                    created_at: created,
                    rating: rating.min(5) as u8,
                    verified: r.verified,
                });
            }
            let pages = resp
                .header("x-wp-totalpages")
                .and_then(|v| v.trim().parse::<u64>().ok());
            let more = match pages {
                Some(p) => page < p,
                None => n == PER_PAGE,
            };
            if !more || n == 0 {
                break;
            }
            if shutdown.is_shutdown() {
                return Err(SourceError::Cancelled);
            }
            page += 1;
        }
        Ok(out)
    }

    /// Syncs orders, trashed orders and refunds.
    pub async fn sync(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        let rules = self.settings.clone();
        // A backfill lists every order: it stands for the first reconciliation.
        let backfill_from = if ctx.full {
            Some(ctx.started_at)
        } else {
            match ctx
                .cursor("orders")
                .await?
                .as_deref()
                .map(serde_json::from_str)
            {
                None => Some(ctx.started_at),
                Some(Ok(Cursor::Backfill { started_at, .. })) => Some(started_at),
                Some(_) => None,
            }
        };
        let orders = Listing {
            stream: "orders",
            path: "orders",
            base: vec![("status".into(), "any".into())],
            since_param: "modified_after",
            since_orderby: "modified",
        };
        let trash = Listing {
            stream: "orders_trash",
            path: "orders",
            base: vec![("status".into(), "trash".into())],
            since_param: "modified_after",
            since_orderby: "modified",
        };
        let refunds = Listing {
            stream: "refunds",
            path: "refunds",
            base: vec![],
            since_param: "after",
            since_orderby: "date",
        };
        // Trash and refunds backfilling from their start (a first sync) are read ahead while
        // the orders are (sharing the store's window), and committed after them, in order.
        // Not on `--full`: its pages overwrite what is stored, so a trash page read before an
        // order's `any` page must not be stored after it.
        let mut ahead_of: Vec<&Listing> = Vec::new();
        if self.settings.max_concurrency > 1 {
            for l in [&trash, &refunds] {
                if !ctx.full && ctx.cursor(l.stream).await?.is_none() {
                    ahead_of.push(l);
                }
            }
        }
        // Rows that cannot be read are skipped (and reported) rather than blocking the stream.
        let skipped = std::sync::Mutex::new(Vec::new());
        let shutdown: &Shutdown = ctx.shutdown;
        let (r, mut ahead) = {
            let orders_run = self.start_listing(ctx, &orders, None, |rows: &[WireOrder]| {
                orders_page(rows, &rules, &skipped)
            });
            // The first pages of the trash and refund listings leave with the orders' first
            // page (each gives its listing's X-WP-Total): no slot of the window waits for it.
            let read_ahead = self.read_ahead(&ahead_of, shutdown);
            tokio::pin!(orders_run);
            tokio::pin!(read_ahead);
            let mut ahead = None;
            let r = loop {
                tokio::select! {
                    biased;
                    r = &mut orders_run => break r,
                    a = &mut read_ahead, if ahead.is_none() => ahead = Some(a),
                }
            };
            // Their pages are wanted whatever is left of them (a failed orders listing drops
            // them).
            if r.is_ok() && ahead.is_none() {
                ahead = Some(read_ahead.await);
            }
            (r, ahead.unwrap_or_default())
        };
        ctx.skipped.append(&mut take(&skipped));
        let orders_from = r?;
        let mut ahead_for = |l: &Listing| {
            ahead_of
                .iter()
                .position(|a| a.stream == l.stream)
                .and_then(|i| ahead.get_mut(i).map(std::mem::take))
                .filter(|pages| !pages.is_empty())
        };
        let trash_ahead = ahead_for(&trash);
        let refunds_ahead = ahead_for(&refunds);
        // The trash pages are stored before the orders' incremental read. Read one after the
        // other, pages are stored in the order they were read, so an order that moved between
        // the two listings meanwhile ends as the later read says; read ahead (a first sync,
        // which never overwrites), a row keeps the read with the later `date_modified`.
        let r = self
            .start_listing(ctx, &trash, trash_ahead, |rows: &[WireOrder]| {
                orders_page(rows, &rules, &skipped)
            })
            .await;
        ctx.skipped.append(&mut take(&skipped));
        let trash_from = r?;
        // The incremental reads of both order listings start at once, and are stored in order.
        let (orders_first, trash_first) = tokio::join!(
            self.catch_up_first(&orders, orders_from, shutdown),
            self.catch_up_first(&trash, trash_from, shutdown)
        );
        for (listing, from, first) in [
            (&orders, orders_from, orders_first),
            (&trash, trash_from, trash_first),
        ] {
            let Some((at, id)) = from else { continue };
            let r = self
                .incremental(ctx, listing, at, id, first, &|rows: &[WireOrder]| {
                    orders_page(rows, &rules, &skipped)
                })
                .await;
            ctx.skipped.append(&mut take(&skipped));
            r?;
        }
        let to_refunds = |rows: &[WireRefund]| refunds_page(rows, None, &skipped);
        let r = match self
            .start_listing(ctx, &refunds, refunds_ahead, to_refunds)
            .await
        {
            Ok(Some((at, id))) => {
                self.incremental(ctx, &refunds, at, id, None, &to_refunds)
                    .await
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        ctx.skipped.append(&mut take(&skipped));
        match r {
            Ok(()) => {}
            Err(SourceError::Status {
                status: 404,
                ref body,
                ..
            }) if body.contains("rest_no_route") => {
                tracing::info!(store = %self.name, "no GET /wc/v3/refunds (WooCommerce before 9.0): reading refunds per order");
            }
            Err(e) => return Err(e),
        }
        self.fetch_missing_refunds(ctx).await?;
        if let Some(at) = backfill_from {
            ctx.backfill_saw_every_id(at).await?;
        }
        match self.reconcile_if_due(ctx).await {
            Err(SourceError::Cancelled) => Err(SourceError::Cancelled),
            Err(SourceError::Store(e)) => Err(SourceError::Store(e)),
            Err(e) => {
                tracing::warn!(store = %self.name, "deleted-order reconciliation skipped, nothing marked deleted; it is retried at the next sync: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Orders deleted permanently (emptied from the trash) vanish from every listing. When
    /// `reconcile_schedule` is due, list every order id (`status=any` and `status=trash`);
    /// a stored order in neither listing is fetched on its own (`GET orders/<id>`) and marked
    /// deleted only when that answers 404, so a row that moved during the paged listing is
    /// never mistaken for a deleted one. At most 5 % of the stored orders (or 3) are checked
    /// per run; beyond that nothing is marked (the listing looks incomplete). Orders listed but
    /// missing from the database are fetched and stored ([`Self::fetch_unknown`]).
    async fn reconcile_if_due(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        let now = ctx.clock.now();
        if !ctx.reconcile_due(&self.settings.reconcile_schedule).await? {
            return Ok(());
        }
        // Every id of both listings. The first page gives X-WP-Total; the pages after it are
        // then known and read `max_concurrency` at a time (their order does not matter: the
        // ids are collected, and rows moving meanwhile are confirmed one by one below).
        let mut seen = std::collections::HashSet::new();
        let depth = self.settings.max_concurrency.max(1);
        let shutdown: &Shutdown = ctx.shutdown;
        for status in ["any", "trash"] {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let resp = self.get("orders", &id_query(status, 1), shutdown).await?;
            let (ids, total) = self.id_page(&resp)?;
            let short = (ids.len() as u64) < PER_PAGE;
            seen.extend(ids);
            if short || PER_PAGE >= total {
                continue;
            }
            let last = total.div_ceil(PER_PAGE);
            let mut next = 2u64;
            let mut pending: Vec<(u64, Fetch<'_>)> = Vec::new();
            while next <= last || !pending.is_empty() {
                if ctx.stopping() {
                    return Err(SourceError::Cancelled);
                }
                while next <= last && pending.len() < depth {
                    let q = id_query(status, next);
                    pending.push((
                        next,
                        Box::pin(async move { self.get("orders", &q, shutdown).await }),
                    ));
                    next += 1;
                }
                let (_, resp) = next_done(&mut pending).await;
                let (ids, _) = self.id_page(&resp?)?;
                seen.extend(ids);
            }
        }
        let stored = ctx.db.live_order_ids_created(ctx.store_id).await?;
        self.fetch_unknown(ctx, &seen, &stored).await?;
        let listing = super::IdListing {
            seen: &seen,
            horizon: None,
            url: format!("{}/wp-json/wc/v3/orders", self.site()),
            docs: "docs/reliability.md",
        };
        // Rows can move under a paged listing: confirm each candidate on its own. Only a 404
        // ("invalid ID") proves the order is gone.
        let mut missing = Vec::new();
        for id in super::absent_orders(ctx, stored, listing)? {
            match self.get(&format!("orders/{id}"), &[], ctx.shutdown).await {
                Err(SourceError::Status { status: 404, .. }) => missing.push(id),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        super::mark_deleted(ctx, missing, now).await?;
        Ok(())
    }

    /// The ids of one page of the id listing, and its `X-WP-Total`.
    fn id_page(&self, resp: &HttpResponse) -> Result<(Vec<String>, u64), SourceError> {
        let ids: Vec<IdOnly> = self.parse("orders", resp)?;
        let Some(total) = wp_total(resp) else {
            return Err(SourceError::Inconsistent {
                url: format!("{}/wp-json/wc/v3/orders", self.site()),
                detail: "the order-id listing lacks X-WP-Total".into(),
            });
        };
        Ok((ids.into_iter().map(|o| o.id.to_string()).collect(), total))
    }

    /// Orders the store lists but the database lacks (a listing that hid a row, an order
    /// restored after being marked deleted) are fetched one by one (`GET orders/<id>`) and
    /// stored, at most [`UNKNOWN_FETCH_MAX`] per reconciliation.
    async fn fetch_unknown(
        &self,
        ctx: &mut SyncContext<'_>,
        seen: &std::collections::HashSet<String>,
        stored: &[(String, DateTime<Utc>)],
    ) -> Result<(), SourceError> {
        let known: std::collections::HashSet<&str> =
            stored.iter().map(|(id, _)| id.as_str()).collect();
        let mut unknown: Vec<u64> = seen
            .iter()
            .filter(|id| !known.contains(id.as_str()))
            .filter_map(|id| id.parse().ok())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        let all = unknown.len();
        unknown.truncate(UNKNOWN_FETCH_MAX);
        let names = unknown
            .iter()
            .take(10)
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        tracing::warn!(
            store = %self.name,
            "reconciliation: {} listed by the store {} missing from the database ({names}{}); fetching {} of them now",
            crate::text::plural(all as u64, "order"),
            if all == 1 { "is" } else { "are" },
            if all > 10 { ", …" } else { "" },
            unknown.len()
        );
        let rules = self.settings.clone();
        for batch in unknown.chunks(REFUND_FALLBACK_BATCH) {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let mut rows: Vec<WireOrder> = Vec::with_capacity(batch.len());
            for id in batch {
                let path = format!("orders/{id}");
                match self.get(&path, &[], ctx.shutdown).await {
                    Ok(resp) => rows.push(self.parse(&path, &resp)?),
                    // Deleted since it was listed.
                    Err(SourceError::Status { status: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let skipped = std::sync::Mutex::new(Vec::new());
            let page = orders_page(&rows, &rules, &skipped)?;
            ctx.skipped.append(&mut take(&skipped));
            ctx.commit(rows.len() as u64, page).await?;
        }
        Ok(())
    }

    /// Reads `GET /orders/<id>/refunds` for orders listing refunds okrsync has not stored.
    async fn fetch_missing_refunds(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        let missing = ctx.db.orders_missing_refunds(ctx.store_id).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let total = missing.len() as u64;
        let mut done = 0;
        for batch in missing.chunks(REFUND_FALLBACK_BATCH) {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let mut page = Page::default();
            let mut fetched = 0;
            for order_id in batch {
                let path = format!("orders/{order_id}/refunds");
                let q = [("per_page".to_string(), PER_PAGE.to_string())];
                let resp = self.get(&path, &q, ctx.shutdown).await?;
                let rows: Vec<WireRefund> = self.parse(&path, &resp)?;
                fetched += rows.len() as u64;
                let oid = order_id.parse::<u64>().ok();
                let skipped = std::sync::Mutex::new(Vec::new());
                page.refunds
                    .extend(refunds_page(&rows, oid, &skipped)?.refunds);
                ctx.skipped.append(&mut take(&skipped));
            }
            ctx.commit(fetched, page).await?;
            done += batch.len() as u64;
            ctx.progress
                .update(&self.name, "refunds_per_order", done, Some(total));
        }
        ctx.progress.finish(&self.name, "refunds_per_order", done);
        Ok(())
    }

    /// Reads the pages of fresh backfills of `listings` (by id, from row 0, each starting at
    /// the last row of the one before, up to `X-WP-Total`), their first pages sent together
    /// with the orders' first page, holding at most 2 × `max_concurrency` answers in all. The requests share the store's window with the orders listing (the [`Pacer`]
    /// bounds them together); none is sent after a stop signal. The answers (errors
    /// included) are handed to [`Self::backfill`], which checks and commits them in order as
    /// if it had read them itself, after the orders.
    ///
    /// [`Pacer`]: super::http::Pacer
    async fn read_ahead(&self, listings: &[&Listing], shutdown: &Shutdown) -> Vec<ReadAhead> {
        let mut out: Vec<ReadAhead> = listings.iter().map(|_| ReadAhead::new()).collect();
        if listings.is_empty() {
            return out;
        }
        let budget = 2 * self.settings.max_concurrency.max(1);
        let mut held = 0usize;
        let mut pending: Vec<((usize, u64), Fetch<'_>)> = Vec::new();
        let fetch = |i: usize, start: u64| -> Fetch<'_> {
            let listing: &Listing = listings[i];
            let q = backfill_query(listing, start);
            let path = listing.path;
            Box::pin(async move { self.get(path, &q, shutdown).await })
        };
        for i in 0..listings.len() {
            if shutdown.is_shutdown() {
                return out;
            }
            pending.push(((i, 0), fetch(i, 0)));
            held += 1;
        }
        while !pending.is_empty() {
            let ((i, start), r) = next_done(&mut pending).await;
            let total = r.as_ref().ok().and_then(wp_total);
            if start == 0
                && let Some(total) = total
            {
                let mut next = PER_PAGE - 1;
                while next < total && held < budget && !shutdown.is_shutdown() {
                    pending.push(((i, next), fetch(i, next)));
                    held += 1;
                    next += PER_PAGE - 1;
                }
            }
            out[i].insert(start, r);
        }
        out
    }

    /// Backfills one listing from its cursor (if it is a backfill), committing each page with
    /// its cursor, and returns where its incremental read ([`Self::incremental`]) starts when
    /// its cursor was already incremental (after a backfill, that read is the next run's).
    /// `ahead`: pages of a fresh backfill already read ([`Self::read_ahead`]).
    async fn start_listing<R, F>(
        &self,
        ctx: &mut SyncContext<'_>,
        listing: &Listing,
        ahead: Option<ReadAhead>,
        to_page: F,
    ) -> Result<Option<(DateTime<Utc>, u64)>, SourceError>
    where
        R: Row,
        F: Fn(&[R]) -> Result<Page, SourceError>,
    {
        let stored = if ctx.full {
            None
        } else {
            ctx.cursor(listing.stream).await?
        };
        let cursor = match stored {
            None => None,
            Some(text) => Some(serde_json::from_str::<Cursor>(&text).map_err(|e| {
                SourceError::Inconsistent {
                    url: format!("cursor {}", listing.stream),
                    detail: format!(
                        "stored cursor `{text}` is unreadable ({e}); run `okrsync sync --full`"
                    ),
                }
            })?),
        };
        match cursor {
            None | Some(Cursor::Backfill { .. }) => {
                // The backfill's catch-up read is the next run's: its cursor stays at the
                // backfill's start (never past it), so that run reads everything modified
                // since, as it would have now. Every row unchanged since the start is stored
                // as it is; a row changed meanwhile is stored as one of its reads said (or,
                // having moved between listings behind both readers, not yet) and read again
                // by the next run. See docs/reliability.md.
                self.backfill(ctx, listing, cursor, ahead, &to_page).await?;
                Ok(None)
            }
            Some(Cursor::Incremental { at, id }) => Ok(Some((at, id))),
        }
    }

    /// Where an incremental read from a cursor at `at` starts: `lookback` before it, to the
    /// second (the API's bounds are second-precise).
    fn first_anchor(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        (at - self.lookback).trunc_subsecs(0)
    }

    /// The first page of a catch-up read from `from` (see [`Self::incremental`]), read
    /// ahead of its turn; none after a stop signal.
    async fn catch_up_first(
        &self,
        listing: &Listing,
        from: Option<(DateTime<Utc>, u64)>,
        shutdown: &Shutdown,
    ) -> Option<FirstPage> {
        let (at, _) = from?;
        if shutdown.is_shutdown() {
            return None;
        }
        let q = incremental_query(listing, self.first_anchor(at), 0);
        let r = self.get(listing.path, &q, shutdown).await;
        Some((q, r))
    }

    /// Reads a listing by id (`orderby=id&order=asc`), from a backfill cursor or the start.
    /// Its last page is stored with the incremental cursor that follows it: the backfill's
    /// start.
    ///
    /// Pages are addressed by `offset` with a one-row overlap: each request starts at the last
    /// row already stored. When that row is not where it was (rows before it were trashed or
    /// deleted and everything moved back), the first row returned has an id above the last
    /// stored one, and the pager steps back a page until the overlap is found again. Rows are
    /// in id order and new orders get higher ids, so once a page starts at or before the last
    /// stored id, no unseen row can be before it.
    async fn backfill<R, F>(
        &self,
        ctx: &mut SyncContext<'_>,
        listing: &Listing,
        cursor: Option<Cursor>,
        ahead: Option<ReadAhead>,
        to_page: &F,
    ) -> Result<(), SourceError>
    where
        R: Row,
        F: Fn(&[R]) -> Result<Page, SourceError>,
    {
        let (mut offset, mut last_id, mut started_at) = match cursor {
            Some(Cursor::Backfill {
                offset,
                last_id,
                started_at,
            }) => (offset, last_id, started_at),
            _ => (0, 0, ctx.started_at),
        };
        let fresh = offset == 0 && last_id == 0;
        tracing::info!(store = %self.name, stream = listing.stream, offset, "backfill");
        let mut reread = false;
        // Pages requested ahead of the one to commit (keyed by their first row), and answers
        // that arrived before their turn: pages are fetched out of order, committed in order.
        let depth = self.settings.max_concurrency.max(1);
        let shutdown: &Shutdown = ctx.shutdown;
        let mut pending: Vec<(u64, Fetch<'_>)> = Vec::new();
        // Pages read ahead (a fresh backfill: keyed from row 0) wait here like any other.
        let mut ready: ReadAhead = ahead.unwrap_or_default();
        let mut known_total: Option<u64> = ready
            .values()
            .filter_map(|r| r.as_ref().ok())
            .find_map(wp_total);
        // Requests the page starting at `start` and those that follow it while the listing
        // holds still: each starts at the last row of the one before (99 rows further), up to
        // X-WP-Total. `depth` requests stay in flight while answers wait for their turn (at
        // most 2 × depth). Called whenever an answer arrives, so the window stays full while
        // earlier pages are waited for or committed.
        macro_rules! top_up {
            ($start:expr) => {{
                let mut next: u64 = $start;
                // After a stop signal, no new request: the run ends after the page in flight.
                let stop = if shutdown.is_shutdown() { 0 } else { depth * 3 };
                for i in 0..stop {
                    if i > 0 && (pending.len() >= depth || ready.len() >= 2 * depth) {
                        break;
                    }
                    if i > 0 && known_total.is_none_or(|t| next >= t) {
                        break;
                    }
                    if !ready.contains_key(&next) && !pending.iter().any(|(s, _)| *s == next) {
                        let q = backfill_query(listing, next);
                        let path = listing.path;
                        pending.push((
                            next,
                            Box::pin(async move { self.get(path, &q, shutdown).await }),
                        ));
                    }
                    next += PER_PAGE - 1;
                }
            }};
        }
        loop {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let start = if last_id > 0 {
                offset.saturating_sub(1)
            } else {
                offset
            };
            // Answers for pages before this one are never wanted again.
            ready.retain(|s, _| *s >= start);
            top_up!(start);
            let resp = loop {
                if let Some(r) = ready.remove(&start) {
                    break r;
                }
                let (s, r) = next_done(&mut pending).await;
                if let Ok(resp) = &r
                    && let Some(t) = wp_total(resp)
                {
                    known_total = Some(t);
                }
                let failed = r.is_err();
                ready.insert(s, r);
                if !failed {
                    top_up!(start);
                }
            };
            let resp = resp?;
            let rows: Vec<R> = self.parse(listing.path, &resp)?;
            let total = self.check_page(listing, start, &resp, rows.len() as u64)?;
            // Sorted by id: every row after the first has a larger id than the one before.
            let ids: Vec<(u64, Option<u64>)> =
                rows.iter().map(|r| (r.id(), Some(r.id()))).collect();
            if let Some(problem) = repeated_row(&ids) {
                self.repeated_rows(listing, start, total, &problem, &mut reread)?;
                continue;
            }
            reread = false;
            if fresh && start == 0 {
                // The incremental read that follows the backfill starts at its beginning on
                // the store's clock too (its `Date` header), should the store's clock be
                // behind ours: edits made during the backfill are stamped by the store.
                if let Some(store_now) = resp
                    .header("date")
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                {
                    started_at = started_at.min(store_now.with_timezone(&Utc));
                }
            }
            let overlaps = rows.first().is_some_and(|r| r.id() <= last_id);
            if last_id > 0 && start > 0 && !overlaps {
                // Rows moved back past our position: step back and look for the overlap.
                tracing::info!(
                    stream = listing.stream,
                    offset,
                    total,
                    "rows moved back during the backfill; stepping back a page"
                );
                offset = offset.min(total).saturating_sub(PER_PAGE);
                // Pages read ahead assumed the old positions.
                pending.clear();
                ready.clear();
                continue;
            }
            let fetched = rows.len() as u64;
            if let Some(max) = rows.iter().map(Row::id).max() {
                last_id = last_id.max(max);
            }
            offset = start + fetched;
            let mut page = to_page(&rows)?;
            self.distrust_future_dates(&mut page, &resp, ctx);
            page.overwrite = ctx.full;
            let finished = fetched < PER_PAGE;
            let next = if finished {
                // Everything modified since the backfill began is re-read incrementally.
                Cursor::Incremental {
                    at: started_at,
                    id: 0,
                }
            } else {
                Cursor::Backfill {
                    offset,
                    last_id,
                    started_at,
                }
            };
            page.cursor = Some((listing.stream.to_string(), cursor_json(&next)));
            // While the page is written, the pages in flight keep being read, and the window
            // is kept full from the page after this one.
            {
                let commit = ctx.commit(fetched, page);
                tokio::pin!(commit);
                loop {
                    tokio::select! {
                        r = &mut commit => {
                            r?;
                            break;
                        }
                        (s, r) = next_done(&mut pending), if !pending.is_empty() => {
                            let failed = r.is_err();
                            ready.insert(s, r);
                            if !failed && !finished {
                                top_up!(offset.saturating_sub(1));
                            }
                        }
                    }
                }
            }
            ctx.progress
                .update(&self.name, listing.stream, offset, Some(total));
            if finished {
                ctx.progress.finish(&self.name, listing.stream, offset);
                return Ok(());
            }
        }
    }

    /// Reads rows changed since (at, id) minus the lookback, in (time, id) order. `first`:
    /// its first page, already read ([`Self::catch_up_first`]).
    async fn incremental<R, F>(
        &self,
        ctx: &mut SyncContext<'_>,
        listing: &Listing,
        at: DateTime<Utc>,
        id: u64,
        mut first: Option<FirstPage>,
        to_page: &F,
    ) -> Result<(), SourceError>
    where
        R: Row,
        F: Fn(&[R]) -> Result<Page, SourceError>,
    {
        let mut pos = (at, id);
        // The same anchor as a first page read ahead (`catch_up_first`), which is used only
        // when its query is the one this asks.
        let mut anchor = self.first_anchor(at);
        // Rows of the anchor second already read (a tie group longer than a page), and the
        // largest id among them: pages inside a tie group overlap by one row, like the
        // backfill's, so a row leaving the group mid-listing cannot shift another past us.
        let mut offset = 0u64;
        let mut last_tie_id: Option<u64> = None;
        let mut done = 0;
        let mut reread = false;
        loop {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let start = if last_tie_id.is_some() {
                offset.saturating_sub(1)
            } else {
                offset
            };
            let q = incremental_query(listing, anchor, start);
            let resp = match first.take() {
                Some((asked, r)) if asked == q => r?,
                _ => self.get(listing.path, &q, ctx.shutdown).await?,
            };
            let rows: Vec<R> = self.parse(listing.path, &resp)?;
            let total = self.check_page(listing, start, &resp, rows.len() as u64)?;
            // Only distinct ids are checked here: the sort by modification time is the store's
            // (local time in some storages), so its order is not checked against ours.
            let ids: Vec<(u64, Option<u64>)> = rows.iter().map(|r| (r.id(), None)).collect();
            if let Some(problem) = repeated_row(&ids) {
                self.repeated_rows(listing, start, total, &problem, &mut reread)?;
                continue;
            }
            reread = false;
            if let Some(tie) = last_tie_id
                && start > 0
            {
                let overlaps = rows
                    .first()
                    .and_then(Row::key)
                    .is_some_and(|(t, id)| t == anchor && id <= tie);
                if !overlaps {
                    // Rows of the tie group moved away: step back and find the overlap again.
                    tracing::info!(
                        stream = listing.stream,
                        offset,
                        "rows moved during the listing; stepping back a page"
                    );
                    offset = offset.saturating_sub(PER_PAGE);
                    if offset == 0 {
                        last_tie_id = None;
                    }
                    continue;
                }
            }
            let fetched = rows.len() as u64;
            let last = rows.last().and_then(Row::key);
            let mut page = to_page(&rows)?;
            self.distrust_future_dates(&mut page, &resp, ctx);
            page.overwrite = ctx.full;
            if let Some(k) = last
                && k > pos
            {
                pos = k;
            }
            // Never past this run's start: rows changed during the run are read next time.
            if pos.0 > ctx.started_at {
                pos = (ctx.started_at, 0);
            }
            page.cursor = Some((
                listing.stream.to_string(),
                cursor_json(&Cursor::Incremental {
                    at: pos.0,
                    id: pos.1,
                }),
            ));
            ctx.commit(fetched, page).await?;
            done += fetched;
            ctx.progress.update(
                &self.name,
                listing.stream,
                done,
                Some(done + total.saturating_sub(start + fetched)),
            );
            if fetched < PER_PAGE {
                ctx.progress.finish(&self.name, listing.stream, done);
                return Ok(());
            }
            match last {
                Some((t, _)) if t > anchor => {
                    // Re-anchor on the last row's second and read from its first row.
                    anchor = t;
                    offset = 0;
                    last_tie_id = None;
                }
                last => {
                    // The whole page is one second: continue inside the tie group.
                    offset = start + fetched;
                    let id = last.map(|(_, id)| id).unwrap_or(0);
                    last_tie_id = Some(last_tie_id.map_or(id, |t| t.max(id)));
                }
            }
        }
    }

    /// Orders claiming a modification time more than [`FUTURE_TOLERANCE`] beyond the store's
    /// clock (the response's `Date`, else ours) are stored as modified at that clock, with a
    /// warning naming them: a bogus `date_modified_gmt` (a plugin, an import, a clock set to
    /// 2099 for a moment) would otherwise make every later, real change look older and be
    /// ignored.
    fn distrust_future_dates(&self, page: &mut Page, resp: &HttpResponse, ctx: &SyncContext<'_>) {
        let store_now = resp
            .header("date")
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| ctx.clock.now());
        super::distrust_future_dates(&self.name, page, store_now);
    }

    /// A page repeated a row in place of another: it has the promised number of rows, but
    /// fewer distinct orders, so one is hidden. The page is read once more; if it is still
    /// wrong the run stops before storing it (the cursor stays, the next run reads it again).
    fn repeated_rows(
        &self,
        listing: &Listing,
        start: u64,
        total: u64,
        problem: &str,
        reread: &mut bool,
    ) -> Result<(), SourceError> {
        if !*reread {
            tracing::warn!(
                store = %self.name,
                stream = listing.stream,
                start,
                "the page repeats a row in place of another ({problem}); reading it again"
            );
            *reread = true;
            return Ok(());
        }
        Err(SourceError::Inconsistent {
            url: format!("{}/wp-json/wc/v3/{}", self.site(), listing.path),
            detail: format!(
                "the page of {} starting at row {start} repeats a row in place of another ({problem}), twice in a row: it has the rows X-WP-Total = {total} promises, but an order is hidden. Nothing of this page was stored; the run stops here and resumes from the last stored page (a caching or query plugin may be rewriting the listing)",
                listing.stream
            ),
        })
    }

    /// Checks that a page starting at row `start` has as many rows as `X-WP-Total` promises,
    /// and returns that total.
    fn check_page(
        &self,
        listing: &Listing,
        start: u64,
        resp: &HttpResponse,
        rows: u64,
    ) -> Result<u64, SourceError> {
        let Some(total) = wp_total(resp) else {
            return Err(SourceError::Inconsistent {
                url: format!("{}/wp-json/wc/v3/{}", self.site(), listing.path),
                detail: "the response lacks the X-WP-Total header (a proxy or cache may strip it)"
                    .into(),
            });
        };
        let expected = total.saturating_sub(start).min(PER_PAGE);
        if rows != expected {
            return Err(SourceError::Inconsistent {
                url: format!("{}/wp-json/wc/v3/{}", self.site(), listing.path),
                detail: format!(
                    "the page of {} starting at row {start} has {rows} rows but X-WP-Total = {total} promises {expected}; the page is truncated, the run stops here and resumes from the last stored page",
                    listing.stream
                ),
            });
        }
        Ok(total)
    }
}

/// The first sign that a page repeats a row in place of another: an id seen twice, or (for
/// rows with a sort key) a key not larger than the one before it. `rows` are (id, sort key).
fn repeated_row(rows: &[(u64, Option<u64>)]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let mut prev: Option<u64> = None;
    for (i, (id, key)) in rows.iter().enumerate() {
        if !seen.insert(*id) {
            return Some(format!(
                "id {id} appears twice, again at row {i} of the page"
            ));
        }
        if let Some(k) = key {
            if let Some(p) = prev
                && *k <= p
            {
                return Some(format!("row {i} of the page, id {id}, comes after id {p}"));
            }
            prev = Some(*k);
        }
    }
    None
}

/// A page request in flight.
type Fetch<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, SourceError>> + Send + 'a>,
>;

/// The first page of a catch-up read: the query asked and its answer.
type FirstPage = (Vec<(String, String)>, Result<HttpResponse, SourceError>);

/// Answers by the first row of their page, waiting for their turn to be committed.
type ReadAhead = std::collections::BTreeMap<u64, Result<HttpResponse, SourceError>>;

/// Waits for the first of `pending` to finish and returns it with its key. `pending` must not
/// be empty.
async fn next_done<K>(pending: &mut Vec<(K, Fetch<'_>)>) -> (K, Result<HttpResponse, SourceError>) {
    std::future::poll_fn(|cx| {
        for i in 0..pending.len() {
            if let std::task::Poll::Ready(r) = pending[i].1.as_mut().poll(cx) {
                let (s, _) = pending.swap_remove(i);
                return std::task::Poll::Ready((s, r));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A page of the id listing of one status (`_fields=id`), by id.
fn id_query(status: &str, page: u64) -> Vec<(String, String)> {
    vec![
        ("status".to_string(), status.to_string()),
        ("orderby".to_string(), "id".to_string()),
        ("order".to_string(), "asc".to_string()),
        ("per_page".to_string(), PER_PAGE.to_string()),
        ("page".to_string(), page.to_string()),
        ("_fields".to_string(), "id".to_string()),
    ]
}

/// The incremental request for the page starting at row `start` of the rows modified (or
/// created) at or after `anchor`, in (time, id) order.
fn incremental_query(
    listing: &Listing,
    anchor: DateTime<Utc>,
    start: u64,
) -> Vec<(String, String)> {
    // The bound is exclusive and second-precise: ask for everything after the second before
    // the anchor, so rows at the anchor second itself are included.
    let since = (anchor - Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let mut q = listing.base.clone();
    q.extend([
        (listing.since_param.to_string(), since),
        ("dates_are_gmt".to_string(), "true".to_string()),
        ("orderby".to_string(), listing.since_orderby.to_string()),
        ("order".to_string(), "asc".to_string()),
        ("per_page".to_string(), PER_PAGE.to_string()),
        ("offset".to_string(), start.to_string()),
    ]);
    q
}

/// The backfill request for the page starting at row `start`: by id, ascending.
fn backfill_query(listing: &Listing, start: u64) -> Vec<(String, String)> {
    let mut q = listing.base.clone();
    q.extend([
        ("orderby".to_string(), "id".to_string()),
        ("order".to_string(), "asc".to_string()),
        ("per_page".to_string(), PER_PAGE.to_string()),
        ("offset".to_string(), start.to_string()),
    ]);
    q
}

fn cursor_json(c: &Cursor) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

/// Takes the problems collected by a page converter.
fn take(skipped: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Converts rows with `convert`. A row that cannot be read is left out and described in
/// `skipped` (the run ends `partial`); it is read again when it next changes in the store.
fn convert_rows<W, T>(
    rows: &[W],
    what: &str,
    convert: impl Fn(&W) -> Result<T, convert::ConvertError>,
    skipped: &std::sync::Mutex<Vec<String>>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(rows.len());
    for w in rows {
        match convert(w) {
            Ok(t) => out.push(t),
            Err(e) => {
                tracing::warn!("skipped an unreadable {what}: {}", e.0);
                skipped.lock().unwrap_or_else(|e| e.into_inner()).push(e.0);
            }
        }
    }
    out
}

/// A page of orders (unreadable ones skipped, see [`convert_rows`]).
fn orders_page(
    rows: &[WireOrder],
    rules: &WooSettings,
    skipped: &std::sync::Mutex<Vec<String>>,
) -> Result<Page, SourceError> {
    Ok(Page {
        orders: convert_rows(rows, "order", |w| convert::order(w, rules), skipped),
        ..Page::default()
    })
}

/// A page of refunds (unreadable ones skipped, see [`convert_rows`]).
fn refunds_page(
    rows: &[WireRefund],
    order_id: Option<u64>,
    skipped: &std::sync::Mutex<Vec<String>>,
) -> Result<Page, SourceError> {
    Ok(Page {
        refunds: convert_rows(rows, "refund", |w| convert::refund(w, order_id), skipped),
        ..Page::default()
    })
}

/// A listing's `X-WP-Total` header: how many rows the filtered listing holds at this moment.
fn wp_total(resp: &HttpResponse) -> Option<u64> {
    resp.header("x-wp-total")
        .and_then(|v| v.trim().parse::<u64>().ok())
}
