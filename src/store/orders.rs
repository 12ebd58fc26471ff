//! Stores, orders, lines, refunds, customers and cursors: idempotent upserts, one transaction
//! per page, and the loaders that feed `kpi`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use rusqlite::{OptionalExtension, Transaction, params};
use rust_decimal::Decimal;

use super::{Db, Store, StoreError, parse_dec, parse_ts, ts};
use crate::domain::{Order, Platform, Refund, StoreInfo, StoreTz};
use crate::kpi::{EmailKey, LineFacts, OrderFacts, StoreData};

/// A store as recorded in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRow {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub timezone: Option<String>,
    pub currency: Option<String>,
}

/// Store facts as last read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFacts {
    pub info: StoreInfo,
    /// When they were read.
    pub read_at: DateTime<Utc>,
    /// What in the configuration they depend on (the shop, a configured time zone): facts read
    /// under another key are not reused.
    pub key: String,
}

/// One page of fetched records and the cursor to store with them, atomically.
#[derive(Debug, Default)]
pub struct Page {
    pub orders: Vec<Order>,
    pub refunds: Vec<Refund>,
    /// Abandoned checkouts (Shopify): `(platform id, created at)`, upserted by id.
    pub abandoned_checkouts: Vec<(String, DateTime<Utc>)>,
    /// Checkouts (Shopify platform ids) that were completed (recovered into an order): they
    /// are not abandoned, so any stored row is deleted.
    pub completed_checkouts: Vec<String>,
    /// `(stream, value)`: the cursor that is valid once this page is stored.
    pub cursor: Option<(String, String)>,
    /// The orders are the store's current state (a full sync): they replace the stored ones
    /// even when their modification time is older (a stored time from a bogus future date
    /// must not freeze an order).
    pub overwrite: bool,
}

/// What a page commit changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageStats {
    /// Records written (inserted or updated with newer data).
    pub upserted: u64,
}

