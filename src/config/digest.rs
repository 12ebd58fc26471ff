//! `[digest]`: the weekly digest (a cron schedule and the sinks it goes to). Kept apart from
//! `[[sinks]]` and `[[key_results]]` so each section stays in its own file.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde_json::{Map, Value as Json};

use super::{SinkKind, SinkSettings, Validator};

/// Monday 08:00 UTC (the cron crate's format has a seconds field).
pub const DEFAULT_DIGEST_SCHEDULE: &str = "0 0 8 * * Mon";
/// How many key results the digest lists as "moved most", unless `top_movers` says otherwise.
pub const DEFAULT_TOP_MOVERS: u64 = 3;

/// A key result id okrsync reserves: the digest's line in the outbox
/// (`store::DIGEST_KEY_RESULT`).
pub const RESERVED_KEY_RESULT_ID: &str = "(digest)";

/// The digest: every key result per objective, with its change since the previous digest.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// Cron schedule (sec min hour dom mon dow), evaluated in UTC like store schedules.
    pub schedule: cron::Schedule,
    /// The `[[sinks]]` names it is sent to (validated: each exists and can take a digest).
    pub sinks: Vec<String>,
    /// How many key results "moved most" lists (0 leaves the list out).
    pub top_movers: usize,
}

/// Whether a sink kind can take a digest, and why not.
pub fn digest_refusal(kind: &SinkKind) -> Option<String> {
    match kind {
        SinkKind::Webhook(_) | SinkKind::Slack(_) => None,
        SinkKind::GoogleSheets(g) if g.log_tab.is_some() => None,
        SinkKind::GoogleSheets(_) => Some(
            "a google_sheets sink takes the digest as rows of its `log_tab`, and this one has none: set `log_tab` or remove it from digest.sinks".into(),
        ),
        SinkKind::AsanaGoal(_) | SinkKind::Notion(_) => Some(format!(
            "a digest does not apply to a `{}` sink (it holds one number per key result, which check-ins keep current): remove it from digest.sinks",
            kind.name()
        )),
    }
}

impl Validator<'_> {
    /// Parses `[digest]`, if present, against the configured sinks.
    pub(super) fn digest(
        &mut self,
        top: &Map<String, Json>,
        sinks: &[SinkSettings],
        sink_names: &BTreeSet<String>,
        key_result_ids: &BTreeSet<String>,
    ) -> Option<DigestSettings> {
        if key_result_ids.contains(RESERVED_KEY_RESULT_ID) {
            self.problem(
                "key_results",
                format!("`{RESERVED_KEY_RESULT_ID}` cannot be a key result id (okrsync reserves it for the digest)"),
            );
        }
        let raw = top.get("digest")?;
        let prefix = "digest";
        let Some(obj) = raw.as_object() else {
            self.problem(prefix, "expected a table");
            return None;
        };
        self.unknown_keys(prefix, obj, &["schedule", "sinks", "top_movers"]);
        let text = self
            .string(obj, prefix, "schedule", false)
            .unwrap_or_else(|| DEFAULT_DIGEST_SCHEDULE.to_string());
        let schedule = match cron::Schedule::from_str(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(
                    "digest.schedule",
                    format!(
                        "`{text}` is not a valid cron schedule ({}); six fields: sec min hour day-of-month month day-of-week, e.g. `{DEFAULT_DIGEST_SCHEDULE}` (Mondays 08:00 UTC)",
                        super::cron_error(&e)
                    ),
                );
                None
            }
        };
        let names = self.string_list(obj, prefix, "sinks").unwrap_or_default();
        if names.is_empty() {
            self.problem(
                "digest.sinks",
                "missing (required): the [[sinks]] names the digest goes to, e.g. sinks = [\"slack\"]",
            );
        }
        for (i, n) in names.iter().enumerate() {
            let key = format!("digest.sinks[{i}]");
            match sinks.iter().find(|s| &s.name == n) {
                Some(s) => {
                    if let Some(why) = digest_refusal(&s.kind) {
                        self.problem(key, format!("sink `{n}`: {why}"));
                    }
                }
                // A sink with problems of its own is reported there.
                None if sink_names.contains(n) => {}
                None => self.problem(
                    key,
                    format!(
                        "no sink named `{n}` (configured: {})",
                        sinks
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        let top_movers = self.uint_in(obj, prefix, "top_movers", DEFAULT_TOP_MOVERS, (0, 50));
        Some(DigestSettings {
            schedule: schedule?,
            sinks: names,
            top_movers: top_movers as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_from_str;

    const BASE: &str = r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[sinks]]
name = "goals"
kind = "asana_goal"
token = "t"
goals = { }

[[sinks]]
name = "hook"
kind = "webhook"
url = "https://example.com/okr"
"#;

    fn problems(extra: &str) -> Vec<(String, String)> {
        match load_from_str(
            &format!("{BASE}{extra}"),
            std::path::Path::new("."),
            None,
            &Default::default(),
        ) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|p| (p.key, p.message)).collect(),
        }
    }

    #[test]
    fn digest_sinks_must_exist_and_take_a_digest_and_the_schedule_parse() {
        let p = problems(
            "[digest]\nschedule = \"every monday\"\nsinks = [\"hook\", \"goals\", \"nope\"]\n",
        );
        let find = |k: &str| {
            p.iter()
                .find(|(key, _)| key == k)
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| panic!("no problem at {k}: {p:?}"))
        };
        assert!(find("digest.schedule").contains("not a valid cron schedule"));
        assert!(find("digest.sinks[1]").contains("does not apply to a `asana_goal` sink"));
        assert!(find("digest.sinks[2]").contains("no sink named `nope`"));
        assert!(!p.iter().any(|(k, _)| k == "digest.sinks[0]"), "{p:?}");

        let ok = load_from_str(
            &format!("{BASE}[digest]\nsinks = [\"hook\"]\n"),
            std::path::Path::new("."),
            None,
            &Default::default(),
        );
        // Only the empty goal table of the unused asana sink may remain a problem.
        let digest_problems: Vec<_> = match &ok {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().filter(|p| p.key.starts_with("digest")).collect(),
        };
        assert!(digest_problems.is_empty(), "{digest_problems:?}");
    }
}
