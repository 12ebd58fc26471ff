//! `okrsync init`: write a commented starter configuration to the `--config` path, never
//! overwriting an existing file. The starter passes `okrsync check`; `okrsync connect` then
//! adds the stores (see `connect.rs`, which replaces the `stores = []` line).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// The line of the starter that says "no store yet"; `connect` removes it when it appends the
/// first `[[stores]]` table (TOML forbids both forms for one key).
pub(super) const NO_STORES_LINE: &str = "stores = []";

/// The comment above [`NO_STORES_LINE`], removed with it.
pub(super) const NO_STORES_COMMENT: [&str; 2] = [
    "# No store yet. `okrsync connect` removes this line when it adds the first [[stores]] table;",
    "# to write a store by hand instead, delete this line first.",
];

/// The starter configuration `okrsync init` writes.
pub(super) fn starter_config() -> String {
    format!(
        r#"# okrsync configuration, written by `okrsync init`.
#
# Next steps:
#   1. Add your store: okrsync asks for its credentials, checks them with one call, reads its
#      time zone and currency, and appends it below (secrets go to separate 0600 files):
#        okrsync connect woocommerce --url https://shop.example.com
#        okrsync connect shopify --shop my-store.myshopify.com
#   2. Add key results (uncomment the example at the end), then
#        okrsync check --online && okrsync sync && okrsync krs
#   3. Keep them current: okrsync run   (docs/deploy.md: systemd and containers)
#
# Every key is documented in config/okrsync.example.toml. Any key can be overridden by an
# environment variable OKRSYNC__SECTION__KEY (list indexes as numbers), such as
# OKRSYNC__DATABASE__PATH. Secrets may be given as <key>_env = "VAR" or <key>_file = "/path".

{}
{}
{NO_STORES_LINE}

[database]
# SQLite database file; a relative path is relative to this file's directory.
path = "okrsync.db"

# Status server of `okrsync run` (off unless `listen` is set): /healthz, /readyz, /metrics,
# /api/krs, /api/kpis, /api/logs. A non-loopback address needs a bearer token.
# [http]
# listen = "127.0.0.1:8080"
# token_env = "OKRSYNC_HTTP_TOKEN"

# Key results: one table per key result; `store` is a store's name (or "all").
# KPIs and windows: docs/kpis.md. Rates are fractions (0.18 = 18 %), money in the store's
# currency.
# [[key_results]]
# id = "aov-q"
# objective = "Grow revenue"
# title = "Average order value from 40 to 48 this quarter"
# kpi = "average_order_value"
# store = "main"
# window = "quarter_to_date"
# baseline = 40
# target = 48
"#,
        NO_STORES_COMMENT[0], NO_STORES_COMMENT[1]
    )
}

/// `okrsync init`: writes the starter to `path` (mode 0600), refusing to replace a file.
pub(super) fn init(path: &Path) -> Result<ExitCode> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "cannot write {}: the directory {} does not exist (create it first)",
            path.display(),
            dir.display()
        );
    }
    let mut opts = std::fs::OpenOptions::new();
    // create_new: an existing file (even one created a moment ago) is never replaced.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; okrsync init never overwrites a configuration: pass \
                 --config NEW_FILE, or add a store to it with `okrsync --config {} connect …`",
                path.display(),
                path.display()
            );
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    use std::io::Write;
    file.write_all(starter_config().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    crate::outln!("Wrote a starter configuration to {}.", path.display());
    crate::outln!("Next: add your store with one of");
    let cfg = if path == Path::new("okrsync.toml") {
        String::new()
    } else {
        format!("--config {} ", path.display())
    };
    crate::outln!("  okrsync {cfg}connect woocommerce --url https://shop.example.com");
    crate::outln!("  okrsync {cfg}connect shopify --shop my-store.myshopify.com");
    Ok(ExitCode::SUCCESS)
}
