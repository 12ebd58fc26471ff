//! OAuth 1.0a one-legged signing. TEMPORARY STUB, replaced on merge.
#![allow(unused)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}
pub fn percent_encode(s: &str) -> String {
    s.to_string()
}
pub fn sign(
    http_method: &str,
    url: &reqwest::Url,
    consumer_key: &str,
    consumer_secret: &str,
    method: SignatureMethod,
    nonce: &str,
    timestamp: u64,
) -> Vec<(String, String)> {
    todo!()
}
pub fn nonce() -> String {
    todo!()
}
