//! `okrsync run`: the daemon. Syncs every store and analytics source on its schedule until
//! SIGINT/SIGTERM, then stops within the page in flight.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use super::wait_for_signal;
use crate::config::Settings;
use crate::daemon::{Clock, ShutdownTrigger, scheduler};
use crate::store::Store;

pub(super) async fn daemon(settings: Settings, db: Store, clock: Clock) -> Result<ExitCode> {
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
    scheduler::run(Arc::new(settings), db, clock, shutdown).await;
    tracing::info!("okrsync daemon stopped");
    Ok(ExitCode::SUCCESS)
}
