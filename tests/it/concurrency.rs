//! Several okrsync processes on one database, and databases okrsync did not create.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use okrsync_sim::{SimState, SimWoo};

use crate::helpers::*;

/// A generated store of about `days * per_day` orders, with the test credentials.
fn store_state(seed: u64, days: u32, per_day: u32) -> SimState {
    let mut s = SimState::generate(seed, at(2026, 11, 1, 0, 0), days, per_day);
    s.consumer_key = KEY.into();
    s.consumer_secret = SECRET.into();
    s.now_override = Some(at(2026, 11, 1, 0, 0));
    s
}

/// A config with one WooCommerce store per `(name, url)`, all in `okrsync.db`.
fn multi_store_config(stores: &[(&str, String)]) -> String {
    let mut text = "[database]\npath = \"okrsync.db\"\n".to_string();
    for (name, url) in stores {
        text += &format!(
            r#"
[[stores]]
name = "{name}"
platform = "woocommerce"
url = "{url}"
consumer_key = "{KEY}"
consumer_secret = "{SECRET}"
retry_backoff_ms = 10
max_retries = 3
timeout_seconds = 30
"#
        );
    }
    text
}

fn bin(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_okrsync"));
    c.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn two_processes_syncing_two_stores_into_one_database_both_succeed() {
    // Two stores, each synced in full by its own process at the same time, while a third
    // process reads the sync log: every write transaction of one process may begin while the
    // other commits a page. A write transaction that began with a read (deferred) cannot
    // take the write lock once the other process committed, and fails with "database is
    // locked" whatever the busy timeout; an immediate one waits its turn.
    let a = SimWoo::start(store_state(11, 40, 15)).await.unwrap();
    let b = SimWoo::start(store_state(12, 40, 15)).await.unwrap();
    let expected_a = a.with_state(|s| s.orders.len());
    let expected_b = b.with_state(|s| s.orders.len());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("okrsync.toml");
    write_private(
        &config,
        &multi_store_config(&[("alpha", a.url()), ("beta", b.url())]),
    );
    // The database exists before the race (opening a new one concurrently is the next test).
    let first = tokio::task::spawn_blocking({
        let config = config.clone();
        move || bin(&config, &["logs"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    for round in 0..3 {
        let config = config.clone();
        let outputs = tokio::task::spawn_blocking(move || {
            let sa = bin(&config, &["sync", "--store", "alpha", "--full"])
                .spawn()
                .unwrap();
            let sb = bin(&config, &["sync", "--store", "beta", "--full"])
                .spawn()
                .unwrap();
            let mut reads = Vec::new();
            for _ in 0..5 {
                reads.push(bin(&config, &["logs", "--limit", "5"]).output().unwrap());
            }
            let mut all = vec![
                sa.wait_with_output().unwrap(),
                sb.wait_with_output().unwrap(),
            ];
            all.extend(reads);
            all
        })
        .await
        .unwrap();
        for o in &outputs {
            assert!(
                o.status.success(),
                "round {round}: a process failed ({:?}): {}",
                o.status,
                text(o)
            );
        }
    }
    let conn = rusqlite::Connection::open(dir.path().join("okrsync.db")).unwrap();
    let count = |store: &str| -> usize {
        conn.query_row(
            "SELECT COUNT(*) FROM orders o JOIN stores s ON s.id = o.store_id WHERE s.name = ?1",
            [store],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize
    };
    assert_eq!(count("alpha"), expected_a);
    assert_eq!(count("beta"), expected_b);
    let bad: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sync_runs WHERE status <> 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0, "every run ended ok");
    a.stop().await;
    b.stop().await;
}

#[test]
fn processes_opening_a_new_database_at_the_same_instant_all_succeed() {
    // Eight commands open a database that does not exist yet, all at once: each must either
    // create it or wait for the one that does, never fail on "table meta already exists" or
    // "database is locked". Five fresh databases in a row.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("okrsync.toml");
        write_private(
            &config,
            &multi_store_config(&[("alpha", "https://shop.example".into())]),
        );
        let children: Vec<_> = (0..8)
            .map(|i| {
                let args: &[&str] = if i % 2 == 0 {
                    &["logs"]
                } else {
                    &["kpis", "--window", "last_30_days"]
                };
                bin(&config, args).spawn().unwrap()
            })
            .collect();
        for child in children {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}: {:?}: {}",
                o.status,
                text(&o)
            );
        }
        let conn = rusqlite::Connection::open(dir.path().join("okrsync.db")).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, okrsync::store::SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

/// The file's bytes, permissions and SQLite companions (`-wal`, `-shm`, `-journal`).
#[cfg(unix)]
fn snapshot(path: &Path) -> (Vec<u8>, u32, Vec<bool>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let companions = ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            Path::new(&p).exists()
        })
        .collect();
    (std::fs::read(path).unwrap(), mode, companions)
}

#[test]
#[cfg(unix)]
fn a_database_okrsync_did_not_create_is_refused_in_one_line_and_left_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Another application's SQLite database (with an `orders` table of its own), and a file
    // that is not SQLite at all.
    let foreign = dir.path().join("shop.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);
             CREATE TABLE invoices (id INTEGER PRIMARY KEY, order_id INTEGER);
             INSERT INTO orders (total) VALUES (12.5);",
        )
        .unwrap();
    }
    let text_file = dir.path().join("notes.db");
    std::fs::write(&text_file, "not a database, just notes\n".repeat(200)).unwrap();
    for (file, expect) in [
        (
            &foreign,
            "is a SQLite database that okrsync did not create (tables: invoices, orders)",
        ),
        (&text_file, "is not a SQLite database"),
    ] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = snapshot(file);
        let config = dir.path().join("okrsync.toml");
        write_private(
            &config,
            &multi_store_config(&[("alpha", "https://shop.example".into())]).replace(
                "path = \"okrsync.db\"",
                &format!("path = \"{}\"", file.display()),
            ),
        );
        for args in [&["logs"][..], &["sync"][..]] {
            let out = bin(&config, args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(expect), "{args:?}: {stderr}");
            assert!(
                stderr.contains("Set `path` under [database]"),
                "says what to do: {stderr}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.len() < 300 + 2 * file.as_os_str().len(),
                "short: {stderr}"
            );
            assert!(!stderr.contains("CREATE"), "no SQL: {stderr}");
            assert_eq!(
                snapshot(file),
                before,
                "{args:?}: the file, its mode and its journal are untouched"
            );
        }
    }
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "not switched to WAL");
}

