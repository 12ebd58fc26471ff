//! The `webhook` sink: POSTs the v1 body (or a `body_template` rendered from it) with
//! `Idempotency-Key` and, when a secret is set, `X-Okrsync-Signature: sha256=<hex HMAC>`.

use serde_json::Value as Json;

use super::payload::{field_text, lookup};
use super::{SendError, Sink, SinkHttp};
use crate::config::{ExposeSecret, WebhookSettings};
use crate::store::OutboxRow;

pub struct WebhookSink {
    settings: WebhookSettings,
    http: SinkHttp,
}

impl WebhookSink {
    pub(super) fn new(settings: WebhookSettings, http: SinkHttp) -> WebhookSink {
        WebhookSink { settings, http }
    }

    /// The bytes sent for an entry: the stored v1 body, or the template filled from it.
    /// Deterministic, so every resend carries the same bytes.
    pub fn rendered(&self, entry: &OutboxRow) -> Vec<u8> {
        match &self.settings.body_template {
            None => entry.body.clone().into_bytes(),
            Some(t) => {
                let body: Json = serde_json::from_str(&entry.body).unwrap_or(Json::Null);
                render_template(t, &body).into_bytes()
            }
        }
    }
}

/// Fills `{{path}}` placeholders from the v1 body (`{{value}}`, `{{title}}`,
/// `{{key_result.id}}`, `{{window.from}}`, …). Strings are inserted JSON-escaped without
/// quotes (write `"{{title}}"` in a JSON template), numbers as JSON writes them, null as
/// `null`. An unknown placeholder is left as it is.
pub fn render_template(template: &str, body: &Json) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match lookup(body, name) {
            Some(Json::String(s)) => {
                let quoted = Json::String(s.clone()).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Some(Json::Null) => out.push_str("null"),
            Some(v @ (Json::Object(_) | Json::Array(_))) => out.push_str(&v.to_string()),
            Some(v) => out.push_str(&field_text(v)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `sha256=<lower-case hex HMAC-SHA256 of body with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl Sink for WebhookSink {
    async fn send(&self, entry: &OutboxRow) -> Result<u16, SendError> {
        let body = self.rendered(entry);
        let mut headers = vec![("Idempotency-Key", entry.idempotency_key.clone())];
        if let Some(secret) = &self.settings.secret {
            headers.push((
                "X-Okrsync-Signature",
                signature(secret.expose_secret(), &body),
            ));
        }
        self.http
            .post(
                self.settings.url.as_str(),
                body,
                "application/json",
                &headers,
            )
            .await
            .map(|(status, _)| status)
    }

    async fn check_online(&self) -> Result<Vec<String>, String> {
        // A webhook has no read-only endpoint: reaching it (any HTTP answer to HEAD) is the
        // check; nothing is posted.
        match self
            .http
            .client
            .head(self.settings.url.as_str())
            .send()
            .await
        {
            Ok(r) => Ok(vec![format!(
                "reachable (HEAD answered HTTP {}); deliveries are POSTs",
                r.status().as_u16()
            )]),
            Err(e) => Err(self.http.transport_error(e).message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_fields_and_escape_strings() {
        let body = serde_json::json!({
            "value": "84.20", "progress": 0.46, "previous_value": null,
            "key_result": {"id": "aov", "title": "AOV \"up\""},
            "window": {"from": "2026-01-01"}
        });
        let t = r#"{"text":"{{title}}: {{value}} ({{progress}}) from {{window.from}} {{previous_value}} {{nope}}"}"#;
        assert_eq!(
            render_template(t, &body),
            r#"{"text":"AOV \"up\": 84.20 (0.46) from 2026-01-01 null {{nope}}"}"#
        );
    }

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
