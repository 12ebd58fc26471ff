//! Settings: loaded by the `config` crate from a TOML file plus `OKRSYNC__SECTION__KEY`
//! environment overrides, then validated into typed [`Settings`].
//!
//! Validation collects every problem before failing, each naming its key
//! (`stores[0].schedule: …`), so `okrsync check` can print them all at once. This is the only
//! module that reads configuration files, secret files and environment variables; tests build
//! settings by calling [`load_from_str`] with an explicit environment.

mod analytics;
mod digest;
mod secret;
mod sinks;

pub(crate) use analytics::parse_service_account_or_unresolved;
pub use analytics::{
    AnalyticsSettings, DEFAULT_ANALYTICS_SCHEDULE, Ga4Settings, MatomoSettings, PageSpeedSettings,
    PlausibleSettings, ProviderSettings, ServiceAccountKey, ShopifySessionsSettings,
    WooReviewsSettings, parse_service_account,
};

pub use digest::{DEFAULT_DIGEST_SCHEDULE, DigestSettings, RESERVED_KEY_RESULT_ID, digest_refusal};
pub use secret::{ExposeSecret, SecretString, check_private};
pub use sinks::{
    ASANA_API_BASE, AsanaGoalSettings, DEFAULT_RETRY_MAX_SECONDS, GoogleSheetsSettings,
    NOTION_API_BASE, NotionSettings, SHEETS_API_BASE, SINK_KINDS, SinkKind, SinkSettings,
    SlackSettings, WebhookSettings, notion_page_id,
};

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value as Json};

use crate::domain::StoreTz;
use crate::kpi::{KpiId, KpiSpec, WindowSpec};
use crate::okr::Direction;

/// The default sync schedule: every 15 minutes (the cron crate's format has a seconds field).
pub const DEFAULT_SCHEDULE: &str = "0 */15 * * * *";

/// Keys that hold secrets: given inline, as `<key>_env` or as `<key>_file`.
pub const SECRET_KEYS: &[&str] = &[
    "consumer_key",
    "consumer_secret",
    "access_token",
    "client_secret",
    "secret",
    "webhook_secret",
    "token",
    "api_key",
    "credentials",
];

/// Validated settings for the whole process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Things worth telling the user that are not errors (sections a later version handles).
    pub notes: Vec<String>,
    /// Secrets given as `<key>_env` / `<key>_file` that could not be read, each naming its key.
    /// Always empty when loaded with [`SecretUse::Resolve`]; with [`SecretUse::Defer`] their
    /// values are empty placeholders, which must never reach a store or service
    /// ([`Settings::require_secrets`]).
    pub unresolved_secrets: Vec<Problem>,
    pub database: DatabaseSettings,
    pub stores: Vec<StoreSettings>,
    pub key_results: Vec<KeyResultSettings>,
    /// Analytics and site sources (`[[analytics]]`).
    pub analytics: Vec<AnalyticsSettings>,
    /// Where check-ins are pushed (`[[sinks]]`).
    pub sinks: Vec<SinkSettings>,
    /// The status server (`[http]`); `None` when `listen` is not set (off).
    pub http: Option<HttpSettings>,
    /// The weekly digest (`[digest]`); `None` when not configured.
    pub digest: Option<DigestSettings>,
}

/// The status server (`[http]`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where it listens; a loopback address unless a `token` is set.
    pub listen: std::net::SocketAddr,
    /// Bearer token every request must carry (`Authorization: Bearer …`); required for a
    /// non-loopback `listen`.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// SQLite file; relative paths are resolved against the config file's directory.
    pub path: PathBuf,
}

/// One store okrsync syncs.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Unique name, used by `--store` and by key results.
    pub name: String,
    pub platform: PlatformSettings,
    /// Cron schedule (sec min hour dom mon dow), evaluated in UTC.
    pub schedule: cron::Schedule,
    /// Overrides the time zone read from the store.
    pub timezone: Option<StoreTz>,
    /// Extra CA certificate (PEM) trusted for this store's API (self-hosted stores).
    pub tls_ca_file: Option<PathBuf>,
    /// How far before the cursor each incremental run re-reads (default 10 minutes).
    pub lookback: chrono::Duration,
    /// Per-request timeout.
    pub timeout: std::time::Duration,
    /// Retries per request for timeouts, 429 and 5xx answers.
    pub max_retries: u32,
    /// First backoff between retries (doubles per attempt, capped at a minute).
    pub retry_base: std::time::Duration,
    /// The largest response body read (`max_response_mb`); a larger one fails the request.
    pub max_response_bytes: u64,
}

/// Platform-specific settings.
// One value per configured store, built once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PlatformSettings {
    WooCommerce(WooSettings),
    Shopify(Box<ShopifySettings>),
}

/// The Shopify Admin API version used when `api_version` is not set. Shopify supports each
/// stable version for at least twelve months; see `docs/shopify.md` for how to bump it.
pub const DEFAULT_SHOPIFY_API_VERSION: &str = "2025-10";

/// Allowed `timeout_seconds` (per request): at least a second, at most an hour.
pub const TIMEOUT_SECONDS_RANGE: (u64, u64) = (1, 3600);
/// Allowed `max_retries` (retries per request after the first attempt).
pub const MAX_RETRIES_RANGE: (u64, u64) = (0, 20);
/// Allowed `retry_backoff_ms` (the first backoff; backoffs are capped at a minute anyway).
pub const RETRY_BACKOFF_MS_RANGE: (u64, u64) = (0, 60_000);

/// Allowed `max_response_mb` (the largest response body read, in MiB) and its default: far
/// above any API page okrsync asks for (a WooCommerce page of 100 orders is a few hundred KB),
/// low enough that an endless answer cannot exhaust memory. Shopify bulk results are streamed
/// line by line and are not bounded by it.
pub const MAX_RESPONSE_MB_RANGE: (u64, u64) = (1, 4096);
pub const DEFAULT_MAX_RESPONSE_MB: u64 = 64;

/// Allowed `max_concurrency` (WooCommerce listing pages in flight at once) and its default.
pub const MAX_CONCURRENCY_RANGE: (u64, u64) = (1, 16);
pub const DEFAULT_MAX_CONCURRENCY: u64 = 4;

/// Orders above which a first sync reads through a bulk operation instead of paging.
pub const DEFAULT_BULK_THRESHOLD: u64 = 150;

/// Deleted-order reconciliation runs daily at 03:30 UTC unless `reconcile_schedule` says otherwise.
pub const DEFAULT_RECONCILE_SCHEDULE: &str = "0 30 3 * * *";

