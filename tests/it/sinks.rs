//! Sinks over real HTTP: check-ins reach a webhook receiver and a Slack incoming webhook
//! (fakes in `okrsync-sim` that check what each promises: v1 body, `Idempotency-Key`, the HMAC
//! signature, Slack's payload) through the outbox, once each, in order, across failures,
//! `Retry-After`, a SIGKILL between send and mark, and without leaking a secret.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use okrsync::daemon::keyresults::evaluate_key_results;
use okrsync::daemon::{Clock, Shutdown};
use okrsync::sinks::deliver::{DeliveryMode, DeliveryRun, build_sinks, deliver_sink};
use okrsync_sim::NewOrder;
use okrsync_sim::sim_sinks::{SimSink, SinkFault};
use serde_json::Value as Json;

use crate::helpers::*;

const HOOK_SECRET: &str = "whsec_T3stSigningSecret_9f8e";
const SLACK_TOKEN: &str = "xS1ackT0kenPathPart77";

fn key_result(id: &str, sinks: &str) -> String {
    format!(
        r#"
[[key_results]]
id = "{id}"
objective = "Grow revenue"
title = "Orders in the last 30 days"
kpi = "orders"
store = "main"
window = "last_30_days"
baseline = 0
target = 1000
sinks = [{sinks}]
"#
    )
}

fn webhook_section(url: &str, extra: &str) -> String {
    format!(
        r#"
[[sinks]]
name = "hook"
kind = "webhook"
url = "{url}/okr"
{extra}
"#
    )
}

/// One more order in the store, a sync, an evaluation: one check-in per key result.
async fn new_checkin(h: &Harness, n: u64) {
    h.sim.with_state(|s| {
        s.add_order(NewOrder::new(
            "completed",
            Utc::now() - chrono::Duration::days(2),
            &format!("c{n}@example.com"),
        ))
    });
    h.sync().await;
    evaluate_key_results(&h.settings, &h.db, &Clock::System)
        .await
        .unwrap();
}

async fn pass(h: &Harness, clock: &Clock, mode: DeliveryMode) -> Vec<DeliveryRun> {
    let mut out = Vec::new();
    for (s, sink) in build_sinks(&h.settings, clock) {
        out.push(
            deliver_sink(&sink, &s, &h.db, clock, &Shutdown::never(), mode)
                .await
                .unwrap(),
        );
    }
    out
}

fn json(b: &[u8]) -> Json {
    serde_json::from_slice(b).unwrap()
}

/// Lower-case hex HMAC-SHA256, computed here independently of okrsync and the fake.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn each_checkin_is_delivered_once_signed_with_the_v1_body() {
    let hook = SimSink::webhook(Some(HOOK_SECRET)).await.unwrap();
    let extra = format!(
        "{}{}",
        webhook_section(&hook.url(), &format!("secret = \"{HOOK_SECRET}\"")),
        key_result("orders-30d", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=3 {
        new_checkin(&h, n).await;
    }
    // No change, no check-in, nothing queued.
    evaluate_key_results(&h.settings, &h.db, &Clock::System)
        .await
        .unwrap();
    let runs = pass(&h, &Clock::System, DeliveryMode::Due).await;
    assert_eq!(runs[0].delivered, 3);
    // A second pass sends nothing delivered again.
    let runs = pass(&h, &Clock::System, DeliveryMode::Now).await;
    assert_eq!((runs[0].delivered, runs[0].report.is_none()), (0, true));

    let reqs = hook.with_state(|s| s.requests.clone());
    assert_eq!(reqs.len(), 3, "one request per check-in");
    let mut keys = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.answered, 200);
        let sig = r.signature.as_deref().unwrap();
        assert_eq!(sig, format!("sha256={}", hmac_hex(HOOK_SECRET, &r.body)));
        let b = json(&r.body);
        assert_eq!(b["version"], 1);
        assert_eq!(b["event"], "key_result.checkin");
        assert_eq!(b["key_result"]["id"], "orders-30d");
        assert_eq!(b["key_result"]["target"], 1000);
        assert_eq!(b["value"], (i + 1) as u64, "in check-in order");
        let prev = if i == 0 {
            Json::Null
        } else {
            Json::from(i as u64)
        };
        assert_eq!(b["previous_value"], prev);
        assert_eq!(b["idempotency_key"].as_str(), r.idempotency_key.as_deref());
        assert!(b["window"]["timezone"].is_string() && b["at"].is_string());
        keys.push(r.idempotency_key.clone().unwrap());
    }
    keys.dedup();
    assert_eq!(keys.len(), 3, "one idempotency key per check-in");
    // The sync log records the delivery run under the sink's name.
    let logs = h.run_bin(&["logs", "--store", "hook"]).await;
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("hook") && text.contains(" ok "), "{text}");
}

