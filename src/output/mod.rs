//! Terminal output for the CLI: aligned tables, reports (`reports.rs`), notes on stderr and
//! sync progress (a bar on a terminal, log lines otherwise). The only module besides `main`
//! that writes to stdout/stderr: commands print through `outln!`, `out!` and `note!`.

mod compare;
mod csv;
mod explain;
mod reports;

pub use compare::compare_table;
pub use csv::csv;
pub use explain::{explain_csv, explain_table};
pub use reports::{
    LogZone, history_csv, history_table, kpi_table, kr_table, runs_table, sync_report,
};

use std::io::{IsTerminal, Write};

/// `println!` that does not panic when stdout is closed (`okrsync krs | head -1`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that does not panic when stdout is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
/// `eprintln!` for messages to the person at the terminal (progress of the demo, why a sync
/// stopped); it does not panic when stderr is closed.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::sync::{Mutex, OnceLock};

use crate::sources::Progress;

/// The width tables are fitted to, set once at start-up by [`init_width`]; `None` (never
/// set, or output that is neither a terminal nor given `COLUMNS`) leaves tables uncut.
static WIDTH: OnceLock<Option<usize>> = OnceLock::new();

/// Chooses the width tables fit: `columns` (the `COLUMNS` variable, which the command line
/// reads) when it is a positive number, else the terminal's width when stdout is one. Piped
/// output without `COLUMNS` is never cut, so scripts and files get whole cells.
pub fn init_width(columns: Option<&str>) {
    let _ = WIDTH.set(width_from(columns, terminal_columns()));
}

fn width_from(columns: Option<&str>, terminal: Option<usize>) -> Option<usize> {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
        .or(terminal)
}

/// The terminal's width when stdout is a terminal.
fn terminal_columns() -> Option<usize> {
    #[cfg(unix)]
    {
        let stdout = std::io::stdout();
        if !stdout.is_terminal() {
            return None;
        }
        rustix::termios::tcgetwinsize(&stdout)
            .ok()
            .map(|w| usize::from(w.ws_col))
            .filter(|w| *w > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Renders rows as an aligned plain-text table, fitted to the width chosen by [`init_width`].
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    table_fit(headers, rows, WIDTH.get().copied().flatten())
}

/// Text columns never shrink below this (nor below their header).
const MIN_FLEX: usize = 10;

/// Whether a cell is words (a title, a reason, a delivery list) rather than a number, a date
/// or a code: at least two words with letters. Only columns holding such cells are cut.
fn is_text(cell: &str) -> bool {
    cell.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
        >= 2
}

/// `s` cut to `width` characters, ending in `…` when cut.
fn truncate(s: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if s.chars().count() <= width {
        return s.into();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t.into()
}

/// Renders rows as an aligned table at most `max_width` characters wide when that is given:
/// the widest text columns (see [`is_text`]) are cut first, with `…`, never below their
/// header; numbers, dates and codes are never cut (a table that cannot fit stays wider).
pub fn table_fit(headers: &[&str], rows: &[Vec<String>], max_width: Option<usize>) -> String {
    match fitted_widths(headers, rows, max_width) {
        Some(widths) => render(headers, rows, &widths),
        None => records(headers, rows, max_width.unwrap_or(usize::MAX)),
    }
}

/// Like [`table`], but when the table does not fit even with its text cut, the `optional`
/// columns (indexes, least needed first) are left out one by one until it does, and a line
/// below says which; only a table that cannot fit without them becomes blocks.
pub fn table_dropping(headers: &[&str], rows: &[Vec<String>], optional: &[usize]) -> String {
    table_dropping_fit(headers, rows, optional, WIDTH.get().copied().flatten())
}

/// [`table_dropping`] for a given width.
fn table_dropping_fit(
    headers: &[&str],
    rows: &[Vec<String>],
    optional: &[usize],
    max: Option<usize>,
) -> String {
    if max.is_none() || fitted_widths(headers, rows, max).is_some() {
        return table_fit(headers, rows, max);
    }
    let mut keep: Vec<usize> = (0..headers.len()).collect();
    let mut hidden: Vec<&str> = Vec::new();
    for &drop in optional {
        keep.retain(|&i| i != drop);
        hidden.push(headers[drop]);
        let h: Vec<&str> = keep.iter().map(|&i| headers[i]).collect();
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                keep.iter()
                    .map(|&i| row.get(i).cloned().unwrap_or_default())
                    .collect()
            })
            .collect();
        if let Some(widths) = fitted_widths(&h, &r, max) {
            let mut out = render(&h, &r, &widths);
            out.push_str(&format!(
                "(not shown, to fit the terminal: {}; widen it or use --format json)\n",
                hidden.join(", ")
            ));
            return out;
        }
    }
    table_fit(headers, rows, max)
}

/// The column widths that fit `max_width` (text columns cut first), or `None` when the table
/// cannot fit.
fn fitted_widths(
    headers: &[&str],
    rows: &[Vec<String>],
    max_width: Option<usize>,
) -> Option<Vec<usize>> {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    if let Some(max) = max_width {
        let floors: Vec<usize> = (0..n)
            .map(|i| {
                let text = rows.iter().any(|r| r.get(i).is_some_and(|c| is_text(c)));
                if text {
                    widths[i].min(headers[i].chars().count().max(MIN_FLEX))
                } else {
                    widths[i]
                }
            })
            .collect();
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while total(&widths) > max {
            let Some(i) = (0..n)
                .filter(|&i| widths[i] > floors[i])
                .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)))
            else {
                break;
            };
            widths[i] -= 1;
        }
        if total(&widths) > max {
            return None;
        }
    }
    Some(widths)
}

