//! The simulated store's state: orders and refunds computed the way WooCommerce computes them,
//! their REST v3 JSON shapes, and a deterministic generator of realistic order history.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, SubsecRound, Utc, Weekday};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use crate::tz::StoreTz;

/// Statuses the REST API accepts in `status` filters (besides `any`).
pub const ORDER_STATUSES: &[&str] = &[
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
    "trash",
];

/// The whole store.
#[derive(Debug, Clone)]
pub struct SimState {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub timezone_string: String,
    /// Hours east of UTC, as WordPress stores it (`"1"`, `"5.5"`).
    pub gmt_offset: String,
    pub currency: String,
    pub orders: BTreeMap<u64, SimOrder>,
    pub refunds: BTreeMap<u64, SimRefund>,
    /// `false`: `GET /wc/v3/refunds` answers 404 `rest_no_route` (WooCommerce before 9.0).
    pub refunds_listing: bool,
    /// Tests: the store's clock is off by this much; its `Date` header tells so.
    pub date_skew: Option<chrono::Duration>,
    /// Product reviews (`GET /wc/v3/products/reviews`), in id order.
    pub reviews: Vec<SimReview>,
    /// The store is reached through a TLS front (`is_ssl()` in WordPress): it then accepts
    /// HTTP Basic or `consumer_key`/`consumer_secret` query parameters instead of OAuth 1.0a.
    pub https: bool,
    /// The clock that stamps `date_modified`; `None` = now, truncated to seconds.
    pub now_override: Option<DateTime<Utc>>,
    /// OAuth nonces seen in the last 15 minutes, by timestamp (WooCommerce keeps them per API
    /// key and refuses a nonce used again).
    pub used_nonces: BTreeMap<i64, Vec<String>>,
    /// Orders and refunds share one id sequence, as in WooCommerce's order tables.
    pub next_id: u64,
    /// Order items (lines, shipping lines) have their own sequence.
    pub next_item_id: u64,
}

/// A product review as WooCommerce lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReview {
    pub id: u64,
    pub product_id: u64,
    pub created: DateTime<Utc>,
    /// `approved`, `hold`, `spam`, `trash`.
    pub status: String,
    /// 1–5 (0 = no rating).
    pub rating: u8,
    /// Left by a customer who bought the product.
    pub verified: bool,
}

/// What to create with [`SimState::add_order`].
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// 0 = guest.
    pub customer_id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub lines: Vec<NewLine>,
    /// Coupon discount excluding tax, spread over the lines in proportion to their subtotals.
    pub coupon_discount: Decimal,
    pub coupon_code: Option<String>,
    /// Shipping excluding tax.
    pub shipping: Decimal,
    /// e.g. `0.20`.
    pub tax_rate: Decimal,
    /// Unit prices include tax (WooCommerce setting); amounts are then derived excluding tax.
    pub prices_include_tax: bool,
}

/// One line of a [`NewOrder`].
#[derive(Debug, Clone)]
pub struct NewLine {
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// Excluding tax unless the order's `prices_include_tax`.
    pub unit_price: Decimal,
}

impl NewOrder {
    /// A guest order with no lines, no shipping and 20% tax; fill in the rest.
    pub fn new(status: &str, created_at: DateTime<Utc>, email: &str) -> NewOrder {
        NewOrder {
            status: status.to_string(),
            created_at,
            customer_id: 0,
            email: email.to_string(),
            first_name: "Alex".to_string(),
            last_name: "Martin".to_string(),
            lines: Vec::new(),
            coupon_discount: Decimal::ZERO,
            coupon_code: None,
            shipping: Decimal::ZERO,
            tax_rate: Decimal::new(20, 2),
            prices_include_tax: false,
        }
    }

    pub fn customer(mut self, id: u64) -> Self {
        self.customer_id = id;
        self
    }

    pub fn line(mut self, product_id: u64, sku: &str, name: &str, qty: u32, unit: Decimal) -> Self {
        self.lines.push(NewLine {
            product_id,
            sku: sku.to_string(),
            name: name.to_string(),
            quantity: qty,
            unit_price: unit,
        });
        self
    }

    pub fn coupon(mut self, code: &str, discount: Decimal) -> Self {
        self.coupon_code = Some(code.to_string());
        self.coupon_discount = discount;
        self
    }

    pub fn shipping(mut self, amount: Decimal) -> Self {
        self.shipping = amount;
        self
    }

    pub fn tax_rate(mut self, rate: Decimal) -> Self {
        self.tax_rate = rate;
        self
    }
}

