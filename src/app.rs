//! What each CLI command does: load settings, open the store, call the library, print.
//! Exit codes: 0 success, 1 error, 2 invalid configuration, 3 a sync failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command, Format};
use crate::config::{self, Settings, StoreSelector};
use crate::daemon::keyresults::{self, KpiReport, KrReport, Loaded};
use crate::daemon::scheduler;
use crate::daemon::sync::sync_store;
use crate::daemon::{Clock, Shutdown, ShutdownTrigger};
use crate::kpi::{KpiId, KpiSpec, WindowSpec};
use crate::output;
use crate::sources::AnySource;
use crate::store::Store;

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let clock = Clock::System;
    match cli.command {
        Command::Demo { dir, days } => demo(dir, days, &env, &clock).await,
        Command::Check { online } => check(&cli.config, &env, online).await,
        command => {
            let settings = load_settings(&cli.config, &env)?;
            let db = Store::open(&settings.database.path)
                .await
                .with_context(|| {
                    format!("opening database {}", settings.database.path.display())
                })?;
            match command {
                Command::Run => daemon(settings, db, clock).await,
                Command::Sync { store, full } => sync(&settings, &db, &clock, store, full).await,
                Command::Kpis {
                    store,
                    window,
                    product,
                    format,
                } => kpis(&settings, &db, &clock, store, &window, product, format).await,
                Command::Krs { format } => krs(&settings, &db, &clock, format).await,
                Command::Logs {
                    store,
                    limit,
                    failed,
                    format,
                } => logs(&db, store, limit, failed, format).await,
                Command::Demo { .. } | Command::Check { .. } => unreachable!("handled above"),
            }
        }
    }
}

/// Loads settings, turning configuration problems into one error listing them all.
pub fn load_settings(path: &Path, env: &HashMap<String, String>) -> Result<Settings> {
    // Keeps `ConfigErrors` in the chain so that `main` exits 2 for it.
    config::load(path, env).map_err(|e| {
        anyhow::Error::new(e).context(format!("invalid configuration {}", path.display()))
    })
}

