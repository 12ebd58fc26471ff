//! Simulated services behind `okrsync demo`, the integration tests and the benches: servers on
//! loopback speaking the documented wire formats (WooCommerce REST v3 with OAuth 1.0a and Basic
//! auth, Shopify Admin GraphQL with its leaky bucket and bulk operations, GA4, Plausible, Matomo,
//! PageSpeed, and fake sinks: a webhook receiver and a Slack incoming webhook), with fault knobs. okrsync reaches them over HTTP like any store; nothing in its
//! production path knows about them.

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

mod shopify_full;
pub mod sim_analytics;
pub mod sim_shopify;
pub mod sim_sinks;
pub mod sim_woo;
pub mod tls;
mod tz;
pub mod woo_data;

/// Serves `app` on `listener` until `stop` turns true (a simulator's `stop()`), letting
/// requests in flight finish.
pub(crate) fn serve_until(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    })
}

pub use sim_shopify::{ShopFault, ShopFaultKind, ShopRequest, ShopState, SimShopify};
/// Simulated daily traffic for the demo: about 40 sessions per order of the demo store.
pub fn demo_traffic(today: chrono::NaiveDate, days: u32) -> sim_analytics::SimAnalyticsState {
    let mut st = sim_analytics::SimAnalyticsState {
        api_key: "plausible-demo-key-0001".into(),
        ga4_time_zone: "Europe/Paris".into(),
        pagespeed_score: "0.74".into(),
        pagespeed_lcp_ms: 2900.0,
        ..Default::default()
    };
    for i in 0..=u64::from(days) {
        let day = today - chrono::Duration::days(i as i64);
        let sessions = 900 + (i * 37) % 200;
        // Bounces vary a little by day (about 35–45 %).
        let bounce_pct = 35 + (i * 13) % 11;
        st.days.insert(
            day,
            sim_analytics::SimDay {
                sessions,
                visitors: sessions * 4 / 5,
                bounces: sessions * bounce_pct / 100,
            },
        );
    }
    st
}

/// Approved product reviews for the demo store: about two a day over `days`, mostly 4–5 stars,
/// most of them from verified owners, plus a few held for moderation (never counted).
pub fn demo_reviews(state: &mut SimState, now: chrono::DateTime<chrono::Utc>, days: u32) {
    for i in 0..u64::from(days) * 2 {
        let at = now - chrono::Duration::hours((i * 12 + (i * 7) % 11) as i64);
        let rating = [5, 4, 5, 3, 5, 4, 2, 5, 4, 5][(i % 10) as usize];
        let verified = i % 10 < 7;
        let status = if i % 17 == 0 { "hold" } else { "approved" };
        state.add_review(101 + i % 11, at, rating, verified, status);
    }
}

pub use sim_woo::{Fault, FaultKind, RequestRecord, SimWoo};
pub use woo_data::{NewLine, NewOrder, SimOrder, SimRefund, SimRefundLine, SimReview, SimState};

/// The configuration `okrsync demo` writes next to its database: one store pointing at the
/// simulated store, and key results of the kinds store teams write.
pub fn demo_config(
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    plausible_url: &str,
    plausible_key: &str,
) -> String {
    format!(
        r#"# Written by `okrsync demo`. The store below is simulated on 127.0.0.1.
[database]
path = "okrsync.db"

[[stores]]
name = "demo-woo"
platform = "woocommerce"
url = "{url}"
consumer_key = "{consumer_key}"
consumer_secret = "{consumer_secret}"
schedule = "0 */15 * * * *"

# Simulated Plausible site measuring the demo store's traffic (sessions for conversion rate).
[[analytics]]
name = "demo-plausible"
provider = "plausible"
base_url = "{plausible_url}"
site_id = "demo.example"
api_key = "{plausible_key}"
stores = ["demo-woo"]

# The demo store's own product reviews (its REST API, its credentials).
[[analytics]]
name = "demo-reviews"
provider = "woocommerce_reviews"
stores = ["demo-woo"]

# Simulated PageSpeed Insights for the store's home page.
[[analytics]]
name = "demo-speed"
provider = "pagespeed"
urls = ["{url}/"]
strategy = "mobile"
api_key = "{plausible_key}"
api_base_url = "{plausible_url}"
stores = ["demo-woo"]

[[key_results]]
id = "verified-reviews-q"
objective = "Delight customers"
title = "Collect 150 verified reviews this quarter"
kpi = "verified_reviews_count"
store = "demo-woo"
window = "quarter_to_date"
baseline = 0
target = 150

[[key_results]]
id = "pagespeed-mobile"
objective = "A faster shop"
title = "Mobile PageSpeed score from 60 to 90"
kpi = "pagespeed_score"
store = "demo-woo"
window = "month_to_date"
baseline = 60
target = 90

[[key_results]]
id = "conversion-month"
objective = "Grow revenue"
title = "Conversion rate from 2% to 3% this month"
kpi = "conversion_rate"
store = "demo-woo"
window = "month_to_date"
baseline = 0.02
target = 0.03

[[key_results]]
id = "repeat-rate-q"
objective = "Increase revenue from repeat customers"
title = "Repeat purchase rate from 8% to 15% this quarter"
kpi = "repeat_purchase_rate"
store = "demo-woo"
window = "quarter_to_date"
baseline = 0.08
target = 0.15

[[key_results]]
id = "aov-month"
objective = "Grow basket size"
title = "Average order value from 45 to 55"
kpi = "average_order_value"
store = "demo-woo"
window = "month_to_date"
baseline = 45
target = 55

[[key_results]]
id = "net-sales-q"
objective = "Grow revenue"
title = "Net sales of 130,000 this quarter"
kpi = "net_sales"
store = "demo-woo"
window = "quarter_to_date"
baseline = 0
target = 130000

[[key_results]]
id = "refund-rate-cap"
objective = "Delight customers"
title = "Keep the refund rate at or below 5% (last 30 days)"
kpi = "refund_rate"
store = "demo-woo"
window = "last_30_days"
baseline = 0.05
target = 0.05
direction = "at_most"
"#
    )
}

/// The Shopify half of the demo configuration: a second store on the fake shop, its own
/// sessions (`shopify_sessions`, read from the shop with the same token), and key results
/// only Shopify can feed (abandoned checkouts) or that need its sessions (conversion rate).
pub fn demo_shopify_config(shop: &str, access_token: &str) -> String {
    format!(
        r#"
[[stores]]
name = "demo-shopify"
platform = "shopify"
shop = "{shop}"
access_token = "{access_token}"
api_version = "2025-10"
schedule = "0 */15 * * * *"

# The shop's own sessions (shopifyqlQuery, read_reports scope): no second analytics account.
[[analytics]]
name = "demo-shopify-sessions"
provider = "shopify_sessions"
stores = ["demo-shopify"]

[[key_results]]
id = "shopify-conversion-month"
objective = "Grow revenue"
title = "Shopify conversion rate from 2% to 3% this month"
kpi = "conversion_rate"
store = "demo-shopify"
window = "month_to_date"
baseline = 0.02
target = 0.03

[[key_results]]
id = "shopify-abandonment"
objective = "Convert more checkouts"
title = "Cart abandonment rate from 10% down to 5% (last 30 days)"
kpi = "cart_abandonment_rate"
store = "demo-shopify"
window = "last_30_days"
baseline = 0.10
target = 0.05
"#
    )
}
