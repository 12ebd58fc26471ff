//! Reads stored data, computes KPIs and key-result progress (through the pure `kpi` and
//! `okr` modules), and records check-ins when a key result's value changes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::config::{KeyResultSettings, Settings, StoreSelector};
use crate::daemon::Clock;
use crate::kpi::{self, DateRange, KpiId, KpiSpec, StoreData, Value, WindowSpec, WindowedStore};
use crate::okr::{self, Status};
use crate::store::{NewCheckin, Store, StoreError};

/// Stored data of the configured stores, loaded once per evaluation.
pub struct Loaded {
    stores: Vec<StoreData>,
    /// Configured stores never synced yet.
    missing: Vec<String>,
}

impl Loaded {
    /// Loads every order of every configured store (lines only when a product KPI needs
    /// them). Costs memory and time in proportion to the history: the commands and the
    /// daemon use [`Loaded::load_windows`] / [`Loaded::load_for_key_results`].
    pub async fn load(
        settings: &Settings,
        db: &Store,
        with_lines: bool,
    ) -> Result<Loaded, StoreError> {
        Self::load_each(settings, db, with_lines, |_| None).await
    }

    /// Loads, for every configured store, only what KPIs over `windows` at `now` need: the
    /// counted orders created in them and their customers' history (see
    /// `store::loaders`). Evaluating over any other window, or at another `now` whose
    /// windows reach outside, is an error, never a silent 0.
    pub async fn load_windows(
        settings: &Settings,
        db: &Store,
        with_lines: bool,
        windows: &[WindowSpec],
        now: DateTime<Utc>,
    ) -> Result<Loaded, StoreError> {
        Self::load_each(settings, db, with_lines, |_| Some((windows.to_vec(), now))).await
    }

    /// Loads what the configured key results need at `now`: for each store, the windows of
    /// the key results that read it (named or through "all stores").
    pub async fn load_for_key_results(
        settings: &Settings,
        db: &Store,
        now: DateTime<Utc>,
    ) -> Result<Loaded, StoreError> {
        let with_lines = settings
            .key_results
            .iter()
            .any(|k| k.kpi.id.needs_product());
        Self::load_each(settings, db, with_lines, |store| {
            let mut windows: Vec<WindowSpec> = Vec::new();
            for kr in &settings.key_results {
                let reads = match &kr.store {
                    StoreSelector::All => true,
                    StoreSelector::Named(n) => n == store,
                };
                if reads && !windows.contains(&kr.window) {
                    windows.push(kr.window.clone());
                }
            }
            Some((windows, now))
        })
        .await
    }

    /// Loads each synced store: whole (`scope` gives `None`) or for the given windows.
    async fn load_each(
        settings: &Settings,
        db: &Store,
        with_lines: bool,
        scope: impl Fn(&str) -> Option<(Vec<WindowSpec>, DateTime<Utc>)>,
    ) -> Result<Loaded, StoreError> {
        let mut stores = Vec::new();
        let mut missing = Vec::new();
        for s in &settings.stores {
            if !db.is_complete(&s.name).await? {
                missing.push(s.name.clone());
                continue;
            }
            let data = match scope(&s.name) {
                Some((windows, now)) => {
                    db.load_store_windows(&s.name, s.timezone, with_lines, windows, now)
                        .await?
                }
                None => db.load_store_data(&s.name, s.timezone, with_lines).await?,
            };
            match data {
                Some(mut d) => {
                    attach_analytics(settings, db, &mut d).await?;
                    stores.push(d);
                }
                None => missing.push(s.name.clone()),
            }
        }
        Ok(Loaded { stores, missing })
    }

    /// How many orders were loaded, over all stores.
    pub fn order_count(&self) -> usize {
        self.stores.iter().map(|s| s.orders.len()).sum()
    }

