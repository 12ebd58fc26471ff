//! Sources: where data enters okrsync. Each platform lives in its own folder, talks HTTP
//! through the shared [`http::HttpClient`], converts its wire format into [`crate::domain`]
//! records, and commits them page by page through a [`SyncContext`].
//!
//! Sources form a closed set ([`AnySource`]); adding a platform means adding a variant.

pub mod analytics;
pub mod google_auth;
pub mod http;
pub mod shopify;
pub mod woocommerce;

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use crate::config::{PlatformSettings, StoreSettings};
use crate::domain::{Platform, StoreInfo};
use crate::runtime::{Clock, Shutdown};
use crate::store::{Page, RunSummary, Store, StoreError};

/// Why a source request or run failed. Messages name the URL (without secrets) and say what
/// to do; secrets are redacted before an error is built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("request to {url} {message}")]
    Http { url: String, message: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} rejected the credentials (HTTP {status}: {body}){hint}")]
    Auth {
        url: String,
        status: u16,
        body: String,
        /// What to check, naming the source and its keys (starts with "; "), or empty.
        hint: String,
    },
    #[error(
        "{url} redirects (HTTP {status}) to {to}; set the store's url to the address it redirects to \
         (okrsync does not follow redirects, so credentials never travel to another address)"
    )]
    Redirect {
        url: String,
        status: u16,
        to: String,
    },
    #[error("{url} returned a body that is not valid JSON ({detail}); it begins: {excerpt}")]
    Malformed {
        url: String,
        detail: String,
        excerpt: String,
    },
    #[error(
        "{url}: Shopify query `{query}` failed{}: {message}",
        code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    GraphQl {
        url: String,
        query: String,
        code: Option<String>,
        message: String,
    },
    #[error("{url}: {detail}")]
    Inconsistent { url: String, detail: String },
    /// A feature the configured credentials or API version cannot reach; `fix` says what to
    /// change.
    #[error("{url}: {what} is unavailable ({reason}); {fix}")]
    Unavailable {
        url: String,
        what: String,
        reason: String,
        fix: String,
    },
    /// HTTP 429 without `Retry-After` from a quota-limited API (GA4, PageSpeed): retrying
    /// within the run would only burn more quota.
    #[error(
        "{url} answered HTTP 429: the API quota is exhausted ({body}); not retried now, as retries would use up more quota: the next scheduled run tries again (check the quota in the Google Cloud console if this repeats)"
    )]
    QuotaExhausted { url: String, body: String },
    #[error("stopped by a shutdown request")]
    Cancelled,
    #[error(
        "{} could not be read and {} left out (they are read again when they change in the store): {}",
        crate::text::plural(.0.len() as u64, "record"),
        if .0.len() == 1 { "was" } else { "were" },
        .0.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    )]
    Skipped(Vec<String>),
    #[error(
        "{} could not be measured (the others were stored): {}",
        crate::text::plural(.0.len() as u64, "page"),
        .0.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    )]
    Unmeasured(Vec<String>),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reports sync progress: a bar on a terminal, log lines otherwise.
pub trait Progress: Send + Sync {
    /// `done` of `total` (when known) records of `stream` are stored.
    fn update(&self, store: &str, stream: &str, done: u64, total: Option<u64>);
    /// A stream finished.
    fn finish(&self, store: &str, stream: &str, done: u64);
}

/// One reconciliation marks at most this share of a store's orders deleted (or
/// [`MAX_DELETED_FLOOR`], whichever is more); beyond it the listing looks incomplete and
/// nothing is marked.
pub const MAX_DELETED_SHARE: f64 = 0.05;
pub const MAX_DELETED_FLOOR: usize = 3;

/// How many of `live` stored orders one reconciliation may mark deleted.
pub fn deletion_limit(live: usize) -> usize {
    ((live as f64 * MAX_DELETED_SHARE).floor() as usize).max(MAX_DELETED_FLOOR)
}

/// A modification time further than this beyond the store's own clock is not trusted: stored
/// as is, it would make every later, real version look older.
pub(crate) const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::days(1);

/// Orders claiming a modification time more than [`FUTURE_TOLERANCE`] beyond the store's
/// clock (`store_now`: its `Date` header where the platform sends one, else ours) are stored
/// as modified at that clock, with a warning naming them: a bogus date (a plugin, an import, a
/// clock set to 2099 for a moment) would otherwise make every later, real change look older
/// and be ignored. Both platforms.
pub(crate) fn distrust_future_dates(store: &str, page: &mut Page, store_now: DateTime<Utc>) {
    use chrono::SubsecRound;
    for o in &mut page.orders {
        if o.modified_at > store_now + FUTURE_TOLERANCE {
            tracing::warn!(
                store,
                "order {} claims it was modified at {} but the store's clock says {}: the date is not trusted, the order is stored as modified at {}",
                o.platform_id,
                o.modified_at.format("%Y-%m-%dT%H:%M:%SZ"),
                store_now.format("%Y-%m-%dT%H:%M:%SZ"),
                store_now.format("%Y-%m-%dT%H:%M:%SZ"),
            );
            o.modified_at = store_now.trunc_subsecs(0);
        }
    }
}