/// An order as the store holds it; [`SimOrder::to_wire`] renders the REST JSON.
#[derive(Debug, Clone)]
pub struct SimOrder {
    pub id: u64,
    pub status: String,
    pub currency: String,
    pub prices_include_tax: bool,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub paid: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub customer_id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub lines: Vec<SimLine>,
    pub shipping_line_id: u64,
    pub shipping: Decimal,
    pub shipping_tax: Decimal,
    pub coupon_code: Option<String>,
    pub tax_rate: Decimal,
    /// Refund ids, oldest first.
    pub refund_ids: Vec<u64>,
    /// Tests: a broken `total` to send instead of the real one (a plugin writing `12,00`).
    pub wire_total_override: Option<String>,
}

/// One order line item, amounts rounded to cents like WooCommerce stores them.
#[derive(Debug, Clone)]
pub struct SimLine {
    pub id: u64,
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub subtotal: Decimal,
    pub subtotal_tax: Decimal,
    pub total: Decimal,
    pub total_tax: Decimal,
}

/// A refund. Its amounts are positive here and negated on the wire.
#[derive(Debug, Clone)]
pub struct SimRefund {
    pub id: u64,
    pub parent_id: u64,
    pub created: DateTime<Utc>,
    pub amount: Decimal,
    pub reason: String,
    pub refunded_by: u64,
    pub lines: Vec<SimRefundLine>,
}

/// The refunded part of one order line.
#[derive(Debug, Clone)]
pub struct SimRefundLine {
    pub id: u64,
    pub order_line_id: u64,
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub total: Decimal,
    pub total_tax: Decimal,
}

impl SimOrder {
    pub fn discount_total(&self) -> Decimal {
        self.lines.iter().map(|l| l.subtotal - l.total).sum()
    }
    pub fn discount_tax(&self) -> Decimal {
        self.lines
            .iter()
            .map(|l| l.subtotal_tax - l.total_tax)
            .sum()
    }
    pub fn cart_tax(&self) -> Decimal {
        self.lines.iter().map(|l| l.total_tax).sum()
    }
    pub fn total_tax(&self) -> Decimal {
        self.cart_tax() + self.shipping_tax
    }
    /// As charged: line totals, shipping and all tax.
    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.total).sum::<Decimal>() + self.shipping + self.total_tax()
    }
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

