//! `[[analytics]]` settings: analytics and site sources (GA4, Plausible, Matomo, PageSpeed
//! Insights, WooCommerce reviews, Shopify sessions), each linked to the stores whose traffic or site it measures.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde_json::{Map, Value as Json};

use super::cron_error;
use super::{
    DEFAULT_MAX_RESPONSE_MB, ExposeSecret, MAX_RESPONSE_MB_RANGE, MAX_RETRIES_RANGE,
    PlatformSettings, RETRY_BACKOFF_MS_RANGE, SecretString, StoreSettings, TIMEOUT_SECONDS_RANGE,
    Validator,
};

/// The default schedule of analytics sources: hourly, at minute 0.
pub const DEFAULT_ANALYTICS_SCHEDULE: &str = "0 0 * * * *";
/// The default schedule of PageSpeed sources: daily at 06:00. Lighthouse runs are slow and
/// quota-limited, and the KPI uses only the latest day's measurements.
pub const DEFAULT_PAGESPEED_SCHEDULE: &str = "0 0 6 * * *";
/// Default retries of PageSpeed requests (each is a full Lighthouse run).
pub const DEFAULT_PAGESPEED_RETRIES: u64 = 2;

/// The provider names accepted in `provider`.
pub const PROVIDERS: &[&str] = &[
    "ga4",
    "plausible",
    "matomo",
    "pagespeed",
    "woocommerce_reviews",
    "shopify_sessions",
];

/// One analytics or site source.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// Unique among stores and analytics sources; used by `--store` and the sync log.
    pub name: String,
    /// The stores whose traffic, site or reviews this source measures.
    pub stores: Vec<String>,
    pub schedule: cron::Schedule,
    pub timeout: std::time::Duration,
    pub max_retries: u32,
    pub retry_base: std::time::Duration,
    /// The largest response body read (`max_response_mb`).
    pub max_response_bytes: u64,
    pub provider: ProviderSettings,
}

/// Provider-specific settings.
#[derive(Debug, Clone)]
// Built once at start-up; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ProviderSettings {
    Ga4(Ga4Settings),
    Plausible(PlausibleSettings),
    Matomo(MatomoSettings),
    PageSpeed(PageSpeedSettings),
    WooReviews(WooReviewsSettings),
    ShopifySessions(ShopifySessionsSettings),
}

impl ProviderSettings {
    /// The provider name (`provider` key), recorded as the sync log's source.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderSettings::Ga4(_) => "ga4",
            ProviderSettings::Plausible(_) => "plausible",
            ProviderSettings::Matomo(_) => "matomo",
            ProviderSettings::PageSpeed(_) => "pagespeed",
            ProviderSettings::WooReviews(_) => "woocommerce_reviews",
            ProviderSettings::ShopifySessions(_) => "shopify_sessions",
        }
    }

    /// What the provider feeds: traffic, PageSpeed samples or reviews.
    pub fn feed(&self) -> crate::kpi::Feed {
        use crate::kpi::Feed;
        match self {
            ProviderSettings::Ga4(_)
            | ProviderSettings::Plausible(_)
            | ProviderSettings::Matomo(_)
            | ProviderSettings::ShopifySessions(_) => Feed::Traffic,
            ProviderSettings::PageSpeed(_) => Feed::PageSpeed,
            ProviderSettings::WooReviews(_) => Feed::Reviews,
        }
    }
}

/// A Google service-account key (the JSON file Google Cloud downloads).
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// PEM, PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: SecretString,
    pub token_uri: reqwest::Url,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri.as_str())
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Ga4Settings {
    /// The numeric GA4 property id (not the `G-…` measurement id).
    pub property_id: String,
    pub key: ServiceAccountKey,
    /// Data API root; default `https://analyticsdata.googleapis.com`.
    pub api_base_url: reqwest::Url,
}

#[derive(Debug, Clone)]
pub struct PlausibleSettings {
    /// Default `https://plausible.io`; set for self-hosted instances.
    pub base_url: reqwest::Url,
    pub site_id: String,
    pub api_key: SecretString,
}

