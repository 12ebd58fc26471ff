//! Shopify's own sessions, read with the Admin GraphQL `shopifyqlQuery` (API 2025-10 and
//! later, `read_reports` scope) through the linked Shopify store's client, so requests are
//! paced and THROTTLED answers waited out exactly like the store's own sync.
//!
//! The query is `FROM sessions SHOW sessions, bounce_rate SINCE <from> UNTIL <to>
//! TIMESERIES day ORDER BY day ASC`; the answer's `tableData` (typed `columns`, `rows` as
//! JSON) is read by column name. Days are the shop's calendar days.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Batch, FetchRange, Provider, count, decimal};
use crate::config::{PlatformSettings, ShopifySessionsSettings};
use crate::domain::DailyTraffic;
use crate::runtime::{Clock, Shutdown};
use crate::sources::SourceError;
use crate::sources::http::HttpClient;
use crate::sources::shopify::ShopifySource;

/// The GraphQL document; its operation name is what the fake shop dispatches on.
pub const SESSIONS_QUERY: &str = "query ShopifySessions($query: String!) {
  shopifyqlQuery(query: $query) {
    parseErrors
    tableData { columns { name dataType displayName } rows }
  }
}";

/// Points reserved in the cost bucket before sending the query (one object, a few fields).
const COST: u32 = 10;

/// The first API version that has the current `shopifyqlQuery` (ShopifyQL returned to the
/// Admin API in 2025-10 after being sunset in 2024-07).
pub const FIRST_VERSION: &str = "2025-10";

pub struct ShopifySessions {
    store: String,
    shop: ShopifySource,
    /// "Today" for the check's week of sessions.
    clock: Clock,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QlData {
    #[serde(default)]
    shopifyql_query: Option<QlResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QlResponse {
    /// `[String!]!` since 2025-10 (objects with `message` before); read either way.
    #[serde(default)]
    parse_errors: Vec<Value>,
    #[serde(default)]
    table_data: Option<QlTable>,
}

/// `ShopifyqlTableData`: typed columns and the rows as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct QlTable {
    #[serde(default)]
    pub columns: Vec<QlColumn>,
    #[serde(default)]
    pub rows: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QlColumn {
    pub name: String,
    #[serde(default)]
    pub data_type: Option<String>,
}

/// The ShopifyQL text for the local days `from..=to`.
pub fn shopifyql(from: NaiveDate, to: NaiveDate, bounce_rate: bool) -> String {
    let show = if bounce_rate {
        "sessions, bounce_rate"
    } else {
        "sessions"
    };
    format!("FROM sessions SHOW {show} SINCE {from} UNTIL {to} TIMESERIES day ORDER BY day ASC")
}

/// Reads daily sessions (and bounces, from `bounce_rate`, when present) out of a ShopifyQL
/// table. Rows may be objects keyed by column name or arrays in column order; values may be
/// strings or numbers. Days outside `from..=to` are ignored; an unreadable row is an error.
pub fn parse_table(
    table: &QlTable,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyTraffic>, String> {
    let idx = |name: &str| table.columns.iter().position(|c| c.name == name);
    let day_idx = idx("day")
        .or_else(|| {
            table.columns.iter().position(|c| {
                c.data_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("DAY_TIMESTAMP"))
            })
        })
        .ok_or("the table has no `day` column")?;
    let sessions_idx = idx("sessions").ok_or("the table has no `sessions` column")?;
    let bounce_idx = idx("bounce_rate");
    let parsed;
    let rows = match &table.rows {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("`rows` is a string that is not JSON ({e})"))?;
            &parsed
        }
        v => v,
    };
    let rows = match rows {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => return Err("`rows` is not a list".into()),
    };
    let mut out: Vec<DailyTraffic> = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        let cell = |i: usize| -> Option<&Value> {
            match row {
                Value::Object(m) => m.get(&table.columns[i].name),
                Value::Array(a) => a.get(i),
                _ => None,
            }
        };
        let day_text = cell(day_idx)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("row {n} has no day"))?;
        let date = day_text
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(|| format!("row {n}: `{day_text}` is not a day (YYYY-MM-DD)"))?;
        if date < from || date > to {
            continue;
        }
        let sessions = match cell(sessions_idx) {
            None | Some(Value::Null) => 0,
            Some(v) => count(v).ok_or_else(|| format!("row {n}: sessions `{v}` is not a count"))?,
        };
        let bounces = bounce_idx
            .and_then(cell)
            .and_then(decimal)
            .map(|rate| bounces(sessions, rate));
        match out.iter_mut().find(|d| d.date == date) {
            Some(d) => {
                d.sessions += sessions;
                d.bounces = match (d.bounces, bounces) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
            }
            None => out.push(DailyTraffic {
                date,
                sessions,
                visitors: None,
                bounces,
                engaged_sessions: None,
            }),
        }
    }
    out.sort_by_key(|d| d.date);
    Ok(out)
}

