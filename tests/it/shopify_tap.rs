//! The simulated shop answers another client's bulk export as Shopify would, in the form
//! Singer's tap-shopify 3.13.0 uses (benches/compare/shopify.sh runs the tap itself): the
//! query passed to `bulkOperationRunQuery` as `$query`, a `node(id:)` status read, an
//! `updated_at` search window with microseconds, and orders selected with many fields,
//! money bags, inline fragments and two nested connections. The query in
//! tests/fixtures/full_export_orders.graphql is okrsync's own, written in that form (the tap's
//! is not copied: it selects about 100 order fields).

use chrono::{DateTime, Duration, Utc};
use okrsync_sim::{ShopState, SimShopify};
use serde_json::{Value, json};

const EXPORT_ORDERS: &str = include_str!("../fixtures/full_export_orders.graphql");

const TAP_BULK_MUTATION: &str = "
                mutation bulkOperationRunQuery($query: String!) {
                bulkOperationRunQuery(query: $query) {
                    bulkOperation {
                    id
                    status
                    createdAt
                    }
                    userErrors {
                    field
                    message
                    }
                }
                }
            ";

fn tap_poll(op_id: &str) -> String {
    format!(
        "{{ node(id: \"{op_id}\") {{ ... on BulkOperation {{ id status errorCode createdAt completedAt objectCount fileSize url }} }} }}"
    )
}

/// The tap's `utils.strftime`: microseconds and `Z`.
fn tap_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn post(sim: &SimShopify, token: &str, body: Value) -> Value {
    okrsync::sources::http::init_tls();
    let text = reqwest::Client::new()
        .post(format!("{}/admin/api/2025-07/graphql.json", sim.url()))
        .header("X-Shopify-Access-Token", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    okrsync::sources::http::init_tls();
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.header("X-Shopify-Access-Token", t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A full export of orders for one 30-day window, run as the tap runs it: the bulk mutation
/// costs 10 points, a second one while the first runs is refused with Shopify's user error, the
/// status read by `node(id:)` gives the JSONL URL, and the file holds exactly the orders updated
/// in `[from, to)`, each followed by its line items, with every selected field (non-null ones
/// filled) and amounts equal to the shop's. With a bucket short of 10 points the mutation is
/// THROTTLED with the cost extensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_export_bulk_query_in_tap_shopify_form_is_answered_like_shopify() {
    let now = Utc::now() - Duration::hours(1);
    let mut state = ShopState::generate(44, now, 60, 4);
    state.bulk_polls = 1;
    let token = state.access_token.clone();
    let (from, to) = (now - Duration::days(45), now - Duration::days(15));
    // What the file must hold: orders (not checkouts, not trashed) updated in [from, to).
    let mut expected: Vec<(u64, usize, String)> = state
        .data
        .orders
        .values()
        .filter(|o| {
            !matches!(
                o.status.as_str(),
                "pending" | "failed" | "checkout-draft" | "trash"
            )
        })
        .filter(|o| o.modified >= from && o.modified < to)
        .map(|o| (o.id, o.lines.len(), format!("{:.2}", o.total().round_dp(2))))
        .collect();
    expected.sort();
    assert!(expected.len() > 50, "{}", expected.len());
    let sim = SimShopify::start(state).await.unwrap();

    // ShopifyAPI's `Shop.current()`: the REST shop resource.
    let (status, shop) = get(
        &format!("{}/admin/api/2025-07/shop.json", sim.url()),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{shop}");
    let shop: Value = serde_json::from_str(&shop).unwrap();
    assert!(shop["shop"]["id"].is_number(), "{shop}");
    assert!(shop["shop"]["myshopify_domain"].is_string(), "{shop}");

    let filter = format!(
        "updated_at:>='{}' AND updated_at:<'{}'",
        tap_time(from),
        tap_time(to)
    );
    let query = EXPORT_ORDERS.replacen("%s", &filter, 1);
    let run = json!({"query": TAP_BULK_MUTATION, "variables": {"query": query}});
    let v = post(&sim, &token, run.clone()).await;
    let payload = &v["data"]["bulkOperationRunQuery"];
    assert_eq!(payload["userErrors"], json!([]), "{v}");
    let op_id = payload["bulkOperation"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["extensions"]["cost"]["requestedQueryCost"], json!(10.0));
    assert_eq!(v["extensions"]["cost"]["actualQueryCost"], json!(10.0));

    // Shopify runs one bulk query per app and shop (API versions before 2026-01).
    let again = post(&sim, &token, run.clone()).await;
    let errors = &again["data"]["bulkOperationRunQuery"]["userErrors"];
    assert_eq!(
        errors[0]["message"],
        json!(format!(
            "A bulk query operation for this app and shop is already in progress: {op_id}."
        )),
        "{again}"
    );

    let status = post(&sim, &token, json!({"query": tap_poll(&op_id)})).await;
    let node = &status["data"]["node"];
    assert_eq!(node["status"], json!("COMPLETED"), "{status}");
    assert_eq!(
        status["extensions"]["cost"]["requestedQueryCost"],
        json!(1.0)
    );
    let url = node["url"].as_str().unwrap();
    let (code, jsonl) = get(url, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        node["objectCount"],
        json!(jsonl.lines().count().to_string())
    );

    // Group as the tap does (`parse_bulk_jsonl`): children follow their order.
    let mut got: Vec<(u64, usize, String)> = Vec::new();
    let mut top_keys = None;
    for line in jsonl.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        match rec.get("__parentId").and_then(Value::as_str) {
            Some(parent) => {
                let last = got.last_mut().expect("a child before any order");
                assert_eq!(parent, format!("gid://shopify/Order/{}", last.0), "{line}");
                if rec.get("__typename").is_none() {
                    last.1 += 1;
                    assert!(rec["originalUnitPriceSet"]["shopMoney"]["amount"].is_string());
                    assert!(rec["discountAllocations"].is_array(), "{line}");
                }
            }
            None => {
                let id: u64 = rec["legacyResourceId"].as_str().unwrap().parse().unwrap();
                let total = rec["totalPriceSet"]["shopMoney"]["amount"]
                    .as_str()
                    .unwrap();
                got.push((id, 0, total.to_string()));
                // Non-null in Shopify's schema: never null here.
                for k in [
                    "canMarkAsPaid",
                    "confirmed",
                    "fullyPaid",
                    "currentTotalPriceSet",
                    "merchantBusinessEntity",
                    "totalCashRoundingAdjustment",
                    "statusPageUrl",
                    "tags",
                    "fulfillments",
                    "returnStatus",
                ] {
                    assert!(!rec[k].is_null(), "{k} is null: {line}");
                }
                let keys = rec.as_object().unwrap().len();
                assert_eq!(*top_keys.get_or_insert(keys), keys, "{line}");
            }
        }
    }
    got.sort();
    assert_eq!(got, expected);
    // The 42 fields the query selects on an order, less its two connections (`lineItems`,
    // `discountApplications`), which come as lines of their own.
    assert_eq!(top_keys, Some(40));

    // A bucket short of the mutation's 10 points: THROTTLED, with the cost extensions.
    // (Nothing restores it meanwhile: at 100 points/s the 5 points would be back in 50 ms.)
    sim.with_state(|s| {
        s.restore_rate = 0.0;
        s.set_bucket(5.0)
    });
    let throttled = post(&sim, &token, run).await;
    assert_eq!(
        throttled["errors"][0]["extensions"]["code"],
        json!("THROTTLED"),
        "{throttled}"
    );
    assert_eq!(
        throttled["extensions"]["cost"]["requestedQueryCost"],
        json!(10.0)
    );
    sim.stop().await;
}
