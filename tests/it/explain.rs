//! `okrsync explain`, `export`, `backup` and `kpis --compare` through the real binary, on the
//! fixed store of `woo_kpis` (window W = 2026-10-01..2026-10-25, Europe/Paris).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value as Json;

use crate::helpers::*;
use crate::woo_kpis::{W, fixture};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &std::process::Output) -> Json {
    serde_json::from_str(&ok(out)).unwrap()
}

fn d(v: &Json) -> Decimal {
    match v {
        Json::String(s) => Decimal::from_str(s).unwrap(),
        other => Decimal::from_str(&other.to_string()).unwrap(),
    }
}

/// The value of an explanation, recomputed from its counted entries alone and printed as
/// `kpis` prints the KPI's value (money 2 decimals, rates 4, counts whole).
fn from_listing(kpi: &str, e: &Json) -> Json {
    let counted = e["counted"].as_array().unwrap();
    let num: Decimal = counted.iter().map(|c| d(&c["numerator"])).sum();
    let den: Option<Decimal> = counted
        .iter()
        .any(|c| !c["denominator"].is_null())
        .then(|| {
            counted
                .iter()
                .filter(|c| !c["denominator"].is_null())
                .map(|c| d(&c["denominator"]))
                .sum()
        });
    let v = match den {
        Some(den) => num / den,
        None => num,
    };
    match &e["value"] {
        Json::String(_) => Json::String(format!("{:.2}", v.round_dp(2))),
        Json::Number(n) if n.is_i64() && !kpi.ends_with("_rate") => {
            Json::from(v.floor().to_string().parse::<i64>().unwrap())
        }
        _ => serde_json::from_str(&v.round_dp(4).normalize().to_string()).unwrap(),
    }
}

#[tokio::test]
async fn explain_lists_what_makes_every_kpi_and_its_totals_equal_the_value() {
    let h = Harness::start(fixture().state).await;
    ok(&h.run_bin(&["sync"]).await);
    let kpis = json(
        &h.run_bin(&[
            "kpis",
            "--window",
            W,
            "--product",
            "MUG",
            "--format",
            "json",
        ])
        .await,
    );
    let values = kpis["kpis"].as_object().unwrap();
    assert!(values.len() >= 20, "{kpis}");
    let mut defined = 0;
    for (kpi, value) in values {
        let mut args = vec!["explain", kpi.as_str(), "--window", W, "--format", "json"];
        if kpi.starts_with("product_") {
            args.extend(["--product", "MUG"]);
        }
        let e = json(&h.run_bin(&args).await);
        // The contract's shape, and the same value as `kpis`.
        assert_eq!(e["kpi"], kpi.as_str());
        assert_eq!(e["store"], "main");
        assert_eq!(e["window"]["from"], "2026-10-01", "{kpi}");
        assert_eq!(e["window"]["to"], "2026-10-25", "{kpi}");
        assert_eq!(e["window"]["timezone"], "Europe/Paris", "{kpi}");
        assert!(e["counted"].is_array() && e["excluded"].is_array(), "{e}");
        assert_eq!(&e["value"], value, "{kpi}: explain and kpis disagree");
        if value.is_null() {
            assert!(e["reason"].is_string(), "{kpi}: a null value says why: {e}");
            continue;
        }
        defined += 1;
        assert_eq!(
            from_listing(kpi, &e),
            *value,
            "{kpi}: listing totals\n{e:#}"
        );
    }
    // Every order and customer KPI of the fixture is defined (no analytics source is linked).
    assert_eq!(defined, 13, "{kpis}");
}