/// The aligned table with these column widths (cells cut with `…` to fit them).
fn render(headers: &[&str], rows: &[Vec<String>], widths: &[usize]) -> String {
    let n = headers.len();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            let c = truncate(c, widths[i]);
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push_str(&c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    line(
        widths
            .iter()
            .map(|w| "─".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
        &mut out,
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// A table too wide for `max` even with its text cut, one block per row (`header  value`
/// lines, like `psql`'s expanded display): every header kept, text values cut to fit.
fn records(headers: &[&str], rows: &[Vec<String>], max: usize) -> String {
    let label = headers.iter().map(|h| h.chars().count()).max().unwrap_or(0);
    let room = max.saturating_sub(label + 2).max(MIN_FLEX);
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (h, cell) in headers.iter().zip(row) {
            let cell = if is_text(cell) {
                truncate(cell, room)
            } else {
                cell.into()
            };
            let pad = label - h.chars().count();
            out.push_str(format!("{h}{}  {cell}", " ".repeat(pad)).trim_end());
            out.push('\n');
        }
    }
    out
}

/// Reasons said once, below a table: a reason shown on several rows (or too long for a
/// cell) becomes a numbered note and its rows show `see note N`.
pub struct Notes {
    /// How many rows give each reason.
    counts: std::collections::HashMap<String, usize>,
    /// The notes, numbered from 1 in the order rows first give them.
    list: Vec<String>,
}

/// A reason longer than this becomes a note even when only one row gives it.
const INLINE_REASON: usize = 40;

impl Notes {
    /// Notes for a table whose rows give these reasons (one per row that has one).
    pub fn new<'a>(reasons: impl IntoIterator<Item = &'a str>) -> Notes {
        let mut counts = std::collections::HashMap::new();
        for r in reasons {
            *counts.entry(r.to_string()).or_insert(0) += 1;
        }
        Notes {
            counts,
            list: Vec::new(),
        }
    }

    /// The cell for a row giving `reason`: the reason itself when it is short and on this row
    /// only, else `see note N`.
    pub fn cell(&mut self, reason: &str) -> String {
        let repeated = self.counts.get(reason).copied().unwrap_or(0) > 1;
        if !repeated && reason.chars().count() <= INLINE_REASON {
            return reason.to_string();
        }
        let n = match self.list.iter().position(|r| r == reason) {
            Some(i) => i + 1,
            None => {
                self.list.push(reason.to_string());
                self.list.len()
            }
        };
        format!("see note {n}")
    }

    /// The notes as printed below the table (empty when there are none).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.list.iter().enumerate() {
            out.push_str(&format!("note {}: {r}\n", i + 1));
        }
        out
    }
}

