//! `[[sinks]]` settings: where check-ins are pushed (webhook, Slack). Credentials come inline,
//! from `<key>_env` or from `<key>_file`, as for stores.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use super::{SecretString, Validator, refuse_plain_http};

/// The sink kinds this version delivers to.
pub const SINK_KINDS: &[&str] = &["webhook", "slack"];
/// Kinds named in the contract that a later version delivers to (refused with a clear message).
const LATER_KINDS: &[&str] = &["google_sheets", "asana_goal", "notion", "perdoo"];

/// Default cap of the backoff between delivery attempts (`retry_max_seconds`).
pub const DEFAULT_RETRY_MAX_SECONDS: u64 = 300;
/// Allowed `retry_max_seconds`: the first retry comes within 5 s, so the cap is at least that.
pub const RETRY_MAX_SECONDS_RANGE: (u64, u64) = (5, 86_400);
/// Default per-request timeout of a delivery.
pub const DEFAULT_SINK_TIMEOUT_SECONDS: u64 = 10;

/// One configured sink.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Unique among sinks; named by `key_results.sinks`; the sync log's `store` for deliveries.
    pub name: String,
    /// Cap of the backoff between attempts of one entry.
    pub retry_max: std::time::Duration,
    pub timeout: std::time::Duration,
    pub kind: SinkKind,
}

/// Kind-specific settings.
#[derive(Debug, Clone)]
pub enum SinkKind {
    Webhook(WebhookSettings),
    Slack(SlackSettings),
}

impl SinkKind {
    /// The `kind` key's value (the sync log's `source` for deliveries).
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Slack(_) => "slack",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: reqwest::Url,
    /// Signs the raw body (`X-Okrsync-Signature: sha256=<hex>`).
    pub secret: Option<SecretString>,
    /// Replaces the v1 body: `{{placeholder}}`s filled from the check-in (Zapier, Make, Teams,
    /// Tability). `None`: the v1 body of contracts.md.
    pub body_template: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// The incoming-webhook URL: it is the credential, so it is a secret.
    pub url: SecretString,
    /// Post when the value moves by at least this much (absolute, in the KPI's unit) since the
    /// last message; a change of status always posts. `None`: every check-in posts.
    pub threshold: Option<rust_decimal::Decimal>,
}

impl Validator<'_> {
    /// Parses `[[sinks]]`; returns the sinks and the set of their names (also of invalid ones,
    /// so key results naming them are not reported twice).
    pub(super) fn sinks(
        &mut self,
        top: &Map<String, Json>,
    ) -> (Vec<SinkSettings>, BTreeSet<String>) {
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for (i, raw) in self.array(top, "sinks").iter().enumerate() {
            let prefix = format!("sinks[{i}]");
            let Some(obj) = raw.as_object() else {
                self.problem(prefix, "expected a table");
                continue;
            };
            if let Some(n) = obj.get("name").and_then(Json::as_str)
                && !names.insert(n.trim().to_string())
            {
                self.problem(
                    format!("{prefix}.name"),
                    format!("sink name `{n}` is used twice; names must be unique"),
                );
            }
            if let Some(s) = self.sink(&prefix, obj) {
                out.push(s);
            }
        }
        (out, names)
    }

    fn sink(&mut self, prefix: &str, obj: &Map<String, Json>) -> Option<SinkSettings> {
        let name = self.name(obj, prefix, "sink");
        let kind = self.string(obj, prefix, "kind", true);
        let common = ["name", "kind", "retry_max_seconds", "timeout_seconds"];
        let retry_max = self.uint_in(
            obj,
            prefix,
            "retry_max_seconds",
            DEFAULT_RETRY_MAX_SECONDS,
            RETRY_MAX_SECONDS_RANGE,
        );
        let timeout = self.uint_in(
            obj,
            prefix,
            "timeout_seconds",
            DEFAULT_SINK_TIMEOUT_SECONDS,
            super::TIMEOUT_SECONDS_RANGE,
        );
        let kind = match kind.as_deref() {
            Some("webhook") => {
                self.unknown_keys(
                    prefix,
                    obj,
                    &[&common[..], &["url", "secret", "body_template"]].concat(),
                );
                let url = self.sink_url(obj, prefix, "the signed body");
                let secret = if ["secret", "secret_env", "secret_file"]
                    .iter()
                    .any(|k| obj.contains_key(*k))
                {
                    Some(self.secret(obj, prefix, "secret")?)
                } else {
                    None
                };
                let body_template = self.string(obj, prefix, "body_template", false);
                SinkKind::Webhook(WebhookSettings {
                    url: url?,
                    secret,
                    body_template,
                })
            }
            Some("slack") => {
                self.unknown_keys(prefix, obj, &[&common[..], &["url", "threshold"]].concat());
                let url = self.secret(obj, prefix, "url");
                if let Some(u) = &url {
                    use super::ExposeSecret;
                    match reqwest::Url::parse(u.expose_secret()) {
                        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                            if let Err(e) = refuse_plain_http(&parsed, "the webhook URL's token") {
                                // The message quotes the URL: keep only its origin.
                                let _ = e;
                                self.problem(
                                    format!("{prefix}.url"),
                                    format!(
                                        "plain http:// to {} is only allowed for a loopback test server; use the https:// URL Slack gave you",
                                        parsed.host_str().unwrap_or("?")
                                    ),
                                );
                            }
                        }
                        _ => self.problem(
                            format!("{prefix}.url"),
                            "is not an https:// URL (use the incoming-webhook URL Slack shows, https://hooks.slack.com/services/…)",
                        ),
                    }
                }
                let threshold = if obj.contains_key("threshold") {
                    Some(self.decimal(obj, prefix, "threshold")?)
                } else {
                    None
                };
                SinkKind::Slack(SlackSettings {
                    url: url?,
                    threshold,
                })
            }
            Some(k) if LATER_KINDS.contains(&k) => {
                self.problem(
                    format!("{prefix}.kind"),
                    format!(
                        "sink kind `{k}` is not delivered by this version of okrsync yet (available: {}); a `webhook` sink with `body_template` can feed most tools",
                        SINK_KINDS.join(", ")
                    ),
                );
                return None;
            }
            Some(k) => {
                self.problem(
                    format!("{prefix}.kind"),
                    format!(
                        "unknown sink kind `{k}` (available: {})",
                        SINK_KINDS.join(", ")
                    ),
                );
                return None;
            }
            None => return None,
        };
        Some(SinkSettings {
            name: name?,
            retry_max: std::time::Duration::from_secs(retry_max),
            timeout: std::time::Duration::from_secs(timeout),
            kind,
        })
    }

    fn sink_url(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        what: &str,
    ) -> Option<reqwest::Url> {
        let raw = self.string(obj, prefix, "url", true)?;
        match reqwest::Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if let Err(e) = refuse_plain_http(&u, what) {
                    self.problem(format!("{prefix}.url"), e);
                    return None;
                }
                Some(u)
            }
            _ => {
                self.problem(
                    format!("{prefix}.url"),
                    format!("`{raw}` must be an https:// URL"),
                );
                None
            }
        }
    }
}