#[tokio::test]
async fn a_failing_sink_gets_every_update_in_order_after_backoff_and_retry_after() {
    let hook = SimSink::webhook(None).await.unwrap();
    let extra = format!(
        "{}{}{}",
        webhook_section(&hook.url(), ""),
        key_result("a-orders", "\"hook\""),
        key_result("b-orders", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=3 {
        new_checkin(&h, n).await;
    }
    hook.with_state(|s| s.faults.push_back(SinkFault::Status(500)));
    let t0 = (Utc::now() + chrono::Duration::minutes(1)).trunc_subsecs(0);
    let clock = Clock::fixed(t0);
    let sent = || hook.with_state(|s| s.requests.len());

    // Pass 1: a's first entry gets the 500 and blocks a's later entries; b is not blocked.
    let runs = pass(&h, &clock, DeliveryMode::Due).await;
    assert_eq!((runs[0].delivered, runs[0].failed), (3, 1));
    let head = &h.db.pending_outbox("hook").await.unwrap()[0];
    assert_eq!(head.key_result, "a-orders");
    let wait = head.next_attempt_at - t0;
    assert!(
        wait >= chrono::Duration::seconds(1) && wait <= chrono::Duration::seconds(5),
        "first retry within 5 s: {wait}"
    );
    // Not due yet: nothing is sent.
    let before = sent();
    pass(&h, &clock, DeliveryMode::Due).await;
    assert_eq!(sent(), before);

    // Pass 2 (due): 429 with Retry-After: 120 s is honoured.
    hook.with_state(|s| {
        s.faults.push_back(SinkFault::TooMany {
            retry_after_secs: 120,
        })
    });
    let t1 = t0 + chrono::Duration::seconds(5);
    clock.set(t1);
    pass(&h, &clock, DeliveryMode::Due).await;
    let head = &h.db.pending_outbox("hook").await.unwrap()[0];
    assert!(
        head.next_attempt_at - t1 >= chrono::Duration::seconds(120),
        "{head:?} {t1}"
    );
    assert!(
        head.last_error.as_deref().unwrap().contains("429"),
        "{head:?}"
    );
    clock.set(t1 + chrono::Duration::seconds(60));
    let before = sent();
    pass(&h, &clock, DeliveryMode::Due).await;
    assert_eq!(sent(), before, "Retry-After not honoured");

    // Then a 503, then recovery.
    hook.with_state(|s| s.faults.push_back(SinkFault::Status(503)));
    for k in 1..=3 {
        clock.set(t1 + chrono::Duration::seconds(200 * k));
        pass(&h, &clock, DeliveryMode::Due).await;
    }
    assert!(h.db.pending_outbox("hook").await.unwrap().is_empty());
    let accepted: Vec<Json> = hook.with_state(|s| {
        s.accepted()
            .iter()
            .map(|r| json(&r.body))
            .collect::<Vec<_>>()
    });
    for kr in ["a-orders", "b-orders"] {
        let values: Vec<Json> = accepted
            .iter()
            .filter(|b| b["key_result"]["id"] == kr)
            .map(|b| b["value"].clone())
            .collect();
        assert_eq!(
            values,
            vec![Json::from(1), Json::from(2), Json::from(3)],
            "{kr}"
        );
    }
    // Every attempt is recorded: 3 failures + 6 deliveries.
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let attempts: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox_attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(attempts, 9);
}

#[tokio::test]
async fn a_push_killed_between_send_and_mark_resends_that_one_entry_with_the_same_key() {
    let hook = SimSink::webhook(None).await.unwrap();
    let extra = format!(
        "{}{}",
        webhook_section(&hook.url(), "timeout_seconds = 120"),
        key_result("orders-30d", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=2 {
        new_checkin(&h, n).await;
    }
    // The receiver holds its answer: the binary has sent, not yet marked.
    hook.with_state(|s| s.delay = Duration::from_secs(600));
    let mut child = h.spawn_bin(&["push"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while hook.with_state(|s| s.requests.is_empty()) {
        assert!(std::time::Instant::now() < deadline, "push never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    hook.with_state(|s| s.delay = Duration::ZERO);
    let out = h.run_bin(&["push"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let again = h.run_bin(&["push"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 delivered"));

    let reqs = hook.with_state(|s| s.requests.clone());
    assert_eq!(
        reqs.len(),
        3,
        "the killed entry once more, then the next: {reqs:?}"
    );
    assert_eq!(
        reqs[0].answered, 0,
        "the first answer never reached okrsync"
    );
    assert_eq!(reqs[0].idempotency_key, reqs[1].idempotency_key);
    assert_eq!(reqs[0].body, reqs[1].body, "same body on resend");
    assert_ne!(reqs[1].idempotency_key, reqs[2].idempotency_key);
    assert_eq!(json(&reqs[2].body)["value"], 2);
}

#[tokio::test]
async fn slack_posts_moves_past_the_threshold_and_no_secret_leaks() {
    let path = format!("/services/T0001/B0001/{SLACK_TOKEN}");
    let slack = SimSink::slack(&path).await.unwrap();
    let hook = SimSink::webhook(Some(HOOK_SECRET)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("slack-url");
    write_private(&url_file, &format!("{}{path}\n", slack.url()));
    let secret_file = dir.path().join("hook-secret");
    write_private(&secret_file, HOOK_SECRET);
    let extra = format!(
        r#"
[[sinks]]
name = "team"
kind = "slack"
url_file = "{}"
threshold = 2

[[sinks]]
name = "hook"
kind = "webhook"
url = "{}/okr"
secret_file = "{}"
{}"#,
        url_file.display(),
        hook.url(),
        secret_file.display(),
        key_result("orders-30d", "\"team\", \"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=3 {
        new_checkin(&h, n).await;
    }
    // Fail once so an error message passes through the logs and the database.
    slack.with_state(|s| s.faults.push_back(SinkFault::Status(500)));
    let traced = |args: &'static [&'static str]| {
        let config = h.config_path.clone();
        tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
                .arg("--config")
                .arg(&config)
                .args(args)
                .env("RUST_LOG", "trace")
                .output()
                .unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
    };
    let mut text = String::new();
    for args in [
        &["push", "--dry-run"][..],
        &["push"],
        &["push"],
        &["logs"],
        &["check", "--online"],
    ] {
        text += &traced(args).await.unwrap();
    }
    // Statuses did not change (progress stays far from target), so only the threshold
    // decides: 1 (first), not 2 (moved 1), 3 (moved 2 since the last message).
    let posts: Vec<Json> =
        slack.with_state(|s| s.accepted().iter().map(|r| json(&r.body)).collect());
    assert_eq!(posts.len(), 2, "{posts:?}");
    let last = posts[1]["text"].as_str().unwrap();
    assert!(
        last.contains("Orders in the last 30 days") && last.contains("2 → 3") && last.contains('░'),
        "{last}"
    );
    assert!(text.contains("sink team (slack): OK"), "{text}");
    assert!(text.contains("sink hook (webhook): OK"), "{text}");
    assert_eq!(hook.with_state(|s| s.accepted().len()), 3);

    // No secret in the output, the logs or the database (WAL included).
    for secret in [SLACK_TOKEN, HOOK_SECRET] {
        assert!(!text.contains(secret), "output leaks `{secret}`:\n{text}");
        for suffix in ["", "-wal"] {
            let p = format!("{}{suffix}", h.settings.database.path.display());
            if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{p} holds `{secret}`"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_unknown_sink_in_a_key_result_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    write_private(
        &path,
        &config_text("http://127.0.0.1:9", "", &key_result("k", "\"nope\"")),
    );
    let err = okrsync::config::load(&path, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key_results[0].sinks[0]") && err.contains("unknown sink `nope`"),
        "{err}"
    );
}

const ASANA_TOKEN: &str = "2/1199/12045:asanaPatS3cret0123";
const NOTION_TOKEN: &str = "ntn_N0tionIntegrationS3cret456";

/// The database file and its WAL hold no `secret`.
fn assert_db_free_of(h: &Harness, secret: &str) {
    for suffix in ["", "-wal"] {
        let p = format!("{}{suffix}", h.settings.database.path.display());
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{p} holds `{secret}`"
            );
        }
    }
}

#[tokio::test]
async fn asana_goals_get_each_value_and_a_goal_without_metric_is_a_named_config_error() {
    let asana = SimSink::asana(ASANA_TOKEN).await.unwrap();
    asana.with_state(|s| {
        s.goals.insert("1201".into(), Some(Json::from(0)));
        s.goals.insert("1202".into(), None); // no metric
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("asana-token");
    write_private(&token_file, ASANA_TOKEN);
    let extra = format!(
        r#"
[[sinks]]
name = "goals"
kind = "asana_goal"
api_base = "{}/api/1.0"
token_file = "{}"
goals = {{ "a-orders" = "1201", "b-orders" = "1202" }}
{}{}"#,
        asana.url(),
        token_file.display(),
        key_result("a-orders", "\"goals\""),
        key_result("b-orders", "\"goals\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=2 {
        new_checkin(&h, n).await;
    }
    let t0 = (Utc::now() + chrono::Duration::minutes(1)).trunc_subsecs(0);
    let clock = Clock::fixed(t0);
    let runs = pass(&h, &clock, DeliveryMode::Due).await;
    assert_eq!((runs[0].delivered, runs[0].failed), (2, 1));

    // The goal with a metric got both values, in order, as numbers, with the bearer token.
    let reqs = asana.with_state(|s| s.requests.clone());
    let to_1201: Vec<&_> = reqs
        .iter()
        .filter(|r| r.path == "/api/1.0/goals/1201/setMetricCurrentValue")
        .collect();
    assert_eq!(to_1201.len(), 2, "{reqs:?}");
    for (i, r) in to_1201.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.answered, 200);
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {ASANA_TOKEN}").as_str())
        );
        assert_eq!(
            json(&r.body),
            serde_json::json!({"data": {"current_number_value": i + 1}})
        );
    }
    assert_eq!(
        asana.with_state(|s| s.goals["1201"].clone()),
        Some(Json::from(2))
    );

    // The goal without a metric: one attempt, a message naming the goal and the fix, and no
    // retry before a day has passed (a 400 cannot succeed until the configuration changes).
    let head = &h.db.pending_outbox("goals").await.unwrap()[0];
    assert_eq!(head.key_result, "b-orders");
    let err = head.last_error.as_deref().unwrap();
    assert!(
        err.contains("goal 1202")
            && err.contains("the goal has no metric")
            && err.contains("b-orders")
            && err.contains("metric")
            && err.contains("okrsync push"),
        "{err}"
    );
    assert!(
        head.next_attempt_at - t0 >= chrono::Duration::hours(23),
        "a permanent refusal is not retried soon: {head:?}"
    );
    let before = asana.with_state(|s| s.requests.len());
    for minutes in [1, 10, 60] {
        clock.set(t0 + chrono::Duration::minutes(minutes));
        pass(&h, &clock, DeliveryMode::Due).await;
    }
    assert_eq!(asana.with_state(|s| s.requests.len()), before, "hammered");

    // `check --online` names the goal without a metric.
    let out = h.run_bin(&["check", "--online"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("sink goals (asana_goal): FAILED")
            && text.contains("goal 1202 (key result `b-orders`) has no metric"),
        "{text}"
    );

    // After the fix, `okrsync push` sends the waiting values in order.
    asana.with_state(|s| s.goals.insert("1202".into(), Some(Json::from(0))));
    let out = h.run_bin(&["push"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        asana.with_state(|s| s.goals["1202"].clone()),
        Some(Json::from(2))
    );
    assert!(h.db.pending_outbox("goals").await.unwrap().is_empty());
    assert!(!text.contains(ASANA_TOKEN));
    assert_db_free_of(&h, ASANA_TOKEN);
}

#[tokio::test]
async fn notion_pages_get_their_number_property_paced_under_the_rate_limit() {
    let notion = SimSink::notion(NOTION_TOKEN).await.unwrap();
    let ids = [
        "1429989f-e8ac-4eff-bc8f-57f56486db54",
        "2429989f-e8ac-4eff-bc8f-57f56486db54",
        "3429989f-e8ac-4eff-bc8f-57f56486db54",
    ];
    notion.with_state(|s| {
        for id in ids {
            let mut props = std::collections::BTreeMap::new();
            props.insert("Current".to_string(), ("number".to_string(), Json::Null));
            props.insert("Name".to_string(), ("title".to_string(), Json::Null));
            s.pages.insert(id.to_string(), props);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("notion-token");
    write_private(&token_file, NOTION_TOKEN);
    let mut krs = String::new();
    for k in ["a", "b", "c"] {
        krs += &key_result(&format!("{k}-orders"), "\"okr-db\"");
    }
    // Page ids as users paste them: a bare id, a hyphenated id, a page URL.
    let extra = format!(
        r#"
[[sinks]]
name = "okr-db"
kind = "notion"
api_base = "{}"
token_file = "{}"
property = "Current"
pages = {{ "a-orders" = "1429989fe8ac4effbc8f57f56486db54", "b-orders" = "{}", "c-orders" = "https://www.notion.so/acme/Q1-orders-3429989fe8ac4effbc8f57f56486db54?pvs=4" }}
{krs}"#,
        notion.url(),
        token_file.display(),
        ids[1],
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    new_checkin(&h, 1).await;
    let runs = pass(&h, &Clock::System, DeliveryMode::Now).await;
    // Three PATCHes back to back: without pacing the fake's rate limit answers 429.
    assert_eq!((runs[0].delivered, runs[0].failed), (3, 0), "{runs:?}");
    let reqs = notion.with_state(|s| s.requests.clone());
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!((r.method.as_str(), r.answered), ("PATCH", 200), "{r:?}");
        assert_eq!(
            json(&r.body),
            serde_json::json!({"properties": {"Current": {"number": 1}}})
        );
    }
    for id in ids {
        assert_eq!(
            notion.with_state(|s| s.pages[id]["Current"].1.clone()),
            Json::from(1),
            "{id}"
        );
    }

    // A property of the wrong type: a permanent, named error; check --online says why.
    notion.with_state(|s| {
        s.pages.get_mut(ids[0]).unwrap().insert(
            "Current".into(),
            ("rich_text".to_string(), Json::Array(vec![])),
        )
    });
    new_checkin(&h, 2).await;
    // Each `pass` builds its sinks afresh (as each `okrsync push` does): the fake's gap rule
    // starts over too (Notion allows such bursts on average).
    notion.with_state(|s| s.last_arrival = None);
    let t0 = (Utc::now() + chrono::Duration::minutes(1)).trunc_subsecs(0);
    let runs = pass(&h, &Clock::fixed(t0), DeliveryMode::Due).await;
    assert_eq!((runs[0].delivered, runs[0].failed), (2, 1), "{runs:?}");
    let head = &h.db.pending_outbox("okr-db").await.unwrap()[0];
    let err = head.last_error.as_deref().unwrap();
    assert!(
        err.contains(ids[0]) && err.contains("`Current`") && err.contains("Number"),
        "{err}"
    );
    assert!(head.next_attempt_at - t0 >= chrono::Duration::hours(23));
    notion.with_state(|s| s.last_arrival = None);
    let out = h.run_bin(&["check", "--online"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("sink okr-db (notion): FAILED")
            && text.contains("property `Current` is of type rich_text"),
        "{text}"
    );
    assert!(!text.contains(NOTION_TOKEN));
    assert_db_free_of(&h, NOTION_TOKEN);
}

#[tokio::test]
async fn goal_and_page_sinks_refuse_missing_targets_and_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okrsync.toml");
    let sinks = r#"
[[sinks]]
name = "goals"
kind = "asana_goal"
token = "x"
api_base = "http://asana.example.com/api/1.0"
goals = { "other" = "12a" }

[[sinks]]
name = "db"
kind = "notion"
token = "y"
pages = { "k" = "not-a-page" }

[[sinks]]
name = "goals2"
kind = "asana_goal"
token = "z"
goals = { "zzz" = "1" }
"#;
    write_private(
        &path,
        &config_text(
            "http://127.0.0.1:9",
            "",
            &format!(
                "{sinks}{}",
                key_result("k", "\"goals\", \"db\", \"goals2\"")
            ),
        ),
    );
    let err = okrsync::config::load(&path, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    for want in [
        "sinks[0].api_base",
        "plain http://",
        "sinks[0].goals.other",
        "`12a` is not an Asana goal gid",
        "sinks[1].property",
        "sinks[1].pages.k",
        "is not a Notion page id",
        "key result `k` is pushed to sink `goals2` but has no entry",
        "sinks[2].goals.zzz",
        "sinks[2].goals:",
        "no key result `zzz` lists sink `goals2`",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[tokio::test]
async fn google_sheets_cells_and_a_log_tab_as_a_service_account_with_one_token() {
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let public =
        okrsync::sources::google_auth::pem_to_der(&fixture("ga4-test-only-pub.pem")).unwrap();
    let access = "ya29.sheets-test-access-token-42";
    let sheet = SimSink::sheets(public, access, "1AbCsheetId_x", &["OKRs", "Check-ins log"])
        .await
        .unwrap();
    let token_uri = sheet.with_state(|s| s.token_uri.clone());
    let creds = serde_json::json!({
        "type": "service_account",
        "private_key_id": "test-only",
        "private_key": fixture("ga4-test-only-key.pem"),
        "client_email": "okrsync@okrsync-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("sa.json");
    write_private(&creds_path, &creds.to_string());
    let extra = format!(
        r#"
[[sinks]]
name = "sheet"
kind = "google_sheets"
credentials_file = "{}"
api_base = "{}"
spreadsheet_id = "1AbCsheetId_x"
cells = {{ "a-orders" = "OKRs!B2" }}
log_tab = "Check-ins log"
{}{}"#,
        creds_path.display(),
        sheet.url(),
        key_result("a-orders", "\"sheet\""),
        key_result("b-orders", "\"sheet\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    for n in 1..=2 {
        new_checkin(&h, n).await;
    }
    let runs = pass(&h, &Clock::System, DeliveryMode::Due).await;
    assert_eq!((runs[0].delivered, runs[0].failed), (4, 0), "{runs:?}");

    // The cell holds the latest value, as a number; the log has one row per check-in, in
    // check-in order per key result; one token served every request.
    assert_eq!(
        sheet.with_state(|s| s.cells.clone()),
        [("OKRs!B2".to_string(), Json::from(2))].into()
    );
    let rows = sheet.with_state(|s| s.appended.clone());
    let got: Vec<(String, Json, Json)> = rows
        .iter()
        .map(|(tab, r)| (tab.clone(), r[1].clone(), r[2].clone()))
        .collect();
    let row = |kr: &str, v: u64| ("Check-ins log".to_string(), Json::from(kr), Json::from(v));
    assert_eq!(
        got,
        vec![
            row("a-orders", 1),
            row("a-orders", 2),
            row("b-orders", 1),
            row("b-orders", 2)
        ]
    );
    assert!(rows.iter().all(|(_, r)| r.len() == 5 && r[0].is_string()));
    assert_eq!(sheet.with_state(|s| s.tokens_issued), 1, "token cached");
    let reqs = sheet.with_state(|s| s.requests.clone());
    assert!(
        reqs.iter()
            .filter(|r| r.path != "/token")
            .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {access}"))),
        "{reqs:?}"
    );

    // check --online reads the spreadsheet and its tabs; a missing tab is named.
    let out = h.run_bin(&["check", "--online"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("sink sheet (google_sheets): OK"), "{text}");
    sheet.with_state(|s| s.tabs.retain(|t| t != "OKRs"));
    let out = h.run_bin(&["check", "--online"]).await;
    let text2 = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text2.contains("sink sheet (google_sheets): FAILED") && text2.contains("no tab `OKRs`"),
        "{text2}"
    );
    for t in [&text, &text2] {
        assert!(
            !t.contains(access) && !t.contains("BEGIN PRIVATE KEY"),
            "{t}"
        );
    }
    assert_db_free_of(&h, access);
}

/// The digests a webhook receiver accepted, in arrival order.
fn digests(hook: &SimSink) -> Vec<Json> {
    hook.with_state(|s| {
        s.accepted()
            .iter()
            .map(|r| json(&r.body))
            .filter(|b| b["type"] == "digest")
            .collect()
    })
}

#[tokio::test]
async fn a_digest_reports_changes_since_the_previous_digest_to_a_webhook_and_slack() {
    let path = format!("/services/T0001/B0001/{SLACK_TOKEN}");
    let slack = SimSink::slack(&path).await.unwrap();
    let hook = SimSink::webhook(Some(HOOK_SECRET)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("slack-url");
    write_private(&url_file, &format!("{}{path}\n", slack.url()));
    let extra = format!(
        r#"
[[sinks]]
name = "team"
kind = "slack"
url_file = "{}"

{}
{}
[digest]
schedule = "0 0 8 * * Mon"
sinks = ["hook", "team"]
"#,
        url_file.display(),
        webhook_section(&hook.url(), &format!("secret = \"{HOOK_SECRET}\"")),
        key_result("orders-30d", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    // A fixed history: two check-ins (1, 2), a digest; three more (3, 4, 5), a digest.
    for n in 1..=2 {
        new_checkin(&h, n).await;
    }
    // Slack is down for the first digest: it waits in the outbox (exit 3)...
    slack.with_state(|s| s.faults.push_back(SinkFault::Status(500)));
    let out = h.run_bin(&["push", "--digest"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("digest 1 queued"), "{stdout}");
    for n in 3..=5 {
        new_checkin(&h, n).await;
    }
    // ...and arrives before the second one, once, with the same key.
    let out = h.run_bin(&["push", "--digest"]).await;
    assert!(out.status.success());
    let slack_reqs = slack.with_state(|s| s.requests.clone());
    assert_eq!(slack_reqs.len(), 3, "failed, resent, second digest");
    assert_eq!(
        slack_reqs[0].body, slack_reqs[1].body,
        "the same digest resent"
    );

    // The webhook got 5 check-ins and 2 digests, each signed (the fake verifies signatures and
    // the digest's shape before answering 2xx).
    let all = hook.with_state(|s| s.requests.clone());
    assert!(all.iter().all(|r| r.answered == 200), "{all:?}");
    assert_eq!(all.len(), 7);
    let d = digests(&hook);
    assert_eq!(d.len(), 2);
    let kr = |body: &Json| body["objectives"][0]["key_results"][0].clone();
    assert_eq!(d[0]["objectives"][0]["objective"], "Grow revenue");
    assert_eq!(
        d[0]["since"],
        Json::Null,
        "the first digest has no previous one"
    );
    assert_eq!(kr(&d[0])["value"], 2);
    assert_eq!(kr(&d[0])["change"], Json::Null);
    assert_eq!(kr(&d[1])["value"], 5);
    assert_eq!(kr(&d[1])["value_at_last_digest"], 2);
    assert_eq!(kr(&d[1])["change"], 3, "change since the first digest");
    assert_eq!(kr(&d[1])["progress_change"], 0.003);
    assert_eq!(d[1]["since"], d[0]["at"]);
    assert_eq!(d[1]["top_movers"][0]["id"], "orders-30d");
    assert_ne!(d[0]["idempotency_key"], d[1]["idempotency_key"]);
    // The header carries the document's key, as for check-ins.
    let keys: Vec<Option<String>> = hook.with_state(|s| {
        s.accepted()
            .iter()
            .filter(|r| json(&r.body)["type"] == "digest")
            .map(|r| r.idempotency_key.clone())
            .collect()
    });
    assert_eq!(keys[1].as_deref(), d[1]["idempotency_key"].as_str());

    // Slack got the two digests as messages (the key result does not push check-ins there).
    let posts: Vec<String> = slack.with_state(|s| {
        s.accepted()
            .iter()
            .map(|r| json(&r.body)["text"].as_str().unwrap().to_string())
            .collect()
    });
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[1].contains("*Grow revenue*"), "{}", posts[1]);
    assert!(
        posts[1].contains("Orders in the last 30 days: 5 (+3)"),
        "{}",
        posts[1]
    );

    // Nothing is sent twice; the digest rows hold what each reported.
    let again = h.run_bin(&["push"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 delivered"));
    assert_eq!(hook.with_state(|s| s.requests.len()), 7);
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT value FROM digest_values ORDER BY digest_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, vec!["2", "5"]);
}

#[tokio::test]
async fn krs_shows_each_sinks_last_delivery_and_pending_and_logs_records_every_delivery_run() {
    let hook = SimSink::webhook(None).await.unwrap();
    let extra = format!(
        "{}{}",
        webhook_section(&hook.url(), ""),
        key_result("orders-30d", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    // Before anything is queued: the sink is listed, nothing delivered, nothing pending.
    async fn krs(h: &Harness) -> Json {
        let o = h.run_bin(&["krs", "--format", "json"]).await;
        assert!(o.status.success());
        let v: Json = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["deliveries"].clone()
    }
    assert_eq!(
        krs(&h).await,
        serde_json::json!([{"sink": "hook", "pending": 0, "last_delivered_at": null, "last_error": null}])
    );
    for n in 1..=2 {
        new_checkin(&h, n).await;
    }
    // The receiver fails: both check-ins wait, the error is shown.
    hook.with_state(|s| s.faults.push_back(SinkFault::Status(503)));
    let out = h.run_bin(&["push"]).await;
    assert_eq!(out.status.code(), Some(3));
    let d = krs(&h).await;
    assert_eq!(d[0]["pending"], 2, "{d}");
    assert_eq!(d[0]["last_delivered_at"], Json::Null);
    assert!(d[0]["last_error"].as_str().unwrap().contains("503"), "{d}");
    let table = String::from_utf8_lossy(&h.run_bin(&["krs"]).await.stdout).to_string();
    assert!(
        table.contains("deliveries") && table.contains("hook 2 pending (failing)"),
        "{table}"
    );
    // `logs` records the failed delivery run like a failed sync, with the sink's error.
    let failed = h
        .run_bin(&["logs", "--store", "hook", "--failed", "--format", "json"])
        .await;
    let runs: Json = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["source"], "webhook");
    assert!(runs[0]["error"].as_str().unwrap().contains("503"), "{runs}");

    // Recovery: delivered, nothing pending, the last delivery shown with its age.
    let out = h.run_bin(&["push"]).await;
    assert!(out.status.success());
    let d = krs(&h).await;
    assert_eq!(d[0]["pending"], 0);
    assert_eq!(d[0]["last_error"], Json::Null);
    assert!(d[0]["last_delivered_at"].is_string(), "{d}");
    let table = String::from_utf8_lossy(&h.run_bin(&["krs"]).await.stdout).to_string();
    assert!(table.contains("hook ✓ "), "{table}");
    let all = h
        .run_bin(&["logs", "--store", "hook", "--format", "json"])
        .await;
    let runs: Json = serde_json::from_slice(&all.stdout).unwrap();
    let statuses: Vec<&Json> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, vec!["ok", "failed"], "newest first: {runs}");
    assert_eq!(
        runs[0]["upserted"], 2,
        "both check-ins counted as delivered"
    );
}

#[tokio::test]
async fn the_daemon_makes_a_digest_on_its_schedule_and_delivers_it() {
    let hook = SimSink::webhook(None).await.unwrap();
    let extra = format!(
        "{}{}\n[digest]\nschedule = \"* * * * * *\"\nsinks = [\"hook\"]\n",
        webhook_section(&hook.url(), ""),
        key_result("orders-30d", "\"hook\"")
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    new_checkin(&h, 1).await;
    let mut child = h.spawn_bin(&["run"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while digests(&hook).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no digest reached the webhook"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = terminate(&mut child).await;
    assert!(status.success(), "{status:?}");
    let d = &digests(&hook)[0];
    assert_eq!(d["objectives"][0]["key_results"][0]["id"], "orders-30d");
    assert_eq!(d["objectives"][0]["key_results"][0]["value"], 1);
}