#[derive(Debug, Clone)]
pub struct ShopifySettings {
    /// Base URL of the shop (`https://my-store.myshopify.com`); the API lives at
    /// `<shop>/admin/api/<api_version>/graphql.json`.
    pub shop: reqwest::Url,
    /// How okrsync gets its Admin API access token.
    pub auth: ShopifyAuth,
    pub api_version: String,
    /// Orders (counted by `ordersCount`) above which a first sync uses a bulk operation.
    pub bulk_threshold: u64,
    /// When deleted-order reconciliation runs (at most once per due time, at the next sync).
    pub reconcile_schedule: cron::Schedule,
}

/// Shopify credentials: a fixed token, or an app's client id and secret exchanged for
/// expiring tokens (client-credentials grant, for Dev Dashboard apps).
#[derive(Debug, Clone)]
pub enum ShopifyAuth {
    /// `access_token`: an Admin API access token (`shpat_…`) of a legacy custom app.
    Token(SecretString),
    /// `client_id` + `client_secret`: exchanged at `<shop>/admin/oauth/access_token`.
    ClientCredentials {
        client_id: SecretString,
        client_secret: SecretString,
    },
}

/// How credentials travel to a WooCommerce store over `https://`. Over `http://` okrsync
/// always signs with OAuth 1.0a, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WooAuth {
    /// HTTP Basic (the default).
    Basic,
    /// `consumer_key`/`consumer_secret` query parameters, for hosts that strip `Authorization`.
    Query,
}

#[derive(Debug, Clone)]
pub struct WooSettings {
    /// Site URL; the API lives at `<url>/wp-json/wc/v3`.
    pub url: reqwest::Url,
    pub consumer_key: SecretString,
    pub consumer_secret: SecretString,
    pub auth: WooAuth,
    /// When set, only these statuses count as sales.
    pub counted_statuses: Option<Vec<String>>,
    /// Statuses that never count (default: pending, failed, cancelled, checkout-draft, trash).
    pub excluded_statuses: Vec<String>,
    /// When deleted-order reconciliation runs (at most once per due time, at the next sync).
    pub reconcile_schedule: cron::Schedule,
    /// Listing pages requested at once during a backfill (`max_concurrency`, default 4; 1 reads
    /// one page at a time). Halved on 429/5xx answers and grown back one by one.
    pub max_concurrency: usize,
}

/// The WooCommerce statuses that do not count as sales by default (`docs/kpis.md`).
pub const DEFAULT_EXCLUDED_STATUSES: &[&str] =
    &["pending", "failed", "cancelled", "checkout-draft", "trash"];

impl WooSettings {
    /// Whether an order with this status counts as a sale under this store's rules.
    pub fn counts(&self, status: &str) -> bool {
        if status == "trash" {
            return false;
        }
        match &self.counted_statuses {
            Some(list) => list.iter().any(|s| s == status),
            None => !self.excluded_statuses.iter().any(|s| s == status),
        }
    }
}

/// Which stores a key result reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSelector {
    All,
    Named(String),
}

/// One key result linked to a KPI.
#[derive(Debug, Clone)]
pub struct KeyResultSettings {
    pub id: String,
    pub objective: String,
    pub title: String,
    pub kpi: KpiSpec,
    pub store: StoreSelector,
    pub window: WindowSpec,
    pub baseline: Decimal,
    pub target: Decimal,
    pub direction: Direction,
    /// Names of the `[[sinks]]` each check-in is pushed to (validated: every name exists).
    pub sinks: Vec<String>,
    /// `baseline_window` + a relative `target` (`"+10%"`): `baseline` and `target` above are
    /// placeholders (0) until computed, once per period, from the KPI over that window.
    pub relative: Option<RelativeTarget>,
}

/// A target relative to a baseline computed over a window (`baseline_window =
/// "previous_quarter"`, `target = "+10%"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativeTarget {
    /// The window the baseline is computed over, resolved on the first day of the key
    /// result's period.
    pub baseline_window: WindowSpec,
    /// The change as a fraction: 0.10 for `"+10%"`, −0.05 for `"-5%"`.
    pub change: Decimal,
    /// The target as written (`"+10%"`).
    pub written: String,
}

impl StoreSettings {
    /// Which shop this is, independent of scheme and trailing slash (`shop.example.com/blog`,
    /// `my-store.myshopify.com`): the data of one store name must all come from one shop.
    pub fn identity(&self) -> String {
        let url = match &self.platform {
            PlatformSettings::WooCommerce(w) => &w.url,
            PlatformSettings::Shopify(s) => &s.shop,
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{host}{port}{}", url.path().trim_end_matches('/'))
    }

    /// The platform name used in the sync log.
    pub fn platform_name(&self) -> &'static str {
        match &self.platform {
            PlatformSettings::WooCommerce(_) => "woocommerce",
            PlatformSettings::Shopify(_) => "shopify",
        }
    }
}

impl Settings {
    /// Fails, naming each key, when a secret could not be read (only possible for settings
    /// loaded with [`SecretUse::Defer`]). Whatever contacts a store or service after such a
    /// load calls this first.
    pub fn require_secrets(&self) -> Result<(), ConfigErrors> {
        if self.unresolved_secrets.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.unresolved_secrets.clone()))
        }
    }

    /// The store with this name.
    pub fn store(&self, name: &str) -> Option<&StoreSettings> {
        self.stores.iter().find(|s| s.name == name)
    }

    /// The analytics source with this name.
    pub fn analytics_source(&self, name: &str) -> Option<&AnalyticsSettings> {
        self.analytics.iter().find(|a| a.name == name)
    }
}

