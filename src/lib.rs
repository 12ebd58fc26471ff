//! okrsync: keeps OKR key results current from online-store data.
//!
//! Data flows one way (see `ARCHITECTURE.md`):
//!
//! * [`config`] loads and validates settings; the only module that reads files and env vars.
//! * [`sources`] fetch store APIs over HTTP and produce [`domain`] records.
//! * [`store`] is the only module that knows SQL: migrations, upserts, cursors, the sync log.
//! * [`kpi`] and [`okr`] are pure: values in, values out, no IO and no clock reads.
//! * [`runtime`] holds the clock and the shutdown signal that `sources` and `daemon` share.
//! * [`sinks`] push check-ins (through the outbox) to webhooks and Slack, at least once.
//! * [`text`] holds wording every module shares (`plural`).
//! * [`daemon`] schedules syncs and recomputes key results; [`cli`] is the command line.
//! * The simulated services used by `okrsync demo`, the tests and the benches live in the
//!   `okrsync-sim` crate (`crates/okrsync-sim`); only the `demo` command uses them.

pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod kpi;
pub mod okr;
pub mod output;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod text;
