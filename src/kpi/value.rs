//! KPI identifiers, their values and how values are printed (JSON and tables), plus the
//! errors KPI code reports.
//!
//! Values are exact decimals; rounding happens only here, when a value is printed:
//! money to 2 decimals, rates to 4 decimals as fractions (both half away from zero).

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::Money;

/// The KPIs of `kpi-definitions.md`, one variant per KPI id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KpiId {
    Orders,
    GrossSales,
    Discounts,
    Returns,
    NetSales,
    TotalSales,
    AverageOrderValue,
    RepeatPurchaseRate,
    ReturningCustomerRate,
    NewCustomers,
    RefundRate,
    Sessions,
    ConversionRate,
    RevenuePerSession,
    CartAbandonmentRate,
    ProductNetSales,
    ProductUnits,
    BounceRate,
    PagespeedScore,
    LcpSeconds,
    ReviewsCount,
    VerifiedReviewsCount,
    AverageRating,
}

/// What a KPI's value measures, which decides how it is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A whole number (orders, customers, sessions, units).
    Count,
    /// An amount in the store's currency.
    Money,
    /// A fraction in [0, 1] (0.25, not 25).
    Rate,
    /// A plain decimal number that is neither money nor a fraction: a score (0–100), seconds,
    /// a star rating. Printed with 2 decimals.
    Number,
}

impl KpiId {
    /// Every KPI, in the order the docs list them.
    pub const ALL: &[KpiId] = &[
        KpiId::Orders,
        KpiId::GrossSales,
        KpiId::Discounts,
        KpiId::Returns,
        KpiId::NetSales,
        KpiId::TotalSales,
        KpiId::AverageOrderValue,
        KpiId::RepeatPurchaseRate,
        KpiId::ReturningCustomerRate,
        KpiId::NewCustomers,
        KpiId::RefundRate,
        KpiId::Sessions,
        KpiId::ConversionRate,
        KpiId::RevenuePerSession,
        KpiId::CartAbandonmentRate,
        KpiId::ProductNetSales,
        KpiId::ProductUnits,
        KpiId::BounceRate,
        KpiId::PagespeedScore,
        KpiId::LcpSeconds,
        KpiId::ReviewsCount,
        KpiId::VerifiedReviewsCount,
        KpiId::AverageRating,
    ];

    /// The id used in config files, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            KpiId::Orders => "orders",
            KpiId::GrossSales => "gross_sales",
            KpiId::Discounts => "discounts",
            KpiId::Returns => "returns",
            KpiId::NetSales => "net_sales",
            KpiId::TotalSales => "total_sales",
            KpiId::AverageOrderValue => "average_order_value",
            KpiId::RepeatPurchaseRate => "repeat_purchase_rate",
            KpiId::ReturningCustomerRate => "returning_customer_rate",
            KpiId::NewCustomers => "new_customers",
            KpiId::RefundRate => "refund_rate",
            KpiId::Sessions => "sessions",
            KpiId::ConversionRate => "conversion_rate",
            KpiId::RevenuePerSession => "revenue_per_session",
            KpiId::CartAbandonmentRate => "cart_abandonment_rate",
            KpiId::ProductNetSales => "product_net_sales",
            KpiId::ProductUnits => "product_units",
            KpiId::BounceRate => "bounce_rate",
            KpiId::PagespeedScore => "pagespeed_score",
            KpiId::LcpSeconds => "lcp_seconds",
            KpiId::ReviewsCount => "reviews_count",
            KpiId::VerifiedReviewsCount => "verified_reviews_count",
            KpiId::AverageRating => "average_rating",
        }
    }

    /// Whether the value is a count, money or a rate.
    pub fn kind(self) -> ValueKind {
        match self {
            KpiId::Orders
            | KpiId::NewCustomers
            | KpiId::Sessions
            | KpiId::ProductUnits
            | KpiId::ReviewsCount
            | KpiId::VerifiedReviewsCount => ValueKind::Count,
            KpiId::PagespeedScore | KpiId::LcpSeconds | KpiId::AverageRating => ValueKind::Number,
            KpiId::GrossSales
            | KpiId::Discounts
            | KpiId::Returns
            | KpiId::NetSales
            | KpiId::TotalSales
            | KpiId::AverageOrderValue
            | KpiId::RevenuePerSession
            | KpiId::ProductNetSales => ValueKind::Money,
            KpiId::RepeatPurchaseRate
            | KpiId::ReturningCustomerRate
            | KpiId::RefundRate
            | KpiId::ConversionRate
            | KpiId::CartAbandonmentRate
            | KpiId::BounceRate => ValueKind::Rate,
        }
    }

    /// Whether the KPI takes a `product` parameter (a product id or SKU).
    pub fn needs_product(self) -> bool {
        matches!(self, KpiId::ProductNetSales | KpiId::ProductUnits)
    }

    /// Whether the KPI may take a `product` parameter without needing one (the review KPIs:
    /// without it they cover every product).
    pub fn accepts_product(self) -> bool {
        self.needs_product()
            || matches!(
                self,
                KpiId::ReviewsCount | KpiId::VerifiedReviewsCount | KpiId::AverageRating
            )
    }
}

