//! The shared HTTP poller: timeouts, retries with capped jittered backoff honouring
//! `Retry-After`, request/retry counters, and redaction of secrets from every error.
//!
//! Every source sends its requests through [`HttpClient::send`]; nothing else in okrsync
//! talks HTTP to a store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::SourceError;
use crate::runtime::{Clock, Shutdown};

mod tls;

/// The longest okrsync waits on one `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How many requests of one client may be in flight, and when the next may be sent.
///
/// Shared by every clone of a client (one store's poller). The window starts at the
/// configured maximum, is halved on every 429 or 5xx answer and grows back additively (by one
/// request per window of successes, i.e. `+1/window` per success), never above the maximum
/// or below one. A `Retry-After` sets a shared "not before" instant: every request of the
/// client, new ones and retries of those already in flight, waits for it.
#[derive(Debug)]
pub struct Pacer {
    state: std::sync::Mutex<PacerState>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Clone, Copy)]
struct PacerState {
    max: usize,
    window: f64,
    in_flight: usize,
    not_before: Option<tokio::time::Instant>,
}

impl PacerState {
    fn allowed(&self) -> usize {
        (self.window.floor() as usize).clamp(1, self.max.max(1))
    }
}

/// A request slot: released (and waiters woken) when dropped.
pub struct Slot<'a> {
    pacer: &'a Pacer,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.pacer.lock().in_flight -= 1;
        self.pacer.changed.notify_waiters();
    }
}

impl Pacer {
    pub fn new(max: usize) -> Pacer {
        let max = max.max(1);
        Pacer {
            state: std::sync::Mutex::new(PacerState {
                max,
                window: max as f64,
                in_flight: 0,
                not_before: None,
            }),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most requests allowed in flight now.
    pub fn window(&self) -> usize {
        self.lock().allowed()
    }

    /// Waits for a free slot and for the shared "not before" instant.
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait_until = {
                let mut st = self.lock();
                match st.not_before {
                    Some(t) if t > tokio::time::Instant::now() => Some(t),
                    _ => {
                        st.not_before = None;
                        if st.in_flight < st.allowed() {
                            st.in_flight += 1;
                            return Slot { pacer: self };
                        }
                        None
                    }
                }
            };
            match wait_until {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// A 429 or 5xx answer: halve the window; with `Retry-After`, hold every request until
    /// then (the later of this and any earlier hold).
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let mut st = self.lock();
        st.window = (st.window / 2.0).max(1.0);
        if let Some(d) = retry_after {
            let t = tokio::time::Instant::now() + d.min(MAX_RETRY_AFTER);
            st.not_before = Some(st.not_before.map_or(t, |n| n.max(t)));
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// A successful answer: grow the window by one per window of successes.
    pub fn succeeded(&self) {
        let mut st = self.lock();
        let before = st.allowed();
        st.window = (st.window + 1.0 / st.window).min(st.max as f64);
        let grew = st.allowed() > before;
        drop(st);
        if grew {
            self.changed.notify_waiters();
        }
    }
}

/// Requests and retries sent, for the sync log and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// Removes known secrets (raw, URL-encoded and Base64 Basic) from text before it is logged
/// or returned in an error. Secrets obtained during a run (access tokens, signed
/// assertions) are added with [`Redactor::add_late`]; clones share them.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
    late: Arc<std::sync::Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// Adds a secret in every form it may travel in.
    pub fn add(&mut self, secret: &str) {
        add_forms(&mut self.needles, secret);
    }

    /// Adds a secret learnt while the client is in use (an access token, a signed JWT), for
    /// this redactor and every clone of it.
    pub fn add_late(&self, secret: &str) {
        let mut late = self.late.lock().unwrap_or_else(|e| e.into_inner());
        add_forms(&mut late, secret);
    }

    /// Adds the Base64 form of HTTP Basic credentials.
    pub fn add_basic(&mut self, user: &str, password: &str) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.add(&b);
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let late = self.late.lock().unwrap_or_else(|e| e.into_inner());
        for n in late.iter().chain(&self.needles) {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "[REDACTED]");
            }
        }
        out
    }
}

/// Adds `secret` in its raw, URL-encoded and form-encoded forms, longest first.
fn add_forms(needles: &mut Vec<String>, secret: &str) {
    if secret.len() < 4 {
        return;
    }
    let forms = [
        secret.to_string(),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        okrsync_wire::oauth1::percent_encode(secret),
        secret.replace(' ', "+"),
    ];
    for f in forms {
        if !needles.contains(&f) {
            needles.push(f);
        }
    }
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
}

