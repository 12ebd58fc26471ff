//! Pages in flight: the WooCommerce backfill reads up to `max_concurrency` pages at once,
//! commits them in order, backs off together on 429/5xx, and still loses no order when rows
//! move, the store throttles, or the process is killed.

use std::collections::BTreeSet;
use std::time::Duration;

use okrsync::kpi::{KpiId, Value};
use okrsync_sim::{Fault, FaultKind, NewOrder, SimState};

use crate::helpers::*;

/// About 900 orders: ten pages of the orders listing.
fn store(per_day: u32) -> SimState {
    let mut s = SimState::generate(11, at(2026, 11, 1, 0, 0), 30, per_day);
    s.consumer_key = KEY.into();
    s.consumer_secret = SECRET.into();
    s.now_override = Some(at(2026, 11, 1, 0, 0));
    s
}

/// Live (not deleted) stored order ids, and how many rows they are.
fn stored(h: &Harness) -> (BTreeSet<u64>, usize) {
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let ids: Vec<u64> = conn
        .prepare("SELECT platform_id FROM orders WHERE deleted = 0")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap().parse().unwrap())
        .collect();
    let n = ids.len();
    (ids.into_iter().collect(), n)
}

const KPIS: [KpiId; 7] = [
    KpiId::Orders,
    KpiId::GrossSales,
    KpiId::NetSales,
    KpiId::Returns,
    KpiId::RefundRate,
    KpiId::NewCustomers,
    KpiId::AverageOrderValue,
];
const ALL: &str = "2026-09-01..2026-11-30";

async fn kpis(h: &Harness) -> Vec<Option<Value>> {
    let mut out = Vec::new();
    for k in KPIS {
        out.push(h.kpi(k, ALL, at(2026, 12, 1, 0, 0)).await);
    }
    out
}

/// The offsets of the `status=any` backfill requests, in order of arrival.
fn any_offsets(h: &Harness) -> Vec<u64> {
    h.sim
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/orders")
                && r.query.iter().any(|(k, v)| k == "status" && v == "any")
                && r.query.iter().any(|(k, v)| k == "orderby" && v == "id")
                && !r.query.iter().any(|(k, _)| k == "_fields")
        })
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "offset")
                .and_then(|(_, v)| v.parse().ok())
        })
        .collect()
}

#[tokio::test]
async fn pages_are_read_max_concurrency_at_a_time_each_once_and_stored_in_order() {
    let state = store(30);
    let n_any = state
        .orders
        .values()
        .filter(|o| o.status != "trash")
        .count() as u64;
    assert!(n_any > 700, "need many pages: {n_any}");
    for conc in [1usize, 4] {
        let h = Harness::start_with(state.clone(), &format!("max_concurrency = {conc}"), "").await;
        h.sim.set_latency(Duration::from_millis(20));
        let report = h.sync().await;
        assert_eq!(report.status, "ok", "{:?}", report.summary.error);
        assert_eq!(
            h.sim.peak_in_flight(),
            conc,
            "max_concurrency = {conc}: the store never had more (nor fewer) requests at once"
        );
        // Every page once: read-ahead wastes no request. Pages start at the last row of the
        // page before (0, 99, 198, …), up to X-WP-Total.
        let mut offsets = any_offsets(&h);
        offsets.sort_unstable();
        let expected: Vec<u64> = (0..).map(|i| i * 99).take_while(|o| *o < n_any).collect();
        assert_eq!(offsets, expected, "max_concurrency = {conc}");
        // Nothing but the pages and the two store facts (the reconciliation's id listing
        // aside): every backfill's catch-up read is the next run's, which reads from the
        // backfill's start.
        let catch_ups = 0;
        let listing: Vec<_> = h
            .sim
            .requests()
            .into_iter()
            .filter(|r| !r.query.iter().any(|(k, _)| k == "_fields"))
            .collect();
        let backfill = listing
            .iter()
            .filter(|r| r.query.iter().any(|(k, v)| k == "orderby" && v == "id"))
            .count();
        assert_eq!(
            listing.len(),
            backfill + 2 + catch_ups,
            "requests: {:?}",
            listing
                .iter()
                .map(|r| format!("{}?{:?}", r.path, r.query))
                .collect::<Vec<_>>()
        );
        let (ids, rows) = stored(&h);
        assert_eq!(rows, state.orders.len());
        assert_eq!(ids, state.orders.keys().copied().collect());
    }
}

