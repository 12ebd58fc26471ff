//! Terminal output for the CLI: aligned tables, reports (`reports.rs`), notes on stderr and
//! sync progress (a bar on a terminal, log lines otherwise). The only module besides `main`
//! that writes to stdout/stderr: commands print through `outln!`, `out!` and `note!`.

mod reports;

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
        Box::new(LogProgress)
    }
}

/// One `tracing` line per committed page.
pub struct LogProgress;

impl Progress for LogProgress {
    fn update(&self, store: &str, stream: &str, done: u64, total: Option<u64>) {
        match total {
            Some(t) => tracing::info!(store, stream, done, total = t, "stored {done} of {t}"),
            None => tracing::info!(store, stream, done, "stored {done}"),
        }
    }
    fn finish(&self, store: &str, stream: &str, done: u64) {
        tracing::info!(store, stream, done, "{stream} done");
    }
}

/// A single-line progress bar on stderr.
#[derive(Default)]
pub struct BarProgress {
    last_len: Mutex<usize>,
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
        let text = match total {
            Some(t) if t > 0 => {
                let frac = (done as f64 / t as f64).clamp(0.0, 1.0);
                let filled = (frac * 30.0).round() as usize;
                format!(
                    "{store} {stream:<13} [{}{}] {done}/{t}",
                    "█".repeat(filled),
                    "·".repeat(30 - filled)
                )
            }
            _ => format!("{store} {stream:<13} {done}"),
        };
        self.draw(&text);
    }
    fn finish(&self, store: &str, stream: &str, done: u64) {
        self.draw(&format!("{store} {stream:<13} {done} stored"));
        let _ = writeln!(std::io::stderr());
        *self.last_len.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(&["a", "long"], &[vec!["xyz".into(), "1".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "a    long");
        assert_eq!(lines[2], "xyz  1");
    }
}
