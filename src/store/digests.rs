//! Digests: each one recorded with the values it reported and its outbox entries, in ONE
//! transaction, so "change since the last digest" is computed from what the previous digest
//! actually said, and a digest is queued for its sinks exactly when it is recorded.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_ts, ts};
use crate::store::OutboxEntry;

/// The `key_result` of a digest's outbox entries (the worker keeps each key result's entries
/// in order; digests form their own line). Not a valid key result id (config refuses it).
pub const DIGEST_KEY_RESULT: &str = "(digest)";

/// What one digest said about one key result.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestValue {
    pub key_result: String,
    /// Canonical decimal text; `None` when undefined.
    pub value: Option<String>,
    pub progress: Option<String>,
    pub window_from: Option<String>,
}

/// The previous digest, as the next one compares with it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousDigest {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub values: Vec<DigestValue>,
}

/// What a digest plan knows while its digest is being written.
#[derive(Debug, Clone)]
pub struct DigestContext {
    pub digest_id: i64,
    /// Same for every resend of this digest to any sink; unique per database.
    pub idempotency_key: String,
    pub at: DateTime<Utc>,
    pub previous: Option<PreviousDigest>,
}

/// What a digest plan returns: the document, the values it reports, one entry per sink.
#[derive(Debug, Clone)]
pub struct DigestRecord {
    pub body: String,
    pub values: Vec<DigestValue>,
    pub entries: Vec<OutboxEntry>,
}

/// The idempotency key of a digest: a keyed hash with the database's own key (its own
/// domain, so it never equals a check-in's).
fn idempotency_key(db_key: &[u8], digest_id: i64) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(db_key).expect("any key length");
    mac.update(b"okrsync digest\n");
    mac.update(digest_id.to_string().as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("okrsync-digest-{}", &hex[..32])
}

fn read_previous(tx: &rusqlite::Transaction<'_>) -> Result<Option<PreviousDigest>, StoreError> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, at FROM digests ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((id, at)) = last else {
        return Ok(None);
    };
    let mut stmt = tx.prepare(
        "SELECT key_result, value, progress, window_from FROM digest_values
         WHERE digest_id = ?1 ORDER BY key_result",
    )?;
    let values = stmt
        .query_map([id], |r| {
            Ok(DigestValue {
                key_result: r.get(0)?,
                value: r.get(1)?,
                progress: r.get(2)?,
                window_from: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(PreviousDigest {
        id,
        at: parse_ts("digests.at", &at)?,
        values,
    }))
}

impl Store {
    /// Records a digest: `plan` (run on the database thread inside the transaction, no IO)
    /// gets the new digest's id, key and the previous digest, and returns the document, the
    /// values it reports and its outbox entries; all are written in the same transaction.
    /// Returns the digest's id.
    pub async fn record_digest<F>(&self, now: DateTime<Utc>, plan: F) -> Result<i64, StoreError>
    where
        F: FnOnce(&DigestContext) -> DigestRecord + Send + 'static,
    {
        self.call(move |db| {
            let key = db.email_key.clone();
            let tx = db.write_tx()?;
            let previous = read_previous(&tx)?;
            tx.execute(
                "INSERT INTO digests (at, body) VALUES (?1, '')",
                params![ts(now)],
            )?;
            let digest_id = tx.last_insert_rowid();
            let ctx = DigestContext {
                digest_id,
                idempotency_key: idempotency_key(&key, digest_id),
                at: now,
                previous,
            };
            let record = plan(&ctx);
            tx.execute(
                "UPDATE digests SET body = ?2 WHERE id = ?1",
                params![digest_id, record.body],
            )?;
            for v in &record.values {
                tx.execute(
                    "INSERT INTO digest_values (digest_id, key_result, value, progress, window_from)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![digest_id, v.key_result, v.value, v.progress, v.window_from],
                )?;
            }
            for e in &record.entries {
                tx.execute(
                    "INSERT INTO outbox (key_result, digest_id, sink, idempotency_key, body, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![DIGEST_KEY_RESULT, digest_id, e.sink, ctx.idempotency_key, e.body, ts(now)],
                )?;
            }
            tx.commit()?;
            Ok(digest_id)
        })
        .await
    }

    /// The latest digest, if any (what the next one compares with).
    pub async fn last_digest(&self) -> Result<Option<PreviousDigest>, StoreError> {
        self.call(move |db| {
            let tx = db.conn.unchecked_transaction()?;
            read_previous(&tx)
        })
        .await
    }
}
