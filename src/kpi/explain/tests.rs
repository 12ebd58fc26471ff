use rust_decimal::Decimal;

use super::*;
use crate::kpi::compute::tests::{at, day, dec, main_store, main_window};
use crate::kpi::{PageSpeedFacts, ReviewFacts, StoreData, compute};

/// The compute fixture with every feed linked: bounces, PageSpeed samples, reviews.
fn store() -> StoreData {
    let mut s = main_store();
    s.bounces = Some(
        [("2026-10-20", 40), ("2026-10-21", 10), ("2026-10-25", 50)]
            .into_iter()
            .map(|(d, n)| (day(d), n))
            .collect(),
    );
    let ps = |d: &str, url: &str, strategy: &str, score: &str, lcp: Option<&str>| PageSpeedFacts {
        date: day(d),
        url: url.into(),
        strategy: strategy.into(),
        score: dec(score),
        lcp_seconds: lcp.map(dec),
    };
    s.pagespeed = Some(vec![
        ps("2026-10-21", "https://a/", "mobile", "10", Some("9.0")),
        ps("2026-10-24", "https://a/", "mobile", "71", Some("2.5")),
        ps("2026-10-24", "https://b/", "mobile", "80", None),
        ps("2026-10-24", "https://a/", "desktop", "99", Some("0.8")),
    ]);
    let review = |p: &str, t: &str, rating: u8, verified: bool| ReviewFacts {
        product_id: p.into(),
        created_at: at(t),
        rating,
        verified,
    };
    s.reviews = Some(vec![
        review("P1", "2026-10-20T10:00:00Z", 5, true),
        review("P1", "2026-10-21T10:00:00Z", 0, false),
        review("P2", "2026-10-22T10:00:00Z", 2, true),
        review("P1", "2026-10-26T10:00:00Z", 1, true), // after W
    ]);
    s
}

/// Every stored order of the fixture as `explain` loads it; not counted ones are cancelled.
fn details(s: &StoreData) -> Vec<OrderDetail> {
    s.orders
        .iter()
        .map(|o| OrderDetail {
            store: s.name.clone(),
            order_id: o.order_id.clone(),
            number: format!("#{}", o.order_id),
            created_at: o.created_at,
            status: if o.counted { "completed" } else { "cancelled" }.into(),
            currency: "EUR".into(),
            counted: o.counted,
            test: false,
            trashed: false,
            deleted: false,
            items_gross: o.items_gross,
            discounts: o.discounts,
            shipping: Decimal::ZERO,
            tax: Decimal::ZERO,
            total: o.total,
            refunded: o.refunded,
            refunded_items: o.refunded_items,
            refunds: Vec::new(),
        })
        .collect()
}

fn spec(id: KpiId) -> KpiSpec {
    KpiSpec {
        id,
        product: id.accepts_product().then(|| "P1".to_string()),
    }
}

#[test]
fn for_every_kpi_the_listing_adds_up_to_the_value_compute_gives() {
    let s = store();
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let details = details(&s);
    for &id in KpiId::ALL {
        let spec = spec(id);
        let e = explain(&spec, &inputs, &details).unwrap();
        assert_eq!(e.computed, compute(&spec, &inputs).unwrap(), "{id:?}");
        let value = e
            .computed
            .value
            .clone()
            .unwrap_or_else(|| panic!("{id:?}: the fixture defines every KPI"));
        let (num, den) = e.totals().unwrap();
        let from_listing = match den {
            Some(d) => num / d,
            None => num,
        };
        let expected = match value {
            // Units are rounded down; bounce rates capped at 1 (neither applies here).
            Value::Count(n) => Decimal::from(n),
            v => v.as_decimal(),
        };
        assert_eq!(
            from_listing, expected,
            "{id:?}: {}\n{:#?}",
            e.rule, e.counted
        );
        for c in &e.counted {
            assert!(c.reason.is_none(), "{id:?}: {c:?}");
        }
        for x in &e.excluded {
            assert!(x.reason.is_some(), "{id:?}: {x:?}");
        }
    }
}

#[test]
fn orders_lists_each_counted_order_and_why_the_others_are_out() {
    let s = store();
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let e = explain(&KpiSpec::new(KpiId::Orders), &inputs, &details(&s)).unwrap();
    assert_eq!(e.computed.value, Some(Value::Count(7)));
    let mut ids: Vec<&str> = e.counted.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["o1", "o12", "o2", "o3", "o4", "o5", "o9"]);
    let reason = |id: &str| {
        e.excluded
            .iter()
            .find(|x| x.id == id)
            .and_then(|x| x.reason.clone())
            .unwrap_or_else(|| panic!("{id} not excluded: {:?}", e.excluded))
    };
    assert_eq!(reason("o7"), "status `cancelled` does not count");
    // 00:30 local the day after the window, though still 25 October in UTC.
    assert_eq!(
        reason("o6"),
        "created on 2026-10-26 (Europe/Paris), outside the window 2026-10-20..2026-10-25"
    );
    assert!(
        reason("o11").starts_with("created on 2026-10-19 "),
        "{}",
        reason("o11")
    );
    assert_eq!(e.excluded.len(), 13 - 7);
    // Excluded orders are listed as they happened.
    let times: Vec<_> = e.excluded.iter().map(|x| x.created_at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);

    // Test and deleted orders say so (both are stored as not counted). Outside the window,
    // the window is the reason whatever the status.
    let mut d = details(&s);
    for o in d.iter_mut() {
        match o.order_id.as_str() {
            "o7" => o.deleted = true,
            "o4" => {
                o.test = true;
                o.counted = false;
            }
            "o13" => o.deleted = true,
            _ => {}
        }
    }
    let mut s2 = s.clone();
    s2.orders.retain(|o| o.order_id != "o4");
    let inputs2 = [WindowedStore {
        store: &s2,
        range: main_window(),
    }];
    let e = explain(&KpiSpec::new(KpiId::Orders), &inputs2, &d).unwrap();
    let why = |id: &str| {
        e.excluded
            .iter()
            .find(|x| x.id == id)
            .and_then(|x| x.reason.clone())
            .unwrap()
    };
    assert_eq!(why("o7"), "deleted from the store");
    assert_eq!(why("o4"), "test order");
    assert!(
        why("o13").starts_with("created on 2026-09-05 "),
        "{}",
        why("o13")
    );
}

