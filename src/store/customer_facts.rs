//! Per-customer facts kept by the store (migration 10), so that a window-limited KPI load
//! (`loaders.rs`) reads one row per customer of the window instead of every order of each.
//!
//! - `customer_email_facts(store_id, email_hash, owner_id, guest_first_at)`: the registered
//!   customer an email belongs to (the smallest id, by `kpi::smaller_id`, on any live order
//!   carrying the email and a non-blank id) and the first counted live order carrying the email
//!   without an id.
//! - `customer_id_facts(store_id, customer_id, first_at)`: a registered customer's first
//!   counted order ever: their own counted live orders and the guest orders of every email
//!   they own.
//!
//! These are exactly `kpi::CustomerHistory::from_orders`'s `email_owner`, `first_by_email`
//! (for emails without an owner) and `first_by_id` over the store's live orders. Keys are
//! trimmed; ids and emails are matched as stored (the sources store them without surrounding
//! blanks), as the window-limited load always has.
//!
//! Maintenance: triggers on `orders` list the old and new email and id of every row written
//! in `customer_facts_dirty`, in the writing transaction; [`flush`] recomputes those keys
//! (emails first, then the touched ids and the old and new owners of the touched emails)
//! and empties the list. Every transaction that writes orders calls it before committing, so
//! committed facts are always those of the committed orders; a loader that still finds keys
//! listed (a writer that did not flush) falls back to reading the orders.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::kpi::smaller_id;

/// The facts of one store, computed from all of its live orders (the reference).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Facts {
    /// Email → (owner, first counted guest order).
    pub emails: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Id → first counted order, owned guest orders included.
    pub ids: BTreeMap<String, String>,
}

fn trimmed(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn keep_min(slot: &mut Option<String>, at: &str) {
    match slot {
        Some(cur) if cur.as_str() <= at => {}
        _ => *slot = Some(at.to_string()),
    }
}

fn keep_owner(slot: &mut Option<String>, id: &str) {
    match slot {
        Some(cur) if smaller_id(cur, id) == cur.as_str() => {}
        _ => *slot = Some(id.to_string()),
    }
}

/// The facts of `store_id` from a scan of its live orders.
pub(super) fn rebuild(conn: &Connection, store_id: i64) -> Result<Facts, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT platform_customer_id, email_hash, counted, created_at
         FROM orders WHERE store_id = ?1 AND deleted = 0",
    )?;
    let mut rows = stmt.query([store_id])?;
    let mut emails: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut own: BTreeMap<String, String> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let id = trimmed(r.get(0)?);
        let email = trimmed(r.get(1)?);
        let counted: bool = r.get(2)?;
        let at: String = r.get(3)?;
        match (&id, email) {
            (Some(id), Some(e)) => keep_owner(&mut emails.entry(e).or_default().0, id),
            (None, Some(e)) if counted => keep_min(&mut emails.entry(e).or_default().1, &at),
            _ => {}
        }
        if let (Some(id), true) = (id, counted) {
            match own.get_mut(&id) {
                Some(cur) if cur.as_str() <= at.as_str() => {}
                Some(cur) => *cur = at,
                None => {
                    own.insert(id, at);
                }
            }
        }
    }
    let mut ids = own;
    for (owner, guest_first) in emails.values() {
        if let (Some(owner), Some(g)) = (owner, guest_first) {
            match ids.get_mut(owner) {
                Some(cur) if *cur <= *g => {}
                Some(cur) => *cur = g.clone(),
                None => {
                    ids.insert(owner.clone(), g.clone());
                }
            }
        }
    }
    emails.retain(|_, (o, g)| o.is_some() || g.is_some());
    Ok(Facts { emails, ids })
}

