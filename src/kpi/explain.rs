//! Explaining a KPI: the orders, customers, days, checkouts, samples and reviews that make its
//! value, and the orders left out with the reason (`okrsync explain`).
//!
//! The listing is what [`compute`](super::compute()) itself added up (its [`Trace`], recorded
//! by the same loops that sum), never a second implementation: each counted entry carries its
//! share of the value as a numerator (and, for ratios and averages, a denominator), so that
//! Σ numerators (/ Σ denominators) is the value. Excluded orders come from the order details
//! the caller loaded around the window, each with why it does not count.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use super::compute::{TracedOrder, compute_traced};
use super::{Computed, KpiError, KpiId, KpiSpec, Value, WindowedStore};
use crate::domain::{Money, StoreTz};

/// One stored order near a window, whatever its status: what `explain` shows of it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderDetail {
    pub store: String,
    pub order_id: String,
    pub number: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub currency: String,
    /// Whether the order is a real sale under the store's status rules.
    pub counted: bool,
    pub test: bool,
    pub trashed: bool,
    pub deleted: bool,
    pub items_gross: Money,
    pub discounts: Money,
    pub shipping: Money,
    pub tax: Money,
    pub total: Money,
    pub refunded: Money,
    pub refunded_items: Money,
    /// The order's refunds, whenever they were made (they count on the order's day).
    pub refunds: Vec<RefundDetail>,
}

/// One refund of an order.
#[derive(Clone, Debug, PartialEq)]
pub struct RefundDetail {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub amount: Money,
}

/// What an entry of the listing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Order,
    Customer,
    Day,
    AbandonedCheckout,
    PageSpeed,
    Review,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Order => "order",
            EntryKind::Customer => "customer",
            EntryKind::Day => "day",
            EntryKind::AbandonedCheckout => "abandoned_checkout",
            EntryKind::PageSpeed => "pagespeed",
            EntryKind::Review => "review",
        }
    }
}

/// One line of the listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub kind: EntryKind,
    pub store: String,
    /// Order id, customer, day, checkout time, URL, product id.
    pub id: String,
    /// The order number customers see.
    pub number: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The local day (in the store's time zone) the entry belongs to.
    pub date: Option<NaiveDate>,
    pub status: Option<String>,
    pub currency: Option<String>,
    /// Amounts and counts, in a fixed order per kind (`items_gross`, `sessions`, …).
    pub fields: Vec<(&'static str, Value)>,
    /// A customer's counted orders in the window.
    pub orders: Vec<String>,
    pub refunds: Vec<RefundDetail>,
    /// Why an excluded entry does not count.
    pub reason: Option<String>,
    /// This entry's share of the value: Σ numerator, or Σ numerator / Σ denominator.
    pub numerator: Decimal,
    pub denominator: Option<Decimal>,
}

/// A KPI and what makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// Exactly what [`compute`](super::compute()) returns.
    pub computed: Computed,
    /// How the value follows from the counted entries, in words.
    pub rule: &'static str,
    pub counted: Vec<Entry>,
    pub excluded: Vec<Entry>,
}

impl Explained {
    /// Σ numerators and Σ denominators (`None` for a plain sum) of the counted entries;
    /// `None` when a sum overflows.
    pub fn totals(&self) -> Option<(Decimal, Option<Decimal>)> {
        fn sum(mut it: impl Iterator<Item = Decimal>) -> Option<Decimal> {
            it.try_fold(Decimal::ZERO, |acc, x| acc.checked_add(x))
        }
        let num = sum(self.counted.iter().map(|e| e.numerator))?;
        let den = if self.counted.iter().any(|e| e.denominator.is_some()) {
            Some(sum(self.counted.iter().filter_map(|e| e.denominator))?)
        } else {
            None
        };
        Some((num, den))
    }
}

