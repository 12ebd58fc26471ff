//! What a shop owner meets first: read-only commands without the service's secrets, `check`
//! refusing key results that can never work, relative targets.

use crate::cli::KR;
use crate::helpers::*;
use crate::woo_kpis::fixture;

/// The harness's config with the store's secrets moved to a variable nobody set and a file
/// that does not exist, as on a systemd install looked at by its owner.
fn without_secrets(h: &Harness) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&h.config_path)
        .unwrap()
        .replace(
            &format!("consumer_key = \"{KEY}\""),
            "consumer_key_env = \"OKRSYNC_TEST_UNSET_CONSUMER_KEY\"",
        )
        .replace(
            &format!("consumer_secret = \"{SECRET}\""),
            "consumer_secret_file = \"/nonexistent/okrsync/consumer_secret\"",
        );
    assert!(text.contains("consumer_key_env") && text.contains("consumer_secret_file"));
    let path = h.config_path.with_file_name("readonly.toml");
    write_private(&path, &text);
    path
}

#[tokio::test]
async fn read_only_commands_work_without_store_secrets_and_sync_names_the_key() {
    let h = Harness::start_with(fixture().state, "", KR).await;
    let out = h.run_bin(&["sync"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = without_secrets(&h);
    let run = |args: &'static [&'static str]| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || run_bin_with(&path, args))
    };

    let out = run(&["krs", "--format", "json"]).await.unwrap();
    assert!(
        out.status.success(),
        "krs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["id"], "repeat-rate");
    assert_eq!(
        json[0]["current"],
        serde_json::json!(0.2),
        "the stored data is read"
    );

    let out = run(&[
        "kpis",
        "--format",
        "json",
        "--window",
        "2026-10-01..2026-10-25",
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "kpis: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kpis"]["net_sales"], serde_json::json!("135.00"));

    let out = run(&["logs"]).await.unwrap();
    assert!(
        out.status.success(),
        "logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("main"));

    let out = run(&["history", "net-sales"]).await.unwrap();
    assert!(
        out.status.success(),
        "history: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Contacting the store needs them: a clear error naming each key, exit 2, no request.
    let requests = h.sim.requests().len();
    for args in [&["sync"][..], &["check"]] {
        let args: Vec<&'static str> = args.to_vec();
        let path = path.clone();
        let out = tokio::task::spawn_blocking(move || run_bin_with(&path, &args))
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        for needle in [
            "stores[0].consumer_key_env: environment variable OKRSYNC_TEST_UNSET_CONSUMER_KEY is not set",
            "stores[0].consumer_secret_file: ",
            "/nonexistent/okrsync/consumer_secret",
        ] {
            assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
        }
    }
    assert_eq!(h.sim.requests().len(), requests);
}

#[test]
fn check_refuses_what_can_never_work_each_once_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[database]
paht = "other.db"

[http]
listen = "127.0.0.1:0"
webhook_body_limit = 1048576

[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
url_env = "SHOP_URL"
consumer_key = "ck_x"
consumer_secert = "cs_x"
consumer_secret_env = "OKRSYNC_TEST_CS"
schedule_file = "/etc/okrsync/schedule"
webhook_secret_env = "OKRSYNC_TEST_WEBHOOK_SECRET"

[[key_results]]
id = "conversion"
kpi = "conversion_rate"
store = "main"
window = "quarter_to_date"
baseline = 18
target = 25

[[key_results]]
id = "abandonment"
kpi = "cart_abandonment_rate"
store = "main"
window = "quarter_to_date"
baseline = 0.7
target = 0.6

[[key_result]]
id = "typo"
"#;
    let path = dir.path().join("okrsync.toml");
    write_private(&path, text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&path)
        .arg("check")
        .env("OKRSYNC_TEST_CS", "cs_from_env")
        // Environment overrides still work, and a misspelt one is caught like a key in the file.
        .env("OKRSYNC__STORES__0__TIMEOUT_SECONDS", "7")
        .env("OKRSYNC__STORES__0__MAX_RETRYS", "2")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = [
        "database.paht: unknown key; did you mean `path`?",
        "stores[0].url_env: `url` is not a secret, so it cannot be read from an environment variable",
        "stores[0].schedule_file: `schedule` is not a secret, so it cannot be read from a file",
        "stores[0].consumer_secert: unknown key; did you mean `consumer_secret`?",
        "stores[0].max_retrys: unknown key; did you mean `max_retries`?",
        "key_result: unknown key; did you mean `key_results`?",
        "key_results[0].baseline: `conversion_rate` is a fraction between 0 and 1 (0.18 for 18 %), but baseline = 18, target = 25 looks like a percentage: write baseline = 0.18, target = 0.25",
        "key_results[0].kpi: `conversion_rate` needs data from the analytics source linked to its store, and store `main` has none",
        "key_results[1].kpi: `cart_abandonment_rate` needs abandoned checkouts, which only Shopify reports; store `main` is WooCommerce",
    ];
    for needle in expected {
        assert_eq!(
            err.matches(needle).count(),
            1,
            "want `{needle}` once in:\n{err}"
        );
    }
    // Exactly these problems: the reserved keys (webhook_secret_env, http.webhook_body_limit),
    // the valid override and the secret from the environment are accepted.
    assert!(
        err.contains(&format!("configuration has {} problems", expected.len())),
        "{err}"
    );
}

/// Relative and all-time key results over the `woo_kpis` fixture (see its table).
const RELATIVE: &str = r#"
[[key_results]]
id = "net-sales-nov"
title = "Net sales +10 % on October"
kpi = "net_sales"
store = "main"
window = "2026-11-01..2026-11-30"
baseline_window = "previous_month"
target = "+10%"

[[key_results]]
id = "aov-unknown"
kpi = "average_order_value"
store = "main"
window = "2026-11-01..2026-11-30"
baseline_window = "2025-01-01..2025-01-31"
target = "-5%"

[[key_results]]
id = "orders-ever"
kpi = "orders"
store = "main"
window = "all_time"
baseline = 0
target = 50
direction = "at_least"
"#;

#[tokio::test]
async fn relative_targets_are_computed_once_per_period_and_all_time_starts_at_the_first_order() {
    let h = Harness::start_with(fixture().state, "", RELATIVE).await;
    let out = h.run_bin(&["sync"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let krs = || async {
        let out = h.run_bin(&["krs", "--format", "json"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let json = krs().await;

    // The period is November; previous_month on its first day is October: counted orders
    // K, A, B, F, G, C (net 135.00 in 10-01..10-25) and D (TEE 25.00 on 10-26) → 160.00;
    // +10 % → 176. November has no order: 0, below the baseline, so off_track (never on
    // track below the start), progress 0.
    let kr = &json[0];
    assert_eq!(kr["id"], "net-sales-nov");
    assert_eq!(kr["baseline"], serde_json::json!(160));
    assert_eq!(kr["target"], serde_json::json!(176));
    assert_eq!(kr["direction"], "increase");
    assert_eq!(kr["current"], serde_json::json!("0.00"));
    assert_eq!(kr["progress"], serde_json::json!(0));
    assert_eq!(kr["status"], "off_track");
    let from = &kr["computed_from"];
    assert_eq!(from["baseline_window"], "previous_month");
    assert_eq!(from["target"], "+10%");
    assert_eq!(from["period_from"], "2026-11-01");
    assert_eq!(from["window_range"]["from"], "2026-10-01");
    assert_eq!(from["window_range"]["to"], "2026-10-31");
    assert_eq!(from["window_range"]["timezone"], "Europe/Paris");
    assert!(from["computed_at"].is_string());

    // A baseline window without orders: no value, so nothing is fixed and no progress.
    let unknown = &json[1];
    assert_eq!(unknown["id"], "aov-unknown");
    assert_eq!(unknown["direction"], "decrease");
    assert!(unknown["baseline"].is_null() && unknown["target"].is_null());
    assert!(unknown["progress"].is_null() && unknown["status"].is_null());
    assert!(unknown["computed_from"]["window_range"].is_null());
    assert_eq!(
        unknown["computed_from"]["baseline_window"],
        "2025-01-01..2025-01-31"
    );

    // all_time: every counted order (5 on the DST weekend in March, L, I, K, A, B, F, G, C, D
    // → 14), shown from the first one's day: 2026-03-28 23:30 in Paris.
    let ever = &json[2];
    assert_eq!(ever["window"], "all_time");
    assert_eq!(ever["current"], serde_json::json!(14));
    assert_eq!(ever["window_range"]["from"], "2026-03-28");
    assert_eq!(ever["progress"], serde_json::json!(0));

    // A late October order changes October's net sales, not the baseline fixed for November.
    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            okrsync_sim::NewOrder::new("completed", at(2026, 10, 20, 9, 0), "late@example.com")
                .line(11, "MUG", "Mug", 1, dec("10.00")),
        );
    });
    let out = h.run_bin(&["sync"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h
        .run_bin(&[
            "kpis",
            "--format",
            "json",
            "--window",
            "2026-10-01..2026-10-31",
        ])
        .await;
    let kpis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(kpis["kpis"]["net_sales"], serde_json::json!("170.00"));
    let json = krs().await;
    assert_eq!(json[0]["baseline"], serde_json::json!(160));
    assert_eq!(json[0]["target"], serde_json::json!(176));
    assert_eq!(json[0]["computed_from"]["computed_at"], from["computed_at"]);
    assert_eq!(json[2]["current"], serde_json::json!(15));

    // The table says where the numbers come from.
    let out = h.run_bin(&["krs"]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("+10% on previous_month"), "{table}");
}

#[test]
fn relative_targets_are_checked() {
    let base = "[[stores]]\nname = \"main\"\nplatform = \"woocommerce\"\nurl = \"https://shop.example\"\nconsumer_key = \"k\"\nconsumer_secret = \"s\"\n";
    let load = |kr: &str| {
        okrsync::config::load_from_str(
            &format!(
                "{base}\n[[key_results]]\nid = \"k\"\nkpi = \"net_sales\"\nwindow = \"quarter_to_date\"\n{kr}"
            ),
            std::path::Path::new("."),
            None,
            &std::collections::HashMap::new(),
        )
    };
    let ok = load("baseline_window = \"previous_quarter\"\ntarget = \"-5%\"").unwrap();
    let rel = ok.key_results[0].relative.as_ref().unwrap();
    assert_eq!(rel.change, dec("-0.05"));
    assert_eq!(
        ok.key_results[0].direction,
        okrsync::okr::Direction::Decrease
    );
    for (kr, needle) in [
        (
            "baseline_window = \"previous_quarter\"\ntarget = \"10%\"",
            "key_results[0].target: `10%` is not a relative target",
        ),
        (
            "baseline_window = \"previous_quarter\"\nbaseline = 5\ntarget = \"+10%\"",
            "key_results[0].baseline: give either baseline",
        ),
        (
            "baseline_window = \"quarter_to_date\"\ntarget = \"+10%\"",
            "key_results[0].baseline_window: `quarter_to_date` is not over when a period starts",
        ),
        (
            "baseline = 5\ntarget = \"+10%\"",
            "key_results[0].target: `+10%` is relative to a baseline: add baseline_window",
        ),
        (
            "baseline_window = \"previous_quarter\"\ntarget = \"+0%\"",
            "key_results[0].target: target equals baseline",
        ),
    ] {
        let err = load(kr).unwrap_err().to_string();
        assert!(err.contains(needle), "want `{needle}` in:\n{err}");
    }
}
