//! One sync run of one store: read store facts, let the source page through its streams, and
//! mark the store complete when every stream reached its end. Recorded by `daemon::run`.

use std::sync::{Arc, Mutex};

use crate::config::{AnalyticsSettings, PlatformSettings, Settings, StoreSettings};
use crate::daemon::run::{RunDesc, recorded_run};
use crate::daemon::{Clock, Shutdown};
use crate::sources::analytics::AnyAnalytics;
use crate::sources::{AnySource, Progress, SourceError, SyncContext};
use crate::store::{RunSummary, Store};

pub use crate::daemon::run::SyncReport;

/// A source built on its job's first run and kept for the next ones, so that what it holds
/// between runs (an access token until it expires, the cost Shopify charged per page) is not
/// thrown away every run. A build error is returned (and recorded in that run), and the next
/// run tries again.
pub struct Kept<T>(Arc<Mutex<Option<Arc<T>>>>);

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Kept(self.0.clone())
    }
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept(Arc::new(Mutex::new(None)))
    }
}

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(..)")
    }
}

impl<T> Kept<T> {
    /// The kept source, built by `build` if there is none yet.
    pub fn get_or_build(
        &self,
        build: impl FnOnce() -> Result<T, SourceError>,
    ) -> Result<Arc<T>, SourceError> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let built = Arc::new(build()?);
        *slot = Some(built.clone());
        Ok(built)
    }
}

/// One unit of sync work: a store or an analytics source, with its source kept between runs.
/// The scheduler runs each on its own schedule; `okrsync sync` and `demo` run them all through
/// [`sync_all`].
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built once per store or source
pub enum SyncJob {
    Store(StoreSettings, Kept<AnySource>),
    Analytics(AnalyticsSettings, Kept<AnyAnalytics>),
}

impl SyncJob {
    /// Every store, then every analytics source (which need their stores' time zones).
    pub fn all(settings: &Settings) -> Vec<SyncJob> {
        let stores = settings.stores.iter().cloned().map(SyncJob::store);
        stores
            .chain(settings.analytics.iter().cloned().map(SyncJob::analytics))
            .collect()
    }

    pub fn store(s: StoreSettings) -> SyncJob {
        SyncJob::Store(s, Kept::default())
    }

    pub fn analytics(a: AnalyticsSettings) -> SyncJob {
        SyncJob::Analytics(a, Kept::default())
    }

    /// The store or analytics source called `name`, if configured.
    pub fn named(settings: &Settings, name: &str) -> Option<SyncJob> {
        match (settings.store(name), settings.analytics_source(name)) {
            (Some(s), _) => Some(SyncJob::store(s.clone())),
            (None, Some(a)) => Some(SyncJob::analytics(a.clone())),
            (None, None) => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SyncJob::Store(s, _) => &s.name,
            SyncJob::Analytics(a, _) => &a.name,
        }
    }

    /// The platform or provider, as the sync log's `source`.
    pub fn source(&self) -> &'static str {
        match self {
            SyncJob::Store(s, _) => s.platform_name(),
            SyncJob::Analytics(a, _) => a.provider.name(),
        }
    }

    pub fn schedule(&self) -> &cron::Schedule {
        match self {
            SyncJob::Store(s, _) => &s.schedule,
            SyncJob::Analytics(a, _) => &a.schedule,
        }
    }

    /// Runs it once, recorded in the sync log.
    pub async fn sync(
        &self,
        settings: &Settings,
        db: &Store,
        clock: &Clock,
        shutdown: &Shutdown,
        progress: &dyn Progress,
        full: bool,
    ) -> Result<SyncReport, crate::store::StoreError> {
        match self {
            SyncJob::Store(s, kept) => {
                sync_kept_store(s, kept, db, clock, shutdown, progress, full).await
            }
            SyncJob::Analytics(a, kept) => {
                super::analytics::sync_kept_analytics(a, kept, settings, db, clock, shutdown, full)
                    .await
            }
        }
    }
}

/// What [`sync_all`] did.
#[derive(Debug, Default)]
pub struct SyncAll {
    /// Whether any run failed.
    pub failed: bool,
    /// Key results whose value changed (one check-in each).
    pub checkins: usize,
}

/// Runs `jobs` one after the other (a failing one never stops the others), reporting each
/// as it ends, then re-evaluates the key results once.
#[allow(clippy::too_many_arguments)]
pub async fn sync_all(
    settings: &Settings,
    jobs: &[SyncJob],
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    progress: &dyn Progress,
    full: bool,
    on_report: &mut dyn FnMut(&SyncJob, &SyncReport),
) -> Result<SyncAll, crate::store::StoreError> {
    let mut out = SyncAll::default();
    for job in jobs {
        let report = job
            .sync(settings, db, clock, shutdown, progress, full)
            .await?;
        out.failed |= report.status == crate::store::RunStatus::Failed;
        on_report(job, &report);
    }
    out.checkins = super::keyresults::evaluate_key_results(settings, db, clock).await?;
    Ok(out)
}

/// Syncs one store now with a source built for this run.
pub async fn sync_store(
    store: &StoreSettings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    progress: &dyn Progress,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    sync_kept_store(store, &Kept::default(), db, clock, shutdown, progress, full).await
}

