//! The outbox: check-ins waiting to be pushed to sinks, and every delivery attempt.
//! Entries are written with their check-in (`checkins.rs`); here they are read, marked
//! delivered, or given their next attempt time.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Store, StoreError, parse_ts, ts};

/// A pending outbox entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    /// The key result; for a digest entry, [`crate::store::DIGEST_KEY_RESULT`].
    pub key_result: String,
    /// The check-in this entry pushes (`None` for a digest).
    pub checkin_id: Option<i64>,
    /// The digest this entry sends (`None` for a check-in).
    pub digest_id: Option<i64>,
    pub sink: String,
    pub idempotency_key: String,
    pub body: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Delivery state of one (sink, key result) pair, for `krs`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStatus {
    pub sink: String,
    pub key_result: String,
    pub pending: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Store {
    /// Pending entries of one sink, per key result in check-in order.
    pub async fn pending_outbox(&self, sink: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let sink = sink.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT id, key_result, checkin_id, sink, idempotency_key, body, attempts, next_attempt_at, last_error, digest_id
                 FROM outbox WHERE sink = ?1 AND state = 'pending' ORDER BY key_result, id",
            )?;
            let rows = stmt.query_map([sink], |r| {
                Ok((
                    OutboxRow {
                        id: r.get(0)?,
                        key_result: r.get(1)?,
                        checkin_id: r.get(2)?,
                        digest_id: r.get(9)?,
                        sink: r.get(3)?,
                        idempotency_key: r.get(4)?,
                        body: r.get(5)?,
                        attempts: r.get::<_, i64>(6)? as u32,
                        next_attempt_at: DateTime::<Utc>::MIN_UTC,
                        last_error: r.get(8)?,
                    },
                    r.get::<_, String>(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (mut row, next) = row?;
                row.next_attempt_at = parse_ts("outbox.next_attempt_at", &next)?;
                out.push(row);
            }
            Ok(out)
        })
        .await
    }

    /// Marks an entry delivered and records the successful attempt.
    pub async fn mark_delivered(
        &self,
        id: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            tx.execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL
                 WHERE id = ?1",
                params![id, ts(now)],
            )?;
            tx.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, status, error) VALUES (?1, ?2, ?3, NULL)",
                params![id, ts(now), status],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt (`error` already redacted) and when to try again.
    pub async fn record_failed_attempt(
        &self,
        id: i64,
        status: Option<u16>,
        error: String,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, ts(next_attempt_at)],
            )?;
            tx.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, status, error) VALUES (?1, ?2, ?3, ?4)",
                params![id, ts(now), status, error],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The earliest next attempt among pending entries (the worker sleeps until then).
    pub async fn next_outbox_attempt(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(move |db| {
            let t: Option<String> = db.conn.query_row(
                // Only the oldest pending entry of each (sink, key result) can be sent next.
                "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.state = 'pending' AND o.id =
                   (SELECT MIN(p.id) FROM outbox p WHERE p.sink = o.sink AND p.key_result = o.key_result AND p.state = 'pending')",
                [],
                |r| r.get(0),
            )?;
            t.map(|t| parse_ts("outbox.next_attempt_at", &t)).transpose()
        })
        .await
    }

    /// Per (sink, key result): pending count, last delivery, last error.
    pub async fn outbox_status(&self) -> Result<Vec<OutboxStatus>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT sink, key_result,
                        SUM(state = 'pending'),
                        MAX(delivered_at),
                        (SELECT o2.last_error FROM outbox o2 WHERE o2.sink = o.sink AND o2.key_result = o.key_result
                           AND o2.state = 'pending' ORDER BY o2.id LIMIT 1)
                 FROM outbox o GROUP BY sink, key_result ORDER BY key_result, sink",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (sink, key_result, pending, last, last_error) = row?;
                out.push(OutboxStatus {
                    sink,
                    key_result,
                    pending: pending as u64,
                    last_delivered_at: last
                        .map(|t| parse_ts("outbox.delivered_at", &t))
                        .transpose()?,
                    last_error,
                });
            }
            Ok(out)
        })
        .await
    }
}
