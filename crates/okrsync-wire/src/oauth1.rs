//! OAuth 1.0a one-legged request signing (RFC 5849), as WooCommerce accepts it over plain http.
//!
//! WooCommerce (`includes/class-wc-rest-authentication.php`, `check_oauth_signature`) takes the
//! oauth_* parameters from the query string, signs with the consumer secret followed by `&` (no
//! token), and builds the base string as `METHOD&enc(scheme://host/path)&enc(k=v&...)` over every
//! query parameter except `oauth_signature`, keys and values percent-encoded per RFC 3986. It sorts
//! by the raw key (`strcmp`), and PHP keeps one value per key; the RFC sorts by encoded name, then
//! value. Both orders agree for keys made of unreserved characters, which is all the client sends.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use url::Url;

/// The HMAC flavour of an OAuth signature; WooCommerce accepts these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    /// The `oauth_signature_method` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Parses an `oauth_signature_method` value (exact, case-sensitive, like WooCommerce).
    pub fn parse(s: &str) -> Option<SignatureMethod> {
        match s {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

/// Percent-encodes everything but the RFC 3986 unreserved set (`ALPHA DIGIT - . _ ~`), bytes of
/// UTF-8, upper-case hex (PHP's `rawurlencode`).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        }
    }
    out
}

/// The signature base string (RFC 5849 §3.4.1) of a request to `url` (its query included) with
/// `extra_params` (oauth_* and body parameters) added.
pub fn base_string(http_method: &str, url: &Url, extra_params: &[(String, String)]) -> String {
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (percent_encode(&k), percent_encode(&v)))
        .chain(
            extra_params
                .iter()
                .map(|(k, v)| (percent_encode(k), percent_encode(v))),
        )
        .collect();
    params.sort();
    let normalized = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        http_method.to_ascii_uppercase(),
        percent_encode(&base_uri(url)),
        percent_encode(&normalized)
    )
}

/// `scheme://host[:port]/path`: lower-case scheme and host, default ports dropped, no query.
fn base_uri(url: &Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    // `Url::port` is already `None` for the scheme's default port.
    match url.port() {
        Some(p) => format!("{scheme}://{host}:{p}{}", url.path()),
        None => format!("{scheme}://{host}{}", url.path()),
    }
}