/// Bounced sessions from a bounce rate. Shopify types the `bounce_rate` column as `PERCENT`
/// (`ColumnDataType`) without documenting its scale, so the scale is an assumption: a value
/// above 1 is a percentage (42.0 → 42 %), a value of 1 or less a fraction (0.42 → 42 %).
/// The one ambiguous case, a percentage of at most 1 % (e.g. `0.8`), would read as 80 %;
/// real daily bounce rates are far above 1 %, so this is accepted and documented.
fn bounces(sessions: u64, rate: Decimal) -> u64 {
    let fraction = if rate > Decimal::ONE {
        rate / Decimal::from(100)
    } else {
        rate
    };
    let b = (Decimal::from(sessions) * fraction.max(Decimal::ZERO)).round();
    u64::try_from(b).unwrap_or(0).min(sessions)
}

fn parse_error_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        other => other.to_string(),
    }
}

impl ShopifySessions {
    pub fn new(s: &ShopifySessionsSettings, clock: &Clock) -> Result<ShopifySessions, SourceError> {
        match &s.store.platform {
            PlatformSettings::Shopify(p) => Ok(ShopifySessions {
                clock: clock.clone(),
                store: s.store.name.clone(),
                shop: ShopifySource::new(&s.store, p, clock)?,
            }),
            #[allow(unreachable_patterns)]
            _ => Err(SourceError::Config(format!(
                "store `{}` is not a Shopify store",
                s.store.name
            ))),
        }
    }

    /// Turns "no such field" and "access denied" into an error naming what to fix.
    fn explain(&self, e: SourceError) -> SourceError {
        let SourceError::GraphQl {
            url, code, message, ..
        } = &e
        else {
            return e;
        };
        let version = self.shop.api_version();
        let what = "Shopify sessions (shopifyqlQuery)".to_string();
        let lower = message.to_ascii_lowercase();
        if code.as_deref() == Some("undefinedField") || lower.contains("doesn't exist") {
            return SourceError::Unavailable {
                url: url.clone(),
                what,
                reason: format!("API version {version} has no shopifyqlQuery: {message}"),
                fix: format!(
                    "set api_version = \"{FIRST_VERSION}\" or later on store `{}`, or link the store to a ga4, plausible or matomo source instead",
                    self.store
                ),
            };
        }
        if code.as_deref() == Some("ACCESS_DENIED") || lower.contains("access denied") {
            return SourceError::Unavailable {
                url: url.clone(),
                what,
                reason: format!("the access token lacks the read_reports scope: {message}"),
                fix: format!(
                    "add the read_reports scope to the app whose token store `{}` uses (and level-2 protected customer data access), reinstall it and update access_token; or link the store to a ga4, plausible or matomo source instead",
                    self.store
                ),
            };
        }
        e
    }

    /// Runs the sessions query for `from..=to`; without `bounce_rate` when ShopifyQL rejects it.
    async fn table(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        shutdown: &Shutdown,
    ) -> Result<QlTable, SourceError> {
        let url = self.shop.endpoint();
        for with_bounce in [true, false] {
            let ql = shopifyql(from, to, with_bounce);
            let d: QlData = self
                .shop
                .gql(
                    "ShopifySessions",
                    SESSIONS_QUERY,
                    json!({ "query": ql }),
                    COST,
                    shutdown,
                )
                .await
                .map_err(|e| self.explain(e))?;
            let Some(r) = d.shopifyql_query else {
                return Err(SourceError::Inconsistent {
                    url,
                    detail: "shopifyqlQuery answered null; check the read_reports scope with `okrsync check --online`".into(),
                });
            };
            let errors: Vec<String> = r.parse_errors.iter().map(parse_error_text).collect();
            if errors.is_empty() {
                return r.table_data.ok_or_else(|| SourceError::Inconsistent {
                    url: url.clone(),
                    detail: "shopifyqlQuery returned neither tableData nor parseErrors".into(),
                });
            }
            if with_bounce && errors.iter().any(|e| e.contains("bounce_rate")) {
                tracing::warn!(store = %self.store, "ShopifyQL rejected bounce_rate ({}); reading sessions only", errors.join("; "));
                continue;
            }
            return Err(SourceError::Inconsistent {
                url,
                detail: format!(
                    "ShopifyQL rejected `{ql}`: {}; the sessions schema may have changed for API version {} (see docs/analytics.md)",
                    errors.join("; "),
                    self.shop.api_version()
                ),
            });
        }
        Err(SourceError::Inconsistent {
            url,
            detail: "ShopifyQL rejected every form of the sessions query".into(),
        })
    }
}

