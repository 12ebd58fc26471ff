//! A window-limited load (what `okrsync kpis` and key-result evaluation read) gives exactly the
//! KPIs of a load of the whole history, for every KPI and many windows.
//!
//! The history is generated (3½ years, ~2,400 orders) with everything the customer and refund
//! rules touch: registered customers with several emails, guest orders merged into accounts,
//! an email on two accounts whose ids compare differently as numbers and as text, cancelled
//! orders that link an email to an account, deleted orders, anonymous orders, customers whose
//! first order is long before the window, and refunds made inside a window for orders created
//! before it (refunds count on the order's creation day).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use okrsync::domain::{
    CustomerRef, Order, OrderLine, Platform, Refund, RefundLine, StoreInfo, StoreTz,
};
use okrsync::kpi::{
    self, DateRange, KpiError, KpiId, KpiSpec, StoreData, Value, WindowSpec, WindowedStore,
};
use okrsync::store::{Page, Store};
use rust_decimal::Decimal;

/// A small deterministic generator (no test depends on a random seed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 14, 10, 0, 0).unwrap()
}

fn money(cents: u64) -> Decimal {
    Decimal::new(cents as i64, 2)
}

/// Who places an order.
fn customer(g: &mut Lcg) -> CustomerRef {
    let (id, email) = match g.below(20) {
        // Registered, with their main email, a second one, or none.
        0..=9 => {
            let n = 1 + g.below(150);
            let email = match g.below(10) {
                0 => None,
                1 | 2 => Some(format!("second{n}@example.com")),
                _ => Some(format!("c{n}@example.com")),
            };
            (Some(n.to_string()), email)
        }
        // A guest using a registered customer's email (any case, blanks): merged into them.
        10..=11 => (None, Some(format!(" C{}@Example.com", 1 + g.below(150)))),
        // A guest with an email no account carries.
        12..=16 => (None, Some(format!("guest{}@example.com", g.below(120)))),
        // An email on two accounts, 9 and 10 ("9" < "10" as numbers, not as text): guest
        // orders with it belong to 9.
        17 => match g.below(3) {
            0 => (Some("9".into()), Some("shared@example.com".into())),
            1 => (Some("10".into()), Some("shared@example.com".into())),
            _ => (None, Some("shared@example.com".into())),
        },
        // Anonymous: a customer of its own.
        _ => (None, None),
    };
    CustomerRef {
        platform_id: id,
        email,
    }
}

