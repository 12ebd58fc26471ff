//! Bulk-operation backfill for large first syncs: start `bulkOperationRunQuery` (one per
//! shop at a time), poll `currentBulkOperation`, download the JSONL result with its own long
//! timeout and parse it line by line as it arrives, reassemble children by `__parentId`
//! (Shopify does not promise any line order), and commit the orders sorted by id in batches,
//! each with a cursor that counts the stored orders. A killed backfill resumes from that count
//! on the same operation's result (downloaded again in full, since children may be anywhere
//! in it); upserts are idempotent. An operation that ended FAILED, CANCELED or EXPIRED, or
//! whose result expired (null `url`, `objectCount` > 0), is never resumed: its saved position
//! is cleared and a new operation starts.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::api::{BulkOperation, BulkRunData, BulkStatusData, WireOrder};
use super::{Cursor, ShopifySource, convert, cursor_json, orders_page, query, sleep};
use crate::sources::http::{backoff, excerpt};
use crate::sources::{SourceError, SyncContext};
use crate::store::Page;
use serde::de::IgnoredAny;

/// Orders per committed batch.
pub const BULK_BATCH: usize = 250;
/// First wait between two polls of the operation's status; it grows by half each poll up to
/// [`MAX_POLL`], so a small export is picked up at once and a finished one is noticed
/// within about a second (a status poll costs 1 point of the 100 restored each second).
const FIRST_POLL: StdDuration = StdDuration::from_millis(100);
const MAX_POLL: StdDuration = StdDuration::from_secs(1);
/// Total time allowed for downloading one bulk result (the store's `timeout_seconds` is
/// meant for API calls, not for a file of many megabytes).
const DOWNLOAD_TIMEOUT: StdDuration = StdDuration::from_secs(2 * 3600);
/// The download fails (and is retried) when no data arrives for this long.
const DOWNLOAD_IDLE: StdDuration = StdDuration::from_secs(120);

/// Runs or resumes a bulk backfill; returns the incremental position that follows it.
///
/// A saved bulk position is resumed only while its operation is the shop's current one and
/// can still deliver its result. An operation that ended FAILED, CANCELED or EXPIRED, or whose
/// result URL expired (null `url` with `objectCount` > 0), is dropped: the saved position is
/// cleared and a new operation starts (once per run; a second failure fails the run and the
/// next run starts afresh).
pub(super) async fn backfill(
    src: &ShopifySource,
    ctx: &mut SyncContext<'_>,
    cursor: Option<Cursor>,
) -> Result<(DateTime<Utc>, u64), SourceError> {
    let current = status(src, ctx).await?;
    let mut resume = match cursor {
        Some(Cursor::Bulk {
            operation,
            started_at,
            done,
        }) => match current.as_ref().filter(|c| c.id == operation) {
            Some(c) if c.ended_badly() => {
                tracing::warn!(store = %src.name, operation, status = %c.status, error_code = ?c.error_code, "the saved bulk operation ended without a result; starting a new one");
                None
            }
            Some(c) if c.result_expired() => {
                tracing::warn!(store = %src.name, operation, objects = c.objects(), "the saved bulk operation's result has expired (url is null); starting a new one");
                None
            }
            Some(_) => {
                tracing::info!(store = %src.name, operation, done, "resuming the bulk backfill");
                Some((operation, started_at, done))
            }
            None => {
                tracing::warn!(store = %src.name, operation, "the earlier bulk operation is no longer current; starting a new one");
                None
            }
        },
        _ => None,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (operation, started_at, done) = match resume.take() {
            Some(r) => r,
            None => start(src, ctx).await?,
        };
        let unusable = match wait_finished(src, ctx, &operation).await? {
            Ok(op) if op.result_expired() => format!(
                "bulk operation {operation} completed but its result URL is null although it holds {} (results expire after 7 days)",
                crate::text::plural(op.objects(), "object")
            ),
            Ok(op) => {
                return store_result(src, ctx, &op, &operation, started_at, done).await;
            }
            Err(why) => why,
        };
        // Never resume this operation again: the next attempt (or run) starts a new one.
        ctx.db.delete_cursor(ctx.store_id, "orders").await?;
        if attempt >= 2 {
            return Err(SourceError::Inconsistent {
                url: src.endpoint(),
                detail: format!(
                    "{unusable}; the saved bulk position was cleared, so the next run starts a new bulk operation (if this repeats, check the shop's bulk operations and `okrsync check --online`)"
                ),
            });
        }
        tracing::warn!(store = %src.name, "{unusable}; starting a new bulk operation");
    }
}

