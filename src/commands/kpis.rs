//! `okrsync kpis`: every KPI of a store (or all stores) for one window, as a table or JSON.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Result;

use super::{UsageError, selector};
use crate::cli::{CompareArg, Format};
use crate::config::Settings;
use crate::daemon::Clock;
use crate::daemon::{compare, keyresults};
use crate::kpi::{Compare, WindowSpec};
use crate::output;
use crate::store::Store;

#[allow(clippy::too_many_arguments)]
pub(super) async fn kpis(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    store: Option<String>,
    window: &str,
    product: Option<String>,
    format: Format,
    compare: Option<CompareArg>,
) -> Result<ExitCode> {
    let sel = selector(settings, store)?;
    let window = WindowSpec::from_str(window).map_err(|e| UsageError(format!("--window: {e}")))?;
    if let Some(c) = compare {
        let c = match c {
            CompareArg::PreviousPeriod => Compare::PreviousPeriod,
            CompareArg::PreviousYear => Compare::PreviousYear,
        };
        let report = compare::kpis_compare(
            settings,
            db,
            &sel,
            &window,
            clock.now(),
            product.as_deref(),
            c,
        )
        .await?;
        match format {
            Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&report.to_json())?),
            Format::Table => crate::out!("{}", output::compare_table(&report, &window)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report =
        keyresults::kpis_report(settings, db, &sel, &window, clock.now(), product.as_deref())
            .await?;
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&report.to_json())?),
        Format::Table => crate::out!("{}", output::kpi_table(&report, &window)),
    }
    Ok(ExitCode::SUCCESS)
}
