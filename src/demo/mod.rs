//! The simulated WooCommerce store and fake Shopify shop behind `okrsync demo` and the
//! integration tests.

pub mod sim_shopify;
pub mod sim_woo;
pub mod woo_data;

pub use sim_shopify::{ShopFault, ShopFaultKind, ShopRequest, ShopState, SimShopify};
pub use sim_woo::{Fault, FaultKind, RequestRecord, SimWoo};
pub use woo_data::{NewLine, NewOrder, SimOrder, SimRefund, SimRefundLine, SimState};

/// The configuration `okrsync demo` writes next to its database: one store pointing at the
/// simulated store, and key results of the kinds store teams write.
pub fn demo_config(url: &str, consumer_key: &str, consumer_secret: &str) -> String {
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

[[key_results]]
id = "repeat-rate-q"
objective = "Increase revenue from repeat customers"
title = "Repeat purchase rate from 4% to 8% this quarter"
kpi = "repeat_purchase_rate"
store = "demo-woo"
window = "quarter_to_date"
baseline = 0.04
target = 0.08

[[key_results]]
id = "aov-month"
objective = "Grow basket size"
title = "Average order value from 60 to 75"
kpi = "average_order_value"
store = "demo-woo"
window = "month_to_date"
baseline = 60
target = 75

[[key_results]]
id = "net-sales-q"
objective = "Grow revenue"
title = "Net sales of 150,000 this quarter"
kpi = "net_sales"
store = "demo-woo"
window = "quarter_to_date"
baseline = 0
target = 150000

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

/// The Shopify half of the demo configuration: a second store on the fake shop and a key
/// result only Shopify can feed (abandoned checkouts).
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
