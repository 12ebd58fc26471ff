//! `okrsync health [--url URL]`: one `GET /healthz` to the status server of a running daemon,
//! for container health checks (a slim image has no curl). Exit 0 on a 200 answer, 1
//! otherwise. Plain HTTP only, as the status server speaks it.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the whole probe may take.
const TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn health(
    config: &Path,
    url: Option<String>,
    env: &HashMap<String, String>,
) -> Result<ExitCode> {
    let url = match url {
        Some(u) => u,
        None => {
            let settings = super::load_settings(config, env)?;
            let Some(http) = settings.http else {
                bail!(
                    "{} has no [http] listen, so there is no status server to probe: set it, or pass --url",
                    config.display()
                );
            };
            let mut addr = http.listen;
            // A daemon listening on every address answers on loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{addr}/healthz")
        }
    };
    match tokio::time::timeout(TIMEOUT, probe(&url)).await {
        Ok(Ok(200)) => {
            crate::outln!("{url}: OK");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(status)) => {
            crate::note!("error: {url} answered HTTP {status}, not 200");
            Ok(ExitCode::from(1))
        }
        Ok(Err(e)) => {
            crate::note!("error: {url}: {e:#}");
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            crate::note!("error: {url}: no answer within {} s", TIMEOUT.as_secs());
            Ok(ExitCode::from(1))
        }
    }
}

/// Sends `GET` and returns the status code of the answer.
async fn probe(url: &str) -> Result<u16> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    if parsed.scheme() != "http" {
        bail!("only http:// URLs can be probed (the status server speaks plain HTTP)");
    }
    let host = parsed.host_str().context("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .context("cannot connect (is `okrsync run` up with [http] listen set?)")?;
    let authority = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or(host)),
        None => parsed.host_str().unwrap_or(host).to_string(),
    };
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .context("sending the request")?;
    // The status line is all we need: "HTTP/1.1 200 OK".
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = stream
            .read(&mut chunk)
            .await
            .context("reading the answer")?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: `{line}`"))
}
