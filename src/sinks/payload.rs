//! The one body of a check-in: webhook body version 1 (`../shared/contracts.md`, Sinks),
//! derived from the key-result report model ([`KrReport::to_json`], also `krs --format json`)
//! and the check-in. Every sink sends this body or renders its own message from it, so no
//! sink builds a second JSON of the same facts.

use serde_json::{Value as Json, json};

use crate::daemon::keyresults::KrReport;
use crate::kpi::Value;
use crate::store::CheckinContext;

/// The webhook body v1 of a check-in of `report` (as `KrReport::to_json` gives it).
/// `at` is the check-in's time; every resend carries this same body.
pub fn checkin_body(report: &KrReport, model: &Json, ctx: &CheckinContext) -> Json {
    let pick = |k: &str| model.get(k).cloned().unwrap_or(Json::Null);
    let previous = ctx
        .previous_value
        .as_deref()
        .and_then(|t| t.parse::<rust_decimal::Decimal>().ok())
        .map(|d| Value::of_kind(report.settings.kpi.id.kind(), d).to_json())
        .unwrap_or(Json::Null);
    json!({
        "version": 1,
        "event": "key_result.checkin",
        "idempotency_key": ctx.idempotency_key,
        "key_result": {
            "id": pick("id"),
            "objective": pick("objective"),
            "title": pick("title"),
            "kpi": pick("kpi"),
            "store": pick("store"),
            "baseline": pick("baseline"),
            "target": pick("target"),
        },
        "window": {
            "from": model.pointer("/window_range/from").cloned().unwrap_or(Json::Null),
            "to": model.pointer("/window_range/to").cloned().unwrap_or(Json::Null),
            "timezone": model.pointer("/window_range/timezone").cloned().unwrap_or(Json::Null),
        },
        "value": pick("current"),
        "previous_value": previous,
        "progress": pick("progress"),
        "status": pick("status"),
        "at": ctx.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

/// The text of a body field for messages and templates: strings as they are, numbers as
/// JSON writes them, null as `—`.
pub fn field_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "—".to_string(),
        other => other.to_string(),
    }
}

/// A field of the v1 body by dotted path (`key_result.title`); top-level names of the
/// key-result object (`title`, `objective`, `kpi`, …) are accepted as short forms.
pub fn lookup<'a>(body: &'a Json, path: &str) -> Option<&'a Json> {
    let pointer = format!("/{}", path.replace('.', "/"));
    body.pointer(&pointer)
        .or_else(|| body.pointer(&format!("/key_result{pointer}")))
}
