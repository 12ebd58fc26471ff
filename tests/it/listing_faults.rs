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
            "order {a} claims date_modified_gmt 2099-01-01T00:00:00"
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
