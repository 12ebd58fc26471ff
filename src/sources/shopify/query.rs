//! The GraphQL documents okrsync sends to Shopify, and the page sizes that keep each query's
//! requested cost under Shopify's 1000-point single-query cap.
//!
//! Shopify estimates a query before running it: an object costs 1, a scalar 0, and a
//! connection 2 + `first` × the cost of one node. A `MoneyBag { shopMoney { amount } }` is
//! therefore 2. With those rules one order node below costs
//! `ORDER_NODE + LINES_PER_ORDER × LINE_NODE + REFUNDS_PER_ORDER × REFUND_NODE + 2` and the
//! page size is the largest `first` that keeps the total under [`MAX_COST`].

/// Shopify rejects a query whose requested cost exceeds 1000.
pub const MAX_COST: u32 = 1000;
/// Line items fetched with each order; orders with more get a follow-up query.
pub const LINES_PER_ORDER: u32 = 5;
/// Refunds listed with each order (an order rarely has more than a few).
pub const REFUNDS_PER_ORDER: u32 = 10;
/// Order object 1 + customer 1 + four MoneyBags × 2.
const ORDER_NODE: u32 = 10;
/// LineItem 1 + product 1 + originalTotalSet 2 + a discount allocation 3 + a tax line 3.
const LINE_NODE: u32 = 10;
/// Refund 1 + totalRefundedSet 2.
const REFUND_NODE: u32 = 3;
/// RefundLineItem 1 + lineItem 1 + two MoneyBags × 2.
const REFUND_LINE_NODE: u32 = 6;

/// Requested cost of one orders page of `first` orders.
pub const fn orders_cost(first: u32) -> u32 {
    2 + first * (ORDER_NODE + 2 + LINES_PER_ORDER * LINE_NODE + REFUNDS_PER_ORDER * REFUND_NODE)
}

/// The largest orders page under the cap (10 with the constants above: cost 922).
pub const ORDERS_FIRST: u32 = (MAX_COST - 2)
    / (ORDER_NODE + 2 + LINES_PER_ORDER * LINE_NODE + REFUNDS_PER_ORDER * REFUND_NODE);
/// Line items per follow-up page (`node(id:) { lineItems }`): 1 + 2 + 90 × 10 = 903.
pub const MORE_LINES_FIRST: u32 = 90;
/// Refund line items per follow-up page: 1 + 2 + 150 × 6 = 903.
pub const REFUND_LINES_FIRST: u32 = 150;
/// Refund line items read with each refund of a batched `nodes(ids:)` follow-up; a refund
/// with more is paged on with [`refund_lines`] from its `endCursor`.
pub const BATCH_LINES_FIRST: u32 = 4;
/// Refunds per batched follow-up: each costs 1 + 2 + 4 × 6 = 27, so 36 cost 972.
pub const BATCH_REFUNDS: u32 = MAX_COST / (3 + BATCH_LINES_FIRST * REFUND_LINE_NODE);
/// Refunds listed by the follow-up query for an order that returned
/// [`REFUNDS_PER_ORDER`] refunds (the list may have been cut): 3 + 250 × 3 = 753.
pub const ALL_REFUNDS_FIRST: u32 = 250;
/// Ids per reconciliation page: 2 + 250 × 1.
pub const IDS_FIRST: u32 = 250;
/// Abandoned checkouts per page: 2 + 250 × 1.
pub const CHECKOUTS_FIRST: u32 = 250;

pub const fn more_lines_cost() -> u32 {
    3 + MORE_LINES_FIRST * LINE_NODE
}

pub const fn all_refunds_cost() -> u32 {
    3 + ALL_REFUNDS_FIRST * REFUND_NODE
}

pub const fn refund_lines_cost() -> u32 {
    3 + REFUND_LINES_FIRST * REFUND_LINE_NODE
}

/// Requested cost of a batched refund-lines follow-up for `ids` refunds: `nodes(ids:)`
/// returns a list, so each id costs one Refund object (1) plus its connection
/// (2 + `BATCH_LINES_FIRST` × a refund line).
pub const fn refund_lines_batch_cost(ids: u32) -> u32 {
    ids * (3 + BATCH_LINES_FIRST * REFUND_LINE_NODE)
}

pub const SHOP: &str = "query Shop { shop { name ianaTimezone currencyCode } }";

/// The shop's facts and the token's scopes in one request (each sync starts with both).
pub const SHOP_AND_SCOPES: &str = "query ShopAndScopes { shop { name ianaTimezone currencyCode } \
    currentAppInstallation { accessScopes { handle } } }";

pub const SCOPES: &str = "query Scopes { currentAppInstallation { accessScopes { handle } } }";

pub const ORDERS_COUNT: &str = "query OrdersCount($query: String) { ordersCount(query: $query, limit: null) { count precision } }";

const LINE_FIELDS: &str = "id name sku quantity product { id } \
    originalTotalSet { shopMoney { amount } } \
    discountAllocations { allocatedAmountSet { shopMoney { amount } } } \
    taxLines { rate priceSet { shopMoney { amount } } }";

const REFUND_LINE_FIELDS: &str = "lineItem { id } quantity \
    subtotalSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } }";

/// Order fields without connections (shared by the paged query and the bulk query).
const ORDER_FIELDS: &str = "id name createdAt updatedAt cancelledAt test taxesIncluded email \
    displayFinancialStatus currencyCode customer { id } \
    totalShippingPriceSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } } \
    totalPriceSet { shopMoney { amount } } totalRefundedSet { shopMoney { amount } }";

