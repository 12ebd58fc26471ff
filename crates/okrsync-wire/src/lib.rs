//! Wire knowledge shared by okrsync and its simulated services: what a client and a server
//! speaking the same documented protocol must agree on, and nothing else.
//!
//! * [`oauth1`]: OAuth 1.0a one-legged request signing as WooCommerce verifies it. okrsync signs
//!   with it; the simulated WooCommerce store verifies with it.

pub mod oauth1;