/// The generated history and the ids of the orders to delete afterwards.
fn history() -> (Vec<Order>, Vec<Refund>, Vec<String>) {
    let mut g = Lcg(16);
    let start = Utc.with_ymd_and_hms(2022, 11, 1, 0, 0, 0).unwrap();
    let span = (now() - start).num_seconds() as u64;
    let mut orders = Vec::new();
    let mut refunds = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..2400u64 {
        let id = format!("{}", 1000 + i);
        // Many orders near the window edges of "now" too, not only spread evenly.
        let created = if i % 10 == 0 {
            now() - Duration::seconds(g.below(120 * 86_400) as i64)
        } else {
            start + Duration::seconds(g.below(span) as i64)
        };
        let counted = g.below(8) != 0;
        let mut lines = Vec::new();
        let mut first_line = (String::new(), 0u64);
        let (mut gross, mut net) = (0u64, 0u64);
        for l in 0..1 + g.below(3) {
            let qty = 1 + g.below(3);
            let price = 500 + g.below(5000);
            let discount = if g.below(4) == 0 { price / 10 } else { 0 };
            let sub = qty * price;
            let tot = sub - qty * discount;
            gross += sub;
            net += tot;
            if l == 0 {
                first_line = (format!("{id}-{l}"), tot / qty);
            }
            let product = format!("P{}", 1 + g.below(5));
            lines.push(OrderLine {
                line_id: format!("{id}-{l}"),
                sku: (g.below(2) == 0).then(|| format!("SKU-{product}")),
                product_id: Some(product),
                name: "item".into(),
                quantity: Decimal::from(qty),
                subtotal: money(sub),
                total: money(tot),
                tax: money(tot / 5),
            });
        }
        let shipping = 500;
        let total = net + net / 5 + shipping;
        let mut refund_ids = Vec::new();
        let mut refunded = 0;
        if counted && g.below(6) == 0 {
            // Refunded up to four months later: often inside a later window.
            let rid = format!("r{id}");
            let at = created + Duration::seconds(g.below(120 * 86_400) as i64);
            let (amount, rl) = if g.below(3) == 0 {
                (700, Vec::new()) // amount-only
            } else {
                let (line, unit) = &first_line;
                (
                    unit + unit / 5,
                    vec![RefundLine {
                        order_line_id: line.clone(),
                        quantity: Decimal::ONE,
                        amount: money(*unit),
                    }],
                )
            };
            refunded = amount;
            refund_ids.push(rid.clone());
            refunds.push(Refund {
                platform_id: rid,
                order_id: id.clone(),
                created_at: at.min(now()),
                amount: money(amount),
                lines: rl,
            });
        }
        let customer = customer(&mut g);
        if g.below(60) == 0 {
            deleted.push(id.clone());
        }
        orders.push(Order {
            platform_id: id.clone(),
            number: id,
            created_at: created,
            modified_at: created,
            status: if counted { "completed" } else { "cancelled" }.into(),
            counted,
            currency: "EUR".into(),
            items_gross: money(gross),
            discounts: money(gross - net),
            shipping: money(shipping),
            tax: money(net / 5),
            total: money(total),
            refunded: money(refunded),
            customer,
            test: false,
            trashed: false,
            lines,
            refund_ids,
            refunds: None,
        });
    }
    // A deleted order that would otherwise give the shared email to account 1.
    orders.push(Order {
        platform_id: "999".into(),
        number: "999".into(),
        created_at: now() - Duration::days(400),
        modified_at: now() - Duration::days(400),
        customer: CustomerRef {
            platform_id: Some("1".into()),
            email: Some("shared@example.com".into()),
        },
        ..orders[0].clone()
    });
    deleted.push("999".into());
    (orders, refunds, deleted)
}

async fn seeded_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open(&dir.path().join("okrsync.db")).await.unwrap();
    let id = db
        .ensure_store("main", Platform::WooCommerce, "shop.example")
        .await
        .unwrap();
    let info = StoreInfo {
        timezone: StoreTz::parse("Europe/Paris").unwrap(),
        currency: "EUR".into(),
    };
    db.update_store_info(id, info, "", now()).await.unwrap();
    let (orders, refunds, deleted) = history();
    for chunk in orders.chunks(500) {
        let page = Page {
            orders: chunk.to_vec(),
            ..Page::default()
        };
        db.commit_page(id, page, now()).await.unwrap();
        assert_facts_kept(&db, "a page of orders").await;
    }
    let page = Page {
        refunds,
        ..Page::default()
    };
    db.commit_page(id, page, now()).await.unwrap();
    assert_facts_kept(&db, "the refunds").await;
    db.mark_orders_deleted(id, deleted, None, now())
        .await
        .unwrap();
    assert_facts_kept(&db, "the deletions").await;
    db.mark_complete(id, now()).await.unwrap();
    (dir, db)
}

fn windows() -> Vec<WindowSpec> {
    [
        "today",
        "yesterday",
        "last_7_days",
        "last_30_days",
        "last_90_days",
        "week_to_date",
        "month_to_date",
        "quarter_to_date",
        "year_to_date",
        "previous_month",
        "previous_quarter",
        "previous_year",
        // The whole history and more (the longest window there is).
        "2000-01-01..2100-12-31",
        // The day clocks go forward in Paris (23 hours).
        "2026-03-29..2026-03-29",
        "2024-02-01..2024-02-29",
        // No order at all.
        "2010-01-01..2010-12-31",
    ]
    .iter()
    .map(|w| w.parse().unwrap())
    .collect()
}

