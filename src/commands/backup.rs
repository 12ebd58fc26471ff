//! `okrsync backup FILE [--force]`: a consistent copy of the database (SQLite online backup),
//! also while the daemon runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::store::Store;

pub(super) async fn backup(db: &Store, file: &Path, force: bool) -> Result<ExitCode> {
    let stats = db.backup_to(file, force).await?;
    crate::outln!(
        "backed up the database to {} ({} pages, {} bytes)",
        file.display(),
        stats.pages,
        stats.bytes
    );
    Ok(ExitCode::SUCCESS)
}
