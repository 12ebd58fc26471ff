//! `okrsync logs`: the sync log, newest first.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Format;
use crate::output;
use crate::store::Store;

pub(super) async fn logs(
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
            crate::out!("{}", output::runs_table(&runs));
        }
    }
    Ok(ExitCode::SUCCESS)
}