#[derive(Debug, Clone)]
pub struct MatomoSettings {
    /// The Matomo root (where `index.php` lives).
    pub base_url: reqwest::Url,
    pub site_id: String,
    pub token: SecretString,
}

#[derive(Debug, Clone)]
pub struct PageSpeedSettings {
    pub urls: Vec<reqwest::Url>,
    /// `mobile` and/or `desktop`.
    pub strategies: Vec<String>,
    pub api_key: Option<SecretString>,
    /// API root; default `https://www.googleapis.com`.
    pub api_base_url: reqwest::Url,
}

#[derive(Debug, Clone)]
pub struct WooReviewsSettings {
    /// The WooCommerce store whose reviews are read (with its credentials).
    pub store: StoreSettings,
}

#[derive(Debug, Clone)]
pub struct ShopifySessionsSettings {
    /// The Shopify store whose sessions are read (its shop, token and `api_version`).
    pub store: StoreSettings,
}

fn url(text: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err(format!("`{text}` must be an http:// or https:// URL")),
        Err(e) => Err(format!("`{text}` is not a URL: {e}")),
    }
}

impl Validator<'_> {
    fn url_key(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
        default: Option<&str>,
    ) -> Option<reqwest::Url> {
        let text = match (self.string(obj, prefix, key, default.is_none()), default) {
            (Some(t), _) => t,
            (None, Some(d)) => d.to_string(),
            (None, None) => return None,
        };
        match url(&text) {
            Ok(u) => Some(u),
            Err(e) => {
                self.problem(format!("{prefix}.{key}"), e);
                None
            }
        }
    }

    /// [`Self::url_key`] for a URL that receives `what` (a key or token): plain `http://`
    /// is refused unless it is loopback.
    fn secret_url_key(
        &mut self,
        obj: &Map<String, Json>,
        prefix: &str,
        key: &str,
        default: Option<&str>,
        what: &str,
    ) -> Option<reqwest::Url> {
        let u = self.url_key(obj, prefix, key, default)?;
        if let Err(e) = super::refuse_plain_http(&u, what) {
            self.problem(format!("{prefix}.{key}"), e);
            return None;
        }
        Some(u)
    }

    /// Validates every `[[analytics]]` entry against the configured stores.
    pub(super) fn analytics(
        &mut self,
        top: &Map<String, Json>,
        stores: &[StoreSettings],
        store_names: &BTreeSet<String>,
    ) -> Vec<AnalyticsSettings> {
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        // (store, feed) → the source that already feeds it.
        let mut feeds: Vec<(String, crate::kpi::Feed, String)> = Vec::new();
        for (i, raw) in self.array(top, "analytics").iter().enumerate() {
            let prefix = format!("analytics[{i}]");
            let Some(a) = self.analytics_entry(&prefix, raw, stores, store_names) else {
                continue;
            };
            if store_names.contains(&a.name) || !names.insert(a.name.clone()) {
                self.problem(
                    format!("{prefix}.name"),
                    format!(
                        "name `{}` is already used by a store or another analytics source; names must be unique",
                        a.name
                    ),
                );
                continue;
            }
            let feed = a.provider.feed();
            for s in &a.stores {
                if let Some((_, _, other)) = feeds.iter().find(|(st, f, _)| st == s && *f == feed) {
                    self.problem(
                        format!("{prefix}.stores"),
                        format!(
                            "store `{s}` already takes its {feed:?} data from analytics source `{other}`; link each store to one source per kind, or the figures would be counted twice"
                        ),
                    );
                } else {
                    feeds.push((s.clone(), feed, a.name.clone()));
                }
            }
            out.push(a);
        }
        out
    }

    fn analytics_entry(
        &mut self,
        prefix: &str,
        raw: &Json,
        stores: &[StoreSettings],
        store_names: &BTreeSet<String>,
    ) -> Option<AnalyticsSettings> {
        let Some(obj) = raw.as_object() else {
            self.problem(prefix, "expected a table");
            return None;
        };
        let name = self.name(obj, prefix, "source");
        let provider_name = self.string(obj, prefix, "provider", true);
        let common = [
            "name",
            "provider",
            "schedule",
            "stores",
            "timeout_seconds",
            "max_retries",
            "retry_backoff_ms",
            "max_response_mb",
        ];
        let listed = self.string_list(obj, prefix, "stores").unwrap_or_default();
        let mut linked = Vec::new();
        if listed.is_empty() {
            self.problem(
                format!("{prefix}.stores"),
                "missing (required): name the stores this source measures, e.g. stores = [\"main\"]",
            );
        }
        for (j, s) in listed.iter().enumerate() {
            if store_names.contains(s) {
                linked.push(s.clone());
            } else {
                self.problem(
                    format!("{prefix}.stores[{j}]"),
                    format!(
                        "unknown store `{s}` (configured: {})",
                        store_names.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        // One site's traffic linked to several stores would count its sessions once per
        // store, and its days can follow only one store's time zone.
        if let Some(p @ ("ga4" | "plausible" | "matomo")) = provider_name.as_deref()
            && listed.len() > 1
        {
            self.problem(
                format!("{prefix}.stores"),
                format!(
                    "a {p} source measures one site's traffic: name exactly one store (add one [[analytics]] per store, each with that store's property or site); linked to several stores its sessions would be counted once per store"
                ),
            );
            linked.clear();
        }
        let mut known = common.to_vec();
        let provider = match provider_name.as_deref() {
            Some("ga4") => {
                known.extend(["property_id", "credentials", "api_base_url"]);
                self.unknown_keys(prefix, obj, &known);
                self.ga4(prefix, obj).map(ProviderSettings::Ga4)
            }
            Some("plausible") => {
                known.extend(["base_url", "site_id", "api_key"]);
                self.unknown_keys(prefix, obj, &known);
                let base_url = self.secret_url_key(
                    obj,
                    prefix,
                    "base_url",
                    Some("https://plausible.io"),
                    "the api_key",
                );
                let site_id = self.string(obj, prefix, "site_id", true);
                let api_key = self.secret(obj, prefix, "api_key");
                // A closure: `?` must not skip the checks after this match.
                (|| {
                    Some(ProviderSettings::Plausible(PlausibleSettings {
                        base_url: base_url?,
                        site_id: site_id?,
                        api_key: api_key?,
                    }))
                })()
            }
            Some("matomo") => {
                known.extend(["base_url", "site_id", "token"]);
                self.unknown_keys(prefix, obj, &known);
                let base_url = self.secret_url_key(obj, prefix, "base_url", None, "the token");
                let site_id = self.string(obj, prefix, "site_id", true);
                let token = self.secret(obj, prefix, "token");
                // A closure: `?` must not skip the checks after this match.
                (|| {
                    Some(ProviderSettings::Matomo(MatomoSettings {
                        base_url: base_url?,
                        site_id: site_id?,
                        token: token?,
                    }))
                })()
            }
            Some("pagespeed") => {
                known.extend(["urls", "strategy", "api_key", "api_base_url"]);
                self.unknown_keys(prefix, obj, &known);
                self.pagespeed(prefix, obj).map(ProviderSettings::PageSpeed)
            }
            Some("woocommerce_reviews") => {
                self.unknown_keys(prefix, obj, &known);
                let woo: Vec<&StoreSettings> =
                    stores.iter().filter(|s| linked.contains(&s.name)).collect();
                match woo.as_slice() {
                    [one] if matches!(one.platform, PlatformSettings::WooCommerce(_)) => {
                        Some(ProviderSettings::WooReviews(WooReviewsSettings {
                            store: (*one).clone(),
                        }))
                    }
                    [one] => {
                        self.problem(
                            format!("{prefix}.stores"),
                            format!("store `{}` is not a WooCommerce store", one.name),
                        );
                        None
                    }
                    [] => None,
                    _ => {
                        self.problem(
                            format!("{prefix}.stores"),
                            "woocommerce_reviews reads one store's own API: name exactly one store (add one [[analytics]] per store)",
                        );
                        None
                    }
                }
            }
            Some("shopify_sessions") => {
                self.unknown_keys(prefix, obj, &known);
                let shops: Vec<&StoreSettings> =
                    stores.iter().filter(|s| linked.contains(&s.name)).collect();
                match shops.as_slice() {
                    [one] if matches!(one.platform, PlatformSettings::Shopify(_)) => {
                        Some(ProviderSettings::ShopifySessions(ShopifySessionsSettings {
                            store: (*one).clone(),
                        }))
                    }
                    [one] => {
                        self.problem(
                            format!("{prefix}.stores"),
                            format!(
                                "store `{}` is not a Shopify store; shopify_sessions reads a Shopify shop's own analytics (use ga4, plausible or matomo for other stores)",
                                one.name
                            ),
                        );
                        None
                    }
                    [] => None,
                    _ => {
                        self.problem(
                            format!("{prefix}.stores"),
                            "shopify_sessions reads one shop's own analytics: name exactly one Shopify store (add one [[analytics]] per shop)",
                        );
                        None
                    }
                }
            }
            Some(other) => {
                self.problem(
                    format!("{prefix}.provider"),
                    format!(
                        "unknown provider `{other}` (expected one of {})",
                        PROVIDERS.join(", ")
                    ),
                );
                None
            }
            None => None,
        };
        let schedule_text = self
            .string(obj, prefix, "schedule", false)
            .unwrap_or_else(|| match provider_name.as_deref() {
                Some("pagespeed") => DEFAULT_PAGESPEED_SCHEDULE.to_string(),
                _ => DEFAULT_ANALYTICS_SCHEDULE.to_string(),
            });
        let schedule = match cron::Schedule::from_str(&schedule_text) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(
                    format!("{prefix}.schedule"),
                    format!(
                        "`{schedule_text}` is not a valid cron schedule ({}); six fields: sec min hour day-of-month month day-of-week, e.g. `{DEFAULT_ANALYTICS_SCHEDULE}`", cron_error(&e)
                    ),
                );
                None
            }
        };
        let timeout = self.uint_in(obj, prefix, "timeout_seconds", 60, TIMEOUT_SECONDS_RANGE);
        let default_retries = match provider_name.as_deref() {
            Some("pagespeed") => DEFAULT_PAGESPEED_RETRIES,
            _ => 5,
        };
        let max_retries = self.uint_in(
            obj,
            prefix,
            "max_retries",
            default_retries,
            MAX_RETRIES_RANGE,
        ) as u32;
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
        if linked.is_empty() {
            return None;
        }
        Some(AnalyticsSettings {
            name: name?,
            stores: linked,
            schedule: schedule?,
            timeout: std::time::Duration::from_secs(timeout),
            max_retries,
            retry_base: std::time::Duration::from_millis(retry_base),
            max_response_bytes: max_response_mb << 20,
            provider: provider?,
        })
    }

    fn ga4(&mut self, prefix: &str, obj: &Map<String, Json>) -> Option<Ga4Settings> {
        let property_id = self.string(obj, prefix, "property_id", true);
        if let Some(p) = &property_id
            && !p.chars().all(|c| c.is_ascii_digit())
        {
            self.problem(
                format!("{prefix}.property_id"),
                format!("`{p}` is not a numeric GA4 property id (Admin → Property details; not the G-… measurement id)"),
            );
        }
        let api_base_url = self.secret_url_key(
            obj,
            prefix,
            "api_base_url",
            Some("https://analyticsdata.googleapis.com"),
            "the access token",
        );
        let json = self.secret(obj, prefix, "credentials")?;
        // Name the key the credentials actually came from.
        let used = ["credentials_file", "credentials_env", "credentials"]
            .into_iter()
            .find(|k| obj.contains_key(*k))
            .unwrap_or("credentials");
        let key = match parse_service_account_or_unresolved(&json) {
            Ok(k) => Some(k),
            Err(e) => {
                self.problem(format!("{prefix}.{used}"), e);
                None
            }
        };
        Some(Ga4Settings {
            property_id: property_id?,
            key: key?,
            api_base_url: api_base_url?,
        })
    }

    fn pagespeed(&mut self, prefix: &str, obj: &Map<String, Json>) -> Option<PageSpeedSettings> {
        let mut urls = Vec::new();
        match self.string_list(obj, prefix, "urls") {
            Some(list) if !list.is_empty() => {
                for (j, u) in list.iter().enumerate() {
                    match url(u) {
                        Ok(u) => urls.push(u),
                        Err(e) => self.problem(format!("{prefix}.urls[{j}]"), e),
                    }
                }
            }
            _ => self.problem(
                format!("{prefix}.urls"),
                "missing (required): the pages to measure, e.g. the home page and a product page",
            ),
        }
        let strategies = self
            .string_list(obj, prefix, "strategy")
            .unwrap_or_else(|| vec!["mobile".into()]);
        if strategies.is_empty() {
            self.problem(
                format!("{prefix}.strategy"),
                "is empty: set `mobile`, `desktop` or both, or remove the key for `mobile`",
            );
        }
        for s in &strategies {
            if s != "mobile" && s != "desktop" {
                self.problem(
                    format!("{prefix}.strategy"),
                    format!("`{s}` is not `mobile` or `desktop`"),
                );
            }
        }
        let api_key = if ["api_key", "api_key_env", "api_key_file"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            Some(self.secret(obj, prefix, "api_key")?)
        } else {
            None
        };
        let api_base_url = if api_key.is_some() {
            self.secret_url_key(
                obj,
                prefix,
                "api_base_url",
                Some("https://www.googleapis.com"),
                "the api_key",
            )
        } else {
            self.url_key(
                obj,
                prefix,
                "api_base_url",
                Some("https://www.googleapis.com"),
            )
        };
        if urls.is_empty() || strategies.is_empty() {
            return None;
        }
        Some(PageSpeedSettings {
            urls,
            strategies,
            api_key,
            api_base_url: api_base_url?,
        })
    }
}

/// Parses a service-account key JSON; the message never quotes the key.
/// [`parse_service_account`] of a secret; a secret not read yet ([`super::SecretUse::Defer`])
/// gives an empty key that is never used to sign.
pub(crate) fn parse_service_account_or_unresolved(
    json: &SecretString,
) -> Result<ServiceAccountKey, String> {
    if super::is_unresolved(json) {
        return Ok(ServiceAccountKey {
            client_email: String::new(),
            private_key_id: None,
            private_key: SecretString::from(String::new()),
            token_uri: url("https://oauth2.googleapis.com/token")?,
        });
    }
    parse_service_account(json.expose_secret())
}

pub fn parse_service_account(text: &str) -> Result<ServiceAccountKey, String> {
    let v: Json = serde_json::from_str(text).map_err(|e| {
        format!("the service-account key is not JSON ({e}); download a JSON key for the service account in Google Cloud → IAM → Service accounts → Keys")
    })?;
    let field = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    if field("type").as_deref() != Some("service_account") {
        return Err(
            "the credentials are not a service-account key (`type` is not `service_account`)"
                .into(),
        );
    }
    let client_email =
        field("client_email").ok_or("the service-account key has no client_email")?;
    let private_key = field("private_key").ok_or("the service-account key has no private_key")?;
    if !private_key.contains("BEGIN PRIVATE KEY") {
        return Err("the service-account private_key is not a PEM PKCS#8 key".into());
    }
    let token_uri =
        field("token_uri").unwrap_or_else(|| "https://oauth2.googleapis.com/token".into());
    let token_uri = url(&token_uri).map_err(|e| format!("token_uri: {e}"))?;
    super::refuse_plain_http(&token_uri, "the signed token request")
        .map_err(|e| format!("token_uri: {e}"))?;
    Ok(ServiceAccountKey {
        client_email,
        private_key_id: field("private_key_id"),
        private_key: SecretString::from(private_key),
        token_uri,
    })
}
