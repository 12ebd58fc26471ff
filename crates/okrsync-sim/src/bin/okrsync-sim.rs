//! `okrsync-sim`: serves a simulated store on 127.0.0.1 until Ctrl-C, for benchmarks and
//! for trying clients (okrsync or others) against the same data.
//!
//! ```text
//! okrsync-sim woocommerce [--days N] [--per-day N] [--latency-ms N] [--tls-cert PEM --tls-key PEM]
//! ```
//!
//! Prints one JSON line on stdout (`url`, credentials, order count), then serves; on Ctrl-C
//! (SIGINT) or SIGTERM prints `requests: N` (answered requests) on stderr and exits.

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: okrsync-sim woocommerce [--days N] [--per-day N] [--latency-ms N] [--tls-cert PEM --tls-key PEM]"
    );
    std::process::exit(2)
}

struct Args {
    days: u32,
    per_day: u32,
    latency_ms: u64,
    tls: Option<(String, String)>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Args {
    if it.next().as_deref() != Some("woocommerce") {
        usage();
    }
    let mut a = Args {
        days: 730,
        per_day: 24,
        latency_ms: 0,
        tls: None,
    };
    let (mut cert, mut key) = (None, None);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let num = || value.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--days" => a.days = num() as u32,
            "--per-day" => a.per_day = num() as u32,
            "--latency-ms" => a.latency_ms = num(),
            "--tls-cert" => cert = Some(value),
            "--tls-key" => key = Some(value),
            _ => usage(),
        }
    }
    a.tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => usage(),
    };
    a
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = parse(std::env::args().skip(1));
    let now = chrono::Utc::now();
    let mut state = okrsync_sim::SimState::generate(42, now, args.days, args.per_day);
    state.https = args.tls.is_some();
    let (key, secret, orders) = (
        state.consumer_key.clone(),
        state.consumer_secret.clone(),
        state.orders.len(),
    );
    let sim = okrsync_sim::SimWoo::start(state).await?;
    sim.set_latency(Duration::from_millis(args.latency_ms));
    let url = match &args.tls {
        Some((cert, key)) => {
            let backend = sim
                .url()
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| std::io::Error::other(format!("{e}")))?;
            let front =
                okrsync_sim::tls::front(backend, &std::fs::read(cert)?, &std::fs::read(key)?)
                    .await?;
            format!("https://{front}")
        }
        None => sim.url(),
    };
    println!(
        "{}",
        serde_json::json!({
            "url": url,
            "consumer_key": key,
            "consumer_secret": secret,
            "orders": orders,
        })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    let requests = sim.requests();
    eprintln!("requests: {}", requests.len());
    // The deleted-order reconciliation's id listings (`_fields=id`), counted apart.
    eprintln!(
        "id-listing requests: {}",
        requests
            .iter()
            .filter(|r| r.query.iter().any(|(k, v)| k == "_fields" && v == "id"))
            .count()
    );
    sim.stop().await;
    Ok(())
}
