//! Onboarding and operations (issue 19): `demo --serve`, `init`, `connect`, the deploy files.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_okrsync"));
    c.env_remove("RUST_LOG").env_remove("OKRSYNC_CONFIG");
    c
}

/// Starts `okrsync demo --serve` in `dir` and returns it with the stdout lines read so far,
/// once it printed the line saying the simulated services are being served.
fn start_serving_demo(dir: &Path) -> (Child, Vec<String>) {
    let mut child = bin()
        .args(["demo", "--serve", "--days", "10", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        // A bound on a hung demo, not a speed assertion: the demo prints the line once its
        // first sync is done, however slow the machine.
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                let done = line.contains("press Ctrl-C to stop");
                lines.push(line);
                if done {
                    return (child, lines);
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the demo never said it serves ({e}); stdout so far:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
}

#[tokio::test]
async fn demo_serve_keeps_the_simulated_services_up_until_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let (mut child, lines) = start_serving_demo(&dir);
    let dir = std::fs::canonicalize(&dir).unwrap();
    let config = dir.join("okrsync.toml");
    let text = lines.join("\n");
    // Commands a binary user can paste, not `cargo run`.
    assert!(
        text.contains(&format!("okrsync --config {} krs", config.display())),
        "{text}"
    );
    assert!(!text.contains("cargo run"), "{text}");

    // The simulated stores, analytics site and shop still answer: a sync and an online check
    // by other processes on the demo's config both succeed.
    let sync = run_bin_with(&config, &["sync"]);
    assert!(
        sync.status.success(),
        "sync failed: {}{}",
        String::from_utf8_lossy(&sync.stdout),
        String::from_utf8_lossy(&sync.stderr)
    );
    let check = run_bin_with(&config, &["check", "--online"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "check --online failed: {out}");
    assert!(out.contains("store demo-woo: OK"), "{out}");
    assert!(out.contains("store demo-shopify: OK"), "{out}");

    let status = terminate(&mut child).await;
    assert_eq!(
        status.code(),
        Some(0),
        "demo --serve stopped by SIGTERM: {status:?}"
    );
    // The directory is kept: the config still works for the read-only commands.
    assert!(config.exists());
    let krs = run_bin_with(&config, &["krs", "--format", "json"]);
    assert!(krs.status.success());
}

#[test]
fn demo_help_does_not_offer_the_config_it_ignores() {
    let out = bin().args(["demo", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--serve"), "{help}");
    assert!(!help.contains("--config"), "{help}");
    // The global option still works on every other command, before or after its name.
    let out = bin().args(["krs", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
}
