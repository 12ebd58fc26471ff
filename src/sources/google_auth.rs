//! Google service-account authentication, shared by every Google API okrsync calls (the GA4
//! source, the Google Sheets sink): an RS256-signed JWT (claims `iss`, `scope`, `aud` = the
//! key's `token_uri`, `iat`, `exp`) exchanged at `token_uri` with grant type
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523) for an access token, cached until
//! a minute before it expires. Callers send the exchange with their own HTTP client (errors
//! and redaction are theirs) through [`ServiceAccount::token_form`] and
//! [`ServiceAccount::accept`].

use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::config::{ExposeSecret, ServiceAccountKey};

/// The JWT bearer grant type (RFC 7523).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a PEM block (`-----BEGIN PRIVATE KEY-----`) to DER.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("the private key is not valid PEM base64 ({e})"))
}

/// Builds and signs the JWT assertion for the token exchange.
pub fn assertion(
    key: &RsaKeyPair,
    client_email: &str,
    key_id: Option<&str>,
    scope: &str,
    aud: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = Value::String(kid.to_string());
    }
    let iat = now.timestamp();
    let claims = json!({
        "iss": client_email,
        "scope": scope,
        "aud": aud,
        "iat": iat,
        "exp": iat + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "cannot sign the JWT with the service-account key".to_string())?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

/// A service-account key ready to sign, with its cached access token.
pub struct ServiceAccount {
    pub key: ServiceAccountKey,
    scope: &'static str,
    pair: RsaKeyPair,
    /// The access token and when to renew it.
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl ServiceAccount {
    /// Parses the key's private key; the error says what is wrong with it (no secret in it).
    pub fn new(key: &ServiceAccountKey, scope: &'static str) -> Result<ServiceAccount, String> {
        let der = pem_to_der(key.private_key.expose_secret())
            .map_err(|e| format!("service-account key: {e}"))?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            format!(
                "the service-account private_key is not an RSA PKCS#8 key ({e}); download a new JSON key"
            )
        })?;
        Ok(ServiceAccount {
            key: key.clone(),
            scope,
            pair,
            token: Mutex::new(None),
        })
    }

    /// The strings to redact: the PEM and its base64 body on one line.
    pub fn secrets(&self) -> [String; 2] {
        let pem = self.key.private_key.expose_secret();
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        [pem.to_string(), body]
    }

    /// The cached access token, unless missing or expiring at `now`.
    pub fn cached(&self, now: DateTime<Utc>) -> Option<String> {
        let guard = self.token.lock().ok()?;
        match &*guard {
            Some((t, exp)) if now < *exp => Some(t.clone()),
            _ => None,
        }
    }

    /// Drops the cached token (after a 401).
    pub fn forget(&self) {
        if let Ok(mut g) = self.token.lock() {
            *g = None;
        }
    }

    /// A fresh signed assertion (redact it: it grants a token for an hour).
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<String, String> {
        assertion(
            &self.pair,
            &self.key.client_email,
            self.key.private_key_id.as_deref(),
            self.scope,
            self.key.token_uri.as_str(),
            now,
        )
    }

    /// The form body of the exchange at `token_uri` for `jwt`.
    pub fn token_form(jwt: &str) -> [(&'static str, &str); 2] {
        [("grant_type", GRANT_TYPE), ("assertion", jwt)]
    }

    /// Reads the exchange's answer, caches the token (renewed a minute early) and returns it.
    pub fn accept(&self, answer: &Value, now: DateTime<Utc>) -> Result<String, String> {
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or("the token answer has no access_token")?
            .to_string();
        let expires_in = answer
            .get("expires_in")
            .and_then(crate::sources::analytics::count)
            .unwrap_or(3600) as i64;
        let exp = now + Duration::seconds((expires_in - 60).max(0));
        if let Ok(mut g) = self.token.lock() {
            *g = Some((token.clone(), exp));
        }
        Ok(token)
    }
}