/// Incremental orders, oldest change first: variables `first`, `after`, `query`, `lines`,
/// `refunds`.
pub fn orders() -> String {
    format!(
        "query Orders($first: Int!, $after: String, $query: String, $lines: Int!, $refunds: Int!) {{ \
         orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{ \
         pageInfo {{ hasNextPage endCursor }} \
         nodes {{ {ORDER_FIELDS} \
         lineItems(first: $lines) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }} \
         refunds(first: $refunds) {{ id createdAt totalRefundedSet {{ shopMoney {{ amount }} }} }} }} }} }}"
    )
}

/// The rest of an order's line items: variables `id`, `first`, `after`.
pub fn more_lines() -> String {
    format!(
        "query OrderLines($id: ID!, $first: Int!, $after: String) {{ node(id: $id) {{ ... on Order {{ \
         lineItems(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE_FIELDS} }} }} }} }} }}"
    )
}

/// Every refund of an order (when the orders page returned the cap): variables `id`, `first`.
pub fn all_refunds() -> String {
    "query OrderRefunds($id: ID!, $first: Int!) { node(id: $id) { ... on Order { \
     refunds(first: $first) { id createdAt totalRefundedSet { shopMoney { amount } } } } } }"
        .to_string()
}

/// A refund's line items: variables `id`, `first`, `after`.
pub fn refund_lines() -> String {
    format!(
        "query RefundLines($id: ID!, $first: Int!, $after: String) {{ node(id: $id) {{ ... on Refund {{ \
         refundLineItems(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {REFUND_LINE_FIELDS} }} }} }} }} }}"
    )
}

/// The line items of many refunds at once: variables `ids` (refund GIDs, at most
/// [`BATCH_REFUNDS`]) and `first`. A refund whose `pageInfo.hasNextPage` is true is paged on
/// with [`refund_lines`].
pub fn refund_lines_batch() -> String {
    format!(
        "query RefundLinesBatch($ids: [ID!]!, $first: Int!) {{ nodes(ids: $ids) {{ ... on Refund {{ id \
         refundLineItems(first: $first) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {REFUND_LINE_FIELDS} }} }} }} }} }}"
    )
}

/// Every order id (deleted-order reconciliation): variables `first`, `after`.
pub const ORDER_IDS: &str = "query OrderIds($first: Int!, $after: String) { \
    orders(first: $first, after: $after, sortKey: ID) { pageInfo { hasNextPage endCursor } nodes { id } } }";

/// Abandoned checkouts, recovered ones included (Shopify lists both; `completedAt` tells
/// them apart): variables `first`, `after`, `query` (an `updated_at:>=` filter; there is no
/// `UPDATED_AT` sort key, so pages come by id and the whole filtered list is read).
pub const ABANDONED: &str = "query AbandonedCheckouts($first: Int!, $after: String, $query: String) { \
    abandonedCheckouts(first: $first, after: $after, sortKey: ID, query: $query) { \
    pageInfo { hasNextPage endCursor } nodes { id createdAt completedAt } } }";

/// The bulk export of every order updated up to `until` (RFC 3339): orders (a connection)
/// with their line items (a connection, nesting depth 2) and refund headers (`refunds` is a
/// list, inline in the order's line). A refund's line items are a connection, and Shopify
/// refuses "a connection field within a list field" in a bulk query, so they come afterwards
/// from [`refund_lines_batch`] follow-ups.
pub fn bulk_query(until: &str) -> String {
    format!(
        "{{ orders(sortKey: UPDATED_AT, query: \"updated_at:<='{until}'\") {{ edges {{ node {{ {ORDER_FIELDS} \
         refunds {{ id createdAt totalRefundedSet {{ shopMoney {{ amount }} }} }} \
         lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }} }} }}"
    )
}

/// Starts the bulk export of [`bulk_query`].
pub fn bulk_run(until: &str) -> String {
    let inner = bulk_query(until);
    let quoted = serde_json::to_string(&inner).unwrap_or_default();
    format!(
        "mutation BulkRun {{ bulkOperationRunQuery(query: {quoted}) {{ \
         bulkOperation {{ id status }} userErrors {{ field message }} }} }}"
    )
}

pub const BULK_STATUS: &str = "query BulkStatus { currentBulkOperation { id status errorCode \
    objectCount rootObjectCount url partialDataUrl } }";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_stays_under_the_cost_cap() {
        const { assert!(ORDERS_FIRST >= 1) };
        assert!(
            orders_cost(ORDERS_FIRST) < MAX_COST,
            "{}",
            orders_cost(ORDERS_FIRST)
        );
        assert!(orders_cost(ORDERS_FIRST + 1) > MAX_COST);
        assert!(more_lines_cost() < MAX_COST);
        assert!(refund_lines_cost() < MAX_COST);
        assert!(all_refunds_cost() < MAX_COST);
        assert!(refund_lines_batch_cost(BATCH_REFUNDS) <= MAX_COST);
        assert!(refund_lines_batch_cost(BATCH_REFUNDS + 1) > MAX_COST);
        const { assert!(2 + IDS_FIRST < MAX_COST && 2 + CHECKOUTS_FIRST < MAX_COST) };
    }

    #[test]
    fn bulk_query_is_a_quoted_string() {
        let q = bulk_run("2026-01-01T00:00:00Z");
        assert!(q.contains(r#"updated_at:<='2026-01-01T00:00:00Z'"#));
        assert!(q.starts_with("mutation BulkRun"));
        assert!(
            !q.contains("refundLineItems"),
            "a connection inside the refunds list"
        );
    }
}
