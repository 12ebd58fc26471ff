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
pub use reports::{history_csv, history_table, kpi_table, kr_table, runs_table, sync_report};

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

use std::sync::Mutex;

use crate::sources::Progress;

/// Renders rows as an aligned plain-text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push_str(c);
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
    fn table_aligns_columns() {
        let t = super::table(&["a", "long"], &[vec!["xyz".into(), "1".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "a    long");
        assert_eq!(lines[2], "xyz  1");
    }
}
