//! The SQLite store: the only module that knows SQL.
//!
//! One dedicated thread owns the connection (rusqlite is blocking); async callers send it
//! closures through [`Store::call`]-backed methods. The database runs in WAL mode so that CLI
//! readers never wait on the daemon. Each page of upserts commits in one transaction together
//! with its cursor, so a killed sync resumes exactly where its last committed page ended.

mod analytics;
mod backup;
mod checkins;
mod customer_facts;
mod digests;
mod explain;
mod loaders;
pub use loaders::Lines;
mod migrations;
mod orders;
mod outbox;
mod runs;
mod targets;

pub use analytics::LastRun;
pub use backup::BackupStats;
pub use checkins::{CheckinContext, CheckinRow, NewCheckin, OutboxEntry};
pub use digests::{DIGEST_KEY_RESULT, DigestContext, DigestRecord, DigestValue, PreviousDigest};
pub use migrations::SCHEMA_VERSION;
pub use orders::{Page, PageStats, StoreFacts, StoreRow};
pub use outbox::{OutboxRow, OutboxStatus};
pub use runs::{
    BUSY, HEARTBEAT_EVERY, RunRow, RunStart, RunStatus, RunSummary, RunTotals, process_owner,
};
pub use targets::FixedTarget;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

/// Errors from the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} is a SQLite database that okrsync did not create (tables: {tables}); it was left untouched. \
         Set `path` under [database] in the config to a new file"
    )]
    Foreign { path: PathBuf, tables: String },
    #[error(
        "{path} is not a SQLite database; it was left untouched. Set `path` under [database] in the config to a new file"
    )]
    NotADatabase { path: PathBuf },
    #[error("database schema: {0}")]
    Schema(String),
    #[error("corrupt value in database column {column}: `{value}`")]
    Corrupt { column: &'static str, value: String },
    #[error("the database thread has stopped")]
    Closed,
    #[error("cannot back up the database to {path}: {reason}")]
    Backup { path: PathBuf, reason: String },
    #[error(
        "store `{name}` holds data synced from {stored}, but the config now points it at {configured}; \
         mixing two shops under one name would corrupt its KPIs. Give the new shop its own store name \
         (the old data stays under `{name}`), or point the config back at {stored}"
    )]
    Identity {
        name: String,
        stored: String,
        configured: String,
    },
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// A cheap, cloneable handle to the database thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
}

/// The connection and per-database secrets, owned by the database thread.
pub(crate) struct Db {
    conn: Connection,
    /// Key for hashing customer emails; random per database, never leaves it.
    email_key: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies migrations and starts the
    /// database thread.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("okrsync-db".into())
            .spawn(move || match Db::open(&path) {
                Ok(mut db) => {
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(job) = rx.recv() {
                        job(&mut db);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Schema(format!("cannot start the database thread: {e}")))?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Store { tx })
    }

    /// Runs `f` on the database thread and returns its result.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |db: &mut Db| {
                let _ = tx.send(f(db));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

impl Db {
    /// Begins a write transaction. It is `IMMEDIATE`: it takes the write lock at `BEGIN`,
    /// waiting (busy timeout) while another process writes. A deferred transaction that
    /// starts with a read and then writes cannot wait: once another process committed in
    /// between, SQLite answers `SQLITE_BUSY_SNAPSHOT` ("database is locked") at once.
    pub(crate) fn write_tx(&mut self) -> Result<Transaction<'_>, rusqlite::Error> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn open(path: &Path) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::InvalidPath(PathBuf::from(e.to_string())),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // Another process may be writing: wait for it rather than fail.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Room for every statement of the page-commit path (about 20), so none is parsed again
        // per row (the default cache holds 16).
        conn.set_prepared_statement_cache_capacity(64);
        // Every transaction takes the write lock at BEGIN (see `write_tx`).
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        // Nothing is changed (mode, journal, schema) before the file is known to be ours.
        migrations::check_ours(&conn, path)?;
        restrict_permissions(path);
        set_wal(&conn)?;
        // FULL: a committed page (and its cursor) survives power loss, not just a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        let email_key = load_or_create_key(&conn)?;
        Ok(Db { conn, email_key })
    }
}

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether an error is a lock held by another connection (worth waiting for).
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs `f` again while another connection holds a lock it needs, up to the busy timeout.
/// Some operations (changing the journal mode, upgrading a read) fail with `SQLITE_BUSY` at
/// once instead of calling the busy handler.
pub(crate) fn retry_busy<T>(
    mut f: impl FnMut() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Switches the database to WAL (readers never wait on the writer). Another process opening
/// the same new database may hold a lock meanwhile: SQLite then answers busy or keeps the old
/// mode, so this tries again until the busy timeout.
fn set_wal(conn: &Connection) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode = retry_busy(|| {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        })?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(StoreError::Schema(format!(
                "cannot switch the database to WAL mode (it stays `{mode}`): another program holds it open; stop it and try again"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The database holds hashed customer data: keep it private to its owner.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

fn load_or_create_key(conn: &Connection) -> Result<Vec<u8>, StoreError> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'email_hash_key'",
            [],
            |r| r.get(0),
        )
        .ok();
    if let Some(k) = existing {
        return Ok(k);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| StoreError::Schema(format!("no randomness for the email hash key: {e}")))?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('email_hash_key', ?1)",
        [&key],
    )?;
    // Another process may have won the race: read back what is stored.
    Ok(conn.query_row(
        "SELECT value FROM meta WHERE key = 'email_hash_key'",
        [],
        |r| r.get(0),
    )?)
}

/// Timestamps are stored as fixed-width UTC text so that they sort as they compare.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn parse_ts(column: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            column,
            value: s.to_string(),
        })
}

pub(crate) fn parse_dec(
    column: &'static str,
    s: &str,
) -> Result<rust_decimal::Decimal, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt {
        column,
        value: s.to_string(),
    })
}