#[test]
fn customers_are_listed_as_repeat_returning_or_new() {
    let s = store();
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let e = explain(&KpiSpec::new(KpiId::NewCustomers), &inputs, &details(&s)).unwrap();
    // c1 (o1 + guest o2), h3 (o5), o4 and o12 anonymous are new; c2 (o10) and c3 (o8 as h4)
    // are returning.
    let mut new: Vec<&str> = e.counted.iter().map(|c| c.id.as_str()).collect();
    new.sort_unstable();
    assert_eq!(
        new,
        [
            "anonymous (order o12)",
            "anonymous (order o4)",
            "customer c1",
            "guest h3…"
        ]
    );
    let c1 = e.counted.iter().find(|c| c.id == "customer c1").unwrap();
    assert_eq!(c1.orders, ["o1", "o2"]);
    assert_eq!(c1.status.as_deref(), Some("repeat, new"));
    let returning: Vec<&str> = e
        .excluded
        .iter()
        .filter(|x| x.kind == EntryKind::Customer)
        .map(|x| x.id.as_str())
        .collect();
    assert_eq!(returning.len(), 2, "{returning:?}");
    let c3 = e.excluded.iter().find(|x| x.id == "customer c3").unwrap();
    assert_eq!(
        c3.reason.as_deref(),
        Some("returning: first counted order on 2026-09-10, before the window")
    );
    // Every counted order of the window belongs to a customer: none is "excluded" for it.
    assert!(
        e.excluded
            .iter()
            .all(|x| x.kind == EntryKind::Customer || x.id != "o1")
    );
}

#[test]
fn session_kpis_list_the_days_and_clip_orders_to_them() {
    let mut s = store();
    // Sessions stop on 10-23: orders after it leave the per-session rates, with the reason.
    s.sessions
        .as_mut()
        .unwrap()
        .retain(|d, _| *d <= day("2026-10-23"));
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let e = explain(&KpiSpec::new(KpiId::ConversionRate), &inputs, &details(&s)).unwrap();
    let days: Vec<&str> = e
        .counted
        .iter()
        .filter(|c| c.kind == EntryKind::Day)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        days,
        ["2026-10-20", "2026-10-21", "2026-10-22", "2026-10-23"]
    );
    let o9 = e.excluded.iter().find(|x| x.id == "o9").unwrap();
    assert_eq!(
        o9.reason.as_deref(),
        Some("created after 2026-10-23, the last day with session data")
    );
    let (num, den) = e.totals().unwrap();
    assert_eq!(Some(Value::Rate(num / den.unwrap())), e.computed.value);
}

#[test]
fn json_entries_name_the_order_and_its_amounts() {
    let s = store();
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let mut d = details(&s);
    d[1].refunds = vec![RefundDetail {
        id: "r1".into(),
        created_at: at("2026-11-02T10:00:00Z"),
        amount: dec("48.00"),
    }];
    let e = explain(&KpiSpec::new(KpiId::NetSales), &inputs, &d).unwrap();
    let o2 = e.counted.iter().find(|c| c.id == "o2").unwrap().to_json();
    assert_eq!(o2["kind"], "order");
    assert_eq!(o2["number"], "#o2");
    assert_eq!(o2["status"], "completed");
    assert_eq!(o2["created_at"], "2026-10-21T09:00:00Z");
    assert_eq!(o2["items_gross"], "40.00");
    assert_eq!(o2["refunded_items"], "40.00");
    assert_eq!(o2["numerator"], "0");
    assert_eq!(o2["refunds"][0]["created_at"], "2026-11-02T10:00:00Z");
    assert_eq!(o2["refunds"][0]["amount"], "48.00");
    let o7 = e.excluded.iter().find(|x| x.id == "o7").unwrap().to_json();
    assert_eq!(o7["reason"], "status `cancelled` does not count");
    assert!(o7.get("numerator").is_none());
}

#[test]
fn implausible_amounts_are_an_error_not_a_panic() {
    let mut s = store();
    let o = &mut s.orders[0];
    o.items_gross = Decimal::MAX;
    o.discounts = Decimal::MIN;
    o.total = Decimal::MAX;
    o.refunded = Decimal::MIN;
    let inputs = [WindowedStore {
        store: &s,
        range: main_window(),
    }];
    let details = details(&s);
    for &id in KpiId::ALL {
        // Either a value whose listing adds up, or the error `compute` gives.
        match explain(&spec(id), &inputs, &details) {
            Ok(e) => assert_eq!(e.computed, compute(&spec(id), &inputs).unwrap()),
            Err(err) => assert_eq!(Err(err), compute(&spec(id), &inputs)),
        }
    }
}
