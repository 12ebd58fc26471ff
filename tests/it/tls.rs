//! WooCommerce over https: HTTP Basic (the default) or query-parameter credentials, an extra
//! trusted CA (`tls_ca_file`), and a clear error for an untrusted certificate.
//!
//! A TLS front (test-only certificates in tests/fixtures/tls) terminates https on 127.0.0.1 and
//! forwards to the simulated store, which then authenticates as WooCommerce does under SSL.

use std::net::SocketAddr;
use std::sync::Arc;

use okrsync::kpi::{KpiId, Value};
use okrsync_sim::SimWoo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::helpers::*;
use crate::woo_kpis::{W, fixture};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// Starts a TLS front for `backend` and returns its address.
async fn tls_front(backend: SocketAddr) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{FIXTURES}/server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

async fn https_harness(extra_store: &str) -> Harness {
    let mut state = fixture().state;
    state.https = true;
    let sim = SimWoo::start(state).await.unwrap();
    let backend: SocketAddr = sim.url().trim_start_matches("http://").parse().unwrap();
    let front = tls_front(backend).await;
    let url = format!("https://127.0.0.1:{}", front.port());
    Harness::from_sim(sim, &url, extra_store, "").await
}

fn ca_line() -> String {
    format!("tls_ca_file = \"{FIXTURES}/ca.pem\"")
}

#[tokio::test]
async fn https_uses_basic_auth_and_trusts_the_configured_ca() {
    let h = https_harness(&ca_line()).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(
        h.kpi(KpiId::NetSales, W, now).await,
        Some(Value::Money(dec("135.00")))
    );
    for r in h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/wc/v3/"))
    {
        assert!(
            r.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic ")),
            "{r:?}"
        );
        assert!(
            !r.query
                .iter()
                .any(|(k, _)| k.starts_with("oauth_") || k == "consumer_secret"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn https_with_query_auth_sends_no_authorization_header_and_leaks_nothing() {
    let h = https_harness(&format!("{}\nauth = \"query\"", ca_line())).await;
    let out = h.run_bin(&["sync"]).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for r in h
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/wc/v3/"))
    {
        assert!(r.authorization.is_none(), "{r:?}");
        assert!(
            r.query
                .iter()
                .any(|(k, v)| k == "consumer_secret" && v == SECRET),
            "{r:?}"
        );
    }
    assert!(!text.contains(SECRET) && !text.contains(KEY), "{text}");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_with_a_clear_error() {
    let h = https_harness("max_retries = 0").await;
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap().to_lowercase();
    assert!(
        err.contains("certificate") && err.contains("tls_ca_file"),
        "{err}"
    );
    assert!(
        h.sim.requests().is_empty(),
        "no request may pass an untrusted TLS handshake"
    );
}
