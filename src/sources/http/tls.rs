//! Trust for a store's certificate given in `tls_ca_file`: a CA that issued the server's
//! certificate (checked by the platform verifier as usual), or the server's own certificate,
//! byte for byte, as most self-signed certificates are made (`openssl req -x509 …` marks them
//! `CA:TRUE`, which WebPKI refuses as a server certificate). An exact match still has its
//! name and dates checked; only the chain is not.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The platform verifier with `tls_ca_file`'s certificates as extra roots, plus exact trust
/// for a server certificate identical to one of them.
#[derive(Debug)]
pub(super) struct CaFileVerifier {
    inner: rustls_platform_verifier::Verifier,
    exact: Vec<CertificateDer<'static>>,
}

impl CaFileVerifier {
    pub(super) fn new(
        certs: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<CaFileVerifier, rustls::Error> {
        Ok(CaFileVerifier {
            inner: rustls_platform_verifier::Verifier::new_with_extra_roots(
                certs.clone(),
                provider,
            )?,
            exact: certs,
        })
    }
}

impl ServerCertVerifier for CaFileVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(e) => {
                if !self.exact.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
                    return Err(e);
                }
                verify_exact(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    // The handshake signature is checked with the certificate's own key, as for any chain.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Name and dates of a certificate trusted as is.
pub(super) fn verify_exact(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (not_before, not_after) = validity(cert).ok_or(CertificateError::BadEncoding)?;
    let t = now.as_secs();
    if t < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before)),
        }
        .into());
    }
    if t > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after)),
        }
        .into());
    }
    let ee = webpki::EndEntityCert::try_from(cert).map_err(|_| CertificateError::BadEncoding)?;
    ee.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| CertificateError::NotValidForName)?;
    Ok(())
}

/// One DER element: (tag, contents, rest).
fn element(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *d.first()?;
    let first = *d.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in d.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, d.get(header..end)?, d.get(end..)?))
}

/// `notBefore` and `notAfter` of an X.509 certificate, in seconds since the Unix epoch.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2; // version
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serial, signature algorithm, issuer
    }
    let (0x30, validity, _) = element(rest)? else {
        return None;
    };
    let (t1, nb, rest) = element(validity)?;
    let (t2, na, _) = element(rest)?;
    Some((time(t1, nb)?, time(t2, na)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let full = match tag {
        0x17 => {
            let yy: u32 = s.get(..2)?.parse().ok()?;
            format!("{}{s}", if yy < 50 { "20" } else { "19" })
        }
        0x18 => s.to_string(),
        _ => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%SZ").ok()?;
    u64::try_from(t.and_utc().timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn fixture() -> CertificateDer<'static> {
        CertificateDer::from_pem_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tls/server.pem"
        ))
        .unwrap()
    }

    #[test]
    fn reads_the_validity_of_a_certificate() {
        let (nb, na) = validity(&fixture()).unwrap();
        assert!(nb < na);
        // The test certificate was made in the 2020s.
        assert!((1_577_836_800..1_893_456_000).contains(&nb), "{nb}");
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20500101000000Z"), Some(2_524_608_000));
        assert_eq!(validity(b"\x30\x03\x02\x01"), None);
    }

    #[test]
    fn an_exact_certificate_still_has_its_dates_and_name_checked() {
        let cert = fixture();
        let (nb, na) = validity(&cert).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let at = |s: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
        assert!(verify_exact(&cert, &name, at(nb + 1)).is_ok());
        assert!(matches!(
            verify_exact(&cert, &name, at(na + 1)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        assert!(matches!(
            verify_exact(&cert, &name, at(nb - 1)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ));
        let other = ServerName::try_from("shop.example").unwrap();
        assert!(matches!(
            verify_exact(&cert, &other, at(nb + 1)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            ))
        ));
    }
}
