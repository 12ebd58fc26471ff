//! Analytics and site data: daily traffic, PageSpeed samples and reviews per source, plus
//! each source's last finished run (a failed run makes its KPIs null with the error).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, parse_dec, parse_ts, ts};
use crate::domain::{DailyTraffic, PageSpeedSample, Review};

/// The outcome of a source's last finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub status: super::RunStatus,
    pub error: Option<String>,
    pub finished_at: Option<String>,
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.and_then(|n| i64::try_from(n).ok())
}

fn date(column: &'static str, s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
        column,
        value: s.to_string(),
    })
}

impl Store {
    /// Upserts daily traffic of a source in one transaction; returns rows written.
    pub async fn upsert_traffic(
        &self,
        source: &str,
        days: Vec<DailyTraffic>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let tx = db.write_tx()?;
            let mut n = 0;
            for d in &days {
                n += tx.execute(
                    "INSERT INTO traffic_daily (source, day, sessions, visitors, bounces, engaged_sessions, synced_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(source, day) DO UPDATE SET sessions = excluded.sessions,
                        visitors = excluded.visitors, bounces = excluded.bounces,
                        engaged_sessions = excluded.engaged_sessions, synced_at = excluded.synced_at",
                    params![
                        source,
                        d.date.to_string(),
                        i64::try_from(d.sessions).unwrap_or(i64::MAX),
                        opt_i64(d.visitors),
                        opt_i64(d.bounces),
                        opt_i64(d.engaged_sessions),
                        ts(now)
                    ],
                )? as u64;
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    /// Daily traffic of a source by day.
    pub async fn load_traffic(
        &self,
        source: &str,
    ) -> Result<BTreeMap<NaiveDate, DailyTraffic>, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT day, sessions, visitors, bounces, engaged_sessions FROM traffic_daily
                 WHERE source = ?1 ORDER BY day",
            )?;
            let rows = stmt.query_map([&source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (day, sessions, visitors, bounces, engaged) = row?;
                let date = date("traffic_daily.day", &day)?;
                out.insert(
                    date,
                    DailyTraffic {
                        date,
                        sessions: u64::try_from(sessions).unwrap_or(0),
                        visitors: opt_u64(visitors),
                        bounces: opt_u64(bounces),
                        engaged_sessions: opt_u64(engaged),
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Upserts PageSpeed samples (one per URL, strategy and day; a later run that day wins).
    pub async fn upsert_pagespeed(
        &self,
        source: &str,
        samples: Vec<PageSpeedSample>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let tx = db.write_tx()?;
            let mut n = 0;
            for s in &samples {
                n += tx.execute(
                    "INSERT INTO pagespeed_daily (source, url, strategy, day, score, lcp_ms, fcp_ms, cls, tbt_ms, synced_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(source, url, strategy, day) DO UPDATE SET score = excluded.score,
                        lcp_ms = excluded.lcp_ms, fcp_ms = excluded.fcp_ms, cls = excluded.cls,
                        tbt_ms = excluded.tbt_ms, synced_at = excluded.synced_at",
                    params![
                        source,
                        s.url,
                        s.strategy,
                        s.date.to_string(),
                        s.score.to_string(),
                        opt_i64(s.lcp_ms),
                        opt_i64(s.fcp_ms),
                        s.cls.map(|c| c.to_string()),
                        opt_i64(s.tbt_ms),
                        ts(now)
                    ],
                )? as u64;
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    pub async fn load_pagespeed(&self, source: &str) -> Result<Vec<PageSpeedSample>, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT url, strategy, day, score, lcp_ms, fcp_ms, cls, tbt_ms FROM pagespeed_daily
                 WHERE source = ?1 ORDER BY day, url, strategy",
            )?;
            let rows = stmt.query_map([&source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (url, strategy, day, score, lcp, fcp, cls, tbt) = row?;
                out.push(PageSpeedSample {
                    date: date("pagespeed_daily.day", &day)?,
                    url,
                    strategy,
                    score: parse_dec("pagespeed_daily.score", &score)?,
                    lcp_ms: opt_u64(lcp),
                    fcp_ms: opt_u64(fcp),
                    cls: cls
                        .map(|c| parse_dec("pagespeed_daily.cls", &c))
                        .transpose()?,
                    tbt_ms: opt_u64(tbt),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Replaces a source's reviews with a complete listing, in one transaction (reviews that
    /// were unapproved or deleted since disappear).
    pub async fn replace_reviews(
        &self,
        source: &str,
        reviews: Vec<Review>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let tx = db.write_tx()?;
            tx.execute("DELETE FROM reviews WHERE source = ?1", [&source])?;
            let mut n = 0;
            for r in &reviews {
                n += tx.execute(
                    "INSERT OR REPLACE INTO reviews (source, review_id, product_id, created_at, rating, verified, synced_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![source, r.id, r.product_id, ts(r.created_at), r.rating, r.verified, ts(now)],
                )? as u64;
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    pub async fn load_reviews(&self, source: &str) -> Result<Vec<Review>, StoreError> {
        let source = source.to_string();
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT review_id, product_id, created_at, rating, verified FROM reviews
                 WHERE source = ?1 ORDER BY created_at, review_id",
            )?;
            let rows = stmt.query_map([&source], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u8>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, product_id, created, rating, verified) = row?;
                out.push(Review {
                    id,
                    product_id,
                    created_at: parse_ts("reviews.created_at", &created)?,
                    rating,
                    verified,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The last finished (not running, not skipped) run of a store or analytics source.
    pub async fn last_finished_run(&self, name: &str) -> Result<Option<LastRun>, StoreError> {
        let name = name.to_string();
        self.call(move |db| {
            Ok(db
                .conn
                .query_row(
                    "SELECT status, error, finished_at FROM sync_runs
                     WHERE store = ?1 AND status IN ('ok', 'partial', 'failed')
                     ORDER BY id DESC LIMIT 1",
                    [&name],
                    |r| {
                        Ok(LastRun {
                            status: r.get(0)?,
                            error: r.get(1)?,
                            finished_at: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Whether a source (or store) ever finished a run that stored data (`ok` or `partial`).
    pub async fn ever_succeeded(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.call(move |db| {
            Ok(db.conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM sync_runs WHERE store = ?1 AND status IN ('ok', 'partial'))",
                [&name],
                |r| r.get::<_, bool>(0),
            )?)
        })
        .await
    }
}
