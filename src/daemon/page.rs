//! The status page (`GET /` of the status server): one server-rendered HTML page, no build
//! step and no external asset (inline CSS, inline SVG), readable on a phone.
//!
//! [`load`] gathers the page's model from the same sources as the CLI: the key results from
//! [`keyresults::current_reports`] (`krs`), their check-ins from [`keyresults::history`]
//! (`history`), and the sync log (`logs`, `store::runs`/`run_totals`). [`render`] is pure:
//! model in, HTML out; every text that comes from the config or the sync log is escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use crate::config::{Settings, StoreSelector};
use crate::daemon::keyresults::{self, HistoryEntry, KrReport};
use crate::kpi::{Feed, Value, feed_of};
use crate::okr::Status;
use crate::store::{RunRow, RunStatus, RunTotals, Store, StoreError};

/// How many schedule periods a source may go without a successful sync before its data is
/// stale (the `/readyz` rule).
pub const STALE_AFTER_PERIODS: i32 = 3;

/// How many failed runs the page lists.
const FAILED_RUNS_SHOWN: u32 = 10;

/// How many runs of one source are read to find when its current failing streak began.
const STREAK_LOOKBACK: u32 = 200;

/// What a source is: a store or an analytics source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Store,
    Analytics,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Store => "store",
            SourceKind::Analytics => "analytics source",
        }
    }
}

/// One store or analytics source as the page shows it.
#[derive(Debug, Clone)]
pub struct SourceState {
    pub name: String,
    pub kind: SourceKind,
    /// `woocommerce`, `shopify`, `ga4`, `plausible`, …
    pub platform: &'static str,
    /// For an analytics source: what it feeds and the stores it is linked to.
    pub feed: Option<Feed>,
    pub stores: Vec<String>,
    /// The gap between two ticks of its schedule.
    pub period: Duration,
    /// Its latest finished run (`ok`, `partial` or `failed`; skipped runs are not outcomes).
    pub last_run: Option<RunRow>,
    /// A run is going now.
    pub running: bool,
    /// End of its last `ok` run.
    pub last_success: Option<DateTime<Utc>>,
    /// When the last `ok` run started: what its data is complete up to ("data as of").
    pub data_as_of: Option<DateTime<Utc>>,
    /// Since when its data is stale: the start of its current streak of failed runs, or
    /// [`STALE_AFTER_PERIODS`] periods after its last success. `None` while fresh (or never
    /// synced and never failed).
    pub stale_since: Option<DateTime<Utc>>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct PageModel {
    pub now: DateTime<Utc>,
    pub reports: Vec<KrReport>,
    /// The check-ins of each key result (by id), oldest first.
    pub history: HashMap<String, Vec<HistoryEntry>>,
    pub sources: Vec<SourceState>,
    /// Recent failed or partial runs, newest first; errors as stored (redacted).
    pub failed: Vec<RunRow>,
}

/// The gap between the next two ticks of a schedule after `now` (a day when it has none).
pub fn schedule_period(schedule: &cron::Schedule, now: DateTime<Utc>) -> Duration {
    let mut next = schedule.after(&now);
    match (next.next(), next.next()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => Duration::days(1),
    }
}

/// Every configured store, then every analytics source: (kind, name, platform, schedule).
pub fn configured_sources(
    settings: &Settings,
) -> Vec<(SourceKind, &str, &'static str, &cron::Schedule)> {
    let stores = settings.stores.iter().map(|s| {
        (
            SourceKind::Store,
            s.name.as_str(),
            s.platform_name(),
            &s.schedule,
        )
    });
    let analytics = settings.analytics.iter().map(|a| {
        (
            SourceKind::Analytics,
            a.name.as_str(),
            a.provider.name(),
            &a.schedule,
        )
    });
    stores.chain(analytics).collect()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The state of one source from its runs (newest first) and totals.
pub fn source_state(
    kind: SourceKind,
    name: &str,
    platform: &'static str,
    period: Duration,
    runs: &[RunRow],
    totals: Option<&RunTotals>,
    now: DateTime<Utc>,
) -> SourceState {
    let finished: Vec<&RunRow> = runs
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                RunStatus::Ok | RunStatus::Partial | RunStatus::Failed
            )
        })
        .collect();
    let last_success = totals.and_then(|t| t.last_success);
    let last_run = finished.first().map(|r| (*r).clone());
    // The current failing streak: the failed (or partial) runs since the last ok one.
    let streak_start = if last_run
        .as_ref()
        .is_some_and(|r| r.status == RunStatus::Failed)
    {
        finished
            .iter()
            .take_while(|r| r.status != RunStatus::Ok)
            .last()
            .and_then(|r| parse_time(&r.started_at))
    } else {
        None
    };
    let overdue = last_success
        .map(|t| t + period * STALE_AFTER_PERIODS)
        .filter(|limit| now > *limit);
    let stale_since = match (streak_start, overdue) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    SourceState {
        name: name.to_string(),
        kind,
        platform,
        feed: None,
        stores: vec![name.to_string()],
        period,
        last_run,
        running: runs.first().is_some_and(|r| r.status == RunStatus::Running),
        last_success,
        data_as_of: totals.and_then(|t| t.data_as_of),
        stale_since,
    }
}

