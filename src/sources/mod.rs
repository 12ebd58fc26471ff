//! Store and analytics sources.

pub mod woocommerce;
