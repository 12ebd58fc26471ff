//! Throughput of the whole pipeline against the simulated store over loopback HTTP:
//! a first sync (backfill), an incremental sync with nothing new, loading the data, and
//! computing every KPI. Run with `cargo bench`; figures go into docs/benchmarks.md.
//!
//! `OKRSYNC_BENCH_DAYS` (default 730) and `OKRSYNC_BENCH_PER_DAY` (default 24) size the history.

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

use std::collections::HashMap;
use std::time::{Duration, Instant};

use okrsync::config::{self, StoreSelector};
use okrsync::daemon::keyresults::{Loaded, kpi_report};
use okrsync::daemon::sync::sync_store;
use okrsync::daemon::{Clock, Shutdown};
use okrsync::kpi::WindowSpec;
use okrsync::sources::QuietProgress;
use okrsync::store::Store;
use okrsync_sim::{SimState, SimWoo};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny size.
    let quick = !std::env::args().any(|a| a == "--bench");
    let days = if quick {
        5
    } else {
        env_u32("OKRSYNC_BENCH_DAYS", 730)
    };
    let per_day = env_u32("OKRSYNC_BENCH_PER_DAY", 24);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let now = chrono::Utc::now();
        let t = Instant::now();
        let state = SimState::generate(42, now, days, per_day);
        let orders = state.orders.len();
        let refunds = state.refunds.len();
        println!(
            "history: {days} days, {orders} orders, {refunds} refunds (generated in {:?})",
            t.elapsed()
        );
        let (key, secret) = (state.consumer_key.clone(), state.consumer_secret.clone());
        let sim = SimWoo::start(state).await.unwrap();
        let runs = if quick { 1 } else { 3 };
        let mut first = Vec::new();
        let mut incremental = Vec::new();
        let mut load = Vec::new();
        let mut kpis = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("okrsync.toml");
            std::fs::write(
                &path,
                okrsync_sim::demo_config(
                    &sim.url(),
                    &key,
                    &secret,
                    "http://127.0.0.1:9",
                    "unused-bench-key",
                ),
            )
            .unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let settings = config::load(&path, &HashMap::new()).unwrap();
            let db = Store::open(&settings.database.path).await.unwrap();
            let store = &settings.stores[0];
            let t = Instant::now();
            let r = sync_store(
                store,
                &db,
                &Clock::System,
                &Shutdown::never(),
                &QuietProgress,
                false,
            )
            .await
            .unwrap();
            first.push(t.elapsed());
            assert_eq!(r.status, "ok", "{:?}", r.summary.error);
            let t = Instant::now();
            let r = sync_store(
                store,
                &db,
                &Clock::System,
                &Shutdown::never(),
                &QuietProgress,
                false,
            )
            .await
            .unwrap();
            incremental.push(t.elapsed());
            assert_eq!(r.status, "ok");
            let t = Instant::now();
            let loaded = Loaded::load(&settings, &db, true).await.unwrap();
            load.push(t.elapsed());
            let t = Instant::now();
            for w in ["last_30_days", "year_to_date", "previous_year"] {
                let w: WindowSpec = w.parse().unwrap();
                kpi_report(&loaded, &StoreSelector::All, &w, now).unwrap();
            }
            kpis.push(t.elapsed() / 3);
        }
        let first = median(first);
        println!(
            "first sync (backfill):        median {first:?} ({:.0} orders/s)",
            orders as f64 / first.as_secs_f64()
        );
        println!(
            "incremental sync, no changes: median {:?}",
            median(incremental)
        );
        println!("load store data with lines:   median {:?}", median(load));
        println!("all KPIs for one window:      median {:?}", median(kpis));
        sim.stop().await;

        // Shopify: the same kind of history through the simulated Admin GraphQL API. Above
        // `bulk_threshold` (10,000 orders) the first sync is a bulk operation; the bucket is
        // fast here (a real shop restores 100 points/s, which bounds paged syncs instead).
        let mut shop = okrsync_sim::ShopState::generate(43, now, days, per_day);
        shop.restore_rate = 20_000.0;
        shop.bucket_max = 20_000.0;
        let shop_orders = shop.data.orders.len();
        let token = shop.access_token.clone();
        let shop_sim = okrsync_sim::SimShopify::start(shop).await.unwrap();
        let mut shop_first = Vec::new();
        let mut shop_incremental = Vec::new();
        for _ in 0..runs {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("okrsync.toml");
            std::fs::write(
                &path,
                format!(
                    "[[stores]]\nname = \"bench-shopify\"\nplatform = \"shopify\"\nshop = \"{}\"\naccess_token = \"{token}\"\n",
                    shop_sim.url()
                ),
            )
            .unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let settings = config::load(&path, &HashMap::new()).unwrap();
            let db = Store::open(&settings.database.path).await.unwrap();
            let store = &settings.stores[0];
            for (times, label) in [(&mut shop_first, "first"), (&mut shop_incremental, "incremental")] {
                let t = Instant::now();
                let r = sync_store(store, &db, &Clock::System, &Shutdown::never(), &QuietProgress, false)
                    .await
                    .unwrap();
                times.push(t.elapsed());
                assert_eq!(r.status, "ok", "{label}: {:?}", r.summary.error);
            }
        }
        let shop_first = median(shop_first);
        println!(
            "shopify: {shop_orders} orders; first sync median {shop_first:?} ({:.0} orders/s, {}), incremental median {:?}",
            shop_orders as f64 / shop_first.as_secs_f64(),
            if shop_orders > 10_000 { "bulk operation" } else { "paged" },
            median(shop_incremental)
        );
        shop_sim.stop().await;
    });
}
