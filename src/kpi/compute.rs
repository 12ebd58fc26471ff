//! Computing one KPI over one or more stores, each with its own window (`kpi-definitions.md`,
//! "KPIs over a window W").
//!
//! Inputs are plain facts loaded by the caller; every sum is checked (an implausible amount is
//! an error, never a panic) and undefined values are `None` with a reason, never 0 or NaN.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{Computed, DateRange, KpiError, KpiId, KpiSpec, Value, ValueKind};
use crate::domain::{Money, StoreTz};

/// One order as loaded from the database.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderFacts {
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    /// Whether the order is a real sale; decided by the source from the status rules.
    pub counted: bool,
    pub items_gross: Money,
    pub discounts: Money,
    pub total: Money,
    pub refunded: Money,
    pub refunded_items: Money,
    /// The platform's customer id, for registered customers.
    pub customer_id: Option<String>,
    /// Keyed hash of the lower-cased, trimmed email (guest or registered).
    pub email_hash: Option<String>,
    /// May be empty when no product KPI is requested.
    pub lines: Vec<LineFacts>,
}

/// One line of an order, with what has been refunded of it.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFacts {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: Decimal,
    /// After discounts, excluding tax.
    pub total: Money,
    pub refunded_quantity: Decimal,
    pub refunded_amount: Money,
}

/// Everything known about one store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreData {
    pub name: String,
    pub tz: StoreTz,
    pub currency: Option<String>,
    /// All orders of the store, counted and not, at any time.
    pub orders: Vec<OrderFacts>,
    /// Daily sessions by local day; `None` when no analytics source is linked.
    pub sessions: Option<BTreeMap<NaiveDate, u64>>,
    /// Creation instants of abandoned checkouts; `None` when the platform does not report them.
    pub abandoned_checkouts: Option<Vec<DateTime<Utc>>>,
}

/// A store and the window (in its own time zone) to compute over.
#[derive(Clone, Copy, Debug)]
pub struct WindowedStore<'a> {
    pub store: &'a StoreData,
    pub range: DateRange,
}