/// What a platform's id listing found, for [`absent_orders`].
pub(crate) struct IdListing<'a> {
    /// Every order id the complete listing returned.
    pub seen: &'a std::collections::HashSet<String>,
    /// Orders created before this are invisible to the listing (Shopify without
    /// `read_all_orders`): never candidates.
    pub horizon: Option<DateTime<Utc>>,
    /// The endpoint listed, for errors.
    pub url: String,
    /// Where the guard is explained, for errors.
    pub docs: &'static str,
}

/// The deleted-order step both platforms share, first half: after a complete id listing, the
/// stored orders absent from it and created before the run began are candidates; more than
/// [`deletion_limit`] of them marks nothing (the listing looks incomplete). The platform then
/// confirms what it must and hands the rest to [`mark_deleted`].
pub(crate) fn absent_orders(
    ctx: &SyncContext<'_>,
    stored: Vec<(String, DateTime<Utc>)>,
    listing: IdListing<'_>,
) -> Result<Vec<String>, SourceError> {
    let live = stored.len();
    let candidates: Vec<String> = stored
        .into_iter()
        .filter(|(id, created)| {
            !listing.seen.contains(id)
                && *created < ctx.started_at
                && listing.horizon.is_none_or(|h| *created >= h)
        })
        .map(|(id, _)| id)
        .collect();
    if candidates.len() > deletion_limit(live) {
        return Err(SourceError::Inconsistent {
            url: listing.url,
            detail: format!(
                "{} of {live} stored orders are missing from the store's id listing, more than one run may mark deleted ({}% or {}); nothing was marked (a guard against an incomplete listing; see {})",
                candidates.len(),
                MAX_DELETED_SHARE * 100.0,
                MAX_DELETED_FLOOR,
                listing.docs,
            ),
        });
    }
    Ok(candidates)
}

/// The deleted-order step both platforms share, second half: marks `missing` deleted together
/// with the `reconcile` cursor at `at` (the reconciliation's time). Returns how many changed.
pub(crate) async fn mark_deleted(
    ctx: &mut SyncContext<'_>,
    missing: Vec<String>,
    at: DateTime<Utc>,
) -> Result<u64, SourceError> {
    // Nothing is stored before the store facts (as for pages).
    ctx.facts_stored().await?;
    let n = ctx
        .db
        .mark_orders_deleted(
            ctx.store_id,
            missing,
            Some(("reconcile".into(), at.to_rfc3339())),
            at,
        )
        .await?;
    if n > 0 {
        tracing::info!(store = %ctx.store_name, deleted = n, "reconciliation: orders deleted from the store are now excluded");
    }
    Ok(n as u64)
}

/// Progress that reports nothing beyond `tracing` debug lines.
pub struct QuietProgress;

impl Progress for QuietProgress {
    fn update(&self, store: &str, stream: &str, done: u64, total: Option<u64>) {
        tracing::debug!(store, stream, done, total, "sync progress");
    }
    fn finish(&self, _: &str, _: &str, _: u64) {}
}

/// What a source needs while it syncs: the store, its cursors, the clock, shutdown and
/// progress. Counters end up in the sync log.
pub struct SyncContext<'a> {
    pub db: &'a Store,
    pub store_name: &'a str,
    pub store_id: i64,
    pub run_id: i64,
    /// When this run started: no cursor is ever set past it.
    pub started_at: DateTime<Utc>,
    /// Ignore cursors and re-read everything.
    pub full: bool,
    pub shutdown: &'a Shutdown,
    pub progress: &'a dyn Progress,
    pub clock: &'a Clock,
    pub summary: RunSummary,
    /// Records that could not be read and were left out (the run ends `partial`).
    pub skipped: Vec<String>,
    /// Store facts being read alongside the first pages: nothing is written before they are
    /// stored (`Some(true)`); `Some(false)`: they failed, nothing is written at all.
    pub facts: Option<tokio::sync::watch::Receiver<Option<bool>>>,
}

