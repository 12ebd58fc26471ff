//! `okrsync push [--sink NAME] [--dry-run]`: send every pending outbox entry now (also those
//! waiting for a retry), per key result in check-in order; `--dry-run` lists them instead.

use std::process::ExitCode;

use anyhow::Result;

use super::{UsageError, wait_for_signal};
use crate::config::Settings;
use crate::daemon::{Clock, ShutdownTrigger};
use crate::sinks::deliver::{DeliveryMode, build_sinks, deliver_sink};
use crate::store::Store;

pub(super) async fn push(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    only: Option<String>,
    dry_run: bool,
) -> Result<ExitCode> {
    if settings.sinks.is_empty() {
        crate::outln!(
            "No sinks configured: add a [[sinks]] section (see config/okrsync.example.toml)."
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = &only
        && !settings.sinks.iter().any(|s| &s.name == n)
    {
        return Err(UsageError(format!(
            "unknown sink `{n}` (configured: {})",
            settings
                .sinks
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    let selected = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if dry_run {
        for s in settings.sinks.iter().filter(|s| selected(&s.name)) {
            let rows = db.pending_outbox(&s.name).await?;
            crate::outln!(
                "sink {} ({}): {} pending",
                s.name,
                s.kind.name(),
                rows.len()
            );
            for r in rows {
                crate::outln!(
                    "  {} check-in {} key {} attempts {}{}",
                    r.key_result,
                    r.checkin_id,
                    r.idempotency_key,
                    r.attempts,
                    r.last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
                crate::outln!("    {}", r.body);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (trigger, shutdown) = ShutdownTrigger::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.trigger();
    });
    let mut failed = false;
    for (s, sink) in build_sinks(settings, clock)
        .into_iter()
        .filter(|(s, _)| selected(&s.name))
    {
        let run = deliver_sink(&sink, &s, db, clock, &shutdown, DeliveryMode::Now).await?;
        failed |= run.failed > 0;
        crate::outln!(
            "sink {} ({}): {} delivered, {} failed, {} pending",
            s.name,
            s.kind.name(),
            run.delivered,
            run.failed,
            run.pending
        );
        if let Some(e) = run.report.and_then(|r| r.summary.error) {
            crate::outln!("  {e}");
        }
    }
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
