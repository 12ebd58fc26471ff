//! Reads stored data, computes KPIs and key-result progress (through the pure `kpi` and
//! `okr` modules), and records check-ins when a key result's value changes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

use crate::config::{KeyResultSettings, Settings, StoreSelector};
use crate::daemon::Clock;
use crate::kpi::{
    self, DateRange, KpiError, KpiId, KpiSpec, StoreData, Value, WindowSpec, WindowedStore,
};
use crate::okr::{self, Status};
use crate::store::{FixedTarget, Lines, NewCheckin, Store, StoreError};

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
        let mut stores = Vec::new();
        let mut missing = Vec::new();
        for s in &settings.stores {
            if !db.is_complete(&s.name).await? {
                missing.push(s.name.clone());
                continue;
            }
            let mut windows: Vec<WindowSpec> = Vec::new();
            // Lines only of the products the key results name (product KPIs read no other).
            let mut products = std::collections::BTreeSet::new();
            for kr in &settings.key_results {
                let reads = match &kr.store {
                    StoreSelector::All => true,
                    StoreSelector::Named(n) => n == &s.name,
                };
                if !reads {
                    continue;
                }
                if !windows.contains(&kr.window) {
                    windows.push(kr.window.clone());
                }
                if kr.kpi.id.needs_product()
                    && let Some(p) = kr.kpi.product.as_deref().map(str::trim)
                    && !p.is_empty()
                {
                    products.insert(p.to_string());
                }
            }
            let lines = if products.is_empty() {
                Lines::None
            } else {
                Lines::Products(products)
            };
            match db
                .load_store_windows_with(&s.name, s.timezone, lines, windows, now)
                .await?
            {
                Some(mut d) => {
                    attach_analytics(settings, db, &mut d).await?;
                    stores.push(d);
                }
                None => missing.push(s.name.clone()),
            }
        }
        Ok(Loaded { stores, missing })
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

