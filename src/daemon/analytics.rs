//! One sync run of one analytics source: recorded in the sync log like a store (store = the
//! source's name, source = its provider), fetch the days since the last stored one (re-reading
//! the last 3), store them, close the run. Failures end up in the sync log, never a panic.
//!
//! Days are the linked store's local days. While that store's time zone is unknown (no
//! `timezone` in the config and no completed store sync yet) the run is recorded as `skipped`
//! with [`WAITING_FOR_STORE`] in its error: guessing UTC would store values under the wrong
//! days for good.
//!
//! On a traffic source's first fill (nothing stored yet, or `--full`) the leading days before
//! the first day with sessions are dropped: providers report days before tracking started as
//! 0 (or as empty), and those days must stay unknown. Later fills keep zero days: once
//! tracking runs, a day without visits is a real 0.

use chrono::Duration;

use super::run::{RunDesc, SyncReport, recorded_run, skipped};
use super::sync::Kept;
use super::{Clock, Shutdown};
use crate::config::{AnalyticsSettings, ProviderSettings, Settings};
use crate::domain::StoreTz;
use crate::sources::SourceError;
use crate::sources::analytics::{AnyAnalytics, Batch, FetchRange};
use crate::store::{RunStatus, RunSummary, Store};

/// Days read at least on a traffic source's first sync (or `--full`): a year-long key result
/// and a previous-year comparison of a month both fit. Longer when a key result's window or
/// period starts earlier (see [`first_fill_from`]).
pub const BACKFILL_DAYS: i64 = 400;
/// The earliest day a traffic first fill asks for: GA4's documented earliest `startDate`
/// (2015-08-14); no provider holds visits of a shop before it.
pub const TRAFFIC_FLOOR: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2015, 8, 14) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};
/// Days re-read on every sync (GA4 restates the last 48 h; the others may lag).
pub const REREAD_DAYS: i64 = 3;

/// Start of the error of a run skipped because the linked store's time zone is unknown yet;
/// the daemon retries such runs soon instead of waiting for the next tick.
pub const WAITING_FOR_STORE: &str = "waiting for the first sync of store";

/// The time zone whose days a source's values are stored in: the linked store's (config
/// override, else as read from the store by its sync). `None` while it is unknown.
pub async fn source_tz(
    a: &AnalyticsSettings,
    settings: &Settings,
    db: &Store,
) -> Result<Option<StoreTz>, crate::store::StoreError> {
    let Some(name) = a.stores.first() else {
        return Ok(None);
    };
    if let Some(tz) = settings.store(name).and_then(|s| s.timezone) {
        return Ok(Some(tz));
    }
    Ok(db
        .store_row(name)
        .await?
        .and_then(|row| row.timezone)
        .and_then(|t| StoreTz::parse(&t).ok()))
}

/// Whether a sync report is a run skipped while waiting for the linked store's time zone.
pub fn is_waiting_for_store(report: &SyncReport) -> bool {
    report.status == RunStatus::Skipped
        && report
            .summary
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(WAITING_FOR_STORE))
}

/// Syncs one analytics source now with a source built for this run.
pub async fn sync_analytics(
    a: &AnalyticsSettings,
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    sync_kept_analytics(a, &Kept::default(), settings, db, clock, shutdown, full).await
}

