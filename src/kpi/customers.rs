//! Who placed an order, and what the customer KPIs need from a store's whole history
//! (`kpi-definitions.md`, "Customers"; `repeat_purchase_rate`, `returning_customer_rate`,
//! `new_customers`).
//!
//! A window's customer figures need, besides the window's orders, two facts from the rest of
//! the history: which registered customer a guest email belongs to, and each customer's first
//! counted order ever. [`CustomerHistory`] holds them. It is built here from every order of a
//! store ([`CustomerHistory::from_orders`], the reference), or by the store's loader with
//! indexed queries for the customers of the loaded orders only (a window-limited load,
//! [`Partial`]); both must give the same figures.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};

use super::OrderFacts;
use super::compute::TracedCustomer;

/// What a window-limited load holds: the counted orders created in `spans`, and the history
/// of their customers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partial {
    /// Half-open instant ranges `[start, end)`, sorted and disjoint: every counted order
    /// created in them (and every abandoned checkout) is loaded; nothing else is. A KPI over a
    /// window outside them is an error, never a silent 0.
    pub spans: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The customers of the loaded orders.
    pub customers: CustomerHistory,
    /// `Some`: only the lines of these products (ids or SKUs, trimmed) are loaded; a product
    /// KPI of another product is an error. `None`: every line, when lines were loaded.
    pub line_products: Option<BTreeSet<String>>,
}

impl Partial {
    /// Whether `[start, end)` lies inside one loaded span (an empty range always does).
    pub fn covers(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start >= end || self.spans.iter().any(|(s, e)| *s <= start && end <= *e)
    }
}

/// A hash map with a fast hasher: customer KPIs hash every customer of a window.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A customer's email as the store keeps it: the keyed hash (64 lower-case hex digits) kept
/// as its 32 bytes, so a loaded order holds it inline (no allocation per order) and maps hash
/// and compare half the bytes; any other text (never written by the store, but accepted)
/// kept as that text. [`EmailKey::new`] and `Display` round-trip the stored text exactly.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EmailKey {
    Hash([u8; 32]),
    Text(Box<str>),
}

impl EmailKey {
    /// The key of a stored email (trimmed, as the KPIs have always read it); `None` when blank.
    pub fn new(stored: &str) -> Option<EmailKey> {
        let s = stored.trim();
        if s.is_empty() {
            return None;
        }
        Some(match decode_hash(s) {
            Some(bytes) => EmailKey::Hash(bytes),
            None => EmailKey::Text(s.into()),
        })
    }

    /// The first 12 characters of the stored text (a listing's short name for a guest).
    pub fn short(&self) -> String {
        match self {
            EmailKey::Hash(b) => b[..6].iter().map(|b| format!("{b:02x}")).collect(),
            EmailKey::Text(t) => t.get(..12).unwrap_or(t).to_string(),
        }
    }
}

/// The value of each lower-case hex digit; 0xFF for any other byte.
const HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The 32 bytes of 64 lower-case hex digits (upper case is left as text: its `Display` would
/// not give the stored text back). A table look-up per digit: every loaded order's email
/// goes through here.
fn decode_hash(s: &str) -> Option<[u8; 32]> {
    let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        bad |= hi | lo;
        *o = hi << 4 | lo;
    }
    // A digit is at most 0x0F: any bit above says a byte was not one.
    (bad & 0xF0 == 0).then_some(out)
}

impl fmt::Display for EmailKey {
    /// The stored text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailKey::Hash(b) => b.iter().try_for_each(|b| write!(f, "{b:02x}")),
            EmailKey::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for EmailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailKey({self})")
    }
}

/// Identity and first counted order of customers. Keys are as stored: registered customer ids
/// and keyed email hashes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerHistory {
    /// Guest email → the registered customer it belongs to: the smallest id among the
    /// store's orders (counted or not) that carry both the id and the email. Emails that no
    /// registered order carries are absent.
    pub email_owner: FastMap<EmailKey, String>,
    /// First counted order ever of each registered customer, their merged guest orders
    /// included.
    pub first_by_id: FastMap<String, DateTime<Utc>>,
    /// First counted order ever of each guest customer (an email no registered order carries).
    pub first_by_email: FastMap<EmailKey, DateTime<Utc>>,
}

/// A customer of a window, borrowed from the orders and the history.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Id(&'a str),
    Email(&'a EmailKey),
}

/// Customer figures of one store for one window.
#[derive(Default)]
pub(super) struct CustomerStats {
    pub customers: u64,
    pub repeat: u64,
    pub returning: u64,
    pub new: u64,
}

pub(super) fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The smaller of two customer ids: as numbers when both are numbers ("9" < "10"), else as
/// text, so the choice never depends on the order the orders are read in.
pub fn smaller_id<'a>(a: &'a str, b: &'a str) -> &'a str {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => {
            if y < x {
                b
            } else {
                a
            }
        }
        _ => a.min(b),
    }
}

/// Keeps the earliest of `at` and `map[key]`.
fn first_of(map: &mut FastMap<String, DateTime<Utc>>, key: &str, at: DateTime<Utc>) {
    match map.get_mut(key) {
        Some(first) => *first = (*first).min(at),
        None => {
            map.insert(key.to_string(), at);
        }
    }
}

