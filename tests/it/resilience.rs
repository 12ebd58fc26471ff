//! Incremental runs, kill-and-resume, and bad answers from the store.

use std::time::Duration;

use okrsync::kpi::{KpiId, Value};
use okrsync_sim::{Fault, FaultKind, NewOrder, SimState};

use crate::helpers::*;
use crate::woo_kpis::{W, fixture};

#[tokio::test]
async fn incremental_run_fetches_only_changes_and_kpis_follow() {
    let fx = fixture();
    let a = fx.a;
    let h = Harness::start(fx.state).await;
    assert_eq!(h.sync().await.status, "ok");
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));

    // Changes stamped with the real clock: a new order in W and a partial refund of A.
    let before = h.sim.requests().len();
    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            NewOrder::new("completed", at(2026, 10, 22, 9, 0), "new@example.com").line(
                11,
                "MUG",
                "Mug",
                1,
                dec("10.00"),
            ),
        );
        let line = s.orders[&a].lines[0].id;
        s.refund(a, &[(line, 1)], dec("0"));
    });
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    // Two changed orders (the new one and A) and one refund: nothing else is re-read.
    assert_eq!(report.summary.fetched, 3, "{:?}", report.summary);
    let incremental: Vec<_> = h.sim.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with("/orders") || r.path.ends_with("/wc/v3/refunds"))
        .cloned()
        .collect();
    assert!(
        incremental.iter().all(|r| r
            .query
            .iter()
            .any(|(k, _)| k == "modified_after" || k == "after")),
        "incremental listings are bounded by the cursor: {incremental:?}"
    );
    assert!(incremental.iter().all(|r| {
        r.query
            .iter()
            .any(|(k, v)| k == "dates_are_gmt" && v == "true")
    }));
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(7)));
    // gross 160 + 10; returns 20 + one mug of A (10.00).
    assert_eq!(
        h.kpi(KpiId::GrossSales, W, now).await,
        Some(Value::Money(dec("170.00")))
    );
    assert_eq!(
        h.kpi(KpiId::Returns, W, now).await,
        Some(Value::Money(dec("30.00")))
    );

    // A third run with no changes re-reads only the lookback overlap: the same rows,
    // upserted idempotently, never double counted.
    let report = h.sync().await;
    assert_eq!(report.status, "ok");
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(7)));
    assert_eq!(
        h.kpi(KpiId::Returns, W, now).await,
        Some(Value::Money(dec("30.00")))
    );
}

fn big_state() -> SimState {
    // About 450 orders: five pages of the orders listing.
    let mut s = SimState::generate(7, at(2026, 11, 1, 0, 0), 30, 15);
    s.consumer_key = KEY.into();
    s.consumer_secret = SECRET.into();
    s.now_override = Some(at(2026, 11, 1, 0, 0));
    s
}

