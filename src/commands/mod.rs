//! What each CLI command does, one file per command: load settings, open the store, call the
//! library, print through `output`. Exit codes: 0 success, 1 error, 2 invalid configuration or
//! command line, 3 a sync, delivery or online check failed, 130/143 a `sync` stopped by SIGINT/SIGTERM.

mod check;
mod connect;
mod demo;
// Reading the past and explaining a number (issue 18).
mod backup;
mod explain;
mod export;
mod health;
mod history;
mod init;
mod kpis;
mod krs;
mod logs;
mod push;
mod run;
mod sync;

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::config::{self, Settings, StoreSelector};
use crate::daemon::Clock;
use crate::store::Store;

/// Exit status of a `sync` stopped by SIGINT (Ctrl-C): 128 + 2, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit status of a `sync` stopped by SIGTERM: 128 + 15.
pub const EXIT_TERMINATED: u8 = 143;

/// An invalid command-line argument (`--store`, `--window`): the binary exits 2 for it, as
/// for an invalid configuration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let clock = Clock::System;
    crate::output::init_width(env.get("COLUMNS").map(String::as_str));
    match cli.command {
        Command::Demo {
            dir,
            days,
            serve,
            // The global --config, hidden from `demo --help`: demo writes its own config.
            config: _,
        } => demo::demo(dir, days, serve, &env, &clock).await,
        Command::Check { online } => check::check(&cli.config, &env, online).await,
        Command::Init => init::init(&cli.config),
        Command::Health { url } => health::health(&cli.config, url, &env).await,
        Command::Connect { platform } => connect::connect(&cli.config, platform, &env).await,
        command => {
            // Only commands that contact a store or service need the secrets now; the others
            // read the database and work when, say, a store's `_env` variable is set only in
            // the service's environment.
            let contacts = matches!(
                command,
                Command::Run | Command::Sync { .. } | Command::Push { .. }
            );
            let secrets = if contacts {
                config::SecretUse::Resolve
            } else {
                config::SecretUse::Defer
            };
            let settings = load_settings_with(&cli.config, &env, secrets)?;
            let db = Store::open(&settings.database.path)
                .await
                .with_context(|| {
                    format!("opening database {}", settings.database.path.display())
                })?;
            match command {
                Command::Run => run::daemon(settings, db, clock).await,
                Command::Sync { store, full } => {
                    sync::sync(&settings, &db, &clock, store, full).await
                }
                Command::Kpis {
                    store,
                    window,
                    product,
                    format,
                    compare,
                } => {
                    kpis::kpis(
                        &settings, &db, &clock, store, &window, product, format, compare,
                    )
                    .await
                }
                Command::Push {
                    sink,
                    dry_run,
                    digest,
                } => push::push(&settings, &db, &clock, sink, dry_run, digest).await,
                Command::Krs { format } => krs::krs(&settings, &db, &clock, format).await,
                Command::History {
                    kr_id,
                    since,
                    format,
                } => history::history(&settings, &db, &kr_id, since.as_deref(), format).await,
                Command::Logs {
                    store,
                    limit,
                    failed,
                    format,
                } => logs::logs(&settings, &db, store, limit, failed, format).await,
                // Reading the past and explaining a number (issue 18).
                Command::Explain {
                    kpi,
                    store,
                    window,
                    product,
                    format,
                } => {
                    explain::explain(
                        &settings, &db, &clock, &kpi, store, &window, product, format,
                    )
                    .await
                }
                Command::Export {
                    what,
                    format,
                    window,
                    out,
                } => {
                    export::export(
                        &settings,
                        &db,
                        &clock,
                        what,
                        format,
                        &window,
                        out.as_deref(),
                    )
                    .await
                }
                Command::Backup { file, force } => backup::backup(&db, &file, force).await,
                Command::Demo { .. }
                | Command::Check { .. }
                | Command::Init
                | Command::Health { .. }
                | Command::Connect { .. } => unreachable!("handled above"),
            }
        }
    }
}

/// Loads settings, turning configuration problems into one error listing them all.
pub fn load_settings(path: &Path, env: &HashMap<String, String>) -> Result<Settings> {
    load_settings_with(path, env, config::SecretUse::Resolve)
}

/// [`load_settings`], with secrets read now or only checked for shape.
pub fn load_settings_with(
    path: &Path,
    env: &HashMap<String, String>,
    secrets: config::SecretUse,
) -> Result<Settings> {
    // Keeps `ConfigErrors` in the chain so that `main` exits 2 for it.
    config::load_with(path, env, secrets).map_err(|e| {
        anyhow::Error::new(e).context(format!("invalid configuration {}", path.display()))
    })
}

/// Waits for SIGINT or SIGTERM; returns the exit status a one-off command stopped by it
/// reports ([`EXIT_INTERRUPTED`] or [`EXIT_TERMINATED`]).
pub(crate) async fn wait_for_signal() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => EXIT_INTERRUPTED,
                    _ = term.recv() => EXIT_TERMINATED,
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                EXIT_INTERRUPTED
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        EXIT_INTERRUPTED
    }
}

pub(crate) fn unknown_store(settings: &Settings, name: &str) -> String {
    let mut s = format!(
        "unknown store `{name}` (configured: {})",
        settings
            .stores
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !settings.analytics.is_empty() {
        s.push_str(&format!(
            "; analytics sources: {}",
            settings
                .analytics
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

pub(crate) fn selector(settings: &Settings, store: Option<String>) -> Result<StoreSelector> {
    Ok(match store.as_deref() {
        Some("all") => StoreSelector::All,
        Some(name) => {
            if settings.store(name).is_none() {
                return Err(UsageError(format!(
                    "unknown store `{name}` (configured: {}; or \"all\")",
                    settings
                        .stores
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            }
            StoreSelector::Named(name.to_string())
        }
        None if settings.stores.len() == 1 => StoreSelector::Named(settings.stores[0].name.clone()),
        None => StoreSelector::All,
    })
}

/// Writes a secret file readable by its owner only (an existing one is replaced).
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
    }
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
