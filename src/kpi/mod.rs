//! KPI definitions and windows (pure: no IO, no clock reads). TEMPORARY STUB, replaced on merge.
#![allow(dead_code, unused)]
use crate::domain::{Money, StoreTz};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

pub struct OrderFacts {
    pub order_id: String,
    pub created_at: DateTime<Utc>,
    pub counted: bool,
    pub items_gross: Money,
    pub discounts: Money,
    pub total: Money,
    pub refunded: Money,
    pub refunded_items: Money,
    pub customer_id: Option<String>,
    pub email_hash: Option<String>,
    pub lines: Vec<LineFacts>,
}
pub struct LineFacts {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: Decimal,
    pub total: Money,
    pub refunded_quantity: Decimal,
    pub refunded_amount: Money,
}
pub struct StoreData {
    pub name: String,
    pub tz: StoreTz,
    pub currency: Option<String>,
    pub orders: Vec<OrderFacts>,
    pub sessions: Option<std::collections::BTreeMap<NaiveDate, u64>>,
    pub abandoned_checkouts: Option<Vec<DateTime<Utc>>>,
}
pub struct WindowedStore<'a> {
    pub store: &'a StoreData,
    pub range: DateRange,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KpiId {
    Orders,
    ProductUnits,
}
impl KpiId {
    pub const ALL: &[KpiId] = &[KpiId::Orders];
    pub fn as_str(self) -> &'static str {
        "orders"
    }
    pub fn needs_product(self) -> bool {
        false
    }
    pub fn kind(self) -> ValueKind {
        ValueKind::Count
    }
}
impl FromStr for KpiId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(KpiId::Orders)
    }
}
pub enum ValueKind {
    Count,
    Money,
    Rate,
}
#[derive(Clone, Debug)]
pub struct KpiSpec {
    pub id: KpiId,
    pub product: Option<String>,
}
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Count(i64),
    Money(Decimal),
    Rate(Decimal),
}
impl Value {
    pub fn as_decimal(&self) -> Decimal {
        todo!()
    }
    pub fn to_json(&self) -> serde_json::Value {
        todo!()
    }
    pub fn display(&self) -> String {
        todo!()
    }
}
pub struct Computed {
    pub value: Option<Value>,
    pub reason: Option<String>,
}
#[derive(thiserror::Error, Debug)]
pub enum KpiError {
    #[error("x")]
    X,
}
pub fn compute(spec: &KpiSpec, inputs: &[WindowedStore<'_>]) -> Result<Computed, KpiError> {
    todo!()
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}
impl DateRange {
    pub fn utc_bounds(&self, tz: &StoreTz) -> (DateTime<Utc>, DateTime<Utc>) {
        todo!()
    }
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSpec {
    Today,
}
impl FromStr for WindowSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(WindowSpec::Today)
    }
}
impl WindowSpec {
    pub fn as_str(&self) -> String {
        todo!()
    }
    pub fn resolve(&self, today: NaiveDate) -> DateRange {
        todo!()
    }
    pub fn period(&self, today: NaiveDate) -> DateRange {
        todo!()
    }
}
