//! Key-result progress and status (pure: no IO, no clock reads).
