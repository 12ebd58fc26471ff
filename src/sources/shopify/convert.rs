//! Pure conversion from Shopify wire structs to domain records (`docs/kpis.md`, "Money";
//! `docs/shopify.md` for the tax-inclusive formula).
//!
//! Per line item, with `original` = `originalTotalSet` (unit price × quantity before
//! discounts), `disc` = Σ `discountAllocations`, `tax` = Σ `taxLines.priceSet` and
//! `rate` = Σ `taxLines.rate`:
//!
//! * prices excluding tax: `subtotal = original`, `total = original − disc`;
//! * `taxesIncluded`: `subtotal = round₂(original / (1 + rate))` and
//!   `total = original − disc − tax` (Shopify's tax is computed on the discounted price, so
//!   what remains is the discounted price excluding tax).
//!
//! `items_gross = Σ subtotal`, `discounts = Σ (subtotal − total)`. A refund line's item
//! amount is `subtotalSet − totalTaxSet` when taxes are included, else `subtotalSet`; a
//! refund's item amounts together never exceed what it paid back excluding the lines' tax
//! (`totalRefundedSet − Σ totalTaxSet`, see [`cap_items`]).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::api::{MoneyBag, WireOrder, WireRefund};
use crate::domain::{CustomerRef, Order, OrderLine, Refund, RefundLine};

/// A field that could not be read, naming the order and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

