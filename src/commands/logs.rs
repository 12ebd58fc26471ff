//! `okrsync logs`: the sync log, newest first.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Format;
use crate::config::Settings;
use crate::domain::StoreTz;
use crate::output::{self, LogZone};
use crate::store::RunRow;
use crate::store::Store;

pub(super) async fn logs(
    settings: &Settings,
    db: &Store,
    store: Option<String>,
    limit: u32,
    failed: bool,
    format: Format,
) -> Result<ExitCode> {
    let filtered = store.is_some() || failed;
    let what = match (&store, failed) {
        (Some(s), true) => format!("No failed or partial runs of `{s}` in the sync log."),
        (Some(s), false) => format!(
            "No runs of `{s}` in the sync log (check the name: stores and analytics sources are listed by name)."
        ),
        (None, true) => "No failed or partial runs in the sync log.".to_string(),
        (None, false) => String::new(),
    };
    let runs = db.runs(store, limit, failed).await?;
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&runs)?),
        Format::Table => {
            if runs.is_empty() {
                if filtered {
                    crate::outln!("{what}");
                } else {
                    crate::outln!("No sync runs recorded yet: run `okrsync sync`.");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let zone = log_zone(settings, db, &runs).await?;
            crate::out!("{}", output::runs_table(&runs, &zone));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The zone the listed runs are shown in: their stores' zone when they all share one that a
/// sync has read (an analytics source's runs go with the stores it serves; deliveries have
/// no zone), else this computer's zone.
async fn log_zone(settings: &Settings, db: &Store, runs: &[RunRow]) -> Result<LogZone> {
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        match settings.analytics.iter().find(|a| a.name == r.store) {
            Some(a) => names.extend(a.stores.iter().map(String::as_str)),
            None => names.push(&r.store),
        }
    }
    names.sort_unstable();
    names.dedup();
    let mut zones: Vec<String> = Vec::new();
    for name in names {
        if let Some(tz) = db.store_row(name).await?.and_then(|row| row.timezone) {
            zones.push(tz);
        }
    }
    zones.sort_unstable();
    zones.dedup();
    Ok(match zones.as_slice() {
        [one] => StoreTz::parse(one).map_or(LogZone::Machine, LogZone::Store),
        _ => LogZone::Machine,
    })
}
