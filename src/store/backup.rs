//! `okrsync backup FILE`: a consistent copy of the database through SQLite's online backup
//! API, while the daemon may be writing to it.
//!
//! The copy is made in ONE backup step under one read transaction: in WAL mode that reader
//! never blocks the daemon's writes, and sees one committed state, so the copy is a snapshot
//! (a stepwise copy would start over each time another process commits). It is written to a
//! temporary file next to the target, created 0600 (the database holds keyed email hashes
//! and the key), and renamed into place only when complete.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::{Store, StoreError};

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStats {
    pub pages: i32,
    pub bytes: u64,
}

impl Store {
    /// Copies the database to `dest`. An existing `dest` is refused unless `overwrite`.
    pub async fn backup_to(&self, dest: &Path, overwrite: bool) -> Result<BackupStats, StoreError> {
        let dest = dest.to_path_buf();
        self.call(move |db| backup(&db.conn, &dest, overwrite))
            .await
    }
}

fn fail(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Backup {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Creates `path` for writing only if it does not exist, private to its owner.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

fn backup(src: &Connection, dest: &Path, overwrite: bool) -> Result<BackupStats, StoreError> {
    let name = dest
        .file_name()
        .ok_or_else(|| fail(dest, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(fail(
            dest,
            format!("the directory {} does not exist", dir.display()),
        ));
    }
    // Claim the name first, so that two backups or a file that appears meanwhile are never
    // overwritten without being asked to.
    let mut claimed = false;
    if !overwrite {
        match create_private(dest) {
            Ok(_) => claimed = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(fail(
                    dest,
                    "the file exists; choose another name or pass --force to replace it",
                ));
            }
            Err(e) => return Err(fail(dest, e.to_string())),
        }
    }
    let tmp = dir.join(format!(".{name}.okrsync-backup-{}", std::process::id()));
    let result = (|| {
        create_private(&tmp).map_err(|e| fail(&tmp, e.to_string()))?;
        let mut to = Connection::open(&tmp)?;
        let pages = {
            let b = Backup::new(src, &mut to)?;
            // All pages in one step: one read transaction, one consistent snapshot. Busy or
            // locked (a checkpoint in progress) is retried, as `retry_busy` does elsewhere.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match b.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    _ => {
                        return Err(fail(dest, "the database stayed locked for 10 s; try again"));
                    }
                }
            }
            b.progress().pagecount
        };
        // A self-contained file: no -wal beside it.
        to.pragma_update(None, "journal_mode", "DELETE")?;
        to.close().map_err(|(_, e)| e)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, dest).map_err(|e| fail(dest, e.to_string()))?;
        let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(BackupStats { pages, bytes })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        if claimed {
            let _ = std::fs::remove_file(dest);
        }
    }
    result
}
