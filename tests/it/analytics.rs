//! Analytics sources against their fakes over real HTTP: Plausible, GA4 (JWT verified with
//! the public key), Matomo (errors in HTTP 200), PageSpeed; conversion rate by local day;
//! null KPIs with reasons; secrets kept out of logs, errors and the database.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use okrsync::config::StoreSelector;
use okrsync::daemon::analytics::sync_analytics;
use okrsync::daemon::keyresults::{self, Loaded};
use okrsync::daemon::sync::SyncJob;
use okrsync::daemon::{Clock, Shutdown};
use okrsync::kpi::{Computed, KpiId, Value, WindowSpec};
use okrsync::sources::QuietProgress;
use okrsync_sim::NewOrder;
use okrsync_sim::sim_analytics::{SimAnalytics, SimAnalyticsState, SimDay, SimFault};

use crate::helpers::*;

const PLAUSIBLE_KEY: &str = "plausible-secret-key-9876";
const MATOMO_TOKEN: &str = "matomo-token-abcdef123456";

fn paris_today() -> NaiveDate {
    okrsync::domain::StoreTz::parse("Europe/Paris")
        .unwrap()
        .local_date(Utc::now())
}

fn day(n: i64) -> NaiveDate {
    paris_today() - Duration::days(n)
}

/// `h:m` Paris time on local day `d`, as a UTC instant (00:30 Paris is the previous UTC
/// day: such orders prove days are aligned in the store's time zone).
fn paris(d: NaiveDate, h: u32, m: u32) -> chrono::DateTime<Utc> {
    chrono_tz::Europe::Paris
        .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

async fn kpi(h: &Harness, id: KpiId, window: &str) -> Computed {
    let loaded = Loaded::load(&h.settings, &h.db, false).await.unwrap();
    let window: WindowSpec = window.parse().unwrap();
    let report = keyresults::kpi_report(
        &loaded,
        &StoreSelector::Named("main".into()),
        &window,
        Utc::now(),
    )
    .unwrap();
    report
        .values
        .into_iter()
        .find(|(k, _)| *k == id)
        .unwrap()
        .1
        .unwrap()
}

async fn sync_all(h: &Harness) -> Vec<String> {
    h.sync().await;
    let mut out = Vec::new();
    for a in &h.settings.analytics {
        let r = sync_analytics(
            a,
            &h.settings,
            &h.db,
            &Clock::System,
            &Shutdown::never(),
            false,
        )
        .await
        .unwrap();
        out.push(format!(
            "{}:{}",
            r.status,
            r.summary.error.unwrap_or_default()
        ));
    }
    out
}

/// Like the daemon: one job per analytics source, its source (and so its token) kept between
/// runs.
async fn sync_jobs(h: &Harness, jobs: &[SyncJob]) -> Vec<String> {
    h.sync().await;
    let mut out = Vec::new();
    for job in jobs.iter().filter(|j| matches!(j, SyncJob::Analytics(..))) {
        let r = job
            .sync(
                &h.settings,
                &h.db,
                &Clock::System,
                &Shutdown::never(),
                &QuietProgress,
                false,
            )
            .await
            .unwrap();
        out.push(format!(
            "{}:{}",
            r.status,
            r.summary.error.unwrap_or_default()
        ));
    }
    out
}

fn traffic(days: &[(i64, u64, u64)]) -> SimAnalyticsState {
    let mut st = SimAnalyticsState {
        api_key: PLAUSIBLE_KEY.into(),
        ga4_time_zone: "Europe/Paris".into(),
        ..Default::default()
    };
    for (n, sessions, bounces) in days {
        st.days.insert(
            day(*n),
            SimDay {
                sessions: *sessions,
                visitors: sessions / 2,
                bounces: *bounces,
            },
        );
    }
    st
}

fn window(from: i64, to: i64) -> String {
    format!("{}..{}", day(from), day(to))
}

#[tokio::test]
async fn plausible_conversion_rate_joins_orders_and_sessions_by_local_day() {
    // Sessions on days 10, 9 and 7; day 8 has no visits (absent from Plausible's answer).
    let fake = SimAnalytics::start(traffic(&[(10, 200, 50), (9, 300, 150), (7, 500, 100)]))
        .await
        .unwrap();
    let mut state = empty_state();
    // In the window: 23:30 Paris on day 10, 00:30 Paris on day 9 (UTC: day 10's evening),
    // noon on day 8. Outside: 23:59 Paris on day 11 and 00:10 Paris on day 6 (UTC: day 7's
    // evening, which a UTC-day join would wrongly count).
    state.add_order(NewOrder::new(
        "processing",
        paris(day(10), 23, 30),
        "a@example.com",
    ));
    state.add_order(NewOrder::new(
        "processing",
        paris(day(9), 0, 30),
        "b@example.com",
    ));
    state.add_order(NewOrder::new(
        "completed",
        paris(day(8), 12, 0),
        "c@example.com",
    ));
    state.add_order(NewOrder::new(
        "processing",
        paris(day(11), 23, 59),
        "d@example.com",
    ));
    state.add_order(NewOrder::new(
        "processing",
        paris(day(6), 0, 10),
        "e@example.com",
    ));
    let extra = format!(
        r#"[[analytics]]
name = "traffic"
provider = "plausible"
base_url = "{}"
site_id = "shop.example"
api_key = "{PLAUSIBLE_KEY}"
stores = ["main"]
max_retries = 2
retry_backoff_ms = 10
"#,
        fake.url()
    );
    let h = Harness::start_with(state, "", &extra).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    let w = window(10, 7);
    // Hand-computed: orders on local days 10, 9, 8 = 3; sessions 200 + 300 + 0 + 500 = 1000.
    assert_eq!(
        kpi(&h, KpiId::Sessions, &w).await.value,
        Some(Value::Count(1000))
    );
    assert_eq!(
        kpi(&h, KpiId::ConversionRate, &w).await.value,
        Some(Value::Rate(dec("3") / dec("1000")))
    );
    // Session-weighted bounce rate: Plausible's percentages 25 %, 50 %, 20 % → 50+150+100.
    assert_eq!(
        kpi(&h, KpiId::BounceRate, &w).await.value,
        Some(Value::Rate(dec("300") / dec("1000")))
    );
    // The missing day was stored as 0, not left unknown.
    let conn = rusqlite::Connection::open(&h.settings.database.path).unwrap();
    let zero: i64 = conn
        .query_row(
            "SELECT sessions FROM traffic_daily WHERE source = 'traffic' AND day = ?1",
            [day(8).to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(zero, 0);
    // The key travelled as a Bearer header and is nowhere in the database.
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {PLAUSIBLE_KEY}")))
    );
    let dump = std::fs::read(&h.settings.database.path).unwrap();
    assert!(!String::from_utf8_lossy(&dump).contains(PLAUSIBLE_KEY));
    fake.stop();
}

#[tokio::test]
async fn plausible_429_is_retried_and_401_fails_the_run_with_a_null_kpi_and_reason() {
    let fake = SimAnalytics::start(traffic(&[(3, 100, 10)])).await.unwrap();
    fake.inject(SimFault {
        path: "/api/v2/query".into(),
        status: 429,
        body: "{\"error\":\"Too many API requests\"}".into(),
        retry_after: Some(0),
        times: 1,
    });
    let extra = format!(
        "[[analytics]]\nname = \"traffic\"\nprovider = \"plausible\"\nbase_url = \"{}\"\nsite_id = \"s\"\napi_key = \"{PLAUSIBLE_KEY}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\n",
        fake.url()
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    let runs = h.db.runs(Some("traffic".into()), 10, false).await.unwrap();
    assert_eq!(runs[0].source, "plausible");
    assert_eq!((runs[0].requests, runs[0].retries), (2, 1));
    // From day 3, the first day with visits (earlier days are before tracking: unknown).
    assert_eq!(
        kpi(&h, KpiId::Sessions, &window(3, 1)).await.value,
        Some(Value::Count(100))
    );
    // Now the key is revoked: the run fails. The data stored before is still right, so it is
    // served with the failure as a note (never 0, never silently).
    fake.with_state(|s| s.api_key = "another-key-entirely".into());
    let out = sync_all(&h).await;
    assert!(out[0].starts_with("failed:"), "{out:?}");
    assert!(!out[0].contains(PLAUSIBLE_KEY), "{out:?}");
    assert!(
        out[0].contains(
            "check api_key (a Plausible Stats API key for this site) of analytics source `traffic`"
        ),
        "the error names what to fix: {out:?}"
    );
    let s = kpi(&h, KpiId::Sessions, &window(3, 1)).await;
    assert_eq!(
        s.value,
        Some(Value::Count(100)),
        "the stored days still count"
    );
    let note = s.reason.unwrap();
    assert!(
        note.contains("last sync of analytics source `traffic` failed")
            && note.contains("data stored before"),
        "{note}"
    );
    let c = kpi(&h, KpiId::ConversionRate, &window(3, 1)).await;
    assert!(c.value.is_some() && c.reason.unwrap().contains("failed"));
    fake.stop();
}

#[tokio::test]
async fn kpis_without_a_linked_source_are_null_with_a_reason() {
    let h = Harness::start(empty_state()).await;
    h.sync().await;
    for (id, what) in [
        (
            KpiId::ConversionRate,
            "no analytics source linked to store main",
        ),
        (
            KpiId::BounceRate,
            "no analytics source linked to store main",
        ),
        (
            KpiId::PagespeedScore,
            "no PageSpeed source linked to store main",
        ),
        (
            KpiId::ReviewsCount,
            "no reviews source linked to store main",
        ),
        (
            KpiId::AverageRating,
            "no reviews source linked to store main",
        ),
    ] {
        let c = kpi(&h, id, "last_30_days").await;
        assert_eq!(c.value, None, "{id}");
        assert_eq!(c.reason.as_deref(), Some(what), "{id}");
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    okrsync::sources::analytics::ga4::pem_to_der(pem).unwrap()
}

#[tokio::test]
async fn ga4_exchanges_a_signed_jwt_caches_the_token_and_parses_string_values() {
    // Day 20 has no row at all (even with keepEmptyRows) and is complete → 0; day 1 has no
    // row and GA4 may still restate it → unknown (absent). Day 0 row says 0 sessions.
    let mut st = traffic(&[(21, 40, 10), (19, 60, 30), (2, 80, 20), (0, 0, 0)]);
    st.ga4_public_key = pem_der(&fixture("ga4-test-only-pub.pem"));
    st.ga4_access_token = "ya29.test-access-token-000111".into();
    let fake = SimAnalytics::start(st).await.unwrap();
    // Google's quota 429 carries no Retry-After: the run fails at once (no retries burning
    // more quota) and the next run succeeds.
    fake.inject(SimFault {
        path: "/v1beta/".into(),
        status: 429,
        body: "{\"error\":{\"code\":429,\"message\":\"Exhausted property tokens per hour\",\"status\":\"RESOURCE_EXHAUSTED\"}}".into(),
        retry_after: None,
        times: 1,
    });
    let key = fixture("ga4-test-only-key.pem");
    let creds = serde_json::json!({
        "type": "service_account",
        "project_id": "okrsync-test",
        "private_key_id": "test-only",
        "private_key": key,
        "client_email": "okrsync@okrsync-test.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", fake.url()),
    });
    let dir = tempfile::tempdir().unwrap();
    let creds_path = dir.path().join("sa.json");
    write_private(&creds_path, &creds.to_string());
    let extra = format!(
        "[[analytics]]\nname = \"ga\"\nprovider = \"ga4\"\nproperty_id = \"123456\"\ncredentials_file = \"{}\"\napi_base_url = \"{}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\n",
        creds_path.display(),
        fake.url()
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    let jobs = SyncJob::all(&h.settings);
    let out = sync_jobs(&h, &jobs).await;
    assert!(
        out[0].starts_with("failed:") && out[0].contains("quota is exhausted"),
        "{out:?}"
    );
    assert!(out[0].contains("next scheduled run"), "{out:?}");
    let reports = |f: &SimAnalytics| {
        f.requests()
            .iter()
            .filter(|r| r.path.ends_with(":runReport"))
            .count()
    };
    assert_eq!(reports(&fake), 1, "a quota 429 is not retried");
    assert_eq!(sync_jobs(&h, &jobs).await, vec!["ok:".to_string()]);
    let traffic = h.db.load_traffic("ga").await.unwrap();
    assert_eq!(traffic[&day(21)].sessions, 40);
    assert_eq!(traffic[&day(21)].bounces, Some(10));
    assert_eq!(
        traffic[&day(20)].sessions,
        0,
        "complete day without a row is 0"
    );
    assert!(
        !traffic.contains_key(&day(1)),
        "a restatable day without a row stays unknown"
    );
    assert_eq!(traffic[&day(0)].sessions, 0);
    // A second run of the same job reuses its token: one token exchange in all.
    sync_jobs(&h, &jobs).await;
    let tokens = || {
        fake.requests()
            .iter()
            .filter(|r| r.path == "/token")
            .count()
    };
    assert_eq!(tokens(), 1);
    // The token belongs to that source, not to the process: a one-off sync exchanges its own.
    sync_all(&h).await;
    assert_eq!(tokens(), 2);
    let reports: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(":runReport"))
        .collect();
    assert!(
        reports
            .iter()
            .all(|r| r.body.contains("\"keepEmptyRows\":true"))
    );
    assert_eq!(
        kpi(&h, KpiId::BounceRate, &window(21, 19)).await.value,
        Some(Value::Rate(dec("40") / dec("100")))
    );
    // The private key never reaches the database or the sync log.
    let db =
        String::from_utf8_lossy(&std::fs::read(&h.settings.database.path).unwrap()).to_string();
    let body_line = key.lines().nth(1).unwrap();
    assert!(!db.contains(body_line));
    fake.stop();
}

#[tokio::test]
async fn ga4_with_a_key_the_fake_does_not_trust_fails_with_an_auth_error() {
    let mut st = traffic(&[(2, 10, 1)]);
    // The fake trusts a different public key: the signature must not verify.
    st.ga4_public_key = vec![0x30, 0x03, 0x02, 0x01, 0x01];
    st.ga4_access_token = "ya29.unused".into();
    let fake = SimAnalytics::start(st).await.unwrap();
    let creds = serde_json::json!({
        "type": "service_account",
        "private_key": fixture("ga4-test-only-key.pem"),
        "client_email": "x@y.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", fake.url()),
    });
    let extra = format!(
        "[[analytics]]\nname = \"ga\"\nprovider = \"ga4\"\nproperty_id = \"1\"\ncredentials_env = \"GA_CREDS\"\napi_base_url = \"{}\"\nstores = [\"main\"]\n",
        fake.url()
    );
    let env = std::collections::HashMap::from([("GA_CREDS".to_string(), creds.to_string())]);
    let h = Harness::start_with(empty_state(), "", "").await;
    // The store's first sync tells its time zone (otherwise the run waits for it).
    h.sync().await;
    let text = config_text(&h.sim.url(), "", &extra);
    let settings = okrsync::config::load_from_str(&text, h._dir.path(), None, &env).unwrap();
    let r = sync_analytics(
        &settings.analytics[0],
        &settings,
        &h.db,
        &Clock::System,
        &Shutdown::never(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status, "failed");
    let e = r.summary.error.unwrap();
    assert!(e.contains("Invalid JWT Signature"), "{e}");
    assert!(e.contains("service-account key was refused"), "{e}");
    // Never a successful run: the session KPIs are null with the failure as the reason.
    let loaded = Loaded::load(&settings, &h.db, false).await.unwrap();
    let report = keyresults::kpi_report(
        &loaded,
        &StoreSelector::Named("main".into()),
        &"last_7_days".parse().unwrap(),
        Utc::now(),
    )
    .unwrap();
    let (_, sessions) = report
        .values
        .iter()
        .find(|(k, _)| *k == KpiId::Sessions)
        .unwrap();
    let sessions = sessions.as_ref().unwrap();
    assert_eq!(sessions.value, None);
    assert!(
        sessions
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("last sync of analytics source `ga` failed"),
        "{:?}",
        sessions.reason
    );
    fake.stop();
}

#[tokio::test]
async fn matomo_token_goes_in_the_body_and_errors_in_http_200_are_detected() {
    let mut st = traffic(&[(5, 70, 7), (3, 30, 3)]);
    st.api_key = MATOMO_TOKEN.into();
    let fake = SimAnalytics::start(st).await.unwrap();
    let extra = format!(
        "[[analytics]]\nname = \"mat\"\nprovider = \"matomo\"\nbase_url = \"{}\"\nsite_id = \"1\"\ntoken = \"{MATOMO_TOKEN}\"\nstores = [\"main\"]\n",
        fake.url()
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.query.contains("token_auth") && r.body.contains("token_auth="))
    );
    let t = h.db.load_traffic("mat").await.unwrap();
    assert_eq!((t[&day(5)].sessions, t[&day(5)].bounces), (70, Some(7)));
    assert_eq!(t[&day(4)].sessions, 0, "Matomo's [] day is 0");
    assert_eq!(
        kpi(&h, KpiId::Sessions, &window(5, 3)).await.value,
        Some(Value::Count(100))
    );
    // A revoked token: HTTP 200 with result=error → a failed run naming the access problem.
    fake.with_state(|s| s.api_key = "revoked-token-xyz-0000".into());
    let out = sync_all(&h).await;
    assert!(
        out[0].starts_with("failed:") && out[0].contains("view"),
        "{out:?}"
    );
    assert!(!out[0].contains(MATOMO_TOKEN));
    fake.stop();
}

#[tokio::test]
async fn pagespeed_stores_score_and_lcp_for_each_url_and_strategy() {
    let mut st = traffic(&[]);
    st.api_key = "psi-key-000111222".into();
    st.pagespeed_score = "0.87".into();
    st.pagespeed_lcp_ms = 2450.0;
    let fake = SimAnalytics::start(st).await.unwrap();
    let extra = format!(
        "[[analytics]]\nname = \"psi\"\nprovider = \"pagespeed\"\nurls = [\"https://shop.example/\", \"https://shop.example/p/mug\"]\nstrategy = [\"mobile\", \"desktop\"]\napi_key = \"psi-key-000111222\"\napi_base_url = \"{}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\n",
        fake.url()
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    assert_eq!(h.db.load_pagespeed("psi").await.unwrap().len(), 4);
    assert!(fake.requests().iter().all(|r| !r.query.contains("psi-key")));
    assert_eq!(
        kpi(&h, KpiId::PagespeedScore, "year_to_date").await.value,
        Some(Value::Number(dec("87")))
    );
    assert_eq!(
        kpi(&h, KpiId::LcpSeconds, "year_to_date").await.value,
        Some(Value::Number(dec("2.45")))
    );
    // One page fails in Lighthouse: the others are still measured and stored; the run is
    // `partial` and names the page.
    fake.with_state(|s| {
        s.pagespeed_fail_url = Some("https://shop.example/p/mug".into());
        s.pagespeed_score = "0.91".into();
    });
    let out = sync_all(&h).await;
    assert!(
        out[0].starts_with("partial:") && out[0].contains("https://shop.example/p/mug (mobile)"),
        "{out:?}"
    );
    let samples = h.db.load_pagespeed("psi").await.unwrap();
    let home = samples
        .iter()
        .find(|s| s.url == "https://shop.example/" && s.strategy == "mobile")
        .unwrap();
    assert_eq!(
        home.score,
        dec("91"),
        "the page that worked was measured again"
    );
    fake.stop();
}

#[tokio::test]
async fn woocommerce_reviews_count_approved_verified_and_average_rating_in_the_window() {
    // In the window (last 7 days): approved 5★ verified, approved 4★ verified, approved 2★
    // unverified on product 12, a held 1★ (not approved: never counted). Before the window: an
    // approved 1★. reviews_count = 3, verified = 2, average = (5 + 4 + 2) / 3 = 3.67;
    // for product 12 only: 1 review, average 2.
    let mut state = empty_state();
    state.add_review(11, paris(day(2), 10, 0), 5, true, "approved");
    state.add_review(11, paris(day(3), 10, 0), 4, true, "approved");
    state.add_review(12, paris(day(4), 10, 0), 2, false, "approved");
    state.add_review(11, paris(day(2), 11, 0), 1, true, "hold");
    state.add_review(11, paris(day(30), 10, 0), 1, true, "approved");
    let extra = r#"
[[analytics]]
name = "reviews"
provider = "woocommerce_reviews"
stores = ["main"]
"#;
    let h = Harness::start_with(state, "", extra).await;
    let runs = sync_all(&h).await;
    assert_eq!(runs, vec!["ok:".to_string()], "{runs:?}");
    assert_eq!(
        kpi(&h, KpiId::ReviewsCount, "last_7_days").await.value,
        Some(Value::Count(3))
    );
    assert_eq!(
        kpi(&h, KpiId::VerifiedReviewsCount, "last_7_days")
            .await
            .value,
        Some(Value::Count(2))
    );
    let avg = kpi(&h, KpiId::AverageRating, "last_7_days")
        .await
        .value
        .unwrap();
    assert_eq!(avg.display(), "3.67");
    // Per product, through the KPI parameter.
    let loaded = Loaded::load(&h.settings, &h.db, false).await.unwrap();
    let spec = okrsync::kpi::KpiSpec {
        id: KpiId::AverageRating,
        product: Some("12".into()),
    };
    let v = keyresults::compute_one(
        &loaded,
        &StoreSelector::Named("main".into()),
        &"last_7_days".parse().unwrap(),
        Utc::now(),
        &spec,
    )
    .unwrap();
    assert_eq!(v.value.map(|v| v.display()), Some("2.00".to_string()));
    // The listing asked only for approved reviews, authenticated like the store.
    let req = h
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/products/reviews"))
        .unwrap();
    assert!(
        req.query
            .iter()
            .any(|(k, v)| k == "status" && v == "approved")
    );
    assert_eq!(req.status, 200);
}

#[test]
fn analytics_config_problems_are_named_by_key() {
    let text = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[analytics]]
name = "traffic"
provider = "plausible"
stores = ["main", "nowhere"]
schedule = "hourly"

[[analytics]]
name = "ga"
provider = "ga4"
property_id = "properties/abc"
stores = ["main"]

[[analytics]]
name = "main"
provider = "tealium"
stores = ["main"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let err =
        okrsync::config::load_from_str(text, dir.path(), None, &std::collections::HashMap::new())
            .unwrap_err()
            .to_string();
    for needle in [
        "analytics[0].stores",
        "nowhere",
        "analytics[0].schedule",
        "analytics[0].site_id",
        "analytics[0].api_key",
        "analytics[1].property_id",
        "analytics[1].credentials",
        "analytics[2].provider",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
}

fn plausible_extra(url: &str, more: &str) -> String {
    format!(
        "[[analytics]]\nname = \"traffic\"\nprovider = \"plausible\"\nbase_url = \"{url}\"\nsite_id = \"s\"\napi_key = \"{PLAUSIBLE_KEY}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\n{more}\n"
    )
}

#[tokio::test]
async fn days_before_tracking_stay_unknown_and_make_session_kpis_null() {
    // Tracking started on day 5: Plausible reports nothing before it. Later zero days (4, 3)
    // are genuine zeros.
    let fake = SimAnalytics::start(traffic(&[(5, 100, 10), (2, 50, 5)]))
        .await
        .unwrap();
    let mut state = empty_state();
    state.add_order(NewOrder::new(
        "processing",
        paris(day(10), 12, 0),
        "a@example.com",
    ));
    state.add_order(NewOrder::new(
        "processing",
        paris(day(5), 12, 0),
        "b@example.com",
    ));
    let h = Harness::start_with(state, "", &plausible_extra(&fake.url(), "")).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    let t = h.db.load_traffic("traffic").await.unwrap();
    assert!(!t.contains_key(&day(6)), "a day before tracking is unknown");
    assert_eq!(t.keys().next(), Some(&day(5)));
    assert_eq!(t[&day(4)].sessions, 0, "a zero day after tracking started");
    // A window reaching back before tracking: null with the unknown span, never 0 sessions.
    let w = window(10, 2);
    let want = format!("sessions unknown for store main on {}..{}", day(10), day(6));
    for id in [
        KpiId::Sessions,
        KpiId::ConversionRate,
        KpiId::RevenuePerSession,
        KpiId::BounceRate,
    ] {
        let c = kpi(&h, id, &w).await;
        assert_eq!(c.value, None, "{id}");
        assert!(
            c.reason.as_deref().unwrap().starts_with(&want),
            "{id}: {c:?}"
        );
    }
    // From the first tracked day on: 150 sessions, 1 order.
    assert_eq!(
        kpi(&h, KpiId::ConversionRate, &window(5, 2)).await.value,
        Some(Value::Rate(dec("1") / dec("150")))
    );
    // A second, incremental sync keeps what is stored (no re-dropping of zero days).
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    let t = h.db.load_traffic("traffic").await.unwrap();
    assert_eq!(t[&day(4)].sessions, 0);
    // The kpis JSON puts the reason of a null value in null_reasons.
    let loaded = Loaded::load(&h.settings, &h.db, false).await.unwrap();
    let report = keyresults::kpi_report(
        &loaded,
        &StoreSelector::Named("main".into()),
        &w.parse().unwrap(),
        Utc::now(),
    )
    .unwrap()
    .to_json();
    assert!(
        report["null_reasons"]["sessions"]
            .as_str()
            .unwrap()
            .starts_with(&want)
    );
    assert!(
        report["notes"]
            .as_object()
            .unwrap()
            .get("sessions")
            .is_none()
    );
    fake.stop();
}

#[tokio::test]
async fn sessions_known_only_through_a_day_give_a_value_with_a_note() {
    // GA4 leaves out yesterday (no row, may still be restated): it stays unknown, and a
    // window ending yesterday is computed through the day before, with a note.
    let mut st = traffic(&[(3, 100, 20), (2, 80, 20)]);
    st.ga4_public_key = pem_der(&fixture("ga4-test-only-pub.pem"));
    st.ga4_access_token = "ya29.note-test".into();
    let fake = SimAnalytics::start(st).await.unwrap();
    let creds = serde_json::json!({
        "type": "service_account",
        "private_key": fixture("ga4-test-only-key.pem"),
        "client_email": "note@x.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", fake.url()),
    });
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sa.json");
    write_private(&p, &creds.to_string());
    let mut state = empty_state();
    state.add_order(NewOrder::new(
        "processing",
        paris(day(2), 12, 0),
        "a@example.com",
    ));
    state.add_order(NewOrder::new(
        "processing",
        paris(day(1), 12, 0),
        "b@example.com",
    ));
    let extra = format!(
        "[[analytics]]\nname = \"ga\"\nprovider = \"ga4\"\nproperty_id = \"1\"\ncredentials_file = \"{}\"\napi_base_url = \"{}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\n",
        p.display(),
        fake.url()
    );
    let h = Harness::start_with(state, "", &extra).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    assert!(!h.db.load_traffic("ga").await.unwrap().contains_key(&day(1)));
    let w = window(3, 1);
    let note = format!("sessions known through {}; later days left out", day(2));
    // Days 3 and 2 only: 180 sessions, 1 order (day 1's order is left out with its day).
    let c = kpi(&h, KpiId::ConversionRate, &w).await;
    assert_eq!(c.value, Some(Value::Rate(dec("1") / dec("180"))));
    assert!(c.reason.as_deref().unwrap().starts_with(&note), "{c:?}");
    let loaded = Loaded::load(&h.settings, &h.db, false).await.unwrap();
    let report = keyresults::kpi_report(
        &loaded,
        &StoreSelector::Named("main".into()),
        &w.parse().unwrap(),
        Utc::now(),
    )
    .unwrap()
    .to_json();
    assert_eq!(report["kpis"]["sessions"], serde_json::json!(180));
    assert!(
        report["notes"]["sessions"]
            .as_str()
            .unwrap()
            .starts_with(&note)
    );
    assert!(report["null_reasons"].get("sessions").is_none());
    fake.stop();
}

#[tokio::test]
async fn analytics_waits_for_the_store_time_zone_and_the_daemon_retries_soon() {
    let fake = SimAnalytics::start(traffic(&[(3, 100, 10)])).await.unwrap();
    // A yearly schedule: only the quick retry can bring the source in during the test.
    let extra = plausible_extra(&fake.url(), "schedule = \"0 0 0 1 1 *\"");
    let h = Harness::start_with(empty_state(), "", &extra).await;
    // The store has no `timezone` and has not synced: the run is skipped, nothing fetched.
    let out = sync_all_analytics_only(&h).await;
    assert!(
        out[0].starts_with("skipped:waiting for the first sync of store `main`"),
        "{out:?}"
    );
    assert!(fake.requests().is_empty(), "no UTC-day guess was fetched");
    // The daemon's run retries shortly; the store syncs meanwhile.
    let a = h.settings.analytics[0].clone();
    let (settings, db) = (h.settings.clone(), h.db.clone());
    let task = tokio::spawn(async move {
        okrsync::daemon::scheduler::analytics_and_evaluate(
            &a,
            &settings,
            &db,
            &Clock::System,
            &Shutdown::never(),
            std::time::Duration::from_millis(200),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    h.sync().await;
    tokio::time::timeout(std::time::Duration::from_secs(20), task)
        .await
        .expect("the retry loop ends once the store is known")
        .unwrap();
    let runs = h.db.runs(Some("traffic".into()), 10, false).await.unwrap();
    assert_eq!(runs[0].status, "ok", "{runs:?}");
    assert!(runs.iter().filter(|r| r.status == "skipped").count() >= 2);
    assert_eq!(
        h.db.load_traffic("traffic").await.unwrap()[&day(3)].sessions,
        100
    );
    fake.stop();
}

async fn sync_all_analytics_only(h: &Harness) -> Vec<String> {
    let mut out = Vec::new();
    for a in &h.settings.analytics {
        let r = sync_analytics(
            a,
            &h.settings,
            &h.db,
            &Clock::System,
            &Shutdown::never(),
            false,
        )
        .await
        .unwrap();
        out.push(format!(
            "{}:{}",
            r.status,
            r.summary.error.unwrap_or_default()
        ));
    }
    out
}

#[test]
fn a_traffic_source_takes_exactly_one_store() {
    let text = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[stores]]
name = "second"
platform = "woocommerce"
url = "https://second.example"
consumer_key = "ck_y"
consumer_secret = "cs_y"

[[analytics]]
name = "traffic"
provider = "plausible"
site_id = "s"
api_key = "k-123456"
stores = ["main", "second"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let err =
        okrsync::config::load_from_str(text, dir.path(), None, &std::collections::HashMap::new())
            .unwrap_err()
            .to_string();
    assert!(err.contains("analytics[0].stores"), "{err}");
    assert!(err.contains("one [[analytics]] per store"), "{err}");
}

fn ga4_setup(fake: &SimAnalytics, dir: &std::path::Path, email: &str) -> String {
    let creds = serde_json::json!({
        "type": "service_account",
        "private_key": fixture("ga4-test-only-key.pem"),
        "client_email": email,
        "token_uri": format!("{}/token", fake.url()),
    });
    let p = dir.join("sa.json");
    write_private(&p, &creds.to_string());
    format!(
        "[[analytics]]\nname = \"ga\"\nprovider = \"ga4\"\nproperty_id = \"1\"\ncredentials_file = \"{}\"\napi_base_url = \"{}\"\nstores = [\"main\"]\nretry_backoff_ms = 10\nmax_retries = 1\n",
        p.display(),
        fake.url()
    )
}

#[tokio::test]
async fn ga4_refused_token_is_dropped_and_renewed_and_tokens_never_reach_errors() {
    let mut st = traffic(&[(3, 30, 3)]);
    st.ga4_public_key = pem_der(&fixture("ga4-test-only-pub.pem"));
    st.ga4_access_token = "ya29.first-token-aaaa".into();
    let fake = SimAnalytics::start(st).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = ga4_setup(&fake, dir.path(), "renew@x.iam.gserviceaccount.com");
    let h = Harness::start_with(empty_state(), "", &extra).await;
    let jobs = SyncJob::all(&h.settings);
    assert_eq!(sync_jobs(&h, &jobs).await, vec!["ok:".to_string()]);
    // Google revokes the cached token: runReport answers 401; okrsync drops the token,
    // exchanges a new JWT and succeeds within the same run.
    fake.with_state(|s| s.ga4_access_token = "ya29.second-token-bbbb".into());
    assert_eq!(sync_jobs(&h, &jobs).await, vec!["ok:".to_string()]);
    let reqs = fake.requests();
    assert_eq!(reqs.iter().filter(|r| r.path == "/token").count(), 2);
    let bearers: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with(":runReport"))
        .filter_map(|r| r.authorization.clone())
        .collect();
    assert_eq!(
        bearers,
        vec![
            "Bearer ya29.first-token-aaaa",
            "Bearer ya29.first-token-aaaa",
            "Bearer ya29.second-token-bbbb"
        ]
    );
    // An error body echoing the access token: the token is redacted from the run's error.
    fake.inject(SimFault {
        path: "/v1beta/".into(),
        status: 400,
        body: "{\"error\":{\"message\":\"bad request for token ya29.second-token-bbbb\"}}".into(),
        retry_after: None,
        times: 1,
    });
    let out = sync_jobs(&h, &jobs).await;
    assert!(out[0].starts_with("failed:"), "{out:?}");
    assert!(out[0].contains("[REDACTED]"), "{out:?}");
    assert!(!out[0].contains("second-token"), "{out:?}");
    fake.stop();
}

#[tokio::test]
async fn pagespeed_errors_fail_the_run_or_make_the_kpi_null_with_a_reason() {
    let mut st = traffic(&[]);
    st.api_key = "psi-key-right-0000".into();
    st.pagespeed_score = "0.5".into();
    st.pagespeed_lcp_ms = 2000.0;
    let fake = SimAnalytics::start(st).await.unwrap();
    let extra = format!(
        "[[analytics]]\nname = \"psi\"\nprovider = \"pagespeed\"\nurls = [\"https://shop.example/\"]\napi_key = \"psi-key-wrong-1111\"\napi_base_url = \"{}\"\nstores = [\"main\"]\n",
        fake.url()
    );
    let h = Harness::start_with(empty_state(), "", &extra).await;
    // A bad key: HTTP 400, a failed run saying so, the key redacted, no retries.
    let out = sync_all(&h).await;
    assert!(
        out[0].starts_with("failed:") && out[0].contains("API key not valid"),
        "{out:?}"
    );
    assert!(!out[0].contains("psi-key-wrong"), "{out:?}");
    assert_eq!(fake.requests().len(), 1);
    let c = kpi(&h, KpiId::PagespeedScore, "year_to_date").await;
    assert_eq!(c.value, None);
    assert!(
        c.reason
            .unwrap()
            .contains("last sync of analytics source `psi` failed"),
        "reason"
    );
    // Right key, but Lighthouse measured no LCP: the score is kept, LCP is null (not 0 s).
    fake.with_state(|s| {
        s.api_key = "psi-key-wrong-1111".into();
        s.pagespeed_lcp_ms = f64::NAN;
    });
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    assert_eq!(
        kpi(&h, KpiId::PagespeedScore, "year_to_date").await.value,
        Some(Value::Number(dec("50")))
    );
    let l = kpi(&h, KpiId::LcpSeconds, "year_to_date").await;
    assert_eq!(l.value, None);
    assert!(
        l.reason.unwrap().contains("no Largest Contentful Paint"),
        "reason"
    );
    // No performance score (the page failed to load): a failed run; the sample stored by the
    // earlier run is still served, with the failure as a note.
    fake.with_state(|s| s.pagespeed_score = String::new());
    let out = sync_all(&h).await;
    assert!(out[0].contains("performance.score"), "{out:?}");
    let c = kpi(&h, KpiId::PagespeedScore, "year_to_date").await;
    assert_eq!(c.value, Some(Value::Number(dec("50"))));
    assert!(c.reason.unwrap().contains("performance.score"), "note");
    fake.stop();
}

#[tokio::test]
async fn pagespeed_defaults_to_a_daily_schedule_and_two_retries() {
    let text = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[analytics]]
name = "psi"
provider = "pagespeed"
urls = ["https://shop.example/"]
stores = ["main"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let s =
        okrsync::config::load_from_str(text, dir.path(), None, &std::collections::HashMap::new())
            .unwrap();
    let a = &s.analytics[0];
    assert_eq!(a.max_retries, 2);
    let ticks: Vec<_> = a.schedule.upcoming(Utc).take(2).collect();
    assert_eq!(ticks[1] - ticks[0], Duration::days(1));
}

#[test]
fn empty_strategy_and_the_credentials_key_used_are_reported() {
    let base = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"
"#;
    for strategy in ["[]", "\"\""] {
        let text = format!(
            "{base}\n[[analytics]]\nname = \"psi\"\nprovider = \"pagespeed\"\nurls = [\"https://shop.example/\"]\nstrategy = {strategy}\nstores = [\"main\"]\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = okrsync::config::load_from_str(
            &text,
            dir.path(),
            None,
            &std::collections::HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("analytics[0].strategy"), "{strategy}: {err}");
    }
    let text = format!(
        "{base}\n[[analytics]]\nname = \"ga\"\nprovider = \"ga4\"\nproperty_id = \"1\"\ncredentials_env = \"GA_CREDS\"\nstores = [\"main\"]\n"
    );
    let env = std::collections::HashMap::from([("GA_CREDS".to_string(), "not json".to_string())]);
    let dir = tempfile::tempdir().unwrap();
    let err = okrsync::config::load_from_str(&text, dir.path(), None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("analytics[0].credentials_env"), "{err}");
    assert!(!err.contains("credentials_file"), "{err}");
}

#[tokio::test]
async fn first_fill_reads_400_days_or_back_to_the_earliest_key_result_window_in_one_request() {
    // Visits 10, 380 and 450 days ago. Without key results the first fill reads 400 days:
    // day 380 is stored (a 90-day fill missed it), day 450 is not.
    let days = [(10, 40, 4), (380, 100, 10), (450, 50, 5)];
    let fake = SimAnalytics::start(traffic(&days)).await.unwrap();
    let mut state = empty_state();
    state.add_order(NewOrder::new(
        "processing",
        paris(day(10), 12, 0),
        "a@example.com",
    ));
    let h = Harness::start_with(state.clone(), "", &plausible_extra(&fake.url(), "")).await;
    assert_eq!(sync_all(&h).await, vec!["ok:".to_string()]);
    let t = h.db.load_traffic("traffic").await.unwrap();
    assert_eq!(t.keys().next(), Some(&day(380)), "{:?}", t.keys().next());
    assert_eq!(t[&day(380)].sessions, 100);
    assert_eq!(
        fake.requests().len(),
        1,
        "one request for the whole first fill"
    );

    // A conversion-rate key result whose window starts 500 days ago: the first fill of a new
    // database reaches back to it, and a zero day after tracking began stays a real 0.
    let fake2 = SimAnalytics::start(traffic(&days)).await.unwrap();
    let kr = format!(
        "[[key_results]]\nid = \"cr\"\nkpi = \"conversion_rate\"\nstore = \"main\"\nwindow = \"{}\"\nbaseline = 0.01\ntarget = 0.02\n",
        window(500, 1)
    );
    let extra = format!("{}\n{kr}", plausible_extra(&fake2.url(), ""));
    let h2 = Harness::start_with(state, "", &extra).await;
    assert_eq!(sync_all(&h2).await, vec!["ok:".to_string()]);
    let t = h2.db.load_traffic("traffic").await.unwrap();
    assert_eq!(
        t.keys().next(),
        Some(&day(450)),
        "back to the key result's window"
    );
    assert_eq!(
        t[&day(449)].sessions,
        0,
        "after tracking began, a day without visits is 0"
    );
    assert!(!t.contains_key(&day(451)), "before tracking: unknown");
    fake.stop();
    fake2.stop();
}
