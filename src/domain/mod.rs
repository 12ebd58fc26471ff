//! Platform-neutral domain types: money, time zones, orders, lines, refunds.
//!
//! Sources convert their wire formats into these types; the store persists them; `kpi` reads
//! them back as [`crate::kpi::OrderFacts`]. Nothing here deserializes API JSON.

mod analytics;
mod tz;

pub use analytics::{DailyTraffic, PageSpeedSample, Review};
pub use tz::StoreTz;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// An amount of money in the store's currency. Always decimal, never binary floating point.
pub type Money = Decimal;

/// The e-commerce platform a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    WooCommerce,
    Shopify,
}

impl Platform {
    /// The name used in config files and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::WooCommerce => "woocommerce",
            Platform::Shopify => "shopify",
        }
    }
}

/// Facts about a store read from its API: its time zone and currency.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    pub timezone: StoreTz,
    pub currency: String,
}

/// Who placed an order, as the platform reports it. The raw email only lives in memory: the
/// store replaces it by a keyed hash before anything is written.
#[derive(Clone, Default, PartialEq)]
pub struct CustomerRef {
    /// The platform's customer id (WooCommerce `customer_id > 0`, Shopify `customer.id`).
    pub platform_id: Option<String>,
    /// Billing/order email as reported; hashed by the store, never persisted.
    pub email: Option<String>,
}

impl std::fmt::Debug for CustomerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerRef")
            .field("platform_id", &self.platform_id)
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One order, normalized. Amounts follow `docs/kpis.md` ("Money, per order").
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Platform order id (WooCommerce numeric id, Shopify GID).
    pub platform_id: String,
    /// Human-facing order number.
    pub number: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub status: String,
    /// Whether the order is a real sale under the store's rules (see `docs/kpis.md`).
    pub counted: bool,
    pub currency: String,
    /// Σ line subtotal: unit price × quantity before discounts, excluding tax.
    pub items_gross: Money,
    /// Σ (line subtotal − line total), excluding tax.
    pub discounts: Money,
    pub shipping: Money,
    pub tax: Money,
    /// As charged, including tax and shipping.
    pub total: Money,
    /// All money refunded on the order so far (items, tax, shipping, amount-only refunds).
    pub refunded: Money,
    pub customer: CustomerRef,
    pub test: bool,
    /// WooCommerce: the order is in the trash.
    pub trashed: bool,
    pub lines: Vec<OrderLine>,
    /// Refund ids the order lists. WooCommerce lists ids only; the refunds themselves arrive
    /// through [`Refund`] records, which may come in a later page or run.
    pub refund_ids: Vec<String>,
    /// Shopify embeds full refunds in the order; `Some` replaces the order's stored refunds.
    pub refunds: Option<Vec<Refund>>,
}

/// One line item of an order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// Platform line id, unique within the order.
    pub line_id: String,
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub name: String,
    pub quantity: Decimal,
    /// Before discounts, excluding tax.
    pub subtotal: Money,
    /// After discounts, excluding tax.
    pub total: Money,
    pub tax: Money,
}

/// A refund of (part of) an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub platform_id: String,
    /// The refunded order's platform id.
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    /// Total refunded, positive, including tax and shipping.
    pub amount: Money,
    /// Refunded items; empty for an amount-only refund.
    pub lines: Vec<RefundLine>,
}

/// The refunded part of one order line.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundLine {
    /// The order line's `line_id`.
    pub order_line_id: String,
    /// Units refunded, positive.
    pub quantity: Decimal,
    /// Amount refunded for the items, positive, excluding tax.
    pub amount: Money,
}
