//! `okrsync kpis --compare`: the `kpis` report of a window and of the span it is compared
//! with (`kpi::Compare`, `docs/kpis.md` "Comparing with an earlier period"), and the change.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use super::keyresults::{KpiReport, kpis_report};
use crate::config::{Settings, StoreSelector};
use crate::kpi::{Compare, KpiId, Value, WindowSpec};
use crate::store::{Store, StoreError};

/// A `kpis` report with the same report for the compared span.
pub struct CompareReport {
    pub compare: Compare,
    pub current: KpiReport,
    pub previous: KpiReport,
}

/// Both reports, each computed exactly as `okrsync kpis` computes one window.
pub async fn kpis_compare(
    settings: &Settings,
    db: &Store,
    sel: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    product: Option<&str>,
    compare: Compare,
) -> Result<CompareReport, StoreError> {
    let current = kpis_report(settings, db, sel, window, now, product).await?;
    let previous = kpis_report(settings, db, sel, &window.compared(compare), now, product).await?;
    Ok(CompareReport {
        compare,
        current,
        previous,
    })
}

/// One KPI's value now and in the compared span, and the change.
pub struct Row {
    pub kpi: KpiId,
    pub current: Option<Value>,
    pub previous: Option<Value>,
    /// `current − previous`, of the KPI's kind (a rate changes by a fraction: percentage
    /// points when printed).
    pub change: Option<Value>,
    /// `(current − previous) / |previous|`; `None` when `previous` is 0 or either is null.
    pub relative: Option<Decimal>,
    /// Why the current value is null, or a note on it.
    pub note: Option<String>,
}

fn value_of(r: &KpiReport, id: KpiId) -> (Option<Value>, Option<String>) {
    match r.values.iter().find(|(k, _)| *k == id).map(|(_, v)| v) {
        Some(Ok(c)) => (c.value.clone(), c.reason.clone()),
        Some(Err(e)) => (None, Some(e.clone())),
        None => (None, None),
    }
}

impl CompareReport {
    /// Every KPI of the current report with its compared value and change.
    pub fn rows(&self) -> Vec<Row> {
        self.current
            .values
            .iter()
            .map(|(id, _)| {
                let (current, note) = value_of(&self.current, *id);
                let (previous, _) = value_of(&self.previous, *id);
                let (change, relative) = match (&current, &previous) {
                    (Some(c), Some(p)) => {
                        let (c, p) = (c.as_decimal(), p.as_decimal());
                        let change = c.checked_sub(p).map(|d| Value::of_kind(id.kind(), d));
                        let relative = (!p.is_zero())
                            .then(|| c.checked_sub(p).and_then(|d| d.checked_div(p.abs())))
                            .flatten();
                        (change, relative)
                    }
                    _ => (None, None),
                };
                Row {
                    kpi: *id,
                    current,
                    previous,
                    change,
                    relative,
                    note,
                }
            })
            .collect()
    }

    /// The `kpis --format json` object, unchanged, plus `compare`, `compare_window`,
    /// `previous` (values as in `kpis`), `change` (same kinds) and `change_relative`
    /// (fractions, 4 decimals; null when the earlier value is 0 or either is null).
    pub fn to_json(&self) -> Json {
        let mut j = self.current.to_json();
        let mut previous = serde_json::Map::new();
        let mut change = serde_json::Map::new();
        let mut relative = serde_json::Map::new();
        let or_null = |v: &Option<Value>| v.as_ref().map(Value::to_json).unwrap_or(Json::Null);
        for r in self.rows() {
            let k = r.kpi.as_str().to_string();
            previous.insert(k.clone(), or_null(&r.previous));
            change.insert(k.clone(), or_null(&r.change));
            relative.insert(k, or_null(&r.relative.map(Value::Rate)));
        }
        if let Some(o) = j.as_object_mut() {
            o.insert("compare".into(), json!(self.compare.as_str()));
            o.insert("compare_window".into(), self.previous.window.to_json());
            o.insert("previous".into(), Json::Object(previous));
            o.insert("change".into(), Json::Object(change));
            o.insert("change_relative".into(), Json::Object(relative));
        }
        j
    }
}