async fn check(path: &Path, env: &HashMap<String, String>, online: bool) -> Result<ExitCode> {
    let settings = match config::load(path, env) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{}: {e}", path.display());
            return Ok(ExitCode::from(2));
        }
    };
    crate::outln!(
        "{}: OK ({} store{}, {} key result{})",
        path.display(),
        settings.stores.len(),
        if settings.stores.len() == 1 { "" } else { "s" },
        settings.key_results.len(),
        if settings.key_results.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    for n in &settings.notes {
        crate::outln!("note: {n}");
    }
    if !online {
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    let shutdown = Shutdown::never();
    // A check should answer quickly: one retry, short backoff (a sync uses the full policy).
    let quick = |mut s: crate::config::StoreSettings| {
        s.max_retries = s.max_retries.min(1);
        s.retry_base = s.retry_base.min(std::time::Duration::from_millis(500));
        s
    };
    // Time zones read here are reused for the analytics checks.
    let mut zones: HashMap<String, String> = HashMap::new();
    for store in &settings.stores {
        let store = quick(store.clone());
        let result = match AnySource::new(&store) {
            Ok(source) => match source.check_online(&shutdown).await {
                Ok(notes) => {
                    if let Some(tz) = store.timezone {
                        zones.insert(store.name.clone(), tz.name());
                    } else if let Ok(info) = source.store_info(&shutdown).await {
                        zones.insert(store.name.clone(), info.timezone.name());
                    }
                    Ok(notes)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(notes) => {
                crate::outln!("store {}: OK", store.name);
                for n in notes {
                    crate::outln!("  - {n}");
                }
            }
            Err(e) => {
                failed = true;
                crate::outln!("store {}: FAILED: {e}", store.name);
            }
        }
    }
    for a in &settings.analytics {
        let mut a = a.clone();
        a.max_retries = a.max_retries.min(1);
        a.retry_base = a.retry_base.min(std::time::Duration::from_millis(500));
        let linked = a.stores.first().cloned().unwrap_or_default();
        let Some(tz) = zones.get(&linked).cloned() else {
            crate::outln!(
                "analytics {} ({}): not checked: the time zone of store `{linked}` is unknown (its check failed above)",
                a.name,
                a.provider.name()
            );
            failed = true;
            continue;
        };
        let result = match crate::sources::analytics::AnyAnalytics::new(&a) {
            Ok(source) => source.check_online(&tz, &shutdown).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(notes) => {
                crate::outln!("analytics {} ({}): OK", a.name, a.provider.name());
                for n in notes {
                    crate::outln!("  - {n}");
                }
            }
            Err(e) => {
                failed = true;
                crate::outln!("analytics {} ({}): FAILED: {e}", a.name, a.provider.name());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

async fn daemon(settings: Settings, db: Store, clock: Clock) -> Result<ExitCode> {
    let (trigger, shutdown) = ShutdownTrigger::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: finishing the pages in flight");
        trigger.trigger();
    });
    tracing::info!(
        stores = settings.stores.len(),
        key_results = settings.key_results.len(),
        "okrsync daemon started"
    );
    scheduler::run(Arc::new(settings), db, clock, shutdown).await;
    tracing::info!("okrsync daemon stopped");
    Ok(ExitCode::SUCCESS)
}

/// Exit status of a `sync` stopped by SIGINT (Ctrl-C): 128 + 2, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit status of a `sync` stopped by SIGTERM: 128 + 15.
pub const EXIT_TERMINATED: u8 = 143;

/// An invalid command-line argument (`--store`, `--window`): the binary exits 2 for it, as
/// for an invalid configuration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Waits for SIGINT or SIGTERM; returns the exit status a one-off command stopped by it
/// reports ([`EXIT_INTERRUPTED`] or [`EXIT_TERMINATED`]).
async fn wait_for_signal() -> u8 {
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

async fn sync(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    store: Option<String>,
    full: bool,
) -> Result<ExitCode> {
    let (stores, sources): (Vec<_>, Vec<_>) = match &store {
        Some(name) => match (settings.store(name), settings.analytics_source(name)) {
            (Some(s), _) => (vec![s], vec![]),
            (None, Some(a)) => (vec![], vec![a]),
            (None, None) => return Err(UsageError(unknown_store(settings, name)).into()),
        },
        None => (
            settings.stores.iter().collect(),
            settings.analytics.iter().collect(),
        ),
    };
    // Ctrl-C (or SIGTERM) during a one-off sync also stops after the current page; the
    // command then exits 130 (or 143), never 0: the sync did not finish.
    let (trigger, shutdown) = ShutdownTrigger::new();
    let stopped_by = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let flag = stopped_by.clone();
    tokio::spawn(async move {
        let code = wait_for_signal().await;
        flag.store(code, std::sync::atomic::Ordering::SeqCst);
        trigger.trigger();
    });
    let progress = output::progress_for_terminal();
    let mut failed = false;
    for s in stores {
        let report = sync_store(s, db, clock, &shutdown, progress.as_ref(), full).await?;
        let sm = &report.summary;
        crate::outln!(
            "{}: {} (run {}, {} pages, {} records fetched, {} stored, {} requests, {} retries)",
            report.store,
            report.status,
            report.run_id,
            sm.pages,
            sm.fetched,
            sm.upserted,
            sm.requests,
            sm.retries
        );
        if let Some(e) = &sm.error {
            crate::outln!("  {e}");
        }
        failed |= report.status == crate::store::RunStatus::Failed;
    }
    // Each analytics source after the stores, so it knows their time zones; one failing
    // source never stops the others.
    for a in sources {
        let report =
            crate::daemon::analytics::sync_analytics(a, settings, db, clock, &shutdown, full)
                .await?;
        let sm = &report.summary;
        crate::outln!(
            "{} ({}): {} (run {}, {} records fetched, {} stored, {} requests, {} retries)",
            report.store,
            a.provider.name(),
            report.status,
            report.run_id,
            sm.fetched,
            sm.upserted,
            sm.requests,
            sm.retries
        );
        if let Some(e) = &sm.error {
            crate::outln!("  {e}");
        }
        failed |= report.status == crate::store::RunStatus::Failed;
    }
    let written = scheduler::evaluate_key_results(settings, db, clock).await?;
    if written > 0 {
        crate::outln!(
            "{written} key result{} updated",
            if written == 1 { "" } else { "s" }
        );
    }
    let signal = stopped_by.load(std::sync::atomic::Ordering::SeqCst);
    if signal != 0 {
        eprintln!(
            "sync interrupted (exit status {signal}): the pages read were stored; the next sync continues from there"
        );
        return Ok(ExitCode::from(signal));
    }
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn unknown_store(settings: &Settings, name: &str) -> String {
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

fn selector(settings: &Settings, store: Option<String>) -> Result<StoreSelector> {
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

async fn kpis(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    store: Option<String>,
    window: &str,
    product: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let sel = selector(settings, store)?;
    let window = WindowSpec::from_str(window).map_err(|e| UsageError(format!("--window: {e}")))?;
    let loaded = Loaded::load(settings, db, product.is_some()).await?;
    let mut report = match keyresults::kpi_report(&loaded, &sel, &window, clock.now()) {
        Ok(r) => r,
        // Not synced completely yet: every KPI is null with the reason, in the usual shape.
        Err(reason) => {
            let tz = match &sel {
                StoreSelector::Named(n) => settings.store(n).and_then(|s| s.timezone),
                StoreSelector::All => None,
            };
            keyresults::empty_report(&sel, &window, tz, clock.now(), &reason)
        }
    };
    if let Some(p) = product {
        add_product_kpis(&loaded, &sel, &window, clock.now(), &p, &mut report);
    }
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&report.to_json())?),
        Format::Table => crate::out!("{}", kpi_table(&report, &window)),
    }
    Ok(ExitCode::SUCCESS)
}

fn add_product_kpis(
    loaded: &Loaded,
    sel: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    product: &str,
    report: &mut KpiReport,
) {
    for id in [KpiId::ProductNetSales, KpiId::ProductUnits] {
        let spec = KpiSpec {
            id,
            product: Some(product.to_string()),
        };
        report
            .values
            .push((id, keyresults::compute_one(loaded, sel, window, now, &spec)));
    }
}

/// The KPI table printed by `kpis` and `demo`.
pub fn kpi_table(report: &KpiReport, window: &WindowSpec) -> String {
    let mut out = format!(
        "KPIs for {} · {} · {} to {} ({}){}\n",
        report.store,
        window.as_str(),
        report.window.range.from,
        report.window.range.to,
        report.window.timezone,
        report
            .currency
            .as_ref()
            .map(|c| format!(" · {c}"))
            .unwrap_or_default(),
    );
    let rows: Vec<Vec<String>> = report
        .values
        .iter()
        .map(|(id, v)| {
            let (value, note) = match v {
                Ok(c) => (
                    c.value
                        .as_ref()
                        .map(|v| v.display())
                        .unwrap_or_else(|| "—".into()),
                    c.reason.clone().unwrap_or_default(),
                ),
                Err(e) => ("—".into(), e.clone()),
            };
            vec![id.as_str().to_string(), value, note]
        })
        .collect();
    out.push_str(&output::table(&["kpi", "value", "note"], &rows));
    out
}

async fn krs(settings: &Settings, db: &Store, clock: &Clock, format: Format) -> Result<ExitCode> {
    let reports = evaluate_krs(settings, db, clock).await?;
    match format {
        Format::Json => {
            let arr: Vec<_> = reports.iter().map(KrReport::to_json).collect();
            crate::outln!("{}", serde_json::to_string_pretty(&arr)?);
        }
        Format::Table => crate::out!("{}", kr_table(&reports)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn evaluate_krs(settings: &Settings, db: &Store, clock: &Clock) -> Result<Vec<KrReport>> {
    let with_lines = settings
        .key_results
        .iter()
        .any(|k| k.kpi.id.needs_product());
    let loaded = Loaded::load(settings, db, with_lines).await?;
    let mut reports = keyresults::evaluate(settings, &loaded, clock.now());
    keyresults::attach_updated_at(db, &mut reports).await?;
    Ok(reports)
}

fn fmt_decimal(kind_value: Option<&crate::kpi::Value>, d: rust_decimal::Decimal) -> String {
    match kind_value {
        Some(crate::kpi::Value::Rate(_)) => crate::kpi::Value::Rate(d).display(),
        Some(crate::kpi::Value::Money(_)) => crate::kpi::Value::Money(d).display(),
        Some(crate::kpi::Value::Number(_)) => crate::kpi::Value::Number(d).display(),
        _ => d.normalize().to_string(),
    }
}

/// The key-result table printed by `krs` and `demo`.
pub fn kr_table(reports: &[KrReport]) -> String {
    if reports.is_empty() {
        return "No key results configured: add [[key_results]] to the config.\n".into();
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let s = &r.settings;
            let sample = r.current.as_ref().cloned().or_else(|| {
                Some(match s.kpi.id.kind() {
                    crate::kpi::ValueKind::Rate => crate::kpi::Value::Rate(s.target),
                    crate::kpi::ValueKind::Money => crate::kpi::Value::Money(s.target),
                    crate::kpi::ValueKind::Count => crate::kpi::Value::Count(0),
                    crate::kpi::ValueKind::Number => crate::kpi::Value::Number(s.target),
                })
            });
            vec![
                s.id.clone(),
                s.title.clone(),
                s.window.as_str(),
                format!(
                    "{} → {}",
                    fmt_decimal(sample.as_ref(), s.baseline),
                    fmt_decimal(sample.as_ref(), s.target)
                ),
                r.current
                    .as_ref()
                    .map(|v| v.display())
                    .unwrap_or_else(|| "—".into()),
                r.progress
                    .map(|p| format!("{:.0}%", p * rust_decimal::Decimal::from(100)))
                    .unwrap_or_else(|| "—".into()),
                r.expected
                    .map(|p| format!("{:.0}%", p * rust_decimal::Decimal::from(100)))
                    .unwrap_or_else(|| "—".into()),
                r.status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| r.reason.clone().unwrap_or_else(|| "—".into())),
            ]
        })
        .collect();
    output::table(
        &[
            "key result",
            "title",
            "window",
            "baseline → target",
            "current",
            "progress",
            "expected",
            "status",
        ],
        &rows,
    )
}

async fn logs(
    db: &Store,
    store: Option<String>,
    limit: u32,
    failed: bool,
    format: Format,
) -> Result<ExitCode> {
    let filtered = store.is_some() || failed;
    let what = match (&store, failed) {
        (Some(s), true) => format!("No failed or partial runs of `{s}` in the sync log."),
        (Some(s), false) => format!(
            "No runs of `{s}` in the sync log (check the name: stores and analytics sources are listed by name)."
        ),
        (None, true) => "No failed or partial runs in the sync log.".to_string(),
        (None, false) => String::new(),
    };
    let runs = db.runs(store, limit, failed).await?;
    match format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&runs)?),
        Format::Table => {
            if runs.is_empty() {
                if filtered {
                    crate::outln!("{what}");
                } else {
                    crate::outln!("No sync runs recorded yet: run `okrsync sync`.");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.store.clone(),
                        r.started_at.clone(),
                        format!("{}{}", r.status, if r.full { " (full)" } else { "" }),
                        r.pages.to_string(),
                        r.fetched.to_string(),
                        r.upserted.to_string(),
                        r.requests.to_string(),
                        r.retries.to_string(),
                    ]
                })
                .collect();
            crate::out!(
                "{}",
                output::table(
                    &[
                        "run",
                        "store",
                        "started (UTC)",
                        "status",
                        "pages",
                        "fetched",
                        "stored",
                        "requests",
                        "retries"
                    ],
                    &rows
                )
            );
            for r in runs.iter().filter(|r| r.error.is_some()) {
                crate::outln!(
                    "run {} ({}): {}",
                    r.id,
                    r.status,
                    r.error.as_deref().unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `okrsync demo`: a simulated WooCommerce store on loopback, a real config and database,
/// a real sync over HTTP, then the KPI and key-result tables.
async fn demo(
    dir: Option<PathBuf>,
    days: u32,
    env: &HashMap<String, String>,
    clock: &Clock,
) -> Result<ExitCode> {
    let keep = dir.is_some();
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("okrsync-demo-{}", std::process::id())),
    };
    if dir.join("okrsync.db").exists() {
        bail!(
            "{} already holds a demo database; pass another --dir or delete it",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let now = clock.now();
    eprintln!("Generating {days} days of simulated store history…");
    let mut state = okrsync_sim::SimState::generate(42, now, days, 24);
    okrsync_sim::demo_reviews(&mut state, now, days);
    let (key, secret) = (state.consumer_key.clone(), state.consumer_secret.clone());
    let sim = okrsync_sim::SimWoo::start(state)
        .await
        .context("starting the simulated store")?;
    eprintln!("Simulated WooCommerce store listening on {}", sim.url());
    let mut shop_state = okrsync_sim::ShopState::generate(43, now, days, 18);
    // A fast bucket so the demo pages through its history in seconds (Shopify's standard
    // plan restores 100 points a second).
    shop_state.restore_rate = 20_000.0;
    shop_state.bucket_max = 20_000.0;
    let token = shop_state.access_token.clone();
    let shop = okrsync_sim::SimShopify::start(shop_state)
        .await
        .context("starting the simulated Shopify shop")?;
    eprintln!("Simulated Shopify shop listening on {}", shop.url());
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
    eprintln!("Simulated Plausible site listening on {}", fake.url());
    let text = okrsync_sim::demo_config(&sim.url(), &key, &secret, &fake.url(), &plausible_key)
        + &okrsync_sim::demo_shopify_config(&shop.url(), &token);
    write_private(&config_path, &text)?;
    let settings = load_settings(&config_path, env)?;
    let db = Store::open(&settings.database.path).await?;
    let progress = output::progress_for_terminal();
    let shutdown = Shutdown::never();
    let mut code = ExitCode::SUCCESS;
    for s in &settings.stores {
        let report = sync_store(s, &db, clock, &shutdown, progress.as_ref(), false).await?;
        let sm = &report.summary;
        eprintln!(
            "Synced {}: {} ({} pages, {} records, {} HTTP requests)",
            report.store, report.status, sm.pages, sm.fetched, sm.requests
        );
        if let Some(e) = &sm.error {
            eprintln!("  {e}");
            code = ExitCode::from(3);
        }
    }
    for a in &settings.analytics {
        let report =
            crate::daemon::analytics::sync_analytics(a, &settings, &db, clock, &shutdown, false)
                .await?;
        let unit = match a.provider.feed() {
            crate::kpi::Feed::Traffic => "days",
            crate::kpi::Feed::PageSpeed => "samples",
            crate::kpi::Feed::Reviews => "reviews",
        };
        eprintln!(
            "Synced {} ({}): {} ({} {unit}, {} HTTP requests)",
            report.store,
            a.provider.name(),
            report.status,
            report.summary.fetched,
            report.summary.requests
        );
        if let Some(e) = &report.summary.error {
            eprintln!("  {e}");
            code = ExitCode::from(3);
        }
    }
    scheduler::evaluate_key_results(&settings, &db, clock).await?;
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
        crate::out!("{}", kpi_table(&report, &window));
    }
    crate::outln!();
    crate::out!("{}", kr_table(&evaluate_krs(&settings, &db, clock).await?));
    sim.stop().await;
    fake.stop();
    crate::outln!();
    if keep {
        crate::outln!("Demo config and database kept in {}.", dir.display());
        crate::outln!(
            "Try: cargo run --release -- --config {} logs   (or kpis, krs)",
            config_path.display()
        );
        crate::outln!(
            "The simulated stores stopped with the demo: `sync`, `run` and `check --online` with this config cannot connect."
        );
    } else {
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
        crate::outln!(
            "Pass --dir DIR to keep the demo config and database and explore them with `kpis`, `krs` and `logs`."
        );
    }
    Ok(code)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
