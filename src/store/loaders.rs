//! Window-limited loading for `kpi`: only the counted orders created in the windows in use,
//! and, for their customers, what the customer KPIs need from the rest of the history (who a
//! guest email belongs to, each customer's first counted order). SQLite does the filtering
//! with the indexes of migration 4; the cost follows the windows, not the store's history.
//!
//! Refunds need no date filter: `refunded` and `refunded_items` are kept on the order row and
//! count on the order's creation day (`docs/kpis.md`), so a refund made in a window for an
//! order created before it is, correctly, not in that window.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Db, Store, StoreError, parse_dec, parse_ts, ts};
use crate::domain::StoreTz;
use crate::kpi::{
    CustomerHistory, EmailKey, FastMap, LineFacts, OrderFacts, Partial, StoreData, WindowSpec,
};

type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

impl Store {
    /// The named store's data for KPIs over `windows` evaluated at `now` (each resolved in
    /// the store's time zone): the counted orders created in them (with their lines when
    /// `with_lines`), their abandoned checkouts, and their customers' history. `None` when the
    /// store was never synced.
    pub async fn load_store_windows(
        &self,
        name: &str,
        tz_override: Option<StoreTz>,
        with_lines: bool,
        windows: Vec<WindowSpec>,
        now: DateTime<Utc>,
    ) -> Result<Option<StoreData>, StoreError> {
        let lines = if with_lines { Lines::All } else { Lines::None };
        self.load_store_windows_with(name, tz_override, lines, windows, now)
            .await
    }

    /// [`Store::load_store_windows`], with the order lines `lines` says.
    pub async fn load_store_windows_with(
        &self,
        name: &str,
        tz_override: Option<StoreTz>,
        lines: Lines,
        windows: Vec<WindowSpec>,
        now: DateTime<Utc>,
    ) -> Result<Option<StoreData>, StoreError> {
        let name = name.to_string();
        self.call(move |db| {
            // One read transaction: the window's orders and the customer facts from one
            // snapshot, even while another process commits (a deferred BEGIN takes no lock
            // until the first read, and none that blocks a writer in WAL mode).
            db.conn.execute_batch("BEGIN DEFERRED")?;
            let loaded = load_windows(db, &name, tz_override, &lines, &windows, now);
            // Only reads: ending it either way changes nothing.
            db.conn.execute_batch("COMMIT")?;
            loaded
        })
        .await
    }
}

/// Which order lines a window-limited load reads (only product KPIs read lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lines {
    None,
    All,
    /// The lines of these products (ids or SKUs; trimmed as product KPIs match them): a
    /// product KPI of another product over this load is an error.
    Products(BTreeSet<String>),
}

impl Lines {
    /// Whether a line of `product_id` / `sku` is to be kept.
    fn keep(&self, product_id: Option<&str>, sku: Option<&str>) -> bool {
        match self {
            Lines::None => false,
            Lines::All => true,
            Lines::Products(set) => [product_id, sku]
                .into_iter()
                .flatten()
                .any(|v| set.contains(v.trim())),
        }
    }
}

/// Resolves `windows` at `now` in `tz` into sorted, disjoint half-open instant spans.
pub(crate) fn spans(
    windows: &[WindowSpec],
    tz: &StoreTz,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let today = tz.local_date(now);
    let mut v: Vec<(DateTime<Utc>, DateTime<Utc>)> = windows
        .iter()
        .map(|w| w.resolve(today))
        .filter(|r| r.from <= r.to)
        .map(|r| r.utc_bounds(tz))
        .collect();
    v.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The value without surrounding blanks, `None` when nothing is left (borrowed: no copy).
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A text column borrowed from the row (`None` for NULL).
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::new(e),
        ))
    })
}

/// Keys sent to SQLite per query: the JSON text and SQLite's parse of it stay small (a
/// window's ~100,000 email hashes in one array are ~7 MB of text, parsed again by SQLite).
const KEYS_PER_QUERY: usize = 4096;

/// The keys sorted, to be sent `KEYS_PER_QUERY` at a time as JSON arrays for `json_each`
/// ([`json_chunk`]): seeks in index order read each index page once, while SQLite's small
/// page cache still holds it (unsorted, nearly every seek reads a page from the file).
fn sorted<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = items.into_iter().collect();
    v.sort_unstable();
    v
}

