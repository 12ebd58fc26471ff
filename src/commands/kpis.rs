//! `okrsync kpis`: every KPI of a store (or all stores) for one window, as a table or JSON.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::{UsageError, selector};
use crate::cli::Format;
use crate::config::{Settings, StoreSelector};
use crate::daemon::Clock;
use crate::daemon::keyresults::{self, KpiReport, Loaded};
use crate::kpi::{KpiId, KpiSpec, WindowSpec};
use crate::output;
use crate::store::Store;

pub(super) async fn kpis(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    store: Option<String>,
    window: &str,
    product: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let sel = selector(settings, store)?;
    let window = WindowSpec::from_str(window).map_err(|e| UsageError(format!("--window: {e}")))?;
    // One instant for loading and computing: the window loaded is the window computed.
    let now = clock.now();
    let loaded = Loaded::load_windows(
        settings,
        db,
        product.is_some(),
        std::slice::from_ref(&window),
        now,
    )
    .await?;
    let mut report = match keyresults::kpi_report(&loaded, &sel, &window, now) {
        Ok(r) => r,
        // Not synced completely yet: every KPI is null with the reason, in the usual shape.
        Err(reason) => {
            let tz = match &sel {
                StoreSelector::Named(n) => settings.store(n).and_then(|s| s.timezone),
                StoreSelector::All => None,
            };
            keyresults::empty_report(&sel, &window, tz, now, &reason)
        }
    };
    if let Some(p) = product {
        add_product_kpis(&loaded, &sel, &window, now, &p, &mut report);
    }
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&report.to_json())?),
        Format::Table => crate::out!("{}", output::kpi_table(&report, &window)),
    }
    Ok(ExitCode::SUCCESS)
}

fn add_product_kpis(
    loaded: &Loaded,
    sel: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    product: &str,
    report: &mut KpiReport,
) {
    for id in [KpiId::ProductNetSales, KpiId::ProductUnits] {
        let spec = KpiSpec {
            id,
            product: Some(product.to_string()),
        };
        report
            .values
            .push((id, keyresults::compute_one(loaded, sel, window, now, &spec)));
    }
}
