//! `okrsync demo`: the simulated stores and analytics site on loopback, a real config and
//! database, a real sync over HTTP, then the KPI and key-result tables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::load_settings;
use crate::config::StoreSelector;
use crate::daemon::keyresults::{self, Loaded, current_reports};
use crate::daemon::sync::{SyncJob, sync_all};
use crate::daemon::{Clock, Shutdown};
use crate::kpi::WindowSpec;
use crate::output;
use crate::store::Store;

/// `okrsync demo`: a simulated WooCommerce store on loopback, a real config and database,
/// a real sync over HTTP, then the KPI and key-result tables.
///
/// With `serve`, the simulated services stay up after the tables until SIGINT/SIGTERM (then
/// exit 0), and the demo directory is kept (`./okrsync-demo` unless `dir` says otherwise).
pub(super) async fn demo(
    dir: Option<PathBuf>,
    days: u32,
    serve: bool,
    env: &HashMap<String, String>,
    clock: &Clock,
) -> Result<ExitCode> {
    let keep = dir.is_some() || serve;
    let dir = match dir {
        Some(d) => d,
        None if serve => PathBuf::from("okrsync-demo"),
        None => std::env::temp_dir().join(format!("okrsync-demo-{}", std::process::id())),
    };
    if dir.join("okrsync.db").exists() {
        bail!(
            "{} already holds a demo database; pass another --dir or delete it",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Printed commands must work from any directory.
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    let now = clock.now();
    crate::note!("Generating {days} days of simulated store history…");
    let mut state = okrsync_sim::SimState::generate(42, now, days, 24);
    okrsync_sim::demo_reviews(&mut state, now, days);
    let (key, secret) = (state.consumer_key.clone(), state.consumer_secret.clone());
    let sim = okrsync_sim::SimWoo::start(state)
        .await
        .context("starting the simulated store")?;
    crate::note!("Simulated WooCommerce store listening on {}", sim.url());
    let mut shop_state = okrsync_sim::ShopState::generate(43, now, days, 18);
    // A fast bucket so the demo pages through its history in seconds (Shopify's standard
    // plan restores 100 points a second).
    shop_state.restore_rate = 20_000.0;
    shop_state.bucket_max = 20_000.0;
    let token = shop_state.access_token.clone();
    let shop = okrsync_sim::SimShopify::start(shop_state)
        .await
        .context("starting the simulated Shopify shop")?;
    crate::note!("Simulated Shopify shop listening on {}", shop.url());
    let config_path = dir.join("okrsync.toml");
    let traffic = okrsync_sim::demo_traffic(
        crate::domain::StoreTz::parse("Europe/Paris")
            .unwrap_or(crate::domain::StoreTz::UTC)
            .local_date(now),
        days,
    );
    let plausible_key = traffic.api_key.clone();
    let fake = okrsync_sim::sim_analytics::SimAnalytics::start(traffic)
        .await
        .context("starting the simulated Plausible site")?;
    crate::note!("Simulated Plausible site listening on {}", fake.url());
    let text = okrsync_sim::demo_config(&sim.url(), &key, &secret, &fake.url(), &plausible_key)
        + &okrsync_sim::demo_shopify_config(&shop.url(), &token);
    super::write_private(&config_path, &text)?;
    // `OKRSYNC__…` overrides are meant for the user's own config (the container image and the
    // systemd unit set OKRSYNC__DATABASE__PATH): the demo must not write into that database.
    let env: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("OKRSYNC__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let settings = load_settings(&config_path, &env)?;
    let db = Store::open(&settings.database.path).await?;
    let progress = output::progress_for_terminal();
    let mut any_error = false;
    sync_all(
        &settings,
        &SyncJob::all(&settings),
        &db,
        clock,
        &Shutdown::never(),
        progress.as_ref(),
        false,
        &mut |job, report| {
            any_error |= report.summary.error.is_some();
            crate::note!("{}", output::sync_report(job, report).trim_end());
        },
    )
    .await?;
    let code = if any_error {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    };
    let loaded = Loaded::load(&settings, &db, false).await?;
    let window = WindowSpec::Last30Days;
    for s in &settings.stores {
        let report = keyresults::kpi_report(
            &loaded,
            &StoreSelector::Named(s.name.clone()),
            &window,
            clock.now(),
        )
        .map_err(anyhow::Error::msg)?;
        crate::outln!();
        crate::out!("{}", output::kpi_table(&report, &window));
    }
    crate::outln!();
    crate::out!(
        "{}",
        output::kr_table(&current_reports(&settings, &db, clock.now()).await?)
    );
    crate::outln!();
    if serve {
        // Listen before saying so: a SIGTERM sent right after the hint must stop us cleanly.
        let signals = Signals::listen()?;
        drop(db);
        crate::outln!("Demo config and database kept in {}.", dir.display());
        crate::outln!("The simulated services keep running until Ctrl-C (or SIGTERM). Try:");
        for args in ["krs", "kpis", "logs", "sync", "check --online", "run"] {
            crate::outln!("  okrsync --config {} {args}", config_path.display());
        }
        crate::outln!("Serving the simulated stores; press Ctrl-C to stop.");
        signals.wait().await;
        crate::note!("Stopping the simulated services…");
        sim.stop().await;
        shop.stop().await;
        fake.stop();
        crate::note!("Stopped. The demo directory {} is kept.", dir.display());
        return Ok(code);
    }
    sim.stop().await;
    shop.stop().await;
    fake.stop();
    if keep {
        crate::outln!("Demo config and database kept in {}.", dir.display());
        crate::outln!(
            "Try: okrsync --config {} krs   (or kpis, logs)",
            config_path.display()
        );
        crate::outln!(
            "The simulated stores stopped with the demo, so `sync`, `run` and `check --online` cannot reach them: \
             run `okrsync demo --serve --dir NEW_DIR` to keep them up."
        );
    } else {
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        crate::outln!(
            "Pass --dir DIR to keep the demo config and database and explore them with `kpis`, `krs` and `logs`,"
        );
        crate::outln!(
            "or --serve to also keep the simulated stores up for `sync`, `run` and `check --online`."
        );
    }
    Ok(code)
}

/// SIGINT and SIGTERM, listened for from creation on.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
