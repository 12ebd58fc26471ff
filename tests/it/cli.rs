//! The command line: `check`, JSON contracts, the daemon's schedule and graceful stop.

use std::collections::HashMap;
use std::time::Duration;

use okrsync::config;
use okrsync_sim::{Fault, FaultKind};

use crate::helpers::*;
use crate::woo_kpis::fixture;

#[test]
fn check_lists_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("loose.secret");
    std::fs::write(&loose, "cs_x").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let text = format!(
        r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key_env = "OKRSYNC_TEST_MISSING_VAR"
consumer_secret_file = "{}"
schedule = "every five minutes"

[[stores]]
name = "second"
platform = "woocommerce"
url = "https://two.example"
consumer_key = "ck_2"
consumer_secret_file = "/nonexistent/secret"
counted_statuses = ["completed"]
excluded_statuses = ["failed"]

[[key_results]]
id = "kr1"
kpi = "conversion_ratio"
store = "nowhere"
window = "last_week"
baseline = 1
target = 2

[[key_results]]
id = "kr2"
kpi = "refund_rate"
window = "last_30_days"
baseline = 0.05
target = 0.08
direction = "decrease"
"#,
        loose.display()
    );
    let path = dir.path().join("okrsync.toml");
    write_private(&path, &text);
    let out = run_bin_with(&path, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "stores[0].schedule",
        "stores[0].consumer_key_env: environment variable OKRSYNC_TEST_MISSING_VAR is not set",
        "stores[0].consumer_secret_file",
        "readable by group or others",
        "stores[1].consumer_secret_file: cannot read /nonexistent/secret",
        "key_results[0].kpi",
        "key_results[0].store: unknown store `nowhere`",
        "key_results[0].window",
        "stores[1].excluded_statuses: set either counted_statuses",
        "key_results[1].direction: `decrease` contradicts baseline and target",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
}

#[test]
fn a_readable_config_holding_secrets_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    std::fs::write(&path, config_text("https://shop.example", "", "")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let err = config::load(&path, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("readable by group or others") && err.contains("chmod 600"),
        "{err}"
    );
    // The same file is fine once private.
    write_private(&path, &config_text("https://shop.example", "", ""));
    assert!(config::load(&path, &HashMap::new()).is_ok());
}

#[test]
fn secrets_from_env_and_files_and_env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    write_private(&secret_file, "cs_from_file\n");
    let text = format!(
        r#"[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key_env = "MY_KEY"
consumer_secret_file = "{}"
"#,
        secret_file.display()
    );
    // A world-readable config without inline secrets is fine.
    let path = dir.path().join("okrsync.toml");
    std::fs::write(&path, &text).unwrap();
    let env: HashMap<String, String> = [
        ("MY_KEY".to_string(), "ck_from_env".to_string()),
        (
            "OKRSYNC__DATABASE__PATH".to_string(),
            "/tmp/elsewhere.db".to_string(),
        ),
        (
            "OKRSYNC__STORES__0__SCHEDULE".to_string(),
            "*/5 * * * * *".to_string(),
        ),
    ]
    .into();
    let s = config::load(&path, &env).unwrap();
    use okrsync::config::{ExposeSecret, PlatformSettings};
    let PlatformSettings::WooCommerce(w) = &s.stores[0].platform else {
        panic!("expected a WooCommerce store")
    };
    assert_eq!(w.consumer_key.expose_secret(), "ck_from_env");
    assert_eq!(w.consumer_secret.expose_secret(), "cs_from_file");
    assert_eq!(
        s.database.path,
        std::path::PathBuf::from("/tmp/elsewhere.db")
    );
    let next: Vec<_> = s.stores[0].schedule.upcoming(chrono::Utc).take(2).collect();
    assert_eq!((next[1] - next[0]).num_seconds(), 5);
}

