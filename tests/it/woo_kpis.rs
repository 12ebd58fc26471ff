//! KPIs from a real sync over HTTP equal hand-computed values on a small fixed dataset.
//!
//! Store: Europe/Paris, EUR, 20 % tax. Window W = 2026-10-01..2026-10-25 (the last day is the
//! 25-hour day when clocks go back). Orders (UTC creation → Paris local):
//!
//! | order | customer | status | created (Paris) | items | notes |
//! |---|---|---|---|---|---|
//! | L | guest dana (`Dana@…`) | completed | 09-10 | MUG 1×10 | before W |
//! | I | #501 ann | completed | 09-20 | MUG 1×10 | before W |
//! | K | guest gil | completed | 10-01 00:30 | TEE 1×25 | first minute-ish of W |
//! | A | #501 ann | completed | 10-05 | MUG 2×10, ship 5 | total 30.00 |
//! | B | guest `ANN@Example.com ` | processing | 10-10 | TEE 1×25, coupon 5 | merges into #501 |
//! | E | guest carl | cancelled | 10-12 | TEE 1×25 | excluded |
//! | P | #504 | pending | 10-13 | MUG 1×10 | excluded |
//! | F | guest dana | completed | 10-15 | MUG 3×10, TEE 1×25 | partial refund 1 MUG (12.00) |
//! | H | #503 finn | completed→trash | 10-18 | MUG 1×10 | trashed |
//! | G | guest eve | completed | 10-20 | TEE 1×25 | amount-only refund 5.00 |
//! | C | #502 bob | refunded | 10-25 23:30 | MUG 1×10 | full refund (12.00) |
//! | D | #502 bob | processing | 10-26 00:30 | TEE 1×25 | after W |
//!
//! Counted in W: K, A, B, F, G, C → 6 orders.
//! gross = 25 + 20 + 25 + 55 + 25 + 10 = 160.00; discounts = 5.00 (B);
//! returns = F 10.00 + C 10.00 = 20.00 (G's amount-only refund has no items);
//! net = 160 − 5 − 20 = 135.00.
//! totals = K 30 + A 30 + B 24 + F 66 + G 30 + C 12 = 192.00; refunded = 12 + 5 + 12 = 29.00;
//! total_sales = 163.00. AOV = (160 − 5) / 6 = 25.8333… → 25.83.
//! Customers in W: #501 (A, B), dana (F), eve (G), gil (K), #502 (C) → 5.
//! repeat = {#501} → 1/5 = 0.2; returning = {#501 (I), dana (L)} → 2/5 = 0.4;
//! new = {eve, gil, #502} → 3; refund_rate = {F, G, C} → 3/6 = 0.5.
//! MUG in W: A 2×10, F 3×10, C 1×10 → 60.00 − refunded 10 (F) − 10 (C) = 40.00; units 6 − 2 = 4.
//!
//! Spring DST: 2026-03-29 in Paris is 23 hours (00:00 = 03-28T23:00Z, ends 03-29T22:00Z).
//! Orders at 03-28T23:30Z (00:30 local, in), 03-29T21:59Z (23:59 local, in), 03-29T22:00Z
//! (00:00 on 03-30, out), 03-28T22:30Z (23:30 on 03-28, out), 03-29T23:30Z (01:30 on 03-30,
//! out) → 2 orders on that day (UTC days, +01:00 or +02:00 would each give 3).

use okrsync::kpi::{KpiId, Value};
use okrsync_sim::{NewOrder, SimState};

use crate::helpers::*;

pub struct Fixture {
    pub state: SimState,
    pub a: u64,
    pub c: u64,
}

