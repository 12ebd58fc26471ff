//! Versioned schema migrations, applied in order at start-up (`PRAGMA user_version`).
//!
//! Append new migrations; never edit one that has shipped.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use super::{StoreError, retry_busy};

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: stores, orders, lines, refunds, customers, cursors, sync log, check-ins.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE stores (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        platform    TEXT NOT NULL,
        identity    TEXT,                       -- which shop (host/path): one name, one shop
        complete_at TEXT,                       -- first sync that read the whole history
        timezone    TEXT,
        currency    TEXT,
        updated_at  TEXT
    );
    CREATE TABLE orders (
        store_id        INTEGER NOT NULL REFERENCES stores(id),
        platform_id     TEXT NOT NULL,
        number          TEXT NOT NULL,
        created_at      TEXT NOT NULL,          -- UTC, YYYY-MM-DDTHH:MM:SSZ
        modified_at     TEXT NOT NULL,
        status          TEXT NOT NULL,
        counted         INTEGER NOT NULL,
        currency        TEXT NOT NULL,
        items_gross     TEXT NOT NULL,          -- decimal strings: money is never REAL
        discounts       TEXT NOT NULL,
        shipping        TEXT NOT NULL,
        tax             TEXT NOT NULL,
        total           TEXT NOT NULL,
        refunded        TEXT NOT NULL,
        refunded_items  TEXT NOT NULL DEFAULT '0',
        customer_key    TEXT NOT NULL,
        platform_customer_id TEXT,
        email_hash      TEXT,                   -- keyed HMAC-SHA256, never the raw email
        test            INTEGER NOT NULL DEFAULT 0,
        trashed         INTEGER NOT NULL DEFAULT 0,
        deleted         INTEGER NOT NULL DEFAULT 0,
        refund_ids      TEXT NOT NULL DEFAULT '[]',
        synced_at       TEXT NOT NULL,
        PRIMARY KEY (store_id, platform_id)
    ) WITHOUT ROWID;
    CREATE INDEX orders_by_created ON orders(store_id, created_at);
    CREATE TABLE order_lines (
        store_id        INTEGER NOT NULL,
        order_id        TEXT NOT NULL,
        line_id         TEXT NOT NULL,
        product_id      TEXT,
        sku             TEXT,
        name            TEXT NOT NULL,
        quantity        TEXT NOT NULL,
        subtotal        TEXT NOT NULL,
        total           TEXT NOT NULL,
        tax             TEXT NOT NULL,
        refunded_quantity TEXT NOT NULL DEFAULT '0',
        refunded_amount TEXT NOT NULL DEFAULT '0',
        PRIMARY KEY (store_id, order_id, line_id)
    ) WITHOUT ROWID;
    CREATE TABLE refunds (
        store_id    INTEGER NOT NULL,
        platform_id TEXT NOT NULL,
        order_id    TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        amount      TEXT NOT NULL,
        PRIMARY KEY (store_id, platform_id)
    ) WITHOUT ROWID;
    CREATE INDEX refunds_by_order ON refunds(store_id, order_id);
    CREATE TABLE refund_lines (
        store_id      INTEGER NOT NULL,
        refund_id     TEXT NOT NULL,
        order_line_id TEXT NOT NULL,
        quantity      TEXT NOT NULL,
        amount        TEXT NOT NULL,
        PRIMARY KEY (store_id, refund_id, order_line_id)
    ) WITHOUT ROWID;
    CREATE TABLE customers (
        store_id             INTEGER NOT NULL,
        customer_key         TEXT NOT NULL,
        platform_customer_id TEXT,
        email_hash           TEXT,
        first_seen_at        TEXT NOT NULL,
        PRIMARY KEY (store_id, customer_key)
    ) WITHOUT ROWID;
    CREATE TABLE cursors (
        store_id   INTEGER NOT NULL,
        stream     TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (store_id, stream)
    ) WITHOUT ROWID;
    CREATE TABLE sync_runs (
        id           INTEGER PRIMARY KEY,
        store        TEXT NOT NULL,
        source       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        heartbeat_at TEXT NOT NULL,
        owner        TEXT,                      -- `pid:start time` of the process running it
        status       TEXT NOT NULL,             -- running | ok | partial | failed | skipped
        full         INTEGER NOT NULL DEFAULT 0,
        pages        INTEGER NOT NULL DEFAULT 0,
        fetched      INTEGER NOT NULL DEFAULT 0,
        upserted     INTEGER NOT NULL DEFAULT 0,
        requests     INTEGER NOT NULL DEFAULT 0,
        retries      INTEGER NOT NULL DEFAULT 0,
        error        TEXT
    );
    CREATE INDEX sync_runs_by_store ON sync_runs(store, id);
    CREATE TABLE checkins (
        id          INTEGER PRIMARY KEY,
        key_result  TEXT NOT NULL,
        kpi         TEXT NOT NULL,
        value       TEXT,                       -- canonical decimal text; NULL when undefined
        value_kind  TEXT NOT NULL,              -- count | money | rate
        progress    TEXT,
        status      TEXT,
        window_from TEXT NOT NULL,
        window_to   TEXT NOT NULL,
        timezone    TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE INDEX checkins_by_kr ON checkins(key_result, id);
    "#,
    // 2: Shopify abandoned checkouts (for cart_abandonment_rate) and whether the store's
    // token can read them (NULL: unknown or not readable, so the KPI is null, not 0).
    r#"
    CREATE TABLE abandoned_checkouts (
        store_id    INTEGER NOT NULL,
        platform_id TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (store_id, platform_id)
    ) WITHOUT ROWID;
    CREATE INDEX abandoned_by_created ON abandoned_checkouts(store_id, created_at);
    ALTER TABLE stores ADD COLUMN abandoned_access INTEGER;
    "#,
    // 3: analytics and site sources, per (source, day).
    r#"
    CREATE TABLE traffic_daily (
        source           TEXT NOT NULL,         -- the [[analytics]] name
        day              TEXT NOT NULL,         -- YYYY-MM-DD, local day
        sessions         INTEGER NOT NULL,
        visitors         INTEGER,
        bounces          INTEGER,
        engaged_sessions INTEGER,
        synced_at        TEXT NOT NULL,
        PRIMARY KEY (source, day)
    ) WITHOUT ROWID;
    CREATE TABLE pagespeed_daily (
        source      TEXT NOT NULL,
        url         TEXT NOT NULL,
        strategy    TEXT NOT NULL,
        day         TEXT NOT NULL,
        score       TEXT NOT NULL,              -- 0..100, decimal text
        lcp_ms      INTEGER,
        fcp_ms      INTEGER,
        cls         TEXT,
        tbt_ms      INTEGER,
        synced_at   TEXT NOT NULL,
        PRIMARY KEY (source, url, strategy, day)
    ) WITHOUT ROWID;
    CREATE TABLE reviews (
        source      TEXT NOT NULL,
        review_id   TEXT NOT NULL,
        product_id  TEXT NOT NULL,
        created_at  TEXT NOT NULL,              -- UTC
        rating      INTEGER NOT NULL,
        verified    INTEGER NOT NULL,
        synced_at   TEXT NOT NULL,
        PRIMARY KEY (source, review_id)
    ) WITHOUT ROWID;
    "#,
    // 4: store facts (time zone, currency) are reused for a day: `facts_key` says which
    // configuration read them (`updated_at` is when); `count_rules` names the status rules the
    // stored `counted` flags follow, so a sync re-derives them only when the rules change.
    r#"
    ALTER TABLE stores ADD COLUMN facts_key TEXT;
    ALTER TABLE stores ADD COLUMN count_rules TEXT;
    "#,
    // 5: window-limited KPI loads (store/loaders.rs): a customer's orders by id and by email
    // without reading the order rows. Covering, so each customer costs one index seek.
    r#"
    CREATE INDEX orders_by_customer
        ON orders(store_id, platform_customer_id, counted, created_at, deleted, email_hash)
        WHERE platform_customer_id IS NOT NULL;
    CREATE INDEX orders_by_email
        ON orders(store_id, email_hash, created_at, platform_id, platform_customer_id, counted, deleted)
        WHERE email_hash IS NOT NULL;
    "#,
    // 6: the outbox of check-ins to push, one row per (check-in, sink), written in the
    // check-in's transaction, and every delivery attempt.
    r#"
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        key_result      TEXT NOT NULL,
        checkin_id      INTEGER NOT NULL REFERENCES checkins(id),
        sink            TEXT NOT NULL,          -- the [[sinks]] name
        idempotency_key TEXT NOT NULL,          -- f(database, key result, check-in)
        body            TEXT NOT NULL,          -- the exact v1 JSON sent on every attempt; never a secret
        state           TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        delivered_at    TEXT,
        UNIQUE (sink, idempotency_key)
    );
    CREATE INDEX outbox_pending ON outbox(sink, state, key_result, id);
    CREATE TABLE outbox_attempts (
        id          INTEGER PRIMARY KEY,
        outbox_id   INTEGER NOT NULL REFERENCES outbox(id),
        at          TEXT NOT NULL,
        status      INTEGER,                    -- HTTP status; NULL when no answer
        error       TEXT                        -- NULL on success
    );
    CREATE INDEX outbox_attempts_by_entry ON outbox_attempts(outbox_id, id);
    "#,
    // 7: digests (what each reported, for "change since the last digest") and their outbox
    // entries: an entry belongs to a check-in or to a digest. SQLite cannot relax a NOT NULL
    // in place, so the outbox and its attempts are rebuilt (children first, ids kept).
    r#"
    CREATE TABLE digests (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        body        TEXT NOT NULL                -- the digest document as queued
    );
    CREATE TABLE digest_values (
        digest_id   INTEGER NOT NULL REFERENCES digests(id),
        key_result  TEXT NOT NULL,
        value       TEXT,                        -- canonical decimal text; NULL when undefined
        progress    TEXT,
        window_from TEXT,
        PRIMARY KEY (digest_id, key_result)
    ) WITHOUT ROWID;
    CREATE TABLE outbox_v7 (
        id              INTEGER PRIMARY KEY,
        key_result      TEXT NOT NULL,          -- for a digest: the reserved `(digest)`
        checkin_id      INTEGER REFERENCES checkins(id),
        digest_id       INTEGER REFERENCES digests(id),
        sink            TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        body            TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error      TEXT,
        created_at      TEXT NOT NULL,
        delivered_at    TEXT,
        UNIQUE (sink, idempotency_key),
        CHECK ((checkin_id IS NULL) <> (digest_id IS NULL))
    );
    INSERT INTO outbox_v7 (id, key_result, checkin_id, digest_id, sink, idempotency_key, body, state,
                           attempts, next_attempt_at, last_error, created_at, delivered_at)
        SELECT id, key_result, checkin_id, NULL, sink, idempotency_key, body, state,
               attempts, next_attempt_at, last_error, created_at, delivered_at FROM outbox;
    CREATE TABLE outbox_attempts_v7 (
        id          INTEGER PRIMARY KEY,
        outbox_id   INTEGER NOT NULL REFERENCES outbox_v7(id),
        at          TEXT NOT NULL,
        status      INTEGER,
        error       TEXT
    );
    INSERT INTO outbox_attempts_v7 SELECT id, outbox_id, at, status, error FROM outbox_attempts;
    DROP TABLE outbox_attempts;
    DROP TABLE outbox;
    ALTER TABLE outbox_v7 RENAME TO outbox;
    ALTER TABLE outbox_attempts_v7 RENAME TO outbox_attempts;
    CREATE INDEX outbox_pending ON outbox(sink, state, key_result, id);
    CREATE INDEX outbox_attempts_by_entry ON outbox_attempts(outbox_id, id);
    "#,
    // 8: baselines and targets of relative key results (`baseline_window` + `target =
    // "+10%"`), computed once per period and fixed: one row per key result, period and
    // definition (a changed definition computes anew).
    r#"
    CREATE TABLE fixed_targets (
        key_result      TEXT NOT NULL,
        period_from     TEXT NOT NULL,          -- YYYY-MM-DD, first day of the key result's period
        baseline_window TEXT NOT NULL,          -- the window's name as configured
        change          TEXT NOT NULL,          -- the relative target as configured ("+10%")
        window_from     TEXT NOT NULL,          -- the baseline window's days (YYYY-MM-DD)
        window_to       TEXT NOT NULL,
        timezone        TEXT NOT NULL,
        baseline        TEXT NOT NULL,          -- canonical decimal text
        target          TEXT NOT NULL,
        computed_at     TEXT NOT NULL,
        PRIMARY KEY (key_result, period_from, baseline_window, change)
    );
    "#,
    // 9: window-limited KPI loads (store/loaders.rs) read a window's counted orders from this
    // covering index, in creation order, without visiting the table (whose key, the platform
    // id, does not follow creation time: one random page per order).
    r#"
    CREATE INDEX orders_counted_by_created
        ON orders(store_id, created_at, platform_id, items_gross, discounts, total, refunded,
                  refunded_items, platform_customer_id, email_hash)
        WHERE counted = 1 AND deleted = 0;
    "#,
    // 10: per-customer facts kept by the store (store/customer_facts.rs), so a window-limited
    // load reads one row per customer instead of every order of each. Triggers list the
    // emails and ids a write to `orders` touches (old and new values) in
    // `customer_facts_dirty`; every transaction that writes orders recomputes them before it
    // commits. Backfilled from the orders by `customer_facts::backfill` in this migration's
    // transaction.
    r#"
    CREATE TABLE customer_email_facts (
        store_id        INTEGER NOT NULL,
        email_hash      TEXT NOT NULL,          -- trimmed, as the KPIs read it
        owner_id        TEXT,                   -- smallest id (kpi::smaller_id) on a live order with the email
        guest_first_at  TEXT,                   -- first counted live order with the email and no id
        PRIMARY KEY (store_id, email_hash)
    ) WITHOUT ROWID;
    CREATE INDEX customer_email_facts_by_owner
        ON customer_email_facts(store_id, owner_id, guest_first_at) WHERE owner_id IS NOT NULL;
    CREATE TABLE customer_id_facts (
        store_id        INTEGER NOT NULL,
        customer_id     TEXT NOT NULL,          -- trimmed
        first_at        TEXT NOT NULL,          -- first counted live order, owned guest orders included
        PRIMARY KEY (store_id, customer_id)
    ) WITHOUT ROWID;
    -- Repeats allowed: a trigger's INSERT OR IGNORE would take the conflict policy of the
    -- statement that fired it (an upsert's ABORT), so keys are listed plainly.
    CREATE TABLE customer_facts_dirty (
        store_id        INTEGER NOT NULL,
        kind            INTEGER NOT NULL,       -- 0: email_hash, 1: platform_customer_id
        key             TEXT NOT NULL           -- as stored in orders
    );
    CREATE INDEX customer_facts_dirty_by_store ON customer_facts_dirty(store_id);
    CREATE TRIGGER orders_customer_facts_insert AFTER INSERT ON orders BEGIN
        INSERT INTO customer_facts_dirty
            SELECT new.store_id, 0, new.email_hash WHERE new.email_hash IS NOT NULL;
        INSERT INTO customer_facts_dirty
            SELECT new.store_id, 1, new.platform_customer_id WHERE new.platform_customer_id IS NOT NULL;
    END;
    CREATE TRIGGER orders_customer_facts_update
        AFTER UPDATE OF store_id, created_at, counted, deleted, platform_customer_id, email_hash ON orders
        WHEN old.store_id IS NOT new.store_id OR old.created_at IS NOT new.created_at
          OR old.counted IS NOT new.counted OR old.deleted IS NOT new.deleted
          OR old.platform_customer_id IS NOT new.platform_customer_id
          OR old.email_hash IS NOT new.email_hash
    BEGIN
        INSERT INTO customer_facts_dirty
            SELECT old.store_id, 0, old.email_hash WHERE old.email_hash IS NOT NULL;
        INSERT INTO customer_facts_dirty
            SELECT old.store_id, 1, old.platform_customer_id WHERE old.platform_customer_id IS NOT NULL;
        INSERT INTO customer_facts_dirty
            SELECT new.store_id, 0, new.email_hash WHERE new.email_hash IS NOT NULL;
        INSERT INTO customer_facts_dirty
            SELECT new.store_id, 1, new.platform_customer_id WHERE new.platform_customer_id IS NOT NULL;
    END;
    CREATE TRIGGER orders_customer_facts_delete AFTER DELETE ON orders BEGIN
        INSERT INTO customer_facts_dirty
            SELECT old.store_id, 0, old.email_hash WHERE old.email_hash IS NOT NULL;
        INSERT INTO customer_facts_dirty
            SELECT old.store_id, 1, old.platform_customer_id WHERE old.platform_customer_id IS NOT NULL;
    END;
    "#,
];