/// One configuration problem, naming the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "configuration has {}:",
            crate::text::plural(n as u64, "problem")
        )?;
        for p in &self.0 {
            if p.key.is_empty() {
                writeln!(f, "  - {}", p.message)?;
            } else {
                writeln!(f, "  - {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// When the secrets given as `<key>_env` / `<key>_file` are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretUse {
    /// Now: an unset variable or unreadable file is a problem (commands that contact a store
    /// or service: `sync`, `run`, `push`, and `check`, which reports it).
    Resolve,
    /// Only the shape is checked now; a secret that cannot be read is listed in
    /// [`Settings::unresolved_secrets`] instead (commands that only read the database:
    /// `krs`, `kpis`, `logs`, `history`, …, so that the owner of a service whose secrets live
    /// in the service's environment can still look at its figures).
    Defer,
}

/// Loads settings from `path` with overrides from `env` (normally `std::env::vars()`),
/// reading every secret ([`SecretUse::Resolve`]).
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Settings, ConfigErrors> {
    load_with(path, env, SecretUse::Resolve)
}

/// [`load`], with secrets read now or deferred (`secrets`).
pub fn load_with(
    path: &Path,
    env: &HashMap<String, String>,
    secrets: SecretUse,
) -> Result<Settings, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![Problem {
            key: String::new(),
            message: format!(
                "cannot read config file {}: {e} (pass --config FILE; config/okrsync.example.toml documents every key)",
                path.display()
            ),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_from_str_with(&text, &base, Some(path), env, secrets)
}

/// Loads settings from TOML text. `base_dir` resolves relative paths; `file`, when given, is
/// checked for group/world readability if it holds inline secrets.
pub fn load_from_str(
    text: &str,
    base_dir: &Path,
    file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Settings, ConfigErrors> {
    load_from_str_with(text, base_dir, file, env, SecretUse::Resolve)
}

/// [`load_from_str`], with secrets read now or deferred (`secrets`).
pub fn load_from_str_with(
    text: &str,
    base_dir: &Path,
    file: Option<&Path>,
    env: &HashMap<String, String>,
    secrets: SecretUse,
) -> Result<Settings, ConfigErrors> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    let mut overrides: Vec<(String, String)> = env
        .iter()
        .filter_map(|(k, v)| env_key_to_path(k).map(|p| (p, v.clone())))
        .collect();
    overrides.sort();
    let mut problems = Vec::new();
    for (path, value) in &overrides {
        match builder.set_override(path.as_str(), value.as_str()) {
            Ok(b) => builder = b,
            Err(e) => {
                problems.push(Problem {
                    key: path.clone(),
                    message: format!("bad environment override: {e}"),
                });
                return Err(ConfigErrors(problems));
            }
        }
    }
    let raw: Json = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| {
            ConfigErrors(vec![Problem {
                key: String::new(),
                message: format!("cannot parse configuration: {e}"),
            }])
        })?;
    let mut v = Validator {
        problems,
        env,
        base_dir,
        inline_secrets: false,
        notes: Vec::new(),
        secrets,
        unresolved: Vec::new(),
        secret_reads: BTreeSet::new(),
        indirect: Vec::new(),
    };
    let settings = v.settings(&raw);
    v.judge_indirect();
    if v.inline_secrets
        && let Some(f) = file
        && let Err(msg) = check_private(f)
    {
        v.problem("", msg);
    }
    match settings {
        Some(s) if v.problems.is_empty() => Ok(s),
        _ => Err(ConfigErrors(v.problems)),
    }
}

/// `stores[0]` + `url` → `stores[0].url`; a top-level key stays as it is.
fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The candidate nearest to `word` by edit distance, when near enough to be a typo (at most
/// a third of the word's length, and at least 1, 2 from 6 letters on).
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(if word.len() >= 6 { 2 } else { 1 });
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Edit distance over characters: insertions, deletions, substitutions and swaps of two
/// neighbours (`paht` → `path` is 1), as typos are made.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Whether `s` is the empty stand-in for a secret that could not be read under
/// [`SecretUse::Defer`] (a secret that was read is never empty).
pub(crate) fn is_unresolved(s: &SecretString) -> bool {
    s.expose_secret().is_empty()
}

/// The cron crate's error on one line (it prints the input and a caret on separate lines).
pub(crate) fn cron_error(e: &cron::error::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(": ")
}

/// `OKRSYNC__STORES__0__URL` → `stores[0].url`; other variables → `None`.
fn env_key_to_path(key: &str) -> Option<String> {
    let rest = key.strip_prefix("OKRSYNC__")?;
    let mut path = String::new();
    for part in rest.split("__") {
        if part.is_empty() {
            return None;
        }
        if part.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part.to_ascii_lowercase());
        }
    }
    Some(path)
}

struct Validator<'a> {
    problems: Vec<Problem>,
    env: &'a HashMap<String, String>,
    base_dir: &'a Path,
    inline_secrets: bool,
    /// Notes for `Settings::notes` (sections a later version handles).
    notes: Vec<String>,
    secrets: SecretUse,
    /// Secrets that could not be read under [`SecretUse::Defer`].
    unresolved: Vec<Problem>,
    /// `(table, key)` of every key read as a secret: those may be given as `_env` / `_file`.
    secret_reads: BTreeSet<(String, String)>,
    /// `<key>_env` / `<key>_file` keys seen by [`Self::unknown_keys`] whose `<key>` is known:
    /// `(table, key as written, key)`, judged once every secret has been read.
    indirect: Vec<(String, String, String)>,
}

impl Validator<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn settings(&mut self, raw: &Json) -> Option<Settings> {
        let empty = Map::new();
        let top = raw.as_object().unwrap_or(&empty);
        self.unknown_keys(
            "",
            top,
            &[
                "database",
                "stores",
                "key_results",
                "sinks",
                "http",
                "analytics",
                "digest",
            ],
        );
        let db_obj = top.get("database").and_then(Json::as_object).cloned();
        if let Some(o) = &db_obj {
            self.unknown_keys("database", o, &["path"]);
        }
        let db_path = db_obj
            .as_ref()
            .and_then(|o| self.string(o, "database", "path", false))
            .unwrap_or_else(|| "okrsync.db".to_string());
        let database = DatabaseSettings {
            path: self.resolve_path(&db_path),
        };

        let mut stores = Vec::new();
        let mut names = BTreeSet::new();
        for (i, s) in self.array(top, "stores").iter().enumerate() {
            let key = format!("stores[{i}]");
            // Names count even when the rest of the store is invalid, so key results that
            // name it are not reported twice.
            if let Some(name) = s.get("name").and_then(Json::as_str)
                && !names.insert(name.trim().to_string())
            {
                self.problem(
                    format!("{key}.name"),
                    format!("store name `{name}` is used twice; names must be unique"),
                );
            }
            if let Some(store) = self.store(&key, s) {
                stores.push(store);
            }
        }
        if top.get("stores").is_none() {
            self.problem("stores", "no store configured: add a [[stores]] section");
        }

