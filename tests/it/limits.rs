//! Limits and contracts of the command line: out-of-range tuning refused by `check`, exit
//! codes for an invalid command line and an interrupted sync, credentials never sent over
//! plain http:// off loopback, and a cap on response bodies.

use std::time::Duration;

use okrsync_sim::{Fault, FaultKind};

use crate::helpers::*;

/// Runs `check` on `text` written as a private config; returns (exit code, stderr).
fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    write_private(&path, text);
    let out = run_bin_with(&path, &["check"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_retries_and_timeouts_are_refused_not_clamped() {
    let text = config_text(
        "https://shop.example",
        "max_retries = 1000\ntimeout_seconds = 0",
        r#"[[analytics]]
name = "traffic"
provider = "plausible"
site_id = "shop.example"
api_key = "k-123456"
stores = ["main"]
timeout_seconds = 86400
retry_backoff_ms = 3600000
"#,
    );
    let (code, err) = check(&text);
    assert_eq!(code, Some(2), "{err}");
    for needle in [
        "stores[0].max_retries: 1000 is out of range: allowed 0 to 20",
        "stores[0].timeout_seconds: 0 is out of range: allowed 1 to 3600",
        "analytics[0].timeout_seconds: 86400 is out of range: allowed 1 to 3600",
        "analytics[0].retry_backoff_ms: 3600000 is out of range: allowed 0 to 60000",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
}

#[test]
fn an_invalid_window_or_store_on_the_command_line_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    write_private(&path, &config_text("https://shop.example", "", ""));
    for (args, needle) in [
        (&["kpis", "--window", "fortnight"][..], "--window"),
        (&["kpis", "--store", "nowhere"], "unknown store `nowhere`"),
        (&["sync", "--store", "nowhere"], "unknown store `nowhere`"),
    ] {
        let out = run_bin_with(&path, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn an_interrupted_sync_does_not_exit_0() {
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
    let mut child = h.spawn_bin(&["sync"]);
    h.wait_for_query("offset", "99").await;
    let status = terminate(&mut child).await;
    assert_eq!(status.code(), Some(143), "exit status {status:?}");
    let runs = h.db.runs(None, 5, false).await.unwrap();
    assert_eq!(runs[0].status, "partial", "{runs:?}");
}

#[test]
fn tokens_and_keys_are_never_sent_over_plain_http_off_loopback() {
    let text = r#"[database]
path = "okrsync.db"

[[stores]]
name = "main"
platform = "shopify"
shop = "http://shop.example"
access_token = "shpat_0123456789"

[[stores]]
name = "woo"
platform = "woocommerce"
url = "https://woo.example"
consumer_key = "ck_1"
consumer_secret = "cs_1"

[[analytics]]
name = "traffic"
provider = "plausible"
base_url = "http://stats.example"
site_id = "shop.example"
api_key = "k-123456"
stores = ["woo"]

[[analytics]]
name = "matomo"
provider = "matomo"
base_url = "http://10.0.0.7/matomo"
site_id = "1"
token = "t-123456"
stores = ["main"]

[[analytics]]
name = "speed"
provider = "pagespeed"
urls = ["http://woo.example/"]
api_key = "AIza-123456"
api_base_url = "http://psi.example"
stores = ["woo"]
"#;
    let (code, err) = check(text);
    assert_eq!(code, Some(2), "{err}");
    for needle in [
        "stores[0].shop: `http://shop.example/`: plain http:// is only allowed for a loopback test server (the access token would travel unencrypted); use https://",
        "analytics[0].base_url: `http://stats.example/`: plain http:// is only allowed for a loopback test server (the api_key would travel unencrypted)",
        "analytics[1].base_url: `http://10.0.0.7/matomo`: plain http://",
        "analytics[2].api_base_url: `http://psi.example/`: plain http://",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // The pages PageSpeed measures carry no credential: http:// is fine for them.
    assert!(!err.contains("urls[0]"), "{err}");
    // Loopback stays allowed for tests and local proxies.
    let local = text
        .replace("http://shop.example", "http://127.0.0.1:9")
        .replace("http://stats.example", "http://localhost:9")
        .replace("http://10.0.0.7/matomo", "http://[::1]:9/matomo")
        .replace("http://psi.example", "http://127.0.0.1:9");
    let (code, err) = check(&local);
    assert_eq!(code, Some(0), "{err}");
}

/// A server on loopback that answers every request `200 OK` with a JSON body that never ends
/// (no `Content-Length`), and counts the requests for the site index (`GET /wp-json/`; the
/// first pages of the listings, sent alongside it, are answered the same way).
async fn endless_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                if buf[..n].starts_with(b"GET /wp-json/ ") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[";
                if tcp.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = "{\"id\":1},".repeat(7000);
                // About 60 MB/s, so that a client without a limit (reading until its
                // timeout) does not take the machine's memory. Stops when okrsync hangs up.
                while tcp.write_all(chunk.as_bytes()).await.is_ok() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn an_endless_response_fails_the_request_at_the_size_limit() {
    let (url, hits) = endless_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    write_private(
        &path,
        &config_text(
            &url,
            "max_response_mb = 1\nmax_retries = 3\ntimeout_seconds = 2",
            "",
        ),
    );
    let out = tokio::task::spawn_blocking(move || run_bin_with(&path, &["sync"]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(
            "/wp-json/ failed: the response is larger than 1 MiB, the limit set by max_response_mb"
        ) && text.contains("raise max_response_mb"),
        "{text}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "an oversized answer (the site index) is not retried"
    );
}

#[test]
fn max_response_mb_is_checked() {
    let (code, err) = check(&config_text(
        "https://shop.example",
        "max_response_mb = 0",
        "",
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("stores[0].max_response_mb: 0 is out of range: allowed 1 to 4096"),
        "{err}"
    );
}

#[test]
fn max_concurrency_out_of_range_is_refused_naming_the_key() {
    for (value, needle) in [
        (
            "0",
            "stores[0].max_concurrency: 0 is out of range: allowed 1 to 16",
        ),
        (
            "64",
            "stores[0].max_concurrency: 64 is out of range: allowed 1 to 16",
        ),
    ] {
        let text = config_text(
            "https://shop.example",
            &format!("max_concurrency = {value}"),
            "",
        );
        let (code, err) = check(&text);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    let (code, err) = check(&config_text(
        "https://shop.example",
        "max_concurrency = 8",
        "",
    ));
    assert_eq!(code, Some(0), "{err}");
}
