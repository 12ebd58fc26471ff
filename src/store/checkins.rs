//! Key-result check-ins: one row each time a key result's value changes.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, ts};

/// A check-in to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCheckin {
    pub key_result: String,
    pub kpi: String,
    /// Canonical decimal text of the value; `None` when undefined.
    pub value: Option<String>,
    /// `count`, `money` or `rate`.
    pub value_kind: String,
    pub progress: Option<String>,
    pub status: Option<String>,
    pub window_from: String,
    pub window_to: String,
    pub timezone: String,
}

/// What an outbox plan knows about the check-in being written.
#[derive(Debug, Clone)]
pub struct CheckinContext {
    pub checkin_id: i64,
    /// Same for every resend of this check-in to any sink; unique per database.
    pub idempotency_key: String,
    /// The key result's previous check-in value (canonical decimal text), if any.
    pub previous_value: Option<String>,
    /// The check-in's time.
    pub at: DateTime<Utc>,
    /// The body last queued for each sink of this key result (before this check-in).
    pub last_bodies: std::collections::HashMap<String, String>,
}

/// One outbox entry to queue with a check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub sink: String,
    /// The exact JSON every attempt sends; never holds a secret.
    pub body: String,
}

/// The idempotency key of a check-in: a keyed hash of (key result, check-in id) with the
/// database's own random key, so two databases never produce the same key.
fn idempotency_key(db_key: &[u8], key_result: &str, checkin_id: i64) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(db_key).expect("any key length");
    mac.update(b"okrsync outbox\n");
    mac.update(key_result.as_bytes());
    mac.update(format!("\n{checkin_id}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("okrsync-{}", &hex[..32])
}

/// A stored check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckinRow {
    pub id: i64,
    pub checkin: NewCheckin,
    pub at: DateTime<Utc>,
}

/// The columns every check-in query selects, in the order [`read_checkins`] reads them.
const CHECKIN_COLUMNS: &str = "id, key_result, kpi, value, value_kind, progress, status, window_from, window_to, timezone, at";

/// Reads the rows of a query selecting [`CHECKIN_COLUMNS`].
fn read_checkins(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<CheckinRow>, StoreError> {
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            NewCheckin {
                key_result: r.get(1)?,
                kpi: r.get(2)?,
                value: r.get(3)?,
                value_kind: r.get(4)?,
                progress: r.get(5)?,
                status: r.get(6)?,
                window_from: r.get(7)?,
                window_to: r.get(8)?,
                timezone: r.get(9)?,
            },
            r.get::<_, String>(10)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, checkin, at) = row?;
        out.push(CheckinRow {
            id,
            checkin,
            at: super::parse_ts("checkins.at", &at)?,
        });
    }
    Ok(out)
}

impl Store {
    /// Records a check-in unless the key result's latest one has the same value (a check-in
    /// is made whenever a key result's value changes), and in the SAME transaction the outbox
    /// entries `plan` returns for it (one per sink that should receive it). Returns whether a
    /// check-in was written.
    ///
    /// `plan` runs on the database thread inside the transaction; it gets the new check-in's
    /// id, its idempotency key, the previous value and the last body queued per sink of this
    /// key result, and returns `(sink, body)` pairs. It does no IO.
    pub async fn record_checkin<F>(
        &self,
        c: NewCheckin,
        now: DateTime<Utc>,
        plan: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(&CheckinContext) -> Vec<OutboxEntry> + Send + 'static,
    {
        self.call(move |db| {
            let key = db.email_key.clone();
            let tx = db.write_tx()?;
            let last: Option<Option<String>> = tx
                .query_row(
                    "SELECT value FROM checkins WHERE key_result = ?1 ORDER BY id DESC LIMIT 1",
                    [&c.key_result],
                    |r| r.get(0),
                )
                .optional()?;
            if last.as_ref() == Some(&c.value) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO checkins (key_result, kpi, value, value_kind, progress, status, window_from, window_to, timezone, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    c.key_result, c.kpi, c.value, c.value_kind, c.progress, c.status,
                    c.window_from, c.window_to, c.timezone, ts(now)
                ],
            )?;
            let checkin_id = tx.last_insert_rowid();
            let mut last_bodies = std::collections::HashMap::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT sink, body FROM outbox WHERE id IN
                       (SELECT MAX(id) FROM outbox WHERE key_result = ?1 GROUP BY sink)",
                )?;
                let rows = stmt.query_map([&c.key_result], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (sink, body) = row?;
                    last_bodies.insert(sink, body);
                }
            }
            let ctx = CheckinContext {
                checkin_id,
                idempotency_key: idempotency_key(&key, &c.key_result, checkin_id),
                previous_value: last.flatten(),
                at: now,
                last_bodies,
            };
            for e in plan(&ctx) {
                tx.execute(
                    "INSERT INTO outbox (key_result, checkin_id, sink, idempotency_key, body, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![c.key_result, checkin_id, e.sink, ctx.idempotency_key, e.body, ts(now)],
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// The latest check-in of every key result.
    pub async fn latest_checkins(&self) -> Result<Vec<CheckinRow>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(&format!(
                "SELECT {CHECKIN_COLUMNS} FROM checkins
                     WHERE id IN (SELECT MAX(id) FROM checkins GROUP BY key_result)
                     ORDER BY key_result"
            ))?;
            read_checkins(&mut stmt, [])
        })
        .await
    }

    /// The check-ins of one key result, oldest first.
    pub async fn checkins_of(&self, key_result: &str) -> Result<Vec<CheckinRow>, StoreError> {
        let kr = key_result.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare(&format!(
                "SELECT {CHECKIN_COLUMNS} FROM checkins WHERE key_result = ?1 ORDER BY id"
            ))?;
            read_checkins(&mut stmt, [&kr])
        })
        .await
    }

    /// The last two check-ins of every key result, newest first per key result.
    pub async fn last_two_checkins(&self) -> Result<Vec<CheckinRow>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                &format!(
                    "SELECT {CHECKIN_COLUMNS}
                     FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY key_result ORDER BY id DESC) AS rn
                           FROM checkins)
                     WHERE rn <= 2 ORDER BY key_result, id DESC"
                ),
            )?;
            read_checkins(&mut stmt, [])
        })
        .await
    }

    /// Number of check-ins of one key result.
    pub async fn checkin_count(&self, key_result: &str) -> Result<u64, StoreError> {
        let kr = key_result.to_string();
        self.call(move |db| {
            Ok(db.conn.query_row(
                "SELECT COUNT(*) FROM checkins WHERE key_result = ?1",
                [kr],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    /// The first check-in of key result `key_result` with a value, made at or after `since`.
    pub async fn first_checkin_since(
        &self,
        key_result: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<CheckinRow>, StoreError> {
        let kr = key_result.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare_cached(&format!(
                "SELECT {CHECKIN_COLUMNS} FROM checkins
                 WHERE key_result = ?1 AND at >= ?2 AND value IS NOT NULL ORDER BY id LIMIT 1"
            ))?;
            Ok(read_checkins(&mut stmt, params![kr, ts(since)])?.pop())
        })
        .await
    }
}
