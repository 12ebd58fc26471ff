//! `okrsync kpis --compare` in a terminal: each KPI now, in the compared span, and the change.

use rust_decimal::Decimal;

use super::reports::signed;
use super::{Notes, table, value_text};
use crate::daemon::compare::CompareReport;
use crate::kpi::{Value, WindowSpec};

/// `+12.5%` / `-3.0%`; `—` when undefined.
fn relative(r: Option<Decimal>) -> String {
    match r.and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED)) {
        Some(p) => {
            let p = p.round_dp(1);
            if p.is_sign_negative() && !p.is_zero() {
                format!("{p:.1}%")
            } else {
                format!("+{:.1}%", p.abs())
            }
        }
        None => "—".into(),
    }
}

/// The compared KPI table.
pub fn compare_table(report: &CompareReport, window: &WindowSpec) -> String {
    let (cur, prev) = (&report.current, &report.previous);
    let mut out = format!(
        "KPIs for {} · {} · {} to {} ({}){}\ncompared with {}: {} to {}\n",
        cur.store,
        window.as_str(),
        cur.window.range.from,
        cur.window.range.to,
        cur.window.timezone,
        cur.currency
            .as_ref()
            .map(|c| format!(" · {c}"))
            .unwrap_or_default(),
        report.compare.as_str(),
        prev.window.range.from,
        prev.window.range.to,
    );
    let show = |v: &Option<Value>| v.as_ref().map(value_text).unwrap_or_else(|| "—".into());
    let all = report.rows();
    // A reason shared by several rows is said once, below the table.
    let mut notes = Notes::new(all.iter().filter_map(|r| r.note.as_deref()));
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            vec![
                r.kpi.as_str().to_string(),
                show(&r.current),
                show(&r.previous),
                r.change.as_ref().map(signed).unwrap_or_else(|| "—".into()),
                relative(r.relative),
                r.note.as_deref().map(|n| notes.cell(n)).unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "kpi",
            "value",
            report.compare.as_str(),
            "change",
            "change %",
            "note",
        ],
        &rows,
    ));
    out.push_str(&notes.render());
    out
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    #[test]
    fn relative_changes_carry_their_sign() {
        let d = |s: &str| s.parse::<Decimal>().ok();
        assert_eq!(super::relative(d("0.125")), "+12.5%");
        assert_eq!(super::relative(d("-0.5")), "-50.0%");
        assert_eq!(super::relative(d("-0.0001")), "+0.0%");
        assert_eq!(super::relative(None), "—");
    }
}
