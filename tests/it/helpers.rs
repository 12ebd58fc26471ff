//! Test harness: a simulated WooCommerce store on a random port, a temp directory with a
//! config and database, and helpers to sync through the library or run the real binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{DateTime, TimeZone, Utc};
use okrsync::config::{self, Settings, StoreSelector};
use okrsync::daemon::keyresults::{self, Loaded};
use okrsync::daemon::sync::{SyncReport, sync_store};
use okrsync::daemon::{Clock, Shutdown};
use okrsync::kpi::{KpiId, Value, WindowSpec};
use okrsync::sources::QuietProgress;
use okrsync::store::Store;
use okrsync_sim::{SimState, SimWoo};
use rust_decimal::Decimal;

pub const KEY: &str = "ck_test_1234567890abcdef";
pub const SECRET: &str = "cs_test/s3cr+t=value&more";

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// An empty simulated store (Europe/Paris, EUR) with the test credentials.
pub fn empty_state() -> SimState {
    SimState::new(KEY, SECRET, "Europe/Paris", "EUR")
}

pub struct Harness {
    pub sim: SimWoo,
    /// Holds the config and database; removed on drop.
    pub _dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub settings: Settings,
    pub db: Store,
}

/// The config text for one store at `url`; `extra` is appended to the store table.
pub fn config_text(url: &str, extra_store: &str, extra: &str) -> String {
    let tuning: Vec<&str> = [
        "retry_backoff_ms = 10",
        "max_retries = 3",
        "timeout_seconds = 5",
    ]
    .into_iter()
    .filter(|l| !extra_store.contains(l.split(' ').next().unwrap_or_default()))
    .collect();
    let tuning = tuning.join("\n");
    format!(
        r#"[database]
path = "okrsync.db"

[[stores]]
name = "main"
platform = "woocommerce"
url = "{url}"
consumer_key = "{KEY}"
consumer_secret = "{SECRET}"
{tuning}
{extra_store}

{extra}
"#
    )
}

pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Harness {
    pub async fn start(state: SimState) -> Harness {
        Self::start_with(state, "", "").await
    }

    pub async fn start_with(state: SimState, extra_store: &str, extra: &str) -> Harness {
        let sim = SimWoo::start(state).await.unwrap();
        let url = sim.url();
        Self::from_sim(sim, &url, extra_store, extra).await
    }

    /// A harness whose config reaches `sim` at `url` (e.g. through a TLS front).
    pub async fn from_sim(sim: SimWoo, url: &str, extra_store: &str, extra: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("okrsync.toml");
        write_private(&config_path, &config_text(url, extra_store, extra));
        let settings = config::load(&config_path, &HashMap::new()).unwrap();
        let db = Store::open(&settings.database.path).await.unwrap();
        Harness {
            sim,
            _dir: dir,
            config_path,
            settings,
            db,
        }
    }

    /// Syncs the store once through the library.
    pub async fn sync(&self) -> SyncReport {
        self.sync_opts(false).await
    }

    pub async fn sync_opts(&self, full: bool) -> SyncReport {
        sync_store(
            &self.settings.stores[0],
            &self.db,
            &Clock::System,
            &Shutdown::never(),
            &QuietProgress,
            full,
        )
        .await
        .unwrap()
    }

    /// A KPI of the store over a window, evaluated at `now`.
    pub async fn kpi(&self, id: KpiId, window: &str, now: DateTime<Utc>) -> Option<Value> {
        let window: WindowSpec = window.parse().unwrap();
        // What `okrsync kpis` loads: the one window asked for.
        let loaded = Loaded::load_windows(
            &self.settings,
            &self.db,
            true,
            std::slice::from_ref(&window),
            now,
        )
        .await
        .unwrap();
        let report =
            keyresults::kpi_report(&loaded, &StoreSelector::Named("main".into()), &window, now)
                .unwrap();
        report
            .values
            .into_iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.unwrap().value)
            .unwrap_or(None)
    }

    /// Runs the real binary with this harness's config, off the test's runtime (which
    /// serves the simulated store).
    pub async fn run_bin(&self, args: &[&str]) -> Output {
        let config = self.config_path.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_bin_with(&config, &args)
        })
        .await
        .unwrap()
    }
}

pub fn run_bin_with(config: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// All stored rows that matter for KPIs, in a stable order, for comparing two databases.
pub fn dump(db_path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT platform_id, number, created_at, modified_at, status, counted, items_gross, discounts, shipping, tax, total, refunded, refunded_items, platform_customer_id, trashed FROM orders ORDER BY platform_id",
        "SELECT order_id, line_id, product_id, sku, quantity, subtotal, total, refunded_quantity, refunded_amount FROM order_lines ORDER BY order_id, line_id",
        "SELECT platform_id, order_id, created_at, amount FROM refunds ORDER BY platform_id",
        "SELECT refund_id, order_line_id, quantity, amount FROM refund_lines ORDER BY refund_id, order_line_id",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut cells = Vec::new();
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    cells.push(format!("{v:?}"));
                }
                Ok(cells.join("|"))
            })
            .unwrap();
        for r in rows {
            out.push(r.unwrap());
        }
    }
    out
}

/// `Utc.with_ymd_and_hms` shorthand.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

impl Harness {
    /// Starts the real binary in the background with this harness's config.
    pub fn spawn_bin(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Waits (up to 60 s) until the simulated store has received a request whose query has
    /// `key=value`.
    pub async fn wait_for_query(&self, key: &str, value: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self
            .sim
            .requests()
            .iter()
            .any(|r| r.query.iter().any(|(k, v)| k == key && v == value))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the store never received a request with {key}={value}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl Harness {
    /// The stored cursor of a stream, if any (read straight from the database file).
    pub fn cursor(&self, stream: &str) -> Option<String> {
        let conn = rusqlite::Connection::open(&self.settings.database.path).ok()?;
        conn.query_row(
            "SELECT value FROM cursors WHERE stream = ?1",
            [stream],
            |r| r.get(0),
        )
        .ok()
    }

    /// Waits (up to 60 s) until the cursor of `stream` contains `needle`.
    pub async fn wait_for_cursor(&self, stream: &str, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.cursor(stream).is_some_and(|c| c.contains(needle)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the cursor of {stream} never reached {needle}: {:?}",
                self.cursor(stream)
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Sends SIGTERM to a child and waits (up to 15 s) for it to exit.
pub async fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
