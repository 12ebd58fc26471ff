//! The integration-test binary: black-box tests against the simulated store over real HTTP.

mod cli;
mod helpers;
mod resilience;
mod secrets;
mod shopify;
mod woo_kpis;
