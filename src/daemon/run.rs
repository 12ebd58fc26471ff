//! One recorded run of one store or analytics source: its row in the sync log, its heartbeat,
//! its tracing span, and how its result becomes a status and an error message. Store syncs and
//! analytics syncs both go through [`recorded_run`], so the sync log reads the same for both.

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::Clock;
use crate::sources::SourceError;
use crate::store::{RunStart, RunStatus, RunSummary, Store, StoreError};

/// The outcome of a run, as recorded in the sync log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The store's or analytics source's name.
    pub store: String,
    pub run_id: i64,
    pub status: RunStatus,
    pub summary: RunSummary,
}

/// What is being run, for the sync log and the logs.
pub struct RunDesc<'a> {
    /// The store's or analytics source's name (the sync log's `store`).
    pub name: &'a str,
    /// The platform or provider (the sync log's `source`).
    pub source: &'a str,
    pub full: bool,
    /// The span every log line of the run is recorded in.
    pub span: tracing::Span,
}

/// Records a run that did not start, with its reason.
pub async fn skipped(
    db: &Store,
    clock: &Clock,
    desc: &RunDesc<'_>,
    reason: &str,
) -> Result<SyncReport, StoreError> {
    let run_id = db
        .record_skipped(desc.name, desc.source, reason, clock.now())
        .await?;
    Ok(skipped_report(desc.name, run_id, reason))
}

fn skipped_report(name: &str, run_id: i64, reason: &str) -> SyncReport {
    SyncReport {
        store: name.to_string(),
        run_id,
        status: RunStatus::Skipped,
        summary: RunSummary {
            status: RunStatus::Skipped,
            error: Some(reason.to_string()),
            ..RunSummary::default()
        },
    }
}

/// Runs `body` as one run in the sync log: starts the run (or records it `skipped` when the
/// previous run of the same name is still going), heartbeats it while `body` works, and closes
/// it with `body`'s counters, its status and a message saying what happened and what follows.
/// Only a database error is returned as an error; every source failure ends in the sync log.
pub async fn recorded_run<F>(
    db: &Store,
    clock: &Clock,
    desc: RunDesc<'_>,
    body: F,
) -> Result<SyncReport, StoreError>
where
    F: AsyncFnOnce(i64, DateTime<Utc>, &mut RunSummary) -> Result<(), SourceError>,
{
    let started_at = clock.now();
    let run_id = match db
        .start_run(desc.name, desc.source, desc.full, started_at)
        .await?
    {
        RunStart::Started(id) => id,
        RunStart::Skipped { run_id, busy_run } => {
            tracing::warn!(
                name = desc.name,
                busy_run,
                "previous run still going; skipped"
            );
            return Ok(skipped_report(desc.name, run_id, crate::store::BUSY));
        }
    };
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
    let (name, full) = (desc.name.to_string(), desc.full);
    let result = async move {
        tracing::info!(full, "sync started");
        let mut summary = RunSummary::default();
        let result = body(run_id, started_at, &mut summary).await;
        conclude(&mut summary, result);
        match (&summary.status, &summary.error) {
            (RunStatus::Failed, Some(e)) => {
                tracing::error!(pages = summary.pages, "sync failed: {e}")
            }
            _ => tracing::info!(
                status = %summary.status,
                pages = summary.pages,
                fetched = summary.fetched,
                upserted = summary.upserted,
                requests = summary.requests,
                retries = summary.retries,
                "sync finished"
            ),
        }
        db.finish_run(run_id, summary.clone(), clock.now()).await?;
        Ok(SyncReport {
            store: name,
            run_id,
            status: summary.status,
            summary,
        })
    }
    .instrument(desc.span)
    .await;
    beat.abort();
    result
}

/// Sets a finished run's status and error from its result.
fn conclude(summary: &mut RunSummary, result: Result<(), SourceError>) {
    let pages = summary.pages;
    let (status, error) = match result {
        Ok(()) => (RunStatus::Ok, None),
        Err(e @ (SourceError::Skipped(_) | SourceError::Unmeasured(_))) => {
            (RunStatus::Partial, Some(e.to_string()))
        }
        Err(SourceError::Cancelled) if pages > 0 => (
            RunStatus::Partial,
            Some(format!(
                "stopped by a shutdown request after {}; the next run resumes from the last stored page",
                crate::text::plural(pages, "page")
            )),
        ),
        Err(SourceError::Cancelled) => (
            RunStatus::Partial,
            Some("stopped by a shutdown request; nothing of this run was stored".to_string()),
        ),
        Err(e) if pages > 0 => (
            RunStatus::Failed,
            Some(format!(
                "{e} ({} stored before the error; the next run resumes after them)",
                crate::text::plural(pages, "page")
            )),
        ),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    summary.status = status;
    summary.error = error;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concluded(pages: u64, result: Result<(), SourceError>) -> RunSummary {
        let mut s = RunSummary {
            pages,
            ..RunSummary::default()
        };
        conclude(&mut s, result);
        s
    }

    #[test]
    fn results_become_statuses_with_what_follows() {
        assert_eq!(concluded(3, Ok(())).status, RunStatus::Ok);
        assert_eq!(concluded(3, Ok(())).error, None);
        let s = concluded(3, Err(SourceError::Cancelled));
        assert_eq!(s.status, RunStatus::Partial);
        assert!(s.error.unwrap().contains("after 3 pages"));
        let s = concluded(0, Err(SourceError::Cancelled));
        assert!(s.error.unwrap().contains("nothing of this run was stored"));
        let e = || SourceError::Inconsistent {
            url: "u".into(),
            detail: "d".into(),
        };
        let s = concluded(2, Err(e()));
        assert_eq!(s.status, RunStatus::Failed);
        assert_eq!(
            s.error.unwrap(),
            "u: d (2 pages stored before the error; the next run resumes after them)"
        );
        assert_eq!(concluded(0, Err(e())).error.unwrap(), "u: d");
        assert_eq!(
            concluded(0, Err(SourceError::Unmeasured(vec![]))).status,
            RunStatus::Partial
        );
    }
}