/// Reads the page's model: the `krs` reports, each key result's check-ins, and the sync log.
pub async fn load(
    settings: &Settings,
    db: &Store,
    now: DateTime<Utc>,
) -> Result<PageModel, StoreError> {
    let reports = keyresults::current_reports(settings, db, now).await?;
    let mut history = HashMap::new();
    for kr in &settings.key_results {
        history.insert(kr.id.clone(), keyresults::history(db, kr).await?);
    }
    let totals = db.run_totals().await?;
    let mut sources = Vec::new();
    for (kind, name, platform, schedule) in configured_sources(settings) {
        let runs = db
            .runs(Some(name.to_string()), STREAK_LOOKBACK, false)
            .await?;
        let mut state = source_state(
            kind,
            name,
            platform,
            schedule_period(schedule, now),
            &runs,
            totals.iter().find(|t| t.store == name),
            now,
        );
        if let Some(a) = settings.analytics.iter().find(|a| a.name == name) {
            state.feed = Some(a.provider.feed());
            state.stores = a.stores.clone();
        }
        sources.push(state);
    }
    let failed = db.runs(None, FAILED_RUNS_SHOWN, true).await?;
    Ok(PageModel {
        now,
        reports,
        history,
        sources,
        failed,
    })
}

/// Text made safe for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A progress as the CLI prints it (`42%`), from the value `krs --format json` gives (4 dp).
pub fn percent(p: Option<Decimal>) -> String {
    p.map(|p| format!("{:.0}%", p.round_dp(4) * Decimal::from(100)))
        .unwrap_or_else(|| "—".into())
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago `t` was, roughly: `just now`, `5 min ago`, `3 h 10 min ago`, `2 d 4 h ago`.
pub fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    if secs < 0 {
        return "in the future (check the clock)".into();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h ago")
    } else if h > 0 {
        format!("{h} h {m} min ago")
    } else if m > 0 {
        format!("{m} min ago")
    } else {
        "just now".into()
    }
}

fn status_class(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::OnTrack) => "on",
        Some(Status::AtRisk) => "risk",
        Some(Status::OffTrack) => "off",
        None => "none",
    }
}

fn status_text(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::OnTrack) => "on track",
        Some(Status::AtRisk) => "at risk",
        Some(Status::OffTrack) => "off track",
        None => "no value",
    }
}

/// A width or position in percent of a bar, from a progress in 0..1.
fn bar_pct(p: Decimal) -> Decimal {
    (p.clamp(Decimal::ZERO, Decimal::ONE) * Decimal::from(100)).round_dp(1)
}

const CHART_W: i64 = 160;
const CHART_H: i64 = 36;

