//! Bulk-operation backfill for large first syncs: start `bulkOperationRunQuery` (one per
//! shop at a time), poll `currentBulkOperation`, download the JSONL result, reassemble
//! children by `__parentId` (Shopify does not promise any line order), and commit the orders
//! sorted by id in batches, each with a cursor that counts the stored orders. A killed
//! backfill resumes from that count on the same operation's result; upserts are idempotent.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::api::{BulkOperation, BulkRunData, BulkStatusData, WireOrder};
use super::{Cursor, ShopifySource, convert, cursor_json, orders_page, query, sleep};
use crate::sources::{SourceError, SyncContext};
use crate::store::Page;

/// Orders per committed batch.
pub const BULK_BATCH: usize = 250;
/// First wait between two polls; doubles up to [`MAX_POLL`].
const FIRST_POLL: StdDuration = StdDuration::from_millis(200);
const MAX_POLL: StdDuration = StdDuration::from_secs(10);

/// Runs or resumes a bulk backfill; returns the incremental position that follows it.
pub(super) async fn backfill(
    src: &ShopifySource,
    ctx: &mut SyncContext<'_>,
    cursor: Option<Cursor>,
) -> Result<(DateTime<Utc>, u64), SourceError> {
    let current = status(src, ctx).await?;
    let resumed = match cursor {
        Some(Cursor::Bulk {
            operation,
            started_at,
            done,
        }) if current.as_ref().is_some_and(|c| c.id == operation) => {
            tracing::info!(store = %src.name, operation, done, "resuming the bulk backfill");
            Some((operation, started_at, done))
        }
        Some(Cursor::Bulk { operation, .. }) => {
            tracing::warn!(store = %src.name, operation, "the earlier bulk operation is no longer current; starting a new one");
            None
        }
        _ => None,
    };
    let (operation, started_at, done) = match resumed {
        Some(r) => r,
        None => {
            // Only one bulk query runs per shop: wait for one already running.
            if let Some(c) = &current
                && matches!(c.status.as_str(), "CREATED" | "RUNNING")
            {
                tracing::info!(store = %src.name, operation = %c.id, "another bulk operation is running; waiting for it to finish");
                wait_finished(src, ctx, &c.id).await?;
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
                    code: None,
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
            (op.id, ctx.started_at, 0)
        }
    };
    let op = wait_finished(src, ctx, &operation).await?;
    let orders = match op.url.as_deref() {
        None => Vec::new(),
        Some(url) => download(src, ctx, url).await?,
    };
    let total = orders.len() as u64;
    let after = Cursor::Incremental {
        at: started_at,
        id: 0,
    };
    let mut stored = done.min(total);
    if stored == total {
        let page = Page {
            cursor: Some(("orders".into(), cursor_json(&after))),
            ..Page::default()
        };
        ctx.commit(0, page).await?;
    }
    for batch in orders[stored as usize..].chunks(BULK_BATCH) {
        if ctx.stopping() {
            return Err(SourceError::Cancelled);
        }
        let mut page = orders_page(batch)?;
        stored += batch.len() as u64;
        let next = if stored == total {
            after.clone()
        } else {
            Cursor::Bulk {
                operation: operation.clone(),
                started_at,
                done: stored,
            }
        };
        page.cursor = Some(("orders".into(), cursor_json(&next)));
        ctx.commit(batch.len() as u64, page).await?;
        ctx.progress
            .update(&src.name, "orders_bulk", stored, Some(total));
    }
    ctx.progress.finish(&src.name, "orders_bulk", stored);
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

/// Polls until the operation `id` has finished; errors when it failed or was replaced.
async fn wait_finished(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
    id: &str,
) -> Result<BulkOperation, SourceError> {
    let mut delay = FIRST_POLL;
    loop {
        let op = status(src, ctx).await?;
        match op {
            Some(op) if op.id == id => match op.status.as_str() {
                "COMPLETED" => return Ok(op),
                "CREATED" | "RUNNING" | "CANCELING" => {}
                other => {
                    return Err(SourceError::Inconsistent {
                        url: src.endpoint(),
                        detail: format!(
                            "bulk operation {id} ended {other} ({}); the next run starts a new one",
                            op.error_code.as_deref().unwrap_or("no error code")
                        ),
                    });
                }
            },
            _ => {
                return Err(SourceError::Inconsistent {
                    url: src.endpoint(),
                    detail: format!(
                        "bulk operation {id} is no longer the shop's current one (another app started a bulk query?); the next run starts a new one"
                    ),
                });
            }
        }
        sleep(delay, ctx.shutdown).await?;
        delay = (delay * 2).min(MAX_POLL);
    }
}

/// Downloads the JSONL result (a signed URL: no token is sent) and reassembles orders.
async fn download(
    src: &ShopifySource,
    ctx: &SyncContext<'_>,
    url: &str,
) -> Result<Vec<WireOrder>, SourceError> {
    let short = url.split('?').next().unwrap_or(url).to_string();
    let resp = src
        .http
        .send(&format!("GET {short}"), ctx.shutdown, |c| c.get(url))
        .await?;
    let text = String::from_utf8_lossy(&resp.body);
    reassemble(&text).map_err(|detail| SourceError::Inconsistent { url: short, detail })
}

/// Rebuilds orders from JSONL lines: orders are lines without `__parentId`; line items and
/// refund line items point at their order or refund. Returns orders sorted by id number.
fn reassemble(text: &str) -> Result<Vec<WireOrder>, String> {
    let mut orders: Vec<Value> = Vec::new();
    let mut children: Vec<Value> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("JSONL line {} is not JSON: {e}", i + 1))?;
        if v.get("__parentId").is_some() {
            children.push(v);
        } else {
            orders.push(v);
        }
    }
    let mut order_index: HashMap<String, usize> = HashMap::new();
    let mut refund_index: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, o) in orders.iter_mut().enumerate() {
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        order_index.insert(id, i);
        if let Some(obj) = o.as_object_mut() {
            obj.insert("lineItems".into(), json!({"nodes": []}));
        }
        if let Some(refunds) = o.get_mut("refunds").and_then(Value::as_array_mut) {
            for (j, r) in refunds.iter_mut().enumerate() {
                let rid = r
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                refund_index.insert(rid, (i, j));
                if let Some(obj) = r.as_object_mut() {
                    obj.insert("refundLineItems".into(), json!({"nodes": []}));
                }
            }
        }
    }
    for mut c in children {
        let parent = c
            .get("__parentId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(obj) = c.as_object_mut() {
            obj.remove("__parentId");
        }
        let target = if let Some(&i) = order_index.get(&parent) {
            orders[i].pointer_mut("/lineItems/nodes")
        } else if let Some(&(i, j)) = refund_index.get(&parent) {
            orders[i].pointer_mut(&format!("/refunds/{j}/refundLineItems/nodes"))
        } else {
            return Err(format!(
                "a JSONL line points at `{parent}`, which is neither an order nor a refund in the result"
            ));
        };
        if let Some(Value::Array(a)) = target {
            a.push(c);
        }
    }
    let mut out = Vec::with_capacity(orders.len());
    for o in orders {
        let w: WireOrder = serde_json::from_value(o).map_err(|e| format!("order line: {e}"))?;
        out.push(w);
    }
    out.sort_by_key(|o| (convert::gid_number(&o.id), o.id.clone()));
    Ok(out)
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
        let rl = orders[1].refunds[0].refund_line_items.as_ref().unwrap();
        assert_eq!(rl.nodes.len(), 1);
        assert!(reassemble(r#"{"id":"x","__parentId":"nobody"}"#).is_err());
    }
}
