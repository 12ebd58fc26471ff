//! The delivery worker: sends pending outbox entries to their sink, per key result in
//! check-in order. A failing entry blocks the later entries of the same key result and sink
//! (order is kept), never other key results or sinks. Each attempt is recorded; a 2xx marks
//! the entry delivered; anything else gets a capped, jittered backoff honouring
//! `Retry-After`. Each pass over a sink with work is one recorded run in the sync log
//! (`store` = the sink's name, `source` = its kind).
//!
//! Crash safety: an entry is marked delivered only after the sink's 2xx, in its own
//! transaction. A kill between the two resends that one entry on restart, with the same
//! idempotency key and the same body (both stored, never rebuilt).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{AnySink, Sink};
use crate::config::{Settings, SinkSettings};
use crate::daemon::run::{RunDesc, SyncReport, recorded_run};
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::store::{OutboxRow, Store, StoreError};

/// The first backoff; doubled per failed attempt (with jitter), capped by `retry_max_seconds`.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured as given (a longer one waits this long).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);
/// The wait after a permanent refusal (a 4xx other than 408/429 from a sink that says so:
/// a goal without a metric, a missing page, a revoked token): the same request cannot succeed
/// until the configuration changes, so the daemon does not hammer the service; `okrsync push`
/// (every pending entry now) retries at once after a fix.
pub const PERMANENT_RETRY: Duration = Duration::from_secs(86_400);
/// The longest the daemon's worker sleeps without looking at the outbox.
pub const IDLE_POLL: Duration = Duration::from_secs(60);

/// How a pass treats entries waiting for their next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Only entries whose next attempt is due (the daemon).
    Due,
    /// Every pending entry now (`okrsync push`).
    Now,
}

/// What one pass over one sink did.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRun {
    pub sink: String,
    pub delivered: u64,
    pub failed: u64,
    /// Entries left pending after the pass.
    pub pending: u64,
    /// The sync-log run, when the pass had work.
    pub report: Option<SyncReport>,
}

/// The delay before the next attempt after `attempts` failures (≥ 1): 2 s doubled per
/// failure, capped at `cap`, with jitter in [50 %, 100 %]; at least `retry_after` when the
/// sink gave one.
pub fn backoff(attempts: u32, retry_after: Option<Duration>, cap: Duration) -> Duration {
    let exp = FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(cap);
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let jitter = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    let d = exp.mul_f64(jitter);
    match retry_after {
        Some(r) => d.max(r.min(MAX_RETRY_AFTER)),
        None => d,
    }
}