/// A small inline-SVG line chart of the values of `entries` (oldest first). Coordinates are
/// computed in decimals: no float touches a value.
pub fn history_chart(entries: &[HistoryEntry]) -> String {
    let points: Vec<Decimal> = entries
        .iter()
        .filter_map(|e| e.value.as_ref().map(Value::as_decimal))
        .collect();
    if points.is_empty() {
        return "<p class=\"muted small\">No check-in with a value yet.</p>".into();
    }
    let (min, max) = points.iter().fold((points[0], points[0]), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    let (w, h, pad) = (
        Decimal::from(CHART_W),
        Decimal::from(CHART_H),
        Decimal::from(3),
    );
    let n = Decimal::from(points.len().max(2) as i64 - 1);
    let span = max - min;
    let xy: Vec<(Decimal, Decimal)> = points
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = if points.len() == 1 {
                w / Decimal::from(2)
            } else {
                pad + (w - pad * Decimal::from(2)) * Decimal::from(i as i64) / n
            };
            let y = if span.is_zero() {
                h / Decimal::from(2)
            } else {
                h - pad - (h - pad * Decimal::from(2)) * (*v - min) / span
            };
            (x.round_dp(1), y.round_dp(1))
        })
        .collect();
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"{CHART_W}\" height=\"{CHART_H}\" role=\"img\" aria-label=\"{} check-ins\"><title>{} check-ins</title>",
        points.len(),
        points.len()
    );
    if xy.len() > 1 {
        let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x},{y}")).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/>",
            line.join(" ")
        );
    }
    if let Some((x, y)) = xy.last() {
        let _ = write!(
            svg,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"currentColor\"/>"
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The sources a key result's value depends on: its store(s) and, for a KPI read from an
/// analytics feed, the analytics sources of that feed linked to those stores.
fn sources_of<'a>(r: &KrReport, sources: &'a [SourceState]) -> Vec<&'a SourceState> {
    let in_scope = |store: &str| match &r.settings.store {
        StoreSelector::All => true,
        StoreSelector::Named(n) => n == store,
    };
    let feed = feed_of(r.settings.kpi.id);
    sources
        .iter()
        .filter(|s| match s.kind {
            SourceKind::Store => in_scope(&s.name),
            SourceKind::Analytics => {
                feed.is_some() && s.feed == feed && s.stores.iter().any(|st| in_scope(st))
            }
        })
        .collect()
}

