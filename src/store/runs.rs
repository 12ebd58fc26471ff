//! The sync log (`sync_runs`): one row per run of one source of one store.

use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::{Store, StoreError, ts};

/// A `running` run whose heartbeat is older than this is considered dead. Runs beat every
/// [`HEARTBEAT_EVERY`] while they last, also while waiting on retries.
const STALE_AFTER: Duration = Duration::minutes(2);

/// How often a run in progress refreshes its heartbeat.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// This process, as `pid:start time` (Linux, from `/proc/<pid>/stat`; elsewhere `pid:?`).
/// A pid alone is not enough: a restarted container daemon is pid 1 again.
pub fn process_owner() -> String {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER
        .get_or_init(|| {
            let pid = std::process::id();
            format!("{pid}:{}", start_time(pid).unwrap_or_else(|| "?".into()))
        })
        .clone()
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`, after the command name).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_string)
}

/// Whether the process that wrote `owner` still runs. Without `/proc` (not Linux) it is
/// assumed alive and the heartbeat alone decides.
fn owner_alive(owner: &str) -> bool {
    if !std::path::Path::new("/proc").is_dir() {
        return true;
    }
    let Some((pid, start)) = owner.split_once(':') else {
        return true;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    match start_time(pid) {
        Some(now) => start == "?" || now == start,
        None => false,
    }
}

/// The error of a run skipped because the previous run of the same store is still going.
pub const BUSY: &str = "the previous run of this store is still going";

/// The outcome of trying to start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStart {
    /// The run is recorded as `running` with this id.
    Started(i64),
    /// Another live run of the same store holds it; a `skipped` run was recorded.
    Skipped { run_id: i64, busy_run: i64 },
}

/// The state of a run in the sync log, stored as its lower-case name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished (or its process was killed; the next start closes it).
    #[default]
    Running,
    /// Every stream reached its end.
    Ok,
    /// Stopped by shutdown after committed pages, or finished with records it could not read.
    Partial,
    /// Ended by an error; what it stored before stays stored.
    Failed,
    /// Not started: the previous run of the same store was still going, or it must wait.
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Ok,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::Skipped,
    ];

    /// The name stored in `sync_runs.status` and printed by `okrsync logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a stored or printed name (`status == "ok"` in tests and scripts).
impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl rusqlite::types::FromSql for RunStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        RunStatus::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown run status `{s}`").into())
        })
    }
}

/// Counters and outcome of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub status: RunStatus,
    pub pages: u64,
    pub fetched: u64,
    pub upserted: u64,
    pub requests: u64,
    pub retries: u64,
    pub error: Option<String>,
}

/// What the sync log says about one store (or source, or sink) over all its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTotals {
    pub store: String,
    /// Finished runs by status (`ok`, `partial`, `failed`, `skipped`).
    pub runs: Vec<(String, u64)>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    pub fetched: u64,
    pub upserted: u64,
    /// When the last `ok` run finished.
    pub last_success: Option<DateTime<Utc>>,
    /// What the stored data is complete up to: when the last `ok` run started. A run reads
    /// what changed before it began (a first sync leaves the changes made while it ran to
    /// the next run, whose cursor starts at the backfill's start), so its end would
    /// overstate the data's freshness by the run's duration.
    pub data_as_of: Option<DateTime<Utc>>,
}

/// One row of the sync log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub store: String,
    pub source: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
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
            let tx = db.write_tx()?;
            let stale = ts(now - STALE_AFTER);
            let me = process_owner();
            // A `running` run is live when its process still runs and its heartbeat is fresh;
            // otherwise its process was killed and the run is closed as failed.
            let running: Vec<(i64, Option<String>, String)> = tx
                .prepare("SELECT id, owner, heartbeat_at FROM sync_runs WHERE store = ?1 AND status = 'running'")?
                .query_map([&store], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut busy = None;
            for (id, owner, heartbeat) in running {
                let alive = match owner.as_deref() {
                    Some(o) if o == me => true,
                    Some(o) => owner_alive(o),
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
                "INSERT INTO sync_runs (store, source, started_at, heartbeat_at, status, full, finished_at, error, owner)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, CASE WHEN ?4 = 'skipped' THEN ?3 END,
                         CASE WHEN ?4 = 'skipped' THEN ?7 END, ?6)",
                params![store, source, ts(now), status, full, me, BUSY],
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

    /// Records a run that did not start, with the reason.
    pub async fn record_skipped(
        &self,
        store: &str,
        source: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let store = store.to_string();
        let source = source.to_string();
        let reason = reason.to_string();
        self.call(move |db| {
            db.conn.execute(
                "INSERT INTO sync_runs (store, source, started_at, heartbeat_at, finished_at, status, error)
                 VALUES (?1, ?2, ?3, ?3, ?3, 'skipped', ?4)",
                params![store, source, ts(now), reason],
            )?;
            Ok(db.conn.last_insert_rowid())
        })
        .await
    }

    /// Refreshes a running run's heartbeat (from a timer, also while it waits on retries).
    pub async fn touch_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn.execute(
                "UPDATE sync_runs SET heartbeat_at = ?2 WHERE id = ?1 AND status = 'running'",
                params![run_id, ts(now)],
            )?;
            Ok(())
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
                    s.status.as_str(),
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

    /// Totals of the sync log per store (or analytics source, or sink), for metrics: runs by
    /// finished status, requests, retries and records stored over every run, and the end and
    /// start of the last `ok` run.
    pub async fn run_totals(&self) -> Result<Vec<RunTotals>, StoreError> {
        self.call(move |db| {
            let mut out: Vec<RunTotals> = Vec::new();
            {
                let mut stmt = db.conn.prepare(
                    "SELECT store, SUM(requests), SUM(retries), SUM(fetched), SUM(upserted),
                            MAX(CASE WHEN status = 'ok' THEN finished_at END),
                            MAX(CASE WHEN status = 'ok' THEN started_at END)
                     FROM sync_runs GROUP BY store ORDER BY store",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })?;
                for row in rows {
                    let (store, requests, retries, fetched, upserted, last, as_of) = row?;
                    out.push(RunTotals {
                        store,
                        runs: Vec::new(),
                        requests: requests as u64,
                        retries: retries as u64,
                        fetched: fetched as u64,
                        upserted: upserted as u64,
                        last_success: match last {
                            Some(t) => Some(super::parse_ts("sync_runs.finished_at", &t)?),
                            None => None,
                        },
                        data_as_of: match as_of {
                            Some(t) => Some(super::parse_ts("sync_runs.started_at", &t)?),
                            None => None,
                        },
                    });
                }
            }
            let mut stmt = db.conn.prepare(
                "SELECT store, status, COUNT(*) FROM sync_runs WHERE status != 'running'
                 GROUP BY store, status ORDER BY store, status",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (store, status, n) = row?;
                if let Some(t) = out.iter_mut().find(|t| t.store == store) {
                    t.runs.push((status, n as u64));
                }
            }
            Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn owners_are_pid_and_start_time() {
        let me = process_owner();
        let (pid, start) = me.split_once(':').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(start.chars().all(|c| c.is_ascii_digit()), "{me}");
        assert!(owner_alive(&me));
        // Same pid, other start time: a restarted process that reused the pid.
        assert!(!owner_alive(&format!("{pid}:0")));
        // No such process.
        assert!(!owner_alive("4000000000:1"));
    }
}
