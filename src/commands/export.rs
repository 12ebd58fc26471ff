//! `okrsync export --what kpis|checkins|orders --format csv|json [--out FILE]`: one table for
//! spreadsheets and BI tools, to stdout or written atomically to a file.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result};

use super::UsageError;
use crate::cli::{ExportFormat, ExportWhat};
use crate::config::Settings;
use crate::daemon::Clock;
use crate::daemon::export;
use crate::kpi::WindowSpec;
use crate::output;
use crate::store::Store;

#[allow(clippy::too_many_arguments)]
pub(super) async fn export(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    what: ExportWhat,
    format: ExportFormat,
    window: &str,
    out: Option<&Path>,
) -> Result<ExitCode> {
    let window = WindowSpec::from_str(window).map_err(|e| UsageError(format!("--window: {e}")))?;
    let table = match what {
        ExportWhat::Kpis => export::kpis(settings, db, &window, clock.now()).await?,
        ExportWhat::Checkins => export::checkins(settings, db).await?,
        ExportWhat::Orders => export::orders(settings, db).await?,
    };
    let text = match format {
        ExportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&table.to_json())?),
        ExportFormat::Csv => output::csv(&table.columns, &table.cells()),
    };
    match out {
        None => crate::out!("{text}"),
        Some(path) => {
            write_atomically(path, text.as_bytes())
                .with_context(|| format!("writing the export to {}", path.display()))?;
            crate::note!("wrote {} rows to {}", table.rows.len(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, flushed to disk, then renames it over
/// `path`: a reader (or a crash) sees the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = dir.join(format!(".{name}.okrsync-export-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
