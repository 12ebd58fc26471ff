//! The status server (`[http]`) of the real `okrsync run` against the simulated store:
//! readiness, metrics equal to `krs`, the JSON APIs equal to the CLI's, the status page in
//! headless Chromium, the bearer token.

use std::collections::HashMap;
use std::time::Duration;

use crate::cli::KR;
use crate::helpers::*;
use crate::woo_kpis::fixture;

const TOKEN: &str = "status-t0ken-never-logged";

/// A key result whose value is null (no order in its window): it has no metric sample.
const NULL_KR: &str = r#"
[[key_results]]
id = "aov-empty"
title = "AOV in a month without orders"
kpi = "average_order_value"
store = "main"
window = "2020-01-01..2020-01-31"
baseline = 0
target = 50
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    okrsync::sources::http::init_tls();
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
        Err(_) => (0, String::new()),
    }
}

/// `name{label="value"} sample` lines of one metric, by their first label's value.
fn samples(text: &str, name: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").unwrap();
        let first = labels.split(',').next().unwrap();
        let v = first
            .split_once('=')
            .unwrap()
            .1
            .trim_matches('"')
            .to_string();
        out.insert(v, value.trim().parse::<f64>().unwrap());
    }
    out
}

fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn status_server_serves_readiness_metrics_and_the_cli_json() {
    let port = free_port();
    let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n");
    let fx = fixture();
    let h = Harness::start_with(fx.state, "", &format!("{KR}\n{NULL_KR}\n{http}")).await;
    // A history: a first check-in while order A was still pending (net sales 115.00), then
    // the daemon's sync sees it completed (135.00) and checks in again.
    h.sim.with_state(|s| s.set_status(fx.a, "pending"));
    h.sync().await;
    okrsync::daemon::keyresults::evaluate_key_results(
        &h.settings,
        &h.db,
        &okrsync::daemon::Clock::System,
    )
    .await
    .unwrap();
    let first = h.db.checkins_of("net-sales").await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].checkin.value.as_deref(), Some("115"));
    h.sim.with_state(|s| {
        // Modified now, so that the daemon's incremental sync reads it.
        s.now_override = None;
        s.set_status(fx.a, "completed");
    });
    let log = h._dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&h.config_path)
        .arg("run")
        .env("RUST_LOG", "okrsync=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // Wait for the first sync: /readyz turns 200 (before, it answers 503 or is not up yet).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let (status, body) = get(&format!("{base}/readyz"), Some(TOKEN)).await;
        if status == 200 {
            break body;
        }
        if status == 503 {
            let j: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(j["ready"], false);
            assert!(j["reason"].as_str().unwrap().contains("main"), "{body}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ready).unwrap()["ready"],
        true
    );
    // The check-ins of the first evaluation are in: /api/krs equals `krs --format json`.
    while h.db.checkin_count("net-sales").await.unwrap() < 2 {
        assert!(std::time::Instant::now() < deadline, "no check-in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, api_krs) = get(&format!("{base}/api/krs"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{api_krs}");
    let api_krs: serde_json::Value = serde_json::from_str(&api_krs).unwrap();
    let out = h.run_bin(&["krs", "--format", "json"]).await;
    let cli_krs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(api_krs, cli_krs);
    assert_eq!(cli_krs[1]["current"], serde_json::json!("135.00"));

    // /metrics: one sample per key result, equal to the CLI's values; money as a number.
    let (status, metrics) = get(&format!("{base}/metrics"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    let values = samples(&metrics, "okrsync_key_result_value");
    let progress = samples(&metrics, "okrsync_key_result_progress");
    for kr in cli_krs.as_array().unwrap() {
        let id = kr["id"].as_str().unwrap();
        assert_eq!(
            values.get(id).copied(),
            json_number(&kr["current"]),
            "{id}\n{metrics}"
        );
        assert_eq!(
            progress.get(id).copied(),
            json_number(&kr["progress"]),
            "{id}"
        );
    }
    assert_eq!(values["net-sales"], 135.0);
    let empty = cli_krs
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "aov-empty")
        .unwrap();
    assert!(empty["current"].is_null(), "{empty}");
    assert!(!metrics.contains("key_result=\"aov-empty\""), "{metrics}");
    assert_eq!(values.len(), 2, "{metrics}");
    let ok_runs = metrics
        .lines()
        .find_map(|l| l.strip_prefix("okrsync_sync_runs_total{store=\"main\",status=\"ok\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(ok_runs >= Some(1), "{metrics}");
    let requests = samples(&metrics, "okrsync_http_requests_total");
    let logged: u64 =
        h.db.runs(Some("main".into()), 1000, false)
            .await
            .unwrap()
            .iter()
            .map(|r| r.requests)
            .sum();
    assert!(requests["main"] >= 1.0);
    assert_eq!(requests["main"], logged as f64);
    let last = samples(&metrics, "okrsync_last_success_timestamp_seconds");
    assert!(last["main"] > 1.7e9, "{metrics}");

    // /api/kpis equals `kpis --format json` for the same store and window.
    let window = "2026-10-01..2026-10-25";
    let (status, api_kpis) = get(
        &format!("{base}/api/kpis?store=main&window={window}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{api_kpis}");
    let out = h
        .run_bin(&[
            "kpis", "--store", "main", "--window", window, "--format", "json",
        ])
        .await;
    let cli_kpis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&api_kpis).unwrap(),
        cli_kpis
    );
    let (status, _) = get(&format!("{base}/api/kpis?window=someday"), Some(TOKEN)).await;
    assert_eq!(status, 400);

    // /api/logs equals `logs --format json` (no run can start meanwhile: the next tick is
    // minutes away).
    let (status, api_logs) = get(&format!("{base}/api/logs?limit=5"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    let out = h
        .run_bin(&["logs", "--limit", "5", "--format", "json"])
        .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&api_logs).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    );

    // The page over HTTP: the key result's history is a line of its two check-ins, and the
    // change since the previous one is shown.
    let (status, page) = get(&format!("{base}/"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    let card = crate::status_page::kr_card(&page, "net-sales");
    assert!(card.contains("<polyline"), "{card}");
    assert!(card.contains("History: 2 check-ins"), "{card}");
    assert!(
        card.contains("change since the previous check-in +20.00"),
        "{card}"
    );

    // The page in a browser (headless Chromium, sending the token as Basic auth): every key
    // result's title and progress as `krs` says; screenshots saved as test artifacts.
    crate::status_page::check_in_chromium(&base, Some(TOKEN), &cli_krs, "status-page").await;

    // The token: required everywhere but /healthz; a wrong one gets 401.
    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 200);
    for path in [
        "/",
        "/readyz",
        "/metrics",
        "/api/krs",
        "/api/kpis",
        "/api/logs",
    ] {
        assert_eq!(get(&format!("{base}{path}"), None).await.0, 401, "{path}");
        assert_eq!(
            get(&format!("{base}{path}"), Some("status-t0ken-never-logge"))
                .await
                .0,
            401,
            "{path}"
        );
    }

    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
    // Stopped by the same shutdown: the port is closed.
    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 0);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("status server listening"), "{logs}");
    assert!(!logs.contains(TOKEN), "the token was logged");
    assert!(!api_krs.to_string().contains(TOKEN));
    assert!(!metrics.contains(TOKEN));
}

#[test]
fn a_non_loopback_listen_without_a_token_is_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    let base = config_text("https://shop.example", "", "");
    write_private(
        &path,
        &format!("{base}\n[http]\nlisten = \"0.0.0.0:8080\"\n"),
    );
    let out = run_bin_with(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.listen"), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");
    // With a token (from the environment) it is accepted; loopback needs none.
    write_private(
        &path,
        &format!(
            "{base}\n[http]\nlisten = \"0.0.0.0:8080\"\ntoken_env = \"OKRSYNC_TEST_HTTP_TOKEN\"\n"
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&path)
        .arg("check")
        .env("OKRSYNC_TEST_HTTP_TOKEN", "abc")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_private(
        &path,
        &format!("{base}\n[http]\nlisten = \"127.0.0.1:8080\"\n"),
    );
    assert!(run_bin_with(&path, &["check"]).status.success());
    write_private(&path, &format!("{base}\n[http]\nlisten = \"localhost\"\n"));
    let out = run_bin_with(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.listen"));
}

/// `check` refuses a status server open to the network without a token, naming the key; the
/// same address with a token (given as an env variable) passes.
#[test]
fn check_refuses_a_non_loopback_listen_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    let base = config_text("https://shop.example.com", "", "");
    write_private(
        &path,
        &format!("{base}\n[http]\nlisten = \"0.0.0.0:8080\"\n"),
    );
    let out = run_bin_with(&path, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("http.listen") && stderr.contains("not a loopback address"),
        "{stderr}"
    );
    write_private(
        &path,
        &format!(
            "{base}\n[http]\nlisten = \"0.0.0.0:8080\"\ntoken_env = \"OKRSYNC_TEST_STATUS_TOKEN\"\n"
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&path)
        .arg("check")
        .env("OKRSYNC_TEST_STATUS_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
}
