//! Shopify first sync against the simulated Admin GraphQL shop on the standard bucket
//! (2,000 points, 100 points/s restored) with 100 ms of latency per request, run through the
//! release binary (`okrsync sync`) under `/usr/bin/time -v` for its peak RSS. Then a sync
//! with nothing new, and a paged versus bulk first sync of a small shop (for
//! `bulk_threshold`). Figures go into docs/benchmarks.md. Run with
//! `cargo bench --bench shopify_first_sync`.
//!
//! `OKRSYNC_BENCH_DAYS` (default 730) and `OKRSYNC_BENCH_PER_DAY` (default 21) size the
//! history (about 15,000 orders); `OKRSYNC_BENCH_LATENCY_MS` (default 100) the latency;
//! `OKRSYNC_BENCH_SMALL_DAYS` (default 12) the small shop.

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use okrsync_sim::{ShopState, SimShopify};

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One `okrsync sync` run: wall time, peak RSS in kB (when `/usr/bin/time` is there).
struct Run {
    wall: Duration,
    rss_kb: Option<u64>,
}

fn run_binary(config: &Path, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_okrsync");
    let timed = Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.arg("-v").arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.arg("--config").arg(config).args(args);
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "okrsync {args:?} failed: {stderr}");
    let rss_kb = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok());
    Run { wall, rss_kb }
}

fn write_config(dir: &Path, url: &str, token: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("okrsync.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\npath = \"okrsync.db\"\n\n[[stores]]\nname = \"bench\"\nplatform = \"shopify\"\nshop = \"{url}\"\naccess_token = \"{token}\"\n{extra}\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Requests by GraphQL operation (downloads as `download`) since `from`.
fn by_operation(sim: &SimShopify, from: usize) -> (usize, BTreeMap<String, usize>) {
    let reqs = sim.requests();
    let mut ops = BTreeMap::new();
    for r in &reqs[from..] {
        let name = if r.operation.is_empty() {
            "download".to_string()
        } else {
            r.operation.clone()
        };
        *ops.entry(name).or_insert(0) += 1;
    }
    (reqs.len() - from, ops)
}

fn standard(mut st: ShopState, latency: Duration) -> ShopState {
    st.bucket_max = 2000.0;
    st.restore_rate = 100.0;
    st.latency = latency;
    st
}

async fn measure(
    label: &str,
    sim: &SimShopify,
    config: &Path,
    args: &'static [&'static str],
) -> Run {
    let from = sim.requests().len();
    let throttled = sim.with_state(|s| s.throttled);
    let config = config.to_path_buf();
    let run = tokio::task::spawn_blocking(move || run_binary(&config, args))
        .await
        .unwrap();
    let (n, ops) = by_operation(sim, from);
    println!(
        "{label}: {:.2} s, {n} requests {ops:?}, {} THROTTLED, peak RSS {}",
        run.wall.as_secs_f64(),
        sim.with_state(|s| s.throttled) - throttled,
        run.rss_kb
            .map_or("unknown (no /usr/bin/time)".to_string(), |k| format!(
                "{:.1} MB",
                k as f64 / 1024.0
            ))
    );
    run
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny size.
    let quick = !std::env::args().any(|a| a == "--bench");
    let days = if quick {
        3
    } else {
        env_u32("OKRSYNC_BENCH_DAYS", 730)
    };
    let per_day = env_u32("OKRSYNC_BENCH_PER_DAY", 21);
    let latency = Duration::from_millis(u64::from(if quick {
        0
    } else {
        env_u32("OKRSYNC_BENCH_LATENCY_MS", 100)
    }));
    let small_days = if quick {
        2
    } else {
        env_u32("OKRSYNC_BENCH_SMALL_DAYS", 12)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // An hour ago, so the incremental lookback (10 minutes) finds nothing changed.
        let now = chrono::Utc::now() - chrono::Duration::hours(1);
        let st = standard(ShopState::generate(44, now, days, per_day), latency);
        let token = st.access_token.clone();
        let orders = st.data.orders.len();
        let refunds = st.data.refunds.len();
        let sim = SimShopify::start(st).await.unwrap();
        println!(
            "shop: {orders} orders generated, {refunds} refunds; bucket 2,000 points, 100 points/s; latency {} ms",
            latency.as_millis()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &sim.url(), &token, "");
        measure("first sync", &sim, &config, &["sync"]).await;
        measure("sync with nothing new", &sim, &config, &["sync"]).await;
        sim.stop().await;

        // A small shop, paged and by bulk operation (for `bulk_threshold`).
        for (label, extra) in [
            ("small shop, paged first sync", "bulk_threshold = 1000000"),
            ("small shop, bulk first sync", "bulk_threshold = 1"),
        ] {
            let st = standard(ShopState::generate(45, now, small_days, per_day), latency);
            let orders = st.data.orders.len();
            let token = st.access_token.clone();
            let sim = SimShopify::start(st).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let config = write_config(dir.path(), &sim.url(), &token, extra);
            measure(&format!("{label} ({orders} orders generated)"), &sim, &config, &["sync"]).await;
            sim.stop().await;
        }
    });
}