pub(crate) fn resolved(
    inputs: &[WindowedStore<'_>],
    window: &WindowSpec,
) -> Option<ResolvedWindow> {
    let first = inputs.first()?;
    let mut tz = first.store.tz.name();
    if inputs.iter().any(|i| i.store.tz.name() != tz) {
        tz = format!("{tz} (each store in its own time zone)");
    }
    // `all_time` is shown from the first counted order's day of the selected stores.
    let first_day = if *window == WindowSpec::AllTime {
        inputs
            .iter()
            .flat_map(|i| {
                i.store
                    .orders
                    .iter()
                    .filter(|o| o.counted)
                    .map(|o| i.store.tz.local_date(o.created_at))
            })
            .min()
    } else {
        None
    };
    Some(ResolvedWindow {
        range: window.shown(first.range, first_day),
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
    let window_info = resolved(&inputs, window).ok_or("no store selected")?;
    let mut currencies: Vec<&str> = stores
        .iter()
        .filter_map(|s| s.currency.as_deref())
        .collect();
    currencies.dedup();
    let specs: Vec<KpiSpec> = KpiId::ALL
        .iter()
        .filter(|id| !id.needs_product())
        .map(|id| KpiSpec {
            id: *id,
            product: None,
        })
        .collect();
    // One walk over the orders for every KPI of the report.
    let values = specs
        .iter()
        .zip(kpi::compute_many(&specs, &inputs))
        .map(|(spec, c)| (spec.id, c.map_err(|e| e.to_string())))
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
    /// Per sink of this key result (configured or with entries in the outbox): its last
    /// delivery and what waits (filled by [`current_reports`]).
    pub deliveries: Vec<Delivery>,
    /// For a relative key result (`baseline_window`), the baseline and target fixed for the
    /// current period (then `settings.baseline` / `settings.target` hold them); `None` until
    /// they can be computed.
    pub fixed: Option<FixedTarget>,
    /// What the value is compared with since the start of the key result's period: the first
    /// check-in made inside the current period, else the baseline (filled by
    /// [`current_reports`]).
    pub period_start: Option<PeriodStart>,
}

/// Delivery state of one key result at one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub sink: String,
    /// Check-ins waiting to be delivered.
    pub pending: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// How long ago that was, when the report was made (for tables).
    pub last_delivered_ago: Option<chrono::Duration>,
    /// The error of the oldest pending entry's last attempt (redacted when recorded).
    pub last_error: Option<String>,
}

impl Delivery {
    pub fn to_json(&self) -> Json {
        json!({
            "sink": self.sink,
            "pending": self.pending,
            "last_delivered_at": self.last_delivered_at.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            "last_error": self.last_error,
        })
    }
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
            "baseline": self.baseline_known().then(|| decimal_number(s.baseline)),
            "target": self.baseline_known().then(|| decimal_number(s.target)),
            "computed_from": self.computed_from(),
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
            "deliveries": self.deliveries.iter().map(Delivery::to_json).collect::<Vec<_>>(),
            "period_start": self.period_start.as_ref().map(|p| p.from.to_string()),
            "period_start_value": self.period_start.as_ref().map(|p| p.value.to_json()).unwrap_or(Json::Null),
            "period_start_from": self.period_start.as_ref().map(|p| match p.at {
                Some(_) => "checkin",
                None => "baseline",
            }),
            "change_since_period_start": self.change_since_period_start().as_ref().map(Value::to_json).unwrap_or(Json::Null),
        })
    }

    /// Whether `settings.baseline` / `settings.target` are real numbers: always for a key
    /// result written with numbers; for a relative one, once fixed for the period.
    pub fn baseline_known(&self) -> bool {
        self.settings.relative.is_none() || self.fixed.is_some()
    }

    /// The `computed_from` of `krs` JSON: for a relative key result, the window its baseline is
    /// computed over and the relative target, with the days and time of the computation
    /// once done (null for a key result written with numbers).
    pub fn computed_from(&self) -> Json {
        let Some(rel) = &self.settings.relative else {
            return Json::Null;
        };
        let f = self.fixed.as_ref();
        json!({
            "baseline_window": rel.baseline_window.as_str(),
            "target": rel.written,
            "window_range": f.map(|f| json!({"from": f.window_from, "to": f.window_to, "timezone": f.timezone})),
            "period_from": f.map(|f| f.period_from.clone()),
            "computed_at": f.map(|f| f.computed_at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
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

/// The baselines and targets of relative key results, by key result id: fixed ones, or why
/// they cannot be computed yet.
pub type FixedTargets = HashMap<String, Result<FixedTarget, String>>;

/// Evaluates every configured key result at `now` (a relative key result without its fixed
/// baseline gets no progress: use [`evaluate_with`] after [`fix_relative_targets`]).
pub fn evaluate(settings: &Settings, loaded: &Loaded, now: DateTime<Utc>) -> Vec<KrReport> {
    evaluate_with(settings, loaded, now, &FixedTargets::new())
}

/// [`evaluate`] with the fixed baselines and targets of relative key results.
///
/// Key results over the same stores and window are computed together (`kpi::compute_many`):
/// one walk over the orders per window and product, not one per key result.
pub fn evaluate_with(
    settings: &Settings,
    loaded: &Loaded,
    now: DateTime<Utc>,
    fixed: &FixedTargets,
) -> Vec<KrReport> {
    let krs = &settings.key_results;
    let mut computed: Vec<Option<Result<kpi::Computed, KpiError>>> = vec![None; krs.len()];
    for (i, kr) in krs.iter().enumerate() {
        if computed[i].is_some() {
            continue;
        }
        let Ok(stores) = loaded.select(&kr.store) else {
            continue;
        };
        let group: Vec<usize> = (i..krs.len())
            .filter(|&j| krs[j].store == kr.store && krs[j].window == kr.window)
            .collect();
        let specs: Vec<KpiSpec> = group.iter().map(|&j| krs[j].kpi.clone()).collect();
        let inputs = windowed(&stores, &kr.window, now);
        for (j, c) in group.into_iter().zip(kpi::compute_many(&specs, &inputs)) {
            computed[j] = Some(c);
        }
    }
    krs.iter()
        .zip(computed)
        .map(|(kr, c)| evaluate_one(kr, loaded, now, fixed.get(&kr.id), c))
        .collect()
}

/// For every relative key result (`baseline_window`, `target = "+10%"`), its baseline and
/// target for the period containing `now`: read back when fixed already, else computed —
/// the KPI over the baseline window resolved on the period's first day, × (1 ± change) —
/// and stored, so they stay fixed for the whole period. Computed only once every store (and
/// source) it reads has synced successfully after the baseline window ended, and only from a
/// value without reservations; until then the reason is returned.
pub async fn fix_relative_targets(
    settings: &Settings,
    db: &Store,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<FixedTargets, StoreError> {
    let mut out = FixedTargets::new();
    for kr in &settings.key_results {
        let Some(rel) = &kr.relative else { continue };
        // A selection that cannot be read yet is reported by `evaluate` itself.
        let Ok(stores) = loaded.select(&kr.store) else {
            continue;
        };
        let Some(first) = stores.first() else {
            continue;
        };
        let period = kr.window.period(first.tz.local_date(now));
        let period_from = period.from.to_string();
        let window_name = rel.baseline_window.as_str();
        if let Some(t) = db
            .fixed_target(&kr.id, &period_from, &window_name, &rel.written)
            .await?
        {
            out.insert(kr.id.clone(), Ok(t));
            continue;
        }
        let range = rel.baseline_window.resolve(period.from);
        let what = format!("the baseline over {window_name} ({range})");
        // Every store and source read must have synced after the window ended.
        let feed = kpi::feed_of(kr.kpi.id);
        let mut sources: Vec<(&str, DateTime<Utc>)> = Vec::new();
        for s in &stores {
            let end = range.utc_bounds(&s.tz).1;
            sources.push((&s.name, end));
            for a in settings
                .analytics
                .iter()
                .filter(|a| Some(a.provider.feed()) == feed && a.stores.contains(&s.name))
            {
                sources.push((&a.name, end));
            }
        }
        let totals = db.run_totals().await?;
        let behind = sources.iter().find(|(name, end)| {
            totals
                .iter()
                .find(|t| t.store == *name)
                .and_then(|t| t.last_success)
                .is_none_or(|at| at < *end)
        });
        if let Some((name, _)) = behind {
            out.insert(
                kr.id.clone(),
                Err(format!(
                    "{what} is computed after `{name}` has synced successfully since that window ended: run `okrsync sync`"
                )),
            );
            continue;
        }
        let spec = WindowSpec::Explicit(range);
        let data = Loaded::load_windows(
            settings,
            db,
            kr.kpi.id.needs_product(),
            std::slice::from_ref(&spec),
            now,
        )
        .await?;
        let computed = match compute_one(&data, &kr.store, &spec, now, &kr.kpi) {
            Ok(c) => c,
            Err(e) => {
                out.insert(
                    kr.id.clone(),
                    Err(format!("{what} cannot be computed: {e}")),
                );
                continue;
            }
        };
        let baseline = match (&computed.value, &computed.reason) {
            (Some(v), None) => v.as_decimal(),
            (Some(_), Some(note)) => {
                out.insert(
                    kr.id.clone(),
                    Err(format!(
                        "{what} is not fixed while it has a reservation: {note}"
                    )),
                );
                continue;
            }
            (None, reason) => {
                out.insert(
                    kr.id.clone(),
                    Err(format!(
                        "{what} has no value yet: {}",
                        reason.as_deref().unwrap_or("undefined")
                    )),
                );
                continue;
            }
        };
        let Some(target) = okr::relative_target(baseline, rel.change) else {
            out.insert(kr.id.clone(), Err(format!("{what} is out of range")));
            continue;
        };
        let fixed = FixedTarget {
            key_result: kr.id.clone(),
            period_from,
            baseline_window: window_name,
            change: rel.written.clone(),
            window_from: range.from.to_string(),
            window_to: range.to.to_string(),
            timezone: first.tz.name(),
            baseline: baseline.normalize().to_string(),
            target: target.normalize().to_string(),
            computed_at: now,
        };
        let stored = db.fix_target(fixed).await?;
        tracing::info!(key_result = %kr.id, baseline = %stored.baseline, target = %stored.target, "relative key result fixed for its period");
        out.insert(kr.id.clone(), Ok(stored));
    }
    Ok(out)
}

/// `computed`: the key result's KPI, computed with the others of its window (`None` when its
/// stores cannot be selected).
fn evaluate_one(
    kr: &KeyResultSettings,
    loaded: &Loaded,
    now: DateTime<Utc>,
    fixed: Option<&Result<FixedTarget, String>>,
    computed: Option<Result<kpi::Computed, KpiError>>,
) -> KrReport {
    // A relative key result is scored against its fixed numbers, or not at all yet.
    let mut kr = kr.clone();
    let mut pending: Option<String> = None;
    let mut fixed_target = None;
    if kr.relative.is_some() {
        match fixed {
            Some(Ok(t)) => match (t.baseline.parse::<Decimal>(), t.target.parse::<Decimal>()) {
                (Ok(b), Ok(tg)) => {
                    kr.baseline = b;
                    kr.target = tg;
                    fixed_target = Some(t.clone());
                }
                _ => pending = Some("the stored baseline or target is not a number".into()),
            },
            Some(Err(why)) => pending = Some(why.clone()),
            None => pending = Some("the baseline is not computed yet".into()),
        }
    }
    let kr = &kr;
    let mut report = KrReport {
        fixed: fixed_target,
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
        deliveries: Vec::new(),
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
    report.window = resolved(&inputs, &kr.window);
    let computed = computed.unwrap_or_else(|| kpi::compute(&kr.kpi, &inputs));
    match computed {
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
    if let Some(why) = pending {
        report.progress = None;
        report.status = None;
        if report.current.is_some() {
            report.note = Some(match report.note.take() {
                Some(n) => format!("no progress yet: {why}; {n}"),
                None => format!("no progress yet: {why}"),
            });
        } else if report.reason.is_none() {
            report.reason = Some(why);
        }
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
    let fixed = fix_relative_targets(settings, db, &loaded, now).await?;
    let mut reports = evaluate_with(settings, &loaded, now, &fixed);
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
    let fixed = fix_relative_targets(settings, db, &loaded, now).await?;
    let mut reports = evaluate_with(settings, &loaded, now, &fixed);
    attach_updated_at(db, &mut reports).await?;
    attach_previous(db, &mut reports).await?;
    attach_data_as_of(settings, db, &mut reports).await?;
    attach_deliveries(db, &mut reports, now).await?;
    attach_period_start(settings, db, &mut reports, now).await?;
    Ok(reports)
}

/// Fills `deliveries`: every sink the key result names (in its order), then any other sink
/// holding entries of it (a sink since removed from the key result, with entries left).
async fn attach_deliveries(
    db: &Store,
    reports: &mut [KrReport],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let status = db.outbox_status().await?;
    for r in reports {
        let mine: Vec<&crate::store::OutboxStatus> = status
            .iter()
            .filter(|s| s.key_result == r.settings.id)
            .collect();
        let mut names: Vec<&str> = r.settings.sinks.iter().map(String::as_str).collect();
        for s in &mine {
            if !names.contains(&s.sink.as_str()) {
                names.push(&s.sink);
            }
        }
        r.deliveries = names
            .into_iter()
            .map(|n| {
                let s = mine.iter().find(|s| s.sink == n);
                let last = s.and_then(|s| s.last_delivered_at);
                Delivery {
                    sink: n.to_string(),
                    pending: s.map_or(0, |s| s.pending),
                    last_delivered_at: last,
                    last_delivered_ago: last.map(|t| now - t),
                    last_error: s.and_then(|s| s.last_error.clone()),
                }
            })
            .collect();
    }
    Ok(())
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
        r.period_start = match first.map(|c| HistoryEntry::from_row(&c, kind)) {
            Some(HistoryEntry {
                at,
                value: Some(value),
                ..
            }) => Some(PeriodStart {
                from: period.from,
                value,
                at: Some(at),
            }),
            // A relative key result's baseline is not known until fixed for the period.
            _ if !r.baseline_known() => None,
            _ => Some(PeriodStart {
                from: period.from,
                value: Value::of_kind(kind, r.settings.baseline),
                at: None,
            }),
        };
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
            .and_then(|t| t.data_as_of)
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