    pub(crate) fn select(&self, sel: &StoreSelector) -> Result<Vec<&StoreData>, String> {
        match sel {
            StoreSelector::All => {
                if let Some(n) = self.missing.first() {
                    // A sum over the other stores would silently read low.
                    Err(format!(
                        "store `{n}` has not completed a first sync yet, so a total over all stores would leave it out: run `okrsync sync --store {n}` (and `okrsync logs --store {n}` if it fails)"
                    ))
                } else if self.stores.is_empty() {
                    Err("no store has been synced yet: run `okrsync sync`".into())
                } else {
                    Ok(self.stores.iter().collect())
                }
            }
            StoreSelector::Named(n) => match self.stores.iter().find(|s| &s.name == n) {
                Some(s) => Ok(vec![s]),
                None if self.missing.contains(n) => Err(format!(
                    "store `{n}` has not completed a first sync yet (its history is not all read, or some records could not be read): run `okrsync sync --store {n}` and see `okrsync logs --store {n}`"
                )),
                None => Err(format!("unknown store `{n}`")),
            },
        }
    }
}

/// Fills a store's analytics feeds from the sources linked to it. A source that never
/// finished a run, or whose last run failed, makes its feed unavailable (KPIs null with the
/// reason) instead of reading stale or missing data as 0.
async fn attach_analytics(
    settings: &Settings,
    db: &Store,
    d: &mut StoreData,
) -> Result<(), StoreError> {
    use crate::kpi::{Feed, PageSpeedFacts, ReviewFacts};
    for a in settings
        .analytics
        .iter()
        .filter(|a| a.stores.contains(&d.name))
    {
        let feed = a.provider.feed();
        match db.last_finished_run(&a.name).await? {
            None => {
                d.unavailable.insert(
                    feed,
                    format!(
                        "analytics source `{}` has not synced yet: run `okrsync sync --store {}`",
                        a.name, a.name
                    ),
                );
                continue;
            }
            Some(run) if run.status == crate::store::RunStatus::Failed => {
                let why = format!(
                    "the last sync of analytics source `{}` failed: {}",
                    a.name,
                    run.error.unwrap_or_default()
                );
                if db.ever_succeeded(&a.name).await? {
                    // Data stored by earlier syncs is still right: serve it, with the failure
                    // as a note (session KPIs are also clipped to the last stored day).
                    d.stale
                        .insert(feed, format!("{why} (figures use the data stored before)"));
                } else {
                    d.unavailable.insert(feed, why);
                    continue;
                }
            }
            Some(_) => {}
        }
        match feed {
            Feed::Traffic => {
                let days = db.load_traffic(&a.name).await?;
                let mut sessions = std::collections::BTreeMap::new();
                let mut bounces = std::collections::BTreeMap::new();
                for (day, t) in days {
                    sessions.insert(day, t.sessions);
                    if let Some(b) = t.bounces {
                        bounces.insert(day, b);
                    }
                }
                d.sessions = Some(sessions);
                d.bounces = Some(bounces);
            }
            Feed::PageSpeed => {
                let samples = db.load_pagespeed(&a.name).await?;
                d.pagespeed = Some(
                    samples
                        .into_iter()
                        .map(|s| PageSpeedFacts {
                            date: s.date,
                            url: s.url,
                            strategy: s.strategy,
                            score: s.score,
                            lcp_seconds: s.lcp_ms.map(|ms| Decimal::from(ms) / Decimal::from(1000)),
                        })
                        .collect(),
                );
            }
            Feed::Reviews => {
                let reviews = db.load_reviews(&a.name).await?;
                d.reviews = Some(
                    reviews
                        .into_iter()
                        .map(|r| ReviewFacts {
                            product_id: r.product_id,
                            created_at: r.created_at,
                            rating: r.rating,
                            verified: r.verified,
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(())
}

/// A window resolved for a report: dates and the time zone they are in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedWindow {
    pub range: DateRange,
    pub timezone: String,
}

impl ResolvedWindow {
    pub fn to_json(&self) -> Json {
        json!({
            "from": self.range.from.to_string(),
            "to": self.range.to.to_string(),
            "timezone": self.timezone,
        })
    }
}

/// KPIs of one store (or all) over one window: the `okrsync kpis` report.
pub struct KpiReport {
    pub store: String,
    pub window: ResolvedWindow,
    pub currency: Option<String>,
    /// Every KPI that needs no parameter, in definition order; `Err` holds why it failed.
    pub values: Vec<(KpiId, Result<kpi::Computed, String>)>,
}

impl KpiReport {
    /// The `kpis --format json` contract.
    pub fn to_json(&self) -> Json {
        let mut kpis = serde_json::Map::new();
        let mut reasons = serde_json::Map::new();
        let mut notes = serde_json::Map::new();
        for (id, v) in &self.values {
            let (value, reason) = match v {
                Ok(c) => (
                    c.value.as_ref().map(Value::to_json).unwrap_or(Json::Null),
                    c.reason.clone(),
                ),
                Err(e) => (Json::Null, Some(e.clone())),
            };
            // A reason of a null value says why it is null; on a value it is a note about
            // what the value covers (e.g. sessions known only up to some day).
            let target = if value.is_null() {
                &mut reasons
            } else {
                &mut notes
            };
            if let Some(r) = reason {
                target.insert(id.as_str().to_string(), Json::String(r));
            }
            kpis.insert(id.as_str().to_string(), value);
        }
        json!({
            "store": self.store,
            "window": self.window.to_json(),
            "currency": self.currency,
            "kpis": kpis,
            "null_reasons": reasons,
            "notes": notes,
        })
    }
}

pub(crate) fn windowed<'a>(
    stores: &[&'a StoreData],
    window: &WindowSpec,
    now: DateTime<Utc>,
) -> Vec<WindowedStore<'a>> {
    stores
        .iter()
        .map(|s| WindowedStore {
            store: s,
            range: window.resolve(s.tz.local_date(now)),
        })
        .collect()
}

pub(crate) fn resolved(inputs: &[WindowedStore<'_>]) -> Option<ResolvedWindow> {
    let first = inputs.first()?;
    let mut tz = first.store.tz.name();
    if inputs.iter().any(|i| i.store.tz.name() != tz) {
        tz = format!("{tz} (each store in its own time zone)");
    }
    Some(ResolvedWindow {
        range: first.range,
        timezone: tz,
    })
}

/// Computes every parameterless KPI for a store selection and window.
pub fn kpi_report(
    loaded: &Loaded,
    store: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
) -> Result<KpiReport, String> {
    let stores = loaded.select(store)?;
    let inputs = windowed(&stores, window, now);
    let window_info = resolved(&inputs).ok_or("no store selected")?;
    let mut currencies: Vec<&str> = stores
        .iter()
        .filter_map(|s| s.currency.as_deref())
        .collect();
    currencies.dedup();
    let values = KpiId::ALL
        .iter()
        .filter(|id| !id.needs_product())
        .map(|id| {
            let spec = KpiSpec {
                id: *id,
                product: None,
            };
            (*id, kpi::compute(&spec, &inputs).map_err(|e| e.to_string()))
        })
        .collect();
    Ok(KpiReport {
        store: match store {
            StoreSelector::All => "all".into(),
            StoreSelector::Named(n) => n.clone(),
        },
        window: window_info,
        currency: (currencies.len() == 1).then(|| currencies[0].to_string()),
        values,
    })
}

/// The report of a selection whose data cannot be used yet: every KPI null with `reason`.
/// The window is resolved in `tz` (the configured one), else in UTC, and says so.
pub fn empty_report(
    store: &StoreSelector,
    window: &WindowSpec,
    tz: Option<crate::domain::StoreTz>,
    now: DateTime<Utc>,
    reason: &str,
) -> KpiReport {
    let zone = tz.unwrap_or(crate::domain::StoreTz::UTC);
    KpiReport {
        store: match store {
            StoreSelector::All => "all".into(),
            StoreSelector::Named(n) => n.clone(),
        },
        window: ResolvedWindow {
            range: window.resolve(zone.local_date(now)),
            timezone: match tz {
                Some(t) => t.name(),
                None => "UTC (the store's time zone is not known yet)".into(),
            },
        },
        currency: None,
        values: KpiId::ALL
            .iter()
            .filter(|id| !id.needs_product())
            .map(|id| (*id, Err(reason.to_string())))
            .collect(),
    }
}

/// Computes one KPI (e.g. a product KPI) for a store selection and window.
pub fn compute_one(
    loaded: &Loaded,
    store: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    spec: &KpiSpec,
) -> Result<kpi::Computed, String> {
    let stores = loaded.select(store)?;
    let inputs = windowed(&stores, window, now);
    kpi::compute(spec, &inputs).map_err(|e| e.to_string())
}

/// A key result evaluated now: the `okrsync krs` report row.
#[derive(Debug, Clone)]
pub struct KrReport {
    pub settings: KeyResultSettings,
    pub window: Option<ResolvedWindow>,
    pub current: Option<Value>,
    pub progress: Option<Decimal>,
    pub expected: Option<Decimal>,
    pub status: Option<Status>,
    /// Why `current` is null, when it is.
    pub reason: Option<String>,
    /// A note on what a non-null `current` covers (e.g. sessions known only up to some day).
    pub note: Option<String>,
    /// When the value last changed (the latest check-in).
    pub updated_at: Option<DateTime<Utc>>,
    /// The value before the current one: the latest check-in of the same window whose value
    /// differs from `current` (filled by [`current_reports`]).
    pub previous: Option<Value>,
    /// When the data behind the value was last synced: the end of the last successful sync
    /// of the key result's store (for "all stores", the oldest of them).
    pub data_as_of: Option<DateTime<Utc>>,
    /// What the value is compared with since the start of the key result's period: the first
    /// check-in made inside the current period, else the baseline (filled by
    /// [`current_reports`]).
    pub period_start: Option<PeriodStart>,
}

/// The value a key result started its current period from.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStart {
    /// The first day of the period (in the store's time zone).
    pub from: chrono::NaiveDate,
    pub value: Value,
    /// When that value was checked in; `None`: it is the baseline (no check-in in the period).
    pub at: Option<DateTime<Utc>>,
}

impl KrReport {
    /// The `krs --format json` contract.
    pub fn to_json(&self) -> Json {
        let s = &self.settings;
        json!({
            "id": s.id,
            "objective": s.objective,
            "title": s.title,
            "kpi": s.kpi.id.as_str(),
            "product": s.kpi.product,
            "store": match &s.store { StoreSelector::All => "all".to_string(), StoreSelector::Named(n) => n.clone() },
            "window": s.window.as_str(),
            "window_range": self.window.as_ref().map(ResolvedWindow::to_json),
            "direction": s.direction.as_str(),
            "baseline": decimal_number(s.baseline),
            "target": decimal_number(s.target),
            "current": self.current.as_ref().map(Value::to_json).unwrap_or(Json::Null),
            "progress": self.progress.map(|p| decimal_number(p.round_dp(4))).unwrap_or(Json::Null),
            "expected_progress": self.expected.map(|p| decimal_number(p.round_dp(4))).unwrap_or(Json::Null),
            "status": self.status.map(|s| s.as_str()),
            "reason": self.reason,
            "note": self.note,
            "updated_at": self.updated_at.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "previous_value": self.previous.as_ref().map(Value::to_json).unwrap_or(Json::Null),
            "change": self.change().as_ref().map(Value::to_json).unwrap_or(Json::Null),
            "data_as_of": self.data_as_of.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "period_start": self.period_start.as_ref().map(|p| p.from.to_string()),
            "period_start_value": self.period_start.as_ref().map(|p| p.value.to_json()).unwrap_or(Json::Null),
            "period_start_from": self.period_start.as_ref().map(|p| match p.at {
                Some(_) => "checkin",
                None => "baseline",
            }),
            "change_since_period_start": self.change_since_period_start().as_ref().map(Value::to_json).unwrap_or(Json::Null),
        })
    }

    /// `current − the value at the start of the period`, of the KPI's kind.
    pub fn change_since_period_start(&self) -> Option<Value> {
        let (cur, start) = (self.current.as_ref()?, self.period_start.as_ref()?);
        Some(Value::of_kind(
            self.settings.kpi.id.kind(),
            cur.as_decimal() - start.value.as_decimal(),
        ))
    }

    /// `current − previous`, of the KPI's kind (null when either is).
    pub fn change(&self) -> Option<Value> {
        let (cur, prev) = (self.current.as_ref()?, self.previous.as_ref()?);
        Some(Value::of_kind(
            self.settings.kpi.id.kind(),
            cur.as_decimal() - prev.as_decimal(),
        ))
    }
}

/// A decimal as a JSON number (baselines, targets, progress: not money).
pub fn decimal_number(d: Decimal) -> Json {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Json::Null)
}

/// Evaluates every configured key result at `now`.
pub fn evaluate(settings: &Settings, loaded: &Loaded, now: DateTime<Utc>) -> Vec<KrReport> {
    settings
        .key_results
        .iter()
        .map(|kr| evaluate_one(kr, loaded, now))
        .collect()
}

fn evaluate_one(kr: &KeyResultSettings, loaded: &Loaded, now: DateTime<Utc>) -> KrReport {
    let mut report = KrReport {
        settings: kr.clone(),
        window: None,
        current: None,
        progress: None,
        expected: None,
        status: None,
        reason: None,
        note: None,
        updated_at: None,
        previous: None,
        data_as_of: None,
        period_start: None,
    };
    let stores = match loaded.select(&kr.store) {
        Ok(s) => s,
        Err(e) => {
            report.reason = Some(e);
            return report;
        }
    };
    let inputs = windowed(&stores, &kr.window, now);
    report.window = resolved(&inputs);
    match kpi::compute(&kr.kpi, &inputs) {
        Ok(c) => {
            if c.value.is_some() {
                report.note = c.reason;
            } else {
                report.reason = c.reason;
            }
            report.current = c.value;
        }
        Err(e) => report.reason = Some(e.to_string()),
    }
    if let Some(first) = stores.first() {
        let today = first.tz.local_date(now);
        let expected = okr::expected_progress(&kr.window.period(today), &first.tz, now);
        let eval = okr::evaluate(
            kr.direction,
            kr.baseline,
            kr.target,
            report.current.as_ref().map(Value::as_decimal),
            expected,
        );
        report.progress = eval.progress;
        report.expected = Some(eval.expected);
        report.status = eval.status;
    }
    report
}

/// Records a check-in for every key result whose value changed, with its outbox entries (one
/// per sink the key result names that wants it) in the same transaction; fills `updated_at`.
pub async fn record_checkins(
    db: &Store,
    sinks: &[crate::config::SinkSettings],
    reports: &mut [KrReport],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut written = 0;
    for r in reports.iter() {
        let Some(window) = &r.window else { continue };
        let checkin = NewCheckin {
            key_result: r.settings.id.clone(),
            kpi: r.settings.kpi.id.as_str().to_string(),
            value: r
                .current
                .as_ref()
                .map(|v| v.as_decimal().normalize().to_string()),
            value_kind: match r.settings.kpi.id.kind() {
                kpi::ValueKind::Count => "count",
                kpi::ValueKind::Money => "money",
                kpi::ValueKind::Rate => "rate",
                kpi::ValueKind::Number => "number",
            }
            .to_string(),
            progress: r.progress.map(|p| p.round_dp(4).to_string()),
            status: r.status.map(|s| s.as_str().to_string()),
            window_from: window.range.from.to_string(),
            window_to: window.range.to.to_string(),
            timezone: window.timezone.clone(),
        };
        let targets: Vec<crate::config::SinkSettings> = sinks
            .iter()
            .filter(|s| r.settings.sinks.contains(&s.name))
            .cloned()
            .collect();
        let (report, model) = (r.clone(), r.to_json());
        let plan = move |ctx: &crate::store::CheckinContext| {
            let body = crate::sinks::payload::checkin_body(&report, &model, ctx);
            let text = body.to_string();
            targets
                .iter()
                .filter(|s| {
                    let last = ctx
                        .last_bodies
                        .get(&s.name)
                        .and_then(|b| serde_json::from_str::<Json>(b).ok());
                    crate::sinks::wants(s, &body, last.as_ref())
                })
                .map(|s| crate::store::OutboxEntry {
                    sink: s.name.clone(),
                    body: text.clone(),
                })
                .collect()
        };
        if db.record_checkin(checkin, now, plan).await? {
            written += 1;
            tracing::info!(key_result = %r.settings.id, value = ?r.current, "key result check-in");
        }
    }
    attach_updated_at(db, reports).await?;
    Ok(written)
}

/// Fills `updated_at` from the latest check-ins.
pub async fn attach_updated_at(db: &Store, reports: &mut [KrReport]) -> Result<(), StoreError> {
    let latest: HashMap<String, DateTime<Utc>> = db
        .latest_checkins()
        .await?
        .into_iter()
        .map(|c| (c.checkin.key_result, c.at))
        .collect();
    for r in reports {
        r.updated_at = latest.get(&r.settings.id).copied();
    }
    Ok(())
}

/// Re-evaluates every key result and records check-ins for changed values.
pub async fn evaluate_key_results(
    settings: &Settings,
    db: &Store,
    clock: &Clock,
) -> Result<usize, crate::store::StoreError> {
    if settings.key_results.is_empty() {
        return Ok(0);
    }
    let now = clock.now();
    let loaded = Loaded::load_for_key_results(settings, db, now).await?;
    let mut reports = evaluate(settings, &loaded, now);
    record_checkins(db, &settings.sinks, &mut reports, now).await
}

/// Every key result's report as of `now`, with the time of its last check-in: what `krs`
/// prints.
pub async fn current_reports(
    settings: &Settings,
    db: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<KrReport>, StoreError> {
    let loaded = Loaded::load_for_key_results(settings, db, now).await?;
    let mut reports = evaluate(settings, &loaded, now);
    attach_updated_at(db, &mut reports).await?;
    attach_previous(db, &mut reports).await?;
    attach_data_as_of(settings, db, &mut reports).await?;
    attach_period_start(settings, db, &mut reports, now).await?;
    Ok(reports)
}

/// Fills `period_start`: the first check-in with a value made since the start of the key
/// result's period (its first day, in the store's time zone), else the baseline.
async fn attach_period_start(
    settings: &Settings,
    db: &Store,
    reports: &mut [KrReport],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for r in reports {
        // The store's zone, as the window was resolved (the first store's for "all").
        let zone = r
            .window
            .as_ref()
            .and_then(|w| w.timezone.split(' ').next())
            .and_then(|t| crate::domain::StoreTz::parse(t).ok())
            .or_else(|| match &r.settings.store {
                StoreSelector::Named(n) => settings.store(n).and_then(|s| s.timezone),
                StoreSelector::All => None,
            });
        let Some(tz) = zone else { continue };
        let period = r.settings.window.period(tz.local_date(now));
        let since = tz.day_start(period.from);
        let kind = r.settings.kpi.id.kind();
        let first = db.first_checkin_since(&r.settings.id, since).await?;
        r.period_start = Some(match first.map(|c| HistoryEntry::from_row(&c, kind)) {
            Some(HistoryEntry {
                at,
                value: Some(value),
                ..
            }) => PeriodStart {
                from: period.from,
                value,
                at: Some(at),
            },
            _ => PeriodStart {
                from: period.from,
                value: Value::of_kind(kind, r.settings.baseline),
                at: None,
            },
        });
    }
    Ok(())
}

/// Fills `previous`: of the last two check-ins of each key result, the newest one in the
/// current window whose value differs from the current value. A check-in of another window
/// (a new quarter, say) is no comparison, so it gives none.
async fn attach_previous(db: &Store, reports: &mut [KrReport]) -> Result<(), StoreError> {
    let rows = db.last_two_checkins().await?;
    for r in reports {
        let (Some(current), Some(window)) = (&r.current, &r.window) else {
            continue;
        };
        let from = window.range.from.to_string();
        let kind = r.settings.kpi.id.kind();
        r.previous = rows
            .iter()
            .filter(|c| c.checkin.key_result == r.settings.id && c.checkin.window_from == from)
            .map(|c| HistoryEntry::from_row(c, kind))
            .filter_map(|e| e.value)
            .find(|v| v.as_decimal() != current.as_decimal());
    }
    Ok(())
}

/// Fills `data_as_of` from the sync log.
async fn attach_data_as_of(
    settings: &Settings,
    db: &Store,
    reports: &mut [KrReport],
) -> Result<(), StoreError> {
    let totals = db.run_totals().await?;
    let last = |name: &str| {
        totals
            .iter()
            .find(|t| t.store == name)
            .and_then(|t| t.last_success)
    };
    for r in reports {
        r.data_as_of = match &r.settings.store {
            StoreSelector::Named(n) => last(n),
            StoreSelector::All => settings
                .stores
                .iter()
                .map(|s| last(&s.name))
                .collect::<Option<Vec<_>>>()
                .and_then(|v| v.into_iter().min()),
        };
    }
    Ok(())
}

/// One stored check-in of a key result, as `okrsync history` reports it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// The value as `krs` reports it (`None`: the value was undefined then).
    pub value: Option<Value>,
    pub progress: Option<Decimal>,
    pub status: Option<String>,
    /// The check-in's window and its time zone.
    pub window_from: String,
    pub window_to: String,
    pub timezone: String,
}

impl HistoryEntry {
    /// A stored check-in read back; `kind` is the key result's value kind, used when the row's
    /// own kind is not one we know.
    pub fn from_row(row: &crate::store::CheckinRow, kind: kpi::ValueKind) -> HistoryEntry {
        let c = &row.checkin;
        let kind = match c.value_kind.as_str() {
            "count" => kpi::ValueKind::Count,
            "money" => kpi::ValueKind::Money,
            "rate" => kpi::ValueKind::Rate,
            "number" => kpi::ValueKind::Number,
            _ => kind,
        };
        HistoryEntry {
            at: row.at,
            value: c
                .value
                .as_deref()
                .and_then(|v| v.parse::<Decimal>().ok())
                .map(|d| Value::of_kind(kind, d)),
            progress: c.progress.as_deref().and_then(|p| p.parse().ok()),
            status: c.status.clone(),
            window_from: c.window_from.clone(),
            window_to: c.window_to.clone(),
            timezone: c.timezone.clone(),
        }
    }

    /// The local date of the check-in in its window's time zone (UTC when unknown).
    pub fn local_date(&self) -> chrono::NaiveDate {
        let name = self.timezone.split(' ').next().unwrap_or_default();
        crate::domain::StoreTz::parse(name)
            .unwrap_or(crate::domain::StoreTz::UTC)
            .local_date(self.at)
    }

    /// The `history --format json` contract: `{"at", "value", "progress", "status"}`, the
    /// value as in `krs` JSON ([`Value::to_json`]).
    pub fn to_json(&self) -> Json {
        json!({
            "at": self.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "value": self.value.as_ref().map(Value::to_json).unwrap_or(Json::Null),
            "progress": self.progress.map(|p| decimal_number(p.round_dp(4))).unwrap_or(Json::Null),
            "status": self.status,
        })
    }
}

/// The check-ins of key result `id`, oldest first, read back as [`HistoryEntry`]s.
pub async fn history(db: &Store, kr: &KeyResultSettings) -> Result<Vec<HistoryEntry>, StoreError> {
    let kind = kr.kpi.id.kind();
    Ok(db
        .checkins_of(&kr.id)
        .await?
        .iter()
        .map(|r| HistoryEntry::from_row(r, kind))
        .collect())
}

/// The `okrsync kpis` report (also `GET /api/kpis`): every parameterless KPI of `sel` over
/// `window` at `now`, plus the product KPIs when `product` is given. A selection not synced
/// completely yet gives every KPI null with the reason, in the usual shape.
pub async fn kpis_report(
    settings: &Settings,
    db: &Store,
    sel: &StoreSelector,
    window: &WindowSpec,
    now: DateTime<Utc>,
    product: Option<&str>,
) -> Result<KpiReport, StoreError> {
    // One instant for loading and computing: the window loaded is the window computed.
    let loaded = Loaded::load_windows(
        settings,
        db,
        product.is_some(),
        std::slice::from_ref(window),
        now,
    )
    .await?;
    let mut report = match kpi_report(&loaded, sel, window, now) {
        Ok(r) => r,
        Err(reason) => {
            let tz = match sel {
                StoreSelector::Named(n) => settings.store(n).and_then(|s| s.timezone),
                StoreSelector::All => None,
            };
            empty_report(sel, window, tz, now, &reason)
        }
    };
    if let Some(p) = product {
        for id in [KpiId::ProductNetSales, KpiId::ProductUnits] {
            let spec = KpiSpec {
                id,
                product: Some(p.to_string()),
            };
            report
                .values
                .push((id, compute_one(&loaded, sel, window, now, &spec)));
        }
    }
    Ok(report)
}
