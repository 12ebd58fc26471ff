//! `okrsync run`: the daemon. Syncs every store and analytics source on its schedule until
//! SIGINT/SIGTERM, then stops within the page in flight.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use super::wait_for_signal;
use crate::config::Settings;
use crate::daemon::http::StatusServer;
use crate::daemon::{Clock, ShutdownTrigger, scheduler};
use crate::store::Store;

pub(super) async fn daemon(settings: Settings, db: Store, clock: Clock) -> Result<ExitCode> {
    let settings = Arc::new(settings);
    // Bound before anything starts, so a busy port stops `run` at once with the reason.
    let status = StatusServer::bind(settings.clone(), db.clone(), clock.clone()).await?;
    let (trigger, shutdown) = ShutdownTrigger::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: finishing the pages in flight");
        trigger.trigger();
    });
    tracing::info!(
        stores = settings.stores.len(),
        key_results = settings.key_results.len(),
        "okrsync daemon started"
    );
    let server = status.map(|s| tokio::spawn(s.serve(shutdown.clone())));
    scheduler::run(settings, db, clock, shutdown).await;
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("okrsync daemon stopped");
    Ok(ExitCode::SUCCESS)
}