pub use crate::text::group_digits;

/// A value as tables show it: [`crate::kpi::Value::display`] with thousands separators.
pub fn value_text(v: &crate::kpi::Value) -> String {
    group_digits(&v.display())
}

/// A count with its noun for people: `1 page`, `16,740 records`.
pub fn counted(n: u64, noun: &str) -> String {
    format!(
        "{} {}",
        group_digits(&n.to_string()),
        crate::text::plural_noun(n, noun)
    )
}

/// Picks the progress reporter for `okrsync sync`: a bar when stderr is a terminal.
pub fn progress_for_terminal() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(BarProgress::default())
    } else {
        Box::new(LogProgress::default())
    }
}

/// Records per second and time left of each stream, from its first progress report.
#[derive(Default)]
struct Speed {
    /// (store, stream) → when it first reported, and how many records it had then.
    first: Mutex<std::collections::HashMap<(String, String), (std::time::Instant, u64)>>,
}

impl Speed {
    /// The rate and, with a total, the time left; `None` until a second report.
    fn measure(
        &self,
        store: &str,
        stream: &str,
        done: u64,
        total: Option<u64>,
    ) -> Option<(f64, Option<std::time::Duration>)> {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        let (t0, d0) = *first
            .entry((store.to_string(), stream.to_string()))
            .or_insert((std::time::Instant::now(), done));
        rate_and_eta(done.saturating_sub(d0), t0.elapsed(), done, total)
    }

    fn forget(&self, store: &str, stream: &str) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.remove(&(store.to_string(), stream.to_string()));
    }
}

/// Records per second from `gained` records over `elapsed`, and the time left for
/// `total - done` at that rate. `None` before anything was gained.
fn rate_and_eta(
    gained: u64,
    elapsed: std::time::Duration,
    done: u64,
    total: Option<u64>,
) -> Option<(f64, Option<std::time::Duration>)> {
    let secs = elapsed.as_secs_f64();
    if gained == 0 || secs <= 0.0 {
        return None;
    }
    let rate = gained as f64 / secs;
    let eta =
        total.map(|t| std::time::Duration::from_secs_f64(t.saturating_sub(done) as f64 / rate));
    Some((rate, eta))
}

/// `12/s, ETA 1m05s`.
fn speed_text(rate: f64, eta: Option<std::time::Duration>) -> String {
    let rate = if rate >= 10.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    };
    match eta {
        Some(d) => {
            let s = d.as_secs_f64().round() as u64;
            let eta = if s >= 3600 {
                format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
            } else if s >= 60 {
                format!("{}m{:02}s", s / 60, s % 60)
            } else {
                format!("{s}s")
            };
            format!("{rate}, ETA {eta}")
        }
        None => rate,
    }
}

/// One `tracing` line per committed page, with the rate and the time left.
#[derive(Default)]
pub struct LogProgress {
    speed: Speed,
}

impl Progress for LogProgress {
    fn update(&self, store: &str, stream: &str, done: u64, total: Option<u64>) {
        let speed = self
            .speed
            .measure(store, stream, done, total)
            .map(|(r, e)| format!(" ({})", speed_text(r, e)))
            .unwrap_or_default();
        match total {
            Some(t) => {
                tracing::info!(
                    store,
                    stream,
                    done,
                    total = t,
                    "stored {done} of {t}{speed}"
                )
            }
            None => tracing::info!(store, stream, done, "stored {done}{speed}"),
        }
    }
    fn finish(&self, store: &str, stream: &str, done: u64) {
        self.speed.forget(store, stream);
        tracing::info!(store, stream, done, "{stream} done");
    }
}