fn specs() -> Vec<KpiSpec> {
    KpiId::ALL
        .iter()
        .map(|id| KpiSpec {
            id: *id,
            product: id.needs_product().then(|| "P1".to_string()),
        })
        .chain(
            // A product named by its SKU.
            [KpiId::ProductNetSales, KpiId::ProductUnits].map(|id| KpiSpec {
                id,
                product: Some("SKU-P2".into()),
            }),
        )
        .collect()
}

fn compute(spec: &KpiSpec, store: &StoreData, w: &WindowSpec) -> Result<kpi::Computed, KpiError> {
    let range: DateRange = w.resolve(store.tz.local_date(now()));
    kpi::compute(spec, &[WindowedStore { store, range }])
}

/// The customer facts the store keeps (migration 10) are those a rebuild from its orders
/// gives, and no write is left unfolded into them.
async fn assert_facts_kept(db: &Store, after: &str) {
    let m = db.customer_facts_mismatches().await.unwrap();
    assert!(m.is_empty(), "customer facts after {after}: {m:#?}");
}

#[tokio::test]
async fn window_limited_loads_give_the_kpis_of_the_whole_history() {
    let (_dir, db) = seeded_store().await;
    let tz = None;
    let full = db.load_store_data("main", tz, true).await.unwrap().unwrap();
    // Every window at once (as for many key results) and each window on its own (`kpis`).
    let all = db
        .load_store_windows("main", tz, true, windows(), now())
        .await
        .unwrap()
        .unwrap();
    assert!(all.partial.is_some());
    let mut compared = 0;
    for w in windows() {
        let one = db
            .load_store_windows("main", tz, true, vec![w.clone()], now())
            .await
            .unwrap()
            .unwrap();
        if w != "2000-01-01..2100-12-31".parse().unwrap() {
            assert!(
                one.orders.len() < full.orders.len(),
                "{w}: the load is not limited to the window"
            );
        }
        for spec in specs() {
            let expected = compute(&spec, &full, &w);
            assert_eq!(compute(&spec, &one, &w), expected, "{} over {w}", spec.id);
            assert_eq!(
                compute(&spec, &all, &w),
                expected,
                "{} over {w} (all windows)",
                spec.id
            );
            compared += 1;
        }
    }
    assert_eq!(compared, windows().len() * specs().len());

    // The history exercises what it is meant to: customers who ordered before the quarter,
    // new ones, repeat buyers, refunds, and product lines.
    let q: WindowSpec = "quarter_to_date".parse().unwrap();
    let value = |id: KpiId| {
        compute(&KpiSpec { id, product: None }, &full, &q)
            .unwrap()
            .value
            .unwrap()
    };
    let rate = |id| match value(id) {
        Value::Rate(r) => r,
        v => panic!("{v:?}"),
    };
    for id in [
        KpiId::ReturningCustomerRate,
        KpiId::RepeatPurchaseRate,
        KpiId::RefundRate,
    ] {
        let r = rate(id);
        assert!(r > Decimal::ZERO && r < Decimal::ONE, "{id}: {r}");
    }
    assert!(matches!(value(KpiId::NewCustomers), Value::Count(n) if n > 0));
    assert!(matches!(value(KpiId::Returns), Value::Money(m) if m > Decimal::ZERO));
}

