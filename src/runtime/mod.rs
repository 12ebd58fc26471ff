//! What long work needs from the process that runs it, whoever that is (the daemon, a one-off
//! command, a test): the [`Clock`] every read of "now" goes through, and [`Shutdown`], the
//! signal that stops work after the page in flight. `sources` and `daemon` both use it; it
//! depends on nothing of ours.

mod clock;
mod shutdown;

pub use clock::Clock;
pub use shutdown::{Shutdown, ShutdownTrigger};
