//! The integration-test binary: black-box tests against the simulated store over real HTTP.

mod analytics;
mod cli;
mod concurrency;
mod helpers;
mod limits;
mod listing_faults;
mod pages_in_flight;
mod resilience;
mod secrets;
mod shopify;
mod shopify_sessions;
mod tls;
mod woo_kpis;
