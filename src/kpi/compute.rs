//! Computing one KPI over one or more stores, each with its own window (`kpi-definitions.md`,
//! "KPIs over a window W").
//!
//! Inputs are plain facts loaded by the caller; every sum is checked (an implausible amount is
//! an error, never a panic) and undefined values are `None` with a reason, never 0 or NaN.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

#[cfg(test)]
use super::customers::smaller_id;
use super::customers::{CustomerHistory, EmailKey, Partial};
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
    pub email_hash: Option<EmailKey>,
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
    /// All orders of the store, counted and not, at any time; with `partial`, only the
    /// counted orders created in its spans.
    pub orders: Vec<OrderFacts>,
    /// Daily sessions by local day; `None` when no analytics source is linked. A day without
    /// an entry is unknown (not measured yet, or before tracking started), never 0.
    pub sessions: Option<BTreeMap<NaiveDate, u64>>,
    /// Creation instants of abandoned checkouts; `None` when the platform does not report them.
    pub abandoned_checkouts: Option<Vec<DateTime<Utc>>>,
    /// Daily bounced sessions by local day (days whose provider reports bounces); `None`
    /// when no traffic source is linked. Weighted by the same day's `sessions`.
    pub bounces: Option<BTreeMap<NaiveDate, u64>>,
    /// Lighthouse samples (one per URL, strategy and local day); `None` when no PageSpeed
    /// source is linked.
    pub pagespeed: Option<Vec<PageSpeedFacts>>,
    /// Approved product reviews; `None` when no reviews source is linked.
    pub reviews: Option<Vec<ReviewFacts>>,
    /// Why a linked source's data cannot be used (its last sync failed), by feed. A KPI
    /// reading that feed is null with this reason.
    pub unavailable: BTreeMap<Feed, String>,
    /// Feeds whose data is usable but whose source's last sync failed: values computed from
    /// them carry this note (the data stops where the last good sync left it).
    pub stale: BTreeMap<Feed, String>,
    /// `None`: `orders` (and `abandoned_checkouts`) hold the whole history. `Some`: a
    /// window-limited load; KPIs can be computed only over windows inside its spans.
    pub partial: Option<Partial>,
}

/// The kinds of data analytics and site sources feed into KPIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feed {
    /// Sessions and bounces (GA4, Plausible, Matomo).
    Traffic,
    /// Lighthouse scores and Core Web Vitals (PageSpeed Insights).
    PageSpeed,
    /// Product reviews (WooCommerce).
    Reviews,
}

impl Feed {
    /// What kind of source provides this feed (`analytics source`).
    pub fn what(self) -> &'static str {
        match self {
            Feed::Traffic => "analytics source",
            Feed::PageSpeed => "PageSpeed source",
            Feed::Reviews => "reviews source",
        }
    }
}

/// One PageSpeed Insights measurement of one URL with one strategy on one local day.
#[derive(Clone, Debug, PartialEq)]
pub struct PageSpeedFacts {
    pub date: NaiveDate,
    pub url: String,
    /// `mobile` or `desktop`.
    pub strategy: String,
    /// Lighthouse performance score, 0–100.
    pub score: Decimal,
    /// Largest Contentful Paint in seconds; `None` when Lighthouse reported no LCP audit.
    pub lcp_seconds: Option<Decimal>,
}

/// One approved product review.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewFacts {
    pub product_id: String,
    pub created_at: DateTime<Utc>,
    /// Stars, 1–5 (0 when the reviewer gave none; such reviews do not enter the average).
    pub rating: u8,
    /// Written by a verified owner (a customer who bought the product).
    pub verified: bool,
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
    compute_many(std::slice::from_ref(spec), inputs)
        .pop()
        .unwrap_or(Err(KpiError::NoStores))
}

/// What [`compute`] added up, element by element: recorded by the same code that sums, when
/// asked for (`kpi::explain`), so a listing can never drift from the value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Counted orders created in each store's window.
    pub orders: Vec<TracedOrder>,
    /// Counted orders created on the days whose sessions are known (the per-session rates).
    pub session_orders: Vec<TracedOrder>,
    /// Days with a stored sessions value inside each store's known span.
    pub days: Vec<TracedDay>,
    /// The window's customers (customer KPIs only).
    pub customers: Vec<TracedCustomer>,
    /// Abandoned checkouts created in the window: (store, created at).
    pub abandoned: Vec<(String, DateTime<Utc>)>,
    /// The PageSpeed samples averaged: (store, sample).
    pub pagespeed: Vec<(String, PageSpeedFacts)>,
    /// The reviews counted: (store, review).
    pub reviews: Vec<(String, ReviewFacts)>,
}

/// A counted order as the sums saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedOrder {
    pub store: String,
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    pub items_gross: Money,
    pub discounts: Money,
    pub refunded_items: Money,
    pub total: Money,
    pub refunded: Money,
    /// With a product: that product's (net sales, net units) on this order; `None` when the
    /// order has no line of it (or no product was asked for).
    pub product: Option<(Money, Decimal)>,
}

/// One day of sessions as the sums saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedDay {
    pub store: String,
    pub date: NaiveDate,
    pub sessions: u64,
    /// Bounced sessions of the day, when its provider reports them.
    pub bounces: Option<u64>,
}

/// One customer of a window as the customer figures saw them.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedCustomer {
    pub store: String,
    /// `customer <id>`, `guest <email hash prefix>…` or `anonymous (order <id>)`.
    pub customer: String,
    /// Their counted orders in the window.
    pub orders: Vec<String>,
    /// Their first counted order ever.
    pub first_order: Option<DateTime<Utc>>,
    pub repeat: bool,
    pub returning: bool,
    pub new: bool,
}