#[tokio::test]
async fn check_online_reads_timezone_and_currency() {
    let h = Harness::start(fixture().state).await;
    let out = h.run_bin(&["check", "--online"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("credentials accepted"), "{text}");
    assert!(text.contains("timezone Europe/Paris"), "{text}");
    assert!(text.contains("currency EUR"), "{text}");
}

pub(crate) const KR: &str = r#"
[[key_results]]
id = "repeat-rate"
objective = "Repeat customers"
title = "Repeat purchase rate from 10% to 30%"
kpi = "repeat_purchase_rate"
store = "main"
window = "2026-10-01..2026-10-25"
baseline = 0.10
target = 0.30

[[key_results]]
id = "net-sales"
title = "Net sales 500"
kpi = "net_sales"
window = "2026-10-01..2026-10-25"
baseline = 0
target = 500
"#;

#[tokio::test]
async fn krs_json_contract_and_checkins_on_change_only() {
    let h = Harness::start_with(fixture().state, "", KR).await;
    let out = h.run_bin(&["sync"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h.run_bin(&["krs", "--format", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kr = &json[0];
    assert_eq!(kr["id"], "repeat-rate");
    assert_eq!(kr["kpi"], "repeat_purchase_rate");
    assert_eq!(kr["store"], "main");
    assert_eq!(kr["window"], "2026-10-01..2026-10-25");
    assert_eq!(kr["baseline"], serde_json::json!(0.1));
    assert_eq!(kr["target"], serde_json::json!(0.3));
    assert_eq!(kr["current"], serde_json::json!(0.2));
    // (0.2 − 0.1) / (0.3 − 0.1) = 0.5; the window is over, so expected is 1 → off_track.
    assert_eq!(kr["progress"], serde_json::json!(0.5));
    assert_eq!(kr["status"], "off_track");
    assert!(kr["updated_at"].is_string());
    let net = &json[1];
    assert_eq!(net["store"], "all");
    assert_eq!(net["current"], serde_json::json!("135.00"));
    assert_eq!(net["progress"], serde_json::json!(0.27));
    // A second sync with no change writes no new check-in.
    assert_eq!(h.db.checkin_count("net-sales").await.unwrap(), 1);
    let out = h.run_bin(&["sync"]).await;
    assert!(out.status.success());
    assert_eq!(h.db.checkin_count("net-sales").await.unwrap(), 1);
    // A new order in the window changes the value: one new check-in with the new value.
    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            okrsync_sim::NewOrder::new("completed", at(2026, 10, 22, 9, 0), "new@example.com")
                .line(11, "MUG", "Mug", 1, dec("10.00")),
        );
    });
    let out = h.run_bin(&["sync"]).await;
    assert!(out.status.success());
    assert_eq!(h.db.checkin_count("net-sales").await.unwrap(), 2);
    let latest = h.db.latest_checkins().await.unwrap();
    let net = latest
        .iter()
        .find(|c| c.checkin.key_result == "net-sales")
        .unwrap();
    assert_eq!(net.checkin.value.as_deref(), Some("145"), "135.00 + 10.00");
}

#[tokio::test]
async fn sigterm_stops_a_sync_after_the_page_in_flight() {
    let mut state = okrsync_sim::SimState::generate(7, at(2026, 11, 1, 0, 0), 30, 15);
    state.consumer_key = KEY.into();
    state.consumer_secret = SECRET.into();
    let h = Harness::start(state).await;
    // The second page is slow; SIGTERM arrives while it is in flight.
    h.sim.inject(Fault {
        path_contains: "&offset=99&".into(),
        kind: FaultKind::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let mut child = h.spawn_bin(&["run"]);
    h.wait_for_query("offset", "99").await;
    // Pages read ahead alongside the slow one are dispatched within moments of it; let
    // them leave before the signal so that "after the signal" is not a race with them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = std::time::Instant::now();
    let status = terminate(&mut child).await;
    assert!(status.success(), "exit status {status:?}");
    let runs = h.db.runs(None, 5, false).await.unwrap();
    assert_eq!(runs[0].status, "partial", "{runs:?}");
    assert_eq!(
        runs[0].pages, 2,
        "the page in flight was stored, then the run stopped"
    );
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("shutdown")
    );
    // No request was sent after the signal (pages read ahead before it are dropped, not
    // stored: `pages` above).
    let late: Vec<_> = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.arrived > signalled)
        .map(|r| r.query)
        .collect();
    assert!(late.is_empty(), "requests after SIGTERM: {late:?}");
}

#[tokio::test]
async fn daemon_syncs_on_schedule_skips_overlaps_and_stops_on_sigterm() {
    let h = Harness::start_with(fixture().state, "schedule = \"*/1 * * * * *\"", KR).await;
    // The first run is slow: the next ticks find it still going.
    h.sim.inject(Fault {
        path_contains: "/wc/v3/orders".into(),
        kind: FaultKind::Delay(Duration::from_millis(2500)),
        times: 1,
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&h.config_path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let runs = h.db.runs(None, 50, false).await.unwrap();
        let ok = runs.iter().filter(|r| r.status == "ok").count();
        let skipped = runs.iter().filter(|r| r.status == "skipped").count();
        if ok >= 2 && skipped >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon did not sync on schedule: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = terminate(&mut child).await;
    assert!(status.success(), "daemon exit status {status:?}");
    assert!(h.db.checkin_count("repeat-rate").await.unwrap() >= 1);
}

#[test]
fn the_example_config_is_valid() {
    // The documented example must pass `check` once its environment variables are set.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/okrsync.example.toml"),
        &path,
    )
    .unwrap();
    let env: HashMap<String, String> = [
        ("OKRSYNC_MAIN_CONSUMER_KEY".to_string(), "ck_x".to_string()),
        (
            "OKRSYNC_MAIN_CONSUMER_SECRET".to_string(),
            "cs_x".to_string(),
        ),
    ]
    .into();
    let s = config::load(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.stores.len(), 1);
    assert!(s.analytics.is_empty(), "analytics blocks are commented out");
    // Uncommenting the documented Plausible block gives a valid source too.
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("# [[analytics]]\n# Unique among").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let block: String = text[start..end]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            // Settings are commented out; explanations stay comments.
            Some(rest) if rest.starts_with("[[") || rest.contains(" = ") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    write_private(&path, &(text[..start].to_string() + &block + &text[end..]));
    let mut env = env;
    env.insert("PLAUSIBLE_API_KEY".into(), "pk_x".into());
    let s = config::load(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.analytics.len(), 1);
    assert_eq!(s.key_results.len(), 1);
}

#[test]
fn every_command_exits_2_on_an_invalid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    write_private(
        &path,
        &config_text("https://shop.example", "schedule = \"often\"", ""),
    );
    for args in [
        &["sync"][..],
        &["run"],
        &["kpis"],
        &["krs"],
        &["history", "some-kr"],
        &["logs"],
        &["check"],
    ] {
        let out = run_bin_with(&path, args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("stores[0].schedule"));
    }
}

#[test]
#[cfg(unix)]
fn systemd_credentials_are_accepted_but_world_readable_secrets_are_not() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let secret = creds.join("main_consumer_secret");
    std::fs::write(&secret, "cs_from_systemd").unwrap();
    // systemd: root-owned 0400 plus a read ACL for the service user, shown as mode 440.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o440)).unwrap();
    let text = format!(
        "[[stores]]\nname = \"main\"\nplatform = \"woocommerce\"\nurl = \"https://shop.example\"\nconsumer_key_env = \"K\"\nconsumer_secret_file = \"{}\"\n",
        secret.display()
    );
    let path = dir.path().join("okrsync.toml");
    std::fs::write(&path, &text).unwrap();
    let mut env: HashMap<String, String> = [("K".to_string(), "ck_x".to_string())].into();
    // Outside a systemd credentials directory, group bits are refused.
    let err = config::load(&path, &env).unwrap_err().to_string();
    assert!(err.contains("readable by group or others"), "{err}");
    env.insert("CREDENTIALS_DIRECTORY".into(), creds.display().to_string());
    assert!(config::load(&path, &env).is_ok());
    // Even there, a file readable by others is refused.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = config::load(&path, &env).unwrap_err().to_string();
    assert!(err.contains("readable by others"), "{err}");
}

#[tokio::test]
async fn kpis_json_before_a_first_sync_has_the_usual_shape_with_reasons() {
    let h = Harness::start(fixture().state).await;
    let out = h.run_bin(&["kpis", "--format", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["store"], "main");
    assert!(json["window"]["from"].is_string() && json["window"]["timezone"].is_string());
    assert_eq!(
        json["kpis"]["orders"],
        serde_json::Value::Null,
        "never 0 before the data is there"
    );
    let reason = json["null_reasons"]["orders"].as_str().unwrap();
    assert!(
        reason.contains("has not completed a first sync"),
        "{reason}"
    );
}