fn json_chunk(keys: &[&str]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

/// What the orders carrying some emails say about them.
#[derive(Default)]
struct EmailFacts {
    /// Smallest registered id on an order carrying the email (read in the order the full
    /// load reads orders: creation time, then id).
    owner: FastMap<String, String>,
    /// First counted order without a customer id carrying the email (stored text: fixed-width
    /// UTC, so it sorts as it compares).
    guest_first: FastMap<String, String>,
}

fn email_facts(
    db: &Db,
    store_id: i64,
    emails: &FastSet<&str>,
    out: &mut EmailFacts,
) -> Result<(), StoreError> {
    if emails.is_empty() {
        return Ok(());
    }
    let mut stmt = db.conn.prepare_cached(
        // One seek per email in the covering index, which lists an email's orders by creation
        // time, then id: the order the whole-history load folds owners in. INDEXED BY: without
        // statistics SQLite would rather scan the store's orders.
        "SELECT o.email_hash, o.platform_customer_id, o.counted, o.created_at
         FROM json_each(?2) j CROSS JOIN orders o INDEXED BY orders_by_email
         WHERE o.store_id = ?1 AND o.deleted = 0 AND o.email_hash IS NOT NULL
           AND o.email_hash = j.value",
    )?;
    for keys in sorted(emails.iter().copied()).chunks(KEYS_PER_QUERY) {
        let mut rows = stmt.query(params![store_id, json_chunk(keys)])?;
        // Values are borrowed from the row; a string is allocated only for a new key.
        while let Some(r) = rows.next()? {
            let email = text(r, 0)?.unwrap_or_default().trim();
            let id = text(r, 1)?.map(str::trim);
            match id.filter(|id| !id.is_empty()) {
                Some(id) => match out.owner.get_mut(email) {
                    Some(cur) => {
                        if crate::kpi::smaller_id(cur, id) != cur.as_str() {
                            *cur = id.to_string();
                        }
                    }
                    None => {
                        out.owner.insert(email.to_string(), id.to_string());
                    }
                },
                None if r.get::<_, bool>(2)? => {
                    let at = text(r, 3)?.unwrap_or_default();
                    match out.guest_first.get_mut(email) {
                        Some(f) if f.as_str() <= at => {}
                        Some(f) => *f = at.to_string(),
                        None => {
                            out.guest_first.insert(email.to_string(), at.to_string());
                        }
                    }
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// The characters Rust's `str::trim` strips (Unicode `White_Space`), for SQLite's
/// `trim(X, Y)`: SQL then calls an id blank exactly when [`non_empty`] does (SQLite's `trim(X)`
/// strips spaces only).
const WHITE_SPACE: &str = "\u{9}\u{a}\u{b}\u{c}\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

/// Which of `emails` a counted guest order (no customer id, or a blank one) carries. The rows
/// are filtered in SQL, so only guest orders come out.
fn emails_with_guest_orders(
    db: &Db,
    store_id: i64,
    emails: &FastSet<&str>,
) -> Result<FastSet<String>, StoreError> {
    let mut out = FastSet::default();
    if emails.is_empty() {
        return Ok(out);
    }
    let mut stmt = db.conn.prepare_cached(
        "SELECT o.email_hash
         FROM json_each(?2) j CROSS JOIN orders o INDEXED BY orders_by_email
         WHERE o.store_id = ?1 AND o.deleted = 0 AND o.email_hash IS NOT NULL
           AND o.email_hash = j.value AND o.counted = 1
           AND (o.platform_customer_id IS NULL OR trim(o.platform_customer_id, ?3) = '')",
    )?;
    for keys in sorted(emails.iter().copied()).chunks(KEYS_PER_QUERY) {
        let mut rows = stmt.query(params![store_id, json_chunk(keys), WHITE_SPACE])?;
        while let Some(r) = rows.next()? {
            let email = text(r, 0)?.unwrap_or_default().trim();
            if !out.contains(email) {
                out.insert(email.to_string());
            }
        }
    }
    Ok(out)
}

/// Per registered customer: first counted order under their id, and every email on their
/// orders (counted or not).
#[derive(Default)]
struct IdFacts {
    /// Stored text, as in `EmailFacts::guest_first`.
    first: FastMap<String, String>,
    emails: FastMap<String, Vec<String>>,
}

fn id_facts(db: &Db, store_id: i64, ids: &FastSet<&str>) -> Result<IdFacts, StoreError> {
    let mut out = IdFacts::default();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut stmt = db.conn.prepare_cached(
        "SELECT o.platform_customer_id, o.counted, o.created_at, o.email_hash
         FROM json_each(?2) j CROSS JOIN orders o INDEXED BY orders_by_customer
         WHERE o.store_id = ?1 AND o.deleted = 0 AND o.platform_customer_id IS NOT NULL
           AND o.platform_customer_id = j.value",
    )?;
    for keys in sorted(ids.iter().copied()).chunks(KEYS_PER_QUERY) {
        let mut rows = stmt.query(params![store_id, json_chunk(keys)])?;
        while let Some(r) = rows.next()? {
            let id = text(r, 0)?.unwrap_or_default().trim();
            if id.is_empty() {
                continue;
            }
            if r.get::<_, bool>(1)? {
                let at = text(r, 2)?.unwrap_or_default();
                match out.first.get_mut(id) {
                    Some(f) if f.as_str() <= at => {}
                    Some(f) => *f = at.to_string(),
                    None => {
                        out.first.insert(id.to_string(), at.to_string());
                    }
                }
            }
            let email = text(r, 3)?.map(str::trim);
            if let Some(email) = email.filter(|e| !e.is_empty()) {
                match out.emails.get_mut(id) {
                    Some(list) if list.iter().any(|e| e == email) => {}
                    Some(list) => list.push(email.to_string()),
                    None => {
                        out.emails.insert(id.to_string(), vec![email.to_string()]);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The customers of a window's orders: the registered ids, and the emails of guest orders
/// (borrowed from the orders: no string is copied per order).
fn window_keys(orders: &[OrderFacts]) -> (FastSet<&str>, FastSet<&EmailKey>) {
    let mut ids: FastSet<&str> = FastSet::default();
    let mut guest_keys: FastSet<&EmailKey> = FastSet::default();
    for o in orders {
        match (non_empty(&o.customer_id), o.email_hash.as_ref()) {
            (Some(id), _) => {
                ids.insert(id);
            }
            (None, Some(email)) => {
                guest_keys.insert(email);
            }
            (None, None) => {}
        }
    }
    (ids, guest_keys)
}

/// The history of the customers of `orders` (see `kpi::CustomerHistory`), from the customer
/// facts the store keeps (`customer_facts.rs`, migration 10): one seek per customer id and
/// guest email of the window, and one per owner of those emails. While writes are listed but
/// not folded into the facts (a writer that did not recompute them), from the orders instead.
///
/// Ids and emails are matched as stored; the sources store them without surrounding blanks
/// (ids come from numbers or GraphQL ids, emails as keyed hashes), as the full load assumes
/// when it trims them.
fn customer_history(
    db: &Db,
    store_id: i64,
    orders: &[OrderFacts],
) -> Result<CustomerHistory, StoreError> {
    if super::customer_facts::has_dirty(&db.conn, store_id)? {
        return customer_history_from_orders(db, store_id, orders);
    }
    let (mut ids, guest_keys) = window_keys(orders);
    let mut h = CustomerHistory::default();
    let at = |t: &str| parse_ts("customer_email_facts.guest_first_at", t);
    // Guest emails: their owner, or their own first order.
    let guest_text: FastMap<String, &EmailKey> =
        guest_keys.iter().map(|&k| (k.to_string(), k)).collect();
    let mut owners: FastSet<String> = FastSet::default();
    {
        let mut stmt = db.conn.prepare_cached(
            "SELECT f.email_hash, f.owner_id, f.guest_first_at
             FROM json_each(?2) j CROSS JOIN customer_email_facts f
             WHERE f.store_id = ?1 AND f.email_hash = j.value",
        )?;
        for keys in sorted(guest_text.keys().map(String::as_str)).chunks(KEYS_PER_QUERY) {
            let mut rows = stmt.query(params![store_id, json_chunk(keys)])?;
            while let Some(r) = rows.next()? {
                let Some(&key) = text(r, 0)?.and_then(|e| guest_text.get(e)) else {
                    continue;
                };
                match text(r, 1)? {
                    Some(owner) => {
                        if !ids.contains(owner) && !owners.contains(owner) {
                            owners.insert(owner.to_string());
                        }
                        h.email_owner.insert(key.clone(), owner.to_string());
                    }
                    None => {
                        if let Some(first) = text(r, 2)? {
                            h.first_by_email.insert(key.clone(), at(first)?);
                        }
                    }
                }
            }
        }
    }
    // Every registered customer of the window: the ids on its orders and the owners found.
    ids.extend(owners.iter().map(String::as_str));
    let mut stmt = db.conn.prepare_cached(
        "SELECT f.customer_id, f.first_at
         FROM json_each(?2) j CROSS JOIN customer_id_facts f
         WHERE f.store_id = ?1 AND f.customer_id = j.value",
    )?;
    for keys in sorted(ids.iter().copied()).chunks(KEYS_PER_QUERY) {
        let mut rows = stmt.query(params![store_id, json_chunk(keys)])?;
        while let Some(r) = rows.next()? {
            let id = text(r, 0)?.unwrap_or_default();
            let first = parse_ts(
                "customer_id_facts.first_at",
                text(r, 1)?.unwrap_or_default(),
            )?;
            h.first_by_id.insert(id.to_string(), first);
        }
    }
    Ok(h)
}

/// [`customer_history`] from the orders of the window's customers (every row of each).
fn customer_history_from_orders(
    db: &Db,
    store_id: i64,
    orders: &[OrderFacts],
) -> Result<CustomerHistory, StoreError> {
    // Ids are borrowed from the orders and the facts read: no string is copied per order;
    // the guest emails (a few per hundred orders) are written out as the stored text once.
    let (mut ids, guest_keys) = window_keys(orders);
    let guest_text: Vec<(&EmailKey, String)> =
        guest_keys.iter().map(|&k| (k, k.to_string())).collect();
    let guests: FastSet<&str> = guest_text.iter().map(|(_, t)| t.as_str()).collect();
    // Who the guest emails belong to; their owners are customers of the window too.
    let mut emails = EmailFacts::default();
    email_facts(db, store_id, &guests, &mut emails)?;
    ids.extend(emails.owner.values().map(String::as_str));
    // The registered customers' own orders, and the other emails on them: guest orders with
    // an email a customer owns are that customer's. Their facts are kept apart (`more_facts`,
    // keys disjoint from `emails`'s) so that `ids` can keep borrowing from `emails`.
    let by_id = id_facts(db, store_id, &ids)?;
    let more: FastSet<&str> = by_id
        .emails
        .values()
        .flatten()
        .map(String::as_str)
        .filter(|e| !guests.contains(e))
        .collect();
    // An email of `more` matters only if a counted guest order carries it (its date may be
    // the customer's first order); its owner is then needed too. Most registered customers'
    // emails carry only their own orders, so their rows are not read out: only the guest
    // orders of `more`, then every row of the few emails that have some.
    let with_guests = emails_with_guest_orders(db, store_id, &more)?;
    let with_guests: FastSet<&str> = with_guests.iter().map(String::as_str).collect();
    let mut more_facts = EmailFacts::default();
    email_facts(db, store_id, &with_guests, &mut more_facts)?;
    let owner_of = |e: &str| {
        emails
            .owner
            .get(e)
            .or_else(|| more_facts.owner.get(e))
            .map(String::as_str)
    };
    let guest_first_of = |e: &str| {
        emails
            .guest_first
            .get(e)
            .or_else(|| more_facts.guest_first.get(e))
    };

    let mut h = CustomerHistory::default();
    let at = |t: &str| parse_ts("orders.created_at", t);
    for &id in &ids {
        let mut first = by_id.first.get(id);
        for e in by_id.emails.get(id).into_iter().flatten() {
            if owner_of(e) == Some(id)
                && let Some(g) = guest_first_of(e)
            {
                first = Some(first.map_or(g, |f| f.min(g)));
            }
        }
        if let Some(f) = first {
            h.first_by_id.insert(id.to_string(), at(f)?);
        }
    }
    for (key, g) in &guest_text {
        match owner_of(g) {
            Some(owner) => {
                h.email_owner.insert((*key).clone(), owner.to_string());
            }
            None => {
                if let Some(f) = guest_first_of(g) {
                    h.first_by_email.insert((*key).clone(), at(f)?);
                }
            }
        }
    }
    Ok(h)
}

fn load_windows(
    db: &mut Db,
    name: &str,
    tz_override: Option<StoreTz>,
    lines_wanted: &Lines,
    windows: &[WindowSpec],
    now: DateTime<Utc>,
) -> Result<Option<StoreData>, StoreError> {
    let with_lines = *lines_wanted != Lines::None;
    let Some(super::orders::LoadHead {
        store_id,
        tz,
        currency,
        abandoned_access,
    }) = super::orders::load_head(db, name, tz_override)?
    else {
        return Ok(None);
    };
    let spans = spans(windows, &tz, now);
    let mut orders = Vec::new();
    let mut abandoned = Vec::new();
    for (start, end) in &spans {
        let (start, end) = (ts(*start), ts(*end));
        let mut lines: FastMap<String, Vec<LineFacts>> = FastMap::default();
        if with_lines {
            let mut stmt = db.conn.prepare_cached(
                "SELECT l.order_id, l.product_id, l.sku, l.quantity, l.total,
                        l.refunded_quantity, l.refunded_amount
                 FROM orders o INDEXED BY orders_counted_by_created CROSS JOIN order_lines l
                   ON l.store_id = o.store_id AND l.order_id = o.platform_id
                 WHERE o.store_id = ?1 AND o.created_at >= ?2 AND o.created_at < ?3
                   AND o.counted = 1 AND o.deleted = 0",
            )?;
            let mut rows = stmt.query(params![store_id, start, end])?;
            while let Some(r) = rows.next()? {
                if !lines_wanted.keep(text(r, 1)?, text(r, 2)?) {
                    continue;
                }
                lines.entry(r.get(0)?).or_default().push(LineFacts {
                    product_id: r.get(1)?,
                    sku: r.get(2)?,
                    quantity: parse_dec("order_lines.quantity", text(r, 3)?.unwrap_or_default())?,
                    total: parse_dec("order_lines.total", text(r, 4)?.unwrap_or_default())?,
                    refunded_quantity: parse_dec(
                        "order_lines.refunded_quantity",
                        text(r, 5)?.unwrap_or_default(),
                    )?,
                    refunded_amount: parse_dec(
                        "order_lines.refunded_amount",
                        text(r, 6)?.unwrap_or_default(),
                    )?,
                });
            }
        }
        let mut stmt = db.conn.prepare_cached(
            // The covering index of migration 9 holds every column read, in this order.
            "SELECT platform_id, created_at, items_gross, discounts, total, refunded,
                    refunded_items, platform_customer_id, email_hash
             FROM orders INDEXED BY orders_counted_by_created
             WHERE store_id = ?1 AND created_at >= ?2 AND created_at < ?3
               AND counted = 1 AND deleted = 0
             ORDER BY created_at, platform_id",
        )?;
        let mut rows = stmt.query(params![store_id, start, end])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            orders.push(OrderFacts {
                lines: lines.remove(&id).unwrap_or_default(),
                order_id: id,
                created_at: parse_ts("orders.created_at", text(r, 1)?.unwrap_or_default())?,
                counted: true,
                items_gross: parse_dec("orders.items_gross", text(r, 2)?.unwrap_or_default())?,
                discounts: parse_dec("orders.discounts", text(r, 3)?.unwrap_or_default())?,
                total: parse_dec("orders.total", text(r, 4)?.unwrap_or_default())?,
                refunded: parse_dec("orders.refunded", text(r, 5)?.unwrap_or_default())?,
                refunded_items: parse_dec(
                    "orders.refunded_items",
                    text(r, 6)?.unwrap_or_default(),
                )?,
                customer_id: r.get(7)?,
                email_hash: text(r, 8)?.and_then(EmailKey::new),
            });
        }
        if abandoned_access == Some(true) {
            let mut stmt = db.conn.prepare_cached(
                "SELECT created_at FROM abandoned_checkouts
                 WHERE store_id = ?1 AND created_at >= ?2 AND created_at < ?3
                 ORDER BY created_at",
            )?;
            let mut rows = stmt.query(params![store_id, start, end])?;
            while let Some(r) = rows.next()? {
                abandoned.push(parse_ts(
                    "abandoned_checkouts.created_at",
                    text(r, 0)?.unwrap_or_default(),
                )?);
            }
        }
    }
    let customers = customer_history(db, store_id, &orders)?;
    Ok(Some(StoreData {
        name: name.to_string(),
        tz,
        currency,
        orders,
        sessions: None,
        abandoned_checkouts: (abandoned_access == Some(true)).then_some(abandoned),
        bounces: None,
        pagespeed: None,
        reviews: None,
        unavailable: Default::default(),
        stale: Default::default(),
        partial: Some(Partial {
            spans,
            customers,
            line_products: match lines_wanted {
                Lines::All => None,
                Lines::None => Some(BTreeSet::new()),
                Lines::Products(set) => Some(set.clone()),
            },
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::WHITE_SPACE;

    /// SQL's blank test must strip exactly what Rust's `trim` strips.
    #[test]
    fn the_white_space_set_is_what_rust_trims() {
        let rust: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        let ours: Vec<char> = WHITE_SPACE.chars().collect();
        assert_eq!(ours, rust);
    }
}
