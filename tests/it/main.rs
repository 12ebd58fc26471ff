//! The integration-test binary: black-box tests against the simulated store over real HTTP.

mod analytics;
mod cli;
mod helpers;
mod kpi_load;
mod limits;
mod resilience;
mod secrets;
mod shopify;
mod shopify_sessions;
mod tls;
mod woo_kpis;