#[tokio::test]
async fn a_failed_page_stores_nothing_after_it_even_when_later_pages_arrived_first() {
    let state = store(30);
    let any: Vec<u64> = state
        .orders
        .values()
        .filter(|o| o.status != "trash")
        .map(|o| o.id)
        .collect();
    let reference = Harness::start(state.clone()).await;
    assert_eq!(reference.sync().await.status, "ok");
    let h = Harness::start_with(state, "max_concurrency = 4", "").await;
    h.sim.set_latency(Duration::from_millis(20));
    // The third page fails on every attempt (max_retries = 3); the fourth and fifth arrive
    // while it is retried.
    h.sim.inject(Fault {
        path_contains: "&offset=198&".into(),
        kind: FaultKind::Status(500),
        times: 4,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    assert!(
        any_offsets(&h).contains(&396),
        "later pages were read ahead: {:?}",
        any_offsets(&h)
    );
    // Exactly the first two pages (rows 0 to 198) are stored, and the cursor is right after them.
    let (ids, _) = stored(&h);
    assert_eq!(ids, any[..199].iter().copied().collect::<BTreeSet<u64>>());
    let cursor = h.cursor("orders").unwrap();
    assert!(cursor.contains("\"offset\":199"), "{cursor}");
    // The next run resumes there and ends with the reference rows.
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(
        dump(&h.settings.database.path),
        dump(&reference.settings.database.path)
    );
}

#[tokio::test]
async fn rows_moving_during_a_concurrent_backfill_under_a_429_storm_lose_no_order() {
    let state = store(30);
    let ids: Vec<u64> = state.orders.keys().copied().collect();
    let live: Vec<u64> = state
        .orders
        .values()
        .filter(|o| o.status != "trash")
        .map(|o| o.id)
        .collect();
    let trashed = state
        .orders
        .values()
        .rev()
        .find(|o| o.status == "trash")
        .map(|o| o.id)
        .expect("the generated store has trashed orders");
    let h = Harness::start_with(state, "max_concurrency = 4\nmax_retries = 10", "").await;
    h.sim.set_latency(Duration::from_millis(10));
    // While the third page is delayed (the pages after it read ahead), rows move both ways:
    // two early orders are trashed and another one, on the delayed page, deleted for good
    // (rows move back), the last trashed one is restored (rows after it move forward), and a
    // new order arrives.
    h.sim.inject(Fault {
        path_contains: "&offset=198&".into(),
        kind: FaultKind::Delay(Duration::from_millis(800)),
        times: 1,
    });
    // A storm on the trash and refund listings, whose first pages leave with the orders' one.
    for (path, kind, times) in [
        (
            "status=trash",
            FaultKind::RateLimited {
                retry_after_secs: 0,
            },
            2,
        ),
        ("/wc/v3/refunds", FaultKind::Status(502), 3),
    ] {
        h.sim.inject(Fault {
            path_contains: path.into(),
            kind,
            times,
        });
    }
    let sync = h.sync();
    let mutate = async {
        h.wait_for_query("offset", "99").await;
        // And on the orders listing, from its second page on: 429s (Retry-After: 0) and 5xx.
        for (path, kind, times) in [
            (
                "status=any&orderby=id",
                FaultKind::RateLimited {
                    retry_after_secs: 0,
                },
                6,
            ),
            ("status=any&orderby=id", FaultKind::Status(503), 3),
        ] {
            h.sim.inject(Fault {
                path_contains: path.into(),
                kind,
                times,
            });
        }
        h.wait_for_query("offset", "396").await;
        h.sim.with_state(|s| {
            s.now_override = None;
            s.set_status(live[0], "trash");
            s.set_status(live[1], "trash");
            s.delete_order(live[250]);
            s.set_status(trashed, "completed");
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
    assert_eq!(report.summary.retries, 14, "the storm happened");
    // The listing itself read every order: the reconciliation that follows a first sync
    // (today) had no order to fetch one by one.
    let single: Vec<String> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/orders/"))
        .map(|r| r.path)
        .collect();
    assert!(single.is_empty(), "orders the listing missed: {single:?}");
    // Every order the store has, once; none it never had.
    let (stored_ids, rows) = stored(&h);
    let expected: BTreeSet<u64> = h.sim.with_state(|s| s.orders.keys().copied().collect());
    let missing: Vec<_> = expected.difference(&stored_ids).collect();
    assert!(missing.is_empty(), "orders never read: {missing:?}");
    let extra: Vec<_> = stored_ids.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "orders the store does not have: {extra:?}"
    );
    assert_eq!(rows, stored_ids.len(), "no duplicate rows");
    assert_eq!(expected.len(), ids.len(), "one deleted, one added");
    facts_kept(&h, "the first sync").await;
    // The orders trashed and restored during the backfill (after their pages were read) are
    // read by the next run, which starts at the backfill's start: the first sync made no
    // catch-up request of its own.
    assert!(
        !h.sim.requests().iter().any(|r| r
            .query
            .iter()
            .any(|(k, _)| k == "modified_after" || k == "after")),
        "a catch-up request in the first sync"
    );
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(
        stored(&h),
        (expected.clone(), expected.len()),
        "still every order, once"
    );
    // The same KPIs as a one-page-at-a-time sync of the store as it is now.
    let now_state = h.sim.with_state(|s| s.clone());
    let reference = Harness::start_with(now_state, "max_concurrency = 1", "").await;
    assert_eq!(reference.sync().await.status, "ok");
    assert_eq!(kpis(&h).await, kpis(&reference).await);
    facts_kept(&h, "the second sync").await;
}

/// The customer facts the store keeps are those a rebuild from its orders gives.
async fn facts_kept(h: &Harness, after: &str) {
    let db = okrsync::store::Store::open(&h.settings.database.path)
        .await
        .unwrap();
    let m = db.customer_facts_mismatches().await.unwrap();
    assert!(m.is_empty(), "customer facts after {after}: {m:#?}");
}

#[tokio::test]
async fn sigkill_at_random_pages_of_a_concurrent_backfill_under_429s_resumes_to_the_same_rows() {
    let state = store(30);
    let reference = Harness::start_with(state.clone(), "max_concurrency = 1", "").await;
    assert_eq!(reference.sync().await.status, "ok");
    let expected = dump(&reference.settings.database.path);
    let expected_kpis = kpis(&reference).await;
    let any: Vec<u64> = state
        .orders
        .values()
        .filter(|o| o.status != "trash")
        .map(|o| o.id)
        .collect();

    let h = Harness::start_with(state, "max_concurrency = 4\nmax_retries = 10", "").await;
    h.sim.set_latency(Duration::from_millis(20));
    // Kill points drawn afresh each run (the seed is in every message).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rng = seed | 1;
    let mut draw = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for round in 0..3 {
        // Some 429s in every round, on whichever pages come next.
        h.sim.inject(Fault {
            path_contains: "orderby=id".into(),
            kind: FaultKind::RateLimited {
                retry_after_secs: 0,
            },
            times: 2,
        });
        let before = h.sim.requests().len();
        let k = 2 + draw(8) as usize;
        let mut child = h.spawn_bin(&["sync"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while h.sim.requests().len() < before + k && child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "seed {seed}: stuck");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = child.kill();
        child.wait().unwrap();
        // Pages are stored in order: the orders stored so far are a prefix of the listing
        // (later columns, such as refunded items, fill in when the refunds are read).
        let (ids, _) = stored(&h);
        let got: Vec<u64> = any.iter().copied().filter(|id| ids.contains(id)).collect();
        assert_eq!(
            got,
            any[..got.len()].to_vec(),
            "seed {seed}, round {round} (killed after {k} requests): a gap in the stored pages"
        );
    }
    let report = h.sync().await;
    assert_eq!(
        report.status, "ok",
        "seed {seed}: {:?}",
        report.summary.error
    );
    assert_eq!(
        dump(&h.settings.database.path),
        expected,
        "seed {seed}: the resumed database differs from an uninterrupted one"
    );
    let (ids, rows) = stored(&h);
    assert_eq!(rows, ids.len(), "seed {seed}: duplicate rows");
    assert_eq!(kpis(&h).await, expected_kpis, "seed {seed}");
}

#[tokio::test]
async fn a_retry_after_holds_every_request_of_the_store_not_only_the_throttled_one() {
    let h = Harness::start_with(store(30), "max_concurrency = 4\nretry_backoff_ms = 40", "").await;
    h.sim.set_latency(Duration::from_millis(30));
    // Pages 2 and 3 are requested together: page 2 gets 429 with Retry-After: 1, page 3 a
    // 503 (retried after ~40 ms by itself).
    h.sim.inject(Fault {
        path_contains: "&offset=99&".into(),
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
        times: 1,
    });
    h.sim.inject(Fault {
        path_contains: "&offset=198&".into(),
        kind: FaultKind::Status(503),
        times: 1,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let reqs = h.sim.requests();
    let throttled = reqs
        .iter()
        .find(|r| r.status == 429)
        .and_then(|r| r.answered)
        .unwrap();
    // Nothing reached the store while the hold lasted (a margin for requests already sent).
    let during: Vec<_> = reqs
        .iter()
        .filter(|r| {
            r.arrived > throttled + Duration::from_millis(10)
                && r.arrived < throttled + Duration::from_millis(900)
        })
        .map(|r| (r.arrived - throttled, r.query.clone()))
        .collect();
    assert!(during.is_empty(), "sent during Retry-After: {during:?}");
    assert_eq!(report.summary.retries, 2);
}

#[tokio::test]
async fn the_reconciliation_lists_ids_max_concurrency_pages_at_a_time() {
    for conc in [1usize, 4] {
        let h = Harness::start_with(
            store(30),
            &format!("max_concurrency = {conc}\nreconcile_schedule = \"* * * * * *\""),
            "",
        )
        .await;
        h.sim.set_latency(Duration::from_millis(20));
        assert_eq!(h.sync().await.status, "ok");
        // Due again a second later, whenever the first one was.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(h.sync().await.status, "ok");
        let ids: Vec<_> = h
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.query.iter().any(|(k, v)| k == "_fields" && v == "id"))
            .collect();
        assert!(ids.len() >= 10, "the id listing ran: {} pages", ids.len());
        // The most id pages the store was answering at once.
        let peak = ids
            .iter()
            .map(|a| {
                ids.iter()
                    .filter(|b| b.arrived <= a.arrived && b.answered.is_some_and(|t| t > a.arrived))
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(peak, conc, "max_concurrency = {conc}");
    }
}

/// A listing answered in one page is read as it was at one instant: its catch-up read is the
/// next run's, not a request right after it (a small store's first sync: the two store facts
/// and one page per listing). What changes after that page is read by the next run, from the
/// backfill's start.
#[tokio::test]
async fn listings_answered_in_one_page_make_no_catch_up_request_and_lose_no_change() {
    let state = store(2);
    let n = state.orders.len();
    assert!(n < 100, "one page each: {n}");
    let h = Harness::start(state).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let requests = h.sim.requests();
    let catch_up: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.query
                .iter()
                .any(|(k, _)| k == "modified_after" || k == "after")
        })
        .collect();
    assert!(catch_up.is_empty(), "catch-up requests: {catch_up:?}");
    assert_eq!(
        requests.len(),
        2 + 3,
        "the store facts and one page per listing: {requests:?}"
    );
    // A change after the first sync (stamped by the store's clock, now) is read by the next
    // run.
    let id = h.sim.with_state(|s| {
        s.now_override = None;
        let id = *s.orders.keys().next().unwrap();
        s.set_status(id, "cancelled");
        id
    });
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let status: String = conn
        .query_row(
            "SELECT status FROM orders WHERE platform_id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "cancelled");
}

/// On a first sync the trash and refund listings are read while the orders backfill runs
/// (sharing the store's window: never more than `max_concurrency` at once), not after it:
/// with the second orders page hanging, their requests still go out. They are stored only
/// after the orders: a sync killed meanwhile resumes to the same rows as one page at a time.
#[tokio::test]
async fn trash_and_refunds_are_read_during_the_orders_backfill_within_the_window() {
    let state = store(30);
    let reference = Harness::start_with(state.clone(), "max_concurrency = 1", "").await;
    assert_eq!(reference.sync().await.status, "ok");
    let h = Harness::start_with(state, "max_concurrency = 4", "").await;
    // The second orders page never answers: the orders backfill cannot pass it.
    h.sim.inject(Fault {
        path_contains: "status=any&orderby=id&order=asc&per_page=100&offset=99&".into(),
        kind: FaultKind::Hang,
        times: 1,
    });
    let has = |r: &okrsync_sim::RequestRecord, k: &str, v: &str| {
        r.query.iter().any(|(a, b)| a == k && b == v)
    };
    let read = |what: &str| {
        h.sim.requests().iter().any(|r| {
            has(r, "orderby", "id")
                && match what {
                    "trash" => has(r, "status", "trash"),
                    _ => r.path.ends_with("/refunds"),
                }
        })
    };
    let mut child = h.spawn_bin(&["sync"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let asked_second = || {
        h.sim
            .requests()
            .iter()
            .any(|r| has(r, "status", "any") && has(r, "orderby", "id") && has(r, "offset", "99"))
    };
    while !(read("trash") && read("refunds") && asked_second()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended while an orders page hung"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the trash and refund listings were not read while the orders backfill waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.kill();
    child.wait().unwrap();
    let second_page = h
        .sim
        .requests()
        .iter()
        .filter(|r| has(r, "status", "any") && has(r, "orderby", "id") && has(r, "offset", "99"))
        .count();
    assert_eq!(
        second_page, 1,
        "read while the second orders page still hung, not after it was asked again"
    );
    assert!(
        h.sim.peak_in_flight() <= 4,
        "never more than max_concurrency"
    );
    // Nothing of them was stored before the orders page they wait for.
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let (trashed, refunds): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM orders WHERE trashed = 1), (SELECT COUNT(*) FROM refunds)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((trashed, refunds), (0, 0), "stored before the orders");
    drop(conn);
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(
        dump(&h.settings.database.path),
        dump(&reference.settings.database.path),
        "the same rows as one page at a time"
    );
    assert_eq!(kpis(&h).await, kpis(&reference).await);
}

/// On a first sync the first page of every listing (orders, trash, refunds) leaves at once:
/// each gives its own `X-WP-Total`, so none waits for another's answer. Before, the trash and
/// refund listings were asked only once the orders' first page had answered.
#[tokio::test]
async fn the_first_pages_of_every_listing_leave_together() {
    let h = Harness::start_with(store(30), "max_concurrency = 4", "").await;
    // None of the four first requests ever answers: each of them can only have left without
    // waiting for another's answer. Had the trash or refund listing waited for the orders'
    // first page (or the pages for the site index), it would never be asked.
    h.sim.inject(Fault {
        path_contains: "orderby=id".into(),
        kind: FaultKind::Hang,
        times: 3,
    });
    h.sim.inject(Fault {
        path_contains: "/wp-json/?&".into(),
        kind: FaultKind::Hang,
        times: 1,
    });
    let mut child = h.spawn_bin(&["sync"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let asked = |want: &str| {
        h.sim.requests().iter().any(|r| {
            let status = |v: &str| r.query.iter().any(|(k, x)| k == "status" && x == v);
            let listing = r.query.iter().any(|(k, v)| k == "orderby" && v == "id");
            match want {
                "index" => r.path == "/wp-json/",
                "refunds" => listing && r.path.ends_with("/refunds"),
                s => listing && status(s),
            }
        })
    };
    while !["index", "any", "trash", "refunds"]
        .iter()
        .all(|w| asked(w))
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended while its first requests hung"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "not every first request left before an answer: index {}, any {}, trash {}, refunds {}",
            asked("index"),
            asked("any"),
            asked("trash"),
            asked("refunds"),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(
        h.sim.requests().iter().all(|r| r.answered.is_none()),
        "all four left before any answer"
    );
    assert!(
        h.sim.peak_in_flight() <= 4,
        "never more than max_concurrency"
    );
}

/// The store facts are read alongside the first pages, but nothing is stored before they
/// are: when they fail, the run fails with their error and stores no page and no cursor,
/// although the first pages had answered.
#[tokio::test]
async fn nothing_is_stored_when_the_store_facts_read_alongside_the_first_pages_fail() {
    let h = Harness::start_with(store(30), "max_concurrency = 4\nmax_retries = 1", "").await;
    // The site index fails (first try and retry) only once a listing page has been answered.
    h.sim.inject(Fault {
        path_contains: "/wp-json/?&".into(),
        kind: FaultKind::StatusAfterAnOk(500),
        times: 2,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(err.contains("/wp-json/") && err.contains("500"), "{err}");
    let answered_page = h
        .sim
        .requests()
        .iter()
        .any(|r| r.query.iter().any(|(k, v)| k == "orderby" && v == "id") && r.status == 200);
    assert!(
        answered_page,
        "the first pages were read alongside the facts"
    );
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let (orders, cursors): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM cursors)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((orders, cursors), (0, 0), "stored before the facts");
}

/// A backfill of several pages leaves its catch-up read to the next run, like a one-page
/// listing: the first sync makes no `modified_after`/`after` request, and its cursor stays at
/// the backfill's start, so an order changed during the backfill (after its page was read) is
/// read by the next run even with no lookback. A cursor set at the backfill's end would skip
/// it.
#[tokio::test]
async fn a_change_during_a_multi_page_backfill_is_read_by_the_next_run_without_a_catch_up_request()
{
    let state = store(30);
    let first_live = state
        .orders
        .values()
        .find(|o| o.status != "trash" && o.status != "cancelled")
        .map(|o| (o.id, o.status.clone()))
        .unwrap();
    let h = Harness::start_with(state, "max_concurrency = 4\nlookback_minutes = 0", "").await;
    // The third orders page answers late, so the backfill ends seconds after the change.
    h.sim.inject(Fault {
        path_contains: "status=any&orderby=id&order=asc&per_page=100&offset=198&".into(),
        kind: FaultKind::Delay(Duration::from_millis(2500)),
        times: 1,
    });
    let sync = h.sync();
    let change = async {
        // The second page is asked once the first has answered: the order was read before.
        h.wait_for_query("offset", "99").await;
        h.sim.with_state(|s| {
            s.now_override = None;
            s.set_status(first_live.0, "cancelled");
        });
    };
    let (report, ()) = tokio::join!(sync, change);
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let catch_up: Vec<_> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| {
            r.query
                .iter()
                .any(|(k, _)| k == "modified_after" || k == "after")
        })
        .collect();
    assert!(catch_up.is_empty(), "catch-up requests: {catch_up:?}");
    let status = |h: &Harness| -> String {
        let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
        conn.query_row(
            "SELECT status FROM orders WHERE platform_id = ?1",
            [first_live.0.to_string()],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(status(&h), first_live.1, "read before the change");
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(status(&h), "cancelled", "the next run read the change");
}

/// `sync --full` overwrites what is stored, so it must store pages in the order it read them:
/// no trash page is read ahead of the orders (a trash page read before an order's `any` page
/// and stored after it would bring back a version the store no longer has). The trash
/// listing's first request leaves only once every orders page has been answered.
#[tokio::test]
async fn a_full_sync_reads_no_trash_ahead_of_the_orders_it_may_overwrite() {
    let h = Harness::start_with(store(30), "max_concurrency = 4", "").await;
    assert_eq!(h.sync().await.status, "ok");
    let before = h.sim.requests().len();
    let out = h.run_bin(&["sync", "--full"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let has = |r: &okrsync_sim::RequestRecord, k: &str, v: &str| {
        r.query.iter().any(|(a, b)| a == k && b == v)
    };
    let reqs = h.sim.requests();
    let reqs = &reqs[before..];
    let last_orders_answer = reqs
        .iter()
        .filter(|r| has(r, "status", "any") && has(r, "orderby", "id"))
        .map(|r| r.answered.expect("every orders page answered"))
        .max()
        .expect("the full sync listed the orders");
    let first_trash = reqs
        .iter()
        .filter(|r| has(r, "status", "trash") && has(r, "orderby", "id"))
        .map(|r| r.arrived)
        .min()
        .expect("the full sync listed the trash");
    assert!(
        first_trash >= last_orders_answer,
        "a trash page was read ahead of the orders in a full sync"
    );
}