fn decimal(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

fn money(id: &str, field: &str, v: &Option<MoneyBag>) -> Result<Decimal, ConvertError> {
    match v {
        None => Ok(Decimal::ZERO),
        Some(b) => match &b.shop_money.amount {
            Value::Null => Ok(Decimal::ZERO),
            other => decimal(other).ok_or_else(|| {
                ConvertError(format!(
                    "order {id}: `{field}` = `{other}` is not an amount"
                ))
            }),
        },
    }
}

/// Parses an ISO 8601 date-time (`2026-01-05T10:00:00Z`).
pub(super) fn instant(id: &str, field: &str, v: &str) -> Result<DateTime<Utc>, ConvertError> {
    DateTime::parse_from_rfc3339(v.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| ConvertError(format!("{id}: `{field}` = `{v}` is not a date-time")))
}

/// The numeric tail of a GID (`gid://shopify/Order/42` → 42), for cursor ordering.
pub(super) fn gid_number(gid: &str) -> u64 {
    gid.rsplit('/')
        .next()
        .and_then(|t| t.split('?').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Converts an order whose line items and refund line items are complete.
pub(super) fn order(w: &WireOrder) -> Result<Order, ConvertError> {
    let id = w.id.as_str();
    let incl = w.taxes_included;
    let mut lines = Vec::with_capacity(w.line_items.nodes.len());
    let mut items_gross = Decimal::ZERO;
    let mut discounts = Decimal::ZERO;
    for l in &w.line_items.nodes {
        let original = money(id, "lineItems.originalTotalSet", &l.original_total_set)?;
        let mut disc = Decimal::ZERO;
        for d in &l.discount_allocations {
            disc += money(
                id,
                "lineItems.discountAllocations",
                &Some(d.allocated_amount_set.clone()),
            )?;
        }
        let mut tax = Decimal::ZERO;
        let mut rate = Decimal::ZERO;
        for t in &l.tax_lines {
            tax += money(id, "lineItems.taxLines.priceSet", &t.price_set)?;
            if let Some(r) = &t.rate {
                rate += decimal(r).ok_or_else(|| {
                    ConvertError(format!(
                        "order {id}: `taxLines.rate` = `{r}` is not a number"
                    ))
                })?;
            }
        }
        let (subtotal, total) = if incl {
            let total = original - disc - tax;
            let subtotal = if rate > Decimal::ZERO {
                (original / (Decimal::ONE + rate)).round_dp(2)
            } else if original - disc > Decimal::ZERO {
                // No rate reported: take the tax out in proportion to the discounted price.
                original - (tax * original / (original - disc)).round_dp(2)
            } else {
                original - tax
            };
            (subtotal, total)
        } else {
            (original, original - disc)
        };
        items_gross += subtotal;
        discounts += subtotal - total;
        lines.push(OrderLine {
            line_id: l.id.clone(),
            product_id: l.product.as_ref().map(|p| p.id.clone()),
            sku: non_empty(&l.sku),
            name: l.name.clone(),
            quantity: Decimal::from(l.quantity),
            subtotal,
            total,
            tax,
        });
    }
    let mut refunds = Vec::with_capacity(w.refunds.len());
    for r in &w.refunds {
        refunds.push(refund(id, incl, r)?);
    }
    let cancelled = w.cancelled_at.as_deref().is_some_and(|c| !c.is_empty());
    let status = if cancelled {
        "cancelled".to_string()
    } else {
        w.display_financial_status
            .as_deref()
            .unwrap_or("open")
            .to_ascii_lowercase()
    };
    Ok(Order {
        platform_id: w.id.clone(),
        number: non_empty(&w.name)
            .map(|n| n.trim_start_matches('#').to_string())
            .unwrap_or_else(|| gid_number(id).to_string()),
        created_at: instant(id, "createdAt", &w.created_at)?,
        modified_at: instant(id, "updatedAt", &w.updated_at)?,
        status,
        counted: !w.test && !cancelled,
        currency: w.currency_code.clone().unwrap_or_default(),
        items_gross,
        discounts,
        shipping: money(id, "totalShippingPriceSet", &w.total_shipping_price_set)?,
        tax: money(id, "totalTaxSet", &w.total_tax_set)?,
        total: money(id, "totalPriceSet", &w.total_price_set)?,
        refunded: money(id, "totalRefundedSet", &w.total_refunded_set)?,
        customer: CustomerRef {
            platform_id: w.customer.as_ref().map(|c| c.id.clone()),
            email: non_empty(&w.email),
        },
        test: w.test,
        trashed: false,
        lines,
        refund_ids: w.refunds.iter().map(|r| r.id.clone()).collect(),
        refunds: Some(refunds),
    })
}

fn refund(order_id: &str, incl: bool, r: &WireRefund) -> Result<Refund, ConvertError> {
    let amount = money(order_id, "refunds.totalRefundedSet", &r.total_refunded_set)?.abs();
    let mut lines = Vec::new();
    let mut line_tax = Decimal::ZERO;
    if let Some(c) = &r.refund_line_items {
        for l in &c.nodes {
            let subtotal = money(order_id, "refundLineItems.subtotalSet", &l.subtotal_set)?;
            let tax = money(order_id, "refundLineItems.totalTaxSet", &l.total_tax_set)?;
            line_tax += tax.abs();
            lines.push(RefundLine {
                order_line_id: l.line_item.id.clone(),
                quantity: Decimal::from(l.quantity).abs(),
                amount: if incl { subtotal - tax } else { subtotal }.abs(),
            });
        }
    }
    cap_items(&mut lines, (amount - line_tax).max(Decimal::ZERO));
    Ok(Refund {
        platform_id: r.id.clone(),
        order_id: order_id.to_string(),
        created_at: instant(&r.id, "createdAt", &r.created_at)?,
        amount,
        lines,
    })
}

/// Caps a refund's item amounts at what it paid back excluding the refund lines' tax
/// (`totalRefundedSet − Σ totalTaxSet`): a restock-only refund (nothing paid) adds no
/// returned items, and a refund that paid back less than the lines' value adds only what
/// it paid. Above the cap, every line is scaled down in proportion (rounded to cents, the
/// last line takes the remainder). Refunded shipping is not subtracted (okrsync does not
/// read `refundShippingLines`), so the cap is loose by that amount.
fn cap_items(lines: &mut [RefundLine], cap: Decimal) {
    let sum: Decimal = lines.iter().map(|l| l.amount).sum();
    if sum <= cap || sum.is_zero() {
        return;
    }
    let mut left = cap;
    let n = lines.len();
    for (i, l) in lines.iter_mut().enumerate() {
        let a = if i + 1 == n {
            left
        } else {
            (l.amount * cap / sum).round_dp(2).min(left)
        };
        l.amount = a;
        left -= a;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(json: &str) -> WireOrder {
        serde_json::from_str(json).unwrap()
    }

    const ORDER: &str = r##"{"id": "gid://shopify/Order/7", "name": "#1007",
        "createdAt": "2026-03-01T09:00:00Z", "updatedAt": "2026-03-02T10:00:00Z",
        "cancelledAt": null, "test": false, "taxesIncluded": TAXINCL, "email": "A@B.example",
        "displayFinancialStatus": "PARTIALLY_REFUNDED", "currencyCode": "EUR",
        "customer": {"id": "gid://shopify/Customer/3"},
        "totalShippingPriceSet": {"shopMoney": {"amount": "4.9"}},
        "totalTaxSet": {"shopMoney": {"amount": "10.0"}},
        "totalPriceSet": {"shopMoney": {"amount": "64.9"}},
        "totalRefundedSet": {"shopMoney": {"amount": "12.5"}},
        "lineItems": {"nodes": [
          {"id": "gid://shopify/LineItem/1", "name": "Mug", "sku": "MUG", "quantity": 2,
           "product": {"id": "gid://shopify/Product/11"},
           "originalTotalSet": {"shopMoney": {"amount": "ORIG"}},
           "discountAllocations": [{"allocatedAmountSet": {"shopMoney": {"amount": "DISC"}}}],
           "taxLines": [{"rate": 0.2, "priceSet": {"shopMoney": {"amount": "TAX"}}}]}]},
        "refunds": [{"id": "gid://shopify/Refund/90", "createdAt": "2026-03-03T08:00:00Z",
          "totalRefundedSet": {"shopMoney": {"amount": "RPAID"}},
          "refundLineItems": {"nodes": [{"lineItem": {"id": "gid://shopify/LineItem/1"}, "quantity": 1,
             "subtotalSet": {"shopMoney": {"amount": "RSUB"}}, "totalTaxSet": {"shopMoney": {"amount": "RTAX"}}}]}}]}"##;

    fn fill(incl: bool, orig: &str, disc: &str, tax: &str, rsub: &str, rtax: &str) -> WireOrder {
        fill_paid(incl, orig, disc, tax, rsub, rtax, "15.0")
    }

    fn fill_paid(
        incl: bool,
        orig: &str,
        disc: &str,
        tax: &str,
        rsub: &str,
        rtax: &str,
        paid: &str,
    ) -> WireOrder {
        wire(
            &ORDER
                .replace("RPAID", paid)
                .replace("TAXINCL", if incl { "true" } else { "false" })
                .replace("ORIG", orig)
                .replace("DISC", disc)
                .replace("RSUB", rsub)
                .replace("RTAX", rtax)
                .replace("\"TAX\"", &format!("\"{tax}\"")),
        )
    }

    #[test]
    fn tax_exclusive_prices() {
        // 2 × 15.00, 5.00 off, 20% tax on 25.00 = 5.00.
        let o = order(&fill(false, "30.0", "5.0", "5.0", "12.5", "2.5")).unwrap();
        assert_eq!(o.items_gross, Decimal::new(3000, 2));
        assert_eq!(o.discounts, Decimal::new(500, 2));
        assert_eq!(o.lines[0].total, Decimal::new(2500, 2));
        assert_eq!(o.refunded, Decimal::new(1250, 2));
        let r = &o.refunds.as_ref().unwrap()[0];
        assert_eq!(r.lines[0].amount, Decimal::new(1250, 2));
        assert!(o.counted);
        assert_eq!(o.number, "1007");
        assert_eq!(o.status, "partially_refunded");
        assert_eq!(
            o.customer.platform_id.as_deref(),
            Some("gid://shopify/Customer/3")
        );
    }

    #[test]
    fn tax_inclusive_prices_give_tax_exclusive_amounts() {
        // 2 × 18.00 incl. 20% = 36.00 (30.00 + 6.00); 6.00 off incl. tax; tax on 30.00 incl. = 5.00.
        let o = order(&fill(true, "36.0", "6.0", "5.0", "15.0", "2.5")).unwrap();
        assert_eq!(o.items_gross, Decimal::new(3000, 2)); // 36 / 1.2
        assert_eq!(o.lines[0].total, Decimal::new(2500, 2)); // 36 - 6 - 5
        assert_eq!(o.discounts, Decimal::new(500, 2));
        let r = &o.refunds.as_ref().unwrap()[0];
        assert_eq!(r.lines[0].amount, Decimal::new(1250, 2)); // 15 - 2.5
    }

    #[test]
    fn refunded_items_never_exceed_what_the_refund_paid() {
        // Restock only: the line is back in stock but nothing was paid.
        let o = order(&fill_paid(false, "30.0", "5.0", "5.0", "12.5", "2.5", "0")).unwrap();
        let r = &o.refunds.as_ref().unwrap()[0];
        assert_eq!(r.amount, Decimal::ZERO);
        assert_eq!(r.lines[0].amount, Decimal::ZERO);
        assert_eq!(r.lines[0].quantity, Decimal::ONE);
        // Paid 7.50 of the line's 12.50 + 2.50 tax: 5.00 of items.
        let o = order(&fill_paid(
            false, "30.0", "5.0", "5.0", "12.5", "2.5", "7.5",
        ))
        .unwrap();
        let r = &o.refunds.as_ref().unwrap()[0];
        assert_eq!(r.lines[0].amount, Decimal::new(500, 2));
        // Paid in full: unchanged.
        let o = order(&fill_paid(
            true, "36.0", "6.0", "5.0", "15.0", "2.5", "15.0",
        ))
        .unwrap();
        let r = &o.refunds.as_ref().unwrap()[0];
        assert_eq!(r.lines[0].amount, Decimal::new(1250, 2));
    }

    #[test]
    fn capped_lines_share_the_cap_in_proportion() {
        let line = |a: i64| RefundLine {
            order_line_id: "x".into(),
            quantity: Decimal::ONE,
            amount: Decimal::new(a, 2),
        };
        let mut lines = vec![line(1000), line(2000), line(1000)];
        cap_items(&mut lines, Decimal::new(1000, 2));
        let got: Vec<Decimal> = lines.iter().map(|l| l.amount).collect();
        assert_eq!(
            got,
            [
                Decimal::new(250, 2),
                Decimal::new(500, 2),
                Decimal::new(250, 2)
            ]
        );
    }

    #[test]
    fn test_and_cancelled_orders_do_not_count() {
        let mut w = fill(false, "30.0", "0", "6.0", "0", "0");
        w.test = true;
        assert!(!order(&w).unwrap().counted);
        let mut w = fill(false, "30.0", "0", "6.0", "0", "0");
        w.cancelled_at = Some("2026-03-02T10:00:00Z".into());
        let o = order(&w).unwrap();
        assert!(!o.counted);
        assert_eq!(o.status, "cancelled");
    }

    #[test]
    fn bad_amounts_name_the_order_and_field() {
        let e = order(&fill(false, "abc", "0", "0", "0", "0")).unwrap_err();
        assert!(
            e.0.contains("gid://shopify/Order/7") && e.0.contains("originalTotalSet"),
            "{}",
            e.0
        );
    }

    #[test]
    fn gid_numbers() {
        assert_eq!(gid_number("gid://shopify/Order/42"), 42);
        assert_eq!(gid_number("nonsense"), 0);
    }
}