#[tokio::test]
async fn a_sync_killed_after_page_k_resumes_to_exactly_the_uninterrupted_rows() {
    let state = big_state();
    assert!(state.orders.len() > 300, "need several pages");
    // Reference: an uninterrupted run.
    let reference = Harness::start(state.clone()).await;
    assert_eq!(reference.sync().await.status, "ok");
    let expected = dump(&reference.settings.database.path);

    // The same store; the binary hangs on the third page of the backfill (offset 198: pages
    // overlap by one row) and is killed with SIGKILL once the two pages before it are stored
    // (pages after it may have arrived already: they are read ahead, never stored before it).
    let h = Harness::start(state).await;
    h.sim.inject(Fault {
        path_contains: "&offset=198&".into(),
        kind: FaultKind::Hang,
        times: 1,
    });
    let mut child = h.spawn_bin(&["sync"]);
    h.wait_for_query("offset", "198").await;
    h.wait_for_cursor("orders", "\"offset\":199").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = dump(&h.settings.database.path);
    assert!(
        partial.len() < expected.len(),
        "the kill left the sync unfinished"
    );

    // Resume: the run continues from page 3 and ends with exactly the reference rows.
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let resumed_pages: Vec<_> = h
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/orders")
                && r.query.iter().any(|(k, v)| k == "orderby" && v == "id")
                && r.query.iter().any(|(k, v)| k == "status" && v == "any")
        })
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.clone())
        })
        .collect();
    // (The trash listing, read ahead during the orders but never committed before them, is
    // read again: the killed run stored none of it.)
    assert_eq!(
        resumed_pages.iter().filter(|p| *p == "0").count(),
        1,
        "the first orders page once, not re-read after the kill: {resumed_pages:?}"
    );
    assert!(
        resumed_pages.iter().filter(|p| *p == "198").count() == 2,
        "the resumed run starts again at the page in flight: {resumed_pages:?}"
    );
    assert_eq!(dump(&h.settings.database.path), expected);
    // The killed run is closed in the sync log once it is stale; the new one is ok.
    let runs = h.db.runs(None, 10, false).await.unwrap();
    assert_eq!(runs[0].status, "ok");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let h = Harness::start(fixture().state).await;
    h.sim.inject(Fault {
        path_contains: "/wc/v3/orders".into(),
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
        times: 1,
    });
    h.sim.inject(Fault {
        path_contains: "/wc/v3/refunds".into(),
        kind: FaultKind::Status(500),
        times: 2,
    });
    let started = std::time::Instant::now();
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(report.summary.retries, 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));
    let runs = h.db.runs(None, 1, false).await.unwrap();
    assert_eq!(runs[0].retries, 3);
    assert!(runs[0].requests >= 8);
}

