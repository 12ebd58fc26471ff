//! `okrsync history`: a key result's check-ins read back through the real binary.

use crate::cli::KR;
use crate::helpers::*;
use crate::woo_kpis::fixture;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn history_lists_checkins_oldest_first_in_json_csv_and_table() {
    let h = Harness::start_with(fixture().state, "", KR).await;
    ok(&h.run_bin(&["sync"]).await);
    // A new order in the window: a second check-in with the new value.
    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            okrsync_sim::NewOrder::new("completed", at(2026, 10, 22, 9, 0), "new@example.com")
                .line(11, "MUG", "Mug", 1, dec("10.00")),
        );
    });
    ok(&h.run_bin(&["sync"]).await);

    let json: serde_json::Value = serde_json::from_str(&ok(&h
        .run_bin(&["history", "net-sales", "--format", "json"])
        .await))
    .unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{json}");
    // Money as in `krs` JSON: a decimal string with 2 decimals, oldest first.
    assert_eq!(arr[0]["value"], serde_json::json!("135.00"));
    assert_eq!(arr[1]["value"], serde_json::json!("145.00"));
    assert_eq!(arr[0]["progress"], serde_json::json!(0.27));
    assert_eq!(arr[1]["progress"], serde_json::json!(0.29));
    assert_eq!(arr[1]["status"], "off_track");
    assert!(arr[0]["at"].as_str().unwrap() <= arr[1]["at"].as_str().unwrap());
    let keys: Vec<&String> = arr[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");

    // The latest check-in's value is what `krs` reports now.
    let krs: serde_json::Value =
        serde_json::from_str(&ok(&h.run_bin(&["krs", "--format", "json"]).await)).unwrap();
    let net = krs
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "net-sales")
        .unwrap();
    assert_eq!(net["current"], arr[1]["value"]);

    // Rates are numbers, as in `krs`.
    let rate: serde_json::Value = serde_json::from_str(&ok(&h
        .run_bin(&["history", "repeat-rate", "--format", "json"])
        .await))
    .unwrap();
    assert!(rate[0]["value"].is_number(), "{rate}");

    let csv = ok(&h
        .run_bin(&["history", "net-sales", "--format", "csv"])
        .await);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "at,value,progress,status,window_from,window_to");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains(",135.00,0.27,off_track,2026-10-01,2026-10-25"),
        "{csv}"
    );
    assert!(lines[2].contains(",145.00,0.29,"), "{csv}");

    let table = ok(&h.run_bin(&["history", "net-sales"]).await);
    let first = table.find("135.00").expect("first value in the table");
    let second = table.find("145.00").expect("second value in the table");
    assert!(first < second, "oldest first:\n{table}");

    // --since after every check-in: nothing.
    let later: serde_json::Value = serde_json::from_str(&ok(&h
        .run_bin(&[
            "history",
            "net-sales",
            "--since",
            "2999-01-01",
            "--format",
            "json",
        ])
        .await))
    .unwrap();
    assert_eq!(later, serde_json::json!([]));
    let all: serde_json::Value = serde_json::from_str(&ok(&h
        .run_bin(&[
            "history",
            "net-sales",
            "--since",
            "2000-01-01",
            "--format",
            "json",
        ])
        .await))
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn history_of_an_unknown_key_result_exits_2_naming_the_configured_ones() {
    let h = Harness::start_with(fixture().state, "", KR).await;
    let out = h.run_bin(&["history", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key result `nope`"), "{err}");
    assert!(err.contains("repeat-rate, net-sales"), "{err}");
    let out = h
        .run_bin(&["history", "net-sales", "--since", "yesterday"])
        .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn krs_shows_the_change_since_the_previous_checkin_and_when_the_data_was_synced() {
    let h = Harness::start_with(fixture().state, "", KR).await;
    // A first sync that lasts over a second (timestamps are to the second), so its start and
    // its end differ.
    h.sim.set_latency(std::time::Duration::from_millis(600));
    ok(&h.run_bin(&["sync"]).await);
    h.sim.set_latency(std::time::Duration::ZERO);
    let krs = |out: String| -> serde_json::Value {
        let all: serde_json::Value = serde_json::from_str(&out).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == "net-sales")
            .unwrap()
            .clone()
    };
    // One check-in: nothing to compare with.
    let first = krs(ok(&h.run_bin(&["krs", "--format", "json"]).await));
    assert_eq!(first["current"], serde_json::json!("135.00"));
    assert_eq!(first["previous_value"], serde_json::Value::Null);
    assert_eq!(first["change"], serde_json::Value::Null);
    let synced = h.db.runs(Some("main".into()), 1, false).await.unwrap();
    // The data is complete up to the start of the last successful sync, not its end: a first
    // sync leaves the changes made while it ran to the next run.
    assert_eq!(
        first["data_as_of"].as_str(),
        Some(synced[0].started_at.as_str()),
        "data as of the start of the last successful sync"
    );
    assert_ne!(
        synced[0].finished_at.as_deref(),
        Some(synced[0].started_at.as_str()),
        "the run took time: start and end tell the two readings apart"
    );
    // The fields the contract already had are still there, unchanged in name.
    for key in [
        "id",
        "current",
        "progress",
        "status",
        "updated_at",
        "window_range",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }

    h.sim.with_state(|s| {
        s.now_override = None;
        s.add_order(
            okrsync_sim::NewOrder::new("completed", at(2026, 10, 22, 9, 0), "new@example.com")
                .line(11, "MUG", "Mug", 1, dec("10.00")),
        );
    });
    ok(&h.run_bin(&["sync"]).await);
    let second = krs(ok(&h.run_bin(&["krs", "--format", "json"]).await));
    assert_eq!(second["current"], serde_json::json!("145.00"));
    assert_eq!(second["previous_value"], serde_json::json!("135.00"));
    assert_eq!(second["change"], serde_json::json!("10.00"));

    let table = ok(&h.run_bin(&["krs"]).await);
    assert!(table.contains("change"), "{table}");
    assert!(table.contains("data as of"), "{table}");
    let row = table.lines().find(|l| l.starts_with("net-sales")).unwrap();
    assert!(row.contains("+10.00"), "{table}");
    let day = &second["data_as_of"].as_str().unwrap()[..10];
    assert!(row.contains(day), "{table}");
}