const STYLE: &str = r#"
:root{--fg:#1d2327;--muted:#5f6b76;--bg:#f6f7f9;--card:#fff;--line:#dde1e6;
--on:#2e7d32;--risk:#b26a00;--off:#c62828;--none:#8a949e}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:960px;margin:0 auto;padding:16px}
h1{font-size:1.4rem;margin:0 0 4px}h2{font-size:1.15rem;margin:24px 0 8px}
h3{font-size:1rem;margin:0}
.muted{color:var(--muted)}.small{font-size:.85rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:0 0 10px}
.kr .head{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline;justify-content:space-between}
.value{font-weight:600;font-size:1.1rem}
.bar{position:relative;height:12px;background:#e9ecef;border-radius:6px;margin:8px 0 4px;overflow:visible}
.fill{height:100%;border-radius:6px}
.marker{position:absolute;top:-4px;width:2px;height:20px;background:var(--fg)}
.on .fill{background:var(--on)}.risk .fill{background:var(--risk)}.off .fill{background:var(--off)}.none .fill{background:var(--none)}
.chip{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;color:#fff;background:var(--none)}
.chip.on{background:var(--on)}.chip.risk{background:var(--risk)}.chip.off{background:var(--off)}
.row{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;justify-content:space-between}
.chart{color:var(--muted);max-width:100%;height:auto;background:#f1f3f5;border-radius:4px}
.history p{margin:2px 0 0}
.stale{color:var(--off);font-weight:600}
.fresh{color:var(--on)}
.err{font-family:ui-monospace,monospace;font-size:.85rem;white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0 0}
ul.plain{list-style:none;padding:0;margin:0}
"#;

/// The page's HTML.
pub fn render(m: &PageModel) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let stale: Vec<&SourceState> = m
        .sources
        .iter()
        .filter(|s| s.stale_since.is_some())
        .collect();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"60\">\
<title>okrsync status</title><style>{STYLE}</style></head><body><main>\
<header><h1>okrsync status</h1><p class=\"muted small\">Page generated {} · refreshes every minute</p>",
        time(m.now)
    );
    if stale.is_empty() {
        h.push_str("<p class=\"fresh\" id=\"summary\">Every source is up to date.</p>");
    } else {
        let names: Vec<String> = stale
            .iter()
            .map(|s| format!("<b>{}</b>", escape(&s.name)))
            .collect();
        let _ = write!(
            h,
            "<p class=\"stale\" id=\"summary\">Stale data: {} (see below).</p>",
            names.join(", ")
        );
    }
    h.push_str("</header>");

    // Objectives, in the order of their first key result in the config.
    h.push_str("<section id=\"objectives\">");
    if m.reports.is_empty() {
        h.push_str("<p>No key results configured: add [[key_results]] to the config.</p>");
    }
    let mut objectives: Vec<&str> = Vec::new();
    for r in &m.reports {
        if !objectives.contains(&r.settings.objective.as_str()) {
            objectives.push(&r.settings.objective);
        }
    }
    for obj in objectives {
        let title = if obj.is_empty() { "Key results" } else { obj };
        let _ = write!(h, "<h2>{}</h2>", escape(title));
        for r in m.reports.iter().filter(|r| r.settings.objective == obj) {
            render_kr(&mut h, r, m);
        }
    }
    h.push_str("</section>");

    // Sources.
    h.push_str("<section id=\"sources\"><h2>Stores and analytics sources</h2><ul class=\"plain\">");
    for s in &m.sources {
        render_source(&mut h, s, m.now);
    }
    h.push_str("</ul></section>");

    // Failed runs.
    h.push_str("<section id=\"failures\"><h2>Recent failed runs</h2>");
    if m.failed.is_empty() {
        h.push_str("<p class=\"muted\">None.</p>");
    } else {
        h.push_str("<ul class=\"plain\">");
        for r in &m.failed {
            let at = r.finished_at.as_deref().unwrap_or(&r.started_at);
            let when = parse_time(at)
                .map(|t| format!("{} ({})", time(t), age(t, m.now)))
                .unwrap_or_else(|| at.to_string());
            let _ = write!(
                h,
                "<li class=\"card\"><div class=\"row\"><span><b>{}</b> · {} · run {}</span><span class=\"muted small\">{}</span></div><p class=\"err\">{}</p></li>",
                escape(&r.store),
                escape(r.status.as_str()),
                r.id,
                escape(&when),
                escape(r.error.as_deref().unwrap_or("(no message)"))
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
    h.push_str(
        "<footer class=\"muted small\"><p>The same numbers as <code>okrsync krs</code>, \
<code>okrsync history</code> and <code>okrsync logs</code>; JSON at <code>/api/krs</code>, \
<code>/api/logs</code>; metrics at <code>/metrics</code>.</p></footer>",
    );
    h.push_str("</main></body></html>\n");
    h
}

fn render_kr(h: &mut String, r: &KrReport, m: &PageModel) {
    let s = &r.settings;
    let class = status_class(r.status);
    let value = r
        .current
        .as_ref()
        .map(|v| crate::text::group_digits(&v.display()))
        .unwrap_or_else(|| "—".into());
    // Baseline and target as the KPI's values read (`2.00% → 3.00%`, `≤ 5.00%`).
    let kind = s.kpi.id.kind();
    let shown = |d| crate::text::group_digits(&Value::of_kind(kind, d).display());
    let goal = match (&s.relative, s.direction) {
        (Some(rel), _) if !r.baseline_known() => format!(
            "{} on {} (not computed yet)",
            rel.written, rel.baseline_window
        ),
        (_, crate::okr::Direction::AtMost) => format!("≤ {}", shown(s.target)),
        (_, crate::okr::Direction::AtLeast) => format!("≥ {}", shown(s.target)),
        _ => format!("{} → {}", shown(s.baseline), shown(s.target)),
    };
    let _ = write!(
        h,
        "<article class=\"card kr {class}\" id=\"kr-{}\"><div class=\"head\"><h3 class=\"title\">{}</h3>\
<span><span class=\"value\">{}</span> <span class=\"chip {class}\">{}</span></span></div>",
        escape(&s.id),
        escape(&s.title),
        escape(&value),
        status_text(r.status)
    );
    if let Some(p) = r.progress {
        let _ = write!(
            h,
            "<div class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{}\"><div class=\"fill\" style=\"width:{}%\"></div>",
            bar_pct(p),
            bar_pct(p)
        );
        if let Some(e) = r.expected {
            let _ = write!(
                h,
                "<div class=\"marker\" style=\"left:calc({}% - 1px)\" title=\"expected by now: {}\"></div>",
                bar_pct(e),
                percent(Some(e))
            );
        }
        h.push_str("</div>");
    }
    let _ = write!(
        h,
        "<div class=\"row\"><div><p class=\"progress\">Progress <b>{}</b> · expected by now {}</p>\
<p class=\"muted small\">{} · {} · {}{}</p>",
        percent(r.progress),
        percent(r.expected),
        escape(&s.id),
        escape(&s.window.as_str()),
        escape(&goal),
        r.change()
            .map(|c| format!(
                " · change since the previous check-in {}",
                escape(&c.signed_display())
            ))
            .unwrap_or_default()
    );
    if let Some(reason) = r.reason.as_deref().or(r.note.as_deref()) {
        let _ = write!(h, "<p class=\"muted small\">{}</p>", escape(reason));
    }
    match r.data_as_of {
        Some(t) => {
            let _ = write!(
                h,
                "<p class=\"small\">Data as of {} ({})</p>",
                time(t),
                age(t, m.now)
            );
        }
        None => h.push_str("<p class=\"small\">No successful sync yet.</p>"),
    }
    for src in sources_of(r, &m.sources) {
        if let Some(t) = src.stale_since {
            let _ = write!(
                h,
                "<p class=\"small stale\">Stale since {}: {} <b>{}</b> {}</p>",
                time(t),
                src.kind.as_str(),
                escape(&src.name),
                if src
                    .last_run
                    .as_ref()
                    .is_some_and(|r| r.status == RunStatus::Failed)
                {
                    "is failing"
                } else {
                    "has not synced successfully for 3 schedule periods"
                }
            );
        }
    }
    h.push_str("</div>");
    let empty = Vec::new();
    let entries = m.history.get(&s.id).unwrap_or(&empty);
    // The chart of the current window's check-ins (another window's values are no trend).
    let current: Vec<HistoryEntry> = match &r.window {
        Some(w) => {
            let from = w.range.from.to_string();
            entries
                .iter()
                .filter(|e| e.window_from == from)
                .cloned()
                .collect()
        }
        None => entries.clone(),
    };
    let with_value: Vec<&HistoryEntry> = current.iter().filter(|e| e.value.is_some()).collect();
    let caption = match (with_value.first(), with_value.len()) {
        (Some(first), n) => format!(
            "<p class=\"muted small\">History: {n} check-in{} since {}</p>",
            if n == 1 { "" } else { "s" },
            first.at.format("%Y-%m-%d")
        ),
        (None, _) => String::new(),
    };
    let _ = write!(
        h,
        "<div class=\"history\">{}{caption}</div></div></article>",
        history_chart(&current)
    );
}

fn render_source(h: &mut String, s: &SourceState, now: DateTime<Utc>) {
    let _ = write!(
        h,
        "<li class=\"card source\" id=\"source-{}\"><div class=\"row\"><span><b>{}</b> <span class=\"muted small\">{} · {}</span></span>",
        escape(&s.name),
        escape(&s.name),
        s.kind.as_str(),
        escape(s.platform)
    );
    match &s.last_run {
        Some(r) => {
            let at = r.finished_at.as_deref().unwrap_or(&r.started_at);
            let when = parse_time(at)
                .map(|t| format!("{} ({})", time(t), age(t, now)))
                .unwrap_or_else(|| at.to_string());
            let _ = write!(
                h,
                "<span>last run <b class=\"outcome\">{}</b> · {}{}</span>",
                escape(r.status.as_str()),
                escape(&when),
                if s.running { " · running now" } else { "" }
            );
        }
        None => {
            let _ = write!(
                h,
                "<span>no finished run yet{}</span>",
                if s.running { " · running now" } else { "" }
            );
        }
    }
    h.push_str("</div>");
    match (s.stale_since, s.data_as_of) {
        (Some(since), last) => {
            let _ = write!(
                h,
                "<p class=\"stale small\">Stale since {} · data as of {}</p>",
                time(since),
                last.map(|t| format!("{} ({})", time(t), age(t, now)))
                    .unwrap_or_else(|| "never (no successful sync yet)".into())
            );
        }
        (None, Some(last)) => {
            let _ = write!(
                h,
                "<p class=\"fresh small\">Data as of {} ({})</p>",
                time(last),
                age(last, now)
            );
        }
        (None, None) => h.push_str("<p class=\"muted small\">No successful sync yet.</p>"),
    }
    if let Some(r) = &s.last_run
        && r.status != RunStatus::Ok
        && let Some(e) = &r.error
    {
        let _ = write!(h, "<p class=\"err\">{}</p>", escape(e));
    }
    h.push_str("</li>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap()
    }

    fn run(id: i64, status: RunStatus, started: DateTime<Utc>, error: Option<&str>) -> RunRow {
        RunRow {
            id,
            store: "main".into(),
            source: "woocommerce".into(),
            started_at: started.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            finished_at: Some(
                (started + Duration::minutes(1))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
            ),
            status,
            full: false,
            pages: 1,
            fetched: 1,
            upserted: 1,
            requests: 1,
            retries: 0,
            error: error.map(str::to_string),
        }
    }

    fn totals(last: Option<DateTime<Utc>>) -> RunTotals {
        RunTotals {
            store: "main".into(),
            runs: vec![],
            requests: 0,
            retries: 0,
            fetched: 0,
            upserted: 0,
            last_success: last,
            data_as_of: last,
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<b>"Q4" & 'AOV'</b>"#),
            "&lt;b&gt;&quot;Q4&quot; &amp; &#39;AOV&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn a_failing_source_is_stale_since_the_first_failure_after_its_last_success() {
        let period = Duration::minutes(15);
        // Newest first: two failures after an ok run, a skipped run in between.
        let runs = vec![
            run(5, RunStatus::Failed, at(12, 30), Some("HTTP 500")),
            run(4, RunStatus::Skipped, at(12, 20), None),
            run(3, RunStatus::Failed, at(12, 15), Some("HTTP 500")),
            run(2, RunStatus::Ok, at(12, 0), None),
            run(1, RunStatus::Failed, at(11, 45), Some("old")),
        ];
        let s = source_state(
            SourceKind::Store,
            "main",
            "woocommerce",
            period,
            &runs,
            Some(&totals(Some(at(12, 1)))),
            at(12, 35),
        );
        assert_eq!(s.last_run.as_ref().map(|r| r.id), Some(5));
        assert_eq!(s.stale_since, Some(at(12, 15)));
        // Once a run succeeds again, the source is fresh.
        let mut ok = runs.clone();
        ok.insert(0, run(6, RunStatus::Ok, at(12, 45), None));
        let s = source_state(
            SourceKind::Store,
            "main",
            "woocommerce",
            period,
            &ok,
            Some(&totals(Some(at(12, 46)))),
            at(12, 50),
        );
        assert_eq!(s.stale_since, None);
        // No failure, but no success for more than 3 periods: stale from the 3rd period on.
        let s = source_state(
            SourceKind::Store,
            "main",
            "woocommerce",
            period,
            &[run(2, RunStatus::Ok, at(12, 0), None)],
            Some(&totals(Some(at(12, 1)))),
            at(13, 0),
        );
        assert_eq!(s.stale_since, Some(at(12, 46)));
    }

    #[test]
    fn the_chart_has_a_point_per_check_in_with_a_value() {
        let entry = |v: Option<&str>| HistoryEntry {
            at: at(12, 0),
            value: v.map(|v| Value::Money(v.parse().unwrap())),
            progress: None,
            status: None,
            window_from: "2026-10-01".into(),
            window_to: "2026-12-31".into(),
            timezone: "UTC".into(),
        };
        let svg = history_chart(&[entry(Some("10.00")), entry(None), entry(Some("30.00"))]);
        assert!(svg.starts_with("<svg"), "{svg}");
        // Lowest value at the bottom (y = 33), highest at the top (y = 3).
        assert!(svg.contains("points=\"3,33 157,3\""), "{svg}");
        assert!(svg.contains("2 check-ins"), "{svg}");
        assert!(history_chart(&[entry(None)]).contains("No check-in with a value yet"));
    }
}