/// Starts a bulk export of every order updated up to the run's start (waiting first for one
/// already running: Shopify runs one bulk query per shop at a time) and saves its position.
async fn start(
    src: &ShopifySource,
    ctx: &mut SyncContext<'_>,
) -> Result<(String, DateTime<Utc>, u64), SourceError> {
    if let Some(c) = status(src, ctx).await?
        && matches!(c.status.as_str(), "CREATED" | "RUNNING")
    {
        tracing::info!(store = %src.name, operation = %c.id, "another bulk operation is running; waiting for it to finish");
        let _ = wait_finished(src, ctx, &c.id).await?;
    }
    let until = ctx.started_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let d: BulkRunData = src
        .gql(
            "BulkRun",
            &query::bulk_run(&until),
            json!({}),
            10,
            ctx.shutdown,
        )
        .await?;
    let payload = d.bulk_operation_run_query;
    let Some(op) = payload.bulk_operation else {
        return Err(SourceError::GraphQl {
            url: src.endpoint(),
            query: "BulkRun".into(),
            code: payload.user_errors.iter().find_map(|e| e.code.clone()),
            message: payload
                .user_errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        });
    };
    let c = Cursor::Bulk {
        operation: op.id.clone(),
        started_at: ctx.started_at,
        done: 0,
    };
    let page = Page {
        cursor: Some(("orders".into(), cursor_json(&c))),
        ..Page::default()
    };
    ctx.commit(0, page).await?;
    Ok((op.id, ctx.started_at, 0))
}

/// Downloads a completed operation's result and commits the orders not yet stored.
async fn store_result(
    src: &ShopifySource,
    ctx: &mut SyncContext<'_>,
    op: &BulkOperation,
    operation: &str,
    started_at: DateTime<Utc>,
    done: u64,
) -> Result<(DateTime<Utc>, u64), SourceError> {
    // A null url with objectCount 0 is a genuinely empty result (expired ones are caught
    // by the caller). The whole file is read again on resume: Shopify promises no line
    // order, so an order's children may be anywhere in it.
    let orders = match op.url.as_deref() {
        None => Vec::new(),
        Some(url) => download(src, ctx, url).await?,
    };
    let mut orders = orders;
    let total = orders.len() as u64;
    let after = Cursor::Incremental {
        at: started_at,
        id: 0,
    };
    let mut stored = done.min(total) as usize;
    if stored as u64 == total {
        let page = Page {
            cursor: Some(("orders".into(), cursor_json(&after))),
            ..Page::default()
        };
        ctx.commit(0, page).await?;
    }
    while stored < orders.len() {
        if ctx.stopping() {
            return Err(SourceError::Cancelled);
        }
        // The next orders whose refunds fill one batched follow-up (at least one order):
        // they are completed, then committed in batches, each with the count of stored
        // orders. A kill repeats at most this one follow-up request.
        let mut end = stored;
        let mut refunds = 0;
        while end < orders.len() {
            let n = orders[end].refunds;
            if end > stored && refunds + n > query::BATCH_REFUNDS as usize {
                break;
            }
            refunds += n;
            end += 1;
        }
        // Parsed only now (the raw text is dropped as it goes), so the whole result is
        // never held twice.
        let mut window = Vec::with_capacity(end - stored);
        for raw in &mut orders[stored..end] {
            window.push(std::mem::take(raw).parse().map_err(|detail| {
                SourceError::Inconsistent {
                    url: "bulk result".into(),
                    detail,
                }
            })?);
        }
        src.fill_refund_lines(&mut window, ctx.shutdown).await?;
        for batch in window.chunks(BULK_BATCH) {
            if ctx.stopping() {
                return Err(SourceError::Cancelled);
            }
            let mut page = orders_page(batch)?;
            stored += batch.len();
            let next = if stored as u64 == total {
                after.clone()
            } else {
                Cursor::Bulk {
                    operation: operation.to_string(),
                    started_at,
                    done: stored as u64,
                }
            };
            page.cursor = Some(("orders".into(), cursor_json(&next)));
            super::super::distrust_future_dates(&src.name, &mut page, ctx.clock.now());
            // A backfill reads the shop's current state: it is the truth.
            page.overwrite = true;
            ctx.commit(batch.len() as u64, page).await?;
            ctx.progress
                .update(&src.name, "orders_bulk", stored as u64, Some(total));
        }
    }
    ctx.progress.finish(&src.name, "orders_bulk", stored as u64);
    Ok((started_at, 0))
}

async fn status(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
) -> Result<Option<BulkOperation>, SourceError> {
    let d: BulkStatusData = src
        .gql("BulkStatus", query::BULK_STATUS, json!({}), 1, ctx.shutdown)
        .await?;
    Ok(d.current_bulk_operation)
}

