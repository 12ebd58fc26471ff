//! The digest: per objective, each key result's value, its change since the previous digest,
//! progress, expected progress and status, and the key results that moved most. Built once
//! (pure: [`build`]) from the key-result report model and the previous digest's stored values,
//! recorded with its outbox entries in one transaction ([`make_digest`]), then rendered per
//! sink kind: the webhook sends the document itself (`type: "digest"`), Slack its `text`,
//! Google Sheets one row per key result in the log tab ([`sheet_rows`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::config::Settings;
use crate::daemon::keyresults::{KrReport, current_reports, decimal_number};
use crate::kpi::{Value, WindowSpec};
use crate::runtime::Clock;
use crate::store::{DigestContext, DigestRecord, DigestValue, OutboxEntry, Store, StoreError};

/// The `event` of a digest document (a check-in's is `key_result.checkin`).
pub const DIGEST_EVENT: &str = "okr.digest";

/// Whether a value of the previous digest compares with today's: a rolling window (today,
/// yesterday, the last N days) always does; a calendar or fixed window only while it is the
/// same window (a new quarter starts from nothing, so "−80 % since last week" would mislead).
fn comparable(window: &WindowSpec, previous_from: Option<&str>, from: Option<&str>) -> bool {
    match window {
        WindowSpec::Today
        | WindowSpec::Yesterday
        | WindowSpec::Last7Days
        | WindowSpec::Last30Days
        | WindowSpec::Last90Days => true,
        _ => previous_from.is_some() && previous_from == from,
    }
}

fn dec(text: Option<&str>) -> Option<Decimal> {
    text.and_then(|t| t.parse().ok())
}

/// Progress as people read it: `46%`.
fn pct(p: Decimal) -> String {
    format!("{}%", (p * Decimal::from(100)).round())
}

/// One key result in a digest.
struct Line<'a> {
    report: &'a KrReport,
    value: Option<Value>,
    at_last: Option<Value>,
    change: Option<Value>,
    progress_change: Option<Decimal>,
    new_window: bool,
}

fn line<'a>(report: &'a KrReport, previous: &HashMap<&str, &DigestValue>) -> Line<'a> {
    let kind = report.settings.kpi.id.kind();
    let from = report.window.as_ref().map(|w| w.range.from.to_string());
    let prev = previous.get(report.settings.id.as_str());
    let same = prev.is_some_and(|p| {
        comparable(
            &report.settings.window,
            p.window_from.as_deref(),
            from.as_deref(),
        )
    });
    let at_last = prev
        .filter(|_| same)
        .and_then(|p| dec(p.value.as_deref()))
        .map(|d| Value::of_kind(kind, d));
    let value = report.current.clone();
    let change = match (&value, &at_last) {
        (Some(v), Some(p)) => Some(Value::of_kind(kind, v.as_decimal() - p.as_decimal())),
        _ => None,
    };
    let progress_change = match (report.progress, prev.filter(|_| same)) {
        (Some(now), Some(p)) => dec(p.progress.as_deref()).map(|before| now - before),
        _ => None,
    };
    Line {
        report,
        value,
        at_last,
        change,
        progress_change,
        new_window: prev.is_some() && !same,
    }
}

