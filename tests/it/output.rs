//! What a shop owner reads (issue 19 item 8), through the real binary: tables fitted to the
//! terminal width, a reason repeated on every row said once, thresholds as `≤`/`≥`, thousands
//! separators in tables only, the sync log in the store's zone with durations, plurals.

use std::path::Path;
use std::process::Output;

use chrono::Utc;
use okrsync_sim::NewOrder;

use crate::helpers::*;

const LONG_TITLE: &str =
    "Grow gross sales across every channel we sell through during this whole quarter";

/// Runs the binary with `COLUMNS` set (or removed, as when piped from a script).
fn run_cols(config: &Path, columns: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("COLUMNS");
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    cmd.output().unwrap()
}

async fn run_cols_async(config: &Path, columns: Option<&str>, args: &[&str]) -> Output {
    let config = config.to_path_buf();
    let columns = columns.map(str::to_string);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cols(&config, columns.as_deref(), &args)
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A token like `2,469.00`: a number with a thousands separator.
fn has_grouped_number(text: &str) -> bool {
    text.split_whitespace().any(|w| {
        let w = w.trim_start_matches(['+', '-']);
        let int = w.split('.').next().unwrap_or_default();
        let groups: Vec<&str> = int.split(',').collect();
        groups.len() > 1
            && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
            && groups[1..].iter().all(|g| g.len() == 3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_read_well_and_machine_formats_stay_plain() {
    let mut state = empty_state();
    let now = Utc::now();
    for days in [3, 5] {
        state.add_order(
            NewOrder::new(
                "completed",
                now - chrono::Duration::days(days),
                "a@example.com",
            )
            .line(11, "LAMP", "Lamp", 1, dec("1234.50")),
        );
    }
    let key_results = format!(
        r#"
[[key_results]]
id = "sales"
title = "{LONG_TITLE}"
kpi = "gross_sales"
window = "last_30_days"
baseline = 1000
target = 25000

[[key_results]]
id = "refunds"
title = "Few refunds"
kpi = "refund_rate"
window = "last_30_days"
baseline = 0.05
target = 0.05
direction = "at_most"

[[key_results]]
id = "orders"
title = "Orders"
kpi = "orders"
window = "last_30_days"
baseline = 10
target = 20
"#
    );
    let h = Harness::start_with(state, "", &key_results).await;
    let cfg = h.config_path.clone();

    // Before the first sync every key result is null for the same reason: said once.
    let krs = stdout(&run_cols_async(&cfg, None, &["krs"]).await);
    assert_eq!(
        krs.matches("has not completed a first sync yet").count(),
        1,
        "{krs}"
    );
    assert_eq!(krs.matches("see note 1").count(), 3, "{krs}");
    assert!(
        krs.contains("note 1: store `main` has not completed"),
        "{krs}"
    );

    let report = h.sync().await;
    assert_eq!(report.summary.error, None);

    let headers = [
        "key result",
        "title",
        "baseline → target",
        "current",
        "status",
    ];
    // Fitted to COLUMNS: every line fits, every header kept, the title cut with "…".
    let krs = stdout(&run_cols_async(&cfg, Some("150"), &["krs"]).await);
    for line in krs.lines() {
        assert!(
            line.chars().count() <= 150,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    for header in headers {
        assert!(krs.lines().next().unwrap().contains(header), "{krs}");
    }
    assert!(
        krs.contains("Grow gross sales") && krs.contains('…'),
        "{krs}"
    );
    assert!(!krs.contains(LONG_TITLE), "{krs}");
    // Too narrow for a key result per line: a block per key result, still fitting.
    let narrow = stdout(&run_cols_async(&cfg, Some("70"), &["krs"]).await);
    for line in narrow.lines() {
        assert!(
            line.chars().count() <= 70,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    for header in headers {
        assert_eq!(narrow.matches(&format!("{header} ")).count(), 3, "{narrow}");
    }
    assert!(narrow.contains("Grow gross sales"), "{narrow}");
    // Piped without COLUMNS: nothing is cut.
    let piped = stdout(&run_cols_async(&cfg, None, &["krs"]).await);
    assert!(piped.contains(LONG_TITLE), "{piped}");
    // A threshold shows its side; money has thousands separators.
    assert!(piped.contains("≤ 5.00%"), "{piped}");
    assert!(!piped.contains("5.00% → 5.00%"), "{piped}");
    assert!(piped.contains("1,000.00 → 25,000.00"), "{piped}");
    assert!(has_grouped_number(&piped), "{piped}");

    // Thousands separators in the KPI table, plain numbers in JSON.
    let kpis = stdout(&run_cols_async(&cfg, None, &["kpis"]).await);
    assert!(has_grouped_number(&kpis), "{kpis}");
    let json = stdout(&run_cols_async(&cfg, None, &["kpis", "--format", "json"]).await);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let gross = v["kpis"]["gross_sales"].as_str().unwrap();
    assert!(
        gross.parse::<f64>().unwrap() >= 1000.0 && !gross.contains(','),
        "{json}"
    );
    let json = stdout(&run_cols_async(&cfg, None, &["krs", "--format", "json"]).await);
    assert!(
        !json.contains("25,000") && !json.contains("1,000"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_log_in_the_store_zone_with_durations() {
    // The simulated store is in Europe/Paris.
    let h = Harness::start(empty_state()).await;
    let cfg = h.config_path.clone();

    let zero = run_cols_async(&cfg, None, &["logs", "--limit", "0"]).await;
    assert_eq!(zero.status.code(), Some(2));
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("--limit"), "{err}");
    assert!(!String::from_utf8_lossy(&zero.stdout).contains("no runs yet"));

    h.sync().await;
    let json = stdout(&run_cols_async(&cfg, None, &["logs", "--format", "json"]).await);
    let runs: serde_json::Value = serde_json::from_str(&json).unwrap();
    let run = &runs[0];
    let parse = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    let (started, finished) = (parse("started_at"), parse("finished_at"));
    let paris = started.with_timezone(&chrono_tz::Europe::Paris);
    let secs = (finished - started).num_seconds();
    let took = if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    };

    let table = stdout(&run_cols_async(&cfg, None, &["logs"]).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("started (Europe/Paris)"), "{table}");
    assert!(lines[0].contains("took"), "{table}");
    let row = lines[2];
    assert!(
        row.contains(&paris.format("%Y-%m-%d %H:%M:%S").to_string()),
        "{paris} in {table}"
    );
    assert!(
        row.split_whitespace().any(|w| w == took),
        "{took} in {table}"
    );
    // The JSON keeps UTC.
    assert!(run["started_at"].as_str().unwrap().ends_with('Z'), "{json}");
}