/// The valid KPI ids, comma-separated, for error messages.
fn valid_kpis() -> String {
    let ids: Vec<&str> = KpiId::ALL.iter().map(|k| k.as_str()).collect();
    ids.join(", ")
}

impl FromStr for KpiId {
    type Err = KpiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        KpiId::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| KpiError::UnknownKpi(s.trim().to_string()))
    }
}

impl fmt::Display for KpiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to compute: a KPI and, for product KPIs, the product (id or SKU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KpiSpec {
    pub id: KpiId,
    pub product: Option<String>,
}

impl KpiSpec {
    /// A KPI without a product parameter.
    pub fn new(id: KpiId) -> KpiSpec {
        KpiSpec { id, product: None }
    }
}

/// A defined KPI value, exact (never rounded).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Count(i64),
    Money(Money),
    /// A fraction in [0, 1].
    Rate(Decimal),
    /// A score, a duration in seconds or a rating (see [`ValueKind::Number`]).
    Number(Decimal),
}

impl Value {
    /// A value of `kind` from its exact decimal (as stored in check-ins).
    pub fn of_kind(kind: ValueKind, d: Decimal) -> Value {
        match kind {
            ValueKind::Count => d.to_i64().map_or(Value::Number(d), Value::Count),
            ValueKind::Money => Value::Money(d),
            ValueKind::Rate => Value::Rate(d),
            ValueKind::Number => Value::Number(d),
        }
    }

    /// The exact value as a decimal (for progress computations).
    pub fn as_decimal(&self) -> Decimal {
        match self {
            Value::Count(n) => Decimal::from(*n),
            Value::Money(d) | Value::Rate(d) | Value::Number(d) => *d,
        }
    }

    /// The JSON form: counts as integers, money as decimal strings with 2 decimals
    /// (`"1234.50"`), rates as numbers rounded to 4 decimals (`0.2143`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Count(n) => serde_json::Value::from(*n),
            Value::Money(d) => serde_json::Value::String(money_text(*d)),
            Value::Rate(d) => {
                let r = round(*d, 4);
                match r.to_f64().and_then(serde_json::Number::from_f64) {
                    Some(n) => serde_json::Value::Number(n),
                    None => serde_json::Value::String(r.to_string()),
                }
            }
            Value::Number(d) => {
                let r = round(*d, 2);
                match r.to_f64().and_then(serde_json::Number::from_f64) {
                    Some(n) => serde_json::Value::Number(n),
                    None => serde_json::Value::String(r.to_string()),
                }
            }
        }
    }

    /// A change as people read it, with its sign: `+10.00`, `-3`, `+2.50 pp` (rates change
    /// by percentage points). Used where a change is worded (status page, digest).
    pub fn signed_display(&self) -> String {
        let text = match self {
            Value::Rate(_) => format!("{} pp", self.display().trim_end_matches('%')),
            _ => self.display(),
        };
        if text.starts_with('-') {
            text
        } else {
            format!("+{text}")
        }
    }

    /// The text printed in tables: `12`, `1234.50`, `21.43%`.
    pub fn display(&self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Money(d) => money_text(*d),
            Value::Rate(d) => {
                let pct = d.checked_mul(Decimal::ONE_HUNDRED).unwrap_or(*d);
                format!("{}%", fixed(pct, 2))
            }
            Value::Number(d) => fixed(*d, 2),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Rounds half away from zero to `dp` decimals.
fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Rounds to exactly `dp` decimals and prints them all (`1234.5` → `1234.50`).
fn fixed(d: Decimal, dp: u32) -> String {
    let mut r = round(d, dp);
    r.rescale(dp);
    if r.is_zero() {
        r.set_sign_positive(true); // never print "-0.00"
    }
    r.to_string()
}

fn money_text(d: Money) -> String {
    fixed(d, 2)
}

/// A KPI's value over a window, or why it has none.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    /// `None` when the KPI is undefined (null in JSON, never 0 or NaN).
    pub value: Option<Value>,
    /// Why `value` is `None` ("no orders in window", …). With a value, an optional note on
    /// what it covers ("sessions known through D; later days left out").
    pub reason: Option<String>,
}

impl Computed {
    pub(crate) fn value(v: Value) -> Computed {
        Computed {
            value: Some(v),
            reason: None,
        }
    }

    pub(crate) fn null(reason: impl Into<String>) -> Computed {
        Computed {
            value: None,
            reason: Some(reason.into()),
        }
    }
}

