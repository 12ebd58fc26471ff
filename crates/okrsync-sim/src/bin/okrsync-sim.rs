//! `okrsync-sim`: serves a simulated store on 127.0.0.1 until Ctrl-C, for benchmarks and
//! for trying clients (okrsync or others) against the same data.
//!
//! ```text
//! okrsync-sim woocommerce [--days N] [--per-day N] [--latency-ms N] [--tls-cert PEM --tls-key PEM]
//! okrsync-sim shopify [--days N] [--per-day N] [--latency-ms N] [--bulk-polls N] [--tls-cert PEM --tls-key PEM]
//! ```
//!
//! Prints one JSON line on stdout (`url`, credentials, order count), then serves; on Ctrl-C
//! (SIGINT) or SIGTERM prints `requests: N` (answered requests) on stderr and exits.
//!
//! The Shopify shop has the standard plan's bucket (2,000 points restored at 100 points/s,
//! charged the actual cost); its history ends an hour ago. `--bulk-polls N`: a bulk operation
//! completes at its Nth status read (default 2). It also prints `operations: {…}` (requests per
//! GraphQL operation, `GET` paths as `rest` and `bulk-download`).

#![allow(clippy::disallowed_methods)] // a simulator, test or bench may read the system clock

use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: okrsync-sim woocommerce|shopify [--days N] [--per-day N] [--latency-ms N] [--bulk-polls N (shopify)] [--tls-cert PEM --tls-key PEM]"
    );
    std::process::exit(2)
}

struct Args {
    shopify: bool,
    bulk_polls: u32,
    days: u32,
    per_day: u32,
    latency_ms: u64,
    tls: Option<(String, String)>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Args {
    let shopify = match it.next().as_deref() {
        Some("woocommerce") => false,
        Some("shopify") => true,
        _ => usage(),
    };
    let mut a = Args {
        shopify,
        bulk_polls: 2,
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
            "--bulk-polls" if a.shopify => a.bulk_polls = num() as u32,
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
    if args.shopify {
        return shopify(args).await;
    }
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
    let url = public_url(sim.url(), &args).await?;
    println!(
        "{}",
        serde_json::json!({
            "url": url,
            "consumer_key": key,
            "consumer_secret": secret,
            "orders": orders,
        })
    );
    until_stopped().await?;
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

/// Waits for Ctrl-C or SIGTERM.
async fn until_stopped() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// `url`, or the https address of a TLS front on it when a certificate is given.
async fn public_url(url: String, args: &Args) -> std::io::Result<String> {
    Ok(match &args.tls {
        Some((cert, key)) => {
            let backend = url
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| std::io::Error::other(format!("{e}")))?;
            let front =
                okrsync_sim::tls::front(backend, &std::fs::read(cert)?, &std::fs::read(key)?)
                    .await?;
            format!("https://{front}")
        }
        None => url,
    })
}

async fn shopify(args: Args) -> std::io::Result<()> {
    // An hour ago, so an incremental read right after the first sync finds nothing changed.
    let now = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut state = okrsync_sim::ShopState::generate(44, now, args.days, args.per_day);
    state.latency = Duration::from_millis(args.latency_ms);
    state.bulk_polls = args.bulk_polls;
    let (token, orders) = (state.access_token.clone(), state.visible_orders());
    let sim = okrsync_sim::SimShopify::start(state).await?;
    let url = public_url(sim.url(), &args).await?;
    println!(
        "{}",
        serde_json::json!({"url": url, "access_token": token, "orders": orders})
    );
    until_stopped().await?;
    let requests = sim.requests();
    eprintln!("requests: {}", requests.len());
    let mut ops = std::collections::BTreeMap::<String, usize>::new();
    for r in &requests {
        let name = if r.path.starts_with("/bulk/") {
            "bulk-download".to_string()
        } else if r.operation.is_empty() {
            format!("other {}", r.path)
        } else {
            r.operation.clone()
        };
        *ops.entry(name).or_insert(0) += 1;
    }
    eprintln!("operations: {}", serde_json::json!(ops));
    eprintln!("throttled: {}", sim.with_state(|s| s.throttled));
    sim.stop().await;
    Ok(())
}
