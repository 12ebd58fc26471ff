//! One sync run of one analytics source: recorded in the sync log like a store (store = the
//! source's name, source = its provider), fetch the days since the last stored one (re-reading
//! the last 3), store them, close the run. Failures end up in the sync log, never a panic.

use chrono::Duration;
use tracing::Instrument;

use super::sync::SyncReport;
use super::{Clock, Shutdown};
use crate::config::{AnalyticsSettings, ProviderSettings, Settings};
use crate::domain::StoreTz;
use crate::sources::SourceError;
use crate::sources::analytics::{AnyAnalytics, Batch, FetchRange};
use crate::store::{RunStart, RunSummary, Store};

/// Days read on a source's first sync (or `--full`).
pub const BACKFILL_DAYS: i64 = 90;
/// Days re-read on every sync (GA4 restates the last 48 h; the others may lag).
pub const REREAD_DAYS: i64 = 3;

/// The time zone whose days a source's values are stored in: the first linked store's
/// (config override, else as read from the store, else UTC).
pub async fn source_tz(a: &AnalyticsSettings, settings: &Settings, db: &Store) -> StoreTz {
    let Some(name) = a.stores.first() else {
        return StoreTz::UTC;
    };
    if let Some(tz) = settings.store(name).and_then(|s| s.timezone) {
        return tz;
    }
    match db.store_row(name).await {
        Ok(Some(row)) => row
            .timezone
            .and_then(|t| StoreTz::parse(&t).ok())
            .unwrap_or(StoreTz::UTC),
        _ => StoreTz::UTC,
    }
}

/// Syncs one analytics source now.
pub async fn sync_analytics(
    a: &AnalyticsSettings,
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    let provider = a.provider.name();
    let run_id = match db.start_run(&a.name, provider, full, clock.now()).await? {
        RunStart::Started(id) => id,
        RunStart::Skipped { run_id, busy_run } => {
            tracing::warn!(source = %a.name, busy_run, "previous run still going; skipped");
            return Ok(SyncReport {
                store: a.name.clone(),
                run_id,
                status: "skipped".into(),
                summary: RunSummary {
                    status: "skipped".into(),
                    ..RunSummary::default()
                },
            });
        }
    };
    let span = tracing::info_span!("analytics", source = %a.name, provider, run_id);
    async move {
        let mut summary = RunSummary::default();
        let result = match AnyAnalytics::new(a) {
            Ok(source) => {
                let r = run(a, settings, &source, db, clock, shutdown, full, &mut summary).await;
                let (requests, retries) = source.request_counts();
                summary.requests = requests;
                summary.retries = retries;
                r
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => summary.status = "ok".into(),
            Err(SourceError::Cancelled) => {
                summary.status = "partial".into();
                summary.error = Some("stopped by a shutdown request; nothing of this run was stored".into());
            }
            Err(e) => {
                summary.status = "failed".into();
                summary.error = Some(e.to_string());
                tracing::error!("analytics sync failed: {e}");
            }
        }
        tracing::info!(status = %summary.status, fetched = summary.fetched, requests = summary.requests, retries = summary.retries, "analytics sync finished");
        db.finish_run(run_id, summary.clone(), clock.now()).await?;
        Ok(SyncReport {
            store: a.name.clone(),
            run_id,
            status: summary.status.clone(),
            summary,
        })
    }
    .instrument(span)
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: &AnalyticsSettings,
    settings: &Settings,
    source: &AnyAnalytics,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    full: bool,
    summary: &mut RunSummary,
) -> Result<(), SourceError> {
    let tz = source_tz(a, settings, db).await;
    let today = tz.local_date(clock.now());
    let from = match (&a.provider, full) {
        (
            ProviderSettings::Ga4(_)
            | ProviderSettings::Plausible(_)
            | ProviderSettings::Matomo(_)
            | ProviderSettings::ShopifySessions(_),
            false,
        ) => {
            let stored = db.load_traffic(&a.name).await?;
            match stored.keys().next_back() {
                Some(last) => (*last).min(today - Duration::days(REREAD_DAYS - 1)),
                None => today - Duration::days(BACKFILL_DAYS),
            }
        }
        _ => today - Duration::days(BACKFILL_DAYS),
    };
    let range = FetchRange {
        from,
        to: today,
        today,
    };
    let batch = source.fetch(range, shutdown).await?;
    let now = clock.now();
    let (fetched, written) = match batch {
        Batch::Traffic(days) => (
            days.len() as u64,
            db.upsert_traffic(&a.name, days, now).await?,
        ),
        Batch::PageSpeed(s) => (s.len() as u64, db.upsert_pagespeed(&a.name, s, now).await?),
        Batch::Reviews(r) => (r.len() as u64, db.replace_reviews(&a.name, r, now).await?),
    };
    summary.pages = 1;
    summary.fetched = fetched;
    summary.upserted = written;
    Ok(())
}