#[tokio::test]
async fn persistent_errors_fail_the_run_with_a_clear_message() {
    let h = Harness::start(fixture().state).await;
    h.sim.inject(Fault {
        path_contains: "/wc/v3/orders".into(),
        kind: FaultKind::Status(503),
        times: 10,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("HTTP 503") && err.contains("/wp-json/wc/v3/orders"),
        "{err}"
    );
    // max_retries = 3: each request is sent at most four times (the orders' first page, and
    // the trash listing's, which leaves with it).
    let mut attempts = std::collections::BTreeMap::new();
    for r in h.sim.requests() {
        let status = r
            .query
            .iter()
            .find(|(k, _)| k == "status")
            .map(|(_, v)| v.clone());
        let offset = r
            .query
            .iter()
            .find(|(k, _)| k == "offset")
            .map(|(_, v)| v.clone());
        *attempts.entry((r.path, status, offset)).or_insert(0u32) += 1;
    }
    let first = (
        "/wp-json/wc/v3/orders".to_string(),
        Some("any".to_string()),
        Some("0".to_string()),
    );
    assert_eq!(attempts.get(&first), Some(&4), "{attempts:?}");
    assert!(attempts.values().all(|n| *n <= 4), "{attempts:?}");
    let logs = h.run_bin(&["logs", "--failed"]).await;
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("failed") && text.contains("HTTP 503"),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_page_fails_the_run_and_the_cursor_does_not_pass_it() {
    let state = big_state();
    let reference = Harness::start(state.clone()).await;
    assert_eq!(reference.sync().await.status, "ok");
    let h = Harness::start(state).await;
    h.sim.inject(Fault {
        path_contains: "&offset=99&".into(),
        kind: FaultKind::Malformed,
        times: 1,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("not valid JSON") && err.contains("Warning"),
        "{err}"
    );
    assert_eq!(
        report.summary.pages, 1,
        "page 1 was stored before the bad page"
    );
    // Part of the history is stored, but KPIs over it would read low: they are refused.
    let loaded = okrsync::daemon::keyresults::Loaded::load(&h.settings, &h.db, false)
        .await
        .unwrap();
    let err = okrsync::daemon::keyresults::kpi_report(
        &loaded,
        &okrsync::config::StoreSelector::Named("main".into()),
        &"last_30_days".parse().unwrap(),
        at(2026, 11, 2, 0, 0),
    )
    .err()
    .unwrap();
    assert!(err.contains("has not completed a first sync"), "{err}");
    // The next run resumes at page 2 and completes.
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(
        dump(&h.settings.database.path),
        dump(&reference.settings.database.path)
    );
}

#[tokio::test]
async fn a_truncated_page_fails_the_run() {
    let h = Harness::start(big_state()).await;
    h.sim.inject(Fault {
        path_contains: "&offset=99&".into(),
        kind: FaultKind::ShortPage,
        times: 1,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("X-WP-Total") && err.contains("truncated"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hanging_store_times_out_and_is_logged() {
    let h = Harness::start_with(fixture().state, "timeout_seconds = 1\nmax_retries = 0", "").await;
    h.sim.inject(Fault {
        path_contains: "/wc/v3/orders".into(),
        kind: FaultKind::Hang,
        times: 1,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(err.contains("timed out"), "{err}");
    // The store answers again: the next run succeeds.
    assert_eq!(h.sync().await.status, "ok");
}

#[tokio::test]
async fn rows_moving_back_during_a_backfill_are_not_skipped() {
    // Between two backfill pages an early order is trashed and a new one arrives: the listing
    // keeps its size but every row moves back one place. The pager must notice (the overlap row
    // is gone) and step back instead of skipping the row that slid under the page boundary.
    let state = big_state();
    let first = *state.orders.keys().next().unwrap();
    let ids: Vec<u64> = state.orders.keys().copied().collect();
    let h = Harness::start(state).await;
    h.sim.inject(Fault {
        path_contains: "&offset=198&".into(),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let sim_state = |f: &dyn Fn(&mut SimState)| h.sim.with_state(|s| f(s));
    let sync = h.sync();
    let mutate = async {
        h.wait_for_query("offset", "198").await;
        sim_state(&|s| {
            s.now_override = None;
            s.set_status(first, "trash");
            s.add_order(
                NewOrder::new("completed", at(2026, 11, 2, 9, 0), "late@example.com").line(
                    11,
                    "MUG",
                    "Mug",
                    1,
                    dec("10.00"),
                ),
            );
        });
    };
    let (report, ()) = tokio::join!(sync, mutate);
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    // The order trashed after its page was read is read by the next run (the backfill's
    // catch-up read is that run's, from the backfill's start).
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let stored: std::collections::BTreeSet<u64> = conn
        .prepare("SELECT platform_id FROM orders")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap().parse().unwrap())
        .collect();
    let missing: Vec<u64> = ids
        .iter()
        .filter(|id| !stored.contains(id))
        .copied()
        .collect();
    assert!(missing.is_empty(), "orders never read: {missing:?}");
    // The pager noticed the move (the overlap row was gone) and stepped back one page.
    assert!(
        h.sim
            .requests()
            .iter()
            .any(|r| r.query.iter().any(|(k, v)| k == "offset" && v == "98")),
        "no step back after the rows moved"
    );
    assert_eq!(
        stored.len(),
        ids.len() + 1,
        "every order once, plus the new one"
    );
    let trashed: i64 = conn
        .query_row(
            "SELECT trashed FROM orders WHERE platform_id = ?1",
            [first.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(trashed, 1);
}

#[tokio::test]
async fn a_deleted_refund_stops_counting() {
    let fx = fixture();
    let h = Harness::start(fx.state).await;
    let now = at(2026, 11, 20, 12, 0);
    // Refund one mug of A (10.00 of items), sync, then delete that refund in the store.
    let refund = h.sim.with_state(|s| {
        s.now_override = None;
        let line = s.orders[&fx.a].lines[0].id;
        s.refund(fx.a, &[(line, 1)], dec("0"))
    });
    assert_eq!(h.sync().await.status, "ok");
    assert_eq!(
        h.kpi(KpiId::Returns, W, now).await,
        Some(Value::Money(dec("30.00")))
    );
    h.sim.with_state(|s| s.delete_refund(refund));
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    // Back to the fixture's hand-computed values: returns 20.00, refund rate 3/6, MUG units 4.
    assert_eq!(
        h.kpi(KpiId::Returns, W, now).await,
        Some(Value::Money(dec("20.00")))
    );
    assert_eq!(
        h.kpi(KpiId::RefundRate, W, now).await,
        Some(Value::Rate(dec("0.5")))
    );
    assert_eq!(
        h.kpi(KpiId::TotalSales, W, now).await,
        Some(Value::Money(dec("163.00")))
    );
}

#[tokio::test]
async fn a_store_name_never_mixes_two_shops() {
    let h = Harness::start(fixture().state).await;
    assert_eq!(h.sync().await.status, "ok");
    // The config now points `main` at another shop (staging → production, a typo…).
    let other = okrsync_sim::SimWoo::start(empty_state()).await.unwrap();
    write_private(&h.config_path, &config_text(&other.url(), "", ""));
    let out = h.run_bin(&["sync"]).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("holds data synced from") && text.contains("own store name"),
        "{text}"
    );
    assert!(
        other.requests().iter().all(|r| !r.path.contains("/orders")),
        "nothing was read from the other shop"
    );
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));
}

#[tokio::test]
async fn redirects_are_reported_not_followed() {
    // A site that moved: every request gets 301 to another address. Counted: the site index
    // (the first pages of the listings are sent alongside it and moved too).
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counter = counter.clone();
        async move {
            if uri.path() == "/wp-json/" {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            (
                axum::http::StatusCode::MOVED_PERMANENTLY,
                [(
                    "location",
                    "https://new-shop.example/wp-json/?consumer_secret=leak",
                )],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = Harness::from_sim(
        okrsync_sim::SimWoo::start(empty_state()).await.unwrap(),
        &url,
        "",
        "",
    )
    .await;
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("redirects (HTTP 301) to https://new-shop.example/wp-json/"),
        "{err}"
    );
    assert!(err.contains("set the store's url"), "{err}");
    assert!(
        !err.contains("leak"),
        "the Location's query is not repeated: {err}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the redirect was not followed nor retried"
    );
}

#[tokio::test]
async fn a_blocked_site_index_is_explained_and_avoidable_with_a_timezone() {
    let blocked = |h: &Harness| {
        h.sim.inject(Fault {
            path_contains: "/wp-json/?".into(),
            kind: FaultKind::Status(401),
            times: 100,
        })
    };
    let h = Harness::start(fixture().state).await;
    blocked(&h);
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("public REST index is not readable") && err.contains("Set `timezone`"),
        "{err}"
    );
    assert!(
        !err.contains("rejected the credentials"),
        "no credentials were sent there: {err}"
    );

    let h = Harness::start_with(fixture().state, "timezone = \"Europe/Paris\"", "").await;
    blocked(&h);
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert!(
        h.sim.requests().iter().all(|r| r.path != "/wp-json/"),
        "the index was not read"
    );
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));
}

#[tokio::test]
async fn an_unreadable_order_is_skipped_and_reported_not_blocking_the_rest() {
    let mut fx = fixture();
    // Order A's total arrives as "12,00" (a plugin formatting money for humans).
    fx.state.orders.get_mut(&fx.a).unwrap().wire_total_override = Some("12,00".into());
    let h = Harness::start(fx.state).await;
    let report = h.sync().await;
    assert_eq!(report.status, "partial");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains(&format!("order {}", fx.a)) && err.contains("`total` = `12,00`"),
        "{err}"
    );
    // Everything else is stored (5 of the 6 counted orders), but figures without A would read
    // low: until A is read, the store's KPIs are null with the reason.
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let stored: i64 = conn
        .query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as usize, fixture().state.orders.len() - 1);
    let loaded = okrsync::daemon::keyresults::Loaded::load(&h.settings, &h.db, false)
        .await
        .unwrap();
    let reason = okrsync::daemon::keyresults::kpi_report(
        &loaded,
        &okrsync::config::StoreSelector::Named("main".into()),
        &W.parse().unwrap(),
        at(2026, 11, 20, 12, 0),
    )
    .err()
    .unwrap();
    assert!(
        reason.contains("has not completed a first sync"),
        "{reason}"
    );
    let now = at(2026, 11, 20, 12, 0);
    // Once the store fixes it (the order changes), the next run reads it.
    h.sim.with_state(|s| {
        s.now_override = None;
        s.orders.get_mut(&fx.a).unwrap().wire_total_override = None;
        s.touch(fx.a);
    });
    assert_eq!(h.sync().await.status, "ok");
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));
}

#[tokio::test]
async fn an_incremental_run_reads_a_tie_group_larger_than_a_page() {
    // A bulk action (e.g. "mark completed" on 250 orders) stamps them all with one modified
    // second: the incremental pager must page inside the tie group, not re-read page 1 forever
    // nor skip rows.
    let state = big_state();
    let h = Harness::start(state).await;
    assert_eq!(h.sync().await.status, "ok");
    let bulk_at = chrono::Utc::now() - chrono::Duration::minutes(1);
    let bulk_at = bulk_at - chrono::Duration::nanoseconds(bulk_at.timestamp_subsec_nanos() as i64);
    let touched: Vec<u64> = h.sim.with_state(|s| {
        s.now_override = Some(bulk_at);
        let ids: Vec<u64> = s
            .orders
            .values()
            .filter(|o| o.status == "processing" || o.status == "completed")
            .map(|o| o.id)
            .take(250)
            .collect();
        for id in &ids {
            s.set_status(*id, "completed");
        }
        ids
    });
    assert_eq!(touched.len(), 250);
    let before = h.sim.requests().len();
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert!(report.summary.fetched >= 250, "{:?}", report.summary);
    let pages: Vec<String> = h.sim.requests()[before..]
        .iter()
        .filter(|r| {
            r.path.ends_with("/orders") && r.query.iter().any(|(k, v)| k == "status" && v == "any")
        })
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.clone())
        })
        .collect();
    // The first page from the lookback anchor, the first page again re-anchored on the tie
    // second, then pages inside the tie group overlapping by one row (the last one short).
    assert_eq!(
        pages,
        ["0", "0", "99", "198"],
        "paging inside the tie group"
    );
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let stored: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM orders WHERE modified_at = ?1 AND status = 'completed'",
            [bulk_at.format("%Y-%m-%dT%H:%M:%SZ").to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 250);
}

#[tokio::test]
async fn orders_deleted_permanently_stop_counting_after_reconciliation() {
    let fx = fixture();
    let a = fx.a;
    let h = Harness::start_with(fx.state, "reconcile_schedule = \"* * * * * *\"", "").await;
    assert_eq!(h.sync().await.status, "ok");
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(6)));
    // Order A is emptied from the trash: no listing shows it any more.
    h.sim.with_state(|s| s.delete_order(a));
    // The schedule ticks every second; the next sync finds it due.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(5)));
    // gross 160 − A's 20.00
    assert_eq!(
        h.kpi(KpiId::GrossSales, W, now).await,
        Some(Value::Money(dec("140.00")))
    );

    // A listing that looks incomplete (many orders missing at once) marks nothing.
    h.sim.with_state(|s| {
        let ids: Vec<u64> = s.orders.keys().copied().take(6).collect();
        for id in ids {
            s.delete_order(id);
        }
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        h.sync().await.status,
        "ok",
        "a skipped reconciliation does not fail the run"
    );
    assert_eq!(
        h.kpi(KpiId::Orders, W, now).await,
        Some(Value::Count(5)),
        "nothing marked"
    );
}