/// Polls until the operation `id` has finished. `Ok(Err(why))` when it ended without a
/// result (FAILED, CANCELED, EXPIRED) or another operation replaced it.
async fn wait_finished(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
    id: &str,
) -> Result<Result<BulkOperation, String>, SourceError> {
    let mut delay = FIRST_POLL;
    loop {
        let op = status(src, ctx).await?;
        match op {
            Some(op) if op.id == id => match op.status.as_str() {
                "COMPLETED" => return Ok(Ok(op)),
                "CREATED" | "RUNNING" | "CANCELING" => {}
                other => {
                    return Ok(Err(format!(
                        "bulk operation {id} ended {other} ({})",
                        op.error_code.as_deref().unwrap_or("no error code")
                    )));
                }
            },
            _ => {
                return Ok(Err(format!(
                    "bulk operation {id} is no longer the shop's current one (another app started a bulk query?)"
                )));
            }
        }
        sleep(delay, ctx.shutdown).await?;
        delay = (delay * 3 / 2).min(MAX_POLL);
    }
}

/// Downloads the JSONL result (a signed URL: no token is sent) with its own long timeout,
/// parsing it line by line as chunks arrive (the text is never held whole), and reassembles
/// the orders. Transport errors, 429 and 5xx are retried per the store's retry policy.
async fn download(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
    url: &str,
) -> Result<Vec<RawOrder>, SourceError> {
    let short = url.split('?').next().unwrap_or(url).to_string();
    let what = format!("GET {short}");
    let policy = src.http.policy();
    let mut attempt = 0;
    loop {
        match download_once(src, ctx, url, &what).await {
            Ok(r) => {
                return r
                    .finish()
                    .map_err(|detail| SourceError::Inconsistent { url: short, detail });
            }
            Err((e, retryable)) => {
                if !retryable || attempt >= policy.max_retries {
                    return Err(e);
                }
                src.http
                    .counters()
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(store = %src.name, attempt = attempt + 1, "bulk result download failed, retrying: {e}");
                sleep(backoff(policy.base, attempt), ctx.shutdown).await?;
                attempt += 1;
            }
        }
    }
}

/// One download attempt; `Err((error, retryable))`.
async fn download_once(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
    url: &str,
    what: &str,
) -> Result<Reassembler, (SourceError, bool)> {
    if ctx.stopping() {
        return Err((SourceError::Cancelled, false));
    }
    src.http
        .counters()
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut resp = src
        .http
        .inner()
        .get(url)
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| src.http.transport_failure(what, e))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        return Err((
            SourceError::Status {
                url: what.to_string(),
                status,
                body: src.http.redactor().redact(&excerpt(&body)),
            },
            status == 429 || status >= 500,
        ));
    }
    let mut r = Reassembler::default();
    let mut partial: Vec<u8> = Vec::new();
    loop {
        if ctx.stopping() {
            return Err((SourceError::Cancelled, false));
        }
        let chunk = match tokio::time::timeout(DOWNLOAD_IDLE, resp.chunk()).await {
            Err(_) => {
                return Err((
                    SourceError::Http {
                        url: what.to_string(),
                        message: format!(
                            "stalled: no data for {} s while downloading the bulk result",
                            DOWNLOAD_IDLE.as_secs()
                        ),
                    },
                    true,
                ));
            }
            Ok(Err(e)) => return Err(src.http.transport_failure(what, e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => c,
        };
        let mut rest: &[u8] = &chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let line = if partial.is_empty() {
                &rest[..i]
            } else {
                partial.extend_from_slice(&rest[..i]);
                &partial[..]
            };
            let res = r.push_line(line);
            partial.clear();
            res.map_err(|detail| {
                (
                    SourceError::Inconsistent {
                        url: what.to_string(),
                        detail,
                    },
                    false,
                )
            })?;
            rest = &rest[i + 1..];
        }
        partial.extend_from_slice(rest);
        // The result is streamed line by line; one line (one object) is never near the limit
        // unless the answer is not JSONL at all.
        if partial.len() as u64 > src.http.max_response_bytes() {
            return Err((
                SourceError::Http {
                    url: what.to_string(),
                    message: format!(
                        "failed: one line of the bulk result is larger than {} MiB, the limit set by max_response_mb; okrsync stopped reading it (not retried)",
                        src.http.max_response_bytes() >> 20
                    ),
                },
                false,
            ));
        }
    }
    r.push_line(&partial).map_err(|detail| {
        (
            SourceError::Inconsistent {
                url: what.to_string(),
                detail,
            },
            false,
        )
    })?;
    Ok(r)
}