/// A refund made in a window for an order created before it does not count in that window,
/// and a customer whose only earlier order is before the window is returning: the two rules
/// a load of "the window's rows" alone gets wrong.
#[tokio::test]
async fn refunds_count_on_the_order_day_and_first_orders_before_the_window_count() {
    let (_dir, db) = seeded_store().await;
    let w: WindowSpec = "last_30_days".parse().unwrap();
    let one = db
        .load_store_windows("main", None, false, vec![w.clone()], now())
        .await
        .unwrap()
        .unwrap();
    let range = w.resolve(NaiveDate::from_ymd_opt(2026, 5, 14).unwrap());
    let (start, _) = range.utc_bounds(&one.tz);
    assert!(
        one.orders
            .iter()
            .all(|o| o.created_at >= start && o.counted)
    );
    // Refunds made in the window for orders created before it exist in the history...
    let (orders, refunds, _) = history();
    let created: std::collections::HashMap<&str, DateTime<Utc>> = orders
        .iter()
        .map(|o| (o.platform_id.as_str(), o.created_at))
        .collect();
    let late: Vec<&Refund> = refunds
        .iter()
        .filter(|r| r.created_at >= start && created[r.order_id.as_str()] < start)
        .collect();
    assert!(!late.is_empty());
    // ...and their orders are not in the window's load.
    for r in late {
        assert!(one.orders.iter().all(|o| o.order_id != r.order_id));
    }
    let history = &one.partial.as_ref().unwrap().customers;
    assert!(
        history.first_by_id.values().any(|f| *f < start),
        "no customer of the window ordered before it"
    );
    let returning = compute(
        &KpiSpec {
            id: KpiId::ReturningCustomerRate,
            product: None,
        },
        &one,
        &w,
    )
    .unwrap();
    assert!(matches!(returning.value, Some(Value::Rate(r)) if r > Decimal::ZERO));
}

/// A KPI over a window the load did not cover is an error naming the window, never a silent 0.
#[tokio::test]
async fn windows_outside_a_limited_load_are_refused() {
    let (_dir, db) = seeded_store().await;
    let loaded: WindowSpec = "last_7_days".parse().unwrap();
    let data = db
        .load_store_windows("main", None, false, vec![loaded], now())
        .await
        .unwrap()
        .unwrap();
    let spec = KpiSpec {
        id: KpiId::Orders,
        product: None,
    };
    let err = compute(&spec, &data, &"quarter_to_date".parse().unwrap()).unwrap_err();
    assert!(
        matches!(&err, KpiError::Incomplete { store, what } if store == "main" && what.contains("2026-04-01..2026-05-14")),
        "{err}"
    );
}

/// A load of some products' lines (what key results naming products read) gives those
/// products' KPIs of the whole history, every KPI of the window together gives what each gives
/// alone, and a product whose lines were not loaded is an error, never a silent 0.
#[tokio::test]
async fn lines_of_named_products_only_give_their_kpis_and_refuse_the_others() {
    let (_dir, db) = seeded_store().await;
    let full = db
        .load_store_data("main", None, true)
        .await
        .unwrap()
        .unwrap();
    let products: std::collections::BTreeSet<String> = ["P1".to_string(), "SKU-P2".to_string()]
        .into_iter()
        .collect();
    for w in windows() {
        let some = db
            .load_store_windows_with(
                "main",
                None,
                okrsync::store::Lines::Products(products.clone()),
                vec![w.clone()],
                now(),
            )
            .await
            .unwrap()
            .unwrap();
        let range: DateRange = w.resolve(some.tz.local_date(now()));
        let inputs = [WindowedStore {
            store: &some,
            range,
        }];
        let together = kpi::compute_many(&specs(), &inputs);
        for (spec, got) in specs().iter().zip(together) {
            assert_eq!(got, compute(spec, &full, &w), "{} over {w}", spec.id);
        }
        // A product the load does not name (its lines exist in the history).
        for id in [KpiId::ProductNetSales, KpiId::ProductUnits] {
            let spec = KpiSpec {
                id,
                product: Some("P3".into()),
            };
            let err = compute(&spec, &some, &w).unwrap_err();
            assert!(
                matches!(&err, KpiError::Incomplete { what, .. } if what.contains("product P3")),
                "{err}"
            );
        }
    }
    // Without lines, a product KPI is refused too.
    let w: WindowSpec = "last_30_days".parse().unwrap();
    let none = db
        .load_store_windows("main", None, false, vec![w.clone()], now())
        .await
        .unwrap()
        .unwrap();
    let spec = KpiSpec {
        id: KpiId::ProductUnits,
        product: Some("P1".into()),
    };
    assert!(matches!(
        compute(&spec, &none, &w),
        Err(KpiError::Incomplete { .. })
    ));
}

