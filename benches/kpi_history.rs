//! KPIs and key results over a big stored history (issue 16): a generated database of
//! 1,000,000 orders from 300,000 customers over three years, written through the store's own
//! upsert path (`Store::commit_page`, 10,000 orders per transaction).
//!
//! ```text
//! # 1. generate the database once (minutes; prints where it is)
//! OKRSYNC_BENCH_DB=/tmp/okrsync-1m.db cargo bench --bench kpi_history
//! # 2. measure (run again; peak RSS with /usr/bin/time -v on the bench binary)
//! OKRSYNC_BENCH_DB=/tmp/okrsync-1m.db /usr/bin/time -v cargo bench --bench kpi_history
//! # the whole-history load that okrsync used before (for comparison)
//! OKRSYNC_BENCH_DB=/tmp/okrsync-1m.db OKRSYNC_BENCH_MODE=full cargo bench --bench kpi_history
//! ```
//!
//! Measured: every KPI of `kpis --window previous_quarter` (load + compute), and the 50
//! configured key results re-evaluated as after a sync (load + compute + check-ins).
//! `OKRSYNC_BENCH_ORDERS` / `OKRSYNC_BENCH_CUSTOMERS` change the size. Without `--bench`
//! (e.g. `cargo test --benches`) it runs a tiny size in a temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use okrsync::config::{self, StoreSelector};
use okrsync::daemon::Clock;
use okrsync::daemon::keyresults::{self, Loaded};
use okrsync::domain::{
    CustomerRef, Order, OrderLine, Platform, Refund, RefundLine, StoreInfo, StoreTz,
};
use okrsync::kpi::WindowSpec;
use okrsync::store::{Page, Store};
use rust_decimal::Decimal;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 14, 10, 0, 0).unwrap()
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux; 10 ms
/// ticks): the machine may be shared, so wall time alone can mislead.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn money(cents: u64) -> Decimal {
    Decimal::new(cents as i64, 2)
}

/// Writes `orders` orders from `customers` customers (75 % registered, the rest guests, a few
/// of them with a registered customer's email, 3 % anonymous) over the three years before
/// `now()`: 10 % not counted, 5 % refunded, one or two lines each.
async fn generate(db: &Store, orders: u64, customers: u64) {
    let id = db
        .ensure_store("big", Platform::WooCommerce, "big.example")
        .await
        .unwrap();
    let info = StoreInfo {
        timezone: StoreTz::parse("Europe/Paris").unwrap(),
        currency: "EUR".into(),
    };
    db.update_store_info(id, info, "", now()).await.unwrap();
    let registered = customers * 3 / 4;
    let guests = customers - registered;
    let span = 3 * 365 * 86_400;
    let start = now() - chrono::Duration::seconds(span as i64);
    let mut g = Lcg(16);
    let t = Instant::now();
    let mut n = 0;
    while n < orders {
        let mut page = Page::default();
        for _ in 0..10_000.min(orders - n) {
            let oid = (n + 1).to_string();
            let created = start + chrono::Duration::seconds((n * span / orders) as i64);
            let customer = match g.below(100) {
                0..=74 => {
                    let c = 1 + g.below(registered);
                    CustomerRef {
                        platform_id: Some(c.to_string()),
                        email: Some(format!("c{c}@example.com")),
                    }
                }
                75..=79 => CustomerRef {
                    platform_id: None,
                    email: Some(format!("c{}@example.com", 1 + g.below(registered))),
                },
                80..=96 => CustomerRef {
                    platform_id: None,
                    email: Some(format!("guest{}@example.com", g.below(guests))),
                },
                _ => CustomerRef::default(),
            };
            let mut lines = Vec::new();
            let mut gross = 0;
            for l in 0..1 + g.below(2) {
                let price = 500 + g.below(5000);
                let product = format!("P{}", 1 + g.below(200));
                lines.push(OrderLine {
                    line_id: format!("{oid}-{l}"),
                    sku: Some(format!("SKU-{product}")),
                    product_id: Some(product),
                    name: "item".into(),
                    quantity: Decimal::ONE,
                    subtotal: money(price),
                    total: money(price),
                    tax: money(price / 5),
                });
                gross += price;
            }
            let counted = g.below(10) != 0;
            let mut refund_ids = Vec::new();
            let mut refunded = 0;
            if counted && g.below(20) == 0 {
                let rid = format!("r{oid}");
                let amount = lines[0].total;
                refunded = (amount * Decimal::from(100))
                    .round()
                    .try_into()
                    .unwrap_or(0u64);
                page.refunds.push(Refund {
                    platform_id: rid.clone(),
                    order_id: oid.clone(),
                    created_at: (created + chrono::Duration::days(g.below(60) as i64)).min(now()),
                    amount,
                    lines: vec![RefundLine {
                        order_line_id: lines[0].line_id.clone(),
                        quantity: Decimal::ONE,
                        amount,
                    }],
                });
                refund_ids.push(rid);
            }
            page.orders.push(Order {
                platform_id: oid.clone(),
                number: oid,
                created_at: created,
                modified_at: created,
                status: if counted { "completed" } else { "cancelled" }.into(),
                counted,
                currency: "EUR".into(),
                items_gross: money(gross),
                discounts: Decimal::ZERO,
                shipping: Decimal::ZERO,
                tax: money(gross / 5),
                total: money(gross + gross / 5),
                refunded: money(refunded),
                customer,
                test: false,
                trashed: false,
                lines,
                refund_ids,
                refunds: None,
            });
            n += 1;
        }
        db.commit_page(id, page, now()).await.unwrap();
        if n % 100_000 == 0 {
            println!("  {n} orders written ({:?})", t.elapsed());
        }
    }
    db.mark_complete(id, now()).await.unwrap();
    println!("generated {orders} orders in {:?}", t.elapsed());
}

