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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} holds secrets but is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// Reads a secret given by a file path (trailing newline removed).
pub fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    check_private(path)?;
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