/// Retry policy of one client.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// First backoff; doubles per attempt up to one minute, with jitter.
    pub base: Duration,
    /// Whether a 429 without `Retry-After` is retried with backoff. True for stores (their
    /// rate limits refill within seconds); false for quota-limited APIs (GA4, PageSpeed),
    /// whose 429 means a daily or hourly quota is spent: the run then fails at once with
    /// [`SourceError::QuotaExhausted`] and the next scheduled run tries again.
    pub retry_429_without_retry_after: bool,
}

/// A response that passed status checks: status, headers and the whole body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client bound to one store: its TLS settings, timeout, retry policy and secrets.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    redactor: Redactor,
    counters: Arc<Counters>,
    /// Appended to credential errors: which keys of which source to check.
    auth_hint: Arc<str>,
    /// Whether `tls_ca_file` is set, for certificate errors.
    has_ca_file: bool,
    /// The largest body read (`max_response_mb`); a larger one fails the request.
    max_body: u64,
    /// "Now" for this client's source (signatures, `Retry-After` dates, "today").
    clock: Clock,
    /// Requests in flight and the shared `Retry-After` hold (see [`Pacer`]).
    pacer: Arc<Pacer>,
}

/// The TLS settings of a client with `tls_ca_file`: its certificates are trusted as CAs and,
/// byte for byte, as the server's own certificate (see [`tls`]).
fn ca_file_tls(pem: &[u8]) -> Result<rustls::ClientConfig, SourceError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SourceError::Config(format!("tls_ca_file is not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(SourceError::Config(
            "tls_ca_file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = tls::CaFileVerifier::new(certs, provider.clone())
        .map_err(|e| SourceError::Config(format!("tls_ca_file cannot be used: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::Config(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate problem behind a failed request, if it is one: such a failure is never
/// retried (the same certificate comes back on every attempt).
fn certificate_error(e: &reqwest::Error) -> Option<rustls::CertificateError> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        // An io::Error's source() skips the error it wraps (hyper wraps tokio-rustls's
        // io::Error in another): look inside each wrapper.
        let mut inner: &(dyn std::error::Error + 'static) = s;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        if let Some(rustls::Error::InvalidCertificate(c)) = inner.downcast_ref::<rustls::Error>() {
            return Some(c.clone());
        }
        src = s.source();
    }
    None
}

/// What is wrong with the store's certificate and what to do, in words.
fn certificate_message(c: &rustls::CertificateError, host: &str, has_ca_file: bool) -> String {
    use rustls::CertificateError as C;
    let ca_used_as_end_entity = matches!(c, C::Other(o)
        if o.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity));
    match c {
        _ if ca_used_as_end_entity => {
            if has_ca_file {
                "the store's certificate is a CA certificate (CA:TRUE) used as the server certificate, and it is not one of the certificates in tls_ca_file; put the server's own certificate (PEM) in tls_ca_file: okrsync then trusts exactly that certificate (its name and dates are still checked)".to_string()
            } else {
                "the store's certificate is a CA certificate (CA:TRUE, as `openssl req -x509` makes self-signed ones) used as the server certificate; set tls_ca_file to that very certificate (PEM): okrsync then trusts exactly it (its name and dates are still checked)".to_string()
            }
        }
        C::Expired | C::ExpiredContext { .. } => {
            let when = match c {
                C::ExpiredContext { not_after, .. } => format!(" on {}", unix_date(not_after)),
                _ => String::new(),
            };
            format!("the store's certificate expired{when}; renew it on the server")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            let when = match c {
                C::NotValidYetContext { not_before, .. } => {
                    format!(" (valid from {})", unix_date(not_before))
                }
                _ => String::new(),
            };
            format!(
                "the store's certificate is not valid yet{when}; check the clock of this machine and of the server"
            )
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => format!(
            "the store's certificate is not valid for `{host}`; use the host name the certificate names in the store's url, or reissue the certificate for `{host}`"
        ),
        C::UnknownIssuer => {
            if has_ca_file {
                "the store's certificate is neither issued by a CA in tls_ca_file nor identical to a certificate in it; set tls_ca_file to the CA that issued it, or to the server's own certificate (PEM)".to_string()
            } else {
                "the store's certificate is not issued by a trusted CA; if the store uses a self-signed or private CA certificate, set tls_ca_file to that CA or to the self-signed certificate (PEM)".to_string()
            }
        }
        other => format!(
            "the store's certificate was refused ({other:?}); check the certificate the server presents"
        ),
    }
}

fn unix_date(t: &rustls::pki_types::UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| t.as_secs().to_string())
}

/// Installs the process-wide TLS crypto provider (ring). Idempotent.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpClient {
    /// Builds a client. `ca_pem` adds a trusted CA for self-hosted stores.
    pub fn new(
        timeout: Duration,
        ca_pem: Option<&[u8]>,
        policy: RetryPolicy,
        redactor: Redactor,
    ) -> Result<HttpClient, SourceError> {
        init_tls();
        let mut builder = reqwest::Client::builder()
            // Never follow redirects: a redirect would carry query credentials to wherever it
            // points (even plain http); the error tells the user which URL to configure.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("okrsync/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            builder = builder.tls_backend_preconfigured(ca_file_tls(pem)?);
        }
        let client = builder
            .build()
            .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            policy,
            redactor,
            counters: Arc::new(Counters::default()),
            auth_hint: Arc::from(""),
            has_ca_file: ca_pem.is_some(),
            max_body: crate::config::DEFAULT_MAX_RESPONSE_MB << 20,
            clock: Clock::System,
            // Sources that send one request at a time never reach it.
            pacer: Arc::new(Pacer::new(64)),
        })
    }

    /// Caps response bodies at `bytes` (`max_response_mb`).
    pub fn with_max_response_bytes(mut self, bytes: u64) -> HttpClient {
        self.max_body = bytes;
        self
    }

    /// Allows at most `n` requests in flight at once (`max_concurrency`), shared by clones.
    pub fn with_max_concurrency(mut self, n: usize) -> HttpClient {
        self.pacer = Arc::new(Pacer::new(n));
        self
    }

    /// The client's pacer: its current window of requests in flight.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Names what to check when the credentials are refused (`"; check api_key of …"`).
    /// Reads "now" from `clock` (tests fix it; the daemon passes its own).
    pub fn with_clock(mut self, clock: Clock) -> HttpClient {
        self.clock = clock;
        self
    }

    /// The current time for this client's source.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn with_auth_hint(mut self, hint: String) -> HttpClient {
        self.auth_hint = Arc::from(hint);
        self
    }

    /// The client of one configured store: its timeout, retry policy and extra CA.
    pub fn for_store(
        store: &crate::config::StoreSettings,
        redactor: Redactor,
    ) -> Result<HttpClient, SourceError> {
        let ca = match &store.tls_ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                SourceError::Config(format!("cannot read tls_ca_file {}: {e}", p.display()))
            })?),
            None => None,
        };
        HttpClient::new(
            store.timeout,
            ca.as_deref(),
            RetryPolicy {
                max_retries: store.max_retries,
                base: store.retry_base,
                retry_429_without_retry_after: true,
            },
            redactor,
        )
        .map(|c| c.with_max_response_bytes(store.max_response_bytes))
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request built by `build` (called again for each attempt, so signatures and
    /// nonces are fresh), retrying timeouts, connection errors, 429 (unless the policy says
    /// a 429 without `Retry-After` is an exhausted quota) and 5xx. Other 4xx answers fail at
    /// once. `what` names the request in errors (a URL without secrets).
    pub async fn send<F>(
        &self,
        what: &str,
        shutdown: &Shutdown,
        build: F,
    ) -> Result<HttpResponse, SourceError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let what = self.redactor.redact(what);
        let mut attempt: u32 = 0;
        loop {
            if shutdown.is_shutdown() {
                return Err(SourceError::Cancelled);
            }
            let slot = {
                let mut sd = shutdown.clone();
                tokio::select! {
                    s = self.pacer.acquire() => s,
                    _ = sd.recv() => return Err(SourceError::Cancelled),
                }
            };
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = build(&self.client).send().await;
            let (retry_after, error) = match outcome {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 429 || status >= 500 {
                        self.pacer
                            .throttled(parse_retry_after(resp.headers(), self.clock.now()));
                    }
                    let headers = resp.headers().clone();
                    let body = match self.read_body(&what, resp).await {
                        Ok(Ok(b)) => b,
                        // The same answer would come back: never retried.
                        Ok(Err(too_large)) => return Err(too_large),
                        Err(e) => {
                            let err = self.transport_error(&what, e);
                            drop(slot);
                            if attempt < self.policy.max_retries {
                                self.wait(attempt, None, shutdown, &err).await?;
                                attempt += 1;
                                continue;
                            }
                            return Err(err);
                        }
                    };
                    if (200..300).contains(&status) {
                        self.pacer.succeeded();
                        drop(slot);
                        return Ok(HttpResponse {
                            status,
                            headers,
                            body,
                        });
                    }
                    if (300..400).contains(&status) {
                        let to = headers
                            .get("location")
                            .and_then(|v| v.to_str().ok())
                            .map(|l| {
                                let mut l = l.to_string();
                                if let Some(i) = l.find('?') {
                                    l.truncate(i);
                                }
                                self.redactor.redact(&l)
                            })
                            .unwrap_or_else(|| "another address".into());
                        return Err(SourceError::Redirect {
                            url: what.clone(),
                            status,
                            to,
                        });
                    }
                    let excerpt = self.redactor.redact(&excerpt(&body));
                    let retryable = status == 429 || status >= 500;
                    let retry_after = parse_retry_after(&headers, self.clock.now());
                    if status == 429
                        && retry_after.is_none()
                        && !self.policy.retry_429_without_retry_after
                    {
                        return Err(SourceError::QuotaExhausted {
                            url: what.clone(),
                            body: excerpt,
                        });
                    }
                    let err = if status == 401 || status == 403 {
                        SourceError::Auth {
                            url: what.clone(),
                            status,
                            body: excerpt,
                            hint: self.auth_hint.to_string(),
                        }
                    } else {
                        SourceError::Status {
                            url: what.clone(),
                            status,
                            body: excerpt,
                        }
                    };
                    if !retryable {
                        return Err(err);
                    }
                    (retry_after, err)
                }
                Err(e) => {
                    // The same certificate comes back on every attempt: never retried.
                    let permanent = certificate_error(&e).is_some();
                    let err = self.transport_error(&what, e);
                    if permanent {
                        return Err(err);
                    }
                    (None, err)
                }
            };
            drop(slot);
            if attempt >= self.policy.max_retries {
                return Err(error);
            }
            self.wait(attempt, retry_after, shutdown, &error).await?;
            attempt += 1;
        }
    }

    /// Reads a body up to `max_body` bytes; `Ok(Err(_))` when it is larger (announced by
    /// `Content-Length` or found while reading: reading stops there).
    async fn read_body(
        &self,
        what: &str,
        mut resp: reqwest::Response,
    ) -> Result<Result<Vec<u8>, SourceError>, reqwest::Error> {
        let too_large = || SourceError::Http {
            url: what.to_string(),
            message: format!(
                "failed: the response is larger than {} MiB, the limit set by max_response_mb; okrsync stopped reading it (not retried). If this server really sends answers that large, raise max_response_mb for this source in the config",
                self.max_body >> 20
            ),
        };
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Ok(Err(too_large()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if (body.len() + chunk.len()) as u64 > self.max_body {
                return Ok(Err(too_large()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Ok(body))
    }

    /// A transport error, and whether retrying can help (never for a refused certificate).
    pub(crate) fn transport_failure(&self, what: &str, e: reqwest::Error) -> (SourceError, bool) {
        let retryable = certificate_error(&e).is_none();
        (self.transport_error(what, e), retryable)
    }

    /// The largest answer this client reads (`max_response_mb`).
    pub(crate) fn max_response_bytes(&self) -> u64 {
        self.max_body
    }

    pub(crate) fn transport_error(&self, what: &str, e: reqwest::Error) -> SourceError {
        if let Some(c) = certificate_error(&e) {
            let host = e
                .url()
                .and_then(|u| u.host_str())
                .unwrap_or("the store's host")
                .to_string();
            return SourceError::Http {
                url: what.to_string(),
                message: self.redactor.redact(&format!(
                    "failed: TLS certificate refused: {} (not retried)",
                    certificate_message(&c, &host, self.has_ca_file)
                )),
            };
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "failed"
        };
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        let hint = if msg.to_lowercase().contains("certificate") {
            "; if the store uses a self-signed or private CA certificate, set tls_ca_file to that CA (PEM)"
        } else if e.is_connect() {
            "; check the url in the config and that the server is up and reachable from this machine"
        } else if e.is_timeout() {
            "; the server did not answer in time: it may be overloaded (raise timeout_seconds) or unreachable"
        } else {
            ""
        };
        SourceError::Http {
            url: what.to_string(),
            message: self.redactor.redact(&format!("{kind} ({msg}){hint}")),
        }
    }

    async fn wait(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        shutdown: &Shutdown,
        error: &SourceError,
    ) -> Result<(), SourceError> {
        let delay = match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER),
            None => backoff(self.policy.base, attempt),
        };
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            attempt = attempt + 1,
            max = self.policy.max_retries,
            delay_ms = delay.as_millis() as u64,
            "request failed, retrying: {error}"
        );
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = sd.recv() => Err(SourceError::Cancelled),
        }
    }
}