/// A single-line progress bar on stderr, with the rate and the time left.
#[derive(Default)]
pub struct BarProgress {
    last_len: Mutex<usize>,
    speed: Speed,
}

impl BarProgress {
    fn draw(&self, text: &str) {
        let mut last = self.last_len.lock().unwrap_or_else(|e| e.into_inner());
        let pad = last.saturating_sub(text.chars().count());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{text}{}", " ".repeat(pad));
        let _ = err.flush();
        *last = text.chars().count();
    }
}

impl Progress for BarProgress {
    fn update(&self, store: &str, stream: &str, done: u64, total: Option<u64>) {
        let speed = self
            .speed
            .measure(store, stream, done, total)
            .map(|(r, e)| format!("  {}", speed_text(r, e)))
            .unwrap_or_default();
        let text = match total {
            Some(t) if t > 0 => {
                let frac = (done as f64 / t as f64).clamp(0.0, 1.0);
                let filled = (frac * 30.0).round() as usize;
                format!(
                    "{store} {stream:<13} [{}{}] {done}/{t}{speed}",
                    "█".repeat(filled),
                    "·".repeat(30 - filled)
                )
            }
            _ => format!("{store} {stream:<13} {done}{speed}"),
        };
        self.draw(&text);
    }
    fn finish(&self, store: &str, stream: &str, done: u64) {
        self.speed.forget(store, stream);
        self.draw(&format!("{store} {stream:<13} {done} stored"));
        let _ = writeln!(std::io::stderr());
        *self.last_len.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn rate_and_time_left() {
        // 1,000 orders in 4 s: 250/s; 15,000 left: 60 s.
        let (rate, eta) =
            super::rate_and_eta(1000, Duration::from_secs(4), 1000, Some(16_000)).unwrap();
        assert_eq!(rate, 250.0);
        assert_eq!(eta, Some(Duration::from_secs(60)));
        assert_eq!(super::speed_text(rate, eta), "250/s, ETA 1m00s");
        assert_eq!(
            super::speed_text(2.5, Some(Duration::from_secs(3725))),
            "2.5/s, ETA 1h02m"
        );
        assert_eq!(super::speed_text(40.0, None), "40/s");
        // Nothing gained yet (the first report): no rate to show.
        assert!(super::rate_and_eta(0, Duration::from_secs(1), 100, Some(200)).is_none());
    }

    #[test]
    fn optional_columns_go_before_a_table_turns_into_blocks() {
        let headers = ["id", "title", "data as of", "progress"];
        let rows = vec![vec![
            "net-sales-q".into(),
            "Net sales of 130,000 this quarter".into(),
            "2026-12-03 18:43Z".into(),
            "60%".into(),
        ]];
        // Fits without "data as of" (cut title at its floor: 11 + 10 + 8 + 4 = 33 + 4 gaps).
        let t = super::table_dropping_fit(&headers, &rows, &[2], Some(40));
        assert!(t.lines().next().unwrap().contains("progress"), "{t}");
        assert!(!t.contains("2026-12-03"), "{t}");
        assert!(
            t.ends_with(
                "(not shown, to fit the terminal: data as of; widen it or use --format json)\n"
            ),
            "{t}"
        );
        assert!(
            t.lines()
                .all(|l| l.chars().count() <= 40 || l.starts_with("(not shown")),
            "{t}"
        );
        // Wide enough: every column, no remark.
        let wide = super::table_dropping_fit(&headers, &rows, &[2], Some(200));
        assert!(
            wide.contains("2026-12-03") && !wide.contains("not shown"),
            "{wide}"
        );
        // Too narrow even without it: blocks, every header kept.
        let blocks = super::table_dropping_fit(&headers, &rows, &[2], Some(20));
        assert!(
            blocks.lines().any(|l| l.starts_with("data as of")),
            "{blocks}"
        );
    }

    #[test]
    fn table_fits_the_width_by_cutting_text_columns_only() {
        let headers = ["key result", "title", "current", "status"];
        let rows = vec![
            vec![
                "aov".into(),
                "Grow the average order value across every channel this quarter".into(),
                "1,234.50".into(),
                "on_track".into(),
            ],
            vec![
                "orders".into(),
                "More orders".into(),
                "16,740".into(),
                "no orders in window".into(),
            ],
        ];
        let whole = super::table_fit(&headers, &rows, None);
        assert!(
            whole.contains("across every channel this quarter"),
            "{whole}"
        );
        let fitted = super::table_fit(&headers, &rows, Some(60));
        for line in fitted.lines() {
            assert!(
                line.chars().count() <= 60,
                "{} chars: {line}",
                line.chars().count()
            );
        }
        let lines: Vec<&str> = fitted.lines().collect();
        // Every header kept; the title cut with an ellipsis; numbers whole.
        for h in headers {
            assert!(lines[0].contains(h), "{fitted}");
        }
        assert!(lines[2].contains("Grow the"), "{fitted}");
        assert!(lines[2].contains('…'), "{fitted}");
        assert!(
            lines[2].contains("1,234.50") && lines[3].contains("16,740"),
            "{fitted}"
        );
        // Too narrow for a row per line: a block per row, every header kept, numbers whole.
        let narrow = super::table_fit(&headers, &rows, Some(30));
        for line in narrow.lines() {
            assert!(line.chars().count() <= 30, "{line}");
        }
        assert!(
            narrow.starts_with("key result  aov\ntitle       Grow the"),
            "{narrow}"
        );
        assert!(narrow.contains("current     1,234.50\n"), "{narrow}");
        assert!(narrow.contains("\n\nkey result  orders\n"), "{narrow}");
        // COLUMNS wins over the terminal; nothing (piped) leaves tables whole.
        assert_eq!(super::width_from(Some("80"), Some(200)), Some(80));
        assert_eq!(super::width_from(Some("wide"), Some(120)), Some(120));
        assert_eq!(super::width_from(Some("0"), None), None);
        assert_eq!(super::width_from(None, None), None);
    }

    #[test]
    fn a_repeated_reason_is_one_note() {
        let reason = "no analytics source linked to store main";
        let long = "store `x` has not completed a first sync yet: run `okrsync sync --store x`";
        let mut notes = super::Notes::new([reason, reason, "no orders in window", reason, long]);
        assert_eq!(notes.cell(reason), "see note 1");
        assert_eq!(notes.cell(reason), "see note 1");
        assert_eq!(notes.cell("no orders in window"), "no orders in window");
        assert_eq!(notes.cell(long), "see note 2");
        assert_eq!(
            notes.render(),
            format!("note 1: {reason}\nnote 2: {long}\n")
        );
        assert_eq!(super::Notes::new([]).render(), "");
    }

    #[test]
    fn thousands_separators() {
        let g = super::group_digits;
        assert_eq!(g("1234.50"), "1,234.50");
        assert_eq!(g("-1234567.5"), "-1,234,567.5");
        assert_eq!(g("16740"), "16,740");
        assert_eq!(g("+1000"), "+1,000");
        assert_eq!(g("999.99"), "999.99");
        assert_eq!(g("21.43%"), "21.43%");
        assert_eq!(g("—"), "—");
        use crate::kpi::Value;
        let money = Value::Money("1234.5".parse().unwrap());
        assert_eq!(super::value_text(&money), "1,234.50");
        // JSON and the plain display keep machine numbers.
        assert_eq!(money.display(), "1234.50");
        assert_eq!(money.to_json(), serde_json::json!("1234.50"));
        assert_eq!(super::value_text(&Value::Count(16740)), "16,740");
        assert_eq!(super::counted(1, "page"), "1 page");
        assert_eq!(super::counted(16740, "record"), "16,740 records");
    }

    #[test]
    fn table_aligns_columns() {
        let t = super::table(&["a", "long"], &[vec!["xyz".into(), "1".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "a    long");
        assert_eq!(lines[2], "xyz  1");
    }
}