impl CustomerHistory {
    /// The history of every customer, from every order of a store (counted or not).
    pub fn from_orders(orders: &[OrderFacts]) -> CustomerHistory {
        // Which registered customer each email belongs to, from any order that carries both;
        // the smallest id wins when an email is on several accounts.
        let mut owner: BTreeMap<&EmailKey, &str> = BTreeMap::new();
        for o in orders {
            if let (Some(id), Some(email)) = (non_empty(&o.customer_id), o.email_hash.as_ref()) {
                owner
                    .entry(email)
                    .and_modify(|cur| *cur = smaller_id(cur, id))
                    .or_insert(id);
            }
        }
        let mut h = CustomerHistory {
            email_owner: owner
                .iter()
                .map(|(e, id)| ((*e).clone(), (*id).to_string()))
                .collect(),
            ..CustomerHistory::default()
        };
        for o in orders.iter().filter(|o| o.counted) {
            match (non_empty(&o.customer_id), o.email_hash.as_ref()) {
                (Some(id), _) => first_of(&mut h.first_by_id, id, o.created_at),
                (None, Some(email)) => match owner.get(email) {
                    Some(&id) => first_of(&mut h.first_by_id, id, o.created_at),
                    None => match h.first_by_email.get_mut(email) {
                        Some(first) => *first = (*first).min(o.created_at),
                        None => {
                            h.first_by_email.insert(email.clone(), o.created_at);
                        }
                    },
                },
                (None, None) => {}
            }
        }
        h
    }

    /// Customer figures of the counted orders created in `[start, end)`. `Err` names a
    /// customer of the window whose history is missing (a loader bug, never read as "new").
    pub(super) fn stats(
        &self,
        orders: &[OrderFacts],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        store: &str,
        mut trace: Option<&mut Vec<TracedCustomer>>,
    ) -> Result<CustomerStats, String> {
        // Per customer: their orders in the window, and (only when tracing) which.
        let mut seen: FastMap<Key<'_>, (u64, Vec<&str>)> = FastMap::default();
        let mut anonymous = 0;
        for o in orders
            .iter()
            .filter(|o| o.counted && start <= o.created_at && o.created_at < end)
        {
            let key = match (non_empty(&o.customer_id), o.email_hash.as_ref()) {
                (Some(id), _) => Key::Id(id),
                (None, Some(email)) => match self.email_owner.get(email) {
                    Some(id) => Key::Id(id),
                    None => Key::Email(email),
                },
                // A one-off customer of its own: one order, the first.
                (None, None) => {
                    anonymous += 1;
                    if let Some(t) = trace.as_deref_mut() {
                        t.push(TracedCustomer {
                            store: store.to_string(),
                            customer: format!("anonymous (order {})", o.order_id),
                            orders: vec![o.order_id.clone()],
                            first_order: Some(o.created_at),
                            repeat: false,
                            returning: false,
                            new: true,
                        });
                    }
                    continue;
                }
            };
            let entry = seen.entry(key).or_default();
            entry.0 += 1;
            if trace.is_some() {
                entry.1.push(&o.order_id);
            }
        }
        let mut s = CustomerStats {
            customers: anonymous,
            new: anonymous,
            ..CustomerStats::default()
        };
        let mut sorted = Vec::new();
        if trace.is_some() {
            // A stable listing: by first order in the window (only when listing: the map is
            // walked as it is otherwise, without a copy).
            sorted.extend(seen.drain());
            sorted.sort_by(|a, b| a.1.1.first().cmp(&b.1.1.first()));
        }
        for (key, (n, ids)) in sorted.into_iter().chain(seen) {
            let first = match key {
                Key::Id(id) => self.first_by_id.get(id),
                Key::Email(e) => self.first_by_email.get(e),
            };
            let Some(first) = first else {
                return Err(match key {
                    Key::Id(id) => format!("customer {id}"),
                    Key::Email(_) => "a guest customer".to_string(),
                });
            };
            s.customers += 1;
            s.repeat += u64::from(n >= 2);
            let returning = *first < start;
            if returning {
                s.returning += 1;
            } else {
                s.new += 1;
            }
            if let Some(t) = trace.as_deref_mut() {
                t.push(TracedCustomer {
                    store: store.to_string(),
                    customer: match key {
                        Key::Id(id) => format!("customer {id}"),
                        Key::Email(e) => format!("guest {}…", e.short()),
                    },
                    orders: ids.iter().map(|s| (*s).to_string()).collect(),
                    first_order: Some(*first),
                    repeat: n >= 2,
                    returning,
                    new: !returning,
                });
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keys_give_the_stored_text_back_and_hashes_are_kept_as_bytes() {
        let hash = "00ff7a19c2e4b8d3f6a0519e2c7d4b8a3f6e1d0c9b8a7f6e5d4c3b2a19080706";
        let key = EmailKey::new(hash).unwrap();
        assert!(matches!(key, EmailKey::Hash(b) if b[0] == 0x00 && b[1] == 0xff && b[31] == 0x06));
        assert_eq!(key.to_string(), hash);
        assert_eq!(key.short(), "00ff7a19c2e4");
        // Trimmed as the KPIs read emails; blank is no email.
        assert_eq!(EmailKey::new(&format!(" {hash}\n")), Some(key));
        assert_eq!(EmailKey::new("  "), None);
        // Anything else stays text, given back as stored: upper case, a digit short, not hex.
        for text in [
            hash.to_uppercase(),
            hash[1..].to_string(),
            format!("{}g", &hash[1..]),
            "a@example.com".to_string(),
        ] {
            let key = EmailKey::new(&text).unwrap();
            assert!(matches!(key, EmailKey::Text(_)), "{text}");
            assert_eq!(key.to_string(), text);
        }
        assert_eq!(
            EmailKey::new("a@example.com").unwrap().short(),
            "a@example.co"
        );
    }
}
