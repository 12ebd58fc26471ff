//! Shopify source against the fake Admin GraphQL shop over real HTTP: equivalence with the
//! same data served as WooCommerce, hand-computed KPIs, THROTTLED, bulk kill-and-resume,
//! test/cancelled orders, tax-inclusive prices, secrets, and `check --online`.

use std::collections::HashMap;
use std::path::Path;

use okrsync::config::{self, Settings, StoreSelector};
use okrsync::daemon::keyresults::{self, Loaded};
use okrsync::daemon::sync::{SyncJob, SyncReport, sync_store};
use okrsync::daemon::{Clock, Shutdown, ShutdownTrigger};
use okrsync::kpi::{KpiId, Value, WindowSpec};
use okrsync::sources::{Progress, QuietProgress};
use okrsync::store::Store;
use okrsync_sim::{NewOrder, ShopFault, ShopFaultKind, ShopState, SimShopify, SimState};

use crate::helpers::{Harness, at, dec, dump, empty_state, write_private};

pub const TOKEN: &str = "shpat_test_0123456789abcdef";

struct Shop {
    sim: SimShopify,
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    settings: Settings,
    db: Store,
    /// The store's job, its source kept between runs as the daemon keeps it.
    job: SyncJob,
}

impl Shop {
    async fn start(state: ShopState, extra: &str) -> Shop {
        Shop::start_with_auth(state, &format!("access_token = \"{TOKEN}\""), extra).await
    }

    async fn start_with_auth(mut state: ShopState, auth: &str, extra: &str) -> Shop {
        // Shopify's standard restore rate (100/s) would make paging 600 orders take a
        // minute; tests that exercise pacing set their own bucket.
        if state.restore_rate == 100.0 {
            state.restore_rate = 100_000.0;
        }
        let sim = SimShopify::start(state).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("okrsync.toml");
        let text = format!(
            "[database]\npath = \"okrsync.db\"\n\n[[stores]]\nname = \"main\"\nplatform = \"shopify\"\nshop = \"{}\"\n{auth}\nretry_backoff_ms = 10\nmax_retries = 3\ntimeout_seconds = 5\n{extra}\n",
            sim.url()
        );
        write_private(&config_path, &text);
        let settings = config::load(&config_path, &HashMap::new()).unwrap();
        let db = Store::open(&settings.database.path).await.unwrap();
        let job = SyncJob::store(settings.stores[0].clone());
        Shop {
            sim,
            _dir: dir,
            config_path,
            settings,
            db,
            job,
        }
    }

    async fn sync_with(&self, shutdown: &Shutdown, progress: &dyn Progress) -> SyncReport {
        self.job
            .sync(
                &self.settings,
                &self.db,
                &Clock::System,
                shutdown,
                progress,
                false,
            )
            .await
            .unwrap()
    }

    async fn sync(&self) -> SyncReport {
        self.sync_with(&Shutdown::never(), &QuietProgress).await
    }

    /// `okrsync sync --full`.
    async fn sync_full(&self) -> SyncReport {
        self.job
            .sync(
                &self.settings,
                &self.db,
                &Clock::System,
                &Shutdown::never(),
                &QuietProgress,
                true,
            )
            .await
            .unwrap()
    }

