//! The daemon: runs syncs (one store at a time per store), recomputes key results after each,
//! and schedules it all on cron until shutdown.

pub mod analytics;
mod clock;
pub mod keyresults;
pub mod run;
pub mod scheduler;
mod shutdown;
pub mod sync;

pub use clock::Clock;
pub use shutdown::{Shutdown, ShutdownTrigger};