/// The entries of a pass: per key result, from its oldest pending entry while due (`Due`),
/// or all (`Now`).
fn due(rows: Vec<OutboxRow>, mode: DeliveryMode, now: DateTime<Utc>) -> Vec<Vec<OutboxRow>> {
    let mut groups: Vec<Vec<OutboxRow>> = Vec::new();
    for r in rows {
        match groups.last_mut() {
            Some(g) if g[0].key_result == r.key_result => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .filter(|g| mode == DeliveryMode::Now || g[0].next_attempt_at <= now)
        .collect()
}

/// One pass over one sink (see the module docs). Only database errors are returned.
pub async fn deliver_sink(
    sink: &AnySink,
    settings: &SinkSettings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    mode: DeliveryMode,
) -> Result<DeliveryRun, StoreError> {
    let rows = db.pending_outbox(&settings.name).await?;
    let total = rows.len() as u64;
    let groups = due(rows, mode, clock.now());
    let mut out = DeliveryRun {
        sink: settings.name.clone(),
        delivered: 0,
        failed: 0,
        pending: total,
        report: None,
    };
    if groups.is_empty() {
        return Ok(out);
    }
    let (mut delivered, mut failed) = (0u64, 0u64);
    let span = tracing::info_span!("deliver", sink = %settings.name);
    let desc = RunDesc {
        name: &settings.name,
        source: settings.kind.name(),
        full: false,
        span,
    };
    let report = recorded_run(db, clock, desc, async |_run_id, _started, summary| {
        let mut first_error: Option<String> = None;
        for group in &groups {
            for entry in group {
                if shutdown.is_shutdown() {
                    return Err(SourceError::Cancelled);
                }
                summary.fetched += 1;
                summary.requests += 1;
                match sink.send(entry).await {
                    Ok(status) => {
                        db.mark_delivered(entry.id, status, clock.now())
                            .await
                            .map_err(store_failed)?;
                        delivered += 1;
                        summary.upserted += 1;
                        tracing::info!(key_result = %entry.key_result, checkin = ?entry.checkin_id, digest = ?entry.digest_id, status, "delivered");
                    }
                    Err(e) => {
                        failed += 1;
                        summary.retries += 1;
                        let wait = if e.permanent {
                            PERMANENT_RETRY
                        } else {
                            backoff(entry.attempts + 1, e.retry_after, settings.retry_max)
                        };
                        let now = clock.now();
                        // Stored to the second: round up, so a Retry-After is never cut short.
                        let next = now
                            + chrono::Duration::from_std(wait + Duration::from_secs(1))
                                .unwrap_or(chrono::Duration::MAX);
                        tracing::warn!(key_result = %entry.key_result, checkin = ?entry.checkin_id, digest = ?entry.digest_id, retry_in_s = wait.as_secs_f64(), "delivery failed: {}", e.message);
                        let message = if e.permanent {
                            format!(
                                "{}; not retried automatically before {} (fix the configuration, then run `okrsync push`)",
                                e.message,
                                next.format("%Y-%m-%d %H:%M:%SZ")
                            )
                        } else {
                            e.message.clone()
                        };
                        db.record_failed_attempt(entry.id, e.status, message, next, now)
                            .await
                            .map_err(store_failed)?;
                        first_error.get_or_insert(format!(
                            "key result `{}`: {}; retried from {} (later check-ins of this key result wait for it)",
                            entry.key_result,
                            e.message,
                            next.format("%Y-%m-%d %H:%M:%SZ")
                        ));
                        // Later entries of this key result wait: order is kept.
                        break;
                    }
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(SourceError::Inconsistent {
                url: format!("sink `{}`", settings.name),
                detail: format!(
                    "{} failed; first: {e}",
                    crate::text::plural(failed, "delivery attempt")
                ),
            }),
        }
    })
    .await?;
    out.delivered = delivered;
    out.failed = failed;
    out.pending = total - delivered;
    out.report = Some(report);
    Ok(out)
}

fn store_failed(e: StoreError) -> SourceError {
    SourceError::Inconsistent {
        url: "the outbox".into(),
        detail: e.to_string(),
    }
}

/// Builds every configured sink; a sink that cannot be built is logged and left out.
pub fn build_sinks(settings: &Settings, clock: &Clock) -> Vec<(SinkSettings, AnySink)> {
    settings
        .sinks
        .iter()
        .filter_map(|s| match AnySink::new(s, clock) {
            Ok(sink) => Some((s.clone(), sink)),
            Err(e) => {
                tracing::error!(sink = %s.name, "{e}");
                None
            }
        })
        .collect()
}

/// The daemon's delivery task: a pass over every sink when woken (after each key-result
/// evaluation), when the next retry is due, or at least every [`IDLE_POLL`]; stops on
/// shutdown.
pub async fn worker(
    settings: Arc<Settings>,
    db: Store,
    clock: Clock,
    mut shutdown: Shutdown,
    wake: Arc<tokio::sync::Notify>,
) {
    let sinks = build_sinks(&settings, &clock);
    if sinks.is_empty() {
        return;
    }
    loop {
        for (s, sink) in &sinks {
            if shutdown.is_shutdown() {
                return;
            }
            if let Err(e) = deliver_sink(sink, s, &db, &clock, &shutdown, DeliveryMode::Due)
                .in_current_span()
                .await
            {
                tracing::error!(sink = %s.name, "delivery pass not recorded: {e}");
            }
        }
        let wait = match db.next_outbox_attempt().await {
            Ok(Some(at)) => (at - clock.now())
                .to_std()
                .unwrap_or_default()
                .clamp(Duration::from_millis(200), IDLE_POLL),
            _ => IDLE_POLL,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = shutdown.recv() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_within_5_s_is_capped_and_honours_retry_after() {
        let cap = Duration::from_secs(300);
        for _ in 0..50 {
            let first = backoff(1, None, cap);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            assert!(backoff(30, None, cap) <= cap);
            assert!(backoff(30, None, cap) >= cap / 2);
            assert!(backoff(1, Some(Duration::from_secs(40)), cap) >= Duration::from_secs(40));
        }
    }
}
