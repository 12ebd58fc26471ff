//! Cheap polling: a sync with nothing new asks the store only for what changed; store facts
//! (time zone, currency) are read once a day, or at once with `sync --full`.

use chrono::TimeDelta;
use okrsync::daemon::sync::{SyncReport, sync_store};
use okrsync::daemon::{Clock, Shutdown};
use okrsync::sources::QuietProgress;
use okrsync_sim::RequestRecord;

use crate::helpers::*;
use crate::woo_kpis::fixture;

async fn sync_at(h: &Harness, clock: &Clock, full: bool) -> SyncReport {
    let r = sync_store(
        &h.settings.stores[0],
        &h.db,
        clock,
        &Shutdown::never(),
        &QuietProgress,
        full,
    )
    .await
    .unwrap();
    assert_eq!(r.status.as_str(), "ok", "{:?}", r.summary.error);
    r
}

/// Moves okrsync's clock to `t`, and the store's clock with it (WooCommerce checks OAuth
/// timestamps against its own clock).
fn set_time(h: &Harness, clock: &Clock, t: chrono::DateTime<chrono::Utc>) {
    clock.set(t);
    h.sim
        .with_state(|s| s.date_skew = Some(t - chrono::Utc::now()));
}

fn reads_facts(reqs: &[RequestRecord]) -> bool {
    reqs.iter()
        .any(|r| r.path == "/wp-json/" || r.path.ends_with("/settings/general"))
}

async fn stored_tz(h: &Harness) -> String {
    h.db.store_row("main")
        .await
        .unwrap()
        .unwrap()
        .timezone
        .unwrap()
}

#[tokio::test]
async fn a_sync_with_nothing_new_makes_three_requests_and_facts_are_read_again_after_a_day() {
    let h = Harness::start(fixture().state).await;
    let t0 = at(2026, 11, 2, 8, 0);
    let clock = Clock::fixed(t0);
    set_time(&h, &clock, t0);
    sync_at(&h, &clock, false).await;
    assert!(
        reads_facts(&h.sim.requests()),
        "the first sync reads the facts"
    );
    assert_eq!(stored_tz(&h).await, "Europe/Paris");

    // The store moves to another time zone; okrsync keeps the facts it read for a day.
    h.sim
        .with_state(|s| s.timezone_string = "America/New_York".into());
    for hours in [1, 23] {
        set_time(&h, &clock, t0 + TimeDelta::hours(hours));
        let before = h.sim.requests().len();
        let report = sync_at(&h, &clock, false).await;
        let reqs = h.sim.requests()[before..].to_vec();
        let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
        // (After 23 h the daily deleted-order reconciliation may also be due.)
        if hours == 1 {
            assert!(
                reqs.len() <= 3,
                "nothing new: at most 3 requests, got {paths:?}"
            );
        }
        assert!(!reads_facts(&reqs), "fresh facts are reused: {paths:?}");
        assert_eq!(report.summary.requests, reqs.len() as u64);
        assert_eq!(stored_tz(&h).await, "Europe/Paris");
    }

    // A day after they were read, the next sync reads them again.
    set_time(&h, &clock, t0 + TimeDelta::hours(24));
    let before = h.sim.requests().len();
    sync_at(&h, &clock, false).await;
    assert!(reads_facts(&h.sim.requests()[before..]));
    assert_eq!(stored_tz(&h).await, "America/New_York");

    // And they are fresh again.
    set_time(&h, &clock, t0 + TimeDelta::hours(25));
    let before = h.sim.requests().len();
    sync_at(&h, &clock, false).await;
    assert!(!reads_facts(&h.sim.requests()[before..]));
}

#[tokio::test]
async fn sync_full_and_a_changed_config_read_the_facts_at_once() {
    let h = Harness::start(fixture().state).await;
    let clock = Clock::fixed(at(2026, 11, 2, 8, 0));
    set_time(&h, &clock, at(2026, 11, 2, 8, 0));
    sync_at(&h, &clock, false).await;
    h.sim.with_state(|s| s.currency = "USD".into());

    let before = h.sim.requests().len();
    sync_at(&h, &clock, true).await;
    assert!(
        reads_facts(&h.sim.requests()[before..]),
        "--full reads them"
    );
    let row = h.db.store_row("main").await.unwrap().unwrap();
    assert_eq!(row.currency.as_deref(), Some("USD"));

    // A time zone set in the config applies at the next run, fresh facts or not.
    let mut store = h.settings.stores[0].clone();
    store.timezone = Some(okrsync::domain::StoreTz::parse("Asia/Tokyo").unwrap());
    let r = sync_store(
        &store,
        &h.db,
        &clock,
        &Shutdown::never(),
        &QuietProgress,
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status.as_str(), "ok", "{:?}", r.summary.error);
    assert_eq!(stored_tz(&h).await, "Asia/Tokyo");
    // Removed again: what the store says, not the old configured zone.
    sync_at(&h, &clock, false).await;
    assert_eq!(stored_tz(&h).await, "Europe/Paris");
}

/// Which orders count is re-derived only when the status rules change (not on every run),
/// and then at once, before any page is read.
#[tokio::test]
async fn changed_status_rules_still_re_derive_which_orders_count() {
    use okrsync::config::PlatformSettings;
    use okrsync::kpi::{KpiId, Value};

    let h = Harness::start(fixture().state).await;
    let clock = Clock::fixed(at(2026, 11, 2, 8, 0));
    set_time(&h, &clock, at(2026, 11, 2, 8, 0));
    let now = at(2026, 11, 20, 12, 0);
    let w = crate::woo_kpis::W;
    sync_at(&h, &clock, false).await;
    assert_eq!(h.kpi(KpiId::Orders, w, now).await, Some(Value::Count(6)));

    let with_rules = |counted: Option<Vec<String>>| {
        let mut store = h.settings.stores[0].clone();
        let PlatformSettings::WooCommerce(ws) = &mut store.platform else {
            unreachable!()
        };
        ws.counted_statuses = counted;
        store
    };
    let run = async |store| {
        let r = sync_store(
            &store,
            &h.db,
            &clock,
            &Shutdown::never(),
            &QuietProgress,
            false,
        )
        .await
        .unwrap();
        assert_eq!(r.status.as_str(), "ok", "{:?}", r.summary.error);
    };
    // Only completed orders count: as many as in a database synced under that rule alone.
    let fresh =
        Harness::start_with(fixture().state, "counted_statuses = [\"completed\"]", "").await;
    assert_eq!(fresh.sync().await.status.as_str(), "ok");
    let expected = fresh.kpi(KpiId::Orders, w, now).await;
    assert!(
        expected.as_ref().is_some_and(|v| *v != Value::Count(6)),
        "{expected:?}"
    );
    run(with_rules(Some(vec!["completed".into()]))).await;
    assert_eq!(h.kpi(KpiId::Orders, w, now).await, expected);
    // Back to the default rules.
    run(with_rules(None)).await;
    assert_eq!(h.kpi(KpiId::Orders, w, now).await, Some(Value::Count(6)));
}
