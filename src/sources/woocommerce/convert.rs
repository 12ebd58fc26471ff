//! Pure conversion from WooCommerce wire structs to domain records (`docs/kpis.md`, "Money").

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;

use super::api::{WireOrder, WireRefund};
use crate::config::WooSettings;
use crate::domain::{CustomerRef, Order, OrderLine, Refund, RefundLine};

/// A field that could not be read, with enough context to find it in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

fn money(what: &str, id: u64, field: &str, v: &Option<String>) -> Result<Decimal, ConvertError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(Decimal::ZERO),
        Some(s) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| ConvertError(format!("{what} {id}: `{field}` = `{s}` is not a number"))),
    }
}

/// Parses WooCommerce's naive GMT date-time (`2026-01-05T10:00:00`).
pub(super) fn gmt(
    what: &str,
    id: u64,
    field: &str,
    v: &Option<String>,
) -> Result<DateTime<Utc>, ConvertError> {
    let s = v
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConvertError(format!("{what} {id}: `{field}` is missing")))?;
    let naive = s.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|d| d.and_utc())
        .map_err(|_| ConvertError(format!("{what} {id}: `{field}` = `{s}` is not a date-time")))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Converts one listed order. `trashed` is true for orders from the `status=trash` listing.
pub(super) fn order(w: &WireOrder, rules: &WooSettings) -> Result<Order, ConvertError> {
    let id = w.id;
    let mut lines = Vec::with_capacity(w.line_items.len());
    let mut items_gross = Decimal::ZERO;
    let mut discounts = Decimal::ZERO;
    for l in &w.line_items {
        let subtotal = money("order", id, "line_items.subtotal", &l.subtotal)?;
        let total = money("order", id, "line_items.total", &l.total)?;
        items_gross += subtotal;
        discounts += subtotal - total;
        let product = match (l.variation_id, l.product_id) {
            (_, Some(p)) if p > 0 => Some(p.to_string()),
            (Some(v), _) if v > 0 => Some(v.to_string()),
            _ => None,
        };
        lines.push(OrderLine {
            line_id: l.id.to_string(),
            product_id: product,
            sku: non_empty(&l.sku),
            name: l.name.clone(),
            quantity: money("order", id, "line_items.quantity", &l.quantity)?,
            subtotal,
            total,
            tax: money("order", id, "line_items.total_tax", &l.total_tax)?,
        });
    }
    let mut refunded = Decimal::ZERO;
    for r in &w.refunds {
        // Listed as negative amounts ("-10.00").
        refunded += money("order", id, "refunds.total", &r.total)?.abs();
    }
    let trashed = w.status == "trash";
    Ok(Order {
        platform_id: id.to_string(),
        number: non_empty(&w.number).unwrap_or_else(|| id.to_string()),
        created_at: gmt("order", id, "date_created_gmt", &w.date_created_gmt)?,
        modified_at: gmt("order", id, "date_modified_gmt", &w.date_modified_gmt)?,
        status: w.status.clone(),
        counted: !trashed && rules.counts(&w.status),
        currency: w.currency.clone(),
        items_gross,
        discounts,
        shipping: money("order", id, "shipping_total", &w.shipping_total)?,
        tax: money("order", id, "total_tax", &w.total_tax)?,
        total: money("order", id, "total", &w.total)?,
        refunded,
        customer: CustomerRef {
            platform_id: (w.customer_id > 0).then(|| w.customer_id.to_string()),
            email: w.billing.as_ref().and_then(|b| non_empty(&b.email)),
        },
        test: false,
        trashed,
        lines,
        refund_ids: w.refunds.iter().map(|r| r.id.to_string()).collect(),
        refunds: None,
    })
}

