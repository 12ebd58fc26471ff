//! `okrsync explain`: loads what one KPI needs (the same window-limited load as `kpis`) plus
//! the stored orders around the window, and asks `kpi::explain` (pure) what makes the value.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as Json, json};

use super::keyresults::{Loaded, ResolvedWindow, resolved, windowed};
use crate::config::{Settings, StoreSelector};
use crate::kpi::{self, Explained, KpiSpec, Value, WindowSpec};
use crate::store::{Store, StoreError};

/// How far around a window stored orders are shown as "outside the window": the orders that
/// some time zone (UTC−12 to UTC+14: UTC, the shop owner's own, the platform's report) would
/// put inside it.
const MARGIN_HOURS: i64 = 14;

/// A KPI with what makes it: the `explain` report.
pub struct ExplainReport {
    pub kpi: KpiSpec,
    pub store: String,
    pub window: Option<ResolvedWindow>,
    /// Per store, the analytics sources linked for the KPI's feed (sessions, PageSpeed, reviews).
    pub sources: BTreeMap<String, Vec<String>>,
    /// `Err`: why the KPI cannot be explained (not synced, mixed currencies, …).
    pub explained: Result<Explained, String>,
}

/// Explains `spec` for the selection over `window` at `now`.
pub async fn explain_report(
    settings: &Settings,
    db: &Store,
    sel: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    spec: &KpiSpec,
) -> Result<ExplainReport, StoreError> {
    let loaded = Loaded::load_windows(
        settings,
        db,
        spec.id.needs_product() || spec.product.is_some(),
        std::slice::from_ref(window),
        now,
    )
    .await?;
    let store = match sel {
        StoreSelector::All => "all".to_string(),
        StoreSelector::Named(n) => n.clone(),
    };
    let mut report = ExplainReport {
        kpi: spec.clone(),
        store,
        window: None,
        sources: BTreeMap::new(),
        explained: Err(String::new()),
    };
    let stores = match loaded.select(sel) {
        Ok(s) => s,
        Err(e) => {
            // As `kpis` does: the window in the configured time zone, else UTC.
            let tz = match sel {
                StoreSelector::Named(n) => settings.store(n).and_then(|s| s.timezone),
                StoreSelector::All => None,
            };
            let zone = tz.unwrap_or(crate::domain::StoreTz::UTC);
            report.window = Some(ResolvedWindow {
                range: window.resolve(zone.local_date(now)),
                timezone: zone.name(),
            });
            report.explained = Err(e);
            return Ok(report);
        }
    };
    let inputs = windowed(&stores, window, now);
    report.window = resolved(&inputs, window);
    let mut details = Vec::new();
    for w in &inputs {
        let (start, end) = w.range.utc_bounds(&w.store.tz);
        let margin = Duration::hours(MARGIN_HOURS);
        let from = start.checked_sub_signed(margin).unwrap_or(start);
        let to = end.checked_add_signed(margin).unwrap_or(end);
        details.extend(db.order_details(&w.store.name, from, to).await?);
        if let Some(feed) = kpi::feed_of(spec.id) {
            let names: Vec<String> = settings
                .analytics
                .iter()
                .filter(|a| a.provider.feed() == feed && a.stores.contains(&w.store.name))
                .map(|a| format!("{} ({})", a.name, a.provider.name()))
                .collect();
            report.sources.insert(w.store.name.clone(), names);
        }
    }
    report.explained = kpi::explain(spec, &inputs, &details).map_err(|e| e.to_string());
    Ok(report)
}

impl ExplainReport {
    /// The `explain --format json` contract: `kpi`, `store`, `window` `{from, to, timezone}`,
    /// `value` (as in `kpis`), `counted`, `excluded`; plus `product`, `rule`, `reason`,
    /// `numerator`, `denominator` and `sources`.
    pub fn to_json(&self) -> Json {
        let (value, reason, counted, excluded, rule, num, den) = match &self.explained {
            Ok(e) => {
                let (num, den) = match e.totals() {
                    Some((n, d)) => (Some(n), d),
                    None => (None, None),
                };
                (
                    e.computed
                        .value
                        .as_ref()
                        .map(Value::to_json)
                        .unwrap_or(Json::Null),
                    e.computed.reason.clone(),
                    e.counted.iter().map(kpi::Entry::to_json).collect(),
                    e.excluded.iter().map(kpi::Entry::to_json).collect(),
                    Some(e.rule),
                    num.map(|n| n.normalize().to_string()),
                    den.map(|d| d.normalize().to_string()),
                )
            }
            Err(why) => (
                Json::Null,
                Some(why.clone()),
                Vec::new(),
                Vec::new(),
                None,
                None,
                None,
            ),
        };
        json!({
            "kpi": self.kpi.id.as_str(),
            "product": self.kpi.product,
            "store": self.store,
            "window": self.window.as_ref().map(ResolvedWindow::to_json),
            "value": value,
            "reason": reason,
            "rule": rule,
            "numerator": num,
            "denominator": den,
            "sources": self.sources,
            "counted": counted,
            "excluded": excluded,
        })
    }
}
