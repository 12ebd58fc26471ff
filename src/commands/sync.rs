//! `okrsync sync [--store NAME] [--full]`: sync now, print each run as it ends, re-evaluate the
//! key results. Ctrl-C (or SIGTERM) stops after the page in flight and exits 130 (or 143).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::Result;

use super::{UsageError, unknown_store, wait_for_signal};
use crate::config::Settings;
use crate::daemon::sync::{SyncJob, sync_all};
use crate::daemon::{Clock, ShutdownTrigger};
use crate::output;
use crate::store::Store;

pub(super) async fn sync(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    store: Option<String>,
    full: bool,
) -> Result<ExitCode> {
    let jobs = match &store {
        Some(name) => match SyncJob::named(settings, name) {
            Some(job) => vec![job],
            None => return Err(UsageError(unknown_store(settings, name)).into()),
        },
        None => SyncJob::all(settings),
    };
    // The command then exits 130 (or 143), never 0: the sync did not finish.
    let (trigger, shutdown) = ShutdownTrigger::new();
    let stopped_by = Arc::new(AtomicU8::new(0));
    let flag = stopped_by.clone();
    tokio::spawn(async move {
        let code = wait_for_signal().await;
        flag.store(code, Ordering::SeqCst);
        trigger.trigger();
    });
    let progress = output::progress_for_terminal();
    let done = sync_all(
        settings,
        &jobs,
        db,
        clock,
        &shutdown,
        progress.as_ref(),
        full,
        &mut |job, report| crate::out!("{}", output::sync_report(job, report)),
    )
    .await?;
    if done.checkins > 0 {
        crate::outln!(
            "{} updated",
            crate::text::plural(done.checkins as u64, "key result")
        );
    }
    let signal = stopped_by.load(Ordering::SeqCst);
    if signal != 0 {
        crate::note!(
            "sync interrupted (exit status {signal}): the pages read were stored; the next sync continues from there"
        );
        return Ok(ExitCode::from(signal));
    }
    Ok(if done.failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
