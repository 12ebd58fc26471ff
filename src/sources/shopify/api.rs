//! Shopify Admin GraphQL wire structs (private to this source): the response envelope with
//! its `extensions.cost`, and the order, line, refund and checkout shapes okrsync reads.

use serde::Deserialize;
use serde_json::Value;

/// Every GraphQL answer: `data`, `errors` and `extensions`, all optional.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Option<Value>,
    #[serde(default)]
    pub extensions: Option<Extensions>,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Debug, Deserialize)]
pub(super) struct GqlError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub extensions: Option<GqlErrorExt>,
}

#[derive(Debug, Deserialize)]
pub(super) struct GqlErrorExt {
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Extensions {
    #[serde(default)]
    pub cost: Option<Cost>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cost {
    #[serde(default)]
    pub requested_query_cost: Option<f64>,
    #[serde(default)]
    pub throttle_status: Option<ThrottleStatus>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    #[serde(default)]
    pub has_next_page: bool,
    #[serde(default)]
    pub end_cursor: Option<String>,
}

/// A connection read with `nodes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connection<T> {
    #[serde(default = "Vec::new")]
    pub nodes: Vec<T>,
    #[serde(default)]
    pub page_info: Option<PageInfo>,
}

impl<T> Default for Connection<T> {
    fn default() -> Self {
        Connection {
            nodes: Vec::new(),
            page_info: None,
        }
    }
}

/// `{ shopMoney { amount } }`; amounts are decimal strings ("10.0").
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MoneyBag {
    pub shop_money: MoneyV2,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct MoneyV2 {
    pub amount: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShopData {
    pub shop: Shop,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Shop {
    #[serde(default)]
    pub name: String,
    pub iana_timezone: String,
    pub currency_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShopAndScopesData {
    pub shop: Shop,
    #[serde(default)]
    pub current_app_installation: Option<AppInstallation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScopesData {
    pub current_app_installation: AppInstallation,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AppInstallation {
    #[serde(default)]
    pub access_scopes: Vec<Scope>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Scope {
    pub handle: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrdersCountData {
    pub orders_count: Option<Count>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Count {
    pub count: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct OrdersData {
    pub orders: Connection<WireOrder>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IdsData {
    pub orders: Connection<IdOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct IdOnly {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AbandonedData {
    pub abandoned_checkouts: Connection<WireCheckout>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCheckout {
    pub id: String,
    pub created_at: String,
    /// Set when the buyer completed the checkout (it was recovered and became an order).
    #[serde(default)]
    pub completed_at: Option<String>,
}

/// `node(id:)` answers for the follow-up queries.
#[derive(Debug, Deserialize)]
pub(super) struct NodeData<T> {
    pub node: Option<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LinesNode {
    #[serde(default)]
    pub line_items: Connection<WireLine>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RefundsNode {
    #[serde(default)]
    pub refunds: Vec<WireRefund>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RefundLinesNode {
    #[serde(default)]
    pub refund_line_items: Connection<WireRefundLine>,
}

/// `nodes(ids:)` answers of the batched refund-lines follow-up; `null` for an id the shop
/// no longer has.
#[derive(Debug, Deserialize)]
pub(super) struct RefundsBatchData {
    #[serde(default)]
    pub nodes: Vec<Option<RefundLinesOf>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RefundLinesOf {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub refund_line_items: Connection<WireRefundLine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkRunData {
    pub bulk_operation_run_query: BulkRunPayload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkRunPayload {
    pub bulk_operation: Option<BulkOperation>,
    #[serde(default)]
    pub user_errors: Vec<UserError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct UserError {
    #[serde(default)]
    pub message: String,
    /// `INVALID` for a query Shopify's bulk rules refuse.
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkStatusData {
    pub current_bulk_operation: Option<BulkOperation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkOperation {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// Objects in the result (`UnsignedInt64`, a string on the wire).
    #[serde(default)]
    pub object_count: Option<Value>,
}

impl BulkOperation {
    /// `objectCount` as a number (0 when absent or unreadable).
    pub fn objects(&self) -> u64 {
        match &self.object_count {
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            _ => 0,
        }
    }

    /// Ended without a usable result: FAILED, CANCELED or EXPIRED.
    pub fn ended_badly(&self) -> bool {
        matches!(self.status.as_str(), "FAILED" | "CANCELED" | "EXPIRED")
    }

    /// Completed, but its result can no longer be downloaded (Shopify keeps result files
    /// for 7 days; afterwards `url` is null although `objectCount` is not 0).
    pub fn result_expired(&self) -> bool {
        self.status == "COMPLETED" && self.url.is_none() && self.objects() > 0
    }
}

/// An order as the orders query (or a bulk JSONL line) returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireOrder {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub cancelled_at: Option<String>,
    #[serde(default)]
    pub test: bool,
    #[serde(default)]
    pub taxes_included: bool,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_financial_status: Option<String>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub customer: Option<IdOnly>,
    #[serde(default)]
    pub total_shipping_price_set: Option<MoneyBag>,
    #[serde(default)]
    pub total_tax_set: Option<MoneyBag>,
    #[serde(default)]
    pub total_price_set: Option<MoneyBag>,
    #[serde(default)]
    pub total_refunded_set: Option<MoneyBag>,
    #[serde(default)]
    pub line_items: Connection<WireLine>,
    #[serde(default)]
    pub refunds: Vec<WireRefund>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireLine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub product: Option<IdOnly>,
    #[serde(default)]
    pub original_total_set: Option<MoneyBag>,
    #[serde(default)]
    pub discount_allocations: Vec<DiscountAllocation>,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DiscountAllocation {
    pub allocated_amount_set: MoneyBag,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaxLine {
    /// A fraction (0.2); read as decimal text, never as a float.
    #[serde(default)]
    pub rate: Option<Value>,
    #[serde(default)]
    pub price_set: Option<MoneyBag>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireRefund {
    pub id: String,
    pub created_at: String,
    #[serde(default)]
    pub total_refunded_set: Option<MoneyBag>,
    /// Absent from the orders query (too costly nested); filled by a follow-up query.
    #[serde(default)]
    pub refund_line_items: Option<Connection<WireRefundLine>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireRefundLine {
    pub line_item: IdOnly,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub subtotal_set: Option<MoneyBag>,
    #[serde(default)]
    pub total_tax_set: Option<MoneyBag>,
}
