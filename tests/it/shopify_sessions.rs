//! `shopify_sessions` against the fake shop's `shopifyqlQuery` over real HTTP: conversion
//! rate by shop-local day, a token without `read_reports` or an API version without the
//! field (failed run, null KPIs with the reason, `check --online`), THROTTLED waited out,
//! and the access token kept out of outputs and the database.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use okrsync::config::{self, Settings, StoreSelector};
use okrsync::daemon::analytics::sync_analytics;
use okrsync::daemon::keyresults::{self, Loaded};
use okrsync::daemon::sync::sync_store;
use okrsync::daemon::{Clock, Shutdown};
use okrsync::kpi::{Computed, KpiId, Value, WindowSpec};
use okrsync::sources::QuietProgress;
use okrsync::store::Store;
use okrsync_sim::sim_analytics::SimDay;
use okrsync_sim::{NewOrder, ShopFault, ShopFaultKind, ShopState, SimShopify};

use crate::helpers::{dec, empty_state, run_bin_with, write_private};

const TOKEN: &str = "shpat_sessions_test_feedface0123";
const TZ: &str = "America/New_York";

fn today() -> NaiveDate {
    okrsync::domain::StoreTz::parse(TZ)
        .unwrap()
        .local_date(Utc::now())
}

fn day(n: i64) -> NaiveDate {
    today() - Duration::days(n)
}