impl Provider for ShopifySessions {
    async fn fetch(&self, range: FetchRange, shutdown: &Shutdown) -> Result<Batch, SourceError> {
        let table = self.table(range.from, range.to, shutdown).await?;
        let days =
            parse_table(&table, range.from, range.to).map_err(|e| SourceError::Inconsistent {
                url: self.shop.endpoint(),
                detail: format!("shopifyqlQuery sessions table: {e}"),
            })?;
        Ok(Batch::Traffic(days))
    }

    async fn check_online(
        &self,
        store_tz: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<String>, SourceError> {
        let mut notes = Vec::new();
        match self.shop.scopes(shutdown).await {
            Some(s) if !s.contains("read_reports") => {
                return Err(SourceError::Unavailable {
                    url: self.shop.endpoint(),
                    what: "Shopify sessions (shopifyqlQuery)".into(),
                    reason: "the access token lacks the read_reports scope".into(),
                    fix: format!(
                        "add the read_reports scope to the app whose token store `{}` uses, reinstall it and update access_token; until then sessions, conversion_rate, revenue_per_session and bounce_rate are null",
                        self.store
                    ),
                });
            }
            Some(_) => notes.push("read_reports granted".to_string()),
            None => notes.push("could not list the token's scopes".to_string()),
        }
        let today = crate::domain::StoreTz::parse(store_tz)
            .map(|tz| tz.local_date(self.clock.now()))
            .unwrap_or_else(|_| self.clock.now().date_naive());
        let from = today - chrono::Duration::days(6);
        let table = self.table(from, today, shutdown).await?;
        let days = parse_table(&table, from, today).map_err(|e| SourceError::Inconsistent {
            url: self.shop.endpoint(),
            detail: format!("shopifyqlQuery sessions table: {e}"),
        })?;
        let total: u64 = days.iter().map(|d| d.sessions).sum();
        notes.push(format!(
            "shopifyqlQuery answered on API version {}: {} over the last 7 days (days in the shop's time zone, {store_tz})",
            self.shop.api_version(),
            crate::text::plural(total, "session")
        ));
        Ok(notes)
    }

    fn http(&self) -> &HttpClient {
        self.shop.http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cols(names: &[&str]) -> Vec<QlColumn> {
        names
            .iter()
            .map(|n| QlColumn {
                name: n.to_string(),
                data_type: None,
            })
            .collect()
    }

    #[test]
    fn object_rows_with_string_values_and_a_fractional_bounce_rate() {
        let t = QlTable {
            columns: cols(&["day", "sessions", "bounce_rate"]),
            rows: json!([
                {"day": "2025-10-01", "sessions": "200", "bounce_rate": "0.25"},
                {"day": "2025-10-02", "sessions": "0", "bounce_rate": "0"},
                {"day": "2025-09-30", "sessions": "7", "bounce_rate": "0.5"},
            ]),
        };
        let days = parse_table(&t, d("2025-10-01"), d("2025-10-02")).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].sessions, days[0].bounces), (200, Some(50)));
        assert_eq!((days[1].sessions, days[1].bounces), (0, Some(0)));
    }

    #[test]
    fn array_rows_percentages_and_timestamps() {
        let t = QlTable {
            columns: cols(&["sessions", "day", "bounce_rate"]),
            rows: json!([[300, "2025-10-03T00:00:00-04:00", 40.0]]),
        };
        let days = parse_table(&t, d("2025-10-01"), d("2025-10-05")).unwrap();
        assert_eq!(days[0].date, d("2025-10-03"));
        assert_eq!((days[0].sessions, days[0].bounces), (300, Some(120)));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let t = QlTable {
            columns: cols(&["day", "sessions"]),
            rows: json!([{"day": "yesterday", "sessions": "1"}]),
        };
        assert!(parse_table(&t, d("2025-10-01"), d("2025-10-05")).is_err());
        let t = QlTable {
            columns: cols(&["day"]),
            rows: json!([]),
        };
        assert!(parse_table(&t, d("2025-10-01"), d("2025-10-05")).is_err());
        let t = QlTable {
            columns: cols(&["day", "sessions"]),
            rows: json!([{"day": "2025-10-02", "sessions": "-3"}]),
        };
        assert!(parse_table(&t, d("2025-10-01"), d("2025-10-05")).is_err());
    }

    #[test]
    fn the_query_names_the_days_and_fills_gaps() {
        assert_eq!(
            shopifyql(d("2025-10-01"), d("2025-10-03"), true),
            "FROM sessions SHOW sessions, bounce_rate SINCE 2025-10-01 UNTIL 2025-10-03 TIMESERIES day ORDER BY day ASC"
        );
    }
}