impl SyncContext<'_> {
    /// The stored cursor of a stream (none on `--full`).
    pub async fn cursor(&self, stream: &str) -> Result<Option<String>, SourceError> {
        Ok(self.db.cursor(self.store_id, stream).await?)
    }

    /// Waits until the store facts read alongside this run are stored; an error (the run
    /// stops, nothing written) when they failed.
    async fn facts_stored(&mut self) -> Result<(), SourceError> {
        if let Some(rx) = &mut self.facts {
            let stored = rx
                .wait_for(Option::is_some)
                .await
                .map(|v| *v == Some(true))
                .unwrap_or(false);
            if !stored {
                return Err(SourceError::Cancelled);
            }
            self.facts = None;
        }
        Ok(())
    }

    /// Stores a page and its cursor in one transaction, then updates counters.
    pub async fn commit(&mut self, fetched: u64, page: Page) -> Result<(), SourceError> {
        self.facts_stored().await?;
        let stats = self
            .db
            .commit_page(self.store_id, page, self.clock.now())
            .await?;
        self.summary.pages += 1;
        self.summary.fetched += fetched;
        self.summary.upserted += stats.upserted;
        self.db
            .heartbeat(self.run_id, self.summary.clone(), self.clock.now())
            .await?;
        Ok(())
    }

    /// Records that a backfill (a first sync, or `sync --full`) which began at `at` listed
    /// every order the store had then: that counts as a reconciliation at `at`, so the first
    /// id listing is due at the schedule's first tick after `at`, not right after the
    /// backfill. Shared by every platform. A later reconciliation time is kept.
    pub async fn backfill_saw_every_id(&mut self, at: DateTime<Utc>) -> Result<(), SourceError> {
        let last = self
            .cursor("reconcile")
            .await?
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|d| d.with_timezone(&Utc));
        if last.is_some_and(|l| l >= at) {
            return Ok(());
        }
        self.facts_stored().await?;
        let page = Page {
            cursor: Some(("reconcile".into(), at.to_rfc3339())),
            ..Page::default()
        };
        self.db
            .commit_page(self.store_id, page, self.clock.now())
            .await?;
        Ok(())
    }

    /// Whether deleted-order reconciliation is due: never ran, or `schedule` ticked since the
    /// last one (its time is the `reconcile` cursor, stored with the orders it marked, or the
    /// start of the backfill that listed every order, see [`Self::backfill_saw_every_id`]).
    pub async fn reconcile_due(&self, schedule: &cron::Schedule) -> Result<bool, SourceError> {
        let last = self
            .cursor("reconcile")
            .await?
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|d| d.with_timezone(&Utc));
        // As of the run's start: a tick that falls during the run (a first sync longer than the
        // period) waits for the next run, so a backfill is never followed by a listing at once.
        Ok(match last {
            None => true,
            Some(l) => schedule
                .after(&l)
                .next()
                .is_some_and(|next| next <= self.started_at),
        })
    }

    /// Whether a stop was requested (checked between pages).
    pub fn stopping(&self) -> bool {
        self.shutdown.is_shutdown()
    }
}

/// One configured source of store data.
// One value per store and run: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnySource {
    WooCommerce(woocommerce::WooSource),
    Shopify(shopify::ShopifySource),
}

impl AnySource {
    /// Builds the source for a configured store.
    pub fn new(store: &StoreSettings, clock: &Clock) -> Result<AnySource, SourceError> {
        match &store.platform {
            PlatformSettings::WooCommerce(w) => Ok(AnySource::WooCommerce(
                woocommerce::WooSource::new(store, w, clock)?,
            )),
            PlatformSettings::Shopify(s) => Ok(AnySource::Shopify(shopify::ShopifySource::new(
                store, s, clock,
            )?)),
        }
    }

    pub fn platform(&self) -> Platform {
        match self {
            AnySource::WooCommerce(_) => Platform::WooCommerce,
            AnySource::Shopify(_) => Platform::Shopify,
        }
    }

    /// The source name recorded in the sync log.
    pub fn name(&self) -> &'static str {
        self.platform().as_str()
    }

    /// Reads the store's time zone and currency.
    pub async fn store_info(&self, shutdown: &Shutdown) -> Result<StoreInfo, SourceError> {
        match self {
            AnySource::WooCommerce(s) => s.store_info(shutdown).await,
            AnySource::Shopify(s) => s.store_info(shutdown).await,
        }
    }

    /// Fetches everything new since the stored cursors and commits it page by page.
    pub async fn sync(&self, ctx: &mut SyncContext<'_>) -> Result<(), SourceError> {
        match self {
            AnySource::WooCommerce(s) => s.sync(ctx).await,
            AnySource::Shopify(s) => s.sync(ctx).await,
        }
    }

    /// Checks credentials and access with a few read-only calls; returns findings to print.
    pub async fn check_online(&self, shutdown: &Shutdown) -> Result<Vec<String>, SourceError> {
        match self {
            AnySource::WooCommerce(s) => s.check_online(shutdown).await,
            AnySource::Shopify(s) => s.check_online(shutdown).await,
        }
    }

    /// Requests sent and retries made so far by this source.
    pub fn request_counts(&self) -> (u64, u64) {
        let c = match self {
            AnySource::WooCommerce(s) => s.http().counters(),
            AnySource::Shopify(s) => s.http().counters(),
        };
        (
            c.requests.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
        )
    }
}