/// Why a KPI could not be computed or parsed. Each message says what to do about it.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum KpiError {
    #[error(
        "cannot add up money across stores in different currencies ({}); compute this KPI for one store at a time",
        pairs(.stores, .currencies)
    )]
    MixedCurrencies {
        /// Store names, parallel to `currencies`.
        stores: Vec<String>,
        currencies: Vec<String>,
    },
    #[error("KPI `{0}` needs a product: set `product` to a product id or SKU")]
    MissingProduct(KpiId),
    #[error(
        "KPI `{0}` takes no product; remove `product` or use product_net_sales / product_units"
    )]
    UnexpectedProduct(KpiId),
    #[error("no store to compute the KPI for; name a store or configure at least one")]
    NoStores,
    #[error("KPI `{0}` does not fit in a decimal number; check the store's order amounts")]
    Overflow(KpiId),
    #[error("unknown KPI `{0}`; valid KPIs: {list}", list = valid_kpis())]
    UnknownKpi(String),
    #[error("invalid window `{input}`: {reason}")]
    InvalidWindow { input: String, reason: String },
    #[error(
        "the data loaded for store {store} does not include {what}; this is a bug in okrsync, please report it"
    )]
    Incomplete { store: String, what: String },
}

fn pairs(stores: &[String], currencies: &[String]) -> String {
    let v: Vec<String> = stores
        .iter()
        .zip(currencies)
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn ids_round_trip_and_are_unique() {
        for k in KpiId::ALL {
            assert_eq!(k.as_str().parse::<KpiId>().unwrap(), *k);
        }
        let mut names: Vec<&str> = KpiId::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 23);
        assert_eq!(" Net_Sales ".parse::<KpiId>().unwrap(), KpiId::NetSales);
    }

    #[test]
    fn unknown_kpi_lists_valid_ids() {
        let err = "revenue".parse::<KpiId>().unwrap_err().to_string();
        assert!(err.contains("`revenue`"), "{err}");
        for k in KpiId::ALL {
            assert!(err.contains(k.as_str()), "{err} lacks {k}");
        }
    }

    #[test]
    fn kinds_and_product_flags() {
        let cases = [
            (KpiId::Orders, ValueKind::Count, false),
            (KpiId::NewCustomers, ValueKind::Count, false),
            (KpiId::Sessions, ValueKind::Count, false),
            (KpiId::ProductUnits, ValueKind::Count, true),
            (KpiId::GrossSales, ValueKind::Money, false),
            (KpiId::AverageOrderValue, ValueKind::Money, false),
            (KpiId::RevenuePerSession, ValueKind::Money, false),
            (KpiId::ProductNetSales, ValueKind::Money, true),
            (KpiId::RefundRate, ValueKind::Rate, false),
            (KpiId::ConversionRate, ValueKind::Rate, false),
            (KpiId::CartAbandonmentRate, ValueKind::Rate, false),
        ];
        for (k, kind, product) in cases {
            assert_eq!(k.kind(), kind, "{k}");
            assert_eq!(k.needs_product(), product, "{k}");
        }
        assert_eq!(KpiId::ALL.iter().filter(|k| k.needs_product()).count(), 2);
    }

    #[test]
    fn json_and_display() {
        // (value, json text, display)
        let cases = [
            (Value::Count(12), "12", "12"),
            (Value::Count(-3), "-3", "-3"),
            (Value::Money(dec("1234.5")), "\"1234.50\"", "1234.50"),
            (Value::Money(dec("1234.505")), "\"1234.51\"", "1234.51"),
            (Value::Money(dec("0.004")), "\"0.00\"", "0.00"),
            (Value::Money(dec("-0.001")), "\"0.00\"", "0.00"),
            (Value::Money(dec("-12.345")), "\"-12.35\"", "-12.35"),
            (Value::Money(dec("7")), "\"7.00\"", "7.00"),
            // 3/14 = 0.214285…
            (Value::Rate(dec("3") / dec("14")), "0.2143", "21.43%"),
            (Value::Rate(dec("0.25")), "0.25", "25.00%"),
            (Value::Rate(dec("0.00005")), "0.0001", "0.01%"),
            (Value::Rate(Decimal::ONE), "1.0", "100.00%"),
            (Value::Rate(Decimal::ZERO), "0.0", "0.00%"),
            (Value::Number(dec("4.567")), "4.57", "4.57"),
            (Value::Number(dec("92")), "92.0", "92.00"),
        ];
        for (v, json, text) in cases {
            assert_eq!(v.to_json().to_string(), json, "{v:?}");
            assert_eq!(v.display(), text, "{v:?}");
        }
    }

    #[test]
    fn as_decimal_is_exact() {
        assert_eq!(Value::Count(5).as_decimal(), dec("5"));
        assert_eq!(Value::Money(dec("1.005")).as_decimal(), dec("1.005"));
        assert_eq!(Value::Rate(dec("0.33333")).as_decimal(), dec("0.33333"));
    }

    #[test]
    fn mixed_currency_message_names_stores_and_currencies() {
        let e = KpiError::MixedCurrencies {
            stores: vec!["eu".into(), "us".into()],
            currencies: vec!["EUR".into(), "USD".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("eu: EUR, us: USD"), "{msg}");
        assert!(msg.contains("one store at a time"), "{msg}");
        assert!(
            KpiError::MissingProduct(KpiId::ProductUnits)
                .to_string()
                .contains("product_units")
        );
    }
}
