//! The simulated WooCommerce store behind `okrsync demo` and the integration tests.

pub mod sim_woo;
pub mod woo_data;

pub use sim_woo::{Fault, FaultKind, RequestRecord, SimWoo};
pub use woo_data::{NewLine, NewOrder, SimOrder, SimRefund, SimRefundLine, SimState};