/// The digest document and the values it reports (stored with it for the next digest).
/// `reports` in configuration order; objectives appear in the order of their first key result.
pub fn build(
    reports: &[KrReport],
    ctx: &DigestContext,
    top_movers: usize,
) -> (Json, Vec<DigestValue>) {
    let previous: HashMap<&str, &DigestValue> = ctx
        .previous
        .as_ref()
        .map(|p| {
            p.values
                .iter()
                .map(|v| (v.key_result.as_str(), v))
                .collect()
        })
        .unwrap_or_default();
    let lines: Vec<Line<'_>> = reports.iter().map(|r| line(r, &previous)).collect();

    let mut objectives: Vec<(&str, Vec<&Line<'_>>)> = Vec::new();
    for l in &lines {
        let o = l.report.settings.objective.as_str();
        match objectives.iter_mut().find(|(name, _)| *name == o) {
            Some((_, v)) => v.push(l),
            None => objectives.push((o, vec![l])),
        }
    }
    let kr_json = |l: &Line<'_>| {
        let r = l.report;
        let s = &r.settings;
        json!({
            "id": s.id,
            "title": s.title,
            "kpi": s.kpi.id.as_str(),
            "window": r.window.as_ref().map(|w| w.to_json()),
            "value": l.value.as_ref().map(Value::to_json),
            "value_at_last_digest": l.at_last.as_ref().map(Value::to_json),
            "change": l.change.as_ref().map(Value::to_json),
            "new_window": l.new_window,
            "progress": r.progress.map(|p| decimal_number(p.round_dp(4))),
            "progress_change": l.progress_change.map(|p| decimal_number(p.round_dp(4))),
            "expected_progress": r.expected.map(|p| decimal_number(p.round_dp(4))),
            "status": r.status.map(|s| s.as_str()),
            "reason": r.reason,
        })
    };

    let mut movers: Vec<&Line<'_>> = lines
        .iter()
        .filter(|l| l.progress_change.is_some_and(|c| !c.is_zero()))
        .collect();
    movers.sort_by(|a, b| {
        let (x, y) = (
            a.progress_change.unwrap_or_default().abs(),
            b.progress_change.unwrap_or_default().abs(),
        );
        y.cmp(&x)
            .then_with(|| a.report.settings.id.cmp(&b.report.settings.id))
    });
    movers.truncate(top_movers);

    let since = ctx.previous.as_ref().map(|p| p.at);
    let body = json!({
        "version": 1,
        "type": "digest",
        "event": DIGEST_EVENT,
        "idempotency_key": ctx.idempotency_key,
        "at": iso(ctx.at),
        "since": since.map(iso),
        "objectives": objectives.iter().map(|(o, ls)| json!({
            "objective": o,
            "key_results": ls.iter().map(|l| kr_json(l)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "top_movers": movers.iter().map(|l| json!({
            "id": l.report.settings.id,
            "title": l.report.settings.title,
            "objective": l.report.settings.objective,
            "change": l.change.as_ref().map(Value::to_json),
            "progress_change": l.progress_change.map(|p| decimal_number(p.round_dp(4))),
        })).collect::<Vec<_>>(),
        "text": text(&objectives, &movers, ctx.at, since),
    });
    let values = lines
        .iter()
        .map(|l| DigestValue {
            key_result: l.report.settings.id.clone(),
            value: l
                .value
                .as_ref()
                .map(|v| v.as_decimal().normalize().to_string()),
            progress: l.report.progress.map(|p| p.round_dp(4).to_string()),
            window_from: l.report.window.as_ref().map(|w| w.range.from.to_string()),
        })
        .collect();
    (body, values)
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The digest as a message (Slack mrkdwn; plain enough for Teams and e-mail).
fn text(
    objectives: &[(&str, Vec<&Line<'_>>)],
    movers: &[&Line<'_>],
    at: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> String {
    let mut out = format!("*OKR digest* {}", at.format("%Y-%m-%d"));
    if let Some(s) = since {
        out += &format!(" (changes since {})", s.format("%Y-%m-%d"));
    }
    for (objective, lines) in objectives {
        out += &format!("\n\n*{objective}*");
        for l in lines {
            let r = l.report;
            let value = l.value.as_ref().map_or("—".to_string(), Value::display);
            let change = match (&l.change, l.new_window) {
                (Some(c), _) => format!(" ({})", c.signed_display()),
                (None, true) => " (new window)".to_string(),
                (None, false) => String::new(),
            };
            let progress = match (r.progress, r.expected) {
                (Some(p), Some(e)) => format!(" · {} of target (expected {})", pct(p), pct(e)),
                (Some(p), None) => format!(" · {} of target", pct(p)),
                _ => String::new(),
            };
            let status = match r.status.map(|s| s.as_str()) {
                Some("on_track") => "on track",
                Some("at_risk") => "at risk",
                Some("off_track") => "off track",
                _ => "no status",
            };
            out += &format!(
                "\n• {}: {value}{change}{progress} · {status}",
                r.settings.title
            );
        }
    }
    if !movers.is_empty() {
        out += "\n\n*Moved most*: ";
        out += &movers
            .iter()
            .map(|l| {
                let pts = l.progress_change.unwrap_or_default() * Decimal::from(100);
                let pts = pts.round();
                let sign = if pts.is_sign_negative() { "" } else { "+" };
                format!("{} {sign}{pts} pts", l.report.settings.title)
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    out
}

/// The Google Sheets log-tab rows of a digest: one per key result, the check-in columns
/// (time, key result, value, progress, status) then `digest` and the change since the last
/// digest, so digest rows are told apart from check-in rows.
pub fn sheet_rows(body: &Json) -> Vec<Json> {
    let at = body.get("at").cloned().unwrap_or(Json::Null);
    let mut rows = Vec::new();
    for o in body
        .get("objectives")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        for kr in o
            .get("key_results")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let num = |k: &str| {
                kr.get(k)
                    .and_then(|v| super::value_number(&json!({ "value": v })))
                    .map(Json::Number)
                    .unwrap_or(Json::Null)
            };
            rows.push(json!([
                at,
                kr.get("id").cloned().unwrap_or(Json::Null),
                num("value"),
                kr.get("progress").cloned().unwrap_or(Json::Null),
                kr.get("status").cloned().unwrap_or(Json::Null),
                "digest",
                num("change"),
            ]));
        }
    }
    rows
}

/// Makes a digest now, if `[digest]` is configured: the key results as `okrsync krs` sees
/// them, compared with the previous digest, recorded with one outbox entry per digest sink in
/// one transaction. Returns the digest's id.
pub async fn make_digest(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
) -> Result<Option<i64>, StoreError> {
    let Some(d) = &settings.digest else {
        return Ok(None);
    };
    let now = clock.now();
    let reports = current_reports(settings, db, now).await?;
    let (sinks, top) = (d.sinks.clone(), d.top_movers);
    let id = db
        .record_digest(now, move |ctx| {
            let (body, values) = build(&reports, ctx, top);
            let text = body.to_string();
            DigestRecord {
                entries: sinks
                    .iter()
                    .map(|s| OutboxEntry {
                        sink: s.clone(),
                        body: text.clone(),
                    })
                    .collect(),
                body: text,
                values,
            }
        })
        .await?;
    tracing::info!(digest = id, "digest queued");
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::keyresults::ResolvedWindow;
    use crate::kpi::DateRange;
    use crate::okr::Status;
    use crate::store::PreviousDigest;
    use chrono::{NaiveDate, TimeZone};

    fn settings(
        id: &str,
        objective: &str,
        kpi: &str,
        window: &str,
    ) -> crate::config::KeyResultSettings {
        // A rate's target is a fraction (config refuses 100 as a percentage).
        let target = if kpi.ends_with("_rate") { "1" } else { "100" };
        let toml = format!(
            r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[key_results]]
id = "{id}"
objective = "{objective}"
title = "T {id}"
kpi = "{kpi}"
store = "main"
window = "{window}"
baseline = 0
target = {target}

[[analytics]]
name = "plausible"
provider = "plausible"
site_id = "shop.example.com"
api_key = "k"
stores = ["main"]
"#
        );
        crate::config::load_from_str(&toml, std::path::Path::new("."), None, &Default::default())
            .unwrap()
            .key_results
            .remove(0)
    }

    fn report(
        id: &str,
        objective: &str,
        kpi: &str,
        window: &str,
        from: (i32, u32, u32),
        value: Option<Value>,
        progress: Option<&str>,
    ) -> KrReport {
        let from = NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap();
        KrReport {
            settings: settings(id, objective, kpi, window),
            window: Some(ResolvedWindow {
                range: DateRange {
                    from,
                    to: from + chrono::Duration::days(29),
                },
                timezone: "Europe/Paris".into(),
            }),
            current: value,
            progress: progress.map(|p| p.parse().unwrap()),
            expected: Some("0.5".parse().unwrap()),
            status: Some(Status::AtRisk),
            reason: None,
            note: None,
            updated_at: None,
            previous: None,
            data_as_of: None,
            deliveries: Vec::new(),
            fixed: None,
            period_start: None,
        }
    }

    fn ctx(previous: Option<Vec<DigestValue>>) -> DigestContext {
        DigestContext {
            digest_id: 2,
            idempotency_key: "okrsync-digest-k".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 12, 8, 0, 0).unwrap(),
            previous: previous.map(|values| PreviousDigest {
                id: 1,
                at: Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap(),
                values,
            }),
        }
    }

    fn prev(kr: &str, value: Option<&str>, progress: Option<&str>, from: &str) -> DigestValue {
        DigestValue {
            key_result: kr.into(),
            value: value.map(Into::into),
            progress: progress.map(Into::into),
            window_from: Some(from.into()),
        }
    }

    fn kr<'a>(body: &'a Json, id: &str) -> &'a Json {
        body["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|o| o["key_results"].as_array().unwrap())
            .find(|k| k["id"] == id)
            .unwrap()
    }

    #[test]
    fn changes_are_measured_from_the_previous_digest_values_of_each_kind() {
        let reports = vec![
            report(
                "orders",
                "Grow",
                "orders",
                "last_30_days",
                (2025, 12, 14),
                Some(Value::Count(12)),
                Some("0.12"),
            ),
            report(
                "aov",
                "Grow",
                "average_order_value",
                "last_30_days",
                (2025, 12, 14),
                Some(Value::Money("84.20".parse().unwrap())),
                Some("0.842"),
            ),
            report(
                "conv",
                "Convert",
                "conversion_rate",
                "last_30_days",
                (2025, 12, 14),
                Some(Value::Rate("0.0250".parse().unwrap())),
                Some("0.25"),
            ),
        ];
        let previous = vec![
            // Rolling windows compare although the window moved by a week.
            prev("orders", Some("9"), Some("0.09"), "2025-12-07"),
            prev("aov", Some("90.5"), Some("0.905"), "2025-12-07"),
            prev("conv", Some("0.0208"), Some("0.208"), "2025-12-07"),
        ];
        let (body, values) = build(&reports, &ctx(Some(previous)), 3);
        assert_eq!(body["type"], "digest");
        assert_eq!(body["event"], DIGEST_EVENT);
        assert_eq!(body["version"], 1);
        assert_eq!(body["since"], "2026-01-05T08:00:00Z");
        assert_eq!(body["idempotency_key"], "okrsync-digest-k");
        assert_eq!(kr(&body, "orders")["change"], 3);
        assert_eq!(kr(&body, "orders")["value_at_last_digest"], 9);
        assert_eq!(
            kr(&body, "aov")["change"],
            "-6.30",
            "money stays a decimal string"
        );
        assert_eq!(kr(&body, "conv")["change"], 0.0042);
        assert_eq!(kr(&body, "orders")["progress_change"], 0.03);
        // Objectives in order of their first key result.
        let names: Vec<&Json> = body["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["objective"])
            .collect();
        assert_eq!(names, vec!["Grow", "Convert"]);
        // Moved most by progress, largest move first.
        let movers: Vec<&Json> = body["top_movers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["id"])
            .collect();
        assert_eq!(movers, vec!["aov", "conv", "orders"]);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("• T orders: 12 (+3) · 12% of target (expected 50%) · at risk"),
            "{text}"
        );
        assert!(text.contains("T aov: 84.20 (-6.30)"), "{text}");
        assert!(text.contains("T conv: 2.50% (+0.42 pp)"), "{text}");
        assert!(
            text.contains("*Moved most*: T aov -6 pts, T conv +4 pts, T orders +3 pts"),
            "{text}"
        );
        // What is stored for the next digest: exact decimal text.
        assert_eq!(values[1].value.as_deref(), Some("84.2"));
        assert_eq!(values[2].window_from.as_deref(), Some("2025-12-14"));
    }

    #[test]
    fn first_digest_new_calendar_window_and_undefined_values_have_no_change() {
        let reports = vec![
            report(
                "q",
                "Grow",
                "orders",
                "quarter_to_date",
                (2026, 1, 1),
                Some(Value::Count(4)),
                Some("0.04"),
            ),
            report(
                "none",
                "Grow",
                "orders",
                "last_30_days",
                (2025, 12, 14),
                None,
                None,
            ),
        ];
        let (first, _) = build(&reports, &ctx(None), 3);
        assert_eq!(first["since"], Json::Null);
        assert_eq!(kr(&first, "q")["change"], Json::Null);
        assert_eq!(first["top_movers"], json!([]));

        let previous = vec![
            prev("q", Some("80"), Some("0.8"), "2025-10-01"),
            prev("none", Some("5"), Some("0.05"), "2025-12-07"),
        ];
        let (body, _) = build(&reports, &ctx(Some(previous)), 3);
        assert_eq!(
            kr(&body, "q")["change"],
            Json::Null,
            "a new quarter is no comparison"
        );
        assert_eq!(kr(&body, "q")["new_window"], true);
        assert_eq!(kr(&body, "none")["change"], Json::Null);
        assert_eq!(kr(&body, "none")["value_at_last_digest"], 5);
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .contains("T q: 4 (new window)")
        );
        assert_eq!(body["top_movers"], json!([]));
        // Same quarter: compared.
        let same = vec![prev("q", Some("1"), Some("0.01"), "2026-01-01")];
        let (body, _) = build(&reports, &ctx(Some(same)), 1);
        assert_eq!(kr(&body, "q")["change"], 3);
        assert_eq!(body["top_movers"][0]["id"], "q");
    }

    #[test]
    fn sheet_rows_are_the_checkin_columns_then_digest_and_change() {
        let reports = vec![report(
            "aov",
            "Grow",
            "average_order_value",
            "last_30_days",
            (2025, 12, 14),
            Some(Value::Money("84.20".parse().unwrap())),
            Some("0.842"),
        )];
        let (body, _) = build(
            &reports,
            &ctx(Some(vec![prev(
                "aov",
                Some("80"),
                Some("0.8"),
                "2025-12-07",
            )])),
            3,
        );
        assert_eq!(
            sheet_rows(&body),
            vec![json!([
                "2026-01-12T08:00:00Z",
                "aov",
                84.2,
                0.842,
                "at_risk",
                "digest",
                4.2
            ])]
        );
    }
}