/// Computes one KPI over the given stores. Counts and money are summed over the stores; rates
/// are computed from the summed numerators and denominators. Customers are never shared
/// between stores.
pub fn compute(spec: &KpiSpec, inputs: &[WindowedStore<'_>]) -> Result<Computed, KpiError> {
    let id = spec.id;
    let product = match (id.needs_product(), spec.product.as_deref().map(str::trim)) {
        (true, Some(p)) if !p.is_empty() => Some(p),
        (true, _) => return Err(KpiError::MissingProduct(id)),
        (false, Some(_)) => return Err(KpiError::UnexpectedProduct(id)),
        (false, None) => None,
    };
    if inputs.is_empty() {
        return Err(KpiError::NoStores);
    }
    if id.kind() == ValueKind::Money {
        check_currencies(inputs)?;
    }
    let mut t = Totals::default();
    for w in inputs {
        t.add_store(id, product, w).ok_or(KpiError::Overflow(id))?;
    }
    t.finish(id).ok_or(KpiError::Overflow(id))
}

/// Money from stores in different currencies cannot be added up.
fn check_currencies(inputs: &[WindowedStore<'_>]) -> Result<(), KpiError> {
    let known: Vec<(&str, String)> = inputs
        .iter()
        .filter_map(|w| {
            let c = w.store.currency.as_deref()?.trim();
            (!c.is_empty()).then(|| (w.store.name.as_str(), c.to_ascii_uppercase()))
        })
        .collect();
    let distinct: BTreeSet<&str> = known.iter().map(|(_, c)| c.as_str()).collect();
    if distinct.len() > 1 {
        return Err(KpiError::MixedCurrencies {
            stores: known.iter().map(|(s, _)| (*s).to_string()).collect(),
            currencies: known.into_iter().map(|(_, c)| c).collect(),
        });
    }
    Ok(())
}

/// Numerators and denominators summed over stores.
#[derive(Default)]
struct Totals {
    orders: u64,
    gross: Money,
    discounts: Money,
    returns: Money,
    total: Money,
    refunded: Money,
    refunded_orders: u64,
    customers: u64,
    repeat_customers: u64,
    returning_customers: u64,
    new_customers: u64,
    product_sales: Money,
    product_units: Decimal,
    sessions: u64,
    abandoned: u64,
    /// Stores without an analytics source.
    no_sessions: Vec<String>,
    /// Stores whose platform does not report abandoned checkouts.
    no_abandoned: Vec<String>,
}

fn add(acc: &mut Decimal, x: Decimal) -> Option<()> {
    *acc = acc.checked_add(x)?;
    Some(())
}

fn sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    a.checked_sub(b)
}

fn count_ratio(n: u64, d: u64) -> Option<Decimal> {
    Decimal::from(n).checked_div(Decimal::from(d))
}

/// Whether an order line is of the product named by `p` (its product id or its SKU).
fn line_matches(line: &LineFacts, p: &str) -> bool {
    let is = |v: &Option<String>| v.as_deref().map(str::trim) == Some(p);
    is(&line.product_id) || is(&line.sku)
}

fn needs_customers(id: KpiId) -> bool {
    matches!(
        id,
        KpiId::RepeatPurchaseRate | KpiId::ReturningCustomerRate | KpiId::NewCustomers
    )
}

impl Totals {
    fn add_store(&mut self, id: KpiId, product: Option<&str>, w: &WindowedStore<'_>) -> Option<()> {
        let store = w.store;
        let (start, end) = w.range.utc_bounds(&store.tz);
        let in_window = |at: DateTime<Utc>| start <= at && at < end;
        for o in store
            .orders
            .iter()
            .filter(|o| o.counted && in_window(o.created_at))
        {
            self.orders += 1;
            add(&mut self.gross, o.items_gross)?;
            add(&mut self.discounts, o.discounts)?;
            add(&mut self.returns, o.refunded_items)?;
            add(&mut self.total, o.total)?;
            add(&mut self.refunded, o.refunded)?;
            if o.refunded > Decimal::ZERO {
                self.refunded_orders += 1;
            }
            if let Some(p) = product {
                for line in o.lines.iter().filter(|l| line_matches(l, p)) {
                    add(
                        &mut self.product_sales,
                        sub(line.total, line.refunded_amount)?,
                    )?;
                    add(
                        &mut self.product_units,
                        sub(line.quantity, line.refunded_quantity)?,
                    )?;
                }
            }
        }
        if needs_customers(id) {
            let c = customer_stats(&store.orders, start, end);
            self.customers += c.customers;
            self.repeat_customers += c.repeat;
            self.returning_customers += c.returning;
            self.new_customers += c.new;
        }
        match &store.sessions {
            None => self.no_sessions.push(store.name.clone()),
            Some(daily) if w.range.from <= w.range.to => {
                for n in daily.range(w.range.from..=w.range.to).map(|(_, n)| *n) {
                    self.sessions = self.sessions.saturating_add(n);
                }
            }
            Some(_) => {}
        }
        match &store.abandoned_checkouts {
            None => self.no_abandoned.push(store.name.clone()),
            Some(at) => self.abandoned += at.iter().filter(|t| in_window(**t)).count() as u64,
        }
        Some(())
    }

    /// The KPI's value from the sums; `None` on decimal overflow.
    fn finish(&self, id: KpiId) -> Option<Computed> {
        const NO_ORDERS: &str = "no orders in window";
        let count = |n: u64| Computed::value(Value::Count(i64::try_from(n).unwrap_or(i64::MAX)));
        let money = |d: Decimal| Computed::value(Value::Money(d));
        let rate = |d: Decimal| Computed::value(Value::Rate(d));
        let net = || sub(sub(self.gross, self.discounts)?, self.returns);
        let sessions = || -> Result<u64, Computed> {
            if !self.no_sessions.is_empty() {
                return Err(Computed::null(format!(
                    "no analytics source linked to {}",
                    stores_phrase(&self.no_sessions)
                )));
            }
            match self.sessions {
                0 => Err(Computed::null("no sessions in window")),
                n => Ok(n),
            }
        };
        Some(match id {
            KpiId::Orders => count(self.orders),
            KpiId::GrossSales => money(self.gross),
            KpiId::Discounts => money(self.discounts),
            KpiId::Returns => money(self.returns),
            KpiId::NetSales => money(net()?),
            KpiId::TotalSales => money(sub(self.total, self.refunded)?),
            KpiId::AverageOrderValue => match self.orders {
                0 => Computed::null(NO_ORDERS),
                n => money(sub(self.gross, self.discounts)?.checked_div(Decimal::from(n))?),
            },
            KpiId::RepeatPurchaseRate | KpiId::ReturningCustomerRate if self.customers == 0 => {
                Computed::null(NO_ORDERS)
            }
            KpiId::RepeatPurchaseRate => rate(count_ratio(self.repeat_customers, self.customers)?),
            KpiId::ReturningCustomerRate => {
                rate(count_ratio(self.returning_customers, self.customers)?)
            }
            KpiId::NewCustomers => count(self.new_customers),
            KpiId::RefundRate => match self.orders {
                0 => Computed::null(NO_ORDERS),
                n => rate(count_ratio(self.refunded_orders, n)?),
            },
            KpiId::Sessions => match sessions() {
                Err(null) if !self.no_sessions.is_empty() => null,
                _ => count(self.sessions),
            },
            KpiId::ConversionRate => match sessions() {
                Err(null) => null,
                Ok(s) => rate(count_ratio(self.orders, s)?),
            },
            KpiId::RevenuePerSession => match sessions() {
                Err(null) => null,
                Ok(s) => money(net()?.checked_div(Decimal::from(s))?),
            },
            KpiId::CartAbandonmentRate => {
                if !self.no_abandoned.is_empty() {
                    let (subject, verb) = match self.no_abandoned.len() {
                        1 => (format!("store {}", self.no_abandoned[0]), "does"),
                        _ => (format!("stores {}", self.no_abandoned.join(", ")), "do"),
                    };
                    Computed::null(format!(
                        "{subject} {verb} not report abandoned checkouts (Shopify only)"
                    ))
                } else {
                    match self.abandoned.saturating_add(self.orders) {
                        0 => Computed::null("no orders or abandoned checkouts in window"),
                        d => rate(count_ratio(self.abandoned, d)?),
                    }
                }
            }
            KpiId::ProductNetSales => money(self.product_sales),
            // Quantities are whole in practice; a fractional net is rounded down.
            KpiId::ProductUnits => Computed::value(Value::Count(
                i64::try_from(self.product_units.floor()).ok()?,
            )),
        })
    }
}

/// "store main" / "stores a, b".
fn stores_phrase(names: &[String]) -> String {
    match names {
        [one] => format!("store {one}"),
        many => format!("stores {}", many.join(", ")),
    }
}

/// Who placed an order, after merging guest orders into registered customers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CustomerKey<'a> {
    Id(&'a str),
    Email(&'a str),
    /// A one-off customer: the order's position in the store's order list.
    Anonymous(usize),
}

#[derive(Default)]
struct CustomerStats {
    customers: u64,
    repeat: u64,
    returning: u64,
    new: u64,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Customer figures of one store for the window `[start, end)`.
fn customer_stats<'a>(
    orders: &'a [OrderFacts],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> CustomerStats {
    // Which registered customer each email belongs to, from any order (counted or not) that
    // carries both; the smallest id wins when an email is on several accounts.
    let mut owner: BTreeMap<&'a str, &'a str> = BTreeMap::new();
    for o in orders {
        if let (Some(id), Some(email)) = (non_empty(&o.customer_id), non_empty(&o.email_hash)) {
            owner
                .entry(email)
                .and_modify(|cur| *cur = (*cur).min(id))
                .or_insert(id);
        }
    }
    let key = |i: usize, o: &'a OrderFacts| -> CustomerKey<'a> {
        match (non_empty(&o.customer_id), non_empty(&o.email_hash)) {
            (Some(id), _) => CustomerKey::Id(id),
            (None, Some(email)) => match owner.get(email) {
                Some(&id) => CustomerKey::Id(id),
                None => CustomerKey::Email(email),
            },
            (None, None) => CustomerKey::Anonymous(i),
        }
    };
    // Per customer: counted orders in the window, and the first counted order ever.
    let mut seen: BTreeMap<CustomerKey<'a>, (u64, DateTime<Utc>)> = BTreeMap::new();
    for (i, o) in orders.iter().enumerate().filter(|(_, o)| o.counted) {
        let in_window = u64::from(start <= o.created_at && o.created_at < end);
        seen.entry(key(i, o))
            .and_modify(|(n, first)| {
                *n += in_window;
                *first = (*first).min(o.created_at);
            })
            .or_insert((in_window, o.created_at));
    }
    let mut s = CustomerStats::default();
    for (n, first) in seen.values().filter(|(n, _)| *n > 0) {
        s.customers += 1;
        s.repeat += u64::from(*n >= 2);
        if *first < start {
            s.returning += 1;
        } else {
            s.new += 1;
        }
    }
    s
}