/// Syncs one store now with its kept source. Never panics on bad input; every failure ends up in the sync log.
async fn sync_kept_store(
    store: &StoreSettings,
    kept: &Kept<AnySource>,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    progress: &dyn Progress,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    let desc = RunDesc {
        name: &store.name,
        source: store.platform_name(),
        full,
        span: tracing::info_span!("sync", store = %store.name),
    };
    recorded_run(
        db,
        clock,
        desc,
        async |run_id, started_at, summary: &mut RunSummary| {
            let source = kept.get_or_build(|| AnySource::new(store, clock))?;
            let before = source.request_counts();
            let r = run(
                store, &source, db, clock, shutdown, progress, full, run_id, started_at, summary,
            )
            .await;
            let after = source.request_counts();
            (summary.requests, summary.retries) = (after.0 - before.0, after.1 - before.1);
            r
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    store: &StoreSettings,
    source: &AnySource,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    progress: &dyn Progress,
    full: bool,
    run_id: i64,
    started_at: chrono::DateTime<chrono::Utc>,
    summary: &mut RunSummary,
) -> Result<(), SourceError> {
    let store_id = db
        .ensure_store(&store.name, source.platform(), &store.identity())
        .await?;
    // On WooCommerce the facts are read alongside the first pages of the listings (the
    // source's commits wait for them to be stored); elsewhere before the sync.
    let woo = matches!(store.platform, PlatformSettings::WooCommerce(_));
    if !woo {
        store_facts(store, source, db, clock, shutdown, store_id, full).await?;
    }
    match &store.platform {
        PlatformSettings::WooCommerce(w) => {
            let rules = w.clone();
            let changed = db
                .recount(store_id, &count_rules(w), move |status, _test, trashed| {
                    !trashed && rules.counts(status)
                })
                .await?;
            if changed > 0 {
                tracing::info!(
                    changed,
                    "order status rules changed: re-derived which orders count"
                );
            }
        }
        // Shopify's rule (not test, not cancelled) is fixed and applied at conversion.
        PlatformSettings::Shopify(_) => {}
    }
    let mut ctx = SyncContext {
        db,
        store_name: &store.name,
        store_id,
        run_id,
        started_at,
        full,
        shutdown,
        progress,
        clock,
        summary: RunSummary::default(),
        skipped: Vec::new(),
        facts: None,
    };
    let r = if woo {
        let (tx, rx) = tokio::sync::watch::channel(None);
        ctx.facts = Some(rx);
        let facts = async {
            let r = store_facts(store, source, db, clock, shutdown, store_id, full).await;
            let _ = tx.send(Some(r.is_ok()));
            r
        };
        let sync = source.sync(&mut ctx);
        tokio::pin!(facts);
        tokio::pin!(sync);
        tokio::select! {
            biased;
            f = &mut facts => match f {
                // The listing requests in flight are dropped: nothing of them was stored.
                Err(e) => Err(e),
                Ok(()) => sync.await,
            },
            // Only a failure ends the sync before the facts are stored (its commits wait for
            // them); the facts' own error, if any, comes first.
            r = &mut sync => facts.await.and(r),
        }
    } else {
        source.sync(&mut ctx).await
    };
    *summary = ctx.summary;
    if r.is_ok() && ctx.skipped.is_empty() {
        // Every stream reached its end and every record was read: the store's history is all
        // read (at least once). With skipped records its KPIs stay null with the reason until
        // a run reads them (they are read again when they change in the store).
        db.mark_complete(store_id, clock.now()).await?;
    }
    match r {
        Ok(()) if !ctx.skipped.is_empty() => Err(SourceError::Skipped(ctx.skipped)),
        r => r,
    }
}

/// How long store facts (time zone, currency) read from a store are reused: they rarely
/// change, and reading them costs requests on every run (two on WooCommerce). `sync --full`
/// reads them at once; `check --online` always reads them live.
pub const STORE_FACTS_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What the store facts depend on in the configuration: the shop and a configured time zone.
/// Facts recorded under another key (another shop, a time zone added or removed) are read again.
fn facts_key(store: &StoreSettings) -> String {
    let tz = store.timezone.map(|t| t.name()).unwrap_or_default();
    format!("{} {}|tz={tz}", store.platform_name(), store.identity())
}

/// Reads the store's facts, or reuses the stored ones while they are fresh (younger than
/// [`STORE_FACTS_MAX_AGE`], read under the same configuration, not a full sync). The same
/// rule for every platform.
async fn store_facts(
    store: &StoreSettings,
    source: &AnySource,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    store_id: i64,
    full: bool,
) -> Result<(), SourceError> {
    let key = facts_key(store);
    let now = clock.now();
    if !full
        && let Some(f) = db.store_facts(store_id).await?
        && f.key == key
        && f.read_at <= now
        && now - f.read_at < STORE_FACTS_MAX_AGE
    {
        tracing::debug!(timezone = %f.info.timezone, currency = %f.info.currency, read_at = %f.read_at, "store facts reused");
        return Ok(());
    }
    let mut info = source.store_info(shutdown).await?;
    if let Some(tz) = store.timezone {
        info.timezone = tz;
    }
    tracing::info!(timezone = %info.timezone, currency = %info.currency, "store facts read");
    db.update_store_info(store_id, info, &key, now).await?;
    Ok(())
}

/// Names the order status rules of a WooCommerce store (see [`Store::recount`]). Bump the
/// version when the code deciding what counts changes, so stored flags are re-derived once.
fn count_rules(w: &crate::config::WooSettings) -> String {
    const VERSION: u32 = 1;
    match &w.counted_statuses {
        Some(list) => format!("v{VERSION};counted={}", list.join(",")),
        None => format!("v{VERSION};excluded={}", w.excluded_statuses.join(",")),
    }
}