    /// The stored status and modification time of an order.
    fn stored(&self, id: u64) -> (String, String) {
        rusqlite::Connection::open(&self.settings.database.path)
            .unwrap()
            .query_row(
                "SELECT status, modified_at FROM orders WHERE platform_id LIKE '%/' || ?1",
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    async fn kpi(&self, id: KpiId, window: &str) -> Option<Value> {
        kpi_of(&self.settings, &self.db, id, window).await
    }
}

async fn kpi_of(settings: &Settings, db: &Store, id: KpiId, window: &str) -> Option<Value> {
    let loaded = Loaded::load(settings, db, true).await.unwrap();
    let window: WindowSpec = window.parse().unwrap();
    let report = keyresults::kpi_report(
        &loaded,
        &StoreSelector::Named("main".into()),
        &window,
        at(2026, 3, 31, 12, 0),
    )
    .unwrap();
    report
        .values
        .into_iter()
        .find(|(k, _)| *k == id)
        .and_then(|(_, v)| v.unwrap().value)
}

/// A small dataset: registered and guest customers, a coupon, shipping, a partial line
/// refund, an amount-only refund, and a cancelled order (which counts on neither platform).
fn dataset() -> SimState {
    let mut st = empty_state();
    st.now_override = Some(at(2026, 3, 10, 12, 0));
    let a = st.add_order(
        NewOrder::new("completed", at(2026, 3, 2, 10, 0), "ann@example.com")
            .customer(5)
            .line(11, "MUG", "Mug", 2, dec("15.00"))
            .line(12, "TEE", "Tee", 1, dec("25.00"))
            .coupon("TEN", dec("10.00"))
            .shipping(dec("4.90")),
    );
    st.add_order(
        NewOrder::new("processing", at(2026, 3, 3, 9, 0), "Bob@Example.com").line(
            13,
            "CAP",
            "Cap",
            1,
            dec("20.00"),
        ),
    );
    let c = st.add_order(
        NewOrder::new("completed", at(2026, 3, 4, 15, 30), "ann@example.com")
            .customer(5)
            .line(12, "TEE", "Tee", 3, dec("25.00")),
    );
    st.add_order(
        NewOrder::new("cancelled", at(2026, 3, 5, 8, 0), "carl@example.com").line(
            11,
            "MUG",
            "Mug",
            1,
            dec("15.00"),
        ),
    );
    st.now_override = Some(at(2026, 3, 12, 12, 0));
    let first_line = st.orders[&c].lines[0].id;
    st.refund(c, &[(first_line, 1)], dec("0"));
    st.refund(a, &[], dec("5.00"));
    st.now_override = None;
    st
}

fn normalized(db_path: &Path) -> Vec<String> {
    // Shopify ids are GIDs, WooCommerce ids numbers; statuses are platform words.
    dump(db_path)
        .into_iter()
        .map(|row| {
            let mut out = String::new();
            let mut rest = row.as_str();
            while let Some(i) = rest.find("gid://shopify/") {
                out.push_str(&rest[..i]);
                let tail = &rest[i + "gid://shopify/".len()..];
                rest = tail.find('/').map(|j| &tail[j + 1..]).unwrap_or("");
            }
            out.push_str(rest);
            let mut out = out.replace("Text(\"0.00\")", "Text(\"0\")");
            for status in ["completed", "processing", "paid", "partially_refunded"] {
                out = out.replace(&format!("Text(\"{status}\")"), "Text(status)");
            }
            out
        })
        .collect()
}

const KPIS: [KpiId; 9] = [
    KpiId::Orders,
    KpiId::GrossSales,
    KpiId::Discounts,
    KpiId::Returns,
    KpiId::NetSales,
    KpiId::TotalSales,
    KpiId::AverageOrderValue,
    KpiId::RepeatPurchaseRate,
    KpiId::RefundRate,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_rows_and_kpis_as_woocommerce_and_hand_computed() {
    let woo = Harness::start(dataset()).await;
    assert_eq!(woo.sync().await.status, "ok");
    let shop = Shop::start(ShopState::new(dataset(), TOKEN), "").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(
        normalized(&shop.settings.database.path),
        normalized(&woo.settings.database.path)
    );
    let window = "2026-03-01..2026-03-31";
    for id in KPIS {
        let w = woo.kpi(id, window, at(2026, 3, 31, 12, 0)).await;
        let s = shop.kpi(id, window).await;
        assert_eq!(s, w, "{id:?}");
    }
    // By hand: counted orders a (30+25, 10 off), b (20), c (75); cancelled d not counted.
    assert_eq!(shop.kpi(KpiId::Orders, window).await, Some(Value::Count(3)));
    assert_eq!(
        shop.kpi(KpiId::GrossSales, window).await,
        Some(Value::Money(dec("150.00")))
    );
    assert_eq!(
        shop.kpi(KpiId::Discounts, window).await,
        Some(Value::Money(dec("10.00")))
    );
    // Returns: one Tee from c (25.00 excl. tax); the 5.00 amount-only refund is not items.
    assert_eq!(
        shop.kpi(KpiId::Returns, window).await,
        Some(Value::Money(dec("25.00")))
    );
    assert_eq!(
        shop.kpi(KpiId::NetSales, window).await,
        Some(Value::Money(dec("115.00")))
    );
    // Ann has 2 orders, Bob 1: one of two customers repeats.
    assert_eq!(
        shop.kpi(KpiId::RepeatPurchaseRate, window).await,
        Some(Value::Rate(dec("0.5")))
    );

    // Incremental: a new order and a refund arrive; a second sync picks them up, and the
    // result equals a fresh full read of the same data.
    for (st_owner, is_shop) in [(0, true), (1, false)] {
        let _ = st_owner;
        let add = |st: &mut SimState| {
            let id = st.add_order(
                NewOrder::new("completed", at(2026, 3, 20, 10, 0), "dee@example.com").line(
                    13,
                    "CAP",
                    "Cap",
                    2,
                    dec("20.00"),
                ),
            );
            let l = st.orders[&id].lines[0].id;
            st.refund(id, &[(l, 1)], dec("0"));
        };
        if is_shop {
            shop.sim.with_state(|s| add(&mut s.data));
        } else {
            woo.sim.with_state(add);
        }
    }
    assert_eq!(shop.sync().await.status, "ok");
    assert_eq!(woo.sync().await.status, "ok");
    assert_eq!(
        normalized(&shop.settings.database.path),
        normalized(&woo.settings.database.path)
    );
    assert_eq!(shop.kpi(KpiId::Orders, window).await, Some(Value::Count(4)));
    for id in KPIS {
        assert_eq!(
            shop.kpi(id, window).await,
            woo.kpi(id, window, at(2026, 3, 31, 12, 0)).await,
            "{id:?} after the incremental sync"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_answers_are_waited_out() {
    let shop = Shop::start(ShopState::new(dataset(), TOKEN), "").await;
    shop.sim.inject(ShopFault {
        operation: "Orders".into(),
        kind: ShopFaultKind::Throttled,
        times: 3,
    });
    shop.sim.inject(ShopFault {
        operation: "ShopAndScopes".into(),
        kind: ShopFaultKind::Status(503),
        times: 1,
    });
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert!(r.summary.retries >= 4, "{:?}", r.summary);
    assert_eq!(
        shop.kpi(KpiId::Orders, "2026-03-01..2026-03-31").await,
        Some(Value::Count(3))
    );
    let orders = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "Orders")
        .count();
    assert!(orders >= 4, "the throttled query was retried: {orders}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bucket_is_paced_not_failed() {
    let mut st = ShopState::new(SimState::generate(7, at(2026, 3, 30, 0, 0), 10, 6), TOKEN);
    // Room for one orders page at a time, refilled quickly.
    st.bucket_max = 1000.0;
    st.restore_rate = 4000.0;
    let shop = Shop::start(st, "").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    // Pacing, not THROTTLED answers waited out, kept the run going: no retries at all.
    assert_eq!(r.summary.retries, 0, "THROTTLED answers were retried");
    assert!(
        shop.sim.requests().len() > 10,
        "several pages were needed for the bucket to matter"
    );
}

struct StopAfterFirstBatch(ShutdownTrigger);

impl Progress for StopAfterFirstBatch {
    fn update(&self, _: &str, stream: &str, _: u64, _: Option<u64>) {
        if stream == "orders_bulk" {
            self.0.trigger();
        }
    }
    fn finish(&self, _: &str, _: &str, _: u64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_bulk_backfill_resumes_without_loss_or_duplicates() {
    let data = SimState::generate(3, at(2026, 3, 30, 0, 0), 40, 20);
    let shop = Shop::start(ShopState::new(data.clone(), TOKEN), "bulk_threshold = 100").await;
    let visible = shop.sim.with_state(|s| {
        s.data
            .orders
            .values()
            .filter(|o| {
                !matches!(
                    o.status.as_str(),
                    "pending" | "failed" | "checkout-draft" | "trash"
                )
            })
            .count()
    });
    assert!(visible > 2 * 250, "need several batches: {visible}");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let r = shop
        .sync_with(&shutdown, &StopAfterFirstBatch(trigger))
        .await;
    assert_eq!(r.status, "partial", "{:?}", r.summary);
    let stored = count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders");
    assert_eq!(stored, 250, "one batch committed before the stop");

    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    let runs = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "BulkRun")
        .count();
    assert_eq!(runs, 1, "the resumed run reused the same bulk operation");
    assert_eq!(
        count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders"),
        visible as i64
    );
    assert_eq!(
        count(
            &shop.settings.database.path,
            "SELECT COUNT(DISTINCT platform_id) FROM orders"
        ),
        visible as i64
    );
    // The same data read by paging (no bulk) gives identical rows.
    let paged = Shop::start(ShopState::new(data, TOKEN), "bulk_threshold = 1000000").await;
    assert_eq!(paged.sync().await.status, "ok");
    assert_eq!(
        dump(&shop.settings.database.path),
        dump(&paged.settings.database.path)
    );
    assert!(
        !paged
            .sim
            .requests()
            .iter()
            .any(|q| q.operation == "BulkRun")
    );
}

fn bulk_runs(shop: &Shop) -> usize {
    shop.sim
        .requests()
        .iter()
        .filter(|q| q.operation == "BulkRun")
        .count()
}

fn visible_orders(shop: &Shop) -> i64 {
    shop.sim.with_state(|s| {
        s.data
            .orders
            .values()
            .filter(|o| {
                !matches!(
                    o.status.as_str(),
                    "pending" | "failed" | "checkout-draft" | "trash"
                )
            })
            .count() as i64
    })
}

/// A bulk operation that ends FAILED is retried once with a new operation in the same run;
/// when that fails too the run fails, says so truthfully, and the next run starts afresh
/// instead of waiting on the failed operation forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_bulk_operation_is_replaced_not_stuck() {
    let data = SimState::generate(3, at(2026, 3, 30, 0, 0), 10, 20);
    let mut st = ShopState::new(data, TOKEN);
    st.bulk_fail = true;
    let shop = Shop::start(st, "bulk_threshold = 10").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "failed");
    let err = r.summary.error.clone().unwrap_or_default();
    assert!(
        err.contains("FAILED") && err.contains("next run starts a new bulk operation"),
        "{err}"
    );
    assert_eq!(bulk_runs(&shop), 2, "one new operation within the run");
    // The saved bulk position was cleared.
    let orders_cursor = "SELECT COUNT(*) FROM cursors WHERE stream = 'orders'";
    assert_eq!(count(&shop.settings.database.path, orders_cursor), 0);
    // A position saved for the operation that ended FAILED (as a run killed while it
    // failed leaves it) is not resumed: a new operation starts at once.
    rusqlite::Connection::open(&shop.settings.database.path)
        .unwrap()
        .execute(
            "INSERT INTO cursors (store_id, stream, value, updated_at) SELECT id, 'orders', ?1, '2026-03-30T00:00:00Z' FROM stores",
            [r#"{"mode":"bulk","operation":"gid://shopify/BulkOperation/2","started_at":"2026-03-30T00:00:00Z","done":0}"#],
        )
        .unwrap();
    assert_eq!(count(&shop.settings.database.path, orders_cursor), 1);
    shop.sim.with_state(|s| s.bulk_fail = false);
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(bulk_runs(&shop), 3);
    assert_eq!(
        count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders"),
        visible_orders(&shop)
    );
}

/// A killed backfill resumed after the result expired (url null, objectCount > 0) starts a
/// new operation instead of treating the result as empty and moving on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_resume_after_result_expiry_loses_nothing() {
    let data = SimState::generate(3, at(2026, 3, 30, 0, 0), 40, 20);
    let shop = Shop::start(ShopState::new(data, TOKEN), "bulk_threshold = 100").await;
    let visible = visible_orders(&shop);
    assert!(visible > 2 * 250, "need several batches: {visible}");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let r = shop
        .sync_with(&shutdown, &StopAfterFirstBatch(trigger))
        .await;
    assert_eq!(r.status, "partial", "{:?}", r.summary);
    shop.sim.with_state(|s| s.expire_bulk_results());
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(
        bulk_runs(&shop),
        2,
        "a new operation replaced the expired one"
    );
    assert_eq!(
        count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders"),
        visible
    );
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_orders_and_tax_inclusive_prices() {
    let mut st = empty_state();
    st.now_override = Some(at(2026, 3, 10, 12, 0));
    let mut incl = NewOrder::new("completed", at(2026, 3, 2, 10, 0), "x@example.com")
        .line(11, "MUG", "Mug", 2, dec("18.00"))
        .coupon("SIX", dec("5.00"));
    incl.prices_include_tax = true;
    st.add_order(incl);
    let t = st.add_order(
        NewOrder::new("completed", at(2026, 3, 3, 10, 0), "t@example.com").line(
            12,
            "TEE",
            "Tee",
            1,
            dec("99.00"),
        ),
    );
    let mut shop_state = ShopState::new(st, TOKEN);
    shop_state.test_orders.insert(t);
    let shop = Shop::start(shop_state, "").await;
    assert_eq!(shop.sync().await.status, "ok");
    let w = "2026-03-01..2026-03-31";
    // 2 × 18.00 incl. 20% tax = 30.00 excl. tax; the test order does not count.
    assert_eq!(shop.kpi(KpiId::Orders, w).await, Some(Value::Count(1)));
    assert_eq!(
        shop.kpi(KpiId::GrossSales, w).await,
        Some(Value::Money(dec("30.00")))
    );
    assert_eq!(
        shop.kpi(KpiId::Discounts, w).await,
        Some(Value::Money(dec("5.00")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_checkouts_deleted_orders_and_missing_access() {
    let mut st = dataset();
    st.add_order(
        NewOrder::new("pending", at(2026, 3, 6, 10, 0), "p@example.com").line(
            11,
            "MUG",
            "Mug",
            1,
            dec("15.00"),
        ),
    );
    let shop = Shop::start(ShopState::new(st, TOKEN), "").await;
    assert_eq!(shop.sync().await.status, "ok");
    let w = "2026-03-01..2026-03-31";
    // 1 abandoned checkout / (1 + 3 orders).
    assert_eq!(
        shop.kpi(KpiId::CartAbandonmentRate, w).await,
        Some(Value::Rate(dec("0.25")))
    );
    // An order deleted from the shop disappears after the (first-run) reconciliation of a
    // fresh database; with a schedule that is always due, also on later runs.
    let victim = shop
        .sim
        .with_state(|s| *s.data.orders.keys().next().unwrap());
    shop.sim.with_state(|s| s.deleted.insert(victim));
    let due = Shop::start(
        ShopState::new(shop.sim.with_state(|s| s.data.clone()), TOKEN),
        "reconcile_schedule = \"* * * * * *\"",
    )
    .await;
    assert_eq!(due.sync().await.status, "ok");
    assert_eq!(due.kpi(KpiId::Orders, w).await, Some(Value::Count(3)));
    due.sim.with_state(|s| s.deleted.insert(victim));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(due.sync().await.status, "ok");
    assert_eq!(due.kpi(KpiId::Orders, w).await, Some(Value::Count(2)));

    let mut denied = ShopState::new(dataset(), TOKEN);
    denied.abandoned_access = false;
    denied.scopes.retain(|s| s != "read_all_orders");
    let shop = Shop::start(denied, "").await;
    assert_eq!(shop.sync().await.status, "ok");
    assert_eq!(shop.kpi(KpiId::CartAbandonmentRate, w).await, None);
    let out = run_bin(&shop.config_path, &["check", "--online"]).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cannot see orders older than 60 days"),
        "{text}"
    );
    assert!(text.contains("read_all_orders"), "{text}");
    assert!(text.contains("abandoned checkouts not readable"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

async fn run_bin(config: &Path, args: &[&str]) -> std::process::Output {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::helpers::run_bin_with(&config, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_never_leaks() {
    let shop = Shop::start(ShopState::new(dataset(), TOKEN), "").await;
    // A failing run (server errors) and a successful one, through the real binary.
    shop.sim.inject(ShopFault {
        operation: String::new(),
        kind: ShopFaultKind::Status(500),
        times: 4,
    });
    let failed = run_bin(&shop.config_path, &["sync"]).await;
    let ok = run_bin(&shop.config_path, &["sync"]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for out in [&failed, &ok] {
        for text in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(text).contains(TOKEN));
        }
    }
    let db = std::fs::read(&shop.settings.database.path).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(TOKEN));
    let logs = run_bin(&shop.config_path, &["logs"]).await;
    assert!(!String::from_utf8_lossy(&logs.stdout).contains(TOKEN));
    // Every GraphQL request carried the token in the header, and a wrong token is refused
    // with an error that names the problem but not the token.
    assert!(
        shop.sim
            .requests()
            .iter()
            .filter(|r| !r.operation.is_empty())
            .all(|r| r.token.as_deref() == Some(TOKEN))
    );
    shop.sim
        .with_state(|s| s.access_token = "shpat_other".into());
    let r = shop.sync().await;
    assert_eq!(r.status, "failed");
    let err = r.summary.error.unwrap();
    assert!(err.contains("401") && !err.contains(TOKEN), "{err}");
}

/// One order with 12 lines (more than the 5 fetched with each order: follow-up
/// `OrderLines`), each refunded in its own refund (12 > the 10 refunds listed with each
/// order: follow-up `OrderRefunds`). Rows and KPIs equal the WooCommerce reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_lines_and_many_refunds_on_one_order() {
    let make = || {
        let mut st = empty_state();
        st.now_override = Some(at(2026, 3, 10, 12, 0));
        let mut o =
            NewOrder::new("completed", at(2026, 3, 2, 10, 0), "ann@example.com").customer(5);
        for i in 0..12u64 {
            o = o.line(20 + i, &format!("SKU{i}"), "Item", 1, dec("10.00"));
        }
        let id = st.add_order(o);
        let lines: Vec<u64> = st.orders[&id].lines.iter().map(|l| l.id).collect();
        st.now_override = Some(at(2026, 3, 12, 12, 0));
        for l in lines {
            st.refund(id, &[(l, 1)], dec("0"));
        }
        st.now_override = None;
        st
    };
    let woo = Harness::start(make()).await;
    assert_eq!(woo.sync().await.status, "ok");
    let shop = Shop::start(ShopState::new(make(), TOKEN), "").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    let db = &shop.settings.database.path;
    assert_eq!(count(db, "SELECT COUNT(*) FROM order_lines"), 12);
    assert_eq!(count(db, "SELECT COUNT(*) FROM refunds"), 12);
    let ops: Vec<String> = shop
        .sim
        .requests()
        .iter()
        .map(|q| q.operation.clone())
        .collect();
    assert!(ops.iter().any(|o| o == "OrderLines"), "{ops:?}");
    assert!(ops.iter().any(|o| o == "OrderRefunds"), "{ops:?}");
    assert_eq!(normalized(db), normalized(&woo.settings.database.path));
    let w = "2026-03-01..2026-03-31";
    for id in KPIS {
        let expected = woo.kpi(id, w, at(2026, 3, 31, 12, 0)).await;
        assert_eq!(shop.kpi(id, w).await, expected, "{id:?}");
    }
    assert_eq!(
        shop.kpi(KpiId::Returns, w).await,
        Some(Value::Money(dec("120.00")))
    );
}

/// Shopify's `abandonedCheckouts` also lists recovered checkouts (`completedAt` set): they
/// became orders and are not abandoned, also when the recovery happens after a first sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_checkouts_are_not_abandoned() {
    let mut st = ShopState::new(dataset(), TOKEN);
    st.abandoned.insert(9001, at(2026, 3, 6, 10, 0));
    st.abandoned.insert(9002, at(2026, 3, 7, 10, 0));
    st.recovered.insert(9001, at(2026, 3, 6, 11, 0));
    let shop = Shop::start(st, "").await;
    assert_eq!(shop.sync().await.status, "ok");
    let w = "2026-03-01..2026-03-31";
    // 1 abandoned (9002) / (1 + 3 orders); 9001 was recovered.
    assert_eq!(
        shop.kpi(KpiId::CartAbandonmentRate, w).await,
        Some(Value::Rate(dec("0.25")))
    );
    // 9002 is recovered later: the next (incremental, updated_at) sync drops it.
    let now = chrono::Utc::now();
    shop.sim.with_state(|s| s.recovered.insert(9002, now));
    assert_eq!(shop.sync().await.status, "ok");
    assert_eq!(
        shop.kpi(KpiId::CartAbandonmentRate, w).await,
        Some(Value::Rate(dec("0")))
    );
    let filters: Vec<String> = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "AbandonedCheckouts")
        .filter_map(|q| q.variables["query"].as_str().map(str::to_string))
        .collect();
    assert!(
        filters.iter().any(|f| f.starts_with("updated_at:>=")),
        "{filters:?}"
    );
}

/// Reconciliation marks nothing from a listing it cannot trust (missing pageInfo, fewer ids
/// than `ordersCount`) or when too many orders would go at once, and such a failure does not
/// fail the run whose orders were saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_never_marks_live_orders_from_a_bad_listing() {
    let deleted = "SELECT COUNT(*) FROM orders WHERE deleted = 1";
    let data = || SimState::generate(5, at(2026, 3, 30, 0, 0), 20, 20);
    let every_second = "reconcile_schedule = \"* * * * * *\"";
    let id_pages = |shop: &Shop| {
        shop.sim
            .requests()
            .iter()
            .filter(|q| q.operation == "OrderIds")
            .count()
    };
    // A listing cut short without saying so (fewer ids than ordersCount). The first sync
    // lists no ids; the schedule ticks every second, so the next sync reconciles.
    let mut st = ShopState::new(data(), TOKEN);
    st.ids_drop = 2;
    let shop = Shop::start(st, every_second).await;
    assert_eq!(shop.sync().await.status, "ok");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert!(id_pages(&shop) > 0);
    assert!(count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders") > 250);
    assert_eq!(count(&shop.settings.database.path, deleted), 0);
    // Pages without pageInfo (more than one page of ids).
    let mut st = ShopState::new(data(), TOKEN);
    st.ids_no_page_info = true;
    let shop = Shop::start(st, every_second).await;
    assert_eq!(shop.sync().await.status, "ok");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert!(id_pages(&shop) > 0);
    assert_eq!(count(&shop.settings.database.path, deleted), 0);
    // A consistent listing, but 10 % of the orders gone at once: refused.
    let shop = Shop::start(
        ShopState::new(data(), TOKEN),
        "reconcile_schedule = \"* * * * * *\"",
    )
    .await;
    assert_eq!(shop.sync().await.status, "ok");
    shop.sim.with_state(|s| {
        let ids: Vec<u64> = s.data.orders.keys().copied().collect();
        let n = ids.len() / 10;
        s.deleted.extend(ids.into_iter().take(n));
    });
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(count(&shop.settings.database.path, deleted), 0);
    // Two deletions (under the cap) are marked.
    shop.sim.with_state(|s| s.deleted.clear());
    let two: Vec<u64> = shop.sim.with_state(|s| {
        let ids: Vec<u64> = s
            .data
            .orders
            .values()
            .filter(|o| o.status == "completed")
            .map(|o| o.id)
            .take(2)
            .collect();
        s.deleted.extend(ids.iter().copied());
        ids
    });
    assert_eq!(two.len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(shop.sync().await.status, "ok");
    assert_eq!(count(&shop.settings.database.path, deleted), 2);
}

/// A Dev Dashboard app's client id and secret (no `shpat_` token in the admin) are exchanged
/// for an access token once, reused until it expires, and never appear in output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_exchanged_for_a_cached_token() {
    const SECRET: &str = "shpss_client_secret_0123456789";
    let mut st = ShopState::new(dataset(), TOKEN);
    st.client_credentials = Some(("cid_0123".into(), SECRET.into()));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    write_private(&secret_file, SECRET);
    let auth = format!(
        "client_id = \"cid_0123\"\nclient_secret_file = \"{}\"",
        secret_file.display()
    );
    let shop = Shop::start_with_auth(st, &auth, "").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(r.status, shop.sync().await.status);
    let reqs = shop.sim.requests();
    let exchanges = reqs
        .iter()
        .filter(|q| q.operation == "TokenExchange")
        .count();
    assert_eq!(
        exchanges, 1,
        "the token is cached across runs until it expires"
    );
    // The token belongs to the source that exchanged it, not to the process: a one-off sync
    // with its own source exchanges again.
    let r = sync_store(
        &shop.settings.stores[0],
        &shop.db,
        &Clock::System,
        &Shutdown::never(),
        &QuietProgress,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status, "ok");
    let exchanges = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "TokenExchange")
        .count();
    assert_eq!(exchanges, 2);
    assert!(
        reqs.iter()
            .filter(|q| !q.operation.is_empty() && q.operation != "TokenExchange")
            .all(|q| q.token.as_deref() == Some(TOKEN))
    );
    assert_eq!(
        shop.kpi(KpiId::Orders, "2026-03-01..2026-03-31").await,
        Some(Value::Count(3))
    );
    // A wrong secret: the run fails, says what to check, and never shows the secret.
    shop.sim
        .with_state(|s| s.client_credentials = Some(("cid_0123".into(), "other".into())));
    let bad = Shop::start_with_auth(
        shop.sim.with_state(|s| s.clone()),
        &format!("client_id = \"cid_0123\"\nclient_secret = \"{SECRET}\""),
        "",
    )
    .await;
    let r = bad.sync().await;
    assert_eq!(r.status, "failed");
    let err = r.summary.error.unwrap_or_default();
    assert!(err.contains("client credentials were refused"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    // Both ways at once is a configuration error.
    let both = format!("access_token = \"{TOKEN}\"\nclient_id = \"x\"\nclient_secret = \"y\"\n");
    let path = dir.path().join("both.toml");
    write_private(
        &path,
        &format!(
            "[database]\npath = \"x.db\"\n\n[[stores]]\nname = \"m\"\nplatform = \"shopify\"\nshop = \"{}\"\n{both}",
            shop.sim.url()
        ),
    );
    let e = config::load(&path, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("either access_token or client_id"), "{e}");
}

/// The bulk query okrsync sent before it split refund lines off: `refundLineItems` (a
/// connection) inside `refunds` (a list). Shopify refuses it; so must the simulator.
const OLD_BULK_QUERY: &str = "{ orders(sortKey: UPDATED_AT, query: \"updated_at:<='2026-03-30T00:00:00Z'\") { edges { node { id name createdAt updatedAt cancelledAt test taxesIncluded email displayFinancialStatus currencyCode customer { id } totalShippingPriceSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } } totalPriceSet { shopMoney { amount } } totalRefundedSet { shopMoney { amount } } refunds { id createdAt totalRefundedSet { shopMoney { amount } } refundLineItems { edges { node { id lineItem { id } quantity subtotalSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } } } } } } lineItems { edges { node { id name sku quantity product { id } originalTotalSet { shopMoney { amount } } discountAllocations { allocatedAmountSet { shopMoney { amount } } } taxLines { rate priceSet { shopMoney { amount } } } } } } } } } }";

async fn post_graphql(shop: &Shop, document: &str) -> serde_json::Value {
    let url = format!("{}/admin/api/2025-10/graphql.json", shop.sim.url());
    let body = serde_json::json!({"query": document, "variables": {}});
    okrsync::sources::http::init_tls();
    reqwest::Client::new()
        .post(url)
        .header("X-Shopify-Access-Token", TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

/// The simulator applies Shopify's bulk-query rules: the old query is refused with Shopify's
/// user error, okrsync's query is accepted, and a bulk first sync runs on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_query_passes_shopify_rules_and_the_old_one_is_refused() {
    let shop = Shop::start(ShopState::new(dataset(), TOKEN), "bulk_threshold = 1").await;
    let old = format!(
        "mutation BulkRun {{ bulkOperationRunQuery(query: {}) {{ bulkOperation {{ id status }} userErrors {{ field message code }} }} }}",
        serde_json::to_string(OLD_BULK_QUERY).unwrap()
    );
    let v = post_graphql(&shop, &old).await;
    let payload = &v["data"]["bulkOperationRunQuery"];
    assert!(payload["bulkOperation"].is_null(), "{v}");
    assert_eq!(
        payload["userErrors"][0]["message"],
        "Queries that contain a connection field within a list field are not currently supported.",
        "{v}"
    );
    assert_eq!(payload["userErrors"][0]["code"], "INVALID");

    let new = okrsync::sources::shopify::query::bulk_run("2026-03-30T00:00:00Z");
    let v = post_graphql(&shop, &new).await;
    let payload = &v["data"]["bulkOperationRunQuery"];
    assert_eq!(payload["userErrors"], serde_json::json!([]), "{v}");
    assert!(payload["bulkOperation"]["id"].is_string(), "{v}");
    // Let that operation finish, then a first sync by bulk stores every order complete.
    while post_graphql(&shop, okrsync::sources::shopify::query::BULK_STATUS).await["data"]["currentBulkOperation"]
        ["status"]
        != "COMPLETED"
    {}
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(
        bulk_runs(&shop),
        3,
        "the refused, the accepted and the sync's operation"
    );
    let db = &shop.settings.database.path;
    assert_eq!(count(db, "SELECT COUNT(*) FROM refund_lines"), 1);
    assert_eq!(
        shop.kpi(KpiId::Returns, "2026-03-01..2026-03-31").await,
        Some(Value::Money(dec("25.00")))
    );
}

/// One refund returning 7 lines: the batched follow-up reads 4 of them, the rest come from a
/// second page. After a bulk first sync the order is complete (rows equal WooCommerce's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_lines_on_more_than_one_page_are_complete_after_bulk() {
    let make = || {
        let mut st = dataset();
        st.now_override = Some(at(2026, 3, 10, 12, 0));
        let mut o = NewOrder::new("completed", at(2026, 3, 6, 10, 0), "eve@example.com");
        for i in 0..7u64 {
            o = o.line(40 + i, &format!("SKU{i}"), "Item", 1, dec("10.00"));
        }
        let id = st.add_order(o);
        let lines: Vec<(u64, u32)> = st.orders[&id].lines.iter().map(|l| (l.id, 1)).collect();
        st.now_override = Some(at(2026, 3, 12, 12, 0));
        st.refund(id, &lines, dec("0"));
        st.now_override = None;
        st
    };
    let woo = Harness::start(make()).await;
    assert_eq!(woo.sync().await.status, "ok");
    let shop = Shop::start(ShopState::new(make(), TOKEN), "bulk_threshold = 1").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(bulk_runs(&shop), 1);
    let ops: Vec<String> = shop
        .sim
        .requests()
        .iter()
        .map(|q| q.operation.clone())
        .collect();
    assert!(ops.iter().any(|o| o == "RefundLinesBatch"), "{ops:?}");
    assert!(ops.iter().any(|o| o == "RefundLines"), "{ops:?}");
    let db = &shop.settings.database.path;
    assert_eq!(count(db, "SELECT COUNT(*) FROM refund_lines"), 8);
    assert_eq!(normalized(db), normalized(&woo.settings.database.path));
    assert_eq!(
        shop.kpi(KpiId::Returns, "2026-03-01..2026-03-31").await,
        Some(Value::Money(dec("95.00")))
    );
}

/// A run stopped while the refund-line follow-ups of a bulk backfill are in flight stores
/// no order of the unfinished batch; the next run resumes on the same operation, asks only
/// for the refunds still missing, and ends with every order once and complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_refund_follow_ups_resumes_without_loss_or_duplicates() {
    let data = || {
        let mut st = SimState::generate(3, at(2026, 3, 30, 0, 0), 40, 20);
        st.now_override = Some(at(2026, 3, 30, 0, 0));
        let ids: Vec<(u64, u64)> = st
            .orders
            .values()
            .filter(|o| o.status == "completed" && o.refund_ids.is_empty())
            .map(|o| (o.id, o.lines[0].id))
            .step_by(5)
            .collect();
        for (order, line) in ids {
            st.refund(order, &[(line, 1)], dec("0"));
        }
        st.now_override = None;
        st
    };
    let mut state = ShopState::new(data(), TOKEN);
    state.latency = std::time::Duration::from_millis(100);
    let shop = Shop::start(state, "bulk_threshold = 100").await;
    let refunds = shop.sim.with_state(|s| s.data.refunds.len());
    assert!(refunds > 3 * 36, "several follow-up batches: {refunds}");
    let visible = visible_orders(&shop);
    let (trigger, shutdown) = ShutdownTrigger::new();
    let sim_requests = || {
        shop.sim
            .requests()
            .iter()
            .filter(|q| q.operation == "RefundLinesBatch")
            .count()
    };
    let finished = std::sync::atomic::AtomicBool::new(false);
    let run = async {
        let r = shop.sync_with(&shutdown, &QuietProgress).await;
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let watch = async {
        // Stop while the second follow-up is on its way (the shop answers after 100 ms).
        while sim_requests() < 2 && !finished.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        trigger.trigger();
    };
    let (r, ()) = tokio::join!(run, watch);
    assert_eq!(r.status, "partial", "{:?}", r.summary);
    let db = &shop.settings.database.path;
    let stored = count(db, "SELECT COUNT(*) FROM orders");
    assert!(stored > 0 && stored < visible, "{stored} of {visible}");
    // Every stored refund has all its lines (no order counted with part of its returns).
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT r.platform_id, (SELECT COUNT(*) FROM refund_lines l WHERE l.refund_id = r.platform_id) FROM refunds r")
        .unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!rows.is_empty());
    for (id, lines) in rows {
        let n: u64 = id.rsplit('/').next().unwrap().parse().unwrap();
        let expected = shop.sim.with_state(|s| s.data.refunds[&n].lines.len()) as i64;
        assert_eq!(lines, expected, "refund {id}");
    }
    let asked_before: usize = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "RefundLinesBatch")
        .map(|q| q.variables["ids"].as_array().map_or(0, Vec::len))
        .sum();
    let before = shop.sim.requests().len();

    shop.sim
        .with_state(|s| s.latency = std::time::Duration::ZERO);
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(bulk_runs(&shop), 1, "the same operation was resumed");
    let asked_after: usize = shop.sim.requests()[before..]
        .iter()
        .filter(|q| q.operation == "RefundLinesBatch")
        .map(|q| q.variables["ids"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(
        asked_after < refunds && asked_before + asked_after <= refunds + 2 * 36,
        "the resumed run asked again only for the unfinished batch: {asked_before} + {asked_after} of {refunds}"
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM orders"), visible);
    assert_eq!(
        count(db, "SELECT COUNT(DISTINCT platform_id) FROM orders"),
        visible
    );
    let paged = Shop::start(ShopState::new(data(), TOKEN), "bulk_threshold = 1000000").await;
    assert_eq!(paged.sync().await.status, "ok");
    assert_eq!(bulk_runs(&paged), 0);
    assert_eq!(dump(db), dump(&paged.settings.database.path));
}

/// A first sync, paged or by bulk, and `sync --full` read every order, so they stand for the
/// first reconciliation: none of them lists order ids afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_and_full_sync_make_no_id_listing() {
    for threshold in ["", "bulk_threshold = 1"] {
        let shop = Shop::start(ShopState::new(dataset(), TOKEN), threshold).await;
        let id_pages = || {
            shop.sim
                .requests()
                .iter()
                .filter(|q| q.operation == "OrderIds")
                .count()
        };
        assert_eq!(shop.sync().await.status, "ok");
        assert_eq!(
            id_pages(),
            0,
            "first sync ({threshold}) listed every id again"
        );
        let full = sync_store(
            &shop.settings.stores[0],
            &shop.db,
            &Clock::System,
            &Shutdown::never(),
            &QuietProgress,
            true,
        )
        .await
        .unwrap();
        assert_eq!(full.status, "ok");
        assert_eq!(
            id_pages(),
            0,
            "sync --full ({threshold}) listed every id again"
        );
        assert_eq!(
            shop.kpi(KpiId::Orders, "2026-03-01..2026-03-31").await,
            Some(Value::Count(3))
        );
    }
}

/// A paged first sync of about 2,000 orders on the standard bucket (2,000 points) sees
/// at most 2 % THROTTLED answers: okrsync waits for the requested cost plus a margin. The
/// shop's time runs `speed` times faster (restore rate × speed) so the test stays short.
async fn paged_sync_is_rarely_throttled(speed: f64, latency_ms: u64) {
    let data = SimState::generate(11, at(2026, 3, 30, 0, 0), 100, 21);
    let mut st = ShopState::new(data, TOKEN);
    st.bucket_max = 2000.0;
    st.restore_rate = 100.0 * speed;
    st.latency = std::time::Duration::from_millis(latency_ms);
    let shop = Shop::start(st, "bulk_threshold = 100000").await;
    let visible = visible_orders(&shop);
    assert!(visible >= 2000, "{visible}");
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(bulk_runs(&shop), 0);
    assert_eq!(
        count(&shop.settings.database.path, "SELECT COUNT(*) FROM orders"),
        visible
    );
    let requests = shop
        .sim
        .requests()
        .iter()
        .filter(|q| !q.operation.is_empty())
        .count();
    let throttled = shop.sim.with_state(|s| s.throttled) as usize;
    assert!(requests > 200, "{requests}");
    assert!(
        throttled * 50 <= requests,
        "{throttled} of {requests} requests were answered THROTTLED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_sync_on_the_standard_bucket_is_rarely_throttled() {
    paged_sync_is_rarely_throttled(200.0, 2).await;
}

/// The same at Shopify's real pace (100 points/s) and 100 ms latency: about 15 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs at the real restore rate (about 15 minutes)"]
async fn paged_sync_on_the_standard_bucket_is_rarely_throttled_in_real_time() {
    paged_sync_is_rarely_throttled(1.0, 100).await;
}

/// Shopify's requested cost can be higher than okrsync's model of it. okrsync learns the
/// requested cost Shopify reports for each query and paces by it, so only the first page
/// can be surprised: later pages are not answered THROTTLED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_follows_the_requested_cost_shopify_reports() {
    let mut st = ShopState::new(SimState::generate(7, at(2026, 3, 30, 0, 0), 10, 8), TOKEN);
    st.bucket_max = 1000.0;
    st.restore_rate = 1000.0;
    st.cost_surcharge = 70.0;
    let shop = Shop::start(st, "bulk_threshold = 100000").await;
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    let pages = shop
        .sim
        .requests()
        .iter()
        .filter(|q| q.operation == "Orders")
        .count();
    assert!(pages >= 5, "{pages}");
    let throttled = shop.sim.with_state(|s| s.throttled);
    assert!(
        throttled <= 1,
        "{throttled} THROTTLED answers over {pages} pages"
    );
}

/// A bogus future `updatedAt` does not freeze an order: a date more than a day beyond the
/// clock is not trusted, and `sync --full` takes the shop's current state as the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_future_updated_at_does_not_freeze_an_order() {
    let data = dataset();
    let (a, b) = {
        let mut ids = data.orders.keys();
        (*ids.next().unwrap(), *ids.next().unwrap())
    };
    let shop = Shop::start(ShopState::new(data, TOKEN), "").await;
    assert_eq!(shop.sync().await.status, "ok");
    shop.sim.with_state(|s| {
        s.data.now_override = None;
        s.data.set_status(a, "cancelled");
        s.data.orders.get_mut(&a).unwrap().modified = at(2099, 1, 1, 0, 0);
    });
    assert_eq!(shop.sync().await.status, "ok");
    let (status, modified) = shop.stored(a);
    assert_eq!(status, "cancelled");
    assert!(
        modified.as_str() < "2030",
        "stored at the clock: {modified}"
    );
    // The shop corrects it at a normal date: the next sync reads it.
    shop.sim.with_state(|s| s.data.set_status(a, "completed"));
    assert_eq!(shop.sync().await.status, "ok");
    assert_ne!(shop.stored(a).0, "cancelled", "the order stayed frozen");
    // Within the tolerance a date is trusted: a shop clock 6 hours ahead stamps order B, then
    // B is cancelled "earlier". An incremental run keeps the newer-looking version; a full
    // sync takes the shop's state as the truth.
    shop.sim.with_state(|s| {
        s.data.now_override = Some(chrono::Utc::now() + chrono::Duration::hours(6));
        s.data.set_status(b, "on-hold");
        s.data.now_override = None;
    });
    assert_eq!(shop.sync().await.status, "ok");
    let held = shop.stored(b).0;
    shop.sim.with_state(|s| s.data.set_status(b, "cancelled"));
    assert_eq!(shop.sync().await.status, "ok");
    assert_eq!(
        shop.stored(b).0,
        held,
        "an incremental run keeps the newer-looking version"
    );
    let r = shop.sync_full().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(shop.stored(b).0, "cancelled", "a full sync overwrites");
}

/// A sync with nothing new reads no shop facts and no scopes (read at most daily; a
/// reconciliation lists the scopes itself when it needs them): on a quiet shop it asks only
/// for the orders and the abandoned checkouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_with_nothing_new_reads_no_facts_or_scopes() {
    let now = chrono::Utc::now();
    let mut state = ShopState::generate(7, now - chrono::Duration::days(2), 20, 3);
    state.data.now_override = Some(now - chrono::Duration::days(2));
    state.access_token = TOKEN.into();
    let shop = Shop::start(state, "lookback_minutes = 0").await;
    assert_eq!(shop.sync().await.status, "ok");
    let before = shop.sim.requests().len();
    let r = shop.sync().await;
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    let ops: Vec<String> = shop.sim.requests()[before..]
        .iter()
        .map(|q| q.operation.clone())
        .collect();
    assert!(
        !ops.iter()
            .any(|o| o.contains("Shop") || o.contains("Scopes")),
        "{ops:?}"
    );
    assert_eq!(ops.first().map(String::as_str), Some("Orders"), "{ops:?}");
    assert_eq!(
        ops.last().map(String::as_str),
        Some("AbandonedCheckouts"),
        "{ops:?}"
    );
}

/// A new process right after a run that drained the cost bucket starts from the bucket status
/// the last run saved (restored at the reported rate since) and waits for the refill, instead
/// of sending a page the bucket cannot pay for and being THROTTLED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_paces_from_the_saved_bucket_status() {
    let mut state = ShopState::new(dataset(), TOKEN);
    state.restore_rate = 400.0;
    state.bucket_max = 1000.0;
    let shop = Shop::start(state, "lookback_minutes = 0").await;
    assert_eq!(shop.sync().await.status, "ok");
    let db = || rusqlite::Connection::open(&shop.settings.database.path).unwrap();
    let saved: String = db()
        .query_row(
            "SELECT value FROM cursors WHERE stream = 'shopify_bucket'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(saved.contains("\"restore_rate\":400"), "{saved}");
    // Another process spent the bucket down to 40 points just now, and said so.
    shop.sim.with_state(|s| s.set_bucket(40.0));
    let drained = serde_json::json!({
        "available": 40.0, "maximum": 1000.0, "restore_rate": 400.0,
        "at": chrono::Utc::now().to_rfc3339(),
    });
    db().execute(
        "UPDATE cursors SET value = ?1 WHERE stream = 'shopify_bucket'",
        [drained.to_string()],
    )
    .unwrap();
    let before = shop.sim.with_state(|s| s.throttled);
    // A fresh source, as a new `okrsync sync` process has.
    let r = sync_store(
        &shop.settings.stores[0],
        &shop.db,
        &Clock::System,
        &Shutdown::never(),
        &QuietProgress,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.summary.error);
    assert_eq!(shop.sim.with_state(|s| s.throttled), before, "THROTTLED");
    assert_eq!(r.summary.retries, 0);
}