fn mac_bytes(method: SignatureMethod, key: &str, text: &str) -> Vec<u8> {
    match method {
        SignatureMethod::HmacSha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            m.update(text.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            m.update(text.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// The signing key of RFC 5849 §3.4.2: `enc(consumer_secret)&enc(token_secret)`.
fn signing_key(consumer_secret: &str, token_secret: &str) -> String {
    format!(
        "{}&{}",
        percent_encode(consumer_secret),
        percent_encode(token_secret)
    )
}

fn signature_of(
    base: &str,
    consumer_secret: &str,
    token_secret: &str,
    m: SignatureMethod,
) -> String {
    let key = signing_key(consumer_secret, token_secret);
    base64::engine::general_purpose::STANDARD.encode(mac_bytes(m, &key, base))
}

/// The oauth_* query parameters that sign a request to `url` (which already holds every other
/// query parameter). Append them to the query, in any order, and send exactly that URL.
///
/// `oauth_version` is left out: WooCommerce does not require it (it signs whatever parameters
/// arrive, so including it would work too).
pub fn sign(
    http_method: &str,
    url: &Url,
    consumer_key: &str,
    consumer_secret: &str,
    method: SignatureMethod,
    nonce: &str,
    timestamp: u64,
) -> Vec<(String, String)> {
    let mut params = vec![
        ("oauth_consumer_key".to_string(), consumer_key.to_string()),
        ("oauth_nonce".to_string(), nonce.to_string()),
        (
            "oauth_signature_method".to_string(),
            method.as_str().to_string(),
        ),
        ("oauth_timestamp".to_string(), timestamp.to_string()),
    ];
    let base = base_string(http_method, url, &params);
    // WooCommerce: `$secret = $user->consumer_secret . '&'` (the secret is not encoded there;
    // generated secrets are `cs_` + hex, for which encoding changes nothing).
    let sig = signature_of(&base, consumer_secret, "", method);
    params.push(("oauth_signature".to_string(), sig));
    params
}

/// Checks the OAuth signature of a request as received (every query parameter, oauth_* included),
/// the way WooCommerce does. No timestamp window or nonce replay check.
pub fn verify(
    http_method: &str,
    url_as_received: &Url,
    consumer_secret: &str,
) -> Result<(), String> {
    let mut signature = None;
    let mut method = None;
    let mut rest = Url::clone(url_as_received);
    rest.set_query(None);
    let mut others: Vec<(String, String)> = Vec::new();
    for (k, v) in url_as_received.query_pairs() {
        match k.as_ref() {
            "oauth_signature" => signature = Some(v.into_owned()),
            "oauth_signature_method" => {
                method = Some(v.to_string());
                others.push((k.into_owned(), v.into_owned()));
            }
            _ => others.push((k.into_owned(), v.into_owned())),
        }
    }
    for required in ["oauth_consumer_key", "oauth_timestamp", "oauth_nonce"] {
        if !others.iter().any(|(k, v)| k == required && !v.is_empty()) {
            return Err(format!("Missing OAuth parameter {required}"));
        }
    }
    let signature = signature.ok_or("Missing OAuth parameter oauth_signature")?;
    let method = method.ok_or("Missing OAuth parameter oauth_signature_method")?;
    let method = SignatureMethod::parse(&method)
        .ok_or("Invalid signature - signature method is invalid.")?;
    let base = base_string(http_method, &rest, &others);
    let provided = base64::engine::general_purpose::STANDARD
        .decode(signature.as_bytes())
        .map_err(|_| "Invalid signature - provided signature does not match.".to_string())?;
    let key = signing_key(consumer_secret, "");
    let ok = match method {
        SignatureMethod::HmacSha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            m.update(base.as_bytes());
            m.verify_slice(&provided).is_ok()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes())
                .expect("HMAC takes keys of any length");
            m.update(base.as_bytes());
            m.verify_slice(&provided).is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err("Invalid signature - provided signature does not match.".to_string())
    }
}

/// 32 random alphanumeric characters from the OS generator.
pub fn nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS random generator is available");
        for b in buf {
            // 62 * 4 = 248: reject the top bytes so every character is equally likely.
            if b < 248 && out.len() < 32 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn percent_encode_keeps_only_unreserved() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("a b+c/=&%é"), "a%20b%2Bc%2F%3D%26%25%C3%A9");
    }

    #[test]
    fn rfc5849_3_4_1_1_base_string() {
        let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        // Body `c2&a3=2+q` and the Authorization header's oauth_* parameters (realm excluded).
        let extra = [
            p("c2", ""),
            p("a3", "2 q"),
            p("oauth_consumer_key", "9djdj82h48djs9d2"),
            p("oauth_token", "kkk9d7dh3k39sjv7"),
            p("oauth_signature_method", "HMAC-SHA1"),
            p("oauth_timestamp", "137131201"),
            p("oauth_nonce", "7d8f3e4a"),
        ];
        assert_eq!(
            base_string("post", &url, &extra),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    #[test]
    fn base_uri_keeps_non_default_port_only() {
        let u = Url::parse("HTTP://Example.COM:80/a/b?x=1").unwrap();
        assert_eq!(base_uri(&u), "http://example.com/a/b");
        let u = Url::parse("http://127.0.0.1:8080/wp-json/wc/v3/orders").unwrap();
        assert_eq!(base_uri(&u), "http://127.0.0.1:8080/wp-json/wc/v3/orders");
    }

    #[test]
    fn hmac_sha1_published_vector() {
        // OAuth Core 1.0 Appendix A.5 (the photos example; same secrets as RFC 5849 §1.2).
        let url =
            Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let extra = [
            p("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            p("oauth_token", "nnch734d00sl2jdk"),
            p("oauth_signature_method", "HMAC-SHA1"),
            p("oauth_timestamp", "1191242096"),
            p("oauth_nonce", "kllo9940pd9333jh"),
            p("oauth_version", "1.0"),
        ];
        let base = base_string("GET", &url, &extra);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26\
             oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26\
             oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26\
             oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        assert_eq!(
            signature_of(
                &base,
                "kd94hf93k423kf44",
                "pfkkdhi9sl3r4s00",
                SignatureMethod::HmacSha1
            ),
            "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
        );
    }

    fn signed_url(url: &str, method: SignatureMethod, secret: &str) -> Url {
        let mut u = Url::parse(url).unwrap();
        let params = sign(
            "GET",
            &u,
            "ck_test",
            secret,
            method,
            &nonce(),
            1_767_000_000,
        );
        u.query_pairs_mut().extend_pairs(params);
        u
    }

    #[test]
    fn sign_then_verify_round_trips() {
        for m in [SignatureMethod::HmacSha256, SignatureMethod::HmacSha1] {
            let u = signed_url(
                "http://127.0.0.1:8123/wp-json/wc/v3/orders?per_page=100&modified_after=2026-01-05T10:00:00&status=any",
                m,
                "cs_secret",
            );
            assert_eq!(verify("GET", &u, "cs_secret"), Ok(()));
            assert!(verify("GET", &u, "cs_other").is_err());
            assert!(verify("POST", &u, "cs_secret").is_err());
        }
    }

    #[test]
    fn verify_rejects_tampering_and_unknown_methods() {
        let u = signed_url(
            "http://127.0.0.1:8123/wp-json/wc/v3/orders?page=1",
            SignatureMethod::HmacSha256,
            "cs_secret",
        );
        let tampered = Url::parse(&u.as_str().replace("page=1", "page=2")).unwrap();
        assert!(verify("GET", &tampered, "cs_secret").is_err());
        let other_port = Url::parse(&u.as_str().replace(":8123", ":8124")).unwrap();
        assert!(verify("GET", &other_port, "cs_secret").is_err());
        let plaintext = Url::parse(&u.as_str().replace("HMAC-SHA256", "PLAINTEXT")).unwrap();
        assert!(
            verify("GET", &plaintext, "cs_secret")
                .unwrap_err()
                .contains("signature method")
        );
        let unsigned = Url::parse("http://127.0.0.1:8123/wp-json/wc/v3/orders?page=1").unwrap();
        assert!(verify("GET", &unsigned, "cs_secret").is_err());
    }

    #[test]
    fn nonce_is_32_alphanumerics() {
        let a = nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, nonce());
    }
}
