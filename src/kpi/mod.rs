//! KPI definitions and windows (pure: no IO, no clock reads).
