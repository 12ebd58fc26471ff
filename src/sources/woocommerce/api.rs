//! WooCommerce REST v3 wire structs (private to this source). Only the fields okrsync uses
//! are read; everything is lenient about nulls and number-vs-string, as real stores vary.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `GET /wp-json/`: the site index.
#[derive(Debug, Deserialize)]
pub(super) struct SiteIndex {
    #[serde(default)]
    pub timezone_string: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub gmt_offset: Option<String>,
}

/// One entry of `GET /wc/v3/settings/general`.
#[derive(Debug, Deserialize)]
pub(super) struct Setting {
    pub id: String,
    #[serde(default)]
    pub value: Value,
}

/// An order as listed by `GET /wc/v3/orders`.
#[derive(Debug, Deserialize)]
pub(super) struct WireOrder {
    pub id: u64,
    #[serde(default, deserialize_with = "any_string")]
    pub number: Option<String>,
    pub status: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub shipping_total: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub total: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub total_tax: Option<String>,
    #[serde(default)]
    pub customer_id: u64,
    #[serde(default)]
    pub billing: Option<Billing>,
    #[serde(default)]
    pub line_items: Vec<WireLine>,
    #[serde(default)]
    pub refunds: Vec<RefundRef>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Billing {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireLine {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub product_id: Option<u64>,
    #[serde(default)]
    pub variation_id: Option<u64>,
    #[serde(default, deserialize_with = "any_string")]
    pub quantity: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub subtotal: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub total: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub total_tax: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
}

/// The `{id, reason, total}` summary an order lists for each of its refunds.
#[derive(Debug, Deserialize)]
pub(super) struct RefundRef {
    pub id: u64,
    #[serde(default, deserialize_with = "any_string")]
    pub total: Option<String>,
}

/// A refund as listed by `GET /wc/v3/refunds` or `GET /wc/v3/orders/<id>/refunds`.
#[derive(Debug, Deserialize)]
pub(super) struct WireRefund {
    pub id: u64,
    /// The order; absent from the per-order listing, where the caller knows it.
    #[serde(default)]
    pub parent_id: Option<u64>,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub amount: Option<String>,
    #[serde(default)]
    pub line_items: Vec<WireRefundLine>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRefundLine {
    pub id: u64,
    #[serde(default, deserialize_with = "any_string")]
    pub quantity: Option<String>,
    #[serde(default, deserialize_with = "any_string")]
    pub total: Option<String>,
    #[serde(default)]
    pub meta_data: Vec<Meta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Meta {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: Value,
}

/// Accepts a string, a number or null.
fn any_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A product review as listed by `GET /wc/v3/products/reviews`.
#[derive(Debug, Deserialize)]
pub(super) struct WireReview {
    pub id: u64,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub product_id: u64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub rating: Option<Value>,
    #[serde(default)]
    pub verified: bool,
}