/// Builds the dataset above. Everything is stamped as modified on 2026-11-01, long before the
/// tests run, so that later changes are the only recent ones.
pub fn fixture() -> Fixture {
    let mut s = empty_state();
    s.now_override = Some(at(2026, 11, 1, 0, 0));
    let mug = |o: NewOrder, q| o.line(11, "MUG", "Mug", q, dec("10.00"));
    let tee = |o: NewOrder| o.line(12, "TEE", "Tee", 1, dec("25.00"));
    s.add_order(mug(
        NewOrder::new("completed", at(2026, 9, 10, 10, 0), "Dana@example.com"),
        1,
    ));
    s.add_order(mug(
        NewOrder::new("completed", at(2026, 9, 20, 10, 0), "ann@example.com").customer(501),
        1,
    ));
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 9, 30, 22, 30),
        "gil@example.com",
    )));
    let a = s.add_order(
        mug(
            NewOrder::new("completed", at(2026, 10, 5, 10, 0), "ann@example.com").customer(501),
            2,
        )
        .shipping(dec("5.00")),
    );
    s.add_order(
        tee(NewOrder::new(
            "processing",
            at(2026, 10, 10, 12, 0),
            "ANN@Example.com ",
        ))
        .coupon("TEN", dec("5.00")),
    );
    s.add_order(tee(NewOrder::new(
        "cancelled",
        at(2026, 10, 12, 9, 0),
        "carl@example.com",
    )));
    s.add_order(mug(
        NewOrder::new("pending", at(2026, 10, 13, 9, 0), "pat@example.com").customer(504),
        1,
    ));
    let f = s.add_order(tee(mug(
        NewOrder::new("completed", at(2026, 10, 15, 9, 0), "dana@example.com"),
        3,
    )));
    let h = s.add_order(mug(
        NewOrder::new("completed", at(2026, 10, 18, 9, 0), "finn@example.com").customer(503),
        1,
    ));
    let g = s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 10, 20, 9, 0),
        "eve@example.com",
    )));
    let c = s.add_order(mug(
        NewOrder::new("completed", at(2026, 10, 25, 22, 30), "bob@example.com").customer(502),
        1,
    ));
    s.add_order(tee(NewOrder::new(
        "processing",
        at(2026, 10, 25, 23, 30),
        "bob@example.com",
    )
    .customer(502)));
    // Spring DST day.
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 3, 28, 23, 30),
        "s1@example.com",
    )));
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 3, 29, 21, 59),
        "s2@example.com",
    )));
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 3, 29, 22, 0),
        "s3@example.com",
    )));
    // Out too, and they tell the zone apart from fixed offsets and UTC: 23:30 on 03-28 (CET)
    // and 01:30 on 03-30 (CEST). UTC days, +01:00 or +02:00 would each count 3 orders.
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 3, 28, 22, 30),
        "s4@example.com",
    )));
    s.add_order(tee(NewOrder::new(
        "completed",
        at(2026, 3, 29, 23, 30),
        "s5@example.com",
    )));
    // Refunds: partial (one mug of F), amount-only (G), full (C); trash H.
    let f_mug = s.orders[&f]
        .lines
        .iter()
        .find(|l| l.sku == "MUG")
        .unwrap()
        .id;
    s.refund(f, &[(f_mug, 1)], dec("0"));
    s.refund(g, &[], dec("5.00"));
    let c_line = s.orders[&c].lines[0].id;
    s.refund(c, &[(c_line, 1)], dec("0"));
    s.set_status(h, "trash");
    Fixture { state: s, a, c }
}

pub const W: &str = "2026-10-01..2026-10-25";

