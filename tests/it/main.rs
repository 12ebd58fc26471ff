//! The integration-test binary: black-box tests against the simulated store over real HTTP.

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

mod analytics;
mod cli;
mod concurrency;
mod explain;
mod helpers;
mod history;
mod kpi_load;
mod limits;
mod listing_faults;
mod onboarding;
mod onboarding_ops;
mod output;
mod pages_in_flight;
mod polling;
mod resilience;
mod secrets;
mod shopify;
mod shopify_sessions;
mod shopify_tap;
mod sinks;
mod status_page;
mod status_server;
mod tls;
mod woo_kpis;