/// Explains one KPI over the given stores: the value [`compute`](super::compute()) gives, the
/// entries it added up, and the `details` (orders around each store's window, any status)
/// that it left out, with the reason.
pub fn explain(
    spec: &KpiSpec,
    inputs: &[WindowedStore<'_>],
    details: &[OrderDetail],
) -> Result<Explained, KpiError> {
    let (computed, trace) = compute_traced(spec, inputs, true)?;
    let id = spec.id;
    let product = spec.product.as_deref().map(str::trim).unwrap_or_default();
    let detail_of: BTreeMap<(&str, &str), &OrderDetail> = details
        .iter()
        .map(|d| ((d.store.as_str(), d.order_id.as_str()), d))
        .collect();
    let tz_of = |store: &str| {
        inputs
            .iter()
            .find(|w| w.store.name == store)
            .map(|w| w.store.tz)
            .unwrap_or(StoreTz::UTC)
    };
    let order = |o: &TracedOrder, num: Decimal, den: Option<Decimal>| {
        order_entry(
            o,
            detail_of.get(&(o.store.as_str(), o.order_id.as_str())),
            &tz_of,
            num,
            den,
        )
    };
    let one = Decimal::ONE;
    // Checked like every sum in `compute`: implausible amounts are an error, never a panic.
    let overflow = || KpiError::Overflow(id);
    let minus = |a: Decimal, b: Decimal| a.checked_sub(b).ok_or_else(overflow);
    let net = |o: &TracedOrder| minus(minus(o.items_gross, o.discounts)?, o.refunded_items);
    let mut counted = Vec::new();
    let mut excluded = Vec::new();
    // The orders whose absence from `counted` needs a reason, and which were used.
    let mut used: HashSet<(String, String)> = HashSet::new();
    let mut reads_orders = true;
    let use_orders = |list: &[TracedOrder], used: &mut HashSet<(String, String)>| {
        for o in list {
            used.insert((o.store.clone(), o.order_id.clone()));
        }
    };
    let rule: &'static str = match id {
        KpiId::Orders
        | KpiId::GrossSales
        | KpiId::Discounts
        | KpiId::Returns
        | KpiId::NetSales
        | KpiId::TotalSales
        | KpiId::AverageOrderValue
        | KpiId::RefundRate => {
            use_orders(&trace.orders, &mut used);
            for o in &trace.orders {
                let (num, den) = match id {
                    KpiId::Orders => (one, None),
                    KpiId::GrossSales => (o.items_gross, None),
                    KpiId::Discounts => (o.discounts, None),
                    KpiId::Returns => (o.refunded_items, None),
                    KpiId::NetSales => (net(o)?, None),
                    KpiId::TotalSales => (minus(o.total, o.refunded)?, None),
                    KpiId::AverageOrderValue => (minus(o.items_gross, o.discounts)?, Some(one)),
                    _ => (
                        Decimal::from(u8::from(o.refunded > Decimal::ZERO)),
                        Some(one),
                    ),
                };
                counted.push(order(o, num, den));
            }
            match id {
                KpiId::Orders => "value = the number of counted orders",
                KpiId::GrossSales => "value = Σ items_gross",
                KpiId::Discounts => "value = Σ discounts",
                KpiId::Returns => "value = Σ refunded_items",
                KpiId::NetSales => "value = Σ (items_gross − discounts − refunded_items)",
                KpiId::TotalSales => "value = Σ (total − refunded)",
                KpiId::AverageOrderValue => "value = Σ (items_gross − discounts) / orders",
                _ => "value = orders with a refund / orders",
            }
        }
        KpiId::ProductNetSales | KpiId::ProductUnits => {
            use_orders(&trace.orders, &mut used);
            for o in &trace.orders {
                match o.product {
                    Some((sales, units)) => {
                        let num = if id == KpiId::ProductNetSales {
                            sales
                        } else {
                            units
                        };
                        let mut e = order(o, num, None);
                        e.fields.push(("product_net_sales", Value::Money(sales)));
                        e.fields.push(("product_units", Value::Number(units)));
                        counted.push(e);
                    }
                    None => {
                        let mut e = order(o, Decimal::ZERO, None);
                        e.reason = Some(format!("no line of product `{product}`"));
                        excluded.push(e);
                    }
                }
            }
            if id == KpiId::ProductNetSales {
                "value = Σ the product's line totals after discounts − its refunded amounts"
            } else {
                "value = Σ the product's units sold − units refunded (rounded down)"
            }
        }
        KpiId::RepeatPurchaseRate | KpiId::ReturningCustomerRate | KpiId::NewCustomers => {
            for c in &trace.customers {
                for o in &c.orders {
                    used.insert((c.store.clone(), o.clone()));
                }
                let tz = tz_of(&c.store);
                let mut e = Entry {
                    kind: EntryKind::Customer,
                    store: c.store.clone(),
                    id: c.customer.clone(),
                    number: None,
                    created_at: c.first_order,
                    date: c.first_order.map(|t| tz.local_date(t)),
                    status: Some(
                        match (c.repeat, c.returning) {
                            (true, true) => "repeat, returning",
                            (true, false) => "repeat, new",
                            (false, true) => "returning",
                            (false, false) => "new",
                        }
                        .to_string(),
                    ),
                    currency: None,
                    fields: vec![("orders_in_window", Value::Count(c.orders.len() as i64))],
                    orders: c.orders.clone(),
                    refunds: Vec::new(),
                    reason: None,
                    numerator: Decimal::ZERO,
                    denominator: None,
                };
                match id {
                    KpiId::RepeatPurchaseRate => {
                        e.numerator = Decimal::from(u8::from(c.repeat));
                        e.denominator = Some(one);
                        counted.push(e);
                    }
                    KpiId::ReturningCustomerRate => {
                        e.numerator = Decimal::from(u8::from(c.returning));
                        e.denominator = Some(one);
                        counted.push(e);
                    }
                    _ if c.new => {
                        e.numerator = one;
                        counted.push(e);
                    }
                    _ => {
                        e.reason = Some(match e.date {
                            Some(d) => {
                                format!("returning: first counted order on {d}, before the window")
                            }
                            None => "returning: first counted order before the window".into(),
                        });
                        excluded.push(e);
                    }
                }
            }
            match id {
                KpiId::RepeatPurchaseRate => {
                    "value = customers with 2 or more orders in the window / customers"
                }
                KpiId::ReturningCustomerRate => {
                    "value = customers with a counted order before the window / customers"
                }
                _ => "value = customers whose first counted order ever is in the window",
            }
        }
        KpiId::Sessions | KpiId::ConversionRate | KpiId::RevenuePerSession => {
            let ratio = id != KpiId::Sessions;
            if ratio {
                use_orders(&trace.session_orders, &mut used);
                for o in &trace.session_orders {
                    let num = if id == KpiId::ConversionRate {
                        one
                    } else {
                        net(o)?
                    };
                    counted.push(order(o, num, Some(Decimal::ZERO)));
                }
            } else {
                reads_orders = false;
            }
            for d in &trace.days {
                let mut e = day_entry(d.store.clone(), d.date, d.sessions, d.bounces);
                if ratio {
                    e.numerator = Decimal::ZERO;
                    e.denominator = Some(Decimal::from(d.sessions));
                }
                counted.push(e);
            }
            match id {
                KpiId::Sessions => "value = Σ sessions of the days",
                KpiId::ConversionRate => "value = orders / Σ sessions (same days)",
                _ => "value = Σ net sales of the orders / Σ sessions (same days)",
            }
        }
        KpiId::BounceRate => {
            reads_orders = false;
            for d in &trace.days {
                let mut e = day_entry(d.store.clone(), d.date, d.sessions, d.bounces);
                match d.bounces {
                    Some(b) => {
                        e.numerator = Decimal::from(b);
                        e.denominator = Some(Decimal::from(d.sessions));
                        counted.push(e);
                    }
                    None => {
                        e.reason = Some("the analytics source reports no bounces".into());
                        excluded.push(e);
                    }
                }
            }
            "value = Σ bounces / Σ sessions of the days with bounce data"
        }
        KpiId::CartAbandonmentRate => {
            use_orders(&trace.orders, &mut used);
            for o in &trace.orders {
                counted.push(order(o, Decimal::ZERO, Some(one)));
            }
            for (store, at) in &trace.abandoned {
                counted.push(Entry {
                    kind: EntryKind::AbandonedCheckout,
                    store: store.clone(),
                    id: at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    created_at: Some(*at),
                    date: Some(tz_of(store).local_date(*at)),
                    numerator: one,
                    denominator: Some(one),
                    ..blank(EntryKind::AbandonedCheckout, store)
                });
            }
            "value = abandoned checkouts / (abandoned checkouts + orders)"
        }
        KpiId::PagespeedScore | KpiId::LcpSeconds => {
            reads_orders = false;
            for (store, p) in &trace.pagespeed {
                let mut e = Entry {
                    id: p.url.clone(),
                    date: Some(p.date),
                    status: Some(p.strategy.clone()),
                    fields: vec![("score", Value::Number(p.score))],
                    ..blank(EntryKind::PageSpeed, store)
                };
                if let Some(lcp) = p.lcp_seconds {
                    e.fields.push(("lcp_seconds", Value::Number(lcp)));
                }
                e.denominator = Some(one);
                match (id, p.lcp_seconds) {
                    (KpiId::PagespeedScore, _) => {
                        e.numerator = p.score;
                        counted.push(e);
                    }
                    (_, Some(lcp)) => {
                        e.numerator = lcp;
                        counted.push(e);
                    }
                    (_, None) => {
                        e.reason = Some("Lighthouse reported no LCP for this page".into());
                        excluded.push(e);
                    }
                }
            }
            if id == KpiId::PagespeedScore {
                "value = mean score of the latest day's measurements (one strategy)"
            } else {
                "value = mean LCP of the latest day's measurements (one strategy)"
            }
        }
        KpiId::ReviewsCount | KpiId::VerifiedReviewsCount | KpiId::AverageRating => {
            reads_orders = false;
            for (store, r) in &trace.reviews {
                let mut e = Entry {
                    id: r.product_id.clone(),
                    created_at: Some(r.created_at),
                    date: Some(tz_of(store).local_date(r.created_at)),
                    status: Some(if r.verified { "verified" } else { "unverified" }.into()),
                    fields: vec![("rating", Value::Count(i64::from(r.rating)))],
                    ..blank(EntryKind::Review, store)
                };
                let rated = (1..=5).contains(&r.rating);
                match id {
                    KpiId::ReviewsCount => {
                        e.numerator = one;
                        counted.push(e);
                    }
                    KpiId::VerifiedReviewsCount if r.verified => {
                        e.numerator = one;
                        counted.push(e);
                    }
                    KpiId::VerifiedReviewsCount => {
                        e.reason = Some("not written by a verified owner".into());
                        excluded.push(e);
                    }
                    _ if rated => {
                        e.numerator = Decimal::from(r.rating);
                        e.denominator = Some(one);
                        counted.push(e);
                    }
                    _ => {
                        e.reason = Some("no star rating".into());
                        excluded.push(e);
                    }
                }
            }
            match id {
                KpiId::ReviewsCount => "value = the number of approved reviews",
                KpiId::VerifiedReviewsCount => "value = the number of verified owners' reviews",
                _ => "value = Σ ratings / rated reviews",
            }
        }
    };
    if reads_orders {
        // The last day with session data, per store, for the per-session rates.
        let through: BTreeMap<&str, NaiveDate> = match id {
            KpiId::ConversionRate | KpiId::RevenuePerSession => {
                let mut m = BTreeMap::new();
                for d in &trace.days {
                    let e = m.entry(d.store.as_str()).or_insert(d.date);
                    *e = (*e).max(d.date);
                }
                m
            }
            _ => BTreeMap::new(),
        };
        for d in details {
            if used.contains(&(d.store.clone(), d.order_id.clone())) {
                continue;
            }
            let Some(w) = inputs.iter().find(|w| w.store.name == d.store) else {
                continue;
            };
            let day = w.store.tz.local_date(d.created_at);
            let reason = if !w.range.contains(day) {
                format!(
                    "created on {day} ({}), outside the window {}",
                    w.store.tz.name(),
                    w.range
                )
            } else if d.deleted {
                "deleted from the store".to_string()
            } else if d.test {
                "test order".to_string()
            } else if d.trashed {
                "in the trash".to_string()
            } else if !d.counted {
                format!("status `{}` does not count", d.status)
            } else if let Some(t) = through.get(d.store.as_str()).filter(|t| day > **t) {
                format!("created after {t}, the last day with session data")
            } else if matches!(id, KpiId::ConversionRate | KpiId::RevenuePerSession) {
                "no session data for its day".to_string()
            } else if matches!(id, KpiId::ProductNetSales | KpiId::ProductUnits) {
                format!("no line of product `{product}`")
            } else {
                // A counted order in the window that the sums did not see: the loaded data
                // and the stored orders disagree (e.g. a sync committed in between).
                "not in the data the value was computed from (synced in the meantime?)".into()
            };
            let o = TracedOrder {
                store: d.store.clone(),
                order_id: d.order_id.clone(),
                created_at: d.created_at,
                items_gross: d.items_gross,
                discounts: d.discounts,
                refunded_items: d.refunded_items,
                total: d.total,
                refunded: d.refunded,
                product: None,
            };
            let mut e = order_entry(&o, Some(&d), &tz_of, Decimal::ZERO, None);
            e.reason = Some(reason);
            excluded.push(e);
        }
    }
    // Orders by creation time, days by date: as they happened.
    excluded.sort_by_key(|a| (a.created_at, a.date));
    Ok(Explained {
        computed,
        rule,
        counted,
        excluded,
    })
}

