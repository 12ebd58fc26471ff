//! The simulated WooCommerce store behind `okrsync demo` and the integration tests.