        let (sinks, sink_names) = self.sinks(top);
        let mut key_results = Vec::new();
        let mut kr_keys = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, k) in self.array(top, "key_results").iter().enumerate() {
            let key = format!("key_results[{i}]");
            if let Some(kr) = self.key_result(&key, k, &names, &sink_names) {
                kr_keys.push(key.clone());
                if !ids.insert(kr.id.clone()) {
                    self.problem(
                        format!("{key}.id"),
                        format!("key result id `{}` is used twice", kr.id),
                    );
                }
                key_results.push(kr);
            }
        }
        self.sink_targets(top, &sinks, &key_results);
        let analytics = self.analytics(top, &stores, &names);
        for (key, kr) in kr_keys.iter().zip(&key_results) {
            self.kpi_reportable(key, kr, &stores, &analytics);
        }
        let http = self.http(top);
        let digest = self.digest(top, &sinks, &sink_names, &ids);
        let notes = std::mem::take(&mut self.notes);
        let unresolved_secrets = std::mem::take(&mut self.unresolved);
        Some(Settings {
            notes,
            unresolved_secrets,
            database,
            stores,
            key_results,
            analytics,
            sinks,
            http,
            digest,
        })
    }

    fn array(&mut self, obj: &Map<String, Json>, key: &str) -> Vec<Json> {
        match obj.get(key) {
            None => Vec::new(),
            Some(Json::Array(a)) => a.clone(),
            Some(_) => {
                self.problem(key, format!("expected a list of [[{key}]] tables"));
                Vec::new()
            }
        }
    }

    /// `[http]`: the status server. Off unless `listen` is set; a non-loopback address needs a
    /// bearer `token` (else anyone on the network could read the shop's figures).
    fn http(&mut self, top: &Map<String, Json>) -> Option<HttpSettings> {
        let obj = match top.get("http") {
            None => return None,
            Some(Json::Object(o)) => o.clone(),
            Some(_) => {
                self.problem("http", "expected a table ([http])");
                return None;
            }
        };
        self.unknown_keys("http", &obj, &["listen", "token", "webhook_body_limit"]);
        if obj.contains_key("webhook_body_limit") {
            self.notes.push(
                "`http.webhook_body_limit` (store webhooks) is not supported by this version of okrsync yet and is ignored".into(),
            );
        }
        let token = if ["token", "token_env", "token_file"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            self.secret(&obj, "http", "token")
        } else {
            None
        };
        let listen = self.string(&obj, "http", "listen", false)?;
        let addr: std::net::SocketAddr = match listen.parse() {
            Ok(a) => a,
            Err(_) => {
                self.problem(
                    "http.listen",
                    format!(
                        "`{listen}` is not an address and port: write e.g. \"127.0.0.1:8080\" (or \"[::1]:8080\")"
                    ),
                );
                return None;
            }
        };
        if !addr.ip().is_loopback()
            && token.is_none()
            && !obj.contains_key("token")
            && !obj.contains_key("token_env")
            && !obj.contains_key("token_file")
        {
            self.problem(
                "http.listen",
                format!(
                    "`{listen}` is not a loopback address, so the status server would be open to the network: set http.token (or token_env / token_file) to require a bearer token, or listen on 127.0.0.1"
                ),
            );
            return None;
        }
        Some(HttpSettings {
            listen: addr,
            token,
        })
    }

    /// Reports every key of `obj` (the table `prefix`) that is not in `known`, with the
    /// closest known key when one is near. `<key>_env` / `<key>_file` of a known key is
    /// accepted only if `<key>` holds a secret (judged by [`Self::judge_indirect`]).
    fn unknown_keys(&mut self, prefix: &str, obj: &Map<String, Json>, known: &[&str]) {
        for k in obj.keys() {
            if known.contains(&k.as_str()) {
                continue;
            }
            let base = k.strip_suffix("_env").or_else(|| k.strip_suffix("_file"));
            if let Some(base) = base
                && known.contains(&base)
            {
                self.indirect
                    .push((prefix.to_string(), k.clone(), base.to_string()));
                continue;
            }
            let key = join_key(prefix, k);
            // Candidates: the known keys and the `_env` / `_file` forms of the secret ones.
            let mut candidates: Vec<String> = known.iter().map(|s| s.to_string()).collect();
            for s in known.iter().filter(|s| SECRET_KEYS.contains(s)) {
                candidates.push(format!("{s}_env"));
                candidates.push(format!("{s}_file"));
            }
            let message = match closest(k, &candidates) {
                Some(c) => format!(
                    "unknown key; did you mean `{c}`? (config/okrsync.example.toml documents every key)"
                ),
                None => format!(
                    "unknown key (known here: {}; config/okrsync.example.toml documents every key)",
                    known.join(", ")
                ),
            };
            self.problem(key, message);
        }
    }

    /// Judges the `<key>_env` / `<key>_file` keys [`Self::unknown_keys`] set aside: fine for
    /// a secret (a key read as one, or a credential name reserved for later such as
    /// `webhook_secret`), a problem for any other key (`url_env` on a store, `schedule_file`).
    fn judge_indirect(&mut self) {
        for (prefix, written, base) in std::mem::take(&mut self.indirect) {
            if SECRET_KEYS.contains(&base.as_str())
                || self.secret_reads.contains(&(prefix.clone(), base.clone()))
            {
                continue;
            }
            let how = if written.ends_with("_env") {
                "an environment variable"
            } else {
                "a file"
            };
            self.problem(
                join_key(&prefix, &written),
                format!(
                    "`{base}` is not a secret, so it cannot be read from {how}: write `{base} = …` in the config (or override it with OKRSYNC__… variables); only credentials take _env / _file"
                ),
            );
        }
    }

    fn string(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(key) {
            Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Json::String(_)) | None => {
                if required {
                    self.problem(format!("{prefix}.{key}"), "missing (required)");
                }
                None
            }
            Some(Json::Number(n)) => Some(n.to_string()),
            Some(Json::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                self.problem(format!("{prefix}.{key}"), "expected a string");
                None
            }
        }
    }

    fn decimal(&mut self, obj: &Map<String, Json>, prefix: &str, key: &str) -> Option<Decimal> {
        let text = match obj.get(key) {
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::String(s)) => s.trim().to_string(),
            None => {
                self.problem(format!("{prefix}.{key}"), "missing (required)");
                return None;
            }
            Some(_) => {
                self.problem(format!("{prefix}.{key}"), "expected a number");
                return None;
            }
        };
        match Decimal::from_str(&text).or_else(|_| Decimal::from_scientific(&text)) {
            Ok(d) => Some(d),
            Err(_) => {
                self.problem(
                    format!("{prefix}.{key}"),
                    format!("`{text}` is not a number"),
                );
                None
            }
        }
    }

    fn uint(&mut self, obj: &Map<String, Json>, prefix: &str, key: &str, default: u64) -> u64 {
        let text = match obj.get(key) {
            None => return default,
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::String(s)) => s.trim().to_string(),
            Some(_) => String::new(),
        };
        match text.parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                self.problem(
                    format!("{prefix}.{key}"),
                    format!("`{text}` is not a whole number ≥ 0"),
                );
                default
            }
        }
    }

    /// A whole number in `min..=max`; out of range is a problem naming the key and the range
    /// (never silently clamped).
    pub(crate) fn uint_in(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
        default: u64,
        (min, max): (u64, u64),
    ) -> u64 {
        let v = self.uint(obj, prefix, key, default);
        if v < min || v > max {
            self.problem(
                format!("{prefix}.{key}"),
                format!("{v} is out of range: allowed {min} to {max}"),
            );
            return default;
        }
        v
    }

    fn string_list(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        match obj.get(key) {
            None => None,
            Some(Json::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => out.push(s.trim().to_string()),
                        None => self.problem(format!("{prefix}.{key}[{i}]"), "expected a string"),
                    }
                }
                Some(out)
            }
            Some(Json::String(s)) => Some(
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
            ),
            Some(_) => {
                self.problem(format!("{prefix}.{key}"), "expected a list of strings");
                None
            }
        }
    }

    fn resolve_path(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        if path.is_absolute() {
            path
        } else {
            self.base_dir.join(path)
        }
    }

    /// A secret given as `key`, `key_env` or `key_file` (exactly one).
    fn secret(&mut self, obj: &Map<String, Json>, prefix: &str, key: &str) -> Option<SecretString> {
        self.secret_reads
            .insert((prefix.to_string(), key.to_string()));
        let env_key = format!("{key}_env");
        let file_key = format!("{key}_file");
        let given: Vec<&str> = [key, env_key.as_str(), file_key.as_str()]
            .into_iter()
            .filter(|k| obj.get(*k).is_some())
            .collect();
        if given.len() > 1 {
            self.problem(
                format!("{prefix}.{key}"),
                format!("give only one of {}", given.join(", ")),
            );
            return None;
        }
        if let Some(v) = obj.get(key) {
            return match v.as_str() {
                Some(s) if !s.trim().is_empty() => {
                    self.inline_secrets = true;
                    Some(SecretString::from(s.trim().to_string()))
                }
                _ => {
                    self.problem(format!("{prefix}.{key}"), "is empty");
                    None
                }
            };
        }
        if let Some(v) = obj.get(&env_key) {
            let var = v.as_str().unwrap_or_default().trim().to_string();
            if var.is_empty() {
                self.problem(
                    format!("{prefix}.{env_key}"),
                    "expected the name of an environment variable",
                );
                return None;
            }
            let read = secret::read_secret_env(self.env, &var);
            return self.read_or_defer(format!("{prefix}.{env_key}"), read);
        }
        if let Some(v) = obj.get(&file_key) {
            let raw = v.as_str().unwrap_or_default().trim();
            if raw.is_empty() {
                self.problem(format!("{prefix}.{file_key}"), "expected a file path");
                return None;
            }
            let path = self.resolve_path(raw);
            let creds = self.env.get("CREDENTIALS_DIRECTORY").map(PathBuf::from);
            let read = secret::read_secret_file(&path, creds.as_deref());
            return self.read_or_defer(format!("{prefix}.{file_key}"), read);
        }
        self.problem(
            format!("{prefix}.{key}"),
            format!("missing credential: set {key}, {env_key} (an environment variable name) or {file_key} (a path)"),
        );
        None
    }

    /// A rate KPI's numbers are fractions in [0, 1]: `18` for 18 % is refused with the
    /// fraction to write, in one problem naming the first such key.
    fn fraction_check(&mut self, prefix: &str, kpi: KpiId, numbers: &[(&str, Option<Decimal>)]) {
        if kpi.kind() != crate::kpi::ValueKind::Rate {
            return;
        }
        let outside: Vec<(&str, Decimal)> = numbers
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .filter(|(_, v)| *v < Decimal::ZERO || *v > Decimal::ONE)
            .collect();
        let Some((first, _)) = outside.first() else {
            return;
        };
        let all_percent = outside
            .iter()
            .all(|(_, v)| *v > Decimal::ONE && *v <= Decimal::ONE_HUNDRED);
        let written = outside
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.normalize()))
            .collect::<Vec<_>>()
            .join(", ");
        let message = if all_percent {
            let fixed = outside
                .iter()
                .map(|(k, v)| format!("{k} = {}", (*v / Decimal::ONE_HUNDRED).normalize()))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "`{}` is a fraction between 0 and 1 (0.18 for 18 %), but {written} looks like a percentage: write {fixed}",
                kpi.as_str()
            )
        } else {
            format!(
                "`{}` is a fraction between 0 and 1 (0.18 for 18 %); {written} is outside it",
                kpi.as_str()
            )
        };
        self.problem(format!("{prefix}.{first}"), message);
    }

    /// A key result whose KPI its store(s) can never report (a platform that does not have the
    /// data, no source linked for it) would stay null forever: a problem naming `kpi`.
    fn kpi_reportable(
        &mut self,
        prefix: &str,
        kr: &KeyResultSettings,
        stores: &[StoreSettings],
        analytics: &[AnalyticsSettings],
    ) {
        let selected: Vec<&StoreSettings> = stores
            .iter()
            .filter(|s| match &kr.store {
                StoreSelector::All => true,
                StoreSelector::Named(n) => &s.name == n,
            })
            .collect();
        let kpi = kr.kpi.id.as_str();
        let list = |v: &[&str]| {
            v.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if kr.kpi.id == KpiId::CartAbandonmentRate {
            let woo: Vec<&str> = selected
                .iter()
                .filter(|s| !matches!(s.platform, PlatformSettings::Shopify(_)))
                .map(|s| s.name.as_str())
                .collect();
            if !woo.is_empty() {
                self.problem(
                    format!("{prefix}.kpi"),
                    format!(
                        "`{kpi}` needs abandoned checkouts, which only Shopify reports; store {} is WooCommerce, so this key result would never have a value (link it to a Shopify store)",
                        list(&woo)
                    ),
                );
            }
        }
        if let Some(feed) = crate::kpi::feed_of(kr.kpi.id) {
            let unfed: Vec<&str> = selected
                .iter()
                .filter(|s| {
                    !analytics
                        .iter()
                        .any(|a| a.provider.feed() == feed && a.stores.contains(&s.name))
                })
                .map(|s| s.name.as_str())
                .collect();
            if !unfed.is_empty() {
                self.problem(
                    format!("{prefix}.kpi"),
                    format!(
                        "`{kpi}` needs data from the {} linked to its store, and store {} has none, so this key result would never have a value: add an [[analytics]] section with stores = [\"{}\"] (see the README, Analytics sources)",
                        feed.what(),
                        list(&unfed),
                        unfed[0]
                    ),
                );
            }
        }
    }

    /// A secret read from a variable or file; a failure is a problem, or under
    /// [`SecretUse::Defer`] an unresolved secret with an empty placeholder.
    fn read_or_defer(
        &mut self,
        key: String,
        read: Result<SecretString, String>,
    ) -> Option<SecretString> {
        match (read, self.secrets) {
            (Ok(s), _) => Some(s),
            (Err(e), SecretUse::Resolve) => {
                self.problem(key, e);
                None
            }
            (Err(e), SecretUse::Defer) => {
                self.unresolved.push(Problem { key, message: e });
                Some(SecretString::from(String::new()))
            }
        }
    }

    /// The required `name` of a store or source: not `all`, no spaces.
    pub(crate) fn name(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        what: &str,
    ) -> Option<String> {
        let name = self.string(obj, prefix, "name", true);
        if let Some(n) = &name
            && (n == "all" || n.contains(char::is_whitespace))
        {
            self.problem(
                format!("{prefix}.name"),
                format!("`{n}` cannot be a {what} name (reserved or contains spaces)"),
            );
        }
        name
    }

    fn store(&mut self, prefix: &str, raw: &Json) -> Option<StoreSettings> {
        let Some(obj) = raw.as_object() else {
            self.problem(prefix, "expected a table");
            return None;
        };
        let name = self.name(obj, prefix, "store");
        let platform_name = self.string(obj, prefix, "platform", true);
        let common = [
            "name",
            "platform",
            "schedule",
            "timezone",
            "tls_ca_file",
            "lookback_minutes",
            "timeout_seconds",
            "max_retries",
            "retry_backoff_ms",
            "max_response_mb",
            "webhook_secret",
        ];
        let platform = match platform_name.as_deref() {
            Some("woocommerce") => {
                let mut known = common.to_vec();
                known.extend([
                    "url",
                    "consumer_key",
                    "consumer_secret",
                    "auth",
                    "counted_statuses",
                    "excluded_statuses",
                    "reconcile_schedule",
                    "max_concurrency",
                ]);
                self.unknown_keys(prefix, obj, &known);
                self.woo(prefix, obj).map(PlatformSettings::WooCommerce)
            }
            Some("shopify") => {
                let mut known = common.to_vec();
                known.extend([
                    "shop",
                    "access_token",
                    "client_id",
                    "client_secret",
                    "api_version",
                    "bulk_threshold",
                    "reconcile_schedule",
                ]);
                self.unknown_keys(prefix, obj, &known);
                self.shopify(prefix, obj)
                    .map(|s| PlatformSettings::Shopify(Box::new(s)))
            }
            Some(other) => {
                self.problem(
                    format!("{prefix}.platform"),
                    format!("unknown platform `{other}` (expected `woocommerce` or `shopify`)"),
                );
                None
            }
            None => None,
        };
        let schedule_text = self
            .string(obj, prefix, "schedule", false)
            .unwrap_or_else(|| DEFAULT_SCHEDULE.to_string());
        let schedule = match cron::Schedule::from_str(&schedule_text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(
                    format!("{prefix}.schedule"),
                    format!(
                        "`{schedule_text}` is not a valid cron schedule ({}); six fields: sec min hour day-of-month month day-of-week, e.g. `{DEFAULT_SCHEDULE}`", cron_error(&e)
                    ),
                );
                None
            }
        };
        let timezone = match self.string(obj, prefix, "timezone", false) {
            Some(t) => match StoreTz::parse(&t) {
                Ok(tz) => Some(tz),
                Err(e) => {
                    self.problem(format!("{prefix}.timezone"), e);
                    None
                }
            },
            None => None,
        };
        let tls_ca_file = self
            .string(obj, prefix, "tls_ca_file", false)
            .map(|p| self.resolve_path(&p));
        if let Some(p) = &tls_ca_file
            && let Err(e) = std::fs::metadata(p)
        {
            self.problem(
                format!("{prefix}.tls_ca_file"),
                format!("cannot read {}: {e}", p.display()),
            );
        }
        let lookback = self.uint(obj, prefix, "lookback_minutes", 10);
        let timeout = self.uint_in(obj, prefix, "timeout_seconds", 30, TIMEOUT_SECONDS_RANGE);
        let max_retries = self.uint_in(obj, prefix, "max_retries", 5, MAX_RETRIES_RANGE) as u32;
        let retry_base = self.uint_in(
            obj,
            prefix,
            "retry_backoff_ms",
            1000,
            RETRY_BACKOFF_MS_RANGE,
        );
        let max_response_mb = self.uint_in(
            obj,
            prefix,
            "max_response_mb",
            DEFAULT_MAX_RESPONSE_MB,
            MAX_RESPONSE_MB_RANGE,
        );
        Some(StoreSettings {
            name: name?,
            platform: platform?,
            schedule: schedule?,
            timezone,
            tls_ca_file,
            lookback: chrono::Duration::minutes(lookback as i64),
            timeout: std::time::Duration::from_secs(timeout),
            max_retries,
            retry_base: std::time::Duration::from_millis(retry_base),
            max_response_bytes: max_response_mb << 20,
        })
    }

    /// `reconcile_schedule` (deleted-order reconciliation), default daily at 03:30 UTC.
    fn reconcile_schedule(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
    ) -> Option<cron::Schedule> {
        let text = self
            .string(obj, prefix, "reconcile_schedule", false)
            .unwrap_or_else(|| DEFAULT_RECONCILE_SCHEDULE.to_string());
        match cron::Schedule::from_str(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(
                    format!("{prefix}.reconcile_schedule"),
                    format!(
                        "`{text}` is not a valid cron schedule ({}); six fields, e.g. `{DEFAULT_RECONCILE_SCHEDULE}`",
                        cron_error(&e)
                    ),
                );
                None
            }
        }
    }

    fn woo(&mut self, prefix: &str, obj: &Map<String, Json>) -> Option<WooSettings> {
        let url =
            self.string(obj, prefix, "url", true)
                .and_then(|u| match reqwest::Url::parse(&u) {
                    Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                        Some(url)
                    }
                    Ok(_) => {
                        self.problem(
                            format!("{prefix}.url"),
                            format!("`{u}` must be an http:// or https:// site URL"),
                        );
                        None
                    }
                    Err(e) => {
                        self.problem(format!("{prefix}.url"), format!("`{u}` is not a URL: {e}"));
                        None
                    }
                });
        let consumer_key = self.secret(obj, prefix, "consumer_key");
        let consumer_secret = self.secret(obj, prefix, "consumer_secret");
        let auth = match self.string(obj, prefix, "auth", false).as_deref() {
            None | Some("basic") => WooAuth::Basic,
            Some("query") => WooAuth::Query,
            Some(other) => {
                self.problem(
                    format!("{prefix}.auth"),
                    format!("`{other}` is not `basic` or `query`"),
                );
                WooAuth::Basic
            }
        };
        let counted_statuses = self.string_list(obj, prefix, "counted_statuses");
        if counted_statuses.is_some() && obj.contains_key("excluded_statuses") {
            self.problem(
                format!("{prefix}.excluded_statuses"),
                "set either counted_statuses (only these count) or excluded_statuses (all but these count), not both",
            );
        }
        let excluded_statuses = self
            .string_list(obj, prefix, "excluded_statuses")
            .unwrap_or_else(|| {
                DEFAULT_EXCLUDED_STATUSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
        let reconcile_schedule = self.reconcile_schedule(obj, prefix);
        let max_concurrency = self.uint_in(
            obj,
            prefix,
            "max_concurrency",
            DEFAULT_MAX_CONCURRENCY,
            MAX_CONCURRENCY_RANGE,
        ) as usize;
        Some(WooSettings {
            max_concurrency,
            reconcile_schedule: reconcile_schedule?,
            url: url?,
            consumer_key: consumer_key?,
            consumer_secret: consumer_secret?,
            auth,
            counted_statuses,
            excluded_statuses,
        })
    }

    fn shopify(&mut self, prefix: &str, obj: &Map<String, Json>) -> Option<ShopifySettings> {
        let shop = self
            .string(obj, prefix, "shop", true)
            .and_then(|raw| match parse_shop(&raw) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.problem(format!("{prefix}.shop"), e);
                    None
                }
            });
        let has = |k: &str| {
            [k.to_string(), format!("{k}_env"), format!("{k}_file")]
                .iter()
                .any(|key| obj.get(key).is_some())
        };
        let auth = match (
            has("access_token"),
            has("client_id") || has("client_secret"),
        ) {
            (true, true) => {
                self.problem(
                    format!("{prefix}.access_token"),
                    "give either access_token or client_id + client_secret, not both",
                );
                None
            }
            (false, true) => {
                let client_id = self.string(obj, prefix, "client_id", true);
                let client_secret = self.secret(obj, prefix, "client_secret");
                match (client_id, client_secret) {
                    (Some(id), Some(secret)) => Some(ShopifyAuth::ClientCredentials {
                        client_id: SecretString::from(id),
                        client_secret: secret,
                    }),
                    _ => None,
                }
            }
            _ => self
                .secret(obj, prefix, "access_token")
                .map(ShopifyAuth::Token),
        };
        let api_version = self
            .string(obj, prefix, "api_version", false)
            .unwrap_or_else(|| DEFAULT_SHOPIFY_API_VERSION.to_string());
        let valid_version = api_version == "unstable"
            || (api_version.len() == 7
                && api_version.as_bytes()[4] == b'-'
                && api_version
                    .chars()
                    .enumerate()
                    .all(|(i, c)| i == 4 || c.is_ascii_digit()));
        if !valid_version {
            self.problem(
                format!("{prefix}.api_version"),
                format!("`{api_version}` is not a Shopify API version like `{DEFAULT_SHOPIFY_API_VERSION}`"),
            );
        }
        let bulk_threshold = self.uint(obj, prefix, "bulk_threshold", DEFAULT_BULK_THRESHOLD);
        let reconcile_schedule = self.reconcile_schedule(obj, prefix);
        Some(ShopifySettings {
            shop: shop?,
            auth: auth?,
            api_version,
            bulk_threshold,
            reconcile_schedule: reconcile_schedule?,
        })
    }

    fn key_result(
        &mut self,
        prefix: &str,
        raw: &Json,
        stores: &BTreeSet<String>,
        sinks: &BTreeSet<String>,
    ) -> Option<KeyResultSettings> {
        let Some(obj) = raw.as_object() else {
            self.problem(prefix, "expected a table");
            return None;
        };
        self.unknown_keys(
            prefix,
            obj,
            &[
                "id",
                "objective",
                "title",
                "kpi",
                "product",
                "store",
                "window",
                "baseline",
                "baseline_window",
                "target",
                "direction",
                "sinks",
            ],
        );
        let id = self.string(obj, prefix, "id", true);
        let objective = self
            .string(obj, prefix, "objective", false)
            .unwrap_or_default();
        let title = self.string(obj, prefix, "title", false);
        let product = self.string(obj, prefix, "product", false);
        let kpi = self
            .string(obj, prefix, "kpi", true)
            .and_then(|k| match KpiId::from_str(&k) {
                Ok(id) => {
                    if id.needs_product() && product.is_none() {
                        self.problem(
                            format!("{prefix}.product"),
                            format!("kpi `{k}` needs `product` (a product id or SKU)"),
                        );
                        None
                    } else {
                        Some(KpiSpec {
                            id,
                            product: product.clone(),
                        })
                    }
                }
                Err(e) => {
                    self.problem(format!("{prefix}.kpi"), e.to_string());
                    None
                }
            });
        let store = match self.string(obj, prefix, "store", false).as_deref() {
            None | Some("all") => Some(StoreSelector::All),
            Some(name) if stores.contains(name) => Some(StoreSelector::Named(name.to_string())),
            Some(name) => {
                self.problem(
                    format!("{prefix}.store"),
                    format!(
                        "unknown store `{name}` (configured: {}; or \"all\")",
                        stores.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                None
            }
        };
        let window =
            self.string(obj, prefix, "window", true)
                .and_then(|w| match WindowSpec::from_str(&w) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        self.problem(format!("{prefix}.window"), e.to_string());
                        None
                    }
                });
        let relative = if obj.contains_key("baseline_window") {
            self.relative_target(obj, prefix)
        } else {
            if let Some(t) = obj.get("target").and_then(Json::as_str)
                && crate::okr::parse_relative(t).is_some()
            {
                self.problem(
                    format!("{prefix}.target"),
                    format!(
                        "`{t}` is relative to a baseline: add baseline_window = \"previous_quarter\" (or another window) to compute the baseline from, instead of `baseline`"
                    ),
                );
                return None;
            }
            None
        };
        let (baseline, target) = match &relative {
            Some(Some(r)) => (Some(Decimal::ZERO), Some(r.change)),
            Some(None) => (None, None),
            None => {
                let baseline = self.decimal(obj, prefix, "baseline");
                let target = self.decimal(obj, prefix, "target");
                if let Some(k) = &kpi {
                    self.fraction_check(
                        prefix,
                        k.id,
                        &[("baseline", baseline), ("target", target)],
                    );
                }
                (baseline, target)
            }
        };
        let relative = relative.flatten();
        let direction = match (
            self.string(obj, prefix, "direction", false),
            baseline,
            target,
        ) {
            (Some(d), b, t) => match Direction::from_str(&d) {
                Ok(d) => {
                    let contradicts = match (d, b, t) {
                        (Direction::Increase, Some(b), Some(t)) => t <= b,
                        (Direction::Decrease, Some(b), Some(t)) => t >= b,
                        _ => false,
                    };
                    if contradicts {
                        self.problem(
                            format!("{prefix}.direction"),
                            format!(
                                "`{}` contradicts baseline and target (an increase needs target > baseline, a decrease target < baseline); fix the numbers or drop `direction` to infer it",
                                d.as_str()
                            ),
                        );
                        None
                    } else {
                        Some(d)
                    }
                }
                Err(e) => {
                    self.problem(format!("{prefix}.direction"), e.to_string());
                    None
                }
            },
            (None, Some(b), Some(t)) => match Direction::infer(b, t) {
                Some(d) => Some(d),
                None => {
                    self.problem(
                        format!("{prefix}.target"),
                        "target equals baseline: set `direction = \"at_least\"` or `\"at_most\"` to keep a threshold",
                    );
                    None
                }
            },
            _ => None,
        };
        let named = self.string_list(obj, prefix, "sinks").unwrap_or_default();
        for (i, n) in named.iter().enumerate() {
            if !sinks.contains(n) {
                self.problem(
                    format!("{prefix}.sinks[{i}]"),
                    format!(
                        "unknown sink `{n}` (configured: {}); add a [[sinks]] section with name = \"{n}\"",
                        if sinks.is_empty() {
                            "none".to_string()
                        } else {
                            sinks.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                );
            }
        }
        let mut sinks_named = Vec::new();
        for n in named {
            if !sinks_named.contains(&n) {
                sinks_named.push(n);
            }
        }
        let sinks = sinks_named;
        let id = id?;
        Some(KeyResultSettings {
            title: title.unwrap_or_else(|| id.clone()),
            id,
            objective,
            kpi: kpi?,
            store: store?,
            window: window?,
            baseline: baseline?,
            target: target?,
            direction: direction?,
            sinks,
            relative,
        })
    }

    /// `baseline_window` and a relative `target` (`"+10%"`); `Some(None)` after a problem.
    fn relative_target(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
    ) -> Option<Option<RelativeTarget>> {
        if obj.contains_key("baseline") {
            self.problem(
                format!("{prefix}.baseline"),
                "give either baseline (a number) or baseline_window (computed from the KPI over that window), not both",
            );
            return Some(None);
        }
        let window = self
            .string(obj, prefix, "baseline_window", true)
            .and_then(|w| match WindowSpec::from_str(&w) {
                Ok(w) if !w.ends_before_today() => {
                    self.problem(
                        format!("{prefix}.baseline_window"),
                        format!(
                            "`{w}` is not over when a period starts, so the baseline could not be fixed then: use a window that ends before it, e.g. previous_quarter, previous_month, last_30_days or dates"
                        ),
                    );
                    None
                }
                Ok(w) => Some(w),
                Err(e) => {
                    self.problem(format!("{prefix}.baseline_window"), e.to_string());
                    None
                }
            });
        let written = match obj.get("target") {
            Some(Json::String(t)) => t.trim().to_string(),
            None => {
                self.problem(
                    format!("{prefix}.target"),
                    "missing (required): with baseline_window, write the target relative to the baseline, e.g. \"+10%\" or \"-5%\"",
                );
                return Some(None);
            }
            Some(other) => other.to_string(),
        };
        let Some(change) = crate::okr::parse_relative(&written) else {
            self.problem(
                format!("{prefix}.target"),
                format!(
                    "`{written}` is not a relative target: with baseline_window, write e.g. \"+10%\" or \"-5%\" (the sign is required)"
                ),
            );
            return Some(None);
        };
        if change <= Decimal::NEGATIVE_ONE {
            self.problem(
                format!("{prefix}.target"),
                format!("`{written}` would make the target zero or negative"),
            );
            return Some(None);
        }
        Some(window.map(|baseline_window| RelativeTarget {
            baseline_window,
            change,
            written,
        }))
    }
}

/// Refuses a plain `http://` URL that would carry a credential (`what`) to a host other than
/// loopback (`localhost`, 127.0.0.0/8, `::1`): on the network it would travel readable. Every
/// URL that receives a token or key goes through this one check.
pub fn refuse_plain_http(url: &reqwest::Url, what: &str) -> Result<(), String> {
    if url.scheme() != "http" {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    let mut shown = url.clone();
    shown.set_query(None);
    Err(format!(
        "`{shown}`: plain http:// is only allowed for a loopback test server ({what} would travel unencrypted); use https://"
    ))
}

/// `my-store.myshopify.com`, `https://my-store.myshopify.com/` or (tests, proxies)
/// `http://127.0.0.1:8080` → the shop's base URL.
pub fn parse_shop(raw: &str) -> Result<reqwest::Url, String> {
    let text = raw.trim().trim_end_matches('/');
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    match reqwest::Url::parse(&with_scheme) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            refuse_plain_http(&u, "the access token")?;
            Ok(u)
        }
        _ => Err(format!(
            "`{raw}` is not a shop domain (like `my-store.myshopify.com`) or an https:// URL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_accepts_domains_and_urls() {
        assert_eq!(
            parse_shop("my-store.myshopify.com").unwrap().as_str(),
            "https://my-store.myshopify.com/"
        );
        assert_eq!(
            parse_shop("https://my-store.myshopify.com/")
                .unwrap()
                .as_str(),
            "https://my-store.myshopify.com/"
        );
        assert!(parse_shop("http://127.0.0.1:9000").is_ok());
        assert!(parse_shop("http://shop.example").is_err());
        assert!(parse_shop("http://[::1]:9000").is_ok());
        assert!(parse_shop("http://127.0.0.2:9000").is_ok());
        assert!(parse_shop("http://127.0.0.1.example").is_err());
        assert!(parse_shop("ftp://x").is_err());
    }

    #[test]
    fn typos_find_the_closest_key() {
        assert_eq!(edit_distance("paht", "path"), 1);
        assert_eq!(edit_distance("shedule", "schedule"), 1);
        assert_eq!(edit_distance("consumer_secert", "consumer_secret"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let known: Vec<String> = ["schedule", "timezone", "url", "consumer_secret_env"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("schedul", &known), Some("schedule"));
        assert_eq!(
            closest("consumer_secret_evn", &known),
            Some("consumer_secret_env")
        );
        assert_eq!(closest("uri", &known), Some("url"));
        assert_eq!(closest("colour", &known), None);
    }

    #[test]
    fn env_keys_map_to_config_paths() {
        assert_eq!(
            env_key_to_path("OKRSYNC__DATABASE__PATH").unwrap(),
            "database.path"
        );
        assert_eq!(
            env_key_to_path("OKRSYNC__STORES__0__CONSUMER_SECRET").unwrap(),
            "stores[0].consumer_secret"
        );
        assert!(env_key_to_path("HOME").is_none());
        assert!(env_key_to_path("OKRSYNC__").is_none());
    }
}
