//! The sync log (`sync_runs`): one row per run of one source of one store.

use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::{Store, StoreError, ts};

/// A run older than this without a heartbeat is considered dead (its process was killed).
const STALE_AFTER: Duration = Duration::minutes(5);

/// Whether a process with this id exists (Linux `/proc`; elsewhere assumed alive, and the
/// heartbeat alone decides).
fn process_alive(pid: i64) -> bool {
    let proc = std::path::Path::new("/proc");
    if proc.is_dir() {
        proc.join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The outcome of trying to start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStart {
    /// The run is recorded as `running` with this id.
    Started(i64),
    /// Another live run of the same store holds it; a `skipped` run was recorded.
    Skipped { run_id: i64, busy_run: i64 },
}

/// Counters and outcome of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// `ok`, `partial` or `failed`.
    pub status: String,
    pub pages: u64,
    pub fetched: u64,
    pub upserted: u64,
    pub requests: u64,
    pub retries: u64,
    pub error: Option<String>,
}

/// One row of the sync log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub store: String,
    pub source: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub full: bool,
    pub pages: u64,
    pub fetched: u64,
    pub upserted: u64,
    pub requests: u64,
    pub retries: u64,
    pub error: Option<String>,
}

impl Store {
    /// Records the start of a run, unless a live run of the same store is in progress (then a
    /// `skipped` run is recorded instead). Runs left `running` by a killed process are closed
    /// as failed.
    pub async fn start_run(
        &self,
        store: &str,
        source: &str,
        full: bool,
        now: DateTime<Utc>,
    ) -> Result<RunStart, StoreError> {
        let store = store.to_string();
        let source = source.to_string();
        self.call(move |db| {
            let tx = db.conn.transaction()?;
            let stale = ts(now - STALE_AFTER);
            let me = std::process::id() as i64;
            // A `running` run is live when its process still runs and its heartbeat is fresh;
            // otherwise its process was killed and the run is closed as failed.
            let running: Vec<(i64, Option<i64>, String)> = tx
                .prepare("SELECT id, pid, heartbeat_at FROM sync_runs WHERE store = ?1 AND status = 'running'")?
                .query_map([&store], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut busy = None;
            for (id, pid, heartbeat) in running {
                let alive = match pid {
                    Some(p) if p == me => true,
                    Some(p) => process_alive(p),
                    None => true,
                };
                if alive && heartbeat >= stale {
                    busy = Some(id);
                } else {
                    tx.execute(
                        "UPDATE sync_runs SET status = 'failed', finished_at = heartbeat_at,
                            error = 'interrupted: the process stopped before the run finished; the next run resumes from the last committed page'
                         WHERE id = ?1",
                        [id],
                    )?;
                }
            }
            let status = if busy.is_some() { "skipped" } else { "running" };
            tx.execute(
                "INSERT INTO sync_runs (store, source, started_at, heartbeat_at, status, full, finished_at, error, pid)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, CASE WHEN ?4 = 'skipped' THEN ?3 END,
                         CASE WHEN ?4 = 'skipped' THEN 'the previous run of this store is still going' END, ?6)",
                params![store, source, ts(now), status, full, me],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(match busy {
                Some(busy_run) => RunStart::Skipped { run_id: id, busy_run },
                None => RunStart::Started(id),
            })
        })
        .await
    }

    /// Records a run that did not start because the store's previous run is still going.
    pub async fn record_skipped(
        &self,
        store: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let store = store.to_string();
        let source = source.to_string();
        self.call(move |db| {
            db.conn.execute(
                "INSERT INTO sync_runs (store, source, started_at, heartbeat_at, finished_at, status, error)
                 VALUES (?1, ?2, ?3, ?3, ?3, 'skipped', 'the previous run of this store is still going')",
                params![store, source, ts(now)],
            )?;
            Ok(db.conn.last_insert_rowid())
        })
        .await
    }

    /// Marks a run alive and stores its counters so far.
    pub async fn heartbeat(
        &self,
        run_id: i64,
        s: RunSummary,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn.execute(
                "UPDATE sync_runs SET heartbeat_at = ?2, pages = ?3, fetched = ?4, upserted = ?5,
                    requests = ?6, retries = ?7 WHERE id = ?1",
                params![
                    run_id,
                    ts(now),
                    s.pages as i64,
                    s.fetched as i64,
                    s.upserted as i64,
                    s.requests as i64,
                    s.retries as i64
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the end of a run.
    pub async fn finish_run(
        &self,
        run_id: i64,
        s: RunSummary,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn.execute(
                "UPDATE sync_runs SET finished_at = ?2, heartbeat_at = ?2, status = ?3, pages = ?4,
                    fetched = ?5, upserted = ?6, requests = ?7, retries = ?8, error = ?9 WHERE id = ?1",
                params![
                    run_id,
                    ts(now),
                    s.status,
                    s.pages as i64,
                    s.fetched as i64,
                    s.upserted as i64,
                    s.requests as i64,
                    s.retries as i64,
                    s.error
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Recent runs, newest first.
    pub async fn runs(
        &self,
        store: Option<String>,
        limit: u32,
        failed_only: bool,
    ) -> Result<Vec<RunRow>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT id, store, source, started_at, finished_at, status, full, pages, fetched,
                        upserted, requests, retries, error
                 FROM sync_runs
                 WHERE (?1 IS NULL OR store = ?1) AND (?2 = 0 OR status IN ('failed', 'partial'))
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![store, failed_only, limit], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    store: r.get(1)?,
                    source: r.get(2)?,
                    started_at: r.get(3)?,
                    finished_at: r.get(4)?,
                    status: r.get(5)?,
                    full: r.get(6)?,
                    pages: r.get::<_, i64>(7)? as u64,
                    fetched: r.get::<_, i64>(8)? as u64,
                    upserted: r.get::<_, i64>(9)? as u64,
                    requests: r.get::<_, i64>(10)? as u64,
                    retries: r.get::<_, i64>(11)? as u64,
                    error: r.get(12)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