/// [`compute`], also returning what it added up when `record` is set.
pub(super) fn compute_traced(
    spec: &KpiSpec,
    inputs: &[WindowedStore<'_>],
    record: bool,
) -> Result<(Computed, Trace), KpiError> {
    compute_many_traced(std::slice::from_ref(spec), inputs, record)
        .pop()
        .unwrap_or(Err(KpiError::NoStores))
}

/// Computes several KPIs over the same stores and windows, each result equal to what
/// [`compute`] gives for it alone, in one walk over the orders per product named (customer
/// figures once, if any KPI needs them) instead of one walk per KPI.
pub fn compute_many(
    specs: &[KpiSpec],
    inputs: &[WindowedStore<'_>],
) -> Vec<Result<Computed, KpiError>> {
    compute_many_traced(specs, inputs, false)
        .into_iter()
        .map(|r| r.map(|(c, _)| c))
        .collect()
}

/// [`compute_many`], each value with what its walk added up when `record` is set: the
/// listing of `explain` is recorded by the very pass that sums, and each KPI's [`Trace`] is
/// the one [`compute_traced`] gives for it alone.
pub(super) fn compute_many_traced(
    specs: &[KpiSpec],
    inputs: &[WindowedStore<'_>],
    record: bool,
) -> Vec<Result<(Computed, Trace), KpiError>> {
    // What each spec needs, or why it cannot be computed at all.
    let checked: Vec<Result<Option<&str>, KpiError>> =
        specs.iter().map(|s| check_spec(s, inputs)).collect();
    // One pass per distinct product (None for the parameterless KPIs).
    let mut passes: Vec<(Option<&str>, bool, Option<Pass>)> = Vec::new();
    for (spec, c) in specs.iter().zip(&checked) {
        if let Ok(product) = c {
            let customers = needs_customers(spec.id);
            match passes.iter_mut().find(|(p, _, _)| p == product) {
                Some(pass) => pass.1 |= customers,
                None => passes.push((*product, customers, None)),
            }
        }
    }
    for (product, customers, pass) in &mut passes {
        *pass = Some(Pass::run(*product, *customers, record, inputs));
    }
    let products: Vec<Option<Option<&str>>> =
        checked.iter().map(|c| c.as_ref().ok().copied()).collect();
    specs
        .iter()
        .zip(checked)
        .enumerate()
        .map(|(i, (spec, c))| {
            let product = c?;
            let last = !products[i + 1..].contains(&Some(product));
            let pass = passes
                .iter_mut()
                .find(|(p, _, _)| *p == product)
                .and_then(|(_, _, pass)| pass.as_mut())
                .ok_or(KpiError::NoStores)?;
            pass.finish(spec.id, last)
        })
        .collect()
}

/// The product a spec names (trimmed; `None` for the store's whole sales), after the checks
/// that need no orders.
fn check_spec<'s>(
    spec: &'s KpiSpec,
    inputs: &[WindowedStore<'_>],
) -> Result<Option<&'s str>, KpiError> {
    let id = spec.id;
    let product = match (id.needs_product(), spec.product.as_deref().map(str::trim)) {
        (true, Some(p)) if !p.is_empty() => Some(p),
        (true, _) => return Err(KpiError::MissingProduct(id)),
        (false, Some(p)) if id.accepts_product() && !p.is_empty() => Some(p),
        (false, Some(_)) if id.accepts_product() => None,
        (false, Some(_)) => return Err(KpiError::UnexpectedProduct(id)),
        (false, None) => None,
    };
    if inputs.is_empty() {
        return Err(KpiError::NoStores);
    }
    if id.kind() == ValueKind::Money {
        check_currencies(inputs)?;
    }
    Ok(product)
}

/// Why a pass over the stores stopped, for every KPI.
enum Stop {
    /// A store's load does not cover its window.
    Incomplete(KpiError),
    /// A sum overflowed a decimal.
    Overflow,
}

/// The sums of one walk over the stores' orders, for one product.
struct Pass {
    totals: Totals,
    /// Stops every KPI: the stores after it were not summed.
    stop: Option<Stop>,
    /// A customer of some store (before `stop`'s) has no history loaded: stops the customer
    /// KPIs only, as [`compute`] of such a KPI stops at that store.
    customers: Option<KpiError>,
    /// Likewise for the product KPIs: some store's load lacks the product's order lines.
    lines: Option<KpiError>,
}

impl Pass {
    fn run(
        product: Option<&str>,
        with_customers: bool,
        record: bool,
        inputs: &[WindowedStore<'_>],
    ) -> Pass {
        let mut pass = Pass {
            totals: Totals {
                record,
                ..Totals::default()
            },
            stop: None,
            customers: None,
            lines: None,
        };
        let t = &mut pass.totals;
        for w in inputs {
            let (start, end) = w.range.utc_bounds(&w.store.tz);
            let incomplete = |what: String| KpiError::Incomplete {
                store: w.store.name.clone(),
                what,
            };
            if let Some(p) = &w.store.partial
                && !p.covers(start, end)
            {
                pass.stop = Some(Stop::Incomplete(incomplete(format!(
                    "the window {}",
                    w.range
                ))));
                break;
            }
            if let (Some(p), Some(partial)) = (product, &w.store.partial)
                && partial
                    .line_products
                    .as_ref()
                    .is_some_and(|l| !l.contains(p))
                && pass.lines.is_none()
            {
                pass.lines = Some(incomplete(format!("the order lines of product {p}")));
            }
            if t.add_store(product, w).is_none() {
                pass.stop = Some(Stop::Overflow);
                break;
            }
            if with_customers && pass.customers.is_none() {
                let built;
                let history = match &w.store.partial {
                    Some(p) => &p.customers,
                    None => {
                        built = CustomerHistory::from_orders(&w.store.orders);
                        &built
                    }
                };
                let trace = record.then_some(&mut t.trace.customers);
                match history.stats(&w.store.orders, start, end, &w.store.name, trace) {
                    Ok(c) => {
                        t.customers += c.customers;
                        t.repeat_customers += c.repeat;
                        t.returning_customers += c.returning;
                        t.new_customers += c.new;
                    }
                    Err(who) => {
                        pass.customers = Some(incomplete(format!("the history of {who}")));
                    }
                }
            }
        }
        pass
    }

    /// The KPI `id` from this pass's sums, with what they added up for it (empty unless
    /// recording): a pass shared with customer KPIs also lists the customers, which `id`
    /// alone would not have walked. `last`: no other KPI reads this pass after this one.
    fn finish(&mut self, id: KpiId, last: bool) -> Result<(Computed, Trace), KpiError> {
        if needs_customers(id)
            && let Some(e) = &self.customers
        {
            return Err(e.clone());
        }
        if id.needs_product()
            && let Some(e) = &self.lines
        {
            return Err(e.clone());
        }
        match &self.stop {
            Some(Stop::Incomplete(e)) => return Err(e.clone()),
            Some(Stop::Overflow) => return Err(KpiError::Overflow(id)),
            None => {}
        }
        let t = &self.totals;
        let mut c = t.finish(id).ok_or(KpiError::Overflow(id))?;
        if c.value.is_some()
            && let Some(note) = feed_of(id).and_then(|f| t.stale.get(&f))
        {
            c.reason = Some(match c.reason.take() {
                Some(r) => format!("{r}; {note}"),
                None => note.clone(),
            });
        }
        let mut trace = Trace::default();
        if self.totals.record {
            // The pass's last KPI takes the trace; the others get a copy.
            trace = if last {
                std::mem::take(&mut self.totals.trace)
            } else {
                self.totals.trace.clone()
            };
            if !needs_customers(id) {
                trace.customers.clear();
            }
        }
        Ok((c, trace))
    }
}

/// The analytics feed a KPI reads, if any.
pub fn feed_of(id: KpiId) -> Option<Feed> {
    match id {
        KpiId::Sessions | KpiId::ConversionRate | KpiId::RevenuePerSession | KpiId::BounceRate => {
            Some(Feed::Traffic)
        }
        KpiId::PagespeedScore | KpiId::LcpSeconds => Some(Feed::PageSpeed),
        KpiId::ReviewsCount | KpiId::VerifiedReviewsCount | KpiId::AverageRating => {
            Some(Feed::Reviews)
        }
        _ => None,
    }
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
    /// Counted orders and their net sales on the days whose sessions are known (each
    /// store's window clipped to its last stored traffic day), for the per-session rates.
    session_orders: u64,
    session_net: Money,
    /// Why sessions of some store's window are unknown (first store's reason).
    sessions_unknown: Option<String>,
    /// Stores whose sessions are known only up to a day before the window's end.
    sessions_notes: Vec<String>,
    abandoned: u64,
    /// Stores without an analytics source.
    no_sessions: Vec<String>,
    /// Sessions of the days that report bounces, and their bounces.
    bounce_sessions: u64,
    bounces: u64,
    no_bounces: Vec<String>,
    /// The latest day's PageSpeed samples of each store (mobile if that day has any, else
    /// desktop): (score sum, samples, LCP sum, samples with an LCP).
    pagespeed: Vec<(Decimal, u64, Decimal, u64)>,
    no_pagespeed: Vec<String>,
    reviews: u64,
    verified_reviews: u64,
    rated_reviews: u64,
    rating_sum: u64,
    no_reviews: Vec<String>,
    /// Why a linked source is unusable, first reason per feed.
    unavailable: BTreeMap<Feed, String>,
    /// Notes for feeds served from data stored before a failed sync.
    stale: BTreeMap<Feed, String>,
    /// Stores whose platform does not report abandoned checkouts.
    no_abandoned: Vec<String>,
    /// Whether to record what is added up in `trace`.
    record: bool,
    trace: Trace,
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
    fn add_store(&mut self, product: Option<&str>, w: &WindowedStore<'_>) -> Option<()> {
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
            let mut of_product: Option<(Money, Decimal)> = None;
            if let Some(p) = product {
                for line in o.lines.iter().filter(|l| line_matches(l, p)) {
                    let sales = sub(line.total, line.refunded_amount)?;
                    let units = sub(line.quantity, line.refunded_quantity)?;
                    add(&mut self.product_sales, sales)?;
                    add(&mut self.product_units, units)?;
                    let acc = of_product.get_or_insert((Decimal::ZERO, Decimal::ZERO));
                    add(&mut acc.0, sales)?;
                    add(&mut acc.1, units)?;
                }
            }
            if self.record {
                self.trace.orders.push(traced(store, o, of_product));
            }
        }
        // The days whose sessions are known: [from, through], `through` being the last
        // stored day in the window. `None` when the store has no usable sessions.
        let known = match &store.sessions {
            None => {
                self.no_sessions.push(store.name.clone());
                None
            }
            Some(daily) if w.range.from <= w.range.to => match known_days(store, daily, w.range) {
                Ok(known) => {
                    for (day, n) in daily.range(known.from..=known.to) {
                        self.sessions = self.sessions.saturating_add(*n);
                        if self.record {
                            self.trace.days.push(TracedDay {
                                store: store.name.clone(),
                                date: *day,
                                sessions: *n,
                                bounces: store.bounces.as_ref().and_then(|b| b.get(day).copied()),
                            });
                        }
                    }
                    if known.to < w.range.to {
                        self.sessions_notes.push(format!(
                            "sessions known through {}; later days left out (store {})",
                            known.to, store.name
                        ));
                    }
                    Some(known)
                }
                Err(why) => {
                    self.sessions_unknown.get_or_insert(why);
                    None
                }
            },
            Some(_) => None,
        };
        if let Some(known) = known {
            let (k_start, k_end) = known.utc_bounds(&store.tz);
            for o in store
                .orders
                .iter()
                .filter(|o| o.counted && k_start <= o.created_at && o.created_at < k_end)
            {
                self.session_orders += 1;
                let net = sub(sub(o.items_gross, o.discounts)?, o.refunded_items)?;
                add(&mut self.session_net, net)?;
                if self.record {
                    self.trace.session_orders.push(traced(store, o, None));
                }
            }
        }
        match &store.abandoned_checkouts {
            None => self.no_abandoned.push(store.name.clone()),
            Some(at) => {
                for t in at.iter().filter(|t| in_window(**t)) {
                    self.abandoned += 1;
                    if self.record {
                        self.trace.abandoned.push((store.name.clone(), *t));
                    }
                }
            }
        }
        for (feed, why) in &store.unavailable {
            self.unavailable
                .entry(*feed)
                .or_insert_with(|| format!("store {}: {why}", store.name));
        }
        for (feed, why) in &store.stale {
            self.stale
                .entry(*feed)
                .or_insert_with(|| format!("store {}: {why}", store.name));
        }
        let days = |d: &NaiveDate| w.range.from <= *d && *d <= w.range.to;
        match (&store.bounces, &store.sessions) {
            (Some(b), Some(s)) => {
                let known_day = |d: &NaiveDate| known.is_some_and(|k| k.contains(*d));
                for (day, n) in b.iter().filter(|(d, _)| known_day(d)) {
                    self.bounces = self.bounces.saturating_add(*n);
                    let sessions = s.get(day).copied().unwrap_or(0);
                    self.bounce_sessions = self.bounce_sessions.saturating_add(sessions);
                }
            }
            _ => self.no_bounces.push(store.name.clone()),
        }
        match &store.pagespeed {
            None => self.no_pagespeed.push(store.name.clone()),
            Some(samples) => {
                let latest = samples.iter().map(|p| p.date).filter(days).max();
                if let Some(latest) = latest {
                    // Mobile and desktop scores differ widely; averaging them would swing
                    // with the mix. Mobile is what most shop visitors use.
                    let on_latest = || samples.iter().filter(move |p| p.date == latest);
                    let strategy = if on_latest().any(|p| p.strategy == "mobile") {
                        "mobile"
                    } else {
                        "desktop"
                    };
                    let mut acc = (Decimal::ZERO, 0u64, Decimal::ZERO, 0u64);
                    for p in on_latest().filter(|p| p.strategy == strategy) {
                        if self.record {
                            self.trace.pagespeed.push((store.name.clone(), p.clone()));
                        }
                        add(&mut acc.0, p.score)?;
                        acc.1 += 1;
                        if let Some(lcp) = p.lcp_seconds {
                            add(&mut acc.2, lcp)?;
                            acc.3 += 1;
                        }
                    }
                    self.pagespeed.push(acc);
                }
            }
        }
        match &store.reviews {
            None => self.no_reviews.push(store.name.clone()),
            Some(reviews) => {
                for r in reviews.iter().filter(|r| in_window(r.created_at)) {
                    if product.is_some_and(|p| r.product_id.trim() != p) {
                        continue;
                    }
                    self.reviews += 1;
                    if self.record {
                        self.trace.reviews.push((store.name.clone(), r.clone()));
                    }
                    if r.verified {
                        self.verified_reviews += 1;
                    }
                    if (1..=5).contains(&r.rating) {
                        self.rated_reviews += 1;
                        self.rating_sum += u64::from(r.rating);
                    }
                }
            }
        }
        Some(())
    }

    /// The null a feed's KPI gets when some store lacks the feed or its source failed.
    fn feed_null(&self, feed: Feed, missing: &[String]) -> Option<Computed> {
        if let Some(why) = self.unavailable.get(&feed) {
            return Some(Computed::null(why.clone()));
        }
        if missing.is_empty() {
            return None;
        }
        Some(Computed::null(format!(
            "no {} linked to {}",
            feed.what(),
            stores_phrase(missing)
        )))
    }

    /// The null of the session-based KPIs: no traffic source, a failed one, or a window
    /// with unknown days.
    fn sessions_null(&self) -> Option<Computed> {
        if let Some(null) = self.feed_null(Feed::Traffic, &self.no_sessions) {
            return Some(null);
        }
        self.sessions_unknown.clone().map(Computed::null)
    }

    /// A session-based value, with a note when some store's sessions stop before the
    /// window's end.
    fn with_sessions_note(&self, mut c: Computed) -> Computed {
        if c.value.is_some() && !self.sessions_notes.is_empty() {
            c.reason = Some(self.sessions_notes.join("; "));
        }
        c
    }

    /// The KPI's value from the sums; `None` on decimal overflow.
    fn finish(&self, id: KpiId) -> Option<Computed> {
        const NO_ORDERS: &str = "no orders in window";
        let count = |n: u64| Computed::value(Value::Count(i64::try_from(n).unwrap_or(i64::MAX)));
        let money = |d: Decimal| Computed::value(Value::Money(d));
        let rate = |d: Decimal| Computed::value(Value::Rate(d));
        let number = |d: Decimal| Computed::value(Value::Number(d));
        let net = || sub(sub(self.gross, self.discounts)?, self.returns);
        let sessions = || -> Result<u64, Computed> {
            if let Some(null) = self.sessions_null() {
                return Err(null);
            }
            match self.sessions {
                0 => Err(Computed::null("no sessions in window")),
                n => Ok(n),
            }
        };
        let noted = |c: Computed| self.with_sessions_note(c);
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
            KpiId::Sessions => match self.sessions_null() {
                Some(null) => null,
                None => noted(count(self.sessions)),
            },
            KpiId::ConversionRate => match sessions() {
                Err(null) => null,
                Ok(s) => noted(rate(count_ratio(self.session_orders, s)?)),
            },
            KpiId::RevenuePerSession => match sessions() {
                Err(null) => null,
                Ok(s) => noted(money(self.session_net.checked_div(Decimal::from(s))?)),
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
            KpiId::BounceRate => match self.feed_null(Feed::Traffic, &self.no_bounces) {
                Some(null) => null,
                None if let Some(why) = &self.sessions_unknown => Computed::null(why.clone()),
                None if self.bounce_sessions == 0 => {
                    Computed::null("no sessions with bounce data in window")
                }
                None => noted(rate(
                    count_ratio(self.bounces, self.bounce_sessions)?.min(Decimal::ONE),
                )),
            },
            KpiId::PagespeedScore | KpiId::LcpSeconds => {
                match self.feed_null(Feed::PageSpeed, &self.no_pagespeed) {
                    Some(null) => null,
                    None => {
                        let (mut score, mut n, mut lcp, mut n_lcp) =
                            (Decimal::ZERO, 0u64, Decimal::ZERO, 0u64);
                        for (s, k, l, k_lcp) in &self.pagespeed {
                            add(&mut score, *s)?;
                            n += k;
                            add(&mut lcp, *l)?;
                            n_lcp += k_lcp;
                        }
                        if n == 0 {
                            Computed::null("no PageSpeed measurement in window")
                        } else if id == KpiId::PagespeedScore {
                            number(score.checked_div(Decimal::from(n))?)
                        } else if n_lcp == 0 {
                            Computed::null(
                                "PageSpeed reported no Largest Contentful Paint for the latest measurements in window (Lighthouse could not measure it)",
                            )
                        } else {
                            number(lcp.checked_div(Decimal::from(n_lcp))?)
                        }
                    }
                }
            }
            KpiId::ReviewsCount | KpiId::VerifiedReviewsCount | KpiId::AverageRating => {
                match self.feed_null(Feed::Reviews, &self.no_reviews) {
                    Some(null) => null,
                    None if id == KpiId::ReviewsCount => count(self.reviews),
                    None if id == KpiId::VerifiedReviewsCount => count(self.verified_reviews),
                    None if self.rated_reviews == 0 => Computed::null("no rated reviews in window"),
                    None => number(count_ratio(self.rating_sum, self.rated_reviews)?),
                }
            }
        })
    }
}

fn traced(store: &StoreData, o: &OrderFacts, product: Option<(Money, Decimal)>) -> TracedOrder {
    TracedOrder {
        store: store.name.clone(),
        order_id: o.order_id.clone(),
        created_at: o.created_at,
        items_gross: o.items_gross,
        discounts: o.discounts,
        refunded_items: o.refunded_items,
        total: o.total,
        refunded: o.refunded,
        product,
    }
}

/// The days of `range` whose sessions are known: `[range.from, through]`, `through` being
/// the last stored day in the range. `Err` with the reason when no day of the range is stored
/// or a day before `through` is missing (unknown days are never read as 0).
fn known_days(
    store: &StoreData,
    daily: &BTreeMap<NaiveDate, u64>,
    range: DateRange,
) -> Result<DateRange, String> {
    let Some(through) = daily
        .range(range.from..=range.to)
        .map(|(d, _)| *d)
        .next_back()
    else {
        return Err(format!(
            "no session data for store {} in {}..{} yet",
            store.name, range.from, range.to
        ));
    };
    // Missing spans inside [from, through], as "D1..D2" (or "D" for one day).
    let mut spans = Vec::new();
    let mut gap: Option<(NaiveDate, NaiveDate)> = None;
    let mut day = range.from;
    while day <= through {
        if daily.contains_key(&day) {
            spans.extend(gap.take());
        } else {
            gap = Some(gap.map_or((day, day), |(a, _)| (a, day)));
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    spans.extend(gap);
    if spans.is_empty() {
        return Ok(DateRange {
            from: range.from,
            to: through,
        });
    }
    let shown: Vec<String> = spans
        .iter()
        .take(3)
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect();
    let more = match spans.len() {
        n if n > 3 => format!(" and {} more spans", n - 3),
        _ => String::new(),
    };
    Err(format!(
        "sessions unknown for store {} on {}{more} (its analytics source has no data for those days, e.g. before tracking started)",
        store.name,
        shown.join(", ")
    ))
}

/// "store main" / "stores a, b".
fn stores_phrase(names: &[String]) -> String {
    match names {
        [one] => format!("store {one}"),
        many => format!("stores {}", many.join(", ")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub(crate) fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn range(from: &str, to: &str) -> DateRange {
        DateRange {
            from: day(from),
            to: day(to),
        }
    }

    fn paris() -> StoreTz {
        StoreTz::parse("Europe/Paris").unwrap()
    }

    /// An order with money `(items_gross, discounts, total, refunded, refunded_items)`.
    fn order(
        id: &str,
        created: &str,
        counted: bool,
        money: [&str; 5],
        customer: Option<&str>,
        email: Option<&str>,
    ) -> OrderFacts {
        OrderFacts {
            order_id: id.into(),
            created_at: at(created),
            counted,
            items_gross: dec(money[0]),
            discounts: dec(money[1]),
            total: dec(money[2]),
            refunded: dec(money[3]),
            refunded_items: dec(money[4]),
            customer_id: customer.map(Into::into),
            email_hash: email.and_then(EmailKey::new),
            lines: Vec::new(),
        }
    }

    /// A line `(quantity, total, refunded quantity, refunded amount)`.
    fn line(product: Option<&str>, sku: Option<&str>, n: [&str; 4]) -> LineFacts {
        LineFacts {
            product_id: product.map(Into::into),
            sku: sku.map(Into::into),
            quantity: dec(n[0]),
            total: dec(n[1]),
            refunded_quantity: dec(n[2]),
            refunded_amount: dec(n[3]),
        }
    }

    fn with_lines(mut o: OrderFacts, lines: Vec<LineFacts>) -> OrderFacts {
        o.lines = lines;
        o
    }

    /// The window of the main fixture: 2026-10-20..2026-10-25 in Paris, i.e. the instants
    /// [2026-10-19T22:00Z, 2026-10-25T23:00Z). Paris leaves summer time on 2026-10-25 at
    /// 03:00 (UTC+2 → UTC+1), so the last day is 25 hours long.
    pub(crate) fn main_window() -> DateRange {
        range("2026-10-20", "2026-10-25")
    }

    /// The main fixture. In the window W (marked "in"), counted:
    /// o1  c1            gross 100 disc 10 total 108 refunded  0 items  0   P1/SKU-1 ×2 90.00
    /// o2  guest h1 (→c1) gross  40 disc  0 total  48 refunded 48 items 40   full refund, P2
    /// o3  c2            gross  60 disc  5 total  66 refunded 20 items 15   partial, P1 ×3 55.00, 1 back (15.00)
    /// o4  anonymous     gross  30 disc  0 total  36 refunded  5 items  0   amount-only, SKU-1 ×1 30.00
    /// o5  guest h3      gross  20 disc  0 total  24 (23:30 local on the last day, 25-hour day)
    /// o9  c3            gross  50 disc  0 total  60
    /// o12 anonymous     gross  10 disc  0 total  12 (00:00 local on the first day)
    /// Not in O(W): o6 (00:30 local the day after), o7 (not counted), o8/o10 (before W),
    /// o11 (23:59:59 local the day before), o13 (c1, before W, not counted).
    pub(crate) fn main_store() -> StoreData {
        let p1 = |n| line(Some("P1"), Some("SKU-1"), n);
        let orders = vec![
            with_lines(
                order(
                    "o1",
                    "2026-10-20T08:00:00Z",
                    true,
                    ["100.00", "10.00", "108.00", "0", "0"],
                    Some("c1"),
                    Some("h1"),
                ),
                vec![p1(["2", "90.00", "0", "0"])],
            ),
            with_lines(
                order(
                    "o2",
                    "2026-10-21T09:00:00Z",
                    true,
                    ["40.00", "0", "48.00", "48.00", "40.00"],
                    None,
                    Some("h1"),
                ),
                vec![line(Some("P2"), None, ["1", "40.00", "1", "40.00"])],
            ),
            with_lines(
                order(
                    "o3",
                    "2026-10-22T10:00:00Z",
                    true,
                    ["60.00", "5.00", "66.00", "20.00", "15.00"],
                    Some("c2"),
                    Some("h2"),
                ),
                vec![line(Some("P1"), None, ["3", "55.00", "1", "15.00"])],
            ),
            with_lines(
                order(
                    "o4",
                    "2026-10-23T11:00:00Z",
                    true,
                    ["30.00", "0", "36.00", "5.00", "0"],
                    None,
                    None,
                ),
                vec![line(None, Some("SKU-1"), ["1", "30.00", "0", "0"])],
            ),
            // 23:30 CET on 2026-10-25.
            order(
                "o5",
                "2026-10-25T22:30:00Z",
                true,
                ["20.00", "0", "24.00", "0", "0"],
                None,
                Some("h3"),
            ),
            // 00:30 CET on 2026-10-26: the day after the window.
            with_lines(
                order(
                    "o6",
                    "2026-10-25T23:30:00Z",
                    true,
                    ["1000.00", "0", "1200.00", "0", "0"],
                    Some("c2"),
                    None,
                ),
                vec![p1(["10", "1000.00", "0", "0"])],
            ),
            // Cancelled: not counted, but its email tells that h4 is c3.
            with_lines(
                order(
                    "o7",
                    "2026-10-22T12:00:00Z",
                    false,
                    ["500.00", "0", "600.00", "0", "0"],
                    Some("c3"),
                    Some("h4"),
                ),
                vec![p1(["7", "500.00", "0", "0"])],
            ),
            // c3's earlier guest order (h4): makes c3 a returning customer.
            order(
                "o8",
                "2026-09-10T10:00:00Z",
                true,
                ["70.00", "0", "84.00", "0", "0"],
                None,
                Some("h4"),
            ),
            order(
                "o9",
                "2026-10-24T10:00:00Z",
                true,
                ["50.00", "0", "60.00", "0", "0"],
                Some("c3"),
                None,
            ),
            order(
                "o10",
                "2026-09-01T10:00:00Z",
                true,
                ["80.00", "0", "96.00", "0", "0"],
                Some("c2"),
                None,
            ),
            // 23:59:59 CEST on 2026-10-19: the day before the window.
            order(
                "o11",
                "2026-10-19T21:59:59Z",
                true,
                ["90.00", "0", "108.00", "0", "0"],
                None,
                Some("h5"),
            ),
            // 00:00 CEST on 2026-10-20: the window's first instant.
            order(
                "o12",
                "2026-10-19T22:00:00Z",
                true,
                ["10.00", "0", "12.00", "0", "0"],
                None,
                None,
            ),
            // c1's cancelled order before the window does not make c1 returning.
            order(
                "o13",
                "2026-09-05T10:00:00Z",
                false,
                ["10.00", "0", "12.00", "0", "0"],
                Some("c1"),
                None,
            ),
        ];
        let sessions = [
            ("2026-10-19", 1000), // before W
            ("2026-10-20", 100),
            ("2026-10-21", 50),
            // Stored zeros: genuinely no visits (unknown days are absent, see below).
            ("2026-10-22", 0),
            ("2026-10-23", 0),
            ("2026-10-24", 0),
            ("2026-10-25", 200),
            ("2026-10-26", 999), // after W
        ]
        .into_iter()
        .map(|(d, n)| (day(d), n))
        .collect();
        let abandoned = [
            "2026-10-19T21:59:00Z", // 23:59 local the day before: out
            "2026-10-20T10:00:00Z", // in
            "2026-10-25T22:59:59Z", // 23:59:59 local on the last day: in
            "2026-10-25T23:00:00Z", // 00:00 local the day after: out
        ]
        .into_iter()
        .map(at)
        .collect();
        StoreData {
            name: "main".into(),
            tz: paris(),
            currency: Some("EUR".into()),
            orders,
            sessions: Some(sessions),
            abandoned_checkouts: Some(abandoned),
            bounces: None,
            pagespeed: None,
            reviews: None,
            unavailable: Default::default(),
            stale: Default::default(),
            partial: None,
        }
    }

    fn run(spec: &KpiSpec, stores: &[(&StoreData, DateRange)]) -> Result<Computed, KpiError> {
        let inputs: Vec<WindowedStore<'_>> = stores
            .iter()
            .map(|(store, range)| WindowedStore {
                store,
                range: *range,
            })
            .collect();
        compute(spec, &inputs)
    }

    fn value(id: KpiId, product: Option<&str>, stores: &[(&StoreData, DateRange)]) -> Computed {
        let spec = KpiSpec {
            id,
            product: product.map(Into::into),
        };
        run(&spec, stores).unwrap()
    }

    fn count(n: i64) -> Option<Value> {
        Some(Value::Count(n))
    }
    fn money(s: &str) -> Option<Value> {
        Some(Value::Money(dec(s)))
    }
    fn rate(n: i64, d: i64) -> Option<Value> {
        Some(Value::Rate(Decimal::from(n) / Decimal::from(d)))
    }

    #[test]
    fn main_fixture_kpis() {
        let store = main_store();
        let w = main_window();
        let cases: Vec<(KpiId, Option<&str>, Option<Value>, &str)> = vec![
            // o1 o2 o3 o4 o5 o9 o12
            (KpiId::Orders, None, count(7), "7"),
            // 100 + 40 + 60 + 30 + 20 + 50 + 10 = 310.00
            (KpiId::GrossSales, None, money("310.00"), "310.00"),
            // 10 + 5 = 15.00
            (KpiId::Discounts, None, money("15.00"), "15.00"),
            // refunded_items 40 (o2 full) + 15 (o3 partial); o4's amount-only refund is not a return.
            (KpiId::Returns, None, money("55.00"), "55.00"),
            // 310 − 15 − 55 = 240.00
            (KpiId::NetSales, None, money("240.00"), "240.00"),
            // Σ total 108+48+66+36+24+60+12 = 354; Σ refunded 48+20+5 = 73; 354 − 73 = 281.00
            (KpiId::TotalSales, None, money("281.00"), "281.00"),
            // (310 − 15) / 7 = 42.142857…
            (
                KpiId::AverageOrderValue,
                None,
                Some(Value::Money(dec("295") / dec("7"))),
                "42.14",
            ),
            // C(W) = {c1 (o1 + guest o2), c2, anon o4, h3, c3, anon o12} = 6; c1 has 2 orders.
            (KpiId::RepeatPurchaseRate, None, rate(1, 6), "16.67%"),
            // c2 (o10) and c3 (guest o8 merged through cancelled o7) ordered before W.
            (KpiId::ReturningCustomerRate, None, rate(2, 6), "33.33%"),
            // c1, anon o4, h3, anon o12 (c1's earlier order o13 was not counted).
            (KpiId::NewCustomers, None, count(4), "4"),
            // o2, o3, o4 refunded something: 3/7.
            (KpiId::RefundRate, None, rate(3, 7), "42.86%"),
            // 100 + 50 + 0 + 0 + 0 (stored zero days) + 200 = 350
            (KpiId::Sessions, None, count(350), "350"),
            // 7 / 350 = 0.02
            (
                KpiId::ConversionRate,
                None,
                Some(Value::Rate(dec("0.02"))),
                "2.00%",
            ),
            // 240 / 350 = 0.685714…
            (
                KpiId::RevenuePerSession,
                None,
                Some(Value::Money(dec("240") / dec("350"))),
                "0.69",
            ),
            // 2 abandoned in W / (2 + 7 orders)
            (KpiId::CartAbandonmentRate, None, rate(2, 9), "22.22%"),
            // P1 by id: o1 90.00 + o3 55.00 − 15.00 = 130.00 (o6 after W, o7 not counted)
            (
                KpiId::ProductNetSales,
                Some("P1"),
                money("130.00"),
                "130.00",
            ),
            // P1: 2 + 3 − 1 = 4 units
            (KpiId::ProductUnits, Some("P1"), count(4), "4"),
            // SKU-1 by SKU: o1 90.00 + o4 30.00 = 120.00, 2 + 1 = 3 units
            (
                KpiId::ProductNetSales,
                Some("SKU-1"),
                money("120.00"),
                "120.00",
            ),
            (KpiId::ProductUnits, Some("SKU-1"), count(3), "3"),
            // P2 fully refunded: 40 − 40 = 0, 1 − 1 = 0; unknown product: 0.
            (KpiId::ProductNetSales, Some("P2"), money("0.00"), "0.00"),
            (KpiId::ProductUnits, Some("P2"), count(0), "0"),
            (KpiId::ProductUnits, Some("nope"), count(0), "0"),
        ];
        for (id, product, want, shown) in cases {
            let got = value(id, product, &[(&store, w)]);
            assert_eq!(got.value, want, "{id} {product:?}");
            assert_eq!(got.reason, None, "{id}");
            if let Some(v) = got.value {
                assert_eq!(v.display(), shown, "{id} {product:?}");
            }
        }
    }

    #[test]
    fn day_boundaries_are_local_including_dst_end() {
        let store = main_store();
        // Only 2026-10-25 (25 hours): o5 at 23:30 local is in, o6 at 00:30 the 26th is not.
        let last = value(
            KpiId::GrossSales,
            None,
            &[(&store, range("2026-10-25", "2026-10-25"))],
        );
        assert_eq!(last.value, money("20.00"));
        // Only 2026-10-26: o6 (1000.00).
        let next = value(
            KpiId::GrossSales,
            None,
            &[(&store, range("2026-10-26", "2026-10-26"))],
        );
        assert_eq!(next.value, money("1000.00"));
        // Only 2026-10-19: o11 at 23:59:59 local (90.00); o12 at 00:00 the 20th is not.
        let before = value(
            KpiId::GrossSales,
            None,
            &[(&store, range("2026-10-19", "2026-10-19"))],
        );
        assert_eq!(before.value, money("90.00"));
    }

    #[test]
    fn day_boundaries_on_dst_start() {
        // 2026-03-29 in Paris: 00:00 CET = 2026-03-28T23:00Z, 24:00 CEST = 2026-03-29T22:00Z.
        let m = ["1.00", "0", "1.00", "0", "0"];
        let store = StoreData {
            name: "main".into(),
            tz: paris(),
            currency: None,
            orders: vec![
                order("a", "2026-03-28T22:59:59Z", true, m, None, None), // 23:59:59 on the 28th
                order("b", "2026-03-28T23:00:00Z", true, m, None, None), // 00:00 on the 29th
                order("c", "2026-03-29T01:30:00Z", true, m, None, None), // 03:30 CEST (after the jump)
                order("d", "2026-03-29T21:30:00Z", true, m, None, None), // 23:30 CEST on the 29th
                order("e", "2026-03-29T22:00:00Z", true, m, None, None), // 00:00 on the 30th
            ],
            sessions: None,
            abandoned_checkouts: None,
            bounces: None,
            pagespeed: None,
            reviews: None,
            unavailable: Default::default(),
            stale: Default::default(),
            partial: None,
        };
        let got = value(
            KpiId::Orders,
            None,
            &[(&store, range("2026-03-29", "2026-03-29"))],
        );
        assert_eq!(got.value, count(3)); // b, c, d
        let got = value(
            KpiId::Orders,
            None,
            &[(&store, range("2026-03-30", "2026-03-30"))],
        );
        assert_eq!(got.value, count(1)); // e
    }

    #[test]
    fn empty_window_gives_zero_sums_and_null_ratios() {
        let store = main_store();
        let empty = range("2026-08-01", "2026-08-02");
        let zeros = [
            (KpiId::Orders, count(0)),
            (KpiId::GrossSales, money("0")),
            (KpiId::NetSales, money("0")),
            (KpiId::TotalSales, money("0")),
            (KpiId::NewCustomers, count(0)),
        ];
        for (id, want) in zeros {
            assert_eq!(value(id, None, &[(&store, empty)]).value, want, "{id}");
        }
        let nulls = [
            (KpiId::AverageOrderValue, "no orders in window"),
            (KpiId::RepeatPurchaseRate, "no orders in window"),
            (KpiId::ReturningCustomerRate, "no orders in window"),
            (KpiId::RefundRate, "no orders in window"),
            // No traffic stored for these days: unknown, not 0.
            (
                KpiId::Sessions,
                "no session data for store main in 2026-08-01..2026-08-02 yet",
            ),
            (
                KpiId::ConversionRate,
                "no session data for store main in 2026-08-01..2026-08-02 yet",
            ),
            (
                KpiId::RevenuePerSession,
                "no session data for store main in 2026-08-01..2026-08-02 yet",
            ),
            (
                KpiId::CartAbandonmentRate,
                "no orders or abandoned checkouts in window",
            ),
        ];
        for (id, reason) in nulls {
            let got = value(id, None, &[(&store, empty)]);
            assert_eq!(got.value, None, "{id}");
            assert_eq!(got.reason.as_deref(), Some(reason), "{id}");
        }
    }

    #[test]
    fn missing_sources_give_null_with_reason() {
        let mut store = main_store();
        store.sessions = None;
        store.abandoned_checkouts = None;
        let w = main_window();
        for id in [
            KpiId::Sessions,
            KpiId::ConversionRate,
            KpiId::RevenuePerSession,
        ] {
            let got = value(id, None, &[(&store, w)]);
            assert_eq!(got.value, None, "{id}");
            assert_eq!(
                got.reason.as_deref(),
                Some("no analytics source linked to store main"),
                "{id}"
            );
        }
        let got = value(KpiId::CartAbandonmentRate, None, &[(&store, w)]);
        assert_eq!(got.value, None);
        assert_eq!(
            got.reason.as_deref(),
            Some("store main does not report abandoned checkouts (Shopify only)")
        );
        // Sessions linked but no data for the window's days: unknown, not 0.
        store.sessions = Some(BTreeMap::new());
        for id in [KpiId::Sessions, KpiId::ConversionRate] {
            let got = value(id, None, &[(&store, w)]);
            assert_eq!(got.value, None, "{id}");
            assert_eq!(
                got.reason.as_deref(),
                Some("no session data for store main in 2026-10-20..2026-10-25 yet"),
                "{id}"
            );
        }
        // Stored zero days are real zeros: 0 sessions, conversion undefined.
        store.sessions = Some([(day("2026-10-20"), 0), (day("2026-10-25"), 0)].into());
        let got = value(KpiId::Sessions, None, &[(&store, w)]);
        assert!(got.reason.unwrap().contains("2026-10-21..2026-10-24"));
        store.sessions = Some(
            main_window()
                .from
                .iter_days()
                .take(6)
                .map(|d| (d, 0))
                .collect(),
        );
        assert_eq!(value(KpiId::Sessions, None, &[(&store, w)]).value, count(0));
        assert_eq!(
            value(KpiId::ConversionRate, None, &[(&store, w)])
                .reason
                .as_deref(),
            Some("no sessions in window")
        );
        // Abandoned checkouts reported, none in W: 0 / (0 + 7) = 0, a defined rate.
        store.abandoned_checkouts = Some(Vec::new());
        assert_eq!(
            value(KpiId::CartAbandonmentRate, None, &[(&store, w)]).value,
            Some(Value::Rate(Decimal::ZERO))
        );
    }

    #[test]
    fn unknown_session_days_make_session_kpis_null_with_the_span() {
        let mut store = main_store();
        // Day 22 and 23 unknown (not stored), inside the known days 20..25.
        let mut daily = store.sessions.clone().unwrap();
        daily.remove(&day("2026-10-22"));
        daily.remove(&day("2026-10-23"));
        store.bounces = Some(daily.iter().map(|(d, n)| (*d, n / 2)).collect());
        store.sessions = Some(daily);
        let w = main_window();
        for id in [
            KpiId::Sessions,
            KpiId::ConversionRate,
            KpiId::RevenuePerSession,
            KpiId::BounceRate,
        ] {
            let got = value(id, None, &[(&store, w)]);
            assert_eq!(got.value, None, "{id}");
            assert_eq!(
                got.reason.as_deref(),
                Some(
                    "sessions unknown for store main on 2026-10-22..2026-10-23 (its analytics source has no data for those days, e.g. before tracking started)"
                ),
                "{id}"
            );
        }
        // A window starting after the gap is fine.
        let later = range("2026-10-24", "2026-10-25");
        assert_eq!(
            value(KpiId::Sessions, None, &[(&store, later)]).value,
            count(200)
        );
        // Order KPIs do not depend on sessions.
        assert_eq!(value(KpiId::Orders, None, &[(&store, w)]).value, count(7));
    }

    #[test]
    fn sessions_known_up_to_a_day_clip_orders_and_carry_a_note() {
        let mut store = main_store();
        // Sessions stored through 2026-10-22 only (the source has not read later days yet).
        let daily: BTreeMap<NaiveDate, u64> =
            [("2026-10-20", 100), ("2026-10-21", 50), ("2026-10-22", 0)]
                .into_iter()
                .map(|(d, n)| (day(d), n))
                .collect();
        store.bounces = Some(daily.iter().map(|(d, n)| (*d, n / 5)).collect());
        store
            .bounces
            .as_mut()
            .unwrap()
            .insert(day("2026-10-25"), 90);
        store.sessions = Some(daily);
        let w = main_window();
        let note = "sessions known through 2026-10-22; later days left out (store main)";
        // Orders on the known days 20..22: o12, o1, o2, o3 = 4; net 10 + 90 + 0 + 40 = 140.
        let cases = [
            (KpiId::Sessions, count(150)),
            (KpiId::ConversionRate, rate(4, 150)),
            (
                KpiId::RevenuePerSession,
                Some(Value::Money(dec("140") / dec("150"))),
            ),
            // (20 + 10 + 0) / 150; day 25's bounces are after the known days.
            (KpiId::BounceRate, rate(30, 150)),
        ];
        for (id, want) in cases {
            let got = value(id, None, &[(&store, w)]);
            assert_eq!(got.value, want, "{id}");
            assert_eq!(got.reason.as_deref(), Some(note), "{id}");
        }
        // Other KPIs cover the whole window, without a note.
        let orders = value(KpiId::Orders, None, &[(&store, w)]);
        assert_eq!((orders.value, orders.reason), (count(7), None));
    }

    #[test]
    fn pagespeed_prefers_mobile_and_skips_missing_lcp() {
        let sample = |d: &str, strategy: &str, score: &str, lcp: Option<&str>| PageSpeedFacts {
            date: day(d),
            url: "https://shop.example/".into(),
            strategy: strategy.into(),
            score: dec(score),
            lcp_seconds: lcp.map(dec),
        };
        let mut store = main_store();
        store.pagespeed = Some(vec![
            sample("2026-10-24", "mobile", "10", Some("9.0")),
            sample("2026-10-25", "mobile", "40", None),
            sample("2026-10-25", "mobile", "60", Some("3.0")),
            sample("2026-10-25", "desktop", "100", Some("1.0")),
        ]);
        let w = main_window();
        // Latest day, mobile only: (40 + 60) / 2; LCP only from the sample that has one.
        assert_eq!(
            value(KpiId::PagespeedScore, None, &[(&store, w)]).value,
            Some(Value::Number(dec("50")))
        );
        assert_eq!(
            value(KpiId::LcpSeconds, None, &[(&store, w)]).value,
            Some(Value::Number(dec("3.0")))
        );
        // No mobile sample on the latest day: desktop.
        store.pagespeed = Some(vec![
            sample("2026-10-24", "mobile", "10", Some("9.0")),
            sample("2026-10-25", "desktop", "90", None),
        ]);
        assert_eq!(
            value(KpiId::PagespeedScore, None, &[(&store, w)]).value,
            Some(Value::Number(dec("90")))
        );
        // No LCP at all on the latest day: null with a reason, never 0 s.
        let lcp = value(KpiId::LcpSeconds, None, &[(&store, w)]);
        assert_eq!(lcp.value, None);
        assert!(
            lcp.reason.unwrap().contains("no Largest Contentful Paint"),
            "reason"
        );
    }

    #[test]
    fn guest_email_on_several_accounts_joins_the_smallest_id() {
        let m = ["1.00", "0", "1.00", "0", "0"];
        let store = StoreData {
            name: "s".into(),
            tz: StoreTz::UTC,
            currency: None,
            orders: vec![
                // "c10" < "c9" as strings; c9's order is outside the window.
                order("a", "2026-01-01T10:00:00Z", true, m, Some("c9"), Some("hx")),
                order(
                    "b",
                    "2026-02-01T10:00:00Z",
                    true,
                    m,
                    Some("c10"),
                    Some("hx"),
                ),
                order("c", "2026-02-02T10:00:00Z", true, m, None, Some("hx")),
                // Two guest orders with the same email are one customer; anonymous orders
                // are one customer each.
                order("d", "2026-02-03T10:00:00Z", true, m, None, Some("hy")),
                order("e", "2026-02-04T10:00:00Z", true, m, Some(""), Some("hy")),
                order("f", "2026-02-05T10:00:00Z", true, m, None, None),
                order("g", "2026-02-06T10:00:00Z", true, m, None, None),
            ],
            sessions: None,
            abandoned_checkouts: None,
            bounces: None,
            pagespeed: None,
            reviews: None,
            unavailable: Default::default(),
            stale: Default::default(),
            partial: None,
        };
        let feb = range("2026-02-01", "2026-02-28");
        // C(W) = {c10 (b, c), hy (d, e), f, g} = 4; 2 with two orders.
        assert_eq!(
            value(KpiId::RepeatPurchaseRate, None, &[(&store, feb)]).value,
            rate(2, 4)
        );
        // Nobody ordered before February under these keys (c9 is a different customer).
        assert_eq!(
            value(KpiId::NewCustomers, None, &[(&store, feb)]).value,
            count(4)
        );
        assert_eq!(
            value(KpiId::ReturningCustomerRate, None, &[(&store, feb)]).value,
            rate(0, 4)
        );
    }

    #[test]
    fn several_stores_sum_with_their_own_windows_and_customers() {
        let main = main_store();
        let m = ["10.00", "1.00", "12.00", "0", "0"];
        let other = StoreData {
            name: "other".into(),
            tz: StoreTz::UTC,
            currency: Some("eur".into()),
            orders: vec![
                // Same customer id as main's c1, but another store: another customer.
                order(
                    "x1",
                    "2026-10-20T00:00:00Z",
                    true,
                    m,
                    Some("c1"),
                    Some("h1"),
                ),
                order("x2", "2026-10-21T23:59:59Z", true, m, Some("c1"), None),
                order("x3", "2026-10-22T00:00:00Z", true, m, Some("c1"), None), // after its window
            ],
            sessions: None,
            abandoned_checkouts: Some(vec![at("2026-10-20T12:00:00Z")]),
            bounces: None,
            pagespeed: None,
            reviews: None,
            unavailable: Default::default(),
            stale: Default::default(),
            partial: None,
        };
        let stores = [
            (&main, main_window()),
            (&other, range("2026-10-20", "2026-10-21")),
        ];
        assert_eq!(value(KpiId::Orders, None, &stores).value, count(9)); // 7 + 2
        // 310.00 + 20.00
        assert_eq!(
            value(KpiId::GrossSales, None, &stores).value,
            money("330.00")
        );
        // customers 6 + 1; repeat c1@main and c1@other
        assert_eq!(
            value(KpiId::RepeatPurchaseRate, None, &stores).value,
            rate(2, 7)
        );
        assert_eq!(value(KpiId::NewCustomers, None, &stores).value, count(5));
        // abandoned (2 + 1) / (3 + 9 orders)
        assert_eq!(
            value(KpiId::CartAbandonmentRate, None, &stores).value,
            rate(3, 12)
        );
        let got = value(KpiId::ConversionRate, None, &stores);
        assert_eq!(got.value, None);
        assert_eq!(
            got.reason.as_deref(),
            Some("no analytics source linked to store other")
        );
    }

    #[test]
    fn kpis_computed_together_equal_each_computed_alone() {
        let main = main_store();
        // A window-limited load whose customers' history is missing: the customer KPIs of
        // this store are an error, the others are not.
        let mut limited = main_store();
        limited.name = "limited".into();
        let (start, end) = main_window().utc_bounds(&limited.tz);
        limited.partial = Some(Partial {
            spans: vec![(start, end)],
            customers: CustomerHistory::default(),
            line_products: None,
        });
        let mut specs: Vec<KpiSpec> = KpiId::ALL
            .iter()
            .filter(|id| !id.needs_product())
            .map(|id| KpiSpec::new(*id))
            .collect();
        for p in ["P1", "SKU-1", "P2", " P1 "] {
            for id in [KpiId::ProductNetSales, KpiId::ProductUnits] {
                specs.push(KpiSpec {
                    id,
                    product: Some(p.into()),
                });
            }
        }
        specs.push(KpiSpec::new(KpiId::ProductUnits)); // no product: an error of its own
        let w = main_window();
        for stores in [
            vec![(&main, w)],
            vec![(&main, w), (&limited, w)],
            vec![(&limited, w), (&main, w)],
        ] {
            let inputs: Vec<WindowedStore<'_>> = stores
                .iter()
                .map(|(store, range)| WindowedStore {
                    store,
                    range: *range,
                })
                .collect();
            // Recording changes no value.
            let together = compute_many(&specs, &inputs);
            let traced = compute_many_traced(&specs, &inputs, true);
            assert_eq!(together.len(), specs.len());
            assert_eq!(traced.len(), specs.len());
            // Which customer a missing history names depends on hash order: compare the
            // store and what is missing.
            fn shape<T>(r: Result<T, KpiError>) -> Result<Result<T, KpiError>, String> {
                match r {
                    Err(KpiError::Incomplete { store, what }) => Err(format!(
                        "{store}: {}",
                        what.split(" of ").next().unwrap_or("")
                    )),
                    other => Ok(other),
                }
            }
            for ((spec, got), got_traced) in specs.iter().zip(together).zip(traced) {
                let alone = compute_many(std::slice::from_ref(spec), &inputs).remove(0);
                assert_eq!(
                    shape(got_traced.clone().map(|(c, _)| c)),
                    shape(got.clone()),
                    "{spec:?}"
                );
                assert_eq!(shape(got), shape(alone), "{spec:?}");
                // What the shared walk recorded for this KPI is what its own walk records
                // (a customer KPI in the same report adds no customers to the others).
                let traced_alone = compute_traced(spec, &inputs, true);
                assert_eq!(shape(got_traced), shape(traced_alone), "{spec:?}");
            }
        }
        // The traces are not empty: orders for an order KPI, customers for a customer KPI
        // only, each product's own lines.
        let one = [WindowedStore {
            store: &main,
            range: w,
        }];
        let traced = compute_many_traced(&specs, &one, true);
        let trace_of = |id: KpiId, product: Option<&str>| {
            let i = specs
                .iter()
                .position(|s| s.id == id && s.product.as_deref() == product)
                .unwrap();
            traced[i].as_ref().unwrap().1.clone()
        };
        let orders = trace_of(KpiId::Orders, None);
        assert_eq!(orders.orders.len(), 7);
        assert!(orders.customers.is_empty());
        assert_eq!(trace_of(KpiId::NewCustomers, None).customers.len(), 6);
        let p1 = trace_of(KpiId::ProductUnits, Some("P1"));
        let p2 = trace_of(KpiId::ProductUnits, Some("P2"));
        assert!(p1.orders.iter().any(|o| o.product.is_some()));
        assert_ne!(p1, p2);
        // Without recording, nothing is kept.
        let plain = compute_many_traced(&specs, &one, false);
        assert!(plain.iter().flatten().all(|(_, t)| *t == Trace::default()));
        // The store without customer history spoils only the customer KPIs.
        let inputs = [
            WindowedStore {
                store: &main,
                range: w,
            },
            WindowedStore {
                store: &limited,
                range: w,
            },
        ];
        let together = compute_many(
            &[
                KpiSpec::new(KpiId::NewCustomers),
                KpiSpec::new(KpiId::Orders),
            ],
            &inputs,
        );
        assert!(
            matches!(&together[0], Err(KpiError::Incomplete { store, .. }) if store == "limited"),
            "{:?}",
            together[0]
        );
        assert_eq!(together[1].as_ref().unwrap().value, count(14));
        let p1 = compute(
            &KpiSpec {
                id: KpiId::ProductUnits,
                product: Some("P1".into()),
            },
            &inputs,
        )
        .unwrap();
        let p2 = compute(
            &KpiSpec {
                id: KpiId::ProductUnits,
                product: Some("P2".into()),
            },
            &inputs,
        )
        .unwrap();
        assert_ne!(p1, p2, "each product is summed on its own");
    }

    #[test]
    fn mixed_currencies_are_an_error_for_money() {
        let main = main_store();
        let mut us = main_store();
        us.name = "us".into();
        us.currency = Some("USD".into());
        let mut unknown = main_store();
        unknown.name = "unknown".into();
        unknown.currency = None;
        let w = main_window();
        let err = run(&KpiSpec::new(KpiId::NetSales), &[(&main, w), (&us, w)]).unwrap_err();
        assert_eq!(
            err,
            KpiError::MixedCurrencies {
                stores: vec!["main".into(), "us".into()],
                currencies: vec!["EUR".into(), "USD".into()],
            }
        );
        let err = run(
            &KpiSpec::new(KpiId::AverageOrderValue),
            &[(&main, w), (&us, w)],
        );
        assert!(matches!(err, Err(KpiError::MixedCurrencies { .. })));
        // Counts and rates have no currency; a store of unknown currency is not a conflict.
        assert_eq!(
            value(KpiId::Orders, None, &[(&main, w), (&us, w)]).value,
            count(14)
        );
        assert_eq!(
            value(KpiId::GrossSales, None, &[(&main, w), (&unknown, w)]).value,
            money("620.00")
        );
    }

    #[test]
    fn parameter_and_input_errors() {
        let store = main_store();
        let w = main_window();
        for (id, product, want) in [
            (
                KpiId::ProductUnits,
                None,
                KpiError::MissingProduct(KpiId::ProductUnits),
            ),
            (
                KpiId::ProductNetSales,
                Some("  "),
                KpiError::MissingProduct(KpiId::ProductNetSales),
            ),
            (
                KpiId::Orders,
                Some("P1"),
                KpiError::UnexpectedProduct(KpiId::Orders),
            ),
        ] {
            let spec = KpiSpec {
                id,
                product: product.map(Into::into),
            };
            assert_eq!(run(&spec, &[(&store, w)]), Err(want));
        }
        assert_eq!(
            run(&KpiSpec::new(KpiId::Orders), &[]),
            Err(KpiError::NoStores)
        );
    }

    #[test]
    fn implausible_input_is_an_error_not_a_panic() {
        let mut store = main_store();
        store.orders[0].items_gross = Decimal::MAX;
        let w = main_window();
        assert_eq!(
            run(&KpiSpec::new(KpiId::GrossSales), &[(&store, w)]),
            Err(KpiError::Overflow(KpiId::GrossSales))
        );
        // An inverted range covers nothing and does not panic.
        let inverted = range("2026-10-25", "2026-10-20");
        for id in KpiId::ALL {
            let spec = KpiSpec {
                id: *id,
                product: id.needs_product().then(|| "P1".to_string()),
            };
            let _ = run(&spec, &[(&main_store(), inverted)]);
        }
        assert_eq!(
            value(KpiId::Sessions, None, &[(&main_store(), inverted)]).value,
            count(0)
        );
    }

    #[test]
    fn fractional_units_round_down() {
        let mut o = order(
            "o",
            "2026-01-01T10:00:00Z",
            true,
            ["1", "0", "1", "0", "0"],
            None,
            None,
        );
        o.lines = vec![line(Some("P"), None, ["2.5", "5.00", "0", "0"])];
        let store = StoreData {
            name: "s".into(),
            tz: StoreTz::UTC,
            currency: None,
            orders: vec![o],
            sessions: None,
            abandoned_checkouts: None,
            bounces: None,
            pagespeed: None,
            reviews: None,
            unavailable: Default::default(),
            stale: Default::default(),
            partial: None,
        };
        let w = range("2026-01-01", "2026-01-01");
        assert_eq!(
            value(KpiId::ProductUnits, Some("P"), &[(&store, w)]).value,
            count(2)
        );
    }

    #[test]
    fn smaller_ids_compare_as_numbers_when_they_are_numbers() {
        assert_eq!(smaller_id("10", "9"), "9");
        assert_eq!(smaller_id("9", "10"), "9");
        assert_eq!(smaller_id("c10", "c9"), "c10");
        assert_eq!(smaller_id("7", "c1"), "7");
    }
}
