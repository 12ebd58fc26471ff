//! The simulated shop's orders as full Admin GraphQL `Order` documents, for bulk queries that
//! select more than okrsync's own (Singer's tap-shopify selects about 200 fields of an order).
//!
//! Every field the document holds is filled from the simulated order; a selected field the
//! document does not hold is answered `null`, and the document holds every field of those
//! queries whose type in Shopify's schema is non-null (`Boolean!`, `MoneyBag!`, `[T!]!`, …),
//! so `null` appears only where Shopify's schema allows it. Inline fragments
//! (`... on MoneyV2 { … }`) are flattened by the parser: a polymorphic object carries its
//! `__typename`, and fields of the other types' fragments are left out of it, as GraphQL does.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::sim_shopify::{Field, ShopState, gid, iso};
use super::woo_data::SimOrder;

fn amount(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// A full `MoneyBag` (shop and presentment money are the same currency here).
fn bag(d: Decimal, currency: &str) -> Value {
    let m = json!({"amount": amount(d), "currencyCode": currency});
    json!({"shopMoney": m, "presentmentMoney": m})
}

fn tax_line(rate: Decimal, tax: Decimal, currency: &str) -> Value {
    let r: Value = serde_json::from_str(&rate.normalize().to_string()).unwrap_or(json!(0));
    let pct: Value = serde_json::from_str(&(rate * Decimal::ONE_HUNDRED).normalize().to_string())
        .unwrap_or(json!(0));
    json!({
        "channelLiable": false, "priceSet": bag(tax, currency), "rate": r,
        "ratePercentage": pct, "source": "Shopify", "title": "Tax",
    })
}

/// The order's one discount application (when its lines are discounted): a manual discount
/// of the whole amount, spread across the lines.
fn discount_application(o: &SimOrder, total: Decimal) -> Value {
    json!({
        "__typename": "ManualDiscountApplication",
        "allocationMethod": "ACROSS", "index": 0, "targetSelection": "ALL",
        "targetType": "LINE_ITEM", "title": o.coupon_code.clone().unwrap_or_else(|| "Discount".into()),
        "description": null,
        "value": {"__typename": "MoneyV2", "amount": amount(total), "currencyCode": o.currency},
    })
}

fn line_amounts(o: &SimOrder, idx: usize) -> (Decimal, Decimal) {
    let l = &o.lines[idx];
    if o.prices_include_tax {
        (l.subtotal + l.subtotal_tax, l.total + l.total_tax)
    } else {
        (l.subtotal, l.total)
    }
}

fn discount_total(o: &SimOrder) -> Decimal {
    (0..o.lines.len())
        .map(|i| {
            let (orig, disc) = line_amounts(o, i);
            orig - disc
        })
        .sum()
}

/// A line item node (`lineItems` connection of an order).
pub(crate) fn full_line(o: &SimOrder, idx: usize) -> Value {
    let l = &o.lines[idx];
    let c = o.currency.as_str();
    let (original, discounted) = line_amounts(o, idx);
    let disc = original - discounted;
    let q = Decimal::from(l.quantity.max(1));
    let allocations = if disc.is_zero() {
        json!([])
    } else {
        json!([{"allocatedAmountSet": bag(disc, c), "discountApplication": discount_application(o, discount_total(o))}])
    };
    let done = o.completed.is_some();
    json!({
        "id": gid("LineItem", l.id), "vendor": null, "quantity": l.quantity, "title": l.name,
        "requiresShipping": true, "originalTotalSet": bag(original, c),
        "taxLines": [tax_line(o.tax_rate, l.total_tax, c)], "taxable": true, "isGiftCard": false,
        "name": l.name, "discountedTotalSet": bag(discounted, c), "sku": l.sku,
        "product": {"id": gid("Product", l.product_id)}, "discountAllocations": allocations,
        "customAttributes": [], "totalDiscountSet": bag(disc, c), "duties": [],
        "discountedUnitPriceSet": bag((discounted / q).round_dp(2), c),
        "originalUnitPriceSet": bag((original / q).round_dp(2), c),
        "unfulfilledDiscountedTotalSet": bag(if done { Decimal::ZERO } else { discounted }, c),
        "unfulfilledOriginalTotalSet": bag(if done { Decimal::ZERO } else { original }, c),
        "variant": null, "lineItemGroup": null,
    })
}

/// The order's `discountApplications` connection nodes.
pub(crate) fn full_discount_applications(o: &SimOrder) -> Vec<Value> {
    let total = discount_total(o);
    if total.is_zero() {
        Vec::new()
    } else {
        vec![discount_application(o, total)]
    }
}

/// The order without its connections (`lineItems`, `discountApplications`).
pub(crate) fn full_order(st: &ShopState, o: &SimOrder) -> Value {
    let c = o.currency.as_str();
    let zero = || bag(Decimal::ZERO, c);
    let refunds: Vec<_> = o
        .refund_ids
        .iter()
        .filter_map(|id| st.data.refunds.get(id))
        .collect();
    let refunded: Decimal = refunds.iter().map(|r| r.amount).sum();
    let refunded_lines: Decimal = refunds
        .iter()
        .flat_map(|r| r.lines.iter())
        .map(|l| l.total)
        .sum();
    let refunded_tax: Decimal = refunds
        .iter()
        .flat_map(|r| r.lines.iter())
        .map(|l| l.total_tax)
        .sum();
    let total = o.total();
    let subtotal: Decimal = (0..o.lines.len()).map(|i| line_amounts(o, i).1).sum();
    let shipping = if o.prices_include_tax {
        o.shipping + o.shipping_tax
    } else {
        o.shipping
    };
    let status = if refunded.is_zero() {
        "PAID"
    } else if refunded >= total {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    };
    let cancelled = o.status == "cancelled";
    let done: Option<DateTime<Utc>> = o.completed;
    let quantity: u32 = o.lines.iter().map(|l| l.quantity).sum();
    let name = format!("{} {}", o.first_name, o.last_name);
    let address = json!({
        "id": gid("MailingAddress", o.id), "firstName": o.first_name, "lastName": o.last_name,
        "name": name, "coordinatesValidated": false,
    });
    let fulfillments = match done {
        Some(at) => json!([{
            "id": gid("Fulfillment", o.id), "name": format!("#{}.1", o.id), "status": "SUCCESS",
            "totalQuantity": quantity, "updatedAt": iso(at), "createdAt": iso(at),
            "deliveredAt": null, "estimatedDeliveryAt": null, "requiresShipping": true,
            "inTransitAt": null, "trackingInfo": [], "service": null, "location": null,
        }]),
        None => json!([]),
    };
    let customer = (o.customer_id > 0).then(|| {
        json!({
            "id": gid("Customer", o.customer_id), "email": o.email, "firstName": o.first_name,
            "lastName": o.last_name, "addresses": [], "state": "ENABLED", "verifiedEmail": true,
            "updatedAt": iso(o.modified), "taxExempt": false, "tags": [], "taxExemptions": [],
            "note": null, "multipassIdentifier": null, "createdAt": iso(o.created),
            "defaultAddress": null,
        })
    });
    let shipping_line = json!({
        "carrierIdentifier": null, "code": "Standard", "currentDiscountedPriceSet": bag(shipping, c),
        "custom": false, "deliveryCategory": null, "discountAllocations": [],
        "discountedPriceSet": bag(shipping, c), "id": gid("ShippingLine", o.shipping_line_id),
        "isRemoved": false, "originalPriceSet": bag(shipping, c), "phone": null,
        "shippingRateHandle": null, "source": "shopify",
        "taxLines": [tax_line(o.tax_rate, o.shipping_tax, c)], "title": "Standard",
    });
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("id", json!(gid("Order", o.id)));
    put("legacyResourceId", json!(o.id.to_string()));
    put("name", json!(format!("#{}", o.id)));
    put("number", json!(o.id));
    put("createdAt", json!(iso(o.created)));
    put("processedAt", json!(iso(o.created)));
    put("updatedAt", json!(iso(o.modified)));
    put("cancelledAt", json!(cancelled.then(|| iso(o.modified))));
    put("cancelReason", json!(cancelled.then_some("CUSTOMER")));
    put("closed", json!(done.is_some()));
    put("closedAt", json!(done.map(iso)));
    put("test", json!(st.test_orders.contains(&o.id)));
    put("taxesIncluded", json!(o.prices_include_tax));
    put("taxExempt", json!(false));
    put("email", json!(o.email));
    put("currencyCode", json!(c));
    put("presentmentCurrencyCode", json!(c));
    put("displayFinancialStatus", json!(status));
    put(
        "displayFulfillmentStatus",
        json!(if done.is_some() {
            "FULFILLED"
        } else {
            "UNFULFILLED"
        }),
    );
    put("returnStatus", json!("NO_RETURN"));
    put("customer", customer.unwrap_or(Value::Null));
    put("billingAddress", address.clone());
    put("shippingAddress", address);
    put("billingAddressMatchesShippingAddress", json!(true));
    put("additionalFees", json!([]));
    put("customAttributes", json!([]));
    put("disputes", json!([]));
    put("tags", json!([]));
    put("paymentGatewayNames", json!(["manual"]));
    put(
        "discountCodes",
        json!(o.coupon_code.iter().collect::<Vec<_>>()),
    );
    put("discountCode", json!(o.coupon_code));
    put("canMarkAsPaid", json!(false));
    put("canNotifyCustomer", json!(o.customer_id > 0));
    put("capturable", json!(false));
    put("confirmed", json!(true));
    put("customerAcceptsMarketing", json!(false));
    put("dutiesIncluded", json!(false));
    put("edited", json!(false));
    put("estimatedTaxes", json!(false));
    put("fulfillable", json!(done.is_none() && !cancelled));
    put("fullyPaid", json!(true));
    put("hasTimelineComment", json!(false));
    put("refundable", json!(refunded < total && !cancelled));
    put("requiresShipping", json!(true));
    put("restockable", json!(false));
    put("unpaid", json!(false));
    put("sourceName", json!("web"));
    put(
        "statusPageUrl",
        json!(format!(
            "https://{}.myshopify.com/orders/{:032x}/authenticate",
            st.shop_name.to_lowercase().replace(' ', "-"),
            o.id
        )),
    );
    put(
        "merchantBusinessEntity",
        json!({"address": {"countryCode": "US"}, "displayName": st.shop_name, "id": gid("BusinessEntity", 1), "primary": true}),
    );
    put(
        "fulfillmentsCount",
        json!({"count": usize::from(done.is_some()), "precision": "EXACT"}),
    );
    put(
        "transactionsCount",
        json!({"count": 1 + refunds.len(), "precision": "EXACT"}),
    );
    put("subtotalLineItemsQuantity", json!(quantity));
    put("currentSubtotalLineItemsQuantity", json!(quantity));
    put("currentTotalWeight", json!("0"));
    put("fulfillments", fulfillments);
    put("shippingLine", shipping_line);
    put("taxLines", json!([tax_line(o.tax_rate, o.total_tax(), c)]));
    put("subtotalPriceSet", bag(subtotal, c));
    put("currentSubtotalPriceSet", bag(subtotal - refunded_lines, c));
    put("totalPriceSet", bag(total, c));
    put("originalTotalPriceSet", bag(total, c));
    put("currentTotalPriceSet", bag(total - refunded, c));
    put("netPaymentSet", bag(total - refunded, c));
    put("totalReceivedSet", bag(total, c));
    put("totalRefundedSet", bag(refunded, c));
    put("totalTaxSet", bag(o.total_tax(), c));
    put("currentTotalTaxSet", bag(o.total_tax() - refunded_tax, c));
    put("totalShippingPriceSet", bag(shipping, c));
    put("currentShippingPriceSet", bag(shipping, c));
    put("totalDiscountsSet", bag(discount_total(o), c));
    put("currentTotalDiscountsSet", bag(discount_total(o), c));
    put("currentCartDiscountAmountSet", zero());
    put("refundDiscrepancySet", zero());
    put("totalCapturableSet", zero());
    put("totalOutstandingSet", zero());
    put("totalRefundedShippingSet", zero());
    put("totalTipReceivedSet", zero());
    put(
        "totalCashRoundingAdjustment",
        json!({"paymentSet": zero(), "refundSet": zero()}),
    );
    Value::Object(m)
}

/// `doc` answered by `fields`: what the selection asks, in its order; `null` for what the
/// document does not hold, except on a typed object (`__typename`), where a field it lacks
/// belongs to another type's fragment and is left out.
pub(crate) fn project(doc: &Value, fields: &[Field]) -> Value {
    match doc {
        Value::Array(items) => Value::Array(items.iter().map(|v| project(v, fields)).collect()),
        Value::Object(m) => {
            let typed = m.contains_key("__typename");
            let mut out = Map::new();
            for f in fields {
                match m.get(&f.name) {
                    Some(v) if f.children.is_empty() => {
                        out.insert(f.name.clone(), v.clone());
                    }
                    Some(v) => {
                        out.insert(f.name.clone(), project(v, &f.children));
                    }
                    None if typed => {}
                    None => {
                        out.insert(f.name.clone(), Value::Null);
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}
