//! `okrsync history KR_ID`: a key result's check-ins, oldest first.

use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;

use crate::cli::ListFormat;
use crate::config::Settings;
use crate::daemon::keyresults::{self, HistoryEntry};
use crate::output;
use crate::store::Store;

use super::UsageError;

pub(super) async fn history(
    settings: &Settings,
    db: &Store,
    kr_id: &str,
    since: Option<&str>,
    format: ListFormat,
) -> Result<ExitCode> {
    let Some(kr) = settings.key_results.iter().find(|k| k.id == kr_id) else {
        let ids: Vec<&str> = settings.key_results.iter().map(|k| k.id.as_str()).collect();
        let configured = if ids.is_empty() {
            "none: add [[key_results]] to the config".to_string()
        } else {
            ids.join(", ")
        };
        return Err(UsageError(format!(
            "unknown key result `{kr_id}` (configured: {configured})"
        ))
        .into());
    };
    let since =
        match since {
            Some(s) => Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                UsageError(format!("--since `{s}` is not a date: write YYYY-MM-DD"))
            })?),
            None => None,
        };
    let entries: Vec<HistoryEntry> = keyresults::history(db, kr)
        .await?
        .into_iter()
        .filter(|e| since.is_none_or(|d| e.local_date() >= d))
        .collect();
    match format {
        ListFormat::Json => {
            let arr: Vec<_> = entries.iter().map(HistoryEntry::to_json).collect();
            crate::outln!("{}", serde_json::to_string_pretty(&arr)?);
        }
        ListFormat::Csv => crate::out!("{}", output::history_csv(&entries)),
        ListFormat::Table => {
            if entries.is_empty() {
                crate::outln!(
                    "No check-ins of `{kr_id}`{}: a check-in is recorded when a sync changes its value (run `okrsync sync`).",
                    since.map(|d| format!(" since {d}")).unwrap_or_default()
                );
            } else {
                crate::out!("{}", output::history_table(&entries));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
