//! `[[sinks]]` settings: where check-ins are pushed (webhook, Slack, Asana goal, Notion page). Credentials come inline,
//! from `<key>_env` or from `<key>_file`, as for stores.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use super::{SecretString, Validator, refuse_plain_http};

/// The sink kinds this version delivers to.
pub const SINK_KINDS: &[&str] = &["webhook", "slack", "asana_goal", "notion", "google_sheets"];
/// Kinds named in the contract that a later version delivers to (refused with a clear message).
const LATER_KINDS: &[&str] = &["perdoo"];

/// Why `kind = "perdoo"` is refused: Perdoo documents no public API call that sets a key
/// result's current value (endpoint, auth scheme and body), so okrsync does not guess one.
pub const PERDOO_REFUSAL: &str = "sink kind `perdoo` is not built: Perdoo publishes no documented API call to set a key result's current value. Use a `webhook` sink with `body_template` toward a Zapier or Make scenario that updates Perdoo; see README, section \"Perdoo (through Zapier or Make)\"";

/// Asana's API root (`api_base` of an `asana_goal` sink).
pub const ASANA_API_BASE: &str = "https://app.asana.com/api/1.0";
/// Notion's API root (`api_base` of a `notion` sink).
pub const NOTION_API_BASE: &str = "https://api.notion.com";
/// Google Sheets API root (`api_base` of a `google_sheets` sink).
pub const SHEETS_API_BASE: &str = "https://sheets.googleapis.com";

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
    AsanaGoal(AsanaGoalSettings),
    Notion(NotionSettings),
    GoogleSheets(GoogleSheetsSettings),
}

impl SinkKind {
    /// The `kind` key's value (the sync log's `source` for deliveries).
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Slack(_) => "slack",
            SinkKind::AsanaGoal(_) => "asana_goal",
            SinkKind::Notion(_) => "notion",
            SinkKind::GoogleSheets(_) => "google_sheets",
        }
    }

    /// Key result id → target (goal gid, page id), for kinds that update one object per key
    /// result.
    pub fn targets(&self) -> Option<(&'static str, &BTreeMap<String, String>)> {
        match self {
            SinkKind::AsanaGoal(a) => Some(("goals", &a.goals)),
            SinkKind::Notion(n) => Some(("pages", &n.pages)),
            // Without a log tab, a key result's only place in the sheet is its cell.
            SinkKind::GoogleSheets(g) if g.log_tab.is_none() => Some(("cells", &g.cells)),
            _ => None,
        }
    }
}

/// `asana_goal`: sets the current value of a goal's metric per key result.
#[derive(Debug, Clone)]
pub struct AsanaGoalSettings {
    /// A personal access token (Asana: My settings → Apps → Developer apps).
    pub token: SecretString,
    /// `https://app.asana.com/api/1.0`, or a test server.
    pub api_base: reqwest::Url,
    /// Key result id → goal gid (the number in the goal's URL).
    pub goals: BTreeMap<String, String>,
}

/// `google_sheets`: writes each key result's value to its cell and/or appends each check-in as
/// a row of a log tab, as a Google service account the spreadsheet is shared with.
#[derive(Debug, Clone)]
pub struct GoogleSheetsSettings {
    /// The service-account JSON key (`credentials` / `_env` / `_file`).
    pub key: super::ServiceAccountKey,
    /// `https://sheets.googleapis.com`, or a test server.
    pub api_base: reqwest::Url,
    /// The id in the spreadsheet's URL (`/spreadsheets/d/<id>/edit`).
    pub spreadsheet_id: String,
    /// Key result id → the A1 cell its current value is written to (`OKRs!C2`).
    pub cells: BTreeMap<String, String>,
    /// A tab receiving one row per check-in: time, key result, value, progress, status.
    pub log_tab: Option<String>,
}

