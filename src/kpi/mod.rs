//! KPI definitions and windows (pure: no IO, no clock reads).
//!
//! [`compute`] turns the orders, sessions and abandoned checkouts of one or more stores, each
//! with its own window of local days ([`DateRange`], resolved from a [`WindowSpec`] in that
//! store's time zone), into one KPI [`Value`] following `docs/kpis.md` and
//! `kpi-definitions.md`. Callers load the data and resolve windows; nothing here touches a
//! database, the network or the clock.

mod compute;
mod customers;
mod explain;
mod value;
mod window;

pub use compute::{
    Feed, LineFacts, OrderFacts, PageSpeedFacts, ReviewFacts, StoreData, Trace, TracedCustomer,
    TracedDay, TracedOrder, WindowedStore, compute, compute_many, feed_of,
};
pub(crate) use customers::smaller_id;
pub use customers::{CustomerHistory, EmailKey, FastMap, Partial};
pub use explain::{Entry, EntryKind, Explained, OrderDetail, RefundDetail, explain};
pub use value::{Computed, KpiError, KpiId, KpiSpec, Value, ValueKind};
pub use window::{Compare, DateRange, WindowSpec};