impl Store {
    /// Returns the id of the named store, creating its row if needed. Refuses when the name
    /// already holds data of another shop (`identity`, see `StoreSettings::identity`).
    pub async fn ensure_store(
        &self,
        name: &str,
        platform: Platform,
        identity: &str,
    ) -> Result<i64, StoreError> {
        let name = name.to_string();
        let identity = identity.to_string();
        self.call(move |db| {
            let tx = db.write_tx()?;
            let existing: Option<(i64, String, Option<String>)> = tx
                .query_row(
                    "SELECT id, platform, identity FROM stores WHERE name = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let id = match existing {
                Some((id, stored_platform, stored)) => {
                    let stored = stored.unwrap_or_default();
                    let has_data: bool = tx.query_row(
                        "SELECT EXISTS(SELECT 1 FROM orders WHERE store_id = ?1)",
                        [id],
                        |r| r.get(0),
                    )?;
                    if has_data
                        && (stored_platform != platform.as_str()
                            || (!stored.is_empty() && stored != identity))
                    {
                        return Err(StoreError::Identity {
                            name,
                            stored: format!("{stored_platform} {stored}"),
                            configured: format!("{} {identity}", platform.as_str()),
                        });
                    }
                    tx.execute(
                        "UPDATE stores SET platform = ?2, identity = ?3 WHERE id = ?1",
                        params![id, platform.as_str(), identity],
                    )?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO stores (name, platform, identity) VALUES (?1, ?2, ?3)",
                        params![name, platform.as_str(), identity],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Records the time zone and currency read from the store at `now`, under the
    /// configuration `key` (see [`StoreFacts::key`]).
    pub async fn update_store_info(
        &self,
        store_id: i64,
        info: StoreInfo,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        self.call(move |db| {
            db.conn.execute(
                "UPDATE stores SET timezone = ?2, currency = ?3, updated_at = ?4, facts_key = ?5 WHERE id = ?1",
                params![store_id, info.timezone.name(), info.currency, ts(now), key],
            )?;
            Ok(())
        })
        .await
    }

    /// The store facts last recorded by [`Store::update_store_info`], if any (and readable).
    pub async fn store_facts(&self, store_id: i64) -> Result<Option<StoreFacts>, StoreError> {
        self.call(move |db| {
            type Row = (
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            );
            let row: Option<Row> = db
                .conn
                .query_row(
                    "SELECT timezone, currency, updated_at, facts_key FROM stores WHERE id = ?1",
                    [store_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((Some(tz), Some(currency), Some(at), Some(key))) = row else {
                return Ok(None);
            };
            // Unreadable facts are read again from the store rather than failing the run.
            let (Ok(timezone), Ok(read_at)) =
                (StoreTz::parse(&tz), parse_ts("stores.updated_at", &at))
            else {
                return Ok(None);
            };
            Ok(Some(StoreFacts {
                info: StoreInfo { timezone, currency },
                read_at,
                key,
            }))
        })
        .await
    }

    /// Records that a sync of the store read its whole history (the first time only).
    pub async fn mark_complete(&self, store_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn.execute(
                "UPDATE stores SET complete_at = ?2 WHERE id = ?1 AND complete_at IS NULL",
                params![store_id, ts(now)],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a sync of the named store ever read its whole history: until then its KPIs
    /// would be computed from part of it, so they are null.
    pub async fn is_complete(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.call(move |db| {
            Ok(db
                .conn
                .query_row(
                    "SELECT complete_at IS NOT NULL FROM stores WHERE name = ?1",
                    [&name],
                    |r| r.get::<_, bool>(0),
                )
                .optional()?
                .unwrap_or(false))
        })
        .await
    }

    /// The named store's row, if it was ever synced.
    pub async fn store_row(&self, name: &str) -> Result<Option<StoreRow>, StoreError> {
        let name = name.to_string();
        self.call(move |db| {
            Ok(db
                .conn
                .query_row(
                    "SELECT id, name, platform, timezone, currency FROM stores WHERE name = ?1",
                    [&name],
                    |r| {
                        Ok(StoreRow {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            platform: r.get(2)?,
                            timezone: r.get(3)?,
                            currency: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// The stored cursor of one stream of a store.
    pub async fn cursor(&self, store_id: i64, stream: &str) -> Result<Option<String>, StoreError> {
        let stream = stream.to_string();
        self.call(move |db| {
            Ok(db
                .conn
                .query_row(
                    "SELECT value FROM cursors WHERE store_id = ?1 AND stream = ?2",
                    params![store_id, stream],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Deletes one stream's cursor, so its next run starts from the beginning (for example a
    /// bulk backfill whose operation failed or whose result expired).
    pub async fn delete_cursor(&self, store_id: i64, stream: &str) -> Result<(), StoreError> {
        let stream = stream.to_string();
        self.call(move |db| {
            db.conn.execute(
                "DELETE FROM cursors WHERE store_id = ?1 AND stream = ?2",
                params![store_id, stream],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes every cursor of a store (`sync --full`). Data stays; upserts are idempotent.
    pub async fn reset_cursors(&self, store_id: i64) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn
                .execute("DELETE FROM cursors WHERE store_id = ?1", [store_id])?;
            Ok(())
        })
        .await
    }

    /// Upserts a page of orders and refunds and stores its cursor, in one transaction.
    pub async fn commit_page(
        &self,
        store_id: i64,
        page: Page,
        now: DateTime<Utc>,
    ) -> Result<PageStats, StoreError> {
        self.call(move |db| {
            let key = db.email_key.clone();
            let tx = db.write_tx()?;
            let stats = write_page(&tx, &key, store_id, &page, now)?;
            super::customer_facts::flush(&tx)?;
            tx.commit()?;
            Ok(stats)
        })
        .await
    }

    /// Orders whose refund list names refunds not yet stored (WooCommerce before 9.0 has no
    /// refunds listing; these need `GET /orders/<id>/refunds`).
    pub async fn orders_missing_refunds(&self, store_id: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT platform_id, refund_ids FROM orders
                 WHERE store_id = ?1 AND refund_ids <> '[]' AND deleted = 0",
            )?;
            let rows = stmt.query_map([store_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut known = HashSet::new();
            let mut k = db
                .conn
                .prepare("SELECT platform_id FROM refunds WHERE store_id = ?1")?;
            for id in k.query_map([store_id], |r| r.get::<_, String>(0))? {
                known.insert(id?);
            }
            let mut missing = Vec::new();
            for row in rows {
                let (order, ids) = row?;
                let ids: Vec<String> = serde_json::from_str(&ids).unwrap_or_default();
                if ids.iter().any(|id| !known.contains(id)) {
                    missing.push(order);
                }
            }
            Ok(missing)
        })
        .await
    }

    /// Re-derives the `counted` flag of a store's orders after its status rules changed.
    /// `rules` names the rules `counts` applies: when the stored flags already follow them
    /// (the usual case), nothing is read (a scan of every order would cost each run in
    /// proportion to the store's history).
    pub async fn recount<F>(&self, store_id: i64, rules: &str, counts: F) -> Result<u64, StoreError>
    where
        F: Fn(&str, bool, bool) -> bool + Send + 'static,
    {
        let rules = rules.to_string();
        self.call(move |db| {
            let stored: Option<String> = db
                .conn
                .query_row(
                    "SELECT count_rules FROM stores WHERE id = ?1",
                    [store_id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            if stored.as_deref() == Some(rules.as_str()) {
                return Ok(0);
            }
            let tx = db.write_tx()?;
            let mut changed = 0;
            tx.execute(
                "UPDATE stores SET count_rules = ?2 WHERE id = ?1",
                params![store_id, rules],
            )?;
            {
                let mut stmt = tx.prepare(
                    "SELECT platform_id, status, test, trashed, deleted, counted FROM orders WHERE store_id = ?1",
                )?;
                let mut upd = tx.prepare(
                    "UPDATE orders SET counted = ?3 WHERE store_id = ?1 AND platform_id = ?2",
                )?;
                let rows: Vec<(String, String, bool, bool, bool, bool)> = stmt
                    .query_map([store_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })?
                    .collect::<Result<_, _>>()?;
                for (id, status, test, trashed, deleted, counted) in rows {
                    let now = !deleted && counts(&status, test, trashed);
                    if now != counted {
                        upd.execute(params![store_id, id, now])?;
                        changed += 1;
                    }
                }
            }
            super::customer_facts::flush(&tx)?;
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    /// Every order of a store, ready for `kpi::compute`. Lines are loaded only when asked for
    /// (product KPIs), since they are most of the data.
    pub async fn load_store_data(
        &self,
        name: &str,
        tz_override: Option<StoreTz>,
        with_lines: bool,
    ) -> Result<Option<StoreData>, StoreError> {
        let name = name.to_string();
        self.call(move |db| load_store_data(db, &name, tz_override, with_lines))
            .await
    }

    /// Records whether the store's token can read abandoned checkouts (`None`: unknown).
    pub async fn set_abandoned_access(
        &self,
        store_id: i64,
        access: Option<bool>,
    ) -> Result<(), StoreError> {
        self.call(move |db| {
            db.conn.execute(
                "UPDATE stores SET abandoned_access = ?2 WHERE id = ?1",
                params![store_id, access],
            )?;
            Ok(())
        })
        .await
    }

    /// Platform ids and creation times of the store's orders not marked deleted.
    pub async fn live_order_ids_created(
        &self,
        store_id: i64,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.call(move |db| {
            let mut stmt = db.conn.prepare(
                "SELECT platform_id, created_at FROM orders WHERE store_id = ?1 AND deleted = 0 ORDER BY platform_id",
            )?;
            let rows = stmt
                .query_map([store_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, created) in rows {
                out.push((id, parse_ts("orders.created_at", &created)?));
            }
            Ok(out)
        })
        .await
    }

    /// Marks orders the platform no longer has as deleted (excluded from every KPI), and
    /// stores `cursor` in the same transaction. Returns how many were marked.
    pub async fn mark_orders_deleted(
        &self,
        store_id: i64,
        ids: Vec<String>,
        cursor: Option<(String, String)>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.call(move |db| {
            let tx = db.write_tx()?;
            let mut n = 0;
            for id in &ids {
                n += tx.execute(
                    "UPDATE orders SET deleted = 1, counted = 0 WHERE store_id = ?1 AND platform_id = ?2 AND deleted = 0",
                    params![store_id, id],
                )? as u64;
            }
            if let Some((stream, value)) = &cursor {
                tx.execute(
                    "INSERT INTO cursors (store_id, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(store_id, stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    params![store_id, stream, value, ts(now)],
                )?;
            }
            super::customer_facts::flush(&tx)?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    /// Number of orders stored for a store (all statuses).
    pub async fn order_count(&self, store_id: i64) -> Result<u64, StoreError> {
        self.call(move |db| {
            Ok(db.conn.query_row(
                "SELECT COUNT(*) FROM orders WHERE store_id = ?1",
                [store_id],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }
}

fn email_hash(key: &[u8], email: &str) -> Option<String> {
    let norm = email.trim().to_lowercase();
    if norm.is_empty() {
        return None;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(norm.as_bytes());
    let bytes = mac.finalize().into_bytes();
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_page(
    tx: &Transaction<'_>,
    key: &[u8],
    store_id: i64,
    page: &Page,
    now: DateTime<Utc>,
) -> Result<PageStats, StoreError> {
    let mut stats = PageStats::default();
    let mut touched: HashSet<String> = HashSet::new();
    for order in &page.orders {
        if upsert_order(tx, key, store_id, order, page.overwrite, now)? {
            stats.upserted += 1;
            touched.insert(order.platform_id.clone());
        }
    }
    for refund in &page.refunds {
        if upsert_refund(tx, store_id, refund)? {
            stats.upserted += 1;
        }
        touched.insert(refund.order_id.clone());
    }
    for order_id in &touched {
        apply_refunds(tx, store_id, order_id)?;
    }
    for (id, created) in &page.abandoned_checkouts {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO abandoned_checkouts (store_id, platform_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(store_id, platform_id) DO UPDATE SET created_at = excluded.created_at",
        )?;
        let n = stmt.execute(params![store_id, id, ts(*created)])?;
        stats.upserted += n as u64;
    }
    for id in &page.completed_checkouts {
        let n = tx
            .prepare_cached(
                "DELETE FROM abandoned_checkouts WHERE store_id = ?1 AND platform_id = ?2",
            )?
            .execute(params![store_id, id])?;
        stats.upserted += n as u64;
    }
    if let Some((stream, value)) = &page.cursor {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO cursors (store_id, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(store_id, stream) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )?;
        stmt.execute(params![store_id, stream, value, ts(now)])?;
    }
    Ok(stats)
}

/// Inserts or updates one order and its lines. An incoming version older than the stored one
/// is ignored, so a late page can never roll an order back, unless `overwrite` (the page is
/// the store's current state). Returns whether anything changed.
fn upsert_order(
    tx: &Transaction<'_>,
    key: &[u8],
    store_id: i64,
    o: &Order,
    overwrite: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let stored: Option<String> = tx
        .prepare_cached("SELECT modified_at FROM orders WHERE store_id = ?1 AND platform_id = ?2")?
        .query_row(params![store_id, o.platform_id], |r| r.get(0))
        .optional()?;
    if let Some(m) = &stored
        && !overwrite
        && m.as_str() > ts(o.modified_at).as_str()
    {
        return Ok(false);
    }
    let email_hash = o.customer.email.as_deref().and_then(|e| email_hash(key, e));
    let customer_key = match (&o.customer.platform_id, &email_hash) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(h)) => format!("email:{h}"),
        (None, None) => format!("order:{}", o.platform_id),
    };
    let refund_ids = serde_json::to_string(&o.refund_ids).unwrap_or_else(|_| "[]".into());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO orders (store_id, platform_id, number, created_at, modified_at, status, counted,
            currency, items_gross, discounts, shipping, tax, total, refunded, customer_key,
            platform_customer_id, email_hash, test, trashed, deleted, refund_ids, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, 0, ?20, ?21)
         ON CONFLICT(store_id, platform_id) DO UPDATE SET
            number = excluded.number, created_at = excluded.created_at,
            modified_at = excluded.modified_at, status = excluded.status,
            counted = excluded.counted, currency = excluded.currency,
            items_gross = excluded.items_gross, discounts = excluded.discounts,
            shipping = excluded.shipping, tax = excluded.tax, total = excluded.total,
            refunded = excluded.refunded, customer_key = excluded.customer_key,
            platform_customer_id = excluded.platform_customer_id,
            email_hash = excluded.email_hash, test = excluded.test, trashed = excluded.trashed,
            deleted = 0, refund_ids = excluded.refund_ids, synced_at = excluded.synced_at",
    )?;
    stmt.execute(params![
        store_id,
        o.platform_id,
        o.number,
        ts(o.created_at),
        ts(o.modified_at),
        o.status,
        o.counted,
        o.currency,
        o.items_gross.to_string(),
        o.discounts.to_string(),
        o.shipping.to_string(),
        o.tax.to_string(),
        o.total.to_string(),
        o.refunded.to_string(),
        customer_key,
        o.customer.platform_id,
        email_hash,
        o.test,
        o.trashed,
        refund_ids,
        ts(now),
    ])?;
    tx.prepare_cached("DELETE FROM order_lines WHERE store_id = ?1 AND order_id = ?2")?
        .execute(params![store_id, o.platform_id])?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO order_lines (store_id, order_id, line_id, product_id, sku, name, quantity, subtotal, total, tax)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(store_id, order_id, line_id) DO NOTHING",
    )?;
    for l in &o.lines {
        ins.execute(params![
            store_id,
            o.platform_id,
            l.line_id,
            l.product_id,
            l.sku,
            l.name,
            l.quantity.to_string(),
            l.subtotal.to_string(),
            l.total.to_string(),
            l.tax.to_string(),
        ])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO customers (store_id, customer_key, platform_customer_id, email_hash, first_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    stmt.execute(params![
        store_id,
        customer_key,
        o.customer.platform_id,
        email_hash,
        ts(o.created_at)
    ])?;
    if o.refunds.is_none() {
        // WooCommerce lists the ids of the order's refunds: forget stored refunds it no longer
        // lists (deleted in the store), so they stop counting.
        let stored: Vec<String> = tx
            .prepare_cached(
                "SELECT platform_id FROM refunds WHERE store_id = ?1 AND order_id = ?2",
            )?
            .query_map(params![store_id, o.platform_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in stored.iter().filter(|id| !o.refund_ids.contains(id)) {
            tx.prepare_cached("DELETE FROM refund_lines WHERE store_id = ?1 AND refund_id = ?2")?
                .execute(params![store_id, id])?;
            tx.prepare_cached("DELETE FROM refunds WHERE store_id = ?1 AND platform_id = ?2")?
                .execute(params![store_id, id])?;
        }
    }
    if let Some(refunds) = &o.refunds {
        // The platform sent the order's complete refund list: replace what is stored.
        let ids: Vec<String> = tx
            .prepare_cached(
                "SELECT platform_id FROM refunds WHERE store_id = ?1 AND order_id = ?2",
            )?
            .query_map(params![store_id, o.platform_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in ids {
            tx.prepare_cached("DELETE FROM refund_lines WHERE store_id = ?1 AND refund_id = ?2")?
                .execute(params![store_id, id])?;
        }
        tx.prepare_cached("DELETE FROM refunds WHERE store_id = ?1 AND order_id = ?2")?
            .execute(params![store_id, o.platform_id])?;
        for r in refunds {
            upsert_refund(tx, store_id, r)?;
        }
    }
    Ok(true)
}

fn upsert_refund(tx: &Transaction<'_>, store_id: i64, r: &Refund) -> Result<bool, StoreError> {
    let existing: Option<String> = tx
        .prepare_cached("SELECT amount FROM refunds WHERE store_id = ?1 AND platform_id = ?2")?
        .query_row(params![store_id, r.platform_id], |row| row.get(0))
        .optional()?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO refunds (store_id, platform_id, order_id, created_at, amount) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(store_id, platform_id) DO UPDATE SET order_id = excluded.order_id,
            created_at = excluded.created_at, amount = excluded.amount",
    )?;
    stmt.execute(params![
        store_id,
        r.platform_id,
        r.order_id,
        ts(r.created_at),
        r.amount.to_string()
    ])?;
    tx.prepare_cached("DELETE FROM refund_lines WHERE store_id = ?1 AND refund_id = ?2")?
        .execute(params![store_id, r.platform_id])?;
    // Several refund items may point at one order line: add them up.
    let mut per_line: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for l in &r.lines {
        let e = per_line.entry(l.order_line_id.as_str()).or_default();
        e.0 += l.quantity;
        e.1 += l.amount;
    }
    for (line, (qty, amount)) in per_line {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO refund_lines (store_id, refund_id, order_line_id, quantity, amount) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        stmt.execute(params![
            store_id,
            r.platform_id,
            line,
            qty.to_string(),
            amount.to_string()
        ])?;
    }
    Ok(existing.is_none())
}

/// The refund lines of one order. `CROSS JOIN` keeps `refunds` the outer loop (found through
/// `refunds_by_order`), so the cost is the order's own refunds: with a plain `JOIN` SQLite
/// may scan every refund line of the store for each order, which made a page's upserts
/// grow with the table.
const APPLY_REFUNDS_LINES: &str = "SELECT rl.order_line_id, rl.quantity, rl.amount FROM refunds r
     CROSS JOIN refund_lines rl ON rl.store_id = r.store_id AND rl.refund_id = r.platform_id
     WHERE r.store_id = ?1 AND r.order_id = ?2";

/// Recomputes an order's `refunded_items` and its lines' refunded quantity and amount from
/// the stored refunds (which may have arrived before or after the order itself).
fn apply_refunds(tx: &Transaction<'_>, store_id: i64, order_id: &str) -> Result<(), StoreError> {
    let mut per_line: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    let mut stmt = tx.prepare_cached(APPLY_REFUNDS_LINES)?;
    let rows = stmt.query_map(params![store_id, order_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut items = Decimal::ZERO;
    for row in rows {
        let (line, qty, amount) = row?;
        let qty = parse_dec("refund_lines.quantity", &qty)?;
        let amount = parse_dec("refund_lines.amount", &amount)?;
        items += amount;
        let e = per_line.entry(line).or_default();
        e.0 += qty;
        e.1 += amount;
    }
    tx.prepare_cached(
        "UPDATE orders SET refunded_items = ?3
         WHERE store_id = ?1 AND platform_id = ?2 AND refunded_items <> ?3",
    )?
    .execute(params![store_id, order_id, items.to_string()])?;
    let mut stmt = tx.prepare_cached(
        "UPDATE order_lines SET refunded_quantity = '0', refunded_amount = '0'
         WHERE store_id = ?1 AND order_id = ?2 AND (refunded_quantity <> '0' OR refunded_amount <> '0')",
    )?;
    stmt.execute(params![store_id, order_id])?;
    for (line, (qty, amount)) in per_line {
        tx.prepare_cached(
            "UPDATE order_lines SET refunded_quantity = ?4, refunded_amount = ?5
             WHERE store_id = ?1 AND order_id = ?2 AND line_id = ?3",
        )?
        .execute(params![
            store_id,
            order_id,
            line,
            qty.to_string(),
            amount.to_string()
        ])?;
    }
    Ok(())
}

/// What every KPI load reads first: the store's row and its time zone.
pub(super) struct LoadHead {
    pub store_id: i64,
    pub tz: StoreTz,
    pub currency: Option<String>,
    pub abandoned_access: Option<bool>,
}

/// The store called `name` (`None` if never synced) with its time zone: the configured
/// override, else the one read from the store, else UTC.
pub(super) fn load_head(
    db: &mut Db,
    name: &str,
    tz_override: Option<StoreTz>,
) -> Result<Option<LoadHead>, StoreError> {
    type Row = (i64, Option<String>, Option<String>, Option<bool>);
    let row: Option<Row> = db
        .conn
        .query_row(
            "SELECT id, timezone, currency, abandoned_access FROM stores WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((store_id, tz, currency, abandoned_access)) = row else {
        return Ok(None);
    };
    let tz = match (tz_override, tz) {
        (Some(t), _) => t,
        (None, Some(t)) => StoreTz::parse(&t).map_err(|_| StoreError::Corrupt {
            column: "stores.timezone",
            value: t,
        })?,
        (None, None) => StoreTz::UTC,
    };
    Ok(Some(LoadHead {
        store_id,
        tz,
        currency,
        abandoned_access,
    }))
}

fn load_store_data(
    db: &mut Db,
    name: &str,
    tz_override: Option<StoreTz>,
    with_lines: bool,
) -> Result<Option<StoreData>, StoreError> {
    let Some(LoadHead {
        store_id,
        tz,
        currency,
        abandoned_access,
    }) = load_head(db, name, tz_override)?
    else {
        return Ok(None);
    };
    let mut lines: HashMap<String, Vec<LineFacts>> = HashMap::new();
    if with_lines {
        let mut stmt = db.conn.prepare(
            "SELECT order_id, product_id, sku, quantity, total, refunded_quantity, refunded_amount
             FROM order_lines WHERE store_id = ?1",
        )?;
        let rows = stmt.query_map([store_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        for row in rows {
            let (order, product_id, sku, q, t, rq, ra) = row?;
            lines.entry(order).or_default().push(LineFacts {
                product_id,
                sku,
                quantity: parse_dec("order_lines.quantity", &q)?,
                total: parse_dec("order_lines.total", &t)?,
                refunded_quantity: parse_dec("order_lines.refunded_quantity", &rq)?,
                refunded_amount: parse_dec("order_lines.refunded_amount", &ra)?,
            });
        }
    }
    let mut stmt = db.conn.prepare(
        "SELECT platform_id, created_at, counted, items_gross, discounts, total, refunded,
                refunded_items, platform_customer_id, email_hash
         FROM orders WHERE store_id = ?1 AND deleted = 0 ORDER BY created_at, platform_id",
    )?;
    let rows = stmt.query_map([store_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
            r.get::<_, Option<String>>(9)?,
        ))
    })?;
    let mut orders = Vec::new();
    for row in rows {
        let (id, created, counted, gross, disc, total, refunded, refunded_items, cust, email) =
            row?;
        orders.push(OrderFacts {
            lines: lines.remove(&id).unwrap_or_default(),
            order_id: id,
            created_at: parse_ts("orders.created_at", &created)?,
            counted,
            items_gross: parse_dec("orders.items_gross", &gross)?,
            discounts: parse_dec("orders.discounts", &disc)?,
            total: parse_dec("orders.total", &total)?,
            refunded: parse_dec("orders.refunded", &refunded)?,
            refunded_items: parse_dec("orders.refunded_items", &refunded_items)?,
            customer_id: cust,
            email_hash: email.as_deref().and_then(EmailKey::new),
        });
    }
    let abandoned_checkouts = if abandoned_access == Some(true) {
        let mut stmt = db.conn.prepare(
            "SELECT created_at FROM abandoned_checkouts WHERE store_id = ?1 ORDER BY created_at",
        )?;
        let rows = stmt.query_map([store_id], |r| r.get::<_, String>(0))?;
        let mut at = Vec::new();
        for r in rows {
            at.push(parse_ts("abandoned_checkouts.created_at", &r?)?);
        }
        Some(at)
    } else {
        None
    };
    Ok(Some(StoreData {
        name: name.to_string(),
        tz,
        currency,
        orders,
        sessions: None,
        abandoned_checkouts,
        bounces: None,
        pagespeed: None,
        reviews: None,
        unavailable: Default::default(),
        stale: Default::default(),
        partial: None,
    }))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The query plan of `sql` (with `?` parameters bound to NULL), one detail per line.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let params: Vec<rusqlite::types::Null> = vec![rusqlite::types::Null; n];
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn an_orders_refund_lines_are_found_through_its_refunds_not_a_scan() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        let plan = plan(&conn, super::APPLY_REFUNDS_LINES);
        // The outer loop is the order's refunds (by index), the inner one each refund's lines
        // (by primary key): the cost does not grow with the store's other refunds.
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(
            plan[0].contains("refunds_by_order (store_id=? AND order_id=?)"),
            "{plan:?}"
        );
        assert!(
            plan[1].contains("USING PRIMARY KEY (store_id=? AND refund_id=?)"),
            "{plan:?}"
        );
    }
}
