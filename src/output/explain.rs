//! `okrsync explain` in a terminal and as CSV: rendered from the report's JSON, so that the
//! three formats always show the same entries and values.

use serde_json::Value as Json;

use super::table;
use crate::daemon::explain::ExplainReport;

/// A JSON scalar as a cell: strings bare, null empty.
fn cell(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|x| match x {
                Json::String(s) => s.clone(),
                Json::Object(o) => {
                    // A refund: "amount on date".
                    let at = o
                        .get("created_at")
                        .and_then(Json::as_str)
                        .unwrap_or_default();
                    format!(
                        "{} on {}",
                        cell(o.get("amount")),
                        at.get(..10).unwrap_or(at)
                    )
                }
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

/// The order columns are shown in: what identifies an entry, its amounts, its share, why.
const ORDER: &[&str] = &[
    "list",
    "store",
    "kind",
    "id",
    "number",
    "date",
    "created_at",
    "status",
    "currency",
    "items_gross",
    "discounts",
    "shipping",
    "tax",
    "total",
    "refunded",
    "refunded_items",
    "product_net_sales",
    "product_units",
    "orders_in_window",
    "sessions",
    "bounces",
    "score",
    "lcp_seconds",
    "rating",
    "refunds",
    "orders",
    "numerator",
    "denominator",
    "reason",
];

/// The columns of a list of entries: `lead` first, then every key present, in [`ORDER`]
/// (unknown keys before `refunds`, alphabetically).
fn columns(entries: &[Json], lead: &[&'static str]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for e in entries {
        if let Some(o) = e.as_object() {
            for k in o.keys() {
                if !keys.contains(k) && !lead.contains(&k.as_str()) {
                    keys.push(k.clone());
                }
            }
        }
    }
    let refunds = ORDER.iter().position(|k| *k == "refunds").unwrap_or(0);
    keys.sort_by_key(|k| {
        (
            ORDER.iter().position(|o| o == k).unwrap_or(refunds),
            k.clone(),
        )
    });
    lead.iter().map(|s| (*s).to_string()).chain(keys).collect()
}

fn entries(j: &Json, key: &str) -> Vec<Json> {
    j.get(key)
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The explanation as a terminal report: the value and its rule, the counted entries, then
/// the excluded ones with their reasons.
pub fn explain_table(report: &ExplainReport) -> String {
    let j = report.to_json();
    let w = &j["window"];
    let mut out = format!(
        "{}{} · {} · {}..{} ({})\n",
        report.kpi.id.as_str(),
        report
            .kpi
            .product
            .as_ref()
            .map(|p| format!(" of {p}"))
            .unwrap_or_default(),
        report.store,
        cell(w.get("from")),
        cell(w.get("to")),
        cell(w.get("timezone")),
    );
    let value = match &report.explained {
        Ok(e) => e
            .computed
            .value
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "—".into()),
        Err(_) => "—".into(),
    };
    out.push_str(&format!("value: {value}\n"));
    if let Some(rule) = j["rule"].as_str() {
        let den = match j["denominator"].as_str() {
            Some(d) => format!(" / {d}"),
            None => String::new(),
        };
        out.push_str(&format!("{rule} ({}{den})\n", cell(j.get("numerator"))));
    }
    if let Some(r) = j["reason"].as_str() {
        out.push_str(&format!("note: {r}\n"));
    }
    for (store, names) in &report.sources {
        let from = if names.is_empty() {
            "no source linked".to_string()
        } else {
            names.join(", ")
        };
        out.push_str(&format!("source for store {store}: {from}\n"));
    }
    // Store names only when there are several stores.
    let lead: &[&str] = if report.store == "all" {
        &["store", "kind", "id"]
    } else {
        &["kind", "id"]
    };
    // Narrower than CSV: one currency per store, and long lists cut short.
    let drop = |c: &String| {
        c == "store" && report.store != "all"
            || c == "currency"
            || c == "denominator" && j["denominator"].is_null()
    };
    let short = |c: &str, e: &Json| match (c, e.get(c).and_then(Json::as_array)) {
        ("orders", Some(list)) if list.len() > 4 => {
            let shown: Vec<String> = list[..3].iter().map(|v| cell(Some(v))).collect();
            format!("{}; … ({} orders)", shown.join("; "), list.len())
        }
        _ => cell(e.get(c)),
    };
    for (title, key) in [("counted", "counted"), ("excluded", "excluded")] {
        let list = entries(&j, key);
        out.push_str(&format!("\n{title} ({}):\n", list.len()));
        if list.is_empty() {
            continue;
        }
        let cols: Vec<String> = columns(&list, lead)
            .into_iter()
            .filter(|c| !drop(c))
            .collect();
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| cols.iter().map(|c| short(c, e)).collect())
            .collect();
        let heads: Vec<&str> = cols.iter().map(String::as_str).collect();
        out.push_str(&table(&heads, &rows));
    }
    out
}

/// The explanation as CSV: one row per entry, `list` saying `counted` or `excluded`; the
/// values as in JSON (money `12.50`, rates as fractions), empty when null.
pub fn explain_csv(report: &ExplainReport) -> String {
    let j = report.to_json();
    let mut all = Vec::new();
    for key in ["counted", "excluded"] {
        for mut e in entries(&j, key) {
            if let Some(o) = e.as_object_mut() {
                o.insert("list".into(), Json::String(key.into()));
            }
            all.push(e);
        }
    }
    let cols = columns(&all, &["list", "store", "kind", "id"]);
    let heads: Vec<&str> = cols.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|e| cols.iter().map(|c| cell(e.get(c))).collect())
        .collect();
    super::csv::csv(&heads, &rows)
}