/// The version whose migration creates the customer facts (filled in Rust, same transaction).
const CUSTOMER_FACTS_VERSION: usize = 10;

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Tables every okrsync database has (migration 1).
const OWN_TABLES: &[&str] = &["meta", "stores", "orders", "sync_runs"];

/// Refuses a file okrsync did not create, reading it only: an empty or new database, or one
/// with okrsync's schema, passes. Runs before anything changes the file (its mode, its
/// journal, its schema), so a database pointed at by mistake is left exactly as it was.
pub fn check_ours(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // One read transaction: the version and the tables from one snapshot, even while another
    // process is creating the database.
    let read = || -> Result<(i64, Vec<String>), rusqlite::Error> {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables = tx
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name",
            )?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((version, tables))
    };
    let (version, tables) = match retry_busy(read) {
        Ok(v) => v,
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(StoreError::NotADatabase {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if version == 0 && tables.is_empty() {
        return Ok(());
    }
    if version > 0 && OWN_TABLES.iter().all(|t| tables.iter().any(|n| n == t)) {
        return Ok(());
    }
    const SHOWN: usize = 6;
    let mut list = tables
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if tables.len() > SHOWN {
        list += &format!(" and {} more", tables.len() - SHOWN);
    }
    if list.is_empty() {
        list = format!("none, schema version {version}");
    }
    Err(StoreError::Foreign {
        path: path.to_path_buf(),
        tables: list,
    })
}

/// Applies every migration newer than the database's version, in one `IMMEDIATE`
/// transaction: several processes opening a new database at once apply them once (the others
/// wait for the write lock, then find the schema current).
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version = |c: &Connection| -> Result<usize, rusqlite::Error> {
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    };
    // Up to date: no write lock needed (a reader never waits on a writing daemon).
    if retry_busy(|| version(conn))? == MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Schema(format!(
            "database schema version {current} is newer than this okrsync understands ({}); upgrade okrsync",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        // The error without the migration's SQL (rusqlite would quote all of it).
        tx.execute_batch(sql).map_err(|e| {
            let detail = match &e {
                rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
                other => other.to_string(),
            };
            StoreError::Schema(format!(
                "applying migration {} failed: {detail}; nothing was changed",
                i + 1
            ))
        })?;
        if i + 1 == CUSTOMER_FACTS_VERSION {
            let started = std::time::Instant::now();
            super::customer_facts::backfill(&tx)?;
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "filled the customer facts from the orders"
            );
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    // A migration after 10 that writes orders lists its keys like any write: fold them in.
    super::customer_facts::flush(&tx)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_10_fills_the_customer_facts_from_the_orders() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..9] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        conn.execute_batch(
            "INSERT INTO stores (id, name, platform) VALUES (1, 'main', 'woocommerce');",
        )
        .unwrap();
        let put = |conn: &Connection,
                   id: &str,
                   at: &str,
                   counted: bool,
                   deleted: bool,
                   cust: Option<&str>,
                   email: &str| {
            conn.execute(
                "INSERT INTO orders (store_id, platform_id, number, created_at, modified_at, status,
                    counted, currency, items_gross, discounts, shipping, tax, total, refunded,
                    customer_key, platform_customer_id, email_hash, deleted, synced_at)
                 VALUES (1, ?1, ?1, ?2, ?2, 's', ?3, 'EUR', '1', '0', '0', '0', '1', '0', 'k', ?4, ?5, ?6, ?2)",
                rusqlite::params![id, at, counted, cust, email, deleted],
            )
            .unwrap();
        };
        // "e" is on 10 (counted) and 9 (cancelled): 9 owns it ("9" < "10" as numbers); a
        // deleted order would give it to 1. Its first guest order is 9's first order.
        put(
            &conn,
            "1",
            "2025-05-01T00:00:00Z",
            true,
            false,
            Some("10"),
            "e",
        );
        put(
            &conn,
            "2",
            "2025-04-01T00:00:00Z",
            false,
            false,
            Some("9"),
            "e",
        );
        put(&conn, "3", "2025-03-01T00:00:00Z", true, false, None, "e");
        put(
            &conn,
            "4",
            "2025-06-01T00:00:00Z",
            true,
            false,
            Some(" "),
            "e",
        );
        put(
            &conn,
            "5",
            "2024-01-01T00:00:00Z",
            true,
            true,
            Some("1"),
            "e",
        );
        // A guest of their own, whose cancelled order is not a first order.
        put(&conn, "6", "2025-01-01T00:00:00Z", false, false, None, "g");
        put(&conn, "7", "2025-02-01T00:00:00Z", true, false, None, "g");
        migrate(&mut conn).unwrap();
        let emails: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare(
                "SELECT email_hash, owner_id, guest_first_at FROM customer_email_facts ORDER BY 1",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            emails,
            vec![
                ("e".into(), s("9"), s("2025-03-01T00:00:00Z")),
                ("g".into(), None, s("2025-02-01T00:00:00Z")),
            ]
        );
        let ids: Vec<(String, String)> = conn
            .prepare("SELECT customer_id, first_at FROM customer_id_facts ORDER BY 1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            ids,
            vec![
                ("10".into(), "2025-05-01T00:00:00Z".into()),
                ("9".into(), "2025-03-01T00:00:00Z".into()),
            ]
        );
        assert_eq!(
            super::super::customer_facts::mismatches(&conn).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn migration_7_keeps_every_outbox_entry_and_attempt_and_their_link() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO checkins (id, key_result, kpi, value, value_kind, window_from, window_to, timezone, at)
                 VALUES (3, 'kr', 'orders', '7', 'count', '2026-01-01', '2026-01-30', 'UTC', '2026-01-30T00:00:00Z');
             INSERT INTO outbox (id, key_result, checkin_id, sink, idempotency_key, body, state, attempts, next_attempt_at, created_at)
                 VALUES (11, 'kr', 3, 'hook', 'okrsync-k', '{}', 'pending', 2, '2026-01-30T00:01:00Z', '2026-01-30T00:00:00Z');
             INSERT INTO outbox_attempts (id, outbox_id, at, status, error) VALUES (5, 11, '2026-01-30T00:00:30Z', 500, 'boom');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row: (i64, Option<i64>, Option<i64>, i64, String) = conn
            .query_row(
                "SELECT id, checkin_id, digest_id, attempts, idempotency_key FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (11, Some(3), None, 2, "okrsync-k".to_string()));
        let attempt: (i64, i64) = conn
            .query_row("SELECT id, outbox_id FROM outbox_attempts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(attempt, (5, 11));
        // The attempts still point at the outbox (renamed, not a dangling `outbox_v7`).
        let fk: String = conn
            .query_row("PRAGMA foreign_key_list(outbox_attempts)", [], |r| r.get(2))
            .unwrap();
        assert_eq!(fk, "outbox");
        assert!(
            conn.execute(
                "INSERT INTO outbox_attempts (outbox_id, at) VALUES (999, 'x')",
                []
            )
            .is_err(),
            "the foreign key is enforced"
        );
        // An entry is a check-in's or a digest's, never both or neither.
        assert!(
            conn.execute(
                "INSERT INTO outbox (key_result, sink, idempotency_key, body, next_attempt_at, created_at)
                 VALUES ('kr', 'hook', 'k2', '{}', 'x', 'x')",
                []
            )
            .is_err()
        );
    }
}
