//! `okrsync krs`: every key result with its current value, progress and status.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Format;
use crate::config::Settings;
use crate::daemon::Clock;
use crate::daemon::keyresults::{KrReport, current_reports};
use crate::output;
use crate::store::Store;

pub(super) async fn krs(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    format: Format,
) -> Result<ExitCode> {
    let reports = current_reports(settings, db, clock.now()).await?;
    match format {
        Format::Json => {
            let arr: Vec<_> = reports.iter().map(KrReport::to_json).collect();
            crate::outln!("{}", serde_json::to_string_pretty(&arr)?);
        }
        Format::Table => crate::out!("{}", output::kr_table(&reports)),
    }
    Ok(ExitCode::SUCCESS)
}