fn blank(kind: EntryKind, store: &str) -> Entry {
    Entry {
        kind,
        store: store.to_string(),
        id: String::new(),
        number: None,
        created_at: None,
        date: None,
        status: None,
        currency: None,
        fields: Vec::new(),
        orders: Vec::new(),
        refunds: Vec::new(),
        reason: None,
        numerator: Decimal::ZERO,
        denominator: None,
    }
}

fn day_entry(store: String, date: NaiveDate, sessions: u64, bounces: Option<u64>) -> Entry {
    let mut e = blank(EntryKind::Day, &store);
    e.id = date.to_string();
    e.date = Some(date);
    e.fields.push((
        "sessions",
        Value::Count(i64::try_from(sessions).unwrap_or(i64::MAX)),
    ));
    if let Some(b) = bounces {
        e.fields.push((
            "bounces",
            Value::Count(i64::try_from(b).unwrap_or(i64::MAX)),
        ));
    }
    e.numerator = Decimal::from(sessions);
    e
}

fn order_entry(
    o: &TracedOrder,
    detail: Option<&&OrderDetail>,
    tz_of: &dyn Fn(&str) -> StoreTz,
    numerator: Decimal,
    denominator: Option<Decimal>,
) -> Entry {
    let mut fields = vec![
        ("items_gross", Value::Money(o.items_gross)),
        ("discounts", Value::Money(o.discounts)),
    ];
    if let Some(d) = detail {
        fields.push(("shipping", Value::Money(d.shipping)));
        fields.push(("tax", Value::Money(d.tax)));
    }
    fields.extend([
        ("total", Value::Money(o.total)),
        ("refunded", Value::Money(o.refunded)),
        ("refunded_items", Value::Money(o.refunded_items)),
    ]);
    Entry {
        kind: EntryKind::Order,
        store: o.store.clone(),
        id: o.order_id.clone(),
        number: detail.map(|d| d.number.clone()),
        created_at: Some(o.created_at),
        date: Some(tz_of(&o.store).local_date(o.created_at)),
        status: detail.map(|d| d.status.clone()),
        currency: detail.map(|d| d.currency.clone()),
        fields,
        orders: Vec::new(),
        refunds: detail.map(|d| d.refunds.clone()).unwrap_or_default(),
        reason: None,
        numerator,
        denominator,
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Entry {
    /// The entry in `explain --format json`: `kind`, `store`, `id`, then what applies
    /// (`number`, `created_at`, `date`, `status`, the amounts, `refunds`, `orders`,
    /// `reason`), and its share of the value (`numerator`, `denominator`: exact decimal text).
    pub fn to_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), json!(self.kind.as_str()));
        m.insert("store".into(), json!(self.store));
        m.insert("id".into(), json!(self.id));
        if self.kind == EntryKind::Order {
            m.insert("number".into(), json!(self.number));
            m.insert("status".into(), json!(self.status));
            m.insert("currency".into(), json!(self.currency));
        } else if let Some(s) = &self.status {
            m.insert("status".into(), json!(s));
        }
        if let Some(t) = self.created_at {
            m.insert("created_at".into(), json!(ts(t)));
        }
        if let Some(d) = self.date {
            m.insert("date".into(), json!(d.to_string()));
        }
        for (k, v) in &self.fields {
            m.insert((*k).into(), v.to_json());
        }
        if self.kind == EntryKind::Order {
            let refunds: Vec<Json> = self
                .refunds
                .iter()
                .map(|r| {
                    json!({"id": r.id, "created_at": ts(r.created_at),
                           "amount": Value::Money(r.amount).to_json()})
                })
                .collect();
            m.insert("refunds".into(), Json::Array(refunds));
        }
        if self.kind == EntryKind::Customer {
            m.insert("orders".into(), json!(self.orders));
        }
        match &self.reason {
            Some(r) => {
                m.insert("reason".into(), json!(r));
            }
            None => {
                m.insert(
                    "numerator".into(),
                    json!(self.numerator.normalize().to_string()),
                );
                m.insert(
                    "denominator".into(),
                    json!(self.denominator.map(|d| d.normalize().to_string())),
                );
            }
        }
        Json::Object(m)
    }
}

#[cfg(test)]
mod tests;
