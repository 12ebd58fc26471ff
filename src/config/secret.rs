//! Credentials: inline, from an environment variable (`<key>_env`) or from a file
//! (`<key>_file`, as systemd `LoadCredential` and container secrets provide them).
//!
//! Secrets are held in [`SecretString`], whose `Debug` prints `[REDACTED]`. Files that hold
//! secrets must not be readable by group or others.

use std::collections::HashMap;
use std::path::Path;

pub use secrecy::{ExposeSecret, SecretString};

/// Returns an error message when `path` is readable by group or others.
pub fn check_private(path: &Path) -> Result<(), String> {
    check_private_in(path, None)
}

/// Like [`check_private`], but a file inside `credentials_dir` (systemd's
/// `$CREDENTIALS_DIRECTORY`) only needs to be closed to others: systemd makes credentials
/// root-owned 0400 and grants the service user read access by an ACL, which shows as group bits.
pub fn check_private_in(path: &Path, credentials_dir: Option<&Path>) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        let systemd = credentials_dir.is_some_and(|d| path.starts_with(d));
        let forbidden = if systemd { 0o007 } else { 0o077 };
        if mode & forbidden != 0 {
            return Err(format!(
                "{} holds secrets but is readable by {} (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                if systemd { "others" } else { "group or others" },
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = credentials_dir;
    Ok(())
}

/// Reads a secret given by a file path (trailing newline removed).
pub fn read_secret_file(
    path: &Path,
    credentials_dir: Option<&Path>,
) -> Result<SecretString, String> {
    check_private_in(path, credentials_dir)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

/// Reads a secret from an environment variable of the given environment.
pub fn read_secret_env(env: &HashMap<String, String>, var: &str) -> Result<SecretString, String> {
    match env.get(var) {
        Some(v) if !v.is_empty() => Ok(SecretString::from(v.clone())),
        Some(_) => Err(format!("environment variable {var} is empty")),
        None => Err(format!("environment variable {var} is not set")),
    }
}
