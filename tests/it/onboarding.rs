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
