//! `okrsync export`: KPIs, check-ins or orders as one table for spreadsheets and BI tools.
//! One model, [`Export`], gives both the JSON (an array of objects) and the CSV (a header
//! row, then one row per object, cells as in the JSON).

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::keyresults::{self, HistoryEntry, kpis_report};
use crate::config::{Settings, StoreSelector};
use crate::domain::StoreTz;
use crate::kpi::{Value, WindowSpec};
use crate::store::{Store, StoreError};

/// Rows with named columns.
pub struct Export {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Json>>,
}

impl Export {
    /// An array of objects, keys in column order.
    pub fn to_json(&self) -> Json {
        Json::Array(
            self.rows
                .iter()
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    for (c, v) in self.columns.iter().zip(r) {
                        m.insert((*c).to_string(), v.clone());
                    }
                    Json::Object(m)
                })
                .collect(),
        )
    }

    /// Cells as text: strings bare (money `1234.50`, times `2026-10-05T10:00:00Z`), numbers
    /// as in JSON, booleans `true`/`false`, null empty.
    pub fn cells(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        Json::Null => String::new(),
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect()
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Every KPI of every configured store over `window` at `now`: one row per store and KPI.
pub async fn kpis(
    settings: &Settings,
    db: &Store,
    window: &WindowSpec,
    now: DateTime<Utc>,
) -> Result<Export, StoreError> {
    let mut rows = Vec::new();
    for s in &settings.stores {
        let sel = StoreSelector::Named(s.name.clone());
        let r = kpis_report(settings, db, &sel, window, now, None).await?;
        for (id, v) in &r.values {
            let (value, note) = match v {
                Ok(c) => (c.value.as_ref().map(Value::to_json), c.reason.clone()),
                Err(e) => (None, Some(e.clone())),
            };
            rows.push(vec![
                json!(r.store),
                json!(window.as_str()),
                json!(r.window.range.from.to_string()),
                json!(r.window.range.to.to_string()),
                json!(r.window.timezone),
                json!(id.as_str()),
                value.unwrap_or(Json::Null),
                json!(r.currency),
                json!(note),
            ]);
        }
    }
    Ok(Export {
        columns: vec![
            "store", "window", "from", "to", "timezone", "kpi", "value", "currency", "note",
        ],
        rows,
    })
}

/// Every check-in of every configured key result, oldest first per key result.
pub async fn checkins(settings: &Settings, db: &Store) -> Result<Export, StoreError> {
    let mut rows = Vec::new();
    for kr in &settings.key_results {
        for e in keyresults::history(db, kr).await? {
            let HistoryEntry {
                window_from,
                window_to,
                timezone,
                ..
            } = &e;
            let j = e.to_json();
            rows.push(vec![
                json!(kr.id),
                json!(kr.kpi.id.as_str()),
                j["at"].clone(),
                j["value"].clone(),
                j["progress"].clone(),
                j["status"].clone(),
                json!(window_from),
                json!(window_to),
                json!(timezone),
            ]);
        }
    }
    Ok(Export {
        columns: vec![
            "key_result",
            "kpi",
            "at",
            "value",
            "progress",
            "status",
            "window_from",
            "window_to",
            "timezone",
        ],
        rows,
    })
}

/// Every stored order of every store, whatever its status (`counted` says whether it is a
/// sale), with its local creation day. No customer data.
pub async fn orders(settings: &Settings, db: &Store) -> Result<Export, StoreError> {
    let details = db.all_order_details().await?;
    let mut zones: std::collections::HashMap<String, StoreTz> = Default::default();
    let mut rows = Vec::with_capacity(details.len());
    for o in details {
        if !zones.contains_key(&o.store) {
            let configured = settings.store(&o.store).and_then(|s| s.timezone);
            let stored = db
                .store_row(&o.store)
                .await?
                .and_then(|r| r.timezone)
                .and_then(|t| StoreTz::parse(&t).ok());
            zones.insert(
                o.store.clone(),
                configured.or(stored).unwrap_or(StoreTz::UTC),
            );
        }
        let date = zones[&o.store].local_date(o.created_at);
        let money = |d| Value::Money(d).to_json();
        rows.push(vec![
            json!(o.store),
            json!(o.order_id),
            json!(o.number),
            json!(ts(o.created_at)),
            json!(date.to_string()),
            json!(o.status),
            json!(o.counted),
            json!(o.test),
            json!(o.trashed),
            json!(o.deleted),
            json!(o.currency),
            money(o.items_gross),
            money(o.discounts),
            money(o.shipping),
            money(o.tax),
            money(o.total),
            money(o.refunded),
            money(o.refunded_items),
        ]);
    }
    Ok(Export {
        columns: vec![
            "store",
            "id",
            "number",
            "created_at",
            "date",
            "status",
            "counted",
            "test",
            "trashed",
            "deleted",
            "currency",
            "items_gross",
            "discounts",
            "shipping",
            "tax",
            "total",
            "refunded",
            "refunded_items",
        ],
        rows,
    })
}
