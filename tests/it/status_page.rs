//! The status page (`GET /`) of the real `okrsync run`: its HTML over reqwest (always), and
//! in headless Chromium (Debian's `chromium`; skipped with a printed reason when it is not
//! installed): the key results' titles and progress in the rendered DOM, and a screenshot
//! saved as a test artifact (`target/test-artifacts/`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::helpers::*;
use crate::woo_kpis::fixture;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the tests leave artifacts: `<target dir>/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_okrsync"));
    // <target>/<profile>/okrsync
    let dir = bin
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("target"))
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A progress as the page prints it, from `krs --format json`'s `progress` (`42%`, `—`).
pub fn percent(progress: &serde_json::Value) -> String {
    match progress {
        serde_json::Value::Number(n) => {
            let p: Decimal = n.to_string().parse().unwrap();
            format!("{:.0}%", p * Decimal::from(100))
        }
        _ => "—".into(),
    }
}

/// Text as it appears in HTML (the page's own escaping; a serialized DOM escapes only `&<>`
/// in text, so callers checking a DOM use [`dom_text`]).
pub fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Text as a serialized DOM (`--dump-dom`) writes it.
pub fn dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The HTML of one key result's card (`<article id="kr-ID"> … </article>`).
pub fn kr_card<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"kr-{id}\""))
        .unwrap_or_else(|| panic!("no card for key result {id}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

/// Runs Chromium headless with the given extra arguments and waits for it: it exits by itself
/// once the page is loaded and dumped or captured. A Chromium that never exits (a broken
/// install) is killed after two minutes with a clear failure rather than hanging the tests.
fn chromium(args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--disable-dev-shm-usage",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{CHROMIUM} {args:?} did not exit within 2 minutes: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// Loads the page at `base` (with `token` as Basic auth, the way a browser sends it) in
/// headless Chromium: every key result of `krs` (the CLI's JSON) shows its title and progress
/// in the rendered DOM; saves screenshots (desktop `<name>.png`, phone `<name>-phone.png`)
/// under [`artifacts_dir`]. Returns false (after printing why) when Chromium is not installed.
pub async fn check_in_chromium(
    base: &str,
    token: Option<&str>,
    krs: &serde_json::Value,
    name: &str,
) -> bool {
    if !Path::new(CHROMIUM).exists() {
        println!(
            "skipped: {CHROMIUM} not found; install Debian's chromium (apt-get install chromium) to check the status page in a browser"
        );
        return false;
    }
    let url = match token {
        Some(t) => base.replacen("http://", &format!("http://okrsync:{t}@"), 1) + "/",
        None => format!("{base}/"),
    };
    let dump = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || chromium(&["--dump-dom".into(), url]))
            .await
            .unwrap()
    };
    let dom = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(
        dump.status.success() && dom.contains("okrsync status"),
        "chromium did not render the page: {:?}\n{dom}\n{}",
        dump.status,
        String::from_utf8_lossy(&dump.stderr)
    );
    for kr in krs.as_array().unwrap() {
        let id = kr["id"].as_str().unwrap();
        let card = kr_card(&dom, id);
        let title = dom_text(kr["title"].as_str().unwrap());
        assert!(card.contains(&title), "no title {title} in {card}");
        let progress = format!("Progress <b>{}</b>", percent(&kr["progress"]));
        assert!(card.contains(&progress), "no `{progress}` in {card}");
    }
    if let Some(t) = token {
        assert!(!dom.contains(t), "the token is in the page");
    }
    for (file, size) in [
        (format!("{name}.png"), "1100,1400"),
        (format!("{name}-phone.png"), "412,1400"),
    ] {
        let path = artifacts_dir().join(&file);
        let _ = std::fs::remove_file(&path);
        let args = vec![
            format!("--screenshot={}", path.display()),
            format!("--window-size={size}"),
            url.clone(),
        ];
        let out = tokio::task::spawn_blocking(move || chromium(&args))
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        assert!(
            png.len() > 1000,
            "{} is {} bytes",
            path.display(),
            png.len()
        );
        assert_eq!(
            &png[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        println!("screenshot: {}", path.display());
    }
    true
}

pub async fn get(url: &str, auth: Auth<'_>) -> (u16, reqwest::header::HeaderMap, String) {
    okrsync::sources::http::init_tls();
    let client = reqwest::Client::new();
    let req = match auth {
        Auth::None => client.get(url),
        Auth::Bearer(t) => client.get(url).bearer_auth(t),
        Auth::Basic(t) => client.get(url).basic_auth("okrsync", Some(t)),
    };
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.text().await.unwrap())
        }
        Err(_) => (0, Default::default(), String::new()),
    }
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str),
}

const TOKEN: &str = "page-t0ken-never-shown";
const PLAUSIBLE_KEY: &str = "plausible-s3cret-key-never-shown";

/// Key results whose titles and objective need escaping, one of them on sessions (fed by the
/// failing analytics source).
const KRS: &str = r#"
[[key_results]]
id = "net-sales"
objective = "Grow <fast> & \"well\""
title = "Net sales <Q4> & 'more'"
kpi = "net_sales"
store = "main"
window = "2026-10-01..2026-10-25"
baseline = 0
target = 500

[[key_results]]
id = "sessions"
objective = "Grow <fast> & \"well\""
title = "Sessions 1000"
kpi = "sessions"
store = "main"
window = "2026-10-01..2026-10-25"
baseline = 0
target = 1000
"#;

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// The page of a daemon whose analytics source fails: escaped titles, progress as `krs`
/// says, the source stale with its error, no secret, and the token required. `/readyz` names
/// the failing source; `/metrics` counts its runs and requests.
#[tokio::test]
async fn status_page_shows_key_results_escaped_and_a_failing_source_without_secrets() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let analytics = format!(
        "[[analytics]]\nname = \"traffic\"\nprovider = \"plausible\"\nbase_url = \"{}\"\nsite_id = \"shop.example\"\napi_key = \"{PLAUSIBLE_KEY}\"\nstores = [\"main\"]\nmax_retries = 0\nretry_backoff_ms = 10\n",
        closed_port_url()
    );
    let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n");
    let h = Harness::start_with(fixture().state, "", &format!("{KRS}\n{analytics}\n{http}")).await;
    // A first sync of the store tells its time zone, so the analytics source's first run
    // does not wait for it (it would retry only 30 s later).
    h.sync().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&h.config_path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");

    // Wait until the store has synced, its key results are checked in, and the analytics
    // source has failed once.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let main_ok =
            h.db.runs(Some("main".into()), 10, false)
                .await
                .unwrap()
                .iter()
                .any(|r| r.status == "ok");
        let traffic_failed =
            h.db.runs(Some("traffic".into()), 10, true)
                .await
                .unwrap()
                .iter()
                .any(|r| r.status == "failed");
        let checked_in = h.db.checkin_count("net-sales").await.unwrap() > 0;
        if main_ok && traffic_failed && checked_in {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("okrsync run exited: {status:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no sync: main ok {main_ok}, traffic failed {traffic_failed}, check-in {checked_in}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The token: none or a wrong one gets 401 and an invitation to Basic auth (what a
    // browser can send); a bearer token or Basic auth with it gets the page.
    let (status, headers, body) = get(&format!("{base}/"), Auth::None).await;
    assert_eq!(status, 401, "{body}");
    let challenges: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic ")),
        "{challenges:?}"
    );
    assert_eq!(
        get(&format!("{base}/"), Auth::Bearer("page-t0ken-never-show"))
            .await
            .0,
        401
    );
    assert_eq!(
        get(&format!("{base}/"), Auth::Basic("page-t0ken-never-show"))
            .await
            .0,
        401
    );
    let (status, headers, page) = get(&format!("{base}/"), Auth::Bearer(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let (status, _, basic_page) = get(&format!("{base}/"), Auth::Basic(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(basic_page.contains("okrsync status"));

    // Phone-ready, self-contained.
    assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width"));
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");

    // Titles and objectives from the config are escaped, never raw HTML.
    assert!(
        page.contains(&html_text("Net sales <Q4> & 'more'")),
        "{page}"
    );
    assert!(
        page.contains(&html_text("Grow <fast> & \"well\"")),
        "{page}"
    );
    assert!(!page.contains("<Q4>") && !page.contains("<fast>"), "{page}");

    // Each key result's progress, as `krs --format json` says.
    let out = h.run_bin(&["krs", "--format", "json"]).await;
    let krs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let net = &krs[0];
    assert_eq!(net["id"], "net-sales");
    assert_eq!(net["current"], serde_json::json!("135.00"));
    assert_eq!(percent(&net["progress"]), "27%");
    for kr in krs.as_array().unwrap() {
        let card = kr_card(&page, kr["id"].as_str().unwrap());
        assert!(
            card.contains(&html_text(kr["title"].as_str().unwrap())),
            "{card}"
        );
        assert!(
            card.contains(&format!("Progress <b>{}</b>", percent(&kr["progress"]))),
            "{card}"
        );
    }
    let net_card = kr_card(&page, "net-sales");
    assert!(net_card.contains("135.00"), "{net_card}");
    // Baseline and target read like the value (money with decimals, separators), as in `krs`.
    assert!(net_card.contains("0.00 → 500.00"), "{net_card}");
    assert!(kr_card(&page, "sessions").contains("0 → 1,000"), "{page}");
    assert!(net_card.contains("Data as of"), "{net_card}");
    assert!(net_card.contains("<svg"), "a history chart: {net_card}");
    // The sessions key result depends on the failing source: it says so; net sales does not.
    let sessions_card = kr_card(&page, "sessions");
    assert!(
        sessions_card.contains("Stale since") && sessions_card.contains("<b>traffic</b>"),
        "{sessions_card}"
    );
    assert!(!net_card.contains("Stale since"), "{net_card}");

    // The sources: the store fresh, the analytics source stale with its (redacted) error,
    // also in the failed runs.
    let failed = h.db.runs(Some("traffic".into()), 1, true).await.unwrap();
    let error = failed[0].error.clone().unwrap();
    let sources =
        &page[page.find("id=\"sources\"").unwrap()..page.find("id=\"failures\"").unwrap()];
    let store_card = &sources[sources.find("id=\"source-main\"").unwrap()..];
    let store_card = &store_card[..store_card.find("</li>").unwrap()];
    assert!(
        store_card.contains("<b class=\"outcome\">ok</b>"),
        "{store_card}"
    );
    assert!(store_card.contains("Data as of"), "{store_card}");
    let traffic_card = &sources[sources.find("id=\"source-traffic\"").unwrap()..];
    assert!(
        traffic_card.contains("<b class=\"outcome\">failed</b>")
            && traffic_card.contains("Stale since")
            && traffic_card.contains("no successful sync yet"),
        "{traffic_card}"
    );
    assert!(traffic_card.contains(&html_text(&error)), "{traffic_card}");
    let failures = &page[page.find("id=\"failures\"").unwrap()..];
    assert!(failures.contains(&html_text(&error)), "{failures}");
    assert!(page.contains("Stale data: <b>traffic</b>"), "{page}");

    // No secret anywhere.
    for secret in [TOKEN, PLAUSIBLE_KEY, KEY, SECRET] {
        assert!(!page.contains(secret), "{secret} is in the page");
    }

    // /readyz names the failing analytics source; /metrics counts its runs and requests.
    let (status, _, ready) = get(&format!("{base}/readyz"), Auth::Bearer(TOKEN)).await;
    assert_eq!(status, 503, "{ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let reason = ready["reason"].as_str().unwrap();
    assert!(
        reason.contains("analytics source `traffic` has no successful sync yet"),
        "{reason}"
    );
    assert!(!reason.contains("store `main`"), "{reason}");
    let (status, _, metrics) = get(&format!("{base}/metrics"), Auth::Bearer(TOKEN)).await;
    assert_eq!(status, 200);
    let sample = |line: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
    };
    let traffic_runs =
        h.db.runs(Some("traffic".into()), 1000, false)
            .await
            .unwrap();
    let requests: u64 = traffic_runs.iter().map(|r| r.requests).sum();
    assert!(requests >= 1);
    let failed_runs = sample("okrsync_sync_runs_total{store=\"traffic\",status=\"failed\"} ");
    assert!(failed_runs >= 1, "{metrics}");
    // The metrics and the sync log are read at different moments: a run may finish between.
    let traffic_requests = sample("okrsync_http_requests_total{store=\"traffic\"} ");
    assert!(traffic_requests >= 1, "{metrics}");
    sample("okrsync_http_retries_total{store=\"traffic\"} ");
    sample("okrsync_records_stored_total{store=\"traffic\"} ");
    assert_eq!(
        sample("okrsync_source_info{store=\"traffic\",kind=\"analytics\",platform=\"plausible\"} "),
        1
    );

    // In a browser too: titles and progress in the rendered DOM, screenshots of a page with
    // a failing source.
    check_in_chromium(&base, Some(TOKEN), &krs, "status-page-stale").await;

    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
}
