//! One sync run of one store: record the run, read store facts, let the source page through
//! its streams, and close the run in the sync log with its counters and error.

use tracing::Instrument;

use crate::config::{PlatformSettings, StoreSettings};
use crate::daemon::{Clock, Shutdown};
use crate::sources::{AnySource, Progress, SourceError, SyncContext};
use crate::store::{RunStart, RunSummary, Store};

/// The outcome of a run, as recorded in the sync log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub store: String,
    pub run_id: i64,
    /// `ok`, `partial` (stopped by shutdown after committed pages), `failed` or `skipped`.
    pub status: String,
    pub summary: RunSummary,
}

/// Syncs one store now. Never panics on bad input; every failure ends up in the sync log.
pub async fn sync_store(
    store: &StoreSettings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    progress: &dyn Progress,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    let started_at = clock.now();
    let source = AnySource::new(store);
    let source_name = store.platform_name();
    let run_id = match db
        .start_run(&store.name, source_name, full, started_at)
        .await?
    {
        RunStart::Started(id) => id,
        RunStart::Skipped { run_id, busy_run } => {
            tracing::warn!(store = %store.name, busy_run, "previous run still going; skipped");
            return Ok(SyncReport {
                store: store.name.clone(),
                run_id,
                status: "skipped".into(),
                summary: RunSummary {
                    status: "skipped".into(),
                    ..RunSummary::default()
                },
            });
        }
    };
    let span = tracing::info_span!("sync", store = %store.name, run_id);
    // The heartbeat tells other processes this run is alive, also while it waits on retries.
    let beat = {
        let (db, clock) = (db.clone(), clock.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::store::HEARTBEAT_EVERY).await;
                if db.touch_run(run_id, clock.now()).await.is_err() {
                    return;
                }
            }
        })
    };
    let result = async move {
        tracing::info!(full, "sync started");
        let mut summary = RunSummary::default();
        let result = match source {
            Ok(source) => {
                let r = run(store, &source, db, clock, shutdown, progress, full, run_id, started_at, &mut summary).await;
                let (requests, retries) = source.request_counts();
                summary.requests = requests;
                summary.retries = retries;
                r
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => summary.status = "ok".into(),
            Err(e @ SourceError::Skipped(_)) => {
                summary.status = "partial".into();
                summary.error = Some(e.to_string());
            }
            Err(SourceError::Cancelled) => {
                summary.status = "partial".into();
                summary.error = Some(format!(
                    "stopped by a shutdown request after {} pages; the next run resumes from the last stored page",
                    summary.pages
                ));
            }
            Err(e) => {
                summary.status = "failed".into();
                let stored = if summary.pages > 0 {
                    format!(" ({} pages stored before the error; the next run resumes after them)", summary.pages)
                } else {
                    String::new()
                };
                summary.error = Some(format!("{e}{stored}"));
            }
        }
        match &summary.error {
            Some(e) if summary.status == "failed" => tracing::error!(status = %summary.status, pages = summary.pages, "sync failed: {e}"),
            _ => tracing::info!(status = %summary.status, pages = summary.pages, fetched = summary.fetched, upserted = summary.upserted, requests = summary.requests, retries = summary.retries, "sync finished"),
        }
        db.finish_run(run_id, summary.clone(), clock.now()).await?;
        Ok(SyncReport {
            store: store.name.clone(),
            run_id,
            status: summary.status.clone(),
            summary,
        })
    }
    .instrument(span)
    .await;
    beat.abort();
    result
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
