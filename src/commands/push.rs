//! `okrsync push [--sink NAME] [--dry-run]`: send every pending outbox entry now (also those
//! waiting for a retry), per key result in check-in order; `--dry-run` lists them instead.
//! `--digest` first makes a digest now and queues it for `[digest]`'s sinks (with
//! `--dry-run`: prints the digest it would make, records nothing).

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
    digest: bool,
) -> Result<ExitCode> {
    if digest && settings.digest.is_none() {
        return Err(UsageError(
            "--digest needs a [digest] section (schedule and sinks) in the config; see README, \"Weekly digest\"".into(),
        )
        .into());
    }
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
    if digest && dry_run {
        let now = clock.now();
        let reports = crate::daemon::keyresults::current_reports(settings, db, now).await?;
        let ctx = crate::store::DigestContext {
            digest_id: 0,
            idempotency_key: "(dry run: a key is given when the digest is recorded)".into(),
            at: now,
            previous: db.last_digest().await?,
        };
        let top = settings.digest.as_ref().map_or(0, |d| d.top_movers);
        let (body, _) = crate::sinks::digest::build(&reports, &ctx, top);
        crate::outln!("{}", body["text"].as_str().unwrap_or_default());
        crate::outln!("{}", serde_json::to_string_pretty(&body)?);
    } else if digest {
        let id = crate::sinks::digest::make_digest(settings, db, clock).await?;
        if let Some(id) = id {
            crate::outln!("digest {id} queued");
        }
    }
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
                let what = match (r.checkin_id, r.digest_id) {
                    (_, Some(d)) => format!("digest {d}"),
                    (Some(c), None) => format!("{} check-in {c}", r.key_result),
                    (None, None) => r.key_result.clone(),
                };
                crate::outln!(
                    "  {what} key {} attempts {}{}",
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
