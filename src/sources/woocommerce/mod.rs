//! WooCommerce REST API v3 source.

pub mod oauth;
