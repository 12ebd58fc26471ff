//! How reports read in a terminal: the KPI table, the key-result table, the sync log, and the
//! line printed for each finished run. Pure: strings in, strings out.

use rust_decimal::Decimal;

use super::table;
use crate::daemon::keyresults::{HistoryEntry, KpiReport, KrReport};
use crate::daemon::run::SyncReport;
use crate::daemon::sync::SyncJob;
use crate::kpi::{Value, ValueKind, WindowSpec};
use crate::store::RunRow;

/// The KPI table printed by `kpis` and `demo`.
pub fn kpi_table(report: &KpiReport, window: &WindowSpec) -> String {
    let mut out = format!(
        "KPIs for {} · {} · {} to {} ({}){}\n",
        report.store,
        window.as_str(),
        report.window.range.from,
        report.window.range.to,
        report.window.timezone,
        report
            .currency
            .as_ref()
            .map(|c| format!(" · {c}"))
            .unwrap_or_default(),
    );
    let rows: Vec<Vec<String>> = report
        .values
        .iter()
        .map(|(id, v)| {
            let (value, note) = match v {
                Ok(c) => (
                    c.value
                        .as_ref()
                        .map(|v| v.display())
                        .unwrap_or_else(|| "—".into()),
                    c.reason.clone().unwrap_or_default(),
                ),
                Err(e) => ("—".into(), e.clone()),
            };
            vec![id.as_str().to_string(), value, note]
        })
        .collect();
    out.push_str(&table(&["kpi", "value", "note"], &rows));
    out
}

/// A baseline or target shown like the KPI's values (`18.0%`, `84.20`).
fn fmt_decimal(kind_value: Option<&Value>, d: Decimal) -> String {
    match kind_value {
        Some(Value::Rate(_)) => Value::Rate(d).display(),
        Some(Value::Money(_)) => Value::Money(d).display(),
        Some(Value::Number(_)) => Value::Number(d).display(),
        _ => d.normalize().to_string(),
    }
}

fn percent(p: Option<Decimal>) -> String {
    p.map(|p| format!("{:.0}%", p * Decimal::from(100)))
        .unwrap_or_else(|| "—".into())
}

/// The key-result table printed by `krs` and `demo`.
pub fn kr_table(reports: &[KrReport]) -> String {
    if reports.is_empty() {
        return "No key results configured: add [[key_results]] to the config.\n".into();
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let s = &r.settings;
            let sample = r.current.as_ref().cloned().or_else(|| {
                Some(match s.kpi.id.kind() {
                    ValueKind::Rate => Value::Rate(s.target),
                    ValueKind::Money => Value::Money(s.target),
                    ValueKind::Count => Value::Count(0),
                    ValueKind::Number => Value::Number(s.target),
                })
            });
            vec![
                s.id.clone(),
                s.title.clone(),
                s.window.as_str(),
                match &s.relative {
                    None => format!(
                        "{} → {}",
                        fmt_decimal(sample.as_ref(), s.baseline),
                        fmt_decimal(sample.as_ref(), s.target)
                    ),
                    // Computed from the baseline window, once per period.
                    Some(rel) if r.fixed.is_some() => format!(
                        "{} → {} ({} on {})",
                        fmt_decimal(sample.as_ref(), s.baseline),
                        fmt_decimal(sample.as_ref(), s.target),
                        rel.written,
                        rel.baseline_window
                    ),
                    Some(rel) => format!(
                        "{} on {} (not computed yet)",
                        rel.written, rel.baseline_window
                    ),
                },
                r.current
                    .as_ref()
                    .map(|v| v.display())
                    .unwrap_or_else(|| "—".into()),
                r.change().map(|c| signed(&c)).unwrap_or_else(|| "—".into()),
                r.change_since_period_start()
                    .map(|c| signed(&c))
                    .unwrap_or_else(|| "—".into()),
                percent(r.progress),
                percent(r.expected),
                r.status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| r.reason.clone().unwrap_or_else(|| "—".into())),
                r.data_as_of
                    .map(|t| t.format("%Y-%m-%d %H:%MZ").to_string())
                    .unwrap_or_else(|| "—".into()),
                deliveries(&r.deliveries),
            ]
        })
        .collect();
    table(
        &[
            "key result",
            "title",
            "window",
            "baseline → target",
            "current",
            "change",
            "since start",
            "progress",
            "expected",
            "status",
            "data as of",
            "deliveries",
        ],
        &rows,
    )
}

