//! What `explain` and `export` read besides the KPI loads: stored orders of any status around
//! a window, with their refunds.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Db, Store, StoreError, parse_dec, parse_ts, ts};
use crate::kpi::{OrderDetail, RefundDetail};

impl Store {
    /// Every stored order of store `name` created in `[start, end)` (any status, deleted ones
    /// included), oldest first, each with its refunds. Empty when the store was never synced.
    pub async fn order_details(
        &self,
        name: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<OrderDetail>, StoreError> {
        let name = name.to_string();
        self.call(move |db| order_details(db, Some(&name), Some((start, end))))
            .await
    }

    /// Every stored order of every store (deleted ones included), by store then creation.
    pub async fn all_order_details(&self) -> Result<Vec<OrderDetail>, StoreError> {
        self.call(|db| order_details(db, None, None)).await
    }
}

fn order_details(
    db: &mut Db,
    store: Option<&str>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Vec<OrderDetail>, StoreError> {
    const COLUMNS: &str = "SELECT s.name, o.platform_id, o.number, o.created_at, o.status,
                o.currency, o.counted, o.test, o.trashed, o.deleted, o.items_gross, o.discounts,
                o.shipping, o.tax, o.total, o.refunded, o.refunded_items, o.store_id
         FROM stores s JOIN orders o ON o.store_id = s.id";
    let mut stmt;
    let mut rows = match (store, range) {
        // One store's window: a range of the `orders_by_created` index.
        (Some(name), Some((start, end))) => {
            stmt = db.conn.prepare_cached(&format!(
                "{COLUMNS} WHERE s.name = ?1 AND o.created_at >= ?2 AND o.created_at < ?3
                 ORDER BY o.created_at, o.platform_id"
            ))?;
            stmt.query(params![name, ts(start), ts(end)])?
        }
        _ => {
            stmt = db.conn.prepare_cached(&format!(
                "{COLUMNS} ORDER BY s.name, o.created_at, o.platform_id"
            ))?;
            stmt.query([])?
        }
    };
    let mut out = Vec::new();
    let mut keys = Vec::new();
    while let Some(r) = rows.next()? {
        let money = |i: usize, col: &'static str| -> Result<_, StoreError> {
            parse_dec(col, &r.get::<_, String>(i)?)
        };
        out.push(OrderDetail {
            store: r.get(0)?,
            order_id: r.get(1)?,
            number: r.get(2)?,
            created_at: parse_ts("orders.created_at", &r.get::<_, String>(3)?)?,
            status: r.get(4)?,
            currency: r.get(5)?,
            counted: r.get(6)?,
            test: r.get(7)?,
            trashed: r.get(8)?,
            deleted: r.get(9)?,
            items_gross: money(10, "orders.items_gross")?,
            discounts: money(11, "orders.discounts")?,
            shipping: money(12, "orders.shipping")?,
            tax: money(13, "orders.tax")?,
            total: money(14, "orders.total")?,
            refunded: money(15, "orders.refunded")?,
            refunded_items: money(16, "orders.refunded_items")?,
            refunds: Vec::new(),
        });
        keys.push(r.get::<_, i64>(17)?);
    }
    drop(rows);
    let mut refunds = db.conn.prepare_cached(
        "SELECT platform_id, created_at, amount FROM refunds
         WHERE store_id = ?1 AND order_id = ?2 ORDER BY created_at, platform_id",
    )?;
    for (o, store_id) in out.iter_mut().zip(keys) {
        let mut rows = refunds.query(params![store_id, o.order_id])?;
        while let Some(r) = rows.next()? {
            o.refunds.push(RefundDetail {
                id: r.get(0)?,
                created_at: parse_ts("refunds.created_at", &r.get::<_, String>(1)?)?,
                amount: parse_dec("refunds.amount", &r.get::<_, String>(2)?)?,
            });
        }
    }
    Ok(out)
}
