//! One sync run of one store: read store facts, let the source page through its streams, and
//! mark the store complete when every stream reached its end. Recorded by `daemon::run`.

use crate::config::{PlatformSettings, StoreSettings};
use crate::daemon::run::{RunDesc, recorded_run};
use crate::daemon::{Clock, Shutdown};
use crate::sources::{AnySource, Progress, SourceError, SyncContext};
use crate::store::{RunSummary, Store};

pub use crate::daemon::run::SyncReport;

/// Syncs one store now. Never panics on bad input; every failure ends up in the sync log.
pub async fn sync_store(
    store: &StoreSettings,
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
            let source = AnySource::new(store)?;
            let r = run(
                store, &source, db, clock, shutdown, progress, full, run_id, started_at, summary,
            )
            .await;
            (summary.requests, summary.retries) = source.request_counts();
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
    let mut info = source.store_info(shutdown).await?;
    if let Some(tz) = store.timezone {
        info.timezone = tz;
    }
    tracing::info!(timezone = %info.timezone, currency = %info.currency, "store facts read");
    db.update_store_info(store_id, info, clock.now()).await?;
    match &store.platform {
        PlatformSettings::WooCommerce(w) => {
            let rules = w.clone();
            let changed = db
                .recount(store_id, move |status, _test, trashed| {
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
    };
    let r = source.sync(&mut ctx).await;
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
