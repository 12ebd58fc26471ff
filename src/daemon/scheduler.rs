//! The daemon loop: one ticker per store and per analytics source, each on its own cron
//! schedule (plus one run at start-up).
//! A tick that finds the store's previous run still going records a `skipped` run. After
//! every sync the key results are re-evaluated. On shutdown the tickers stop, runs in flight
//! stop after their current page, and the loop returns.
//!
//! An analytics run skipped because its store's time zone is not known yet (the store's
//! first sync has not finished) is retried every [`WAIT_FOR_STORE_RETRY`], at most
//! [`WAIT_FOR_STORE_ATTEMPTS`] times and never past the next scheduled tick, instead of
//! leaving the source empty until that tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::keyresults::evaluate_key_results;
use super::sync::SyncJob;
use super::{Clock, Shutdown};
use crate::config::{AnalyticsSettings, Settings};
use crate::sources::QuietProgress;
use crate::store::Store;

/// Delay between retries of an analytics run waiting for its store's first sync.
pub const WAIT_FOR_STORE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
/// Retries of such a run before it waits for the next scheduled tick.
pub const WAIT_FOR_STORE_ATTEMPTS: u32 = 20;

/// Runs until `shutdown` fires. Store failures are logged in the sync log and never stop
/// the loop.
pub async fn run(settings: Arc<Settings>, db: Store, clock: Clock, shutdown: Shutdown) {
    let mut tickers = JoinSet::new();
    // The delivery worker: woken after each evaluation, and on its own timer for retries.
    let wake = Arc::new(tokio::sync::Notify::new());
    tickers.spawn(
        crate::sinks::worker(
            settings.clone(),
            db.clone(),
            clock.clone(),
            shutdown.clone(),
            wake.clone(),
        )
        .instrument(tracing::info_span!("sinks")),
    );
    if let Some(digest) = settings.digest.clone() {
        tickers.spawn(
            digest_ticker(
                digest.schedule,
                settings.clone(),
                db.clone(),
                clock.clone(),
                shutdown.clone(),
                wake.clone(),
            )
            .instrument(tracing::info_span!("digest")),
        );
    }
    for store in settings.stores.clone() {
        let settings = settings.clone();
        let db = db.clone();
        let clock = clock.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("schedule", store = %store.name);
        let wake = wake.clone();
        tickers.spawn(
            ticker(SyncJob::store(store), settings, db, clock, shutdown, wake).instrument(span),
        );
    }
    for source in settings.analytics.clone() {
        let settings = settings.clone();
        let db = db.clone();
        let clock = clock.clone();
        let shutdown = shutdown.clone();
        let span = tracing::info_span!("schedule", analytics = %source.name);
        let wake = wake.clone();
        tickers.spawn(
            ticker(
                SyncJob::analytics(source),
                settings,
                db,
                clock,
                shutdown,
                wake,
            )
            .instrument(span),
        );
    }
    while tickers.join_next().await.is_some() {}
    tracing::info!("all stores stopped");
}

/// Makes a digest at each tick of its schedule (none at start-up: a restart does not send an
/// extra digest) and wakes the delivery worker.
async fn digest_ticker(
    schedule: cron::Schedule,
    settings: Arc<Settings>,
    db: Store,
    clock: Clock,
    mut shutdown: Shutdown,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        let now = clock.now();
        let Some(next) = schedule.after(&now).next() else {
            tracing::warn!("digest schedule has no future tick; no more digests");
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => return,
        }
        match crate::sinks::digest::make_digest(&settings, &db, &clock).await {
            Ok(_) => wake.notify_one(),
            Err(e) => tracing::error!("digest not made: {e}"),
        }
    }
}

async fn ticker(
    store: SyncJob,
    settings: Arc<Settings>,
    db: Store,
    clock: Clock,
    mut shutdown: Shutdown,
    wake: Arc<tokio::sync::Notify>,
) {
    let running = Arc::new(AtomicBool::new(false));
    let mut runs = JoinSet::new();
    let mut first = true;
    loop {
        if !first {
            let now = clock.now();
            let Some(next) = store.schedule().after(&now).next() else {
                tracing::warn!("schedule has no future tick; this store will not sync again");
                break;
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => break,
            }
        }
        first = false;
        // Reap finished runs so the set does not grow.
        while runs.try_join_next().is_some() {}
        if running.swap(true, Ordering::SeqCst) {
            tracing::warn!("previous run still going: this tick is skipped");
            if let Err(e) = db
                .record_skipped(
                    store.name(),
                    store.source(),
                    crate::store::BUSY,
                    clock.now(),
                )
                .await
            {
                tracing::error!("cannot record the skipped run: {e}");
            }
            continue;
        }
        let (store, settings, db, clock, sd, running, wake) = (
            store.clone(),
            settings.clone(),
            db.clone(),
            clock.clone(),
            shutdown.clone(),
            running.clone(),
            wake.clone(),
        );
        runs.spawn(
            async move {
                run_and_evaluate(&store, &settings, &db, &clock, &sd, WAIT_FOR_STORE_RETRY).await;
                // New check-ins may wait in the outbox.
                wake.notify_one();
                running.store(false, Ordering::SeqCst);
            }
            .in_current_span(),
        );
    }
    // Let runs in flight stop after their current page.
    while runs.join_next().await.is_some() {}
}

/// One scheduled unit of work: run the job (with its kept source), then re-evaluate key
/// results. An analytics run skipped while the linked store's time zone is unknown is tried
/// again after `retry` (bounded; see the module docs).
pub async fn run_and_evaluate(
    job: &SyncJob,
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    retry: std::time::Duration,
) {
    let mut attempts = 0;
    loop {
        match job
            .sync(settings, db, clock, shutdown, &QuietProgress, false)
            .await
        {
            Ok(report) if super::analytics::is_waiting_for_store(&report) => {
                attempts += 1;
                let now = clock.now();
                let before_next_tick = job
                    .schedule()
                    .after(&now)
                    .next()
                    .is_none_or(|next| (next - now).to_std().unwrap_or_default() > retry);
                if attempts > WAIT_FOR_STORE_ATTEMPTS || !before_next_tick {
                    return;
                }
                tracing::info!(
                    delay_s = retry.as_secs(),
                    "waiting for the linked store's first sync; retrying"
                );
                let mut sd = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(retry) => continue,
                    _ = sd.recv() => return,
                }
            }
            Ok(report) if report.status == crate::store::RunStatus::Skipped => return,
            Ok(_) => break,
            Err(e) => {
                tracing::error!("sync could not be recorded: {e}");
                return;
            }
        }
    }
    if let Err(e) = evaluate_key_results(settings, db, clock).await {
        tracing::error!("key results not updated: {e}");
    }
}

/// [`run_and_evaluate`] for one analytics source with a source built for this call.
pub async fn analytics_and_evaluate(
    source: &AnalyticsSettings,
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    retry: std::time::Duration,
) {
    let job = SyncJob::analytics(source.clone());
    run_and_evaluate(&job, settings, db, clock, shutdown, retry).await
}