/// The facts of `store_id` as kept in the tables.
pub(super) fn stored(conn: &Connection, store_id: i64) -> Result<Facts, StoreError> {
    let mut f = Facts::default();
    let mut stmt = conn.prepare(
        "SELECT email_hash, owner_id, guest_first_at FROM customer_email_facts WHERE store_id = ?1",
    )?;
    let mut rows = stmt.query([store_id])?;
    while let Some(r) = rows.next()? {
        f.emails.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    let mut stmt =
        conn.prepare("SELECT customer_id, first_at FROM customer_id_facts WHERE store_id = ?1")?;
    let mut rows = stmt.query([store_id])?;
    while let Some(r) = rows.next()? {
        f.ids.insert(r.get(0)?, r.get(1)?);
    }
    Ok(f)
}

/// Migration 10: fills both tables from every store's orders.
pub(super) fn backfill(conn: &Connection) -> Result<(), StoreError> {
    let stores: Vec<i64> = conn
        .prepare("SELECT id FROM stores")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut email_stmt = conn.prepare(
        "INSERT INTO customer_email_facts (store_id, email_hash, owner_id, guest_first_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut id_stmt = conn.prepare(
        "INSERT INTO customer_id_facts (store_id, customer_id, first_at) VALUES (?1, ?2, ?3)",
    )?;
    for store_id in stores {
        let f = rebuild(conn, store_id)?;
        for (e, (owner, guest_first)) in &f.emails {
            email_stmt.execute(params![store_id, e, owner, guest_first])?;
        }
        for (id, at) in &f.ids {
            id_stmt.execute(params![store_id, id, at])?;
        }
    }
    Ok(())
}

/// Whether writes to `store_id`'s orders are listed but not yet folded into its facts.
pub(super) fn has_dirty(conn: &Connection, store_id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM customer_facts_dirty WHERE store_id = ?1 LIMIT 1")?
        .query_row([store_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Recomputes the facts of every key the triggers listed, and empties the list. Called in
/// the writing transaction, before it commits.
pub(super) fn flush(conn: &Connection) -> Result<(), StoreError> {
    let mut emails: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut ids: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT store_id, kind, key FROM customer_facts_dirty")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let store_id: i64 = r.get(0)?;
            let kind: i64 = r.get(1)?;
            let Some(key) = trimmed(r.get(2)?) else {
                continue;
            };
            let set = if kind == 0 { &mut emails } else { &mut ids };
            set.entry(store_id).or_default().insert(key);
        }
    }
    if emails.is_empty() && ids.is_empty() {
        // Only blank keys, or nothing.
        conn.prepare_cached("DELETE FROM customer_facts_dirty")?
            .execute([])?;
        return Ok(());
    }
    conn.prepare_cached("DELETE FROM customer_facts_dirty")?
        .execute([])?;
    let mut read_email = conn.prepare_cached(
        "SELECT platform_customer_id, counted, created_at
         FROM orders INDEXED BY orders_by_email
         WHERE store_id = ?1 AND email_hash = ?2 AND deleted = 0",
    )?;
    let mut old_owner = conn.prepare_cached(
        "SELECT owner_id FROM customer_email_facts WHERE store_id = ?1 AND email_hash = ?2",
    )?;
    let mut put_email = conn.prepare_cached(
        "INSERT INTO customer_email_facts (store_id, email_hash, owner_id, guest_first_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(store_id, email_hash) DO UPDATE SET
            owner_id = excluded.owner_id, guest_first_at = excluded.guest_first_at",
    )?;
    let mut del_email = conn.prepare_cached(
        "DELETE FROM customer_email_facts WHERE store_id = ?1 AND email_hash = ?2",
    )?;
    let mut own_first = conn.prepare_cached(
        "SELECT min(created_at) FROM orders INDEXED BY orders_by_customer
         WHERE store_id = ?1 AND platform_customer_id = ?2 AND counted = 1 AND deleted = 0",
    )?;
    let mut owned_first = conn.prepare_cached(
        "SELECT min(guest_first_at) FROM customer_email_facts INDEXED BY customer_email_facts_by_owner
         WHERE store_id = ?1 AND owner_id = ?2",
    )?;
    let mut put_id = conn.prepare_cached(
        "INSERT INTO customer_id_facts (store_id, customer_id, first_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(store_id, customer_id) DO UPDATE SET first_at = excluded.first_at",
    )?;
    let mut del_id = conn
        .prepare_cached("DELETE FROM customer_id_facts WHERE store_id = ?1 AND customer_id = ?2")?;
    let stores: BTreeSet<i64> = emails.keys().chain(ids.keys()).copied().collect();
    for store_id in stores {
        let mut affected = ids.remove(&store_id).unwrap_or_default();
        for e in emails.remove(&store_id).unwrap_or_default() {
            let (mut owner, mut guest_first) = (None, None);
            let mut rows = read_email.query(params![store_id, e])?;
            while let Some(r) = rows.next()? {
                let id = trimmed(r.get(0)?);
                match id {
                    Some(id) => keep_owner(&mut owner, &id),
                    None if r.get::<_, bool>(1)? => {
                        keep_min(&mut guest_first, &r.get::<_, String>(2)?)
                    }
                    None => {}
                }
            }
            let before: Option<Option<String>> = old_owner
                .query_row(params![store_id, e], |r| r.get(0))
                .optional()?;
            affected.extend(before.flatten());
            affected.extend(owner.clone());
            if owner.is_none() && guest_first.is_none() {
                del_email.execute(params![store_id, e])?;
            } else {
                put_email.execute(params![store_id, e, owner, guest_first])?;
            }
        }
        for id in affected {
            let own: Option<String> = own_first.query_row(params![store_id, id], |r| r.get(0))?;
            let owned: Option<String> =
                owned_first.query_row(params![store_id, id], |r| r.get(0))?;
            match own.into_iter().chain(owned).min() {
                Some(first) => put_id.execute(params![store_id, id, first])?,
                None => del_id.execute(params![store_id, id])?,
            };
        }
    }
    Ok(())
}

/// Differences between the kept facts of every store and a rebuild from its orders (empty:
/// consistent), and any key still listed as dirty outside a write.
pub(super) fn mismatches(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let dirty: i64 = conn.query_row("SELECT count(*) FROM customer_facts_dirty", [], |r| {
        r.get(0)
    })?;
    if dirty > 0 {
        out.push(format!("{dirty} keys listed as dirty after a commit"));
    }
    let stores: Vec<i64> = conn
        .prepare("SELECT id FROM stores")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for store_id in stores {
        let want = rebuild(conn, store_id)?;
        let have = stored(conn, store_id)?;
        for (e, w) in &want.emails {
            if have.emails.get(e) != Some(w) {
                out.push(format!(
                    "store {store_id} email {e}: kept {:?}, orders say {w:?}",
                    have.emails.get(e)
                ));
            }
        }
        for e in have.emails.keys().filter(|e| !want.emails.contains_key(*e)) {
            out.push(format!(
                "store {store_id} email {e}: kept, orders have none"
            ));
        }
        for (id, w) in &want.ids {
            if have.ids.get(id) != Some(w) {
                out.push(format!(
                    "store {store_id} id {id}: kept {:?}, orders say {w}",
                    have.ids.get(id)
                ));
            }
        }
        for id in have.ids.keys().filter(|i| !want.ids.contains_key(*i)) {
            out.push(format!("store {store_id} id {id}: kept, orders have none"));
        }
    }
    Ok(out)
}

impl super::Store {
    /// Checks the customer facts (migration 10) against a rebuild from the orders: the
    /// differences, empty when consistent. For tests and diagnostics (reads every order).
    #[doc(hidden)]
    pub async fn customer_facts_mismatches(&self) -> Result<Vec<String>, StoreError> {
        self.call(|db| mismatches(&db.conn)).await
    }
}
