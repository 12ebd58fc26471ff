//! `okrsync explain KPI`: what makes a KPI's value (the orders counted, those left out and
//! why, the customers, the days of sessions), from the same computation as `kpis`.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Result;

use super::{UsageError, selector};
use crate::cli::ListFormat;
use crate::config::Settings;
use crate::daemon::Clock;
use crate::daemon::explain::explain_report;
use crate::kpi::{KpiId, KpiSpec, WindowSpec};
use crate::output;
use crate::store::Store;

#[allow(clippy::too_many_arguments)]
pub(super) async fn explain(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    kpi: &str,
    store: Option<String>,
    window: &str,
    product: Option<String>,
    format: ListFormat,
) -> Result<ExitCode> {
    let id = KpiId::from_str(kpi).map_err(|e| UsageError(e.to_string()))?;
    let product = product
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    if id.needs_product() && product.is_none() {
        return Err(UsageError(format!(
            "KPI `{id}` needs a product: add --product with a product id or SKU"
        ))
        .into());
    }
    if product.is_some() && !id.accepts_product() {
        return Err(UsageError(format!(
            "KPI `{id}` takes no product; remove --product (or explain product_net_sales / product_units)"
        ))
        .into());
    }
    let sel = selector(settings, store)?;
    let window = WindowSpec::from_str(window).map_err(|e| UsageError(format!("--window: {e}")))?;
    let spec = KpiSpec { id, product };
    let report = explain_report(settings, db, &sel, &window, clock.now(), &spec).await?;
    match format {
        ListFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&report.to_json())?),
        ListFormat::Csv => crate::out!("{}", output::explain_csv(&report)),
        ListFormat::Table => crate::out!("{}", output::explain_table(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
