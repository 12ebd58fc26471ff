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

/// Starts a TLS front for `backend` presenting the certificate `cert` (PEM, with key `key`).
async fn tls_front_with(backend: SocketAddr, cert: &str, key: &str) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
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
    https_harness_with(
        &format!("{FIXTURES}/server.pem"),
        &format!("{FIXTURES}/server.key"),
        extra_store,
    )
    .await
}

/// A store behind a TLS front presenting `cert` (with `key`) at https://127.0.0.1:<port>.
async fn https_harness_with(cert: &str, key: &str, extra_store: &str) -> Harness {
    let mut state = fixture().state;
    state.https = true;
    let sim = SimWoo::start(state).await.unwrap();
    let backend: SocketAddr = sim.url().trim_start_matches("http://").parse().unwrap();
    let front = tls_front_with(backend, cert, key).await;
    let url = format!("https://127.0.0.1:{}", front.port());
    Harness::from_sim(sim, &url, extra_store, "").await
}

/// A self-signed certificate made the way most tutorials make one (`openssl req -x509
/// -newkey rsa:2048 -nodes -subj /CN=… -addext subjectAltName=…`), which marks it `CA:TRUE`.
/// Returns the paths of the certificate and its key (PEM).
fn tutorial_self_signed(dir: &std::path::Path, name: &str, san: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName={san}")])
        .output()
        .expect("the openssl command makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "the tutorial certificate is expected to be CA:TRUE"
    );
    (cert.display().to_string(), key.display().to_string())
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
async fn an_untrusted_certificate_fails_at_once_with_a_clear_error() {
    let h = https_harness("max_retries = 3").await;
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("the store's certificate is not issued by a trusted CA")
            && err.contains("set tls_ca_file"),
        "{err}"
    );
    assert_eq!(
        report.summary.retries, 0,
        "a certificate error is not retried"
    );
    assert!(
        h.sim.requests().is_empty(),
        "no request may pass an untrusted TLS handshake"
    );
}

#[tokio::test]
async fn a_self_signed_ca_true_certificate_in_tls_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tutorial_self_signed(dir.path(), "shop", "IP:127.0.0.1,DNS:localhost");
    let h = https_harness_with(&cert, &key, &format!("tls_ca_file = \"{cert}\"")).await;
    let report = h.sync().await;
    assert_eq!(report.status, "ok", "{:?}", report.summary.error);
    let now = at(2026, 11, 20, 12, 0);
    assert_eq!(
        h.kpi(KpiId::NetSales, W, now).await,
        Some(Value::Money(dec("135.00")))
    );
}

#[tokio::test]
async fn a_self_signed_certificate_is_still_checked_for_its_name_and_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    // Trusted byte for byte, but made for another host than the one in the url.
    let (cert, key) = tutorial_self_signed(dir.path(), "shop.example", "DNS:shop.example");
    let h = https_harness_with(
        &cert,
        &key,
        &format!("tls_ca_file = \"{cert}\"\nmax_retries = 3"),
    )
    .await;
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("the store's certificate is not valid for `127.0.0.1`"),
        "{err}"
    );
    assert_eq!(report.summary.retries, 0, "{err}");
    assert!(h.sim.requests().is_empty());
}

#[tokio::test]
async fn another_self_signed_certificate_than_the_configured_one_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tutorial_self_signed(dir.path(), "shop", "IP:127.0.0.1");
    let (other, _) = tutorial_self_signed(dir.path(), "other", "IP:127.0.0.1");
    let h = https_harness_with(
        &cert,
        &key,
        &format!("tls_ca_file = \"{other}\"\nmax_retries = 3"),
    )
    .await;
    let report = h.sync().await;
    assert_eq!(report.status, "failed");
    let err = report.summary.error.unwrap();
    assert!(
        err.contains("is a CA certificate (CA:TRUE) used as the server certificate")
            && err.contains("put the server's own certificate (PEM) in tls_ca_file"),
        "{err}"
    );
    assert_eq!(report.summary.retries, 0, "{err}");
}
