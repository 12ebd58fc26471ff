//! Baselines and targets of relative key results, fixed once per period.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_ts, ts};

/// A relative key result's baseline and target for one period.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedTarget {
    pub key_result: String,
    /// First day of the key result's period (`YYYY-MM-DD`).
    pub period_from: String,
    /// The `baseline_window` and relative `target` as configured.
    pub baseline_window: String,
    pub change: String,
    /// The days the baseline was computed over and their time zone.
    pub window_from: String,
    pub window_to: String,
    pub timezone: String,
    /// Canonical decimal text.
    pub baseline: String,
    pub target: String,
    pub computed_at: DateTime<Utc>,
}

const COLUMNS: &str = "key_result, period_from, baseline_window, change, window_from, window_to, \
                       timezone, baseline, target, computed_at";

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<(FixedTarget, String)> {
    Ok((
        FixedTarget {
            key_result: row.get(0)?,
            period_from: row.get(1)?,
            baseline_window: row.get(2)?,
            change: row.get(3)?,
            window_from: row.get(4)?,
            window_to: row.get(5)?,
            timezone: row.get(6)?,
            baseline: row.get(7)?,
            target: row.get(8)?,
            computed_at: DateTime::<Utc>::MIN_UTC,
        },
        row.get(9)?,
    ))
}

fn select(
    conn: &rusqlite::Connection,
    key_result: &str,
    period_from: &str,
    baseline_window: &str,
    change: &str,
) -> Result<Option<FixedTarget>, StoreError> {
    let found = conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM fixed_targets
                 WHERE key_result = ?1 AND period_from = ?2 AND baseline_window = ?3 AND change = ?4"
            ),
            params![key_result, period_from, baseline_window, change],
            read,
        )
        .optional()?;
    match found {
        None => Ok(None),
        Some((mut t, at)) => {
            t.computed_at = parse_ts("fixed_targets.computed_at", &at)?;
            Ok(Some(t))
        }
    }
}

impl Store {
    /// The fixed baseline and target of a key result's period under this definition, if
    /// computed already.
    pub async fn fixed_target(
        &self,
        key_result: &str,
        period_from: &str,
        baseline_window: &str,
        change: &str,
    ) -> Result<Option<FixedTarget>, StoreError> {
        let (k, p, w, c) = (
            key_result.to_string(),
            period_from.to_string(),
            baseline_window.to_string(),
            change.to_string(),
        );
        self.call(move |db| select(&db.conn, &k, &p, &w, &c)).await
    }

    /// Stores a computed baseline and target unless the period already has them (the daemon
    /// and a command may compute at once), and returns the stored ones: the first computed
    /// stays, for the whole period.
    pub async fn fix_target(&self, t: FixedTarget) -> Result<FixedTarget, StoreError> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO fixed_targets ({COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    t.key_result,
                    t.period_from,
                    t.baseline_window,
                    t.change,
                    t.window_from,
                    t.window_to,
                    t.timezone,
                    t.baseline,
                    t.target,
                    ts(t.computed_at),
                ],
            )?;
            let stored = select(
                &tx,
                &t.key_result,
                &t.period_from,
                &t.baseline_window,
                &t.change,
            )?;
            tx.commit()?;
            stored.ok_or_else(|| StoreError::Schema("fixed_targets row vanished".into()))
        })
        .await
    }
}
