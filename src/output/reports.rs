//! How reports read in a terminal: the KPI table, the key-result table, the sync log, and the
//! line printed for each finished run. Pure: strings in, strings out.

use rust_decimal::Decimal;

use super::{Notes, counted, group_digits, table, value_text};
use crate::daemon::keyresults::{HistoryEntry, KpiReport, KrReport};
use crate::daemon::run::SyncReport;
use crate::daemon::sync::SyncJob;
use crate::domain::StoreTz;
use crate::kpi::{Value, ValueKind, WindowSpec};
use crate::okr::Direction;
use crate::store::{RunRow, RunStatus};
use chrono::{DateTime, Utc};

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
    let reason = |v: &Result<crate::kpi::Computed, String>| match v {
        Ok(c) => c.reason.clone(),
        Err(e) => Some(e.clone()),
    };
    let reasons: Vec<Option<String>> = report.values.iter().map(|(_, v)| reason(v)).collect();
    let mut notes = Notes::new(reasons.iter().flatten().map(String::as_str));
    let rows: Vec<Vec<String>> = report
        .values
        .iter()
        .zip(&reasons)
        .map(|((id, v), reason)| {
            let value = match v {
                Ok(c) => c.value.as_ref().map(value_text),
                Err(_) => None,
            };
            vec![
                id.as_str().to_string(),
                value.unwrap_or_else(|| "—".into()),
                reason.as_deref().map(|r| notes.cell(r)).unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(&["kpi", "value", "note"], &rows));
    out.push_str(&notes.render());
    out
}

/// A baseline or target shown like the KPI's values (`18.0%`, `84.20`).
fn fmt_decimal(kind_value: Option<&Value>, d: Decimal) -> String {
    match kind_value {
        Some(Value::Rate(_)) => value_text(&Value::Rate(d)),
        Some(Value::Money(_)) => value_text(&Value::Money(d)),
        Some(Value::Number(_)) => value_text(&Value::Number(d)),
        _ => group_digits(&d.normalize().to_string()),
    }
}

/// The "baseline → target" cell: `18.00% → 25.00%`, or for a threshold `≤ 5.00%` / `≥ 4.50`
/// (its baseline plays no part).
fn target_text(s: &crate::config::KeyResultSettings, sample: Option<&Value>) -> String {
    let target = fmt_decimal(sample, s.target);
    match s.direction {
        Direction::AtMost => format!("≤ {target}"),
        Direction::AtLeast => format!("≥ {target}"),
        Direction::Increase | Direction::Decrease => {
            format!("{} → {target}", fmt_decimal(sample, s.baseline))
        }
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
    let mut notes = Notes::new(
        reports
            .iter()
            .filter(|r| r.status.is_none())
            .filter_map(|r| r.reason.as_deref()),
    );
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
                    None => target_text(s, sample.as_ref()),
                    // Computed from the baseline window, once per period.
                    Some(rel) if r.fixed.is_some() => format!(
                        "{} ({} on {})",
                        target_text(s, sample.as_ref()),
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
                    .map(value_text)
                    .unwrap_or_else(|| "—".into()),
                r.change().map(|c| signed(&c)).unwrap_or_else(|| "—".into()),
                r.change_since_period_start()
                    .map(|c| signed(&c))
                    .unwrap_or_else(|| "—".into()),
                percent(r.progress),
                percent(r.expected),
                match (r.status, r.reason.as_deref()) {
                    (Some(s), _) => s.as_str().to_string(),
                    (None, Some(reason)) => notes.cell(reason),
                    (None, None) => "—".into(),
                },
                r.data_as_of
                    .map(|t| t.format("%Y-%m-%d %H:%MZ").to_string())
                    .unwrap_or_else(|| "—".into()),
                deliveries(&r.deliveries),
            ]
        })
        .collect();
    let mut headers = vec![
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
    ];
    // Without any sink, the deliveries column would only say "—": leave it out.
    let mut rows = rows;
    if reports.iter().all(|r| r.deliveries.is_empty()) {
        headers.pop();
        for row in &mut rows {
            row.pop();
        }
    }
    // Least needed first: on a narrow terminal these go before the table turns into blocks.
    let optional: Vec<usize> = [10, 6, 5, 2, 11, 8]
        .into_iter()
        .filter(|&i| i < headers.len())
        .collect();
    let mut out = super::table_dropping(&headers, &rows, &optional);
    out.push_str(&notes.render());
    out
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
        _ => value_text(change),
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
                    .map(value_text)
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

/// The time zone the sync log is shown in.
#[derive(Debug, Clone)]
pub enum LogZone {
    /// The zone of the stores the listed runs belong to (they all share it).
    Store(StoreTz),
    /// This computer's zone (the stores' zones are unknown or differ).
    Machine,
}

impl LogZone {
    /// Which zone, for the header: `Europe/Paris`, `local time`.
    fn label(&self) -> String {
        match self {
            LogZone::Store(tz) => tz.name(),
            LogZone::Machine => "local time".into(),
        }
    }

    /// `2026-01-05 14:03:07` in this zone.
    fn show(&self, at: DateTime<Utc>) -> String {
        const F: &str = "%Y-%m-%d %H:%M:%S";
        match self {
            LogZone::Store(StoreTz::Named(tz)) => at.with_timezone(tz).format(F).to_string(),
            LogZone::Store(StoreTz::Fixed(off)) => at.with_timezone(off).format(F).to_string(),
            LogZone::Machine => at.with_timezone(&chrono::Local).format(F).to_string(),
        }
    }
}

/// How long a run took: `0s`, `45s`, `3m05s`, `1h02m`.
fn duration_text(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The sync log as `okrsync logs` prints it: a table (times in `zone`, each run's
/// duration), then each run's error.
pub fn runs_table(runs: &[RunRow], zone: &LogZone) -> String {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc());
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let started = parse(&r.started_at);
            let took = match (started, r.finished_at.as_deref().and_then(parse)) {
                (Some(s), Some(f)) => duration_text(f - s),
                _ if r.status == RunStatus::Running => "running".into(),
                _ => "—".into(),
            };
            vec![
                r.id.to_string(),
                r.store.clone(),
                started.map_or_else(|| r.started_at.clone(), |t| zone.show(t)),
                took,
                format!("{}{}", r.status, if r.full { " (full)" } else { "" }),
                group_digits(&r.pages.to_string()),
                group_digits(&r.fetched.to_string()),
                group_digits(&r.upserted.to_string()),
                group_digits(&r.requests.to_string()),
                group_digits(&r.retries.to_string()),
            ]
        })
        .collect();
    let started = format!("started ({})", zone.label());
    let mut out = table(
        &[
            "run", "store", &started, "took", "status", "pages", "fetched", "stored", "requests",
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
            "{}: {} (run {}, {}, {} fetched, {} stored, {}, {})\n",
            report.store,
            report.status,
            report.run_id,
            counted(sm.pages, "page"),
            counted(sm.fetched, "record"),
            group_digits(&sm.upserted.to_string()),
            counted(sm.requests, "request"),
            counted(sm.retries, "retry"),
        ),
        SyncJob::Analytics(a, _) => format!(
            "{} ({}): {} (run {}, {} fetched, {} stored, {}, {})\n",
            report.store,
            a.provider.name(),
            report.status,
            report.run_id,
            counted(sm.fetched, "record"),
            group_digits(&sm.upserted.to_string()),
            counted(sm.requests, "request"),
            counted(sm.retries, "retry"),
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

    fn kr(kpi: &str, baseline: &str, target: &str, direction: &str) -> KrReport {
        let toml = format!(
            r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[key_results]]
id = "k-{kpi}"
title = "Keep {kpi} where the shop owner wants it this whole quarter"
kpi = "{kpi}"
store = "main"
window = "quarter_to_date"
baseline = {baseline}
target = {target}
direction = "{direction}"
"#
        );
        let settings = crate::config::load_from_str(
            &toml,
            std::path::Path::new("."),
            None,
            &Default::default(),
        )
        .unwrap()
        .key_results
        .remove(0);
        KrReport {
            settings,
            window: None,
            current: None,
            progress: None,
            expected: None,
            status: None,
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

    #[test]
    fn thresholds_show_their_side_and_money_its_separators() {
        let mut at_most = kr("refund_rate", "0.05", "0.05", "at_most");
        at_most.current = Some(Value::Rate("0.031".parse().unwrap()));
        at_most.status = Some(crate::okr::Status::OnTrack);
        let at_least = kr("average_order_value", "4.5", "4.5", "at_least");
        let mut grow = kr("net_sales", "1000", "25000", "increase");
        grow.current = Some(Value::Money("16740.5".parse().unwrap()));
        grow.status = Some(crate::okr::Status::OnTrack);
        let t = kr_table(&[at_most, at_least, grow]);
        assert!(t.contains("≤ 5.00%"), "{t}");
        assert!(!t.contains("5.00% → 5.00%"), "{t}");
        assert!(t.contains("≥ 4.50"), "{t}");
        assert!(t.contains("1,000.00 → 25,000.00"), "{t}");
        assert!(t.contains("16,740.50"), "{t}");
    }

    #[test]
    fn a_reason_repeated_on_key_results_is_said_once() {
        let reason = "store `main` has not completed a first sync yet";
        let reports: Vec<KrReport> = ["net_sales", "orders", "gross_sales"]
            .iter()
            .map(|k| {
                let mut r = kr(k, "1", "2", "increase");
                r.reason = Some(reason.into());
                r
            })
            .collect();
        let t = kr_table(&reports);
        assert_eq!(t.matches(reason).count(), 1, "{t}");
        assert_eq!(t.matches("see note 1").count(), 3, "{t}");
        assert!(t.ends_with(&format!("note 1: {reason}\n")), "{t}");
    }

    #[test]
    fn a_reason_repeated_on_kpis_is_said_once() {
        use crate::kpi::{Computed, DateRange, KpiId};
        let reason = "store `main` has not completed a first sync yet";
        let report = KpiReport {
            store: "main".into(),
            window: crate::daemon::keyresults::ResolvedWindow {
                range: DateRange {
                    from: "2026-01-01".parse().unwrap(),
                    to: "2026-01-31".parse().unwrap(),
                },
                timezone: "Europe/Paris".into(),
            },
            currency: Some("EUR".into()),
            values: vec![
                (
                    KpiId::Orders,
                    Ok(Computed {
                        value: None,
                        reason: Some(reason.into()),
                    }),
                ),
                (KpiId::NetSales, Err(reason.into())),
                (
                    KpiId::GrossSales,
                    Ok(Computed {
                        value: Some(Value::Money("1234.5".parse().unwrap())),
                        reason: None,
                    }),
                ),
            ],
        };
        let t = kpi_table(&report, &"last_30_days".parse().unwrap());
        assert_eq!(t.matches(reason).count(), 1, "{t}");
        assert_eq!(t.matches("see note 1").count(), 2, "{t}");
        assert!(t.contains("1,234.50"), "{t}");
    }

    #[test]
    fn sync_log_in_the_store_zone_with_durations() {
        let run = |id: i64, started: &str, finished: Option<&str>, status| RunRow {
            id,
            store: "main".into(),
            source: "woocommerce".into(),
            started_at: started.into(),
            finished_at: finished.map(Into::into),
            status,
            full: false,
            pages: 1234,
            fetched: 16740,
            upserted: 3,
            requests: 1,
            retries: 0,
            error: None,
        };
        let runs = [
            run(3, "2026-07-01T10:00:00Z", None, RunStatus::Running),
            run(
                2,
                "2026-07-01T09:00:00Z",
                Some("2026-07-01T09:03:05Z"),
                RunStatus::Ok,
            ),
            run(
                1,
                "2026-01-10T23:30:00Z",
                Some("2026-01-10T23:30:42Z"),
                RunStatus::Failed,
            ),
        ];
        let paris = LogZone::Store(StoreTz::parse("Europe/Paris").unwrap());
        let t = runs_table(&runs, &paris);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("started (Europe/Paris)"), "{t}");
        assert!(lines[0].contains("took"), "{t}");
        // Summer time (+2) and winter time (+1, the next day locally).
        assert!(
            lines[2].contains("2026-07-01 12:00:00") && lines[2].contains("running"),
            "{t}"
        );
        assert!(
            lines[3].contains("2026-07-01 11:00:00") && lines[3].contains("3m05s"),
            "{t}"
        );
        assert!(
            lines[4].contains("2026-01-11 00:30:00") && lines[4].contains("42s"),
            "{t}"
        );
        assert!(
            lines[3].contains("1,234") && lines[3].contains("16,740"),
            "{t}"
        );
        let t = runs_table(&runs, &LogZone::Machine);
        assert!(
            t.lines().next().unwrap().contains("started (local time)"),
            "{t}"
        );
        assert_eq!(duration_text(chrono::Duration::seconds(3725)), "1h02m");
    }

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