/// 50 key results: ten KPIs (two of them product KPIs) × five windows.
fn config(db: &Path) -> String {
    let mut s = format!(
        "[database]\npath = \"{}\"\n\n[[stores]]\nname = \"big\"\nplatform = \"woocommerce\"\nurl = \"https://big.example\"\nconsumer_key = \"ck_bench\"\nconsumer_secret = \"cs_bench\"\n",
        db.display()
    );
    let kpis = [
        ("orders", None),
        ("net_sales", None),
        ("average_order_value", None),
        ("repeat_purchase_rate", None),
        ("returning_customer_rate", None),
        ("new_customers", None),
        ("refund_rate", None),
        ("total_sales", None),
        ("product_net_sales", Some("P7")),
        ("product_units", Some("SKU-P9")),
    ];
    let windows = [
        "quarter_to_date",
        "month_to_date",
        "last_30_days",
        "last_7_days",
        "previous_quarter",
    ];
    for (i, (kpi, product)) in kpis.iter().enumerate() {
        // Rates are fractions: the config refuses a target outside 0..1 for them.
        let target = if kpi.ends_with("_rate") {
            "1"
        } else {
            "1000000"
        };
        for (j, w) in windows.iter().enumerate() {
            s += &format!(
                "\n[[key_results]]\nid = \"kr-{i}-{j}\"\nobjective = \"Grow\"\ntitle = \"{kpi} {w}\"\nkpi = \"{kpi}\"\nstore = \"big\"\nwindow = \"{w}\"\nbaseline = 0\ntarget = {target}\n"
            );
            if let Some(p) = product {
                s += &format!("product = \"{p}\"\n");
            }
        }
    }
    s
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let full = std::env::var("OKRSYNC_BENCH_MODE").as_deref() == Ok("full");
    let (orders, customers) = if quick {
        (3_000, 900)
    } else {
        (
            env_u64("OKRSYNC_BENCH_ORDERS", 1_000_000),
            env_u64("OKRSYNC_BENCH_CUSTOMERS", 300_000),
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let db_path: PathBuf = match std::env::var("OKRSYNC_BENCH_DB") {
        Ok(p) if !quick => PathBuf::from(p),
        _ => tmp.path().join("okrsync.db"),
    };
    let config_path = tmp.path().join("okrsync.toml");
    std::fs::write(&config_path, config(&db_path)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let settings = config::load(&config_path, &HashMap::new()).unwrap();
    assert_eq!(settings.key_results.len(), 50);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let exists = db_path.exists();
        // Includes any migration the database needs (the first open after an upgrade).
        let (t, cpu) = (Instant::now(), cpu_time());
        let db = Store::open(&db_path).await.unwrap();
        println!(
            "opened the database in {:?} (CPU {:?})",
            t.elapsed(),
            cpu_time() - cpu
        );
        if !exists || !db.is_complete("big").await.unwrap() {
            generate(&db, orders, customers).await;
            if !quick {
                // Measure in a fresh process: generation's memory would count in its peak RSS.
                println!("database ready at {}; run again to measure", db_path.display());
                return;
            }
        }
        let window: WindowSpec = "previous_quarter".parse().unwrap();
        let clock = Clock::fixed(now());
        let runs = if quick { 1 } else { env_u64("OKRSYNC_BENCH_RUNS", 5) as u32 };
        let mode = if full { "whole-history load (before)" } else { "window-limited load" };
        println!("{mode}, {} key results", settings.key_results.len());

        let mut kpis = Vec::new();
        let mut loaded_orders = 0;
        let cpu = cpu_time();
        for _ in 0..runs {
            let t = Instant::now();
            let loaded = if full {
                Loaded::load(&settings, &db, false).await.unwrap()
            } else {
                Loaded::load_windows(&settings, &db, false, std::slice::from_ref(&window), now())
                    .await
                    .unwrap()
            };
            let report =
                keyresults::kpi_report(&loaded, &StoreSelector::All, &window, now()).unwrap();
            kpis.push(t.elapsed());
            loaded_orders = loaded.order_count();
            std::hint::black_box(report);
        }
        println!(
            "every KPI, {window} ({loaded_orders} orders loaded): median {:?} of {runs}, CPU {:?} per run",
            median(kpis),
            (cpu_time() - cpu) / runs
        );

        let mut krs = Vec::new();
        let mut written = Vec::new();
        let cpu = cpu_time();
        for _ in 0..runs {
            let t = Instant::now();
            let n = if full {
                let loaded = Loaded::load(&settings, &db, true).await.unwrap();
                let mut reports = keyresults::evaluate(&settings, &loaded, now());
                keyresults::record_checkins(&db, &settings.sinks, &mut reports, now()).await.unwrap()
            } else {
                keyresults::evaluate_key_results(&settings, &db, &clock).await.unwrap()
            };
            krs.push(t.elapsed());
            written.push(n);
        }
        println!(
            "50 key results re-evaluated: median {:?} of {runs}, CPU {:?} per run (first {:?}; check-ins written per run: {written:?})",
            median(krs.clone()),
            (cpu_time() - cpu) / runs,
            krs[0]
        );
    });
}