/// A key result's deliveries, narrow: `sheet ✓ 2m ago, slack 3 pending (failing)`.
pub fn deliveries(list: &[crate::daemon::keyresults::Delivery]) -> String {
    if list.is_empty() {
        return "—".into();
    }
    list.iter()
        .map(|d| {
            let failing = if d.last_error.is_some() {
                " (failing)"
            } else {
                ""
            };
            match (d.pending, d.last_delivered_ago) {
                (0, Some(ago)) => format!("{} ✓ {} ago", d.sink, short_age(ago)),
                (0, None) => format!("{} —", d.sink),
                (n, _) => format!("{} {n} pending{failing}", d.sink),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<1m`, `12m`, `3h`, `5d`.
fn short_age(d: chrono::Duration) -> String {
    let m = d.num_minutes().max(0);
    match m {
        0 => "<1m".into(),
        1..=59 => format!("{m}m"),
        60..=2879 => format!("{}h", m / 60),
        _ => format!("{}d", m / 1440),
    }
}

/// A change of a value with its sign: `+10.00`, `-3`, `+2.50 pp` (rates change by
/// percentage points).
pub(super) fn signed(change: &Value) -> String {
    let text = match change {
        Value::Rate(_) => format!("{} pp", change.display().trim_end_matches('%')),
        _ => change.display(),
    };
    if text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}

/// A key result's check-ins as `okrsync history` prints them.
pub fn history_table(entries: &[HistoryEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                e.value
                    .as_ref()
                    .map(Value::display)
                    .unwrap_or_else(|| "—".into()),
                percent(e.progress),
                e.status.clone().unwrap_or_else(|| "—".into()),
                format!("{}..{}", e.window_from, e.window_to),
            ]
        })
        .collect();
    table(&["at", "value", "progress", "status", "window"], &rows)
}

/// A key result's check-ins as CSV (`history --format csv`): the JSON fields, values as in
/// JSON (money `1234.50`, rates as fractions), empty when null.
pub fn history_csv(entries: &[HistoryEntry]) -> String {
    let mut out = String::from("at,value,progress,status,window_from,window_to\n");
    for e in entries {
        let j = e.to_json();
        let cell = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let row = [
            cell(&j["at"]),
            cell(&j["value"]),
            cell(&j["progress"]),
            cell(&j["status"]),
            e.window_from.clone(),
            e.window_to.clone(),
        ];
        let row: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Quotes a CSV cell when it holds a comma, a quote or a line break.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The sync log as `okrsync logs` prints it: a table, then each run's error.
pub fn runs_table(runs: &[RunRow]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.store.clone(),
                r.started_at.clone(),
                format!("{}{}", r.status, if r.full { " (full)" } else { "" }),
                r.pages.to_string(),
                r.fetched.to_string(),
                r.upserted.to_string(),
                r.requests.to_string(),
                r.retries.to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "run",
            "store",
            "started (UTC)",
            "status",
            "pages",
            "fetched",
            "stored",
            "requests",
            "retries",
        ],
        &rows,
    );
    for r in runs.iter().filter(|r| r.error.is_some()) {
        out.push_str(&format!(
            "run {} ({}): {}\n",
            r.id,
            r.status,
            r.error.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// What `sync` and `demo` print when a run ends: one line, then its error if any.
pub fn sync_report(job: &SyncJob, report: &SyncReport) -> String {
    let sm = &report.summary;
    let mut out = match job {
        SyncJob::Store(..) => format!(
            "{}: {} (run {}, {} pages, {} records fetched, {} stored, {} requests, {} retries)\n",
            report.store,
            report.status,
            report.run_id,
            sm.pages,
            sm.fetched,
            sm.upserted,
            sm.requests,
            sm.retries
        ),
        SyncJob::Analytics(a, _) => format!(
            "{} ({}): {} (run {}, {} records fetched, {} stored, {} requests, {} retries)\n",
            report.store,
            a.provider.name(),
            report.status,
            report.run_id,
            sm.fetched,
            sm.upserted,
            sm.requests,
            sm.retries
        ),
    };
    if let Some(e) = &sm.error {
        out.push_str(&format!("  {e}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::keyresults::Delivery;

    #[test]
    fn deliveries_are_one_narrow_entry_per_sink() {
        let d = |sink: &str, pending, ago: Option<i64>, err: bool| Delivery {
            sink: sink.into(),
            pending,
            last_delivered_at: None,
            last_delivered_ago: ago.map(chrono::Duration::minutes),
            last_error: err.then(|| "HTTP 503".into()),
        };
        assert_eq!(deliveries(&[]), "—");
        assert_eq!(
            deliveries(&[
                d("sheet", 0, Some(2), false),
                d("slack", 3, Some(600), true),
                d("hook", 0, None, false),
                d("asana", 1, None, false),
            ]),
            "sheet ✓ 2m ago, slack 3 pending (failing), hook —, asana 1 pending"
        );
        assert_eq!(short_age(chrono::Duration::seconds(20)), "<1m");
        assert_eq!(short_age(chrono::Duration::minutes(180)), "3h");
        assert_eq!(short_age(chrono::Duration::days(5)), "5d");
    }
}
