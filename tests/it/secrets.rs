//! Credentials never appear in logs, errors, `Debug` output or the database.

use okrsync_sim::{Fault, FaultKind};

use crate::helpers::*;
use crate::woo_kpis::fixture;

/// Every form a credential may leak in: raw, URL-encoded (both styles), Base64 Basic.
fn forms() -> Vec<String> {
    use base64::Engine;
    let mut v = Vec::new();
    for s in [KEY, SECRET] {
        v.push(s.to_string());
        v.push(
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        v.push(okrsync_wire::oauth1::percent_encode(s));
        v.push(
            s.replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D")
                .replace('&', "%26"),
        );
    }
    v.push(base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}")));
    v
}

fn assert_clean(what: &str, text: &str) {
    for f in forms() {
        assert!(
            !text.contains(&f),
            "{what} leaks a credential form `{f}`:\n{text}"
        );
    }
}

/// Runs the binary with every log level on and returns stdout and stderr together.
async fn traced(h: &Harness, args: &[&str]) -> String {
    let config = h.config_path.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn no_credential_in_logs_errors_or_the_database() {
    // The store rejects our signature (it holds another secret): auth errors everywhere.
    let mut state = fixture().state;
    state.consumer_secret = "cs_other_secret".into();
    let h = Harness::start(state).await;
    let mut outputs = Vec::new();
    for args in [
        vec!["sync"],
        vec!["check", "--online"],
        vec!["logs", "--failed"],
        vec!["logs", "--format", "json"],
    ] {
        let text = traced(&h, &args).await;
        outputs.push((args.join(" "), text));
    }
    assert!(
        outputs[0].1.contains("rejected the credentials"),
        "{}",
        outputs[0].1
    );
    assert!(
        outputs[0]
            .1
            .contains("check consumer_key and consumer_secret of store `main`"),
        "{}",
        outputs[0].1
    );
    assert!(outputs[1].1.contains("FAILED"), "{}", outputs[1].1);
    for (what, text) in &outputs {
        assert_clean(what, text);
    }
    // Server faults whose bodies get quoted in errors, then a good run with trace logging.
    h.sim.with_state(|s| s.consumer_secret = SECRET.into());
    h.sim.inject(Fault {
        path_contains: "/orders".into(),
        kind: FaultKind::Status(500),
        times: 1,
    });
    h.sim.inject(Fault {
        path_contains: "/refunds".into(),
        kind: FaultKind::Malformed,
        times: 5,
    });
    let text = traced(&h, &["sync"]).await;
    assert!(text.contains("not valid JSON"), "{text}");
    assert_clean("sync with faults", &text);
    // The database, WAL included.
    for path in [
        h.settings.database.path.clone(),
        h.settings.database.path.with_extension("db-wal"),
    ] {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
    // Debug output of the settings.
    assert_clean("Debug of Settings", &format!("{:?}", h.settings));
    // The simulated store did receive them (so the test would catch a leak).
    assert!(h.sim.requests().iter().any(|r| {
        r.query
            .iter()
            .any(|(k, v)| k == "oauth_consumer_key" && v == KEY)
    }));
}

#[tokio::test]
async fn plain_http_never_carries_basic_auth_or_the_secret() {
    let h = Harness::start(fixture().state).await;
    assert_eq!(h.sync().await.status, "ok");
    for r in h.sim.requests() {
        assert!(
            r.authorization.is_none(),
            "Authorization header sent over http: {r:?}"
        );
        assert!(
            !r.query
                .iter()
                .any(|(k, v)| k == "consumer_secret" || v.contains(SECRET)),
            "secret sent in the query over http: {r:?}"
        );
        if r.path.contains("/wc/v3/") {
            let method = r
                .query
                .iter()
                .find(|(k, _)| k == "oauth_signature_method")
                .map(|(_, v)| v.as_str());
            assert_eq!(method, Some("HMAC-SHA256"), "{r:?}");
        }
    }
}