#[tokio::test]
async fn explain_orders_names_each_order_and_why_the_others_do_not_count() {
    let fx = fixture();
    let a = fx.a.to_string();
    let h = Harness::start(fx.state).await;
    ok(&h.run_bin(&["sync"]).await);
    let e = json(
        &h.run_bin(&["explain", "orders", "--window", W, "--format", "json"])
            .await,
    );
    let counted = e["counted"].as_array().unwrap();
    assert_eq!(counted.len() as i64, e["value"].as_i64().unwrap());
    assert_eq!(counted.len(), 6);
    let order_a = counted.iter().find(|c| c["id"] == a.as_str()).unwrap();
    assert_eq!(order_a["status"], "completed");
    assert_eq!(order_a["items_gross"], "20.00");
    assert_eq!(order_a["shipping"], "5.00");
    assert!(order_a["number"].is_string());
    assert_eq!(order_a["created_at"], "2026-10-05T10:00:00Z");
    // Refunds attributed to the order's day: C's full refund.
    let c = counted
        .iter()
        .find(|c| c["id"] == fx.c.to_string().as_str())
        .unwrap();
    assert_eq!(c["refunds"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["refunded_items"], "10.00");

    let reasons: Vec<&str> = e["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap())
        .collect();
    for want in [
        "status `cancelled` does not count", // E
        "status `pending` does not count",   // P
        "in the trash",                      // H
        // D: 2026-10-26 00:30 in Paris, still 25 October in UTC.
        "created on 2026-10-26 (Europe/Paris), outside the window 2026-10-01..2026-10-25",
    ] {
        assert!(reasons.contains(&want), "{want}: {reasons:#?}");
    }
    assert_eq!(reasons.len(), 4, "{reasons:#?}");

    // The customer KPIs list customers.
    let e = json(
        &h.run_bin(&[
            "explain",
            "new_customers",
            "--window",
            W,
            "--format",
            "json",
        ])
        .await,
    );
    assert_eq!(e["counted"].as_array().unwrap().len(), 3);
    assert!(
        e["counted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "customer" && c["orders"].is_array()),
        "{e}"
    );
    let returning: Vec<&Json> = e["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "customer")
        .collect();
    assert_eq!(returning.len(), 2, "#501 and dana: {e}");
    assert!(
        returning
            .iter()
            .any(|x| x["id"] == "customer 501"
                && x["reason"].as_str().unwrap().contains("2026-09-20")),
        "{e}"
    );
}

#[tokio::test]
async fn explain_prints_a_table_and_csv_and_refuses_bad_arguments() {
    let h = Harness::start(fixture().state).await;
    ok(&h.run_bin(&["sync"]).await);
    let table = ok(&h.run_bin(&["explain", "net_sales", "--window", W]).await);
    assert!(
        table.starts_with("net_sales · main · 2026-10-01..2026-10-25 (Europe/Paris)"),
        "{table}"
    );
    assert!(table.contains("value: 135.00"), "{table}");
    assert!(table.contains("counted (6):"), "{table}");
    assert!(table.contains("excluded (4):"), "{table}");
    assert!(
        table.contains("status `cancelled` does not count"),
        "{table}"
    );

    let csv = ok(&h
        .run_bin(&["explain", "net_sales", "--window", W, "--format", "csv"])
        .await);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("list,store,kind,id,"), "{csv}");
    assert_eq!(lines.len(), 1 + 6 + 4, "{csv}");
    assert!(lines[0].ends_with(",reason"), "{csv}");
    assert!(
        lines.iter().any(|l| l.starts_with("counted,main,order,")),
        "{csv}"
    );
    // The outside-the-window reason holds a comma: quoted.
    assert!(
        lines.iter().any(|l| l.ends_with(
            ",\"created on 2026-10-26 (Europe/Paris), outside the window 2026-10-01..2026-10-25\""
        )),
        "{csv}"
    );

    for args in [
        &["explain", "nope"][..],
        &["explain", "product_units"],
        &["explain", "orders", "--product", "MUG"],
        &["explain", "orders", "--window", "last_week"],
        &["explain", "orders", "--store", "other"],
    ] {
        let out = h.run_bin(args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn kpis_compare_adds_the_earlier_values_and_the_change_without_renaming_fields() {
    let h = Harness::start(fixture().state).await;
    ok(&h.run_bin(&["sync"]).await);
    let plain = json(
        &h.run_bin(&["kpis", "--window", W, "--format", "json"])
            .await,
    );
    let j = json(
        &h.run_bin(&[
            "kpis",
            "--window",
            W,
            "--compare",
            "previous_period",
            "--format",
            "json",
        ])
        .await,
    );
    // Every field of `kpis --format json` is there, unchanged.
    for (k, v) in plain.as_object().unwrap() {
        assert_eq!(&j[k], v, "{k}");
    }
    assert_eq!(j["compare"], "previous_period");
    // 25 days before W, in the store's time zone: L (09-10) and I (09-20); K (09-30 22:30Z)
    // is 1 October in Paris, so it belongs to W, not to the period before.
    assert_eq!(j["compare_window"]["from"], "2026-09-06");
    assert_eq!(j["compare_window"]["to"], "2026-09-30");
    assert_eq!(j["compare_window"]["timezone"], "Europe/Paris");
    assert_eq!(j["previous"]["orders"], 2);
    assert_eq!(j["change"]["orders"], 4);
    assert_eq!(j["change_relative"]["orders"], serde_json::json!(2.0));
    assert_eq!(j["previous"]["net_sales"], "20.00");
    assert_eq!(j["change"]["net_sales"], "115.00");
    assert_eq!(j["change_relative"]["net_sales"], serde_json::json!(5.75));
    // Rates change by a fraction (percentage points when printed).
    assert_eq!(j["previous"]["refund_rate"], serde_json::json!(0.0));
    assert_eq!(j["change"]["refund_rate"], serde_json::json!(0.5));
    assert_eq!(
        j["change_relative"]["refund_rate"],
        Json::Null,
        "from 0: no ratio"
    );

    let y = json(
        &h.run_bin(&[
            "kpis",
            "--window",
            W,
            "--compare",
            "previous_year",
            "--format",
            "json",
        ])
        .await,
    );
    assert_eq!(y["compare_window"]["from"], "2025-10-01");
    assert_eq!(y["compare_window"]["to"], "2025-10-25");
    assert_eq!(y["previous"]["orders"], 0);
    assert_eq!(y["change_relative"]["orders"], Json::Null);
    assert_eq!(y["previous"]["average_order_value"], Json::Null);
    assert_eq!(y["change"]["average_order_value"], Json::Null);

    let table = ok(&h
        .run_bin(&["kpis", "--window", W, "--compare", "previous_period"])
        .await);
    assert!(
        table.contains("compared with previous_period: 2026-09-06 to 2026-09-30"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("net_sales")).unwrap();
    assert!(row.contains("135.00") && row.contains("20.00"), "{table}");
    assert!(
        row.contains("+115.00") && row.contains("+575.0%"),
        "{table}"
    );
    let rate = table
        .lines()
        .find(|l| l.starts_with("refund_rate"))
        .unwrap();
    assert!(rate.contains("+50.00 pp"), "{table}");

    let out = h
        .run_bin(&["kpis", "--window", W, "--compare", "last_week"])
        .await;
    assert_eq!(out.status.code(), Some(2));
}

/// `net-sales` over W (its period is W itself) and a key result whose period has not begun.
const KRS: &str = r#"
[[key_results]]
id = "net-sales"
title = "Net sales 500"
kpi = "net_sales"
window = "2026-10-01..2026-10-25"
baseline = 0
target = 500

[[key_results]]
id = "future-orders"
title = "Orders in January 2099"
kpi = "orders"
window = "2099-01-01..2099-01-31"
baseline = 2
target = 10
"#;

#[tokio::test]
async fn krs_shows_the_change_since_the_start_of_the_period_from_a_checkin_or_the_baseline() {
    let h = Harness::start_with(fixture().state, "", KRS).await;
    ok(&h.run_bin(&["sync"]).await);
    let krs = || async {
        let all = json(&h.run_bin(&["krs", "--format", "json"]).await);
        let find = |id: &str| {
            all.as_array()
                .unwrap()
                .iter()
                .find(|k| k["id"] == id)
                .unwrap()
                .clone()
        };
        (find("net-sales"), find("future-orders"))
    };
    let (net, future) = krs().await;
    // The first check-in of the period is the one this sync made.
    assert_eq!(net["period_start"], "2026-10-01");
    assert_eq!(net["period_start_from"], "checkin");
    assert_eq!(net["period_start_value"], "135.00");
    assert_eq!(net["change_since_period_start"], "0.00");
    // No check-in since 2099-01-01: the baseline.
    assert_eq!(future["current"], 0);
    assert_eq!(future["period_start_from"], "baseline");
    assert_eq!(future["period_start_value"], 2);
    assert_eq!(future["change_since_period_start"], -2);

    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            okrsync_sim::NewOrder::new("completed", at(2026, 10, 22, 9, 0), "new@example.com")
                .line(11, "MUG", "Mug", 1, dec("10.00")),
        );
    });
    ok(&h.run_bin(&["sync"]).await);
    let (net, _) = krs().await;
    assert_eq!(net["current"], "145.00");
    assert_eq!(
        net["period_start_value"], "135.00",
        "still the first check-in"
    );
    assert_eq!(net["change_since_period_start"], "10.00");
    assert_eq!(net["change"], "10.00");
    // Earlier fields keep their names.
    for key in [
        "previous_value",
        "change",
        "data_as_of",
        "updated_at",
        "current",
    ] {
        assert!(net.get(key).is_some(), "{key}");
    }

    let table = ok(&h.run_bin(&["krs"]).await);
    assert!(table.contains("since start"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("future-orders"))
        .unwrap();
    assert!(row.contains("-2"), "{table}");
}

/// A minimal RFC 4180 reader: rows of cells (quoted cells may hold commas, quotes, breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CRLF line ends"),
            (false, '\n') => panic!("a bare LF ends a line: {text:?}"),
            (false, c) => cell.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut cell));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "last line ends with CRLF"
    );
    rows
}

#[tokio::test]
async fn export_writes_orders_checkins_and_kpis_as_csv_and_json() {
    let fx = fixture();
    let a = fx.a.to_string();
    let h = Harness::start_with(fx.state, "", crate::cli::KR).await;
    ok(&h.run_bin(&["sync"]).await);

    let orders_json = json(
        &h.run_bin(&["export", "--what", "orders", "--format", "json"])
            .await,
    );
    let orders = orders_json.as_array().unwrap();
    // Every stored order, any status: the 12 of October–September plus 5 on the DST day.
    assert_eq!(orders.len(), 17, "{orders_json:#}");
    let order_a = orders.iter().find(|o| o["id"] == a.as_str()).unwrap();
    assert_eq!(order_a["created_at"], "2026-10-05T10:00:00Z");
    assert_eq!(order_a["date"], "2026-10-05");
    assert_eq!(order_a["items_gross"], "20.00");
    assert_eq!(order_a["counted"], true);
    assert!(order_a.get("email_hash").is_none() && order_a.get("customer").is_none());
    // D, 00:30 on 26 October in Paris: its local date, not the UTC one.
    let d = orders
        .iter()
        .find(|o| o["created_at"] == "2026-10-25T23:30:00Z")
        .unwrap();
    assert_eq!(d["date"], "2026-10-26");
    assert!(
        orders
            .iter()
            .any(|o| o["status"] == "cancelled" && o["counted"] == false)
    );

    // CSV: the same rows and cells.
    let csv = ok(&h.run_bin(&["export", "--what", "orders"]).await);
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), 1 + orders.len());
    let header = &rows[0];
    assert_eq!(&header[..4], ["store", "id", "number", "created_at"]);
    for (row, o) in rows[1..].iter().zip(orders) {
        for (col, cell) in header.iter().zip(row) {
            let want = match &o[col] {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(cell, &want, "{col}");
        }
    }

    let checkins = json(
        &h.run_bin(&["export", "--what", "checkins", "--format", "json"])
            .await,
    );
    let checkins = checkins.as_array().unwrap();
    assert_eq!(checkins.len(), 2, "one per key result");
    let net = checkins
        .iter()
        .find(|c| c["key_result"] == "net-sales")
        .unwrap();
    assert_eq!(net["value"], "135.00");
    assert_eq!(net["window_from"], "2026-10-01");
    assert!(net["at"].as_str().unwrap().ends_with('Z'));

    // KPIs over a window; notes with commas are quoted in CSV.
    let kpis = ok(&h
        .run_bin(&["export", "--what", "kpis", "--window", W])
        .await);
    let rows = parse_csv(&kpis);
    assert_eq!(
        rows[0],
        [
            "store", "window", "from", "to", "timezone", "kpi", "value", "currency", "note"
        ]
    );
    let net = rows.iter().find(|r| r[5] == "net_sales").unwrap();
    assert_eq!(net[6], "135.00");
    assert_eq!(net[2], "2026-10-01");

    // --out: the file holds exactly what stdout would; nothing else is left in the directory.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("orders.csv");
    std::fs::write(&out, "old").unwrap();
    ok(&h
        .run_bin(&["export", "--what", "orders", "--out", out.to_str().unwrap()])
        .await);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["orders.csv"]);

    let bad = h.run_bin(&["export", "--what", "customers"]).await;
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn backup_copies_a_consistent_database_while_another_connection_writes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let h = Harness::start_with(fixture().state, "", crate::cli::KR).await;
    ok(&h.run_bin(&["sync"]).await);
    let src = h.settings.database.path.clone();
    let count = |path: &std::path::Path, table: &str| -> i64 {
        let c = rusqlite::Connection::open(path).unwrap();
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let tables = [
        "orders",
        "order_lines",
        "refunds",
        "checkins",
        "stores",
        "meta",
    ];
    let before: Vec<i64> = tables.iter().map(|t| count(&src, t)).collect();
    assert!(before[0] > 0);
    let runs_before = count(&src, "sync_runs");

    // Another connection (as the daemon's) commits rows continuously during the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, src) = (stop.clone(), written.clone(), src.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&src).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            while !stop.load(Ordering::SeqCst) || written.load(Ordering::SeqCst) == 0 {
                c.execute(
                    "INSERT INTO sync_runs (store, source, started_at, heartbeat_at, status)
                     VALUES ('main', 'writer', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'skipped')",
                    [],
                )
                .unwrap();
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let out = h.run_bin(&["backup", copy.to_str().unwrap()]).await;
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    ok(&out);

    // One consistent state: every table as it was, the written one somewhere in between.
    let c = rusqlite::Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(c);
    let after: Vec<i64> = tables.iter().map(|t| count(&copy, t)).collect();
    assert_eq!(after, before, "{tables:?}");
    let runs = count(&copy, "sync_runs");
    let total = runs_before + written.load(Ordering::SeqCst) as i64;
    assert!(
        runs_before <= runs && runs <= total,
        "{runs_before} ≤ {runs} ≤ {total}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Self-contained: no WAL beside it, nothing left over.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["copy.db"], "{names:?}");

    // An existing file is not replaced unless asked.
    let again = h.run_bin(&["backup", copy.to_str().unwrap()]).await;
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--force"), "{err}");
    ok(&h
        .run_bin(&["backup", copy.to_str().unwrap(), "--force"])
        .await);
    assert_eq!(count(&copy, "orders"), before[0]);
}
