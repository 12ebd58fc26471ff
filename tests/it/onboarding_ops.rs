//! Onboarding and operations (issue 19): `demo --serve`, `init`, `connect`, the deploy files.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_okrsync"));
    c.env_remove("RUST_LOG").env_remove("OKRSYNC_CONFIG");
    c
}

/// Starts `okrsync demo --serve` in `dir` and returns it with the stdout lines read so far,
/// once it printed the line saying the simulated services are being served.
fn start_serving_demo(dir: &Path, own_database: &Path) -> (Child, Vec<String>) {
    let mut child = bin()
        .args(["demo", "--serve", "--days", "10", "--dir"])
        .arg(dir)
        // Meant for the user's own config (the container image sets it): not the demo's.
        .env("OKRSYNC__DATABASE__PATH", own_database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        // A bound on a hung demo, not a speed assertion: the demo prints the line once its
        // first sync is done, however slow the machine.
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                let done = line.contains("press Ctrl-C to stop");
                lines.push(line);
                if done {
                    return (child, lines);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the demo never said it serves ({e}); stdout so far:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
}

#[tokio::test]
async fn demo_serve_keeps_the_simulated_services_up_until_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let own_database = tmp.path().join("production.db");
    let (mut child, lines) = start_serving_demo(&dir, &own_database);
    let dir = std::fs::canonicalize(&dir).unwrap();
    let config = dir.join("okrsync.toml");
    let text = lines.join("\n");
    // Commands a binary user can paste, not `cargo run`.
    assert!(
        text.contains(&format!("okrsync --config {} krs", config.display())),
        "{text}"
    );
    assert!(!text.contains("cargo run"), "{text}");

    // The simulated stores, analytics site and shop still answer: a sync and an online check
    // by other processes on the demo's config both succeed.
    let sync = run_bin_with(&config, &["sync"]);
    assert!(
        sync.status.success(),
        "sync failed: {}{}",
        String::from_utf8_lossy(&sync.stdout),
        String::from_utf8_lossy(&sync.stderr)
    );
    let check = run_bin_with(&config, &["check", "--online"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "check --online failed: {out}");
    assert!(out.contains("store demo-woo: OK"), "{out}");
    assert!(out.contains("store demo-shopify: OK"), "{out}");

    let status = terminate(&mut child).await;
    assert_eq!(
        status.code(),
        Some(0),
        "demo --serve stopped by SIGTERM: {status:?}"
    );
    // The directory is kept: the config still works for the read-only commands.
    assert!(config.exists());
    assert!(dir.join("okrsync.db").exists());
    assert!(
        !own_database.exists(),
        "the demo wrote into OKRSYNC__DATABASE__PATH"
    );
    let krs = run_bin_with(&config, &["krs", "--format", "json"]);
    assert!(krs.status.success());
}

#[test]
fn demo_help_does_not_offer_the_config_it_ignores() {
    let out = bin().args(["demo", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--serve"), "{help}");
    assert!(!help.contains("--config"), "{help}");
    // The global option still works on every other command, before or after its name.
    let out = bin().args(["krs", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
}

/// Runs the binary off the test's runtime (which serves the simulators) and returns its output.
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_a_private_starter_that_check_accepts_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("okrsync.toml");
    let out = bin()
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    assert_eq!(mode(&config), 0o600);
    let starter = std::fs::read_to_string(&config).unwrap();
    assert!(starter.contains("okrsync connect woocommerce"), "{starter}");
    let check = run_bin_with(&config, &["check"]);
    assert!(
        check.status.success(),
        "the starter fails check: {}",
        text(&check)
    );

    // An existing file is never replaced, whatever it holds.
    std::fs::write(&config, "# mine\n").unwrap();
    let again = bin()
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
}

#[tokio::test]
async fn connect_verifies_the_credentials_and_writes_stores_that_check_and_sync_accept() {
    let now = chrono::Utc::now();
    let woo = okrsync_sim::SimWoo::start(okrsync_sim::SimState::generate(42, now, 10, 4))
        .await
        .unwrap();
    let (key, secret) = woo.with_state(|s| (s.consumer_key.clone(), s.consumer_secret.clone()));
    let mut shop_state = okrsync_sim::ShopState::generate(43, now, 10, 3);
    shop_state.data.timezone_string = "America/Chicago".into();
    shop_state.data.currency = "USD".into();
    shop_state.restore_rate = 20_000.0;
    shop_state.bucket_max = 20_000.0;
    let token = shop_state.access_token.clone();
    let shop = okrsync_sim::SimShopify::start(shop_state).await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("okrsync.toml");
    let out = run({
        let mut c = bin();
        c.arg("--config").arg(&config).arg("init");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    // Something of the user's own, which connect must keep.
    let mut starter = std::fs::read_to_string(&config).unwrap();
    starter.push_str("\n# my note: keep me\n");
    std::fs::write(&config, &starter).unwrap();

    let out = run({
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["connect", "woocommerce", "--name", "woo", "--url"])
            .arg(woo.url())
            .args([
                "--consumer-key",
                &key,
                "--consumer-secret-env",
                "TEST_WOO_SECRET",
            ])
            .env("TEST_WOO_SECRET", &secret)
            .stdin(Stdio::null());
        c
    })
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("time zone Europe/Paris, currency EUR"),
        "{said}"
    );
    assert!(!said.contains(&secret), "{said}");

    let out = run({
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["connect", "shopify", "--shop"])
            .arg(shop.url())
            .args(["--access-token-env", "TEST_SHOP_TOKEN"])
            .env("TEST_SHOP_TOKEN", &token)
            .stdin(Stdio::null());
        c
    })
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("time zone America/Chicago, currency USD"),
        "{said}"
    );

    // The config keeps what was there, names the secret files, and holds no secret.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("# my note: keep me"), "{written}");
    assert!(written.contains("okrsync connect woocommerce"), "{written}");
    assert!(!written.contains("stores = []"), "{written}");
    for s in [&key, &secret, &token] {
        assert!(
            !written.contains(s.as_str()),
            "a secret is in the config:\n{written}"
        );
    }
    assert!(
        written.contains(r#"consumer_secret_file = "secrets/woo.consumer_secret""#),
        "{written}"
    );
    assert!(
        written.contains(r#"access_token_file = "secrets/main.access_token""#),
        "{written}"
    );
    let secrets = tmp.path().join("secrets");
    for (file, value) in [
        ("woo.consumer_key", &key),
        ("woo.consumer_secret", &secret),
        ("main.access_token", &token),
    ] {
        let p = secrets.join(file);
        assert_eq!(&std::fs::read_to_string(&p).unwrap(), value);
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600, "{file}");
    }

    // The written config is valid and works: check, the online check, a sync.
    for args in [&["check"][..], &["check", "--online"], &["sync"]] {
        let config = config.clone();
        let out = tokio::task::spawn_blocking(move || run_bin_with(&config, args))
            .await
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_bin_with(&config, &["logs", "--format", "json"])
    })
    .await
    .unwrap();
    let logs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok_stores: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "ok")
        .filter_map(|r| r["store"].as_str())
        .collect();
    assert!(
        ok_stores.contains(&"woo") && ok_stores.contains(&"main"),
        "{logs}"
    );
    shop.stop().await;
    woo.stop().await;
}

#[tokio::test]
async fn connect_with_a_wrong_key_says_so_and_writes_nothing() {
    let woo = okrsync_sim::SimWoo::start(empty_state()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("okrsync.toml");
    let out = run({
        let mut c = bin();
        c.arg("--config").arg(&config).arg("init");
        c
    })
    .await;
    assert!(out.status.success());
    let before = std::fs::read(&config).unwrap();
    let out = run({
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["connect", "woocommerce", "--url"])
            .arg(woo.url())
            .args([
                "--consumer-key",
                KEY,
                "--consumer-secret-env",
                "TEST_WOO_SECRET",
            ])
            .env("TEST_WOO_SECRET", "cs_wrong_secret_value")
            .stdin(Stdio::null());
        c
    })
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("could not be verified"), "{said}");
    assert!(said.contains("Nothing was written"), "{said}");
    assert!(!said.contains("cs_wrong_secret_value"), "{said}");
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert!(!tmp.path().join("secrets").exists());
    woo.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn health_probes_the_status_server_of_a_running_daemon() {
    let port = free_port();
    let h = Harness::start_with(
        empty_state(),
        "",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/healthz");
    // Nothing listens yet.
    let out = h.run_bin(&["health", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));

    let mut daemon = h.spawn_bin(&["run"]);
    // Wait for the condition (the daemon is up), however slow the machine; the bound only
    // ends a hung test.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        // Without --url: the address comes from the config's [http] listen.
        let out = h.run_bin(&["health"]).await;
        if out.status.success() {
            assert!(text(&out).contains(&url), "{}", text(&out));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon's status server never answered: {}",
            text(&out)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = h.run_bin(&["health", "--url", &url]).await;
    assert!(out.status.success(), "{}", text(&out));
    // An answer that is not 200 is a failure.
    let missing = format!("http://127.0.0.1:{port}/no-such-route");
    let out = h.run_bin(&["health", "--url", &missing]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("answered HTTP 404"), "{}", text(&out));

    assert_eq!(terminate(&mut daemon).await.code(), Some(0));
    let out = h.run_bin(&["health", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// Every string under `"expr"` or `"query"`/`"definition"` in a Grafana dashboard.
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) if s.contains("okrsync_") => {
                        out.push(s.clone())
                    }
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression, each with the label names it selects on or
/// groups by.
fn metrics_and_labels(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut grouped: Vec<String> = Vec::new();
    for part in expr.split("by (").skip(1) {
        let inner = part.split(')').next().unwrap_or_default();
        grouped.extend(inner.split(',').map(|l| l.trim().to_string()));
    }
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("okrsync_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut labels = grouped.clone();
        if let Some(sel) = tail[end..].strip_prefix('{') {
            let sel = sel.split('}').next().unwrap_or_default();
            labels.extend(
                sel.split(',')
                    .filter_map(|m| m.split(['=', '!']).next())
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        if let Some(args) = tail[end..].strip_prefix(", ") {
            // label_values(metric, label)
            labels.push(
                args.split(')')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            );
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_metrics_the_status_server_serves() {
    let text_json = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana-dashboard.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text_json).unwrap();
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let wanted: Vec<(String, Vec<String>)> =
        queries.iter().flat_map(|q| metrics_and_labels(q)).collect();
    assert!(wanted.len() >= 8, "{queries:?}");

    // A daemon with one store and one key result, after its first sync.
    let port = free_port();
    let kr = r#"
[[key_results]]
id = "orders-30"
objective = "Grow"
title = "Orders"
kpi = "orders"
store = "main"
window = "last_30_days"
baseline = 0
target = 10
"#;
    let h = Harness::start_with(
        empty_state(),
        "",
        &format!("{kr}\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await;
    let mut daemon = h.spawn_bin(&["run"]);
    okrsync::sources::http::init_tls();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        if let Ok(r) = client.get(&url).send().await
            && let Ok(body) = r.text().await
            && body.contains("okrsync_last_success_timestamp_seconds{")
            && body.contains("okrsync_key_result_progress{")
        {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never served metrics after a sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(terminate(&mut daemon).await.code(), Some(0));

    for (name, labels) in &wanted {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "the dashboard queries {name}, which /metrics does not serve:\n{metrics}"
        );
        let samples: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect();
        assert!(!samples.is_empty(), "no sample of {name}:\n{metrics}");
        for label in labels {
            assert!(
                samples.iter().any(|s| s.contains(&format!("{label}=\""))),
                "the dashboard uses label `{label}` of {name}, which its samples lack:\n{metrics}"
            );
        }
    }
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: systemd-analyze is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/check-systemd.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("OKRSYNC_BIN", env!("CARGO_BIN_EXE_okrsync"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("PASS systemd check"), "{said}");
    // The script fails a unit more exposed than allowed (here: any exposure at all).
    let strict = Command::new("bash")
        .arg(script)
        .env("OKRSYNC_BIN", env!("CARGO_BIN_EXE_okrsync"))
        .env("MAX_EXPOSURE", "0.0")
        .output()
        .unwrap();
    assert!(!strict.status.success(), "{}", text(&strict));
}

#[test]
fn the_container_image_checks_health_with_the_binary_itself() {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    // The HEALTHCHECK's command, as the image runs it, is one our CLI accepts: with nothing
    // listening it reports the failure (exit 1), not a usage error (exit 2).
    let line = dockerfile
        .lines()
        .find(|l| l.contains(r#"CMD ["okrsync", "health""#))
        .expect("a HEALTHCHECK running `okrsync health`");
    let json = &line[line.find('[').unwrap()..];
    let argv: Vec<String> = serde_json::from_str(json).unwrap();
    let port = free_port();
    let argv: Vec<String> = argv[1..]
        .iter()
        .map(|a| a.replace(":8080", &format!(":{port}")))
        .collect();
    let out = bin().args(&argv).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
    assert!(
        dockerfile.contains("\nUSER okrsync"),
        "the image must not run as root"
    );
    assert!(dockerfile.contains(r#"CMD ["run"]"#));
}

#[test]
#[ignore = "builds the container image where a Docker engine is reachable (else prints why it skips)"]
fn docker_image_builds_and_runs_the_demo() {
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/docker-smoke.sh"
        ))
        .output()
        .unwrap();
    let said = text(&out);
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(said.contains("PASS") || said.contains("SKIP"), "{said}");
}

#[tokio::test]
async fn connect_shopify_accepts_a_dev_dashboard_apps_client_id_and_secret() {
    let mut st = okrsync_sim::ShopState::generate(44, chrono::Utc::now(), 3, 2);
    st.client_credentials = Some(("app-client-id".into(), "app-client-secret".into()));
    let shop = okrsync_sim::SimShopify::start(st).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("okrsync.toml");
    let init = run({
        let mut c = bin();
        c.arg("--config").arg(&config).arg("init");
        c
    })
    .await;
    assert!(init.status.success());
    let connect = |secret: &'static str| {
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["connect", "shopify", "--name", "eu", "--shop"])
            .arg(shop.url())
            .args([
                "--client-id",
                "app-client-id",
                "--client-secret-env",
                "TEST_APP_SECRET",
            ])
            .env("TEST_APP_SECRET", secret)
            .stdin(Stdio::null());
        c
    };
    // A wrong client secret: refused by the token exchange, nothing written.
    let before = std::fs::read(&config).unwrap();
    let out = run(connect("not-the-secret")).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(std::fs::read(&config).unwrap(), before);

    let out = run(connect("app-client-secret")).await;
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains(r#"client_id = "app-client-id""#),
        "{written}"
    );
    assert!(
        written.contains(r#"client_secret_file = "secrets/eu.client_secret""#),
        "{written}"
    );
    assert!(!written.contains("app-client-secret"), "{written}");
    let check = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run_bin_with(&config, &["check", "--online"])
    })
    .await
    .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    shop.stop().await;
}