/// Converts one refund. `order_id` is used when the listing omits `parent_id`.
pub(super) fn refund(w: &WireRefund, order_id: Option<u64>) -> Result<Refund, ConvertError> {
    let id = w.id;
    let parent = w
        .parent_id
        .filter(|p| *p > 0)
        .or(order_id)
        .ok_or_else(|| ConvertError(format!("refund {id}: `parent_id` is missing")))?;
    let mut lines = Vec::new();
    for l in &w.line_items {
        let refunded_item = l
            .meta_data
            .iter()
            .find(|m| m.key == "_refunded_item_id")
            .and_then(|m| match &m.value {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        lines.push(RefundLine {
            // Without the meta the amount still counts for the order, not for a line.
            order_line_id: refunded_item.unwrap_or_else(|| format!("unlinked:{}", l.id)),
            quantity: money("refund", id, "line_items.quantity", &l.quantity)?.abs(),
            amount: money("refund", id, "line_items.total", &l.total)?.abs(),
        });
    }
    Ok(Refund {
        platform_id: id.to_string(),
        order_id: parent.to_string(),
        created_at: gmt("refund", id, "date_created_gmt", &w.date_created_gmt)?,
        amount: money("refund", id, "amount", &w.amount)?.abs(),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_EXCLUDED_STATUSES;

    fn rules() -> WooSettings {
        WooSettings {
            url: "https://shop.example".parse().unwrap(),
            consumer_key: "ck".to_string().into(),
            consumer_secret: "cs".to_string().into(),
            auth: crate::config::WooAuth::Basic,
            counted_statuses: None,
            excluded_statuses: DEFAULT_EXCLUDED_STATUSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            reconcile_schedule: "0 30 3 * * *".parse().unwrap(),
            max_concurrency: 1,
        }
    }

    #[test]
    fn order_amounts_follow_the_contract() {
        let w: WireOrder = serde_json::from_str(
            r#"{"id": 7, "number": "7", "status": "completed", "currency": "EUR",
                "date_created_gmt": "2026-03-01T09:00:00", "date_modified_gmt": "2026-03-02T10:00:00",
                "discount_total": "5.00", "shipping_total": "4.90", "total": "64.90", "total_tax": "10.00",
                "customer_id": 0, "billing": {"email": "A@B.example"},
                "line_items": [
                  {"id": 1, "name": "Mug", "product_id": 11, "quantity": 2, "subtotal": "30.00", "total": "25.00", "total_tax": "5.00", "sku": "MUG"},
                  {"id": 2, "name": "Tee", "product_id": 12, "quantity": 1, "subtotal": "25.00", "total": "25.00", "total_tax": "5.00", "sku": ""}
                ],
                "refunds": [{"id": 90, "reason": "", "total": "-12.50"}]}"#,
        )
        .unwrap();
        let o = order(&w, &rules()).unwrap();
        assert_eq!(o.items_gross, Decimal::new(5500, 2)); // 30 + 25
        assert_eq!(o.discounts, Decimal::new(500, 2)); // (30-25) + 0
        assert_eq!(o.refunded, Decimal::new(1250, 2));
        assert_eq!(o.refund_ids, vec!["90".to_string()]);
        assert!(o.counted);
        assert_eq!(o.customer.platform_id, None);
        assert_eq!(o.lines[1].sku, None);
        assert_eq!(o.created_at.to_rfc3339(), "2026-03-01T09:00:00+00:00");
    }

    #[test]
    fn excluded_and_trashed_orders_do_not_count() {
        for (status, counts) in [
            ("pending", false),
            ("cancelled", false),
            ("trash", false),
            ("on-hold", true),
            ("refunded", true),
            ("my-custom", true),
        ] {
            let w: WireOrder = serde_json::from_str(&format!(
                r#"{{"id": 1, "status": "{status}", "date_created_gmt": "2026-03-01T09:00:00", "date_modified_gmt": "2026-03-01T09:00:00"}}"#
            ))
            .unwrap();
            assert_eq!(order(&w, &rules()).unwrap().counted, counts, "{status}");
        }
    }

    #[test]
    fn bad_money_names_the_field() {
        let w: WireOrder = serde_json::from_str(
            r#"{"id": 5, "status": "completed", "total": "12,00", "date_created_gmt": "2026-03-01T09:00:00", "date_modified_gmt": "2026-03-01T09:00:00"}"#,
        )
        .unwrap();
        let e = order(&w, &rules()).unwrap_err();
        assert!(
            e.0.contains("order 5") && e.0.contains("`total`"),
            "{}",
            e.0
        );
    }

    #[test]
    fn refund_lines_link_to_order_lines() {
        let w: WireRefund = serde_json::from_str(
            r#"{"id": 90, "parent_id": 7, "date_created_gmt": "2026-03-03T08:00:00", "amount": "12.50",
                "line_items": [{"id": 100, "quantity": -1, "total": "-12.50",
                  "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": "1"}]}]}"#,
        )
        .unwrap();
        let r = refund(&w, None).unwrap();
        assert_eq!(r.order_id, "7");
        assert_eq!(r.lines[0].order_line_id, "1");
        assert_eq!(r.lines[0].quantity, Decimal::ONE);
        assert_eq!(r.lines[0].amount, Decimal::new(1250, 2));
    }
}
