//! Answers that lie: a modification date in the far future, a listing that repeats a row in
//! place of another.

use okrsync::kpi::{KpiId, Value};

use crate::helpers::*;
use crate::woo_kpis::{W, fixture};

fn stored(h: &Harness, id: u64) -> (String, String) {
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    conn.query_row(
        "SELECT status, modified_at FROM orders WHERE platform_id = ?1",
        [id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[tokio::test]
async fn a_bogus_future_modified_date_does_not_freeze_an_order() {
    let fx = fixture();
    let (a, c) = (fx.a, fx.c);
    let h = Harness::start(fx.state).await;
    let now = at(2026, 11, 20, 12, 0);
    // The store answers order A (completed) as processing, with date_modified_gmt in 2099.
    h.sim.with_state(|s| {
        s.now_override = None;
        s.set_status(a, "processing");
        s.orders.get_mut(&a).unwrap().modified = at(2099, 1, 1, 0, 0);
    });
    let out = h.run_bin(&["sync"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "order {a} claims it was modified at 2099-01-01T00:00:00Z"
        )) && stderr.contains("not trusted"),
        "the warning names the order: {stderr}"
    );
    let (status, modified) = stored(&h, a);
    assert_eq!(status, "processing");
    assert!(
        modified.as_str() < "2030",
        "stored at the store's clock: {modified}"
    );
    // The store corrects it: cancelled, at a normal date. The next (incremental) sync reads it.
    h.sim.with_state(|s| s.set_status(a, "cancelled"));
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(stored(&h, a).0, "cancelled");
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(5)));

    // A date within the tolerance is trusted: a store clock 6 hours ahead stamps order C,
    // then the clock is fixed and C is cancelled "earlier" than the stored version. An
    // incremental run keeps the newer-looking version; `sync --full` takes the store's
    // current state as the truth.
    h.sim.with_state(|s| {
        s.now_override = Some(chrono::Utc::now() + chrono::Duration::hours(6));
        s.set_status(c, "on-hold");
        s.now_override = None;
    });
    assert_eq!(h.sync().await.status, "ok");
    assert_eq!(stored(&h, c).0, "on-hold");
    h.sim.with_state(|s| s.set_status(c, "cancelled"));
    let report = h.sync_opts(true).await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    assert_eq!(stored(&h, c).0, "cancelled", "a full sync overwrites");
    assert_eq!(h.kpi(KpiId::Orders, W, now).await, Some(Value::Count(4)));
}

fn stored_ids(h: &Harness) -> std::collections::BTreeSet<u64> {
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    conn.prepare("SELECT platform_id FROM orders WHERE deleted = 0")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap().parse().unwrap())
        .collect()
}

fn big_state() -> okrsync_sim::SimState {
    let mut s = okrsync_sim::SimState::generate(7, at(2026, 11, 1, 0, 0), 30, 15);
    s.consumer_key = KEY.into();
    s.consumer_secret = SECRET.into();
    s.now_override = Some(at(2026, 11, 1, 0, 0));
    s
}

#[tokio::test]
async fn a_listing_that_repeats_a_row_in_place_of_another_loses_no_order() {
    use okrsync_sim::{Fault, FaultKind};
    let state = big_state();
    let all: std::collections::BTreeSet<u64> = state
        .orders
        .values()
        .filter(|o| o.status != "trash")
        .map(|o| o.id)
        .collect();
    let h = Harness::start(state).await;
    // The second backfill page (offset 99, one row of overlap) comes back with its first row
    // twice: as many rows as X-WP-Total promises, but the order at row 100 is not among them.
    // Once: the page is read again and the run goes on.
    h.sim.inject(Fault {
        path_contains: "status=any&orderby=id&order=asc&per_page=100&offset=99&".into(),
        kind: FaultKind::RepeatRow,
        times: 1,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let missing: Vec<u64> = all.difference(&stored_ids(&h)).copied().collect();
    assert!(
        missing.is_empty(),
        "orders hidden by the listing: {missing:?}"
    );

    // A listing that keeps repeating: the run stops before storing the page, says why, and
    // the next run reads it.
    let h = Harness::start(big_state()).await;
    h.sim.inject(Fault {
        path_contains: "status=any&orderby=id&order=asc&per_page=100&offset=99&".into(),
        kind: FaultKind::RepeatRow,
        times: 2,
    });
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("repeats a row in place of another") && err.contains("appears twice"),
        "{err}"
    );
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let missing: Vec<u64> = all.difference(&stored_ids(&h)).copied().collect();
    assert!(
        missing.is_empty(),
        "orders hidden by the listing: {missing:?}"
    );
}

#[tokio::test]
async fn reconciliation_fetches_orders_the_store_lists_but_the_database_lacks() {
    // However an order went missing (a listing that hid it, an older version's bug), the
    // reconciliation's id listing names it: it is fetched and stored, and the log says so.
    let state = big_state();
    let h = Harness::start_with(state, "reconcile_schedule = \"* * * * * *\"", "").await;
    assert_eq!(h.sync().await.status, "ok");
    let all = stored_ids(&h);
    let lost: Vec<u64> = all.iter().copied().skip(50).step_by(97).take(3).collect();
    {
        let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
        for id in &lost {
            conn.execute(
                "DELETE FROM orders WHERE platform_id = ?1",
                [id.to_string()],
            )
            .unwrap();
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = h.run_bin(&["sync"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let names = lost
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        stderr.contains(&format!(
            "3 orders listed by the store are missing from the database ({names})"
        )),
        "{stderr}"
    );
    assert_eq!(stored_ids(&h), all, "every lost order is back");
}