/// A one-order-per-line test order: created at noon UTC on `day`.
fn order(id: &str, day: (i32, u32, u32), counted: bool, cust: Option<&str>, email: &str) -> Order {
    let created = Utc.with_ymd_and_hms(day.0, day.1, day.2, 12, 0, 0).unwrap();
    Order {
        platform_id: id.into(),
        number: id.into(),
        created_at: created,
        modified_at: created,
        status: if counted { "completed" } else { "cancelled" }.into(),
        counted,
        currency: "EUR".into(),
        items_gross: money(1000),
        discounts: Decimal::ZERO,
        shipping: Decimal::ZERO,
        tax: Decimal::ZERO,
        total: money(1000),
        refunded: Decimal::ZERO,
        customer: CustomerRef {
            platform_id: cust.map(Into::into),
            email: Some(email.into()),
        },
        test: false,
        trashed: false,
        lines: Vec::new(),
        refund_ids: Vec::new(),
        refunds: None,
    }
}

/// A registered customer's first order can be a guest order carrying another of their emails
/// (one that only a cancelled order links to them), and it stops counting when that guest
/// order is cancelled; a guest order with an email on two accounts belongs to the smaller id.
/// The window-limited load reads the registered customers' other emails only where a counted
/// guest order carries them: it must agree with the whole history before and after.
#[tokio::test]
async fn a_guest_order_under_another_email_is_a_first_order_until_it_stops_counting() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open(&dir.path().join("okrsync.db")).await.unwrap();
    let sid = db
        .ensure_store("main", Platform::WooCommerce, "shop.example")
        .await
        .unwrap();
    let info = StoreInfo {
        timezone: StoreTz::parse("Europe/Paris").unwrap(),
        currency: "EUR".into(),
    };
    db.update_store_info(sid, info, "", now()).await.unwrap();
    let orders = vec![
        // Customer 7: in the window under their main email; "other7" is linked to them only
        // by a cancelled order, and a counted guest order with it came before the window.
        order("1", (2026, 5, 1), true, Some("7"), "main7@example.com"),
        order("2", (2025, 6, 1), false, Some("7"), "other7@example.com"),
        order("3", (2026, 2, 1), true, None, "other7@example.com"),
        // "both" is on accounts 7 and 3: its guest order is 3's first order, not 7's.
        order("4", (2026, 5, 2), true, Some("3"), "three@example.com"),
        order("5", (2025, 7, 1), false, Some("7"), "both@example.com"),
        order("6", (2025, 8, 1), false, Some("3"), "both@example.com"),
        order("7", (2025, 12, 1), true, None, "both@example.com"),
        // Customer 9: in the window; "other9" is linked to them by a cancelled order, and a
        // counted order with a blank id (a no-break space: a guest order to the whole-history
        // load, which trims it) came before the window with it.
        order("8", (2026, 5, 3), true, Some("9"), "main9@example.com"),
        order("9", (2025, 6, 2), false, Some("9"), "other9@example.com"),
        order(
            "10",
            (2026, 1, 15),
            true,
            Some("\u{a0}"),
            "other9@example.com",
        ),
    ];
    db.commit_page(
        sid,
        Page {
            orders: orders.clone(),
            ..Page::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_facts_kept(&db, "the first page").await;
    db.mark_complete(sid, now()).await.unwrap();
    let w: WindowSpec = "last_30_days".parse().unwrap();
    let spec = |id| KpiSpec { id, product: None };
    let check = |expected_new: i64| {
        let db = &db;
        let w = &w;
        async move {
            let full = db
                .load_store_data("main", None, false)
                .await
                .unwrap()
                .unwrap();
            let one = db
                .load_store_windows("main", None, false, vec![w.clone()], now())
                .await
                .unwrap()
                .unwrap();
            for id in [
                KpiId::NewCustomers,
                KpiId::ReturningCustomerRate,
                KpiId::RepeatPurchaseRate,
            ] {
                assert_eq!(
                    compute(&spec(id), &one, w),
                    compute(&spec(id), &full, w),
                    "{id}"
                );
            }
            let new = compute(&spec(KpiId::NewCustomers), &one, w).unwrap().value;
            assert_eq!(new, Some(Value::Count(expected_new)));
        }
    };
    // Every customer ordered before the window: 7 through "other7", 3 through "both", 9
    // through "other9".
    check(0).await;
    // The guest order under "other7" is cancelled: 7's first order is now in the window.
    let mut cancelled = orders[2].clone();
    cancelled.counted = false;
    cancelled.status = "cancelled".into();
    cancelled.modified_at = now();
    db.commit_page(
        sid,
        Page {
            orders: vec![cancelled],
            ..Page::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_facts_kept(&db, "the cancellation").await;
    check(1).await;
}

/// The customer facts the store keeps follow every change of an order that moves them: its
/// customer id or email changing, a deletion and a return, a status that stops counting, a
/// smaller id appearing on an email (the email changes owner), and the re-derivation of
/// `counted` when the status rules change. After each, the facts are those a rebuild from
/// the orders gives, and every customer KPI of a window-limited load is the whole history's.
#[tokio::test]
async fn customer_facts_follow_every_change_of_an_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open(&dir.path().join("okrsync.db")).await.unwrap();
    let sid = db
        .ensure_store("main", Platform::WooCommerce, "shop.example")
        .await
        .unwrap();
    let info = StoreInfo {
        timezone: StoreTz::parse("Europe/Paris").unwrap(),
        currency: "EUR".into(),
    };
    db.update_store_info(sid, info, "", now()).await.unwrap();
    db.mark_complete(sid, now()).await.unwrap();
    let windows: Vec<WindowSpec> = ["last_30_days", "quarter_to_date", "previous_year"]
        .iter()
        .map(|w| w.parse().unwrap())
        .collect();
    let customer_kpis = [
        KpiId::NewCustomers,
        KpiId::ReturningCustomerRate,
        KpiId::RepeatPurchaseRate,
    ];
    // Customer KPIs of both loads, per window (the whole history's first).
    let both = |db: &Store| {
        let (db, windows) = (db.clone(), windows.clone());
        async move {
            let full = db
                .load_store_data("main", None, false)
                .await
                .unwrap()
                .unwrap();
            let mut out = Vec::new();
            for w in &windows {
                let one = db
                    .load_store_windows("main", None, false, vec![w.clone()], now())
                    .await
                    .unwrap()
                    .unwrap();
                for id in customer_kpis {
                    let spec = KpiSpec { id, product: None };
                    out.push((
                        format!("{id} over {w}"),
                        compute(&spec, &full, w),
                        compute(&spec, &one, w),
                    ));
                }
            }
            out
        }
    };
    let agree = |db: &Store, after: &'static str| {
        let db = db.clone();
        let both = &both;
        async move {
            assert_facts_kept(&db, after).await;
            for (what, full, one) in both(&db).await {
                assert_eq!(one, full, "{what} after {after}");
            }
        }
    };
    let put = |orders: Vec<Order>| {
        let db = db.clone();
        async move {
            db.commit_page(
                sid,
                Page {
                    orders,
                    ..Page::default()
                },
                now(),
            )
            .await
            .unwrap();
        }
    };
    let base = vec![
        // Customer 20: in the window; a guest order with their email came last year.
        order("1", (2026, 5, 5), true, Some("20"), "a@example.com"),
        order("2", (2025, 3, 1), true, None, "a@example.com"),
        // Customer 30: in the window, first order in January.
        order("3", (2026, 5, 6), true, Some("30"), "b@example.com"),
        order("4", (2026, 1, 10), true, Some("30"), "b@example.com"),
        // A guest in the window who ordered before under the same email.
        order("5", (2026, 5, 7), true, None, "g@example.com"),
        order("6", (2025, 11, 1), true, None, "g@example.com"),
    ];
    put(base.clone()).await;
    agree(&db, "the first page").await;
    let before = both(&db).await;

    // The guest order of "a" gets customer 30's id: 20's first order is now in the window,
    // and 30's is last March.
    put(vec![order(
        "2",
        (2025, 3, 1),
        true,
        Some("30"),
        "a@example.com",
    )])
    .await;
    agree(&db, "a customer id change").await;
    assert_ne!(both(&db).await, before, "the change moved no figure");

    // Its email changes to "b": "a" is 20's alone again, with no guest order.
    put(vec![order(
        "2",
        (2025, 3, 1),
        true,
        Some("30"),
        "b@example.com",
    )])
    .await;
    agree(&db, "an email change").await;

    // A smaller id appears on "g" (a cancelled order): its guest orders become customer 7's.
    put(vec![order(
        "7",
        (2024, 1, 1),
        false,
        Some("7"),
        "g@example.com",
    )])
    .await;
    agree(&db, "a new owner of an email").await;
    // And a smaller one still, as numbers ("10" < "7" as text).
    put(vec![order(
        "8",
        (2024, 1, 1),
        false,
        Some("5"),
        "g@example.com",
    )])
    .await;
    agree(&db, "an owner change").await;

    // The earlier guest order of "g" stops counting: 5's first order is now in the window.
    put(vec![order(
        "6",
        (2025, 11, 1),
        false,
        None,
        "g@example.com",
    )])
    .await;
    agree(&db, "a status that stops counting").await;

    // The order that made 5 the owner is deleted, then comes back.
    db.mark_orders_deleted(sid, vec!["8".into()], None, now())
        .await
        .unwrap();
    agree(&db, "a deletion").await;
    put(vec![order(
        "8",
        (2024, 1, 1),
        false,
        Some("5"),
        "g@example.com",
    )])
    .await;
    agree(&db, "an order back from deletion").await;

    // Orders' creation times move (a store importing them again): 30's earlier orders move
    // into the window, so 30 is a new customer of it.
    let moved = both(&db).await;
    put(vec![
        order("2", (2026, 5, 9), true, Some("30"), "b@example.com"),
        order("4", (2026, 5, 8), true, Some("30"), "b@example.com"),
    ])
    .await;
    agree(&db, "moved creation times").await;
    assert_ne!(both(&db).await, moved, "the move changed no figure");

    // New status rules count cancelled orders too, then count nothing but completed again.
    let changed = db
        .recount(sid, "cancelled counts", |_, test, trashed| {
            !test && !trashed
        })
        .await
        .unwrap();
    assert!(changed > 0);
    agree(&db, "the status rules re-derived").await;
    let changed = db
        .recount(sid, "completed only", |status, test, trashed| {
            status == "completed" && !test && !trashed
        })
        .await
        .unwrap();
    assert!(changed > 0);
    agree(&db, "the status rules re-derived back").await;

    // A write that does not fold its keys in (another program's SQL, or an older okrsync
    // still running after an upgrade): the triggers list the keys, and the loads read the
    // orders instead of the stale facts until the next write folds them in.
    let stale = both(&db).await;
    // The guest order of "g" from November counts again: customer 5 returns, not new.
    let raw = rusqlite::Connection::open(dir.path().join("okrsync.db")).unwrap();
    raw.execute("UPDATE orders SET counted = 1 WHERE platform_id = '6'", [])
        .unwrap();
    drop(raw);
    let m = db.customer_facts_mismatches().await.unwrap();
    assert!(
        m.iter().any(|d| d.contains("dirty")),
        "the write's keys are listed: {m:?}"
    );
    let now_figures = both(&db).await;
    for (what, full, one) in &now_figures {
        assert_eq!(one, full, "{what} with keys listed");
    }
    assert_ne!(now_figures, stale, "the raw write moved no figure");
    put(vec![order(
        "9",
        (2024, 2, 1),
        false,
        Some("40"),
        "z@example.com",
    )])
    .await;
    agree(&db, "the next write after a raw one").await;
}