/// Exponential backoff from `base`, doubled per attempt, capped, with ±25 % jitter.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(MAX_BACKOFF);
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        u16::from_le_bytes(b) as f64 / u16::MAX as f64
    } else {
        0.5
    };
    capped.mul_f64(0.75 + 0.5 * r)
}

/// `Retry-After` as seconds or an HTTP date (measured from the response's `Date` when it has
/// one, so a skewed clock on either side does not stretch the wait; else from `now`).
pub fn parse_retry_after(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map_or(now, |d| d.with_timezone(&chrono::Utc));
    let secs = (at.with_timezone(&chrono::Utc) - now).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// The start of a body, for error messages: printable text only, at most 200 characters.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 200 {
        format!("{clean}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn redactor_hides_every_form() {
        let mut r = Redactor::default();
        r.add("cs_secret/with+plus");
        r.add_basic("ck_key", "cs_secret/with+plus");
        let text = "a cs_secret/with+plus b cs_secret%2Fwith%2Bplus c";
        let out = r.redact(text);
        assert!(!out.contains("cs_secret"), "{out}");
        // Secrets learnt later reach every clone.
        let clone = r.clone();
        r.add_late("ya29.token-learnt-later");
        assert_eq!(clone.redact("t=ya29.token-learnt-later"), "t=[REDACTED]");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b0 = backoff(Duration::from_secs(1), 0);
        assert!(b0 >= Duration::from_millis(750) && b0 <= Duration::from_millis(1250));
        let b10 = backoff(Duration::from_secs(1), 10);
        assert!(b10 <= MAX_BACKOFF.mul_f64(1.25));
        assert!(b10 >= MAX_BACKOFF.mul_f64(0.75));
    }

    #[test]
    fn retry_after_date_is_measured_from_the_response_date() {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2026 07:28:30 GMT".parse().unwrap(),
        );
        h.insert("date", "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap());
        // Our clock is a day off: the server's own Date still gives 30 s.
        let skewed = chrono::Utc
            .with_ymd_and_hms(2026, 10, 22, 7, 28, 0)
            .unwrap();
        assert_eq!(parse_retry_after(&h, skewed), Some(Duration::from_secs(30)));
        h.remove("date");
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 10, 21, 7, 28, 20)
            .unwrap();
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_window_halves_on_throttling_and_grows_back_one_by_one() {
        let p = Pacer::new(8);
        assert_eq!(p.window(), 8);
        p.throttled(None);
        assert_eq!(p.window(), 4);
        p.throttled(None);
        p.throttled(None);
        p.throttled(None);
        assert_eq!(p.window(), 1, "never below one");
        // Additive: one more request in flight per window of successes.
        p.succeeded();
        assert_eq!(p.window(), 2);
        p.succeeded();
        assert_eq!(p.window(), 2);
        p.succeeded();
        assert_eq!(p.window(), 2);
        p.succeeded();
        assert_eq!(p.window(), 3);
        for _ in 0..100 {
            p.succeeded();
        }
        assert_eq!(p.window(), 8, "never above max_concurrency");
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            parse_retry_after(
                &h,
                chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            ),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn excerpt_is_short_and_printable() {
        let e = excerpt(b"<br />\n<b>Warning</b>: x\n[{\"id\":1}]");
        assert_eq!(e, "<br /> <b>Warning</b>: x [{\"id\":1}]");
        assert!(excerpt(&[b'a'; 500]).ends_with('…'));
    }
}