/// `h:m` New York time on local day `d`, as a UTC instant.
fn ny(d: NaiveDate, h: u32, m: u32) -> chrono::DateTime<Utc> {
    chrono_tz::America::New_York
        .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

struct Shop {
    sim: SimShopify,
    _dir: tempfile::TempDir,
    config_path: PathBuf,
    settings: Settings,
    db: Store,
}

impl Shop {
    /// A Shopify store `main` (`store_extra` appended to its table) linked to a
    /// `shopify_sessions` source named `traffic`.
    async fn start(mut state: ShopState, store_extra: &str) -> Shop {
        if state.restore_rate == 100.0 {
            state.restore_rate = 100_000.0;
        }
        let sim = SimShopify::start(state).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("okrsync.toml");
        let text = format!(
            r#"[database]
path = "okrsync.db"

[[stores]]
name = "main"
platform = "shopify"
shop = "{}"
access_token = "{TOKEN}"
retry_backoff_ms = 10
max_retries = 3
timeout_seconds = 5
{store_extra}

[[analytics]]
name = "traffic"
provider = "shopify_sessions"
stores = ["main"]
"#,
            sim.url()
        );
        write_private(&config_path, &text);
        let settings = config::load(&config_path, &HashMap::new()).unwrap();
        let db = Store::open(&settings.database.path).await.unwrap();
        Shop {
            sim,
            _dir: dir,
            config_path,
            settings,
            db,
        }
    }

    /// Syncs the store, then the sessions source; returns the source's `status:error`.
    async fn sync_all(&self) -> String {
        let r = sync_store(
            &self.settings.stores[0],
            &self.db,
            &Clock::System,
            &Shutdown::never(),
            &QuietProgress,
            false,
        )
        .await
        .unwrap();
        assert_eq!(r.status, "ok", "{:?}", r.summary.error);
        let a = sync_analytics(
            &self.settings.analytics[0],
            &self.settings,
            &self.db,
            &Clock::System,
            &Shutdown::never(),
            false,
        )
        .await
        .unwrap();
        format!("{}:{}", a.status, a.summary.error.unwrap_or_default())
    }

    async fn kpi(&self, id: KpiId, window: &str) -> Computed {
        let loaded = Loaded::load(&self.settings, &self.db, false).await.unwrap();
        let window: WindowSpec = window.parse().unwrap();
        keyresults::kpi_report(
            &loaded,
            &StoreSelector::Named("main".into()),
            &window,
            Utc::now(),
        )
        .unwrap()
        .values
        .into_iter()
        .find(|(k, _)| *k == id)
        .unwrap()
        .1
        .unwrap()
    }

    async fn check_online(&self) -> String {
        let config = self.config_path.clone();
        let out =
            tokio::task::spawn_blocking(move || run_bin_with(&config, &["check", "--online"]))
                .await
                .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

fn window(from: i64, to: i64) -> String {
    format!("{}..{}", day(from), day(to))
}

/// A New York shop with orders around local midnights and sessions on days 10, 9 and 7.
fn shop_state() -> ShopState {
    let mut data = empty_state();
    data.timezone_string = TZ.into();
    // In the window (local days 10..7): 23:30 on day 10 (UTC: day 9), 00:30 on day 9 (UTC:
    // still day 9 but 04:30), noon on day 8. Outside: 23:50 on day 11 and 23:30 on day 6
    // (UTC: day 7 / day 10 boundaries a UTC-day join would miscount).
    for (n, h, m, email) in [
        (10, 23, 30, "a@example.com"),
        (9, 0, 30, "b@example.com"),
        (8, 12, 0, "c@example.com"),
        (11, 23, 50, "d@example.com"),
        (6, 23, 30, "e@example.com"),
    ] {
        data.add_order(NewOrder::new("processing", ny(day(n), h, m), email));
    }
    let mut st = ShopState::new(data, TOKEN);
    for (n, sessions, bounces) in [(10, 200, 50), (9, 300, 150), (7, 500, 100), (12, 999, 0)] {
        st.sessions.insert(
            day(n),
            SimDay {
                sessions,
                visitors: sessions / 2,
                bounces,
            },
        );
    }
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_rate_is_orders_over_shopify_sessions_by_shop_day() {
    let shop = Shop::start(shop_state(), "").await;
    assert_eq!(shop.sync_all().await, "ok:");
    let w = window(10, 7);
    // Hand-computed: orders on local days 10, 9, 8 = 3; sessions 200 + 300 + 0 + 500.
    assert_eq!(
        shop.kpi(KpiId::Sessions, &w).await.value,
        Some(Value::Count(1000))
    );
    assert_eq!(
        shop.kpi(KpiId::ConversionRate, &w).await.value,
        Some(Value::Rate(dec("3") / dec("1000")))
    );
    // bounce_rate 25 %, 50 %, 20 % of those days → 50 + 150 + 100 bounces.
    assert_eq!(
        shop.kpi(KpiId::BounceRate, &w).await.value,
        Some(Value::Rate(dec("300") / dec("1000")))
    );
    // The query named the shop-local days and went to the store's API version with the
    // store's token; the token is nowhere in the database.
    let reqs: Vec<_> = shop
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ShopifySessions")
        .collect();
    assert_eq!(reqs.len(), 1);
    let q = reqs[0].variables["query"].as_str().unwrap().to_string();
    assert!(q.contains(&format!("UNTIL {}", today())), "{q}");
    assert!(
        reqs[0].path.contains("/admin/api/2025-10/"),
        "{}",
        reqs[0].path
    );
    assert_eq!(reqs[0].token.as_deref(), Some(TOKEN));
    let db = std::fs::read(&shop.settings.database.path).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(TOKEN));

    // A second sync re-reads only the last 3 days; a restated day is overwritten.
    shop.sim.with_state(|s| {
        s.sessions.insert(
            day(1),
            SimDay {
                sessions: 40,
                visitors: 20,
                bounces: 4,
            },
        )
    });
    assert_eq!(shop.sync_all().await, "ok:");
    let reqs: Vec<_> = shop
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ShopifySessions")
        .collect();
    let q = reqs[1].variables["query"].as_str().unwrap();
    assert!(q.contains(&format!("SINCE {} ", day(2))), "{q}");
    assert_eq!(
        shop.kpi(KpiId::Sessions, &window(1, 1)).await.value,
        Some(Value::Count(40))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_reports_the_run_fails_and_kpis_are_null_with_the_reason() {
    let mut st = shop_state();
    st.scopes.retain(|s| s != "read_reports");
    let shop = Shop::start(st, "").await;
    let out = shop.sync_all().await;
    assert!(out.starts_with("failed:"), "{out}");
    assert!(out.contains("read_reports"), "{out}");
    assert!(!out.contains(TOKEN), "{out}");
    for id in [KpiId::Sessions, KpiId::ConversionRate, KpiId::BounceRate] {
        let c = shop.kpi(id, &window(10, 7)).await;
        assert_eq!(c.value, None, "{id}");
        let reason = c.reason.unwrap();
        assert!(
            reason.contains("last sync of analytics source `traffic` failed"),
            "{reason}"
        );
        assert!(reason.contains("read_reports"), "{reason}");
    }
    let text = shop.check_online().await;
    assert!(
        text.contains("analytics traffic (shopify_sessions): FAILED"),
        "{text}"
    );
    assert!(text.contains("read_reports"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    // Granting the scope heals it.
    shop.sim
        .with_state(|s| s.scopes.push("read_reports".into()));
    assert_eq!(shop.sync_all().await, "ok:");
    assert_eq!(
        shop.kpi(KpiId::ConversionRate, &window(10, 7)).await.value,
        Some(Value::Rate(dec("3") / dec("1000")))
    );
    let text = shop.check_online().await;
    assert!(
        text.contains("analytics traffic (shopify_sessions): OK"),
        "{text}"
    );
    assert!(text.contains("read_reports granted"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_version_without_shopifyql_names_the_version_to_set() {
    let shop = Shop::start(shop_state(), "api_version = \"2025-07\"").await;
    let out = shop.sync_all().await;
    assert!(out.starts_with("failed:"), "{out}");
    assert!(out.contains("API version 2025-07"), "{out}");
    assert!(out.contains("api_version = \"2025-10\""), "{out}");
    let c = shop.kpi(KpiId::ConversionRate, &window(10, 7)).await;
    assert_eq!(c.value, None);
    assert!(c.reason.unwrap().contains("2025-10"));
    let text = shop.check_online().await;
    assert!(
        text.contains("analytics traffic (shopify_sessions): FAILED"),
        "{text}"
    );
    assert!(text.contains("2025-10"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_sessions_queries_are_waited_out() {
    let shop = Shop::start(shop_state(), "").await;
    shop.sim.inject(ShopFault {
        operation: "ShopifySessions".into(),
        kind: ShopFaultKind::Throttled,
        times: 2,
    });
    assert_eq!(shop.sync_all().await, "ok:");
    let sessions = shop
        .sim
        .requests()
        .iter()
        .filter(|r| r.operation == "ShopifySessions")
        .count();
    assert_eq!(sessions, 3, "two THROTTLED answers, then the data");
    let runs = shop
        .db
        .runs(Some("traffic".into()), 1, false)
        .await
        .unwrap();
    assert_eq!((runs[0].requests, runs[0].retries), (3, 2));
    assert_eq!(
        shop.kpi(KpiId::Sessions, &window(10, 7)).await.value,
        Some(Value::Count(1000))
    );
}

#[test]
fn shopify_sessions_must_name_exactly_one_shopify_store() {
    let text = r#"
[[stores]]
name = "woo"
platform = "woocommerce"
url = "https://shop.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[analytics]]
name = "sessions"
provider = "shopify_sessions"
stores = ["woo"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let err = config::load_from_str(text, dir.path(), None, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("analytics[0].stores"), "{err}");
    assert!(err.contains("`woo` is not a Shopify store"), "{err}");
}
