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

/// A stored check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckinRow {
    pub id: i64,
    pub checkin: NewCheckin,
    pub at: DateTime<Utc>,
}

impl Store {
    /// Records a check-in unless the key result's latest one has the same value (a check-in
    /// is made whenever a key result's value changes). Returns whether a row was written.
    pub async fn record_checkin(
        &self,
        c: NewCheckin,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(move |db| {
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
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// The latest check-in of every key result.
    pub async fn latest_checkins(&self) -> Result<Vec<CheckinRow>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT id, key_result, kpi, value, value_kind, progress, status, window_from, window_to, timezone, at
                 FROM checkins WHERE id IN (SELECT MAX(id) FROM checkins GROUP BY key_result)
                 ORDER BY key_result",
            )?;
            let rows = stmt.query_map([], |r| {
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
                out.push(CheckinRow { id, checkin, at: super::parse_ts("checkins.at", &at)? });
            }
            Ok(out)
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
}
