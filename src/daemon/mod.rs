//! The daemon: runs syncs (one store at a time per store), recomputes key results after each,
//! and schedules it all on cron until shutdown.

pub mod analytics;
pub mod compare;
pub mod explain;
pub mod export;
pub mod http;
pub mod keyresults;
pub mod page;
pub mod run;
pub mod scheduler;
pub mod sync;

// Re-exported for callers that drive the daemon; their home is `runtime`.
pub use crate::runtime::{Clock, Shutdown, ShutdownTrigger};