pub(crate) fn naive(at: DateTime<Utc>, tz: &StoreTz) -> String {
    let local: NaiveDateTime = match tz {
        StoreTz::Named(z) => at.with_timezone(z).naive_local(),
        StoreTz::Fixed(o) => at.with_timezone(o).naive_local(),
    };
    local.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn gmt(at: DateTime<Utc>) -> String {
    at.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn opt_dates(at: Option<DateTime<Utc>>, tz: &StoreTz) -> (Option<String>, Option<String>) {
    (at.map(|a| naive(a, tz)), at.map(gmt))
}

fn price_number(total: Decimal, qty: u32) -> serde_json::Value {
    let q = Decimal::from(qty.max(1));
    let p = (total / q).to_f64().unwrap_or(0.0);
    serde_json::Number::from_f64(p)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// WooCommerce's address object (billing has email and phone).
#[derive(Debug, Clone, Serialize)]
pub struct WireAddress {
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub address_1: String,
    pub address_2: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub phone: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WireMeta {
    pub id: u64,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WireLineItem {
    pub id: u64,
    pub name: String,
    pub product_id: u64,
    pub variation_id: u64,
    pub quantity: i64,
    pub tax_class: String,
    pub subtotal: String,
    pub subtotal_tax: String,
    pub total: String,
    pub total_tax: String,
    pub taxes: Vec<serde_json::Value>,
    pub meta_data: Vec<WireMeta>,
    pub sku: String,
    pub price: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct WireShippingLine {
    pub id: u64,
    pub method_title: String,
    pub method_id: String,
    pub instance_id: String,
    pub total: String,
    pub total_tax: String,
    pub taxes: Vec<serde_json::Value>,
    pub meta_data: Vec<WireMeta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WireCouponLine {
    pub id: u64,
    pub code: String,
    pub discount: String,
    pub discount_tax: String,
    pub meta_data: Vec<WireMeta>,
}

/// An order's `refunds` entry: id, reason and negative total only.
#[derive(Debug, Clone, Serialize)]
pub struct WireOrderRefund {
    pub id: u64,
    pub reason: String,
    pub total: String,
}

/// An order as `GET /wc/v3/orders` returns it (the fields a sync reads, and their neighbours).
#[derive(Debug, Clone, Serialize)]
pub struct WireOrder {
    pub id: u64,
    pub parent_id: u64,
    pub status: String,
    pub currency: String,
    pub version: String,
    pub prices_include_tax: bool,
    pub date_created: String,
    pub date_modified: String,
    pub discount_total: String,
    pub discount_tax: String,
    pub shipping_total: String,
    pub shipping_tax: String,
    pub cart_tax: String,
    pub total: String,
    pub total_tax: String,
    pub customer_id: u64,
    pub order_key: String,
    pub billing: WireAddress,
    pub shipping: WireAddress,
    pub payment_method: String,
    pub payment_method_title: String,
    pub transaction_id: String,
    pub customer_ip_address: String,
    pub customer_user_agent: String,
    pub created_via: String,
    pub customer_note: String,
    pub date_completed: Option<String>,
    pub date_paid: Option<String>,
    pub cart_hash: String,
    pub number: String,
    pub meta_data: Vec<WireMeta>,
    pub line_items: Vec<WireLineItem>,
    pub tax_lines: Vec<serde_json::Value>,
    pub shipping_lines: Vec<WireShippingLine>,
    pub fee_lines: Vec<serde_json::Value>,
    pub coupon_lines: Vec<WireCouponLine>,
    pub refunds: Vec<WireOrderRefund>,
    pub payment_url: String,
    pub is_editable: bool,
    pub needs_payment: bool,
    pub needs_processing: bool,
    pub date_created_gmt: String,
    pub date_modified_gmt: String,
    pub date_completed_gmt: Option<String>,
    pub date_paid_gmt: Option<String>,
    pub currency_symbol: String,
}

/// A refund as `GET /wc/v3/orders/<id>/refunds` (no `parent_id`) and `GET /wc/v3/refunds`
/// (with `parent_id`) return it.
#[derive(Debug, Clone, Serialize)]
pub struct WireRefund {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    pub date_created: String,
    pub date_created_gmt: String,
    pub amount: String,
    pub reason: String,
    pub refunded_by: u64,
    pub refunded_payment: bool,
    pub meta_data: Vec<WireMeta>,
    pub line_items: Vec<WireLineItem>,
    pub shipping_lines: Vec<serde_json::Value>,
    pub tax_lines: Vec<serde_json::Value>,
    pub fee_lines: Vec<serde_json::Value>,
}

fn address(first: &str, last: &str, email: Option<&str>) -> WireAddress {
    WireAddress {
        first_name: first.to_string(),
        last_name: last.to_string(),
        company: String::new(),
        address_1: "12 rue de la Paix".to_string(),
        address_2: String::new(),
        city: "Paris".to_string(),
        state: String::new(),
        postcode: "75002".to_string(),
        country: "FR".to_string(),
        email: email.map(str::to_string),
        phone: String::new(),
    }
}

impl SimOrder {
    /// The REST v3 JSON object of this order; `refunds` resolves the `refunds` array.
    pub fn to_wire(&self, tz: &StoreTz, refunds: &BTreeMap<u64, SimRefund>) -> WireOrder {
        let (date_paid, date_paid_gmt) = opt_dates(self.paid, tz);
        let (date_completed, date_completed_gmt) = opt_dates(self.completed, tz);
        let currency_symbol = if self.currency == "EUR" { "€" } else { "$" };
        WireOrder {
            id: self.id,
            parent_id: 0,
            status: self.status.clone(),
            currency: self.currency.clone(),
            version: "11.0.1".to_string(),
            prices_include_tax: self.prices_include_tax,
            date_created: naive(self.created, tz),
            date_modified: naive(self.modified, tz),
            discount_total: money(self.discount_total()),
            discount_tax: money(self.discount_tax()),
            shipping_total: money(self.shipping),
            shipping_tax: money(self.shipping_tax),
            cart_tax: money(self.cart_tax()),
            total: self
                .wire_total_override
                .clone()
                .unwrap_or_else(|| money(self.total())),
            total_tax: money(self.total_tax()),
            customer_id: self.customer_id,
            order_key: format!("wc_order_sim{:08}", self.id),
            billing: address(&self.first_name, &self.last_name, Some(&self.email)),
            shipping: address(&self.first_name, &self.last_name, None),
            payment_method: "stripe".to_string(),
            payment_method_title: "Credit card".to_string(),
            transaction_id: String::new(),
            customer_ip_address: "127.0.0.1".to_string(),
            customer_user_agent: String::new(),
            created_via: "checkout".to_string(),
            customer_note: String::new(),
            date_completed,
            date_paid,
            cart_hash: String::new(),
            number: self.id.to_string(),
            meta_data: Vec::new(),
            line_items: self
                .lines
                .iter()
                .map(|l| WireLineItem {
                    id: l.id,
                    name: l.name.clone(),
                    product_id: l.product_id,
                    variation_id: 0,
                    quantity: i64::from(l.quantity),
                    tax_class: String::new(),
                    subtotal: money(l.subtotal),
                    subtotal_tax: money(l.subtotal_tax),
                    total: money(l.total),
                    total_tax: money(l.total_tax),
                    taxes: Vec::new(),
                    meta_data: Vec::new(),
                    sku: l.sku.clone(),
                    price: price_number(l.total, l.quantity),
                })
                .collect(),
            tax_lines: Vec::new(),
            shipping_lines: if self.shipping.is_zero() {
                Vec::new()
            } else {
                vec![WireShippingLine {
                    id: self.shipping_line_id,
                    method_title: "Flat rate".to_string(),
                    method_id: "flat_rate".to_string(),
                    instance_id: "1".to_string(),
                    total: money(self.shipping),
                    total_tax: money(self.shipping_tax),
                    taxes: Vec::new(),
                    meta_data: Vec::new(),
                }]
            },
            fee_lines: Vec::new(),
            coupon_lines: self
                .coupon_code
                .iter()
                .map(|c| WireCouponLine {
                    id: self.shipping_line_id + 1,
                    code: c.clone(),
                    discount: money(self.discount_total()),
                    discount_tax: money(self.discount_tax()),
                    meta_data: Vec::new(),
                })
                .collect(),
            // WooCommerce lists the newest refund first.
            refunds: self
                .refund_ids
                .iter()
                .rev()
                .filter_map(|id| refunds.get(id))
                .map(|r| WireOrderRefund {
                    id: r.id,
                    reason: r.reason.clone(),
                    total: money(-r.amount),
                })
                .collect(),
            payment_url: String::new(),
            is_editable: matches!(
                self.status.as_str(),
                "pending" | "on-hold" | "checkout-draft"
            ),
            needs_payment: matches!(self.status.as_str(), "pending" | "failed"),
            needs_processing: true,
            date_created_gmt: gmt(self.created),
            date_modified_gmt: gmt(self.modified),
            date_completed_gmt,
            date_paid_gmt,
            currency_symbol: currency_symbol.to_string(),
        }
    }
}

impl SimRefund {
    /// The REST v3 JSON object; `with_parent` adds `parent_id` (the `/wc/v3/refunds` listing).
    pub fn to_wire(&self, tz: &StoreTz, with_parent: bool) -> WireRefund {
        WireRefund {
            id: self.id,
            parent_id: with_parent.then_some(self.parent_id),
            date_created: naive(self.created, tz),
            date_created_gmt: gmt(self.created),
            amount: money(self.amount),
            reason: self.reason.clone(),
            refunded_by: self.refunded_by,
            refunded_payment: false,
            meta_data: Vec::new(),
            line_items: self
                .lines
                .iter()
                .map(|l| WireLineItem {
                    id: l.id,
                    name: l.name.clone(),
                    product_id: l.product_id,
                    variation_id: 0,
                    quantity: -i64::from(l.quantity),
                    tax_class: String::new(),
                    subtotal: money(-l.total),
                    subtotal_tax: money(-l.total_tax),
                    total: money(-l.total),
                    total_tax: money(-l.total_tax),
                    taxes: Vec::new(),
                    meta_data: vec![WireMeta {
                        id: l.id + 1_000_000,
                        key: "_refunded_item_id".to_string(),
                        value: l.order_line_id.to_string(),
                    }],
                    sku: l.sku.clone(),
                    price: price_number(-l.total, l.quantity),
                })
                .collect(),
            shipping_lines: Vec::new(),
            tax_lines: Vec::new(),
            fee_lines: Vec::new(),
        }
    }
}

/// Offset of a zone at an instant as WordPress's `gmt_offset` would show it.
fn gmt_offset_of(tz: &StoreTz, at: DateTime<Utc>) -> String {
    let secs = tz.offset_seconds_at(at);
    let hours = Decimal::from(secs) / Decimal::from(3600);
    hours.normalize().to_string()
}

impl SimState {
    /// An empty store.
    pub fn new(key: &str, secret: &str, timezone: &str, currency: &str) -> SimState {
        let tz = StoreTz::parse(timezone).unwrap_or(StoreTz::UTC);
        SimState {
            consumer_key: key.to_string(),
            consumer_secret: secret.to_string(),
            timezone_string: timezone.to_string(),
            gmt_offset: gmt_offset_of(&tz, Utc::now()),
            currency: currency.to_string(),
            orders: BTreeMap::new(),
            refunds: BTreeMap::new(),
            refunds_listing: true,
            https: false,
            reviews: Vec::new(),
            date_skew: None,
            now_override: None,
            used_nonces: BTreeMap::new(),
            next_id: 100,
            next_item_id: 1,
        }
    }

    /// The site's time zone: `timezone_string`, else `gmt_offset`, else UTC.
    pub fn tz(&self) -> StoreTz {
        if !self.timezone_string.is_empty()
            && let Ok(tz) = StoreTz::parse(&self.timezone_string)
        {
            return tz;
        }
        StoreTz::from_gmt_offset_hours(&self.gmt_offset).unwrap_or(StoreTz::UTC)
    }

    /// The store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now_override.unwrap_or_else(Utc::now).trunc_subsecs(0)
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn take_item_id(&mut self) -> u64 {
        let id = self.next_item_id;
        self.next_item_id += 1;
        id
    }

    /// Creates an order; `date_modified` is the later of its creation and the store's clock.
    pub fn add_order(&mut self, o: NewOrder) -> u64 {
        let id = self.take_id();
        let created = o.created_at.trunc_subsecs(0);
        let rate = o.tax_rate;
        let mut lines: Vec<SimLine> = o
            .lines
            .iter()
            .map(|l| {
                let gross = l.unit_price * Decimal::from(l.quantity);
                let subtotal = if o.prices_include_tax {
                    (gross / (Decimal::ONE + rate)).round_dp(2)
                } else {
                    gross.round_dp(2)
                };
                SimLine {
                    id: 0,
                    product_id: l.product_id,
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    subtotal,
                    subtotal_tax: (subtotal * rate).round_dp(2),
                    total: subtotal,
                    total_tax: Decimal::ZERO,
                }
            })
            .collect();
        // Spread the coupon over the lines by subtotal; the last line takes the rounding rest.
        let items: Decimal = lines.iter().map(|l| l.subtotal).sum();
        let discount = o.coupon_discount.round_dp(2).min(items).max(Decimal::ZERO);
        let mut left = discount;
        let n = lines.len();
        for (i, l) in lines.iter_mut().enumerate() {
            let share = if i + 1 == n || items.is_zero() {
                left
            } else {
                (discount * l.subtotal / items).round_dp(2).min(left)
            };
            left -= share;
            l.total = l.subtotal - share;
            l.total_tax = (l.total * rate).round_dp(2);
        }
        for l in &mut lines {
            l.id = self.take_item_id();
        }
        let shipping_line_id = self.take_item_id();
        // One more item id for a coupon line.
        self.take_item_id();
        let now = self.now().max(created);
        let paid =
            matches!(o.status.as_str(), "processing" | "completed" | "refunded").then_some(created);
        let completed = (o.status == "completed").then_some(now);
        let shipping = o.shipping.round_dp(2);
        self.orders.insert(
            id,
            SimOrder {
                id,
                status: o.status,
                currency: self.currency.clone(),
                prices_include_tax: o.prices_include_tax,
                created,
                modified: now,
                paid,
                completed,
                customer_id: o.customer_id,
                email: o.email,
                first_name: o.first_name,
                last_name: o.last_name,
                lines,
                shipping_line_id,
                shipping,
                shipping_tax: (shipping * rate).round_dp(2),
                coupon_code: o.coupon_code,
                tax_rate: rate,
                refund_ids: Vec::new(),
                wire_total_override: None,
            },
        );
        id
    }

    /// Adds a product review; returns its id.
    pub fn add_review(
        &mut self,
        product_id: u64,
        created: DateTime<Utc>,
        rating: u8,
        verified: bool,
        status: &str,
    ) -> u64 {
        let id = self.take_id();
        self.reviews.push(SimReview {
            id,
            product_id,
            created: created.trunc_subsecs(0),
            status: status.to_string(),
            rating,
            verified,
        });
        id
    }

    /// Deletes an order permanently (emptied from the trash): it vanishes from every listing.
    pub fn delete_order(&mut self, id: u64) {
        if let Some(o) = self.orders.remove(&id) {
            for r in o.refund_ids {
                self.refunds.remove(&r);
            }
        }
    }

    /// Bumps an order's `date_modified` to the store's clock.
    pub fn touch(&mut self, id: u64) {
        let now = self.now();
        if let Some(o) = self.orders.get_mut(&id) {
            o.modified = now.max(o.created);
        }
    }

    /// Deletes a refund (WooCommerce allows it): the order no longer lists it and its
    /// `date_modified` is bumped. A fully refunded order goes back to `completed`.
    pub fn delete_refund(&mut self, refund_id: u64) {
        let now = self.now();
        let Some(r) = self.refunds.remove(&refund_id) else {
            return;
        };
        if let Some(o) = self.orders.get_mut(&r.parent_id) {
            o.refund_ids.retain(|id| *id != refund_id);
            o.modified = now.max(o.created);
            if o.status == "refunded" {
                o.status = "completed".to_string();
            }
        }
    }

    /// Changes an order's status (`"trash"` trashes it) and bumps `date_modified`.
    pub fn set_status(&mut self, id: u64, status: &str) {
        let now = self.now();
        if let Some(o) = self.orders.get_mut(&id) {
            o.status = status.to_string();
            let now = now.max(o.created);
            o.modified = now;
            if matches!(status, "processing" | "completed") && o.paid.is_none() {
                o.paid = Some(now);
            }
            if status == "completed" && o.completed.is_none() {
                o.completed = Some(now);
            }
        }
    }

    /// Refunds `lines` (order line id, quantity) plus `extra_amount` (an amount-only part,
    /// tax included) of an order. Returns the refund id, or 0 for an unknown order. Refunding
    /// everything left sets the order `refunded`.
    pub fn refund(&mut self, order_id: u64, lines: &[(u64, u32)], extra_amount: Decimal) -> u64 {
        let now = self.now();
        let Some(order) = self.orders.get(&order_id) else {
            return 0;
        };
        let created = now.max(order.created);
        let mut rlines = Vec::new();
        for &(line_id, qty) in lines {
            let Some(l) = order.lines.iter().find(|l| l.id == line_id) else {
                continue;
            };
            let qty = qty.min(l.quantity);
            if qty == 0 {
                continue;
            }
            let (total, tax) = if qty == l.quantity {
                (l.total, l.total_tax)
            } else {
                let q = Decimal::from(qty) / Decimal::from(l.quantity);
                ((l.total * q).round_dp(2), (l.total_tax * q).round_dp(2))
            };
            rlines.push(SimRefundLine {
                id: 0,
                order_line_id: l.id,
                product_id: l.product_id,
                sku: l.sku.clone(),
                name: l.name.clone(),
                quantity: qty,
                total,
                total_tax: tax,
            });
        }
        let order_total = order.total();
        let already: Decimal = order
            .refund_ids
            .iter()
            .filter_map(|id| self.refunds.get(id))
            .map(|r| r.amount)
            .sum();
        let amount = (rlines
            .iter()
            .map(|l| l.total + l.total_tax)
            .sum::<Decimal>()
            + extra_amount.round_dp(2))
        .min(order_total - already);
        let id = self.take_id();
        for l in &mut rlines {
            l.id = self.take_item_id();
        }
        let reason = if rlines.is_empty() {
            "Goodwill gesture"
        } else {
            "Returned item"
        };
        self.refunds.insert(
            id,
            SimRefund {
                id,
                parent_id: order_id,
                created,
                amount,
                reason: reason.to_string(),
                refunded_by: 1,
                lines: rlines,
            },
        );
        if let Some(o) = self.orders.get_mut(&order_id) {
            o.refund_ids.push(id);
            o.modified = created;
            if already + amount >= order_total {
                o.status = "refunded".to_string();
            }
        }
        id
    }

    /// A store with `days` of history up to `now`, about `orders_per_day` orders a day, the same
    /// for the same seed. Key `ck_demo…`, secret `cs_demo…`, Europe/Paris, EUR, 20% tax.
    pub fn generate(seed: u64, now: DateTime<Utc>, days: u32, orders_per_day: u32) -> SimState {
        let now = now.trunc_subsecs(0);
        let mut rng = SplitMix64(seed ^ 0x0005_EED0_F0C5_u64);
        let mut st = SimState::new(
            &format!("ck_demo{:016x}", seed),
            &format!("cs_demo{:016x}", seed.rotate_left(17) ^ 0xA5A5_A5A5),
            "Europe/Paris",
            "EUR",
        );
        st.gmt_offset = gmt_offset_of(&st.tz(), now);
        let catalog: Vec<(u64, &str, &str, Decimal)> = CATALOG
            .iter()
            .enumerate()
            .map(|(i, (sku, name, cents))| (101 + i as u64, *sku, *name, Decimal::new(*cents, 2)))
            .collect();
        let n_customers = (u64::from(days) * u64::from(orders_per_day) / 6).clamp(8, 5000);
        let customers: Vec<(u64, String, String, String)> = (0..n_customers)
            .map(|i| {
                let f = FIRST[(rng.next() % FIRST.len() as u64) as usize];
                let l = LAST[(rng.next() % LAST.len() as u64) as usize];
                let email = format!("{}.{}{}@example.com", f.to_lowercase(), l.to_lowercase(), i);
                (2 + i, f.to_string(), l.to_string(), email)
            })
            .collect();
        let start = now - Duration::days(i64::from(days));
        // Events that happen after creation: (when, order, kind).
        let mut later: Vec<(DateTime<Utc>, u64, u8)> = Vec::new();
        let mut case_reuse_done = false;
        for d in 0..days {
            let day = start + Duration::days(i64::from(d));
            let wd = match day.weekday() {
                Weekday::Mon => 95,
                Weekday::Tue | Weekday::Wed => 90,
                Weekday::Thu => 100,
                Weekday::Fri => 110,
                Weekday::Sat => 120,
                Weekday::Sun => 115,
            };
            let season = match day.month() {
                11 => 140,
                12 => 160,
                1 => 80,
                7 | 8 => 85,
                _ => 100,
            };
            let noise = 75 + rng.next() % 51;
            let n = u64::from(orders_per_day) * wd * season * noise / 1_000_000;
            for _ in 0..n {
                let at = day + Duration::seconds((rng.next() % 86_400) as i64);
                if at > now {
                    continue;
                }
                let age = now - at;
                let r = rng.next() % 1000;
                let status = if age < Duration::days(2) {
                    match r {
                        0..=699 => "processing",
                        700..=849 => "pending",
                        850..=899 => "on-hold",
                        900..=949 => "failed",
                        _ => "completed",
                    }
                } else {
                    match r {
                        0..=39 => "cancelled",
                        40..=69 => "failed",
                        70..=84 => "pending",
                        85..=94 => "on-hold",
                        95..=119 => "processing",
                        _ => "completed",
                    }
                };
                let who = rng.next() % 100;
                let mut o = NewOrder::new(status, at, "");
                if who < 55 {
                    // Registered, skewed towards a core of repeat buyers.
                    let k = rng.next() % n_customers;
                    let idx = (k * k / n_customers) as usize;
                    let (id, f, l, e) = &customers[idx];
                    o.customer_id = *id;
                    o.first_name = f.clone();
                    o.last_name = l.clone();
                    o.email = e.clone();
                } else if who < 62 || !case_reuse_done {
                    // A guest checkout with a registered customer's email in another case.
                    let (_, f, l, e) = &customers[(rng.next() % n_customers) as usize];
                    o.first_name = f.clone();
                    o.last_name = l.clone();
                    o.email = if rng.next().is_multiple_of(2) {
                        e.to_uppercase()
                    } else {
                        let mut c = e.chars();
                        c.next()
                            .map(|h| h.to_uppercase().collect::<String>() + c.as_str())
                            .unwrap_or_default()
                    };
                    case_reuse_done = true;
                } else {
                    let f = FIRST[(rng.next() % FIRST.len() as u64) as usize];
                    let l = LAST[(rng.next() % LAST.len() as u64) as usize];
                    o.first_name = f.to_string();
                    o.last_name = l.to_string();
                    o.email = format!("{}{}@mail.test", f.to_lowercase(), rng.next() % 100_000);
                }
                let n_lines = 1 + rng.next() % 3;
                for _ in 0..n_lines {
                    let (pid, sku, name, price) =
                        catalog[(rng.next() % catalog.len() as u64) as usize];
                    if o.lines.iter().any(|l| l.product_id == pid) {
                        continue;
                    }
                    let qty = 1 + (rng.next() % 10).saturating_sub(7) as u32;
                    o = o.line(pid, sku, name, qty, price);
                }
                let items: Decimal = o
                    .lines
                    .iter()
                    .map(|l| l.unit_price * Decimal::from(l.quantity))
                    .sum();
                if rng.next() % 100 < 15 {
                    o = o.coupon("WELCOME10", (items / Decimal::TEN).round_dp(2));
                }
                if items < Decimal::from(60) {
                    o = o.shipping(Decimal::new(490, 2));
                }
                // Created, then modified when it was processed (within a day, before now).
                let processed = (at + Duration::seconds((rng.next() % 20_000) as i64)).min(now);
                st.now_override = Some(processed);
                let id = st.add_order(o);
                if status == "completed" || status == "processing" {
                    let rr = rng.next() % 1000;
                    let when = (at + Duration::days(3 + (rng.next() % 20) as i64)).min(now);
                    if rr < 36 && when > processed {
                        later.push((when, id, (rr % 3) as u8));
                    } else if rr > 996 {
                        later.push((when.max(processed), id, 9));
                    }
                }
            }
        }
        later.sort();
        for (when, id, kind) in later {
            st.now_override = Some(when);
            let Some(o) = st.orders.get(&id) else {
                continue;
            };
            let first_line = o.lines.first().map(|l| (l.id, l.quantity));
            let all: Vec<(u64, u32)> = o.lines.iter().map(|l| (l.id, l.quantity)).collect();
            let total = o.total();
            match kind {
                0 => {
                    st.refund(id, &all, o.shipping + o.shipping_tax);
                }
                1 => {
                    if let Some((line, _)) = first_line {
                        st.refund(id, &[(line, 1)], Decimal::ZERO);
                    }
                }
                2 => {
                    let part = (total * Decimal::new(15, 2)).round_dp(2).max(Decimal::ONE);
                    st.refund(id, &[], part);
                }
                _ => st.set_status(id, "trash"),
            }
        }
        st.now_override = None;
        st
    }
}

/// splitmix64: small, fast, good enough for synthetic data, and stable across platforms.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

const CATALOG: &[(&str, &str, i64)] = &[
    ("MUG-01", "Ceramic mug", 1450),
    ("TEE-BLK-M", "T-shirt black M", 2400),
    ("TEE-WHT-L", "T-shirt white L", 2400),
    ("HOOD-GRY", "Hoodie grey", 5900),
    ("CAP-NVY", "Cap navy", 1990),
    ("BAG-TOTE", "Tote bag", 1200),
    ("NB-A5", "Notebook A5", 890),
    ("PEN-SET", "Pen set", 1575),
    ("POST-A3", "Poster A3", 1800),
    ("STK-PACK", "Sticker pack", 450),
    ("BOTL-750", "Water bottle 750 ml", 2790),
    ("SOCK-3P", "Socks (3 pairs)", 1690),
];

const FIRST: &[&str] = &[
    "Camille", "Léa", "Hugo", "Lucas", "Chloé", "Emma", "Louis", "Jules", "Manon", "Inès",
    "Nathan", "Sarah", "Paul", "Alice", "Tom", "Zoé",
];

const LAST: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn amounts_follow_woocommerce_rounding() {
        let mut st = SimState::new("ck", "cs", "Europe/Paris", "EUR");
        st.now_override = Some(now());
        let id = st.add_order(
            NewOrder::new("completed", now(), "a@b.test")
                .line(1, "A", "A", 3, Decimal::new(1000, 2))
                .line(2, "B", "B", 1, Decimal::new(500, 2))
                .coupon("X", Decimal::new(350, 2))
                .shipping(Decimal::new(490, 2)),
        );
        let w = st.orders[&id].to_wire(&st.tz(), &st.refunds);
        assert_eq!(w.discount_total, "3.50");
        assert_eq!(w.line_items[0].subtotal, "30.00");
        assert_eq!(w.line_items[0].total, "27.00");
        assert_eq!(w.line_items[1].total, "4.50");
        assert_eq!(w.shipping_total, "4.90");
        // (27 + 4.5) * 0.2 + 4.9 * 0.2 = 6.30 + 0.98
        assert_eq!(w.total_tax, "7.28");
        assert_eq!(w.total, "43.68");
        assert_eq!(w.date_created_gmt, "2026-03-01T12:00:00");
        assert_eq!(w.date_created, "2026-03-01T13:00:00");
    }

    #[test]
    fn full_refund_sets_refunded() {
        let mut st = SimState::new("ck", "cs", "UTC", "EUR");
        st.now_override = Some(now());
        let id = st.add_order(NewOrder::new("completed", now(), "a@b.test").line(
            1,
            "A",
            "A",
            2,
            Decimal::TEN,
        ));
        let line = st.orders[&id].lines[0].id;
        let r1 = st.refund(id, &[(line, 1)], Decimal::ZERO);
        assert_eq!(st.refunds[&r1].amount, Decimal::new(1200, 2));
        assert_eq!(st.orders[&id].status, "completed");
        let r2 = st.refund(id, &[(line, 1)], Decimal::ZERO);
        assert_eq!(st.orders[&id].status, "refunded");
        let w = st.orders[&id].to_wire(&st.tz(), &st.refunds);
        assert_eq!(w.refunds[0].id, r2);
        assert_eq!(w.refunds[1].total, "-12.00");
        let wr = st.refunds[&r1].to_wire(&st.tz(), true);
        assert_eq!(wr.line_items[0].quantity, -1);
        assert_eq!(wr.line_items[0].total, "-10.00");
        assert_eq!(wr.line_items[0].meta_data[0].value, line.to_string());
    }

    #[test]
    fn generate_is_deterministic_and_realistic() {
        let a = SimState::generate(7, now(), 120, 20);
        let b = SimState::generate(7, now(), 120, 20);
        assert_eq!(a.orders.len(), b.orders.len());
        assert_eq!(a.consumer_secret, b.consumer_secret);
        let wa: Vec<_> = a
            .orders
            .values()
            .map(|o| (o.id, o.total(), o.modified, o.status.clone()))
            .collect();
        let wb: Vec<_> = b
            .orders
            .values()
            .map(|o| (o.id, o.total(), o.modified, o.status.clone()))
            .collect();
        assert_eq!(wa, wb);
        assert!(a.consumer_key.starts_with("ck_demo") && a.consumer_secret.starts_with("cs_demo"));
        let n = a.orders.len() as f64;
        assert!((1500.0..3500.0).contains(&n), "{n} orders");
        let share = |s: &str| a.orders.values().filter(|o| o.status == s).count() as f64 / n;
        assert!(
            (0.02..0.07).contains(&share("cancelled")),
            "{}",
            share("cancelled")
        );
        let refunded_orders = a
            .orders
            .values()
            .filter(|o| !o.refund_ids.is_empty())
            .count() as f64
            / n;
        assert!((0.01..0.05).contains(&refunded_orders), "{refunded_orders}");
        assert!(a.refunds.values().any(|r| r.lines.is_empty()));
        assert!(a.refunds.values().any(|r| !r.lines.is_empty()));
        assert!(a.orders.values().any(|o| o.status == "refunded"));
        assert!(
            a.orders
                .values()
                .all(|o| o.modified >= o.created && o.modified <= now())
        );
        // A registered customer's email also appears on a guest order, in another case.
        let registered: std::collections::HashSet<&str> = a
            .orders
            .values()
            .filter(|o| o.customer_id > 0)
            .map(|o| o.email.as_str())
            .collect();
        assert!(a.orders.values().any(|o| o.customer_id == 0
            && !registered.contains(o.email.as_str())
            && registered.contains(o.email.to_lowercase().as_str())));
        let c = SimState::generate(8, now(), 120, 20);
        assert_ne!(c.orders.len(), 0);
        assert_ne!(c.consumer_secret, a.consumer_secret);
    }
}