#[tokio::test]
async fn kpis_match_hand_computed_values() {
    let fx = fixture();
    assert_eq!(
        fx.state.orders[&fx.c].status, "refunded",
        "full refund sets refunded"
    );
    let h = Harness::start(fx.state).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let now = at(2026, 11, 20, 12, 0);
    let k = |id| {
        let h = &h;
        async move { h.kpi(id, W, now).await }
    };
    assert_eq!(k(KpiId::Orders).await, Some(Value::Count(6)));
    assert_eq!(
        k(KpiId::GrossSales).await,
        Some(Value::Money(dec("160.00")))
    );
    assert_eq!(k(KpiId::Discounts).await, Some(Value::Money(dec("5.00"))));
    assert_eq!(k(KpiId::Returns).await, Some(Value::Money(dec("20.00"))));
    assert_eq!(k(KpiId::NetSales).await, Some(Value::Money(dec("135.00"))));
    assert_eq!(
        k(KpiId::TotalSales).await,
        Some(Value::Money(dec("163.00")))
    );
    let aov = k(KpiId::AverageOrderValue).await.unwrap();
    assert_eq!(aov.display(), "25.83");
    assert_eq!(
        k(KpiId::RepeatPurchaseRate).await,
        Some(Value::Rate(dec("0.2")))
    );
    assert_eq!(
        k(KpiId::ReturningCustomerRate).await,
        Some(Value::Rate(dec("0.4")))
    );
    assert_eq!(k(KpiId::NewCustomers).await, Some(Value::Count(3)));
    assert_eq!(k(KpiId::RefundRate).await, Some(Value::Rate(dec("0.5"))));
    // Nothing linked: null, never 0.
    assert_eq!(k(KpiId::ConversionRate).await, None);
    // Spring-forward day.
    assert_eq!(
        h.kpi(KpiId::Orders, "2026-03-29..2026-03-29", now).await,
        Some(Value::Count(2))
    );
}

#[tokio::test]
async fn product_kpis_and_json_contract_through_the_binary() {
    let h = Harness::start(fixture().state).await;
    assert_eq!(h.sync().await.status, "ok");
    let out = h
        .run_bin(&[
            "kpis",
            "--window",
            W,
            "--product",
            "MUG",
            "--format",
            "json",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["store"], "main");
    assert_eq!(json["window"]["from"], "2026-10-01");
    assert_eq!(json["window"]["to"], "2026-10-25");
    assert_eq!(json["window"]["timezone"], "Europe/Paris");
    assert_eq!(json["currency"], "EUR");
    let kpis = &json["kpis"];
    assert_eq!(kpis["orders"], serde_json::json!(6), "counts are integers");
    assert_eq!(
        kpis["net_sales"],
        serde_json::json!("135.00"),
        "money is a decimal string"
    );
    assert_eq!(kpis["average_order_value"], serde_json::json!("25.83"));
    assert_eq!(
        kpis["refund_rate"],
        serde_json::json!(0.5),
        "rates are fractions"
    );
    assert_eq!(kpis["conversion_rate"], serde_json::Value::Null);
    assert_eq!(kpis["product_net_sales"], serde_json::json!("40.00"));
    assert_eq!(kpis["product_units"], serde_json::json!(4));
}

#[tokio::test]
async fn trashed_orders_are_stored_but_never_count() {
    let h = Harness::start(fixture().state).await;
    assert_eq!(h.sync().await.status, "ok");
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let (trashed, counted): (i64, i64) = conn
        .query_row(
            "SELECT trashed, counted FROM orders WHERE status = 'trash'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((trashed, counted), (1, 0));
    // The trash listing was read explicitly: `status=any` omits it.
    assert!(
        h.sim
            .requests()
            .iter()
            .any(|r| r.query.iter().any(|(k, v)| k == "status" && v == "trash"))
    );
}

#[tokio::test]
async fn raw_emails_never_reach_the_database() {
    let h = Harness::start(fixture().state).await;
    assert_eq!(h.sync().await.status, "ok");
    let bytes = std::fs::read(&h.settings.database.path).unwrap();
    let wal = std::fs::read(h.settings.database.path.with_extension("db-wal")).unwrap_or_default();
    for hay in [&bytes, &wal] {
        let text = String::from_utf8_lossy(hay).to_lowercase();
        assert!(
            !text.contains("@example.com"),
            "an email was stored in clear"
        );
    }
}

#[tokio::test]
async fn refunds_are_read_per_order_on_stores_without_the_refunds_listing() {
    let mut fx = fixture();
    fx.state.refunds_listing = false;
    let h = Harness::start(fx.state).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(
        h.kpi(KpiId::Returns, W, now).await,
        Some(Value::Money(dec("20.00")))
    );
    let per_order = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/refunds") && r.path.contains("/orders/"))
        .count();
    assert_eq!(per_order, 3, "one request per order with refunds (F, G, C)");
    let _ = fx.a;
}