/// Syncs one analytics source now with its kept source.
pub(super) async fn sync_kept_analytics(
    a: &AnalyticsSettings,
    kept: &Kept<AnyAnalytics>,
    settings: &Settings,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    full: bool,
) -> Result<SyncReport, crate::store::StoreError> {
    let provider = a.provider.name();
    let desc = RunDesc {
        name: &a.name,
        source: provider,
        full,
        span: tracing::info_span!("analytics", source = %a.name, provider),
    };
    // Reviews carry instants; every other feed is stored by the store's local day.
    let tz = match &a.provider {
        ProviderSettings::WooReviews(_) => StoreTz::UTC,
        _ => match source_tz(a, settings, db).await? {
            Some(tz) => tz,
            None => {
                let store = a.stores.first().map(String::as_str).unwrap_or_default();
                let reason = format!(
                    "{WAITING_FOR_STORE} `{store}`: its time zone decides which day each value belongs to, and it is read by that sync (or set `timezone` on the store); the daemon retries shortly, or run `okrsync sync --store {store}` first"
                );
                tracing::warn!(source = %a.name, "{reason}");
                return skipped(db, clock, &desc, &reason).await;
            }
        },
    };
    recorded_run(
        db,
        clock,
        desc,
        async |_run_id, _started, summary: &mut RunSummary| {
            let source = kept.get_or_build(|| AnyAnalytics::new(a, clock))?;
            let before = source.request_counts();
            let r = run(
                a,
                &settings.key_results,
                tz,
                &source,
                db,
                clock,
                shutdown,
                full,
                summary,
            )
            .await;
            let after = source.request_counts();
            (summary.requests, summary.retries) = (after.0 - before.0, after.1 - before.1);
            r
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: &AnalyticsSettings,
    key_results: &[crate::config::KeyResultSettings],
    tz: StoreTz,
    source: &AnyAnalytics,
    db: &Store,
    clock: &Clock,
    shutdown: &Shutdown,
    full: bool,
    summary: &mut RunSummary,
) -> Result<(), SourceError> {
    let today = tz.local_date(clock.now());
    // A first fill: no traffic stored for this source yet, or `--full`.
    let mut first_fill = full;
    let from = match (a.provider.feed(), full) {
        (crate::kpi::Feed::Traffic, false) => {
            let stored = db.load_traffic(&a.name).await?;
            match stored.keys().next_back() {
                Some(last) => (*last).min(today - Duration::days(REREAD_DAYS - 1)),
                None => {
                    first_fill = true;
                    first_fill_from(a, key_results, today)
                }
            }
        }
        (crate::kpi::Feed::Traffic, true) => first_fill_from(a, key_results, today),
        // PageSpeed measures today and reviews are listed whole: the range is not used.
        _ => today - Duration::days(REREAD_DAYS - 1),
    };
    let range = FetchRange {
        from,
        to: today,
        today,
    };
    let batch = source.fetch(range, shutdown).await?;
    let now = clock.now();
    let mut unmeasured = Vec::new();
    let (fetched, written) = match batch {
        Batch::Traffic(mut days) => {
            let fetched = days.len() as u64;
            if first_fill {
                drop_before_tracking(&mut days);
            }
            (fetched, db.upsert_traffic(&a.name, days, now).await?)
        }
        Batch::PageSpeed(s, failed) => {
            unmeasured = failed;
            (s.len() as u64, db.upsert_pagespeed(&a.name, s, now).await?)
        }
        Batch::Reviews(r) => (r.len() as u64, db.replace_reviews(&a.name, r, now).await?),
    };
    summary.pages = 1;
    summary.fetched = fetched;
    summary.upserted = written;
    if unmeasured.is_empty() {
        Ok(())
    } else {
        Err(SourceError::Unmeasured(unmeasured))
    }
}

/// The first day a traffic source's first fill reads: [`BACKFILL_DAYS`] before `today`, or
/// earlier when a key result on one of the source's stores has a traffic KPI whose window or
/// period (for expected progress) starts before that. Days before tracking began come back
/// as 0 or empty and are dropped ([`drop_before_tracking`]): unknown, never 0.
pub fn first_fill_from(
    a: &AnalyticsSettings,
    key_results: &[crate::config::KeyResultSettings],
    today: chrono::NaiveDate,
) -> chrono::NaiveDate {
    use crate::config::StoreSelector;
    let linked = |kr: &crate::config::KeyResultSettings| match &kr.store {
        StoreSelector::All => true,
        StoreSelector::Named(n) => a.stores.iter().any(|s| s == n),
    };
    key_results
        .iter()
        .filter(|kr| {
            linked(kr) && crate::kpi::feed_of(kr.kpi.id) == Some(crate::kpi::Feed::Traffic)
        })
        .flat_map(|kr| {
            let period = kr.window.period(today).from;
            // A relative key result's baseline window, resolved on its period's first day.
            let baseline = kr
                .relative
                .as_ref()
                .map(|r| r.baseline_window.resolve(period).from);
            [Some(kr.window.resolve(today).from), Some(period), baseline]
        })
        .flatten()
        .fold(today - Duration::days(BACKFILL_DAYS), |a, b| a.min(b))
        // `all_time` starts before any shop existed: ask no provider for days before GA4's
        // first (providers refuse or return nothing for them; those days stay unknown).
        .max(TRAFFIC_FLOOR)
}

/// Drops the leading days before the first day with sessions: on a first fill they are days
/// before tracking started (reported as 0 or empty), which must stay unknown, not 0. With no
/// visits at all, nothing is kept.
pub fn drop_before_tracking(days: &mut Vec<crate::domain::DailyTraffic>) {
    days.sort_by_key(|d| d.date);
    let first = days
        .iter()
        .position(|d| d.sessions > 0)
        .unwrap_or(days.len());
    days.drain(..first);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DailyTraffic;

    fn kr_settings(krs: &str) -> crate::config::Settings {
        let toml = format!(
            r#"
[[stores]]
name = "main"
platform = "woocommerce"
url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"

[[analytics]]
name = "traffic"
provider = "plausible"
site_id = "shop.example.com"
api_key = "k"
stores = ["main"]
{krs}
"#
        );
        crate::config::load_from_str(&toml, std::path::Path::new("."), None, &Default::default())
            .unwrap()
    }

    #[test]
    fn first_fill_covers_windows_periods_and_baseline_windows_but_not_before_the_floor() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let from = |krs: &str| {
            let s = kr_settings(krs);
            first_fill_from(&s.analytics[0], &s.key_results, today)
        };
        assert_eq!(from(""), today - Duration::days(BACKFILL_DAYS));
        // A year-to-date sessions KR whose baseline is the whole previous year: 2025-01-01.
        let relative = "[[key_results]]\nid = \"s\"\nkpi = \"sessions\"\nstore = \"main\"\nwindow = \"year_to_date\"\nbaseline_window = \"previous_year\"\ntarget = \"+10%\"\n";
        assert_eq!(
            from(relative),
            chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
        );
        // `all_time` would start in 1970: the fill stops at the floor.
        let all_time = "[[key_results]]\nid = \"a\"\nkpi = \"sessions\"\nstore = \"main\"\nwindow = \"all_time\"\nbaseline = 0\ntarget = 100000\n";
        assert_eq!(from(all_time), TRAFFIC_FLOOR);
        // A KPI that reads no traffic changes nothing.
        let orders = "[[key_results]]\nid = \"o\"\nkpi = \"orders\"\nstore = \"main\"\nwindow = \"all_time\"\nbaseline = 0\ntarget = 100\n";
        assert_eq!(from(orders), today - Duration::days(BACKFILL_DAYS));
    }

    fn t(day: u32, sessions: u64) -> DailyTraffic {
        DailyTraffic {
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            sessions,
            visitors: None,
            bounces: None,
            engaged_sessions: None,
        }
    }

    #[test]
    fn leading_zero_days_are_dropped_and_later_zero_days_kept() {
        let mut days = vec![t(3, 5), t(1, 0), t(2, 0), t(4, 0), t(5, 7)];
        drop_before_tracking(&mut days);
        let kept: Vec<(u32, u64)> = days
            .iter()
            .map(|d| (chrono::Datelike::day(&d.date), d.sessions))
            .collect();
        assert_eq!(kept, vec![(3, 5), (4, 0), (5, 7)]);
        let mut none = vec![t(1, 0), t(2, 0)];
        drop_before_tracking(&mut none);
        assert!(none.is_empty());
    }
}