/// Collects JSONL lines: orders are lines without `__parentId`; line items point at their
/// order, anywhere in the file. Lines are kept as raw text (a parsed tree costs several
/// times the text) and each order is parsed only when its window is stored
/// ([`RawOrder::parse`]). Refund line items are not in okrsync's bulk query (they come from
/// follow-ups); lines pointing at a refund (a result of an older query shape) are ignored.
#[derive(Default)]
struct Reassembler {
    orders: Vec<RawOrder>,
    /// Raw child lines by the id of their order.
    children: HashMap<Box<str>, Vec<Box<str>>>,
    lines: usize,
}

/// One order of a bulk result, not parsed yet.
#[derive(Default)]
pub(super) struct RawOrder {
    id: Box<str>,
    /// Refunds listed in the order's line (each needs a refund-lines follow-up).
    pub refunds: usize,
    text: Box<str>,
    lines: Vec<Box<str>>,
}

/// The only fields read from a line while collecting.
#[derive(serde::Deserialize)]
struct LineHead {
    #[serde(rename = "__parentId", default)]
    parent: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    refunds: Option<Vec<IgnoredAny>>,
}

impl RawOrder {
    /// The order with its line items attached.
    pub(super) fn parse(self) -> Result<WireOrder, String> {
        let mut o: Value = serde_json::from_str(&self.text).map_err(|e| e.to_string())?;
        let mut list = Vec::with_capacity(self.lines.len());
        for raw in self.lines {
            let mut c: Value = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
            if let Some(obj) = c.as_object_mut() {
                obj.remove("__parentId");
            }
            list.push(c);
        }
        if let Some(obj) = o.as_object_mut() {
            obj.insert("lineItems".into(), json!({ "nodes": list }));
        }
        serde_json::from_value(o).map_err(|e| format!("order line {}: {e}", self.id))
    }
}

impl Reassembler {
    fn push_line(&mut self, line: &[u8]) -> Result<(), String> {
        self.lines += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        // Validates the whole line as JSON while reading only a few fields.
        let head: LineHead = serde_json::from_slice(line)
            .map_err(|e| format!("JSONL line {} is not JSON: {e}", self.lines))?;
        let text: Box<str> = std::str::from_utf8(line)
            .map_err(|e| format!("JSONL line {} is not UTF-8: {e}", self.lines))?
            .into();
        match head.parent {
            Some(parent) if parent.starts_with("gid://shopify/Refund/") => {}
            Some(parent) => self
                .children
                .entry(parent.into_boxed_str())
                .or_default()
                .push(text),
            None => self.orders.push(RawOrder {
                id: head.id.unwrap_or_default().into_boxed_str(),
                refunds: head.refunds.map_or(0, |r| r.len()),
                text,
                lines: Vec::new(),
            }),
        }
        Ok(())
    }

    /// Attaches line items to their orders; returns the orders sorted by id number.
    fn finish(self) -> Result<Vec<RawOrder>, String> {
        let Reassembler {
            mut orders,
            mut children,
            ..
        } = self;
        for o in &mut orders {
            if let Some(kids) = children.remove(&o.id) {
                o.lines = kids;
            }
        }
        if let Some(parent) = children.keys().next() {
            return Err(format!(
                "a JSONL line points at `{parent}`, which is not an order in the result"
            ));
        }
        orders.sort_by(|a, b| {
            (convert::gid_number(&a.id), &a.id).cmp(&(convert::gid_number(&b.id), &b.id))
        });
        Ok(orders)
    }
}

#[cfg(test)]
fn reassemble(text: &str) -> Result<Vec<WireOrder>, String> {
    let mut r = Reassembler::default();
    for line in text.lines() {
        r.push_line(line.as_bytes())?;
    }
    r.finish()?.into_iter().map(RawOrder::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_attach_to_their_parents_in_any_order() {
        let text = r#"
{"id":"gid://shopify/LineItem/5","quantity":1,"__parentId":"gid://shopify/Order/2"}
{"id":"gid://shopify/Order/2","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","refunds":[{"id":"gid://shopify/Refund/9","createdAt":"2026-01-02T00:00:00Z"}]}
{"id":"gid://shopify/RefundLineItem/1","lineItem":{"id":"gid://shopify/LineItem/5"},"quantity":1,"__parentId":"gid://shopify/Refund/9"}
{"id":"gid://shopify/Order/1","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}
"#;
        let orders = reassemble(text).unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!(orders[0].id, "gid://shopify/Order/1");
        assert_eq!(orders[1].line_items.nodes.len(), 1);
        // Refund lines come from follow-ups: still to be read.
        assert!(orders[1].refunds[0].refund_line_items.is_none());
        assert!(reassemble(r#"{"id":"x","__parentId":"nobody"}"#).is_err());
    }
}