/// `notion`: sets a number property of one page (a database row) per key result.
#[derive(Debug, Clone)]
pub struct NotionSettings {
    /// An internal integration secret (notion.so/my-integrations), shared with each page.
    pub token: SecretString,
    /// `https://api.notion.com`, or a test server.
    pub api_base: reqwest::Url,
    /// The page property (type Number) that receives the value.
    pub property: String,
    /// Key result id → page id (32 hex digits, from the page's URL).
    pub pages: BTreeMap<String, String>,
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
                if let Some(u) = url.as_ref().filter(|u| !super::is_unresolved(u)) {
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
            Some("asana_goal") => {
                self.unknown_keys(
                    prefix,
                    obj,
                    &[&common[..], &["token", "api_base", "goals"]].concat(),
                );
                let token = self.secret(obj, prefix, "token");
                let api_base = self.api_base(obj, prefix, ASANA_API_BASE, "the access token");
                let goals = self.target_map(obj, prefix, "goals", "an Asana goal gid", |g| {
                    (!g.is_empty() && g.bytes().all(|b| b.is_ascii_digit())).then(|| g.to_string())
                });
                SinkKind::AsanaGoal(AsanaGoalSettings {
                    token: token?,
                    api_base: api_base?,
                    goals: goals?,
                })
            }
            Some("notion") => {
                self.unknown_keys(
                    prefix,
                    obj,
                    &[&common[..], &["token", "api_base", "property", "pages"]].concat(),
                );
                let token = self.secret(obj, prefix, "token");
                let api_base =
                    self.api_base(obj, prefix, NOTION_API_BASE, "the integration secret");
                let property = self.string(obj, prefix, "property", true);
                let pages =
                    self.target_map(obj, prefix, "pages", "a Notion page id", notion_page_id);
                SinkKind::Notion(NotionSettings {
                    token: token?,
                    api_base: api_base?,
                    property: property?,
                    pages: pages?,
                })
            }
            Some("google_sheets") => {
                self.unknown_keys(
                    prefix,
                    obj,
                    &[
                        &common[..],
                        &[
                            "credentials",
                            "api_base",
                            "spreadsheet_id",
                            "cells",
                            "log_tab",
                        ],
                    ]
                    .concat(),
                );
                let api_base = self.api_base(obj, prefix, SHEETS_API_BASE, "the access token");
                let spreadsheet_id = self.string(obj, prefix, "spreadsheet_id", true);
                let log_tab = self.string(obj, prefix, "log_tab", false);
                let cells = if obj.contains_key("cells") || log_tab.is_none() {
                    self.target_map(obj, prefix, "cells", "an A1 cell such as OKRs!C2", |c| {
                        (c.contains('!') && !c.starts_with('!') && !c.ends_with('!'))
                            .then(|| c.to_string())
                    })
                } else {
                    Some(BTreeMap::new())
                };
                let json = self.secret(obj, prefix, "credentials")?;
                let used = ["credentials_file", "credentials_env", "credentials"]
                    .into_iter()
                    .find(|k| obj.contains_key(*k))
                    .unwrap_or("credentials");
                let key = match super::parse_service_account_or_unresolved(&json) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        self.problem(format!("{prefix}.{used}"), e);
                        None
                    }
                };
                SinkKind::GoogleSheets(GoogleSheetsSettings {
                    key: key?,
                    api_base: api_base?,
                    spreadsheet_id: spreadsheet_id?,
                    cells: cells?,
                    log_tab,
                })
            }
            Some("perdoo") => {
                self.problem(format!("{prefix}.kind"), PERDOO_REFUSAL);
                return None;
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

    /// `api_base` (default `default`), without a trailing slash; plain http only to loopback.
    fn api_base(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        default: &str,
        what: &str,
    ) -> Option<reqwest::Url> {
        let raw = self
            .string(obj, prefix, "api_base", false)
            .unwrap_or_else(|| default.to_string());
        match reqwest::Url::parse(raw.trim_end_matches('/')) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if let Err(e) = refuse_plain_http(&u, what) {
                    self.problem(format!("{prefix}.api_base"), e);
                    return None;
                }
                Some(u)
            }
            _ => {
                self.problem(
                    format!("{prefix}.api_base"),
                    format!("`{raw}` must be an https:// URL (default {default})"),
                );
                None
            }
        }
    }

    /// A required table key result id → target id (`goals`, `pages`), each value checked by
    /// `parse` (which returns the canonical id).
    fn target_map(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<String>,
    ) -> Option<BTreeMap<String, String>> {
        let Some(table) = obj.get(key).and_then(Json::as_object) else {
            self.problem(
                format!("{prefix}.{key}"),
                format!("missing (required): a table key result id → {what}, e.g. {key} = {{ \"my-key-result\" = \"…\" }}"),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (kr, v) in table {
            let text = match v {
                Json::String(s) => s.trim().to_string(),
                Json::Number(n) => n.to_string(),
                _ => String::new(),
            };
            match parse(&text) {
                Some(id) => {
                    out.insert(kr.clone(), id);
                }
                None => {
                    ok = false;
                    self.problem(
                        format!("{prefix}.{key}.{kr}"),
                        format!("`{text}` is not {what}"),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// Every key result pushed to a sink that updates one object per key result (Asana goal,
    /// Notion page) has its target in the sink's table, and every entry of the table names a
    /// key result pushed to it.
    pub(super) fn sink_targets(
        &mut self,
        top: &Map<String, Json>,
        sinks: &[SinkSettings],
        key_results: &[super::KeyResultSettings],
    ) {
        for s in sinks {
            let Some((key, map)) = s.kind.targets() else {
                continue;
            };
            // The index of this sink in the file (invalid sinks are not in `sinks`).
            let i = top
                .get("sinks")
                .and_then(Json::as_array)
                .and_then(|a| {
                    a.iter().position(|t| {
                        t.get("name").and_then(Json::as_str).map(str::trim) == Some(&s.name)
                    })
                })
                .unwrap_or_default();
            for kr in key_results.iter().filter(|k| k.sinks.contains(&s.name)) {
                if !map.contains_key(&kr.id) {
                    self.problem(
                        format!("sinks[{i}].{key}"),
                        format!(
                            "key result `{}` is pushed to sink `{}` but has no entry here: add \"{}\" = \"…\"",
                            kr.id, s.name, kr.id
                        ),
                    );
                }
            }
            for kr in map.keys() {
                if !key_results
                    .iter()
                    .any(|k| &k.id == kr && k.sinks.contains(&s.name))
                {
                    self.problem(
                        format!("sinks[{i}].{key}.{kr}"),
                        format!(
                            "no key result `{kr}` lists sink `{}` in its `sinks`",
                            s.name
                        ),
                    );
                }
            }
        }
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

/// A Notion page id from an id (with or without hyphens) or a page URL: its last 32 hex
/// digits, hyphenated 8-4-4-4-12 as the API writes them.
pub fn notion_page_id(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let hex: Vec<char> = path.chars().filter(|c| *c != '-').collect();
    if hex.len() < 32 {
        return None;
    }
    let tail: String = hex[hex.len() - 32..].iter().collect();
    if !tail.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    // A bare id is only hex; a URL ends in `…-<id>` or `/<id>`.
    let head: String = hex[..hex.len() - 32].iter().collect();
    if !(head.is_empty() || head.ends_with('/') || path.contains("://")) {
        return None;
    }
    let t = tail.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &t[..8],
        &t[8..12],
        &t[12..16],
        &t[16..20],
        &t[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perdoo_sink_is_refused_pointing_to_the_readme_section() {
        let toml = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[sinks]]
name = "okrs"
kind = "perdoo"
"#;
        let err = crate::config::load_from_str(
            toml,
            std::path::Path::new("."),
            None,
            &Default::default(),
        )
        .unwrap_err();
        let p = err
            .0
            .iter()
            .find(|p| p.key == "sinks[0].kind")
            .unwrap_or_else(|| panic!("{err}"));
        assert_eq!(p.message, PERDOO_REFUSAL);
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains("### Perdoo (through Zapier or Make)"),
            "the README section the error points to exists"
        );
    }

    #[test]
    fn notion_page_ids_come_from_ids_or_urls() {
        let id = "1429989fe8ac4effbc8f57f56486db54";
        let want = Some("1429989f-e8ac-4eff-bc8f-57f56486db54".to_string());
        assert_eq!(notion_page_id(id), want);
        assert_eq!(notion_page_id("1429989f-e8ac-4eff-bc8f-57f56486db54"), want);
        assert_eq!(
            notion_page_id(&format!(
                "https://www.notion.so/acme/Q1-conversion-{id}?pvs=4"
            )),
            want
        );
        assert_eq!(notion_page_id("1234"), None);
        assert_eq!(notion_page_id(&format!("x{id}")), None);
    }
}