#[tokio::test]
async fn a_full_sync_and_readers_work_while_the_daemon_runs_on_the_same_database() {
    // The daemon syncs store alpha (its config) while `sync --full` of store beta (another
    // config, same database) and `logs` run: nobody fails, and the daemon's run ends ok.
    let a = SimWoo::start(store_state(21, 40, 15)).await.unwrap();
    let b = SimWoo::start(store_state(22, 40, 15)).await.unwrap();
    let expected_b = b.with_state(|s| s.orders.len());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let with_db = |text: String| {
        text.replace(
            "path = \"okrsync.db\"",
            &format!("path = \"{}\"", db.display()),
        )
    };
    let daemon_config = dir.path().join("daemon.toml");
    write_private(
        &daemon_config,
        &with_db(multi_store_config(&[("alpha", a.url())])),
    );
    let cli_config = dir.path().join("cli.toml");
    write_private(
        &cli_config,
        &with_db(multi_store_config(&[("beta", b.url())])),
    );
    let first = bin(&cli_config, &["logs"]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let mut daemon = bin(&daemon_config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the daemon reads alpha's orders, then sync beta in full twice meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !a.requests().iter().any(|r| r.path.ends_with("/orders")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never synced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let outputs = tokio::task::spawn_blocking({
        let cli_config = cli_config.clone();
        move || {
            let mut all = Vec::new();
            for _ in 0..2 {
                let s = bin(&cli_config, &["sync", "--store", "beta", "--full"])
                    .spawn()
                    .unwrap();
                for _ in 0..3 {
                    all.push(
                        bin(&cli_config, &["logs", "--limit", "5"])
                            .output()
                            .unwrap(),
                    );
                }
                all.push(s.wait_with_output().unwrap());
            }
            all
        }
    })
    .await
    .unwrap();
    for o in &outputs {
        assert!(o.status.success(), "{:?}: {}", o.status, text(o));
    }
    // The daemon's run of alpha ends (ok), then it is stopped.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let alpha_status = || -> Option<String> {
        conn.query_row(
            "SELECT status FROM sync_runs WHERE store = 'alpha' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    while alpha_status().as_deref().is_none_or(|s| s == "running") {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon's run never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(terminate(&mut daemon).await.code(), Some(0));
    assert_eq!(alpha_status().as_deref(), Some("ok"));
    let beta: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM orders o JOIN stores s ON s.id = o.store_id WHERE s.name = 'beta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(beta as usize, expected_b);
    a.stop().await;
    b.stop().await;
}