/// A first sync (and `sync --full`) reads every order, so it stands for the first
/// reconciliation: no id listing follows it; the next is due at the schedule's next tick.
#[tokio::test]
async fn first_sync_and_full_sync_make_no_id_listing() {
    let fx = fixture();
    let h = Harness::start(fx.state).await;
    let listings = |h: &Harness| {
        h.sim
            .requests()
            .iter()
            .filter(|r| r.query.iter().any(|(k, v)| k == "_fields" && v == "id"))
            .count()
    };
    assert_eq!(h.sync().await.status, "ok");
    assert_eq!(
        listings(&h),
        0,
        "the first sync listed every order id again"
    );
    assert_eq!(h.sync_opts(true).await.status, "ok");
    assert_eq!(listings(&h), 0, "sync --full listed every order id again");
    let reconciled: String = rusqlite::Connection::open(&h.settings.database.path)
        .unwrap()
        .query_row(
            "SELECT value FROM cursors WHERE stream = 'reconcile'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!reconciled.is_empty());
}

#[tokio::test]
async fn reconciliation_never_marks_an_order_that_moved_during_the_listing() {
    // While the id listing is read, the lowest-id order is deleted and a new one arrives: the
    // total is unchanged but every row moves back one place, so one live order is absent from
    // the listing. It must be checked on its own and kept; only the deleted one is marked.
    let state = big_state();
    let first = *state.orders.keys().next().unwrap();
    let h = Harness::start_with(state, "reconcile_schedule = \"* * * * * *\"", "").await;
    // The first sync read every order (it lists no ids); the schedule ticks every second,
    // so the next sync reconciles.
    assert_eq!(h.sync().await.status, "ok");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.sim.inject(Fault {
        path_contains: "&page=2&_fields=id&".into(),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let sync = h.sync();
    let mutate = async {
        h.wait_for_query("_fields", "id").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !h.sim.requests().iter().any(|r| {
            r.query.iter().any(|(k, v)| k == "_fields" && v == "id")
                && r.query.iter().any(|(k, v)| k == "page" && v == "2")
        }) {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        h.sim.with_state(|s| {
            s.now_override = None;
            s.delete_order(first);
            s.add_order(
                NewOrder::new("completed", at(2026, 11, 2, 9, 0), "late@example.com").line(
                    11,
                    "MUG",
                    "Mug",
                    1,
                    dec("10.00"),
                ),
            );
        });
    };
    let (report, ()) = tokio::join!(sync, mutate);
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let deleted = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
        conn.prepare("SELECT platform_id FROM orders WHERE deleted = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    // The order that slid under the page boundary was checked on its own and kept; the
    // deleted one had already been listed on page 1, so it waits for the next reconciliation.
    assert!(
        deleted().is_empty(),
        "a live order was marked deleted: {:?}",
        deleted()
    );
    assert!(
        h.sim
            .requests()
            .iter()
            .any(|r| !r.path.ends_with("/orders/")
                && r.path.contains("/wc/v3/orders/")
                && !r.path.ends_with("/refunds")),
        "the absent order was checked with GET orders/<id>"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.sync().await.status, "ok");
    assert_eq!(
        deleted(),
        vec![first.to_string()],
        "only the order really deleted"
    );
}

#[tokio::test]
async fn a_row_leaving_a_tie_group_mid_listing_does_not_hide_another() {
    // 250 orders share one modified second. While the second page of that tie group is in
    // flight, an order from the first page changes again (it leaves the group for the end of
    // the listing): every later row moves back one place. Without the one-row overlap the
    // row now at the page boundary would be skipped and keep its old status.
    let state = big_state();
    let h = Harness::start(state).await;
    assert_eq!(h.sync().await.status, "ok");
    let bulk_at = chrono::Utc::now() - chrono::Duration::minutes(1);
    let bulk_at = bulk_at - chrono::Duration::nanoseconds(bulk_at.timestamp_subsec_nanos() as i64);
    let group: Vec<u64> = h.sim.with_state(|s| {
        s.now_override = Some(bulk_at);
        let ids: Vec<u64> = s
            .orders
            .values()
            .filter(|o| o.status == "processing" || o.status == "completed")
            .map(|o| o.id)
            .take(250)
            .collect();
        // A status none of them had: a row skipped by the listing keeps its old one.
        for id in &ids {
            s.set_status(*id, "on-hold");
        }
        ids
    });
    // The second page of the tie group starts at row 99 (one-row overlap) or 100 (without).
    for at in ["&offset=99&", "&offset=100&"] {
        h.sim.inject(Fault {
            path_contains: at.into(),
            kind: FaultKind::Delay(Duration::from_millis(1500)),
            times: 1,
        });
    }
    let moved = group[10];
    let sync = h.sync();
    let before = h.sim.requests().len();
    let mutate = async {
        // The incremental listing's request at offset 99 (the backfill had one too, earlier).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !h.sim.requests()[before..].iter().any(|r| {
            r.query
                .iter()
                .any(|(k, v)| k == "offset" && (v == "99" || v == "100"))
                && r.query.iter().any(|(k, _)| k == "modified_after")
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "no second page in the tie group"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        h.sim.with_state(|s| {
            s.now_override = None;
            s.set_status(moved, "refunded");
        });
    };
    let (report, ()) = tokio::join!(sync, mutate);
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    for id in &group {
        let status: String = conn
            .query_row(
                "SELECT status FROM orders WHERE platform_id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        let expected = if *id == moved { "refunded" } else { "on-hold" };
        assert_eq!(status, expected, "order {id} was not read after its change");
    }
    // The pager saw the overlap row gone and stepped back to the start of the tie group.
    let offsets: Vec<String> = h.sim.requests()[before..]
        .iter()
        .filter(|r| r.query.iter().any(|(k, v)| k == "status" && v == "any"))
        .filter(|r| r.query.iter().any(|(k, _)| k == "modified_after"))
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "offset")
                .map(|(_, v)| v.clone())
        })
        .collect();
    let at99 = offsets.iter().position(|o| o == "99").unwrap();
    assert_eq!(
        offsets.get(at99 + 1).map(String::as_str),
        Some("0"),
        "{offsets:?}"
    );
}

#[tokio::test]
async fn an_edit_during_the_backfill_is_read_even_when_the_store_clock_is_behind() {
    // The store's clock is 14 minutes behind okrsync's (more than the 10-minute lookback; within
    // the 15 minutes WooCommerce allows an OAuth timestamp): an order edited during the backfill
    // is stamped 14 minutes "earlier" than okrsync's start. The incremental read after the
    // backfill (the next run's) must start from the store's clock (its Date header), or the
    // edit is lost.
    let skew = chrono::Duration::minutes(-14);
    let mut state = big_state();
    state.date_skew = Some(skew);
    let target = *state.orders.keys().nth(5).unwrap();
    let h = Harness::start(state).await;
    h.sim.inject(Fault {
        path_contains: "&offset=99&".into(),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let sync = h.sync();
    let mutate = async {
        h.wait_for_query("offset", "99").await;
        h.sim.with_state(|s| {
            s.now_override = Some(chrono::Utc::now() + skew);
            s.set_status(target, "on-hold");
        });
    };
    let (report, ()) = tokio::join!(sync, mutate);
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    // The backfill's catch-up read is the next run's: it starts from the backfill's start on
    // the store's clock.
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let status: String = conn
        .query_row(
            "SELECT status FROM orders WHERE platform_id = ?1",
            [target.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        status, "on-hold",
        "the edit made during the backfill was read"
    );
}
