//! Choosing the certificate of a TLS handshake: by SNI (RFC 6066 §3) for the policy host
//! (RFC 8461 §3.3), or the TLS-ALPN-01 challenge certificate (RFC 8737 §3).
//!
//! ```text
//! no SNI                          → no certificate: the handshake fails
//! ALPN offers "acme-tls/1"        → the challenge certificate registered for the SNI name,
//!                                   or none; "acme-tls/1" is then the negotiated protocol
//! otherwise                       → the site's certificate if it is valid now, or none
//! ```
//!
//! There is no default certificate: a name that is not hosted, or whose certificate is
//! missing or outside its validity window, fails the handshake rather than presenting another
//! name's certificate.
//!
//! The server lists `acme-tls/1` first among its ALPN protocols, and rustls picks the first of
//! the server's protocols that the client offers, so a client offering `acme-tls/1` always
//! gets it negotiated: the challenge certificate is never presented on a connection that then
//! speaks HTTP, and the connection is closed right after the handshake (RFC 8737 §3 has the
//! validating client close it too).

use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::challenges::{ACME_TLS_ALPN, Challenges};
use super::name;
use super::sites::Sites;

/// The certificate resolver of the policy host's TLS listeners.
#[derive(Debug, Clone)]
pub struct SniResolver {
    sites: Sites,
    challenges: Challenges,
}

impl SniResolver {
    /// A resolver reading the live `sites` and `challenges`.
    pub fn new(sites: Sites, challenges: Challenges) -> SniResolver {
        SniResolver { sites, challenges }
    }

    /// The certificate for a handshake naming `sni` and offering `alpn`, judged at `now`.
    pub fn choose<'a>(
        &self,
        sni: Option<&str>,
        mut alpn: impl Iterator<Item = &'a [u8]>,
        now: SystemTime,
    ) -> Option<Arc<CertifiedKey>> {
        let host = name::normalize(sni?).ok()?;
        if alpn.any(|p| p == ACME_TLS_ALPN) {
            return self.challenges.tls_alpn01(&host);
        }
        self.sites.certificate_for(&host, now)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name();
        match hello.alpn() {
            Some(alpn) => self.choose(sni, alpn, SystemTime::now()),
            None => self.choose(sni, std::iter::empty(), SystemTime::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use stsward_lab::{CertVariant, LabCa};

    const DAY: Duration = Duration::from_secs(86_400);

    type Case<'a> = (
        Option<&'a str>,
        &'a [&'a [u8]],
        SystemTime,
        Option<&'a [u8]>,
        &'a str,
    );

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn leaf(key: &CertifiedKey) -> &[u8] {
        key.cert[0].as_ref()
    }

    #[test]
    fn rfc8461_3_3_certificate_choice_table() {
        let now = SystemTime::now();
        let ca = LabCa::new(time::OffsetDateTime::from(now)).unwrap();
        let issued = ca
            .issue(&["mta-sts.a.test".to_owned()], CertVariant::Good)
            .unwrap();
        let site_key =
            CertifiedKey::from_der(issued.chain.clone(), issued.private_key(), &provider())
                .unwrap();
        let sites = Sites::new();
        sites.set_certificate("mta-sts.a.test", site_key).unwrap();

        // A TLS-ALPN-01 certificate needs no CA: any key, registered for the name.
        let challenge_issued = ca
            .issue(&["mta-sts.a.test".to_owned()], CertVariant::SelfSigned)
            .unwrap();
        let challenge_key = CertifiedKey::from_der(
            challenge_issued.chain.clone(),
            challenge_issued.private_key(),
            &provider(),
        )
        .unwrap();
        let challenges = Challenges::new();
        challenges
            .set_tls_alpn01("mta-sts.a.test", challenge_key)
            .unwrap();
        let r = SniResolver::new(sites, challenges);

        let acme: &[&[u8]] = &[ACME_TLS_ALPN];
        let http: &[&[u8]] = &[b"h2", b"http/1.1"];
        let site = issued.chain[0].as_ref();
        let challenge = challenge_issued.chain[0].as_ref();
        // (SNI, ALPN offered, when, the leaf presented, why)
        let cases: &[Case<'_>] = &[
            (Some("mta-sts.a.test"), &[], now, Some(site), "no ALPN"),
            (
                Some("MTA-STS.A.Test."),
                http,
                now,
                Some(site),
                "case, dot, http ALPN",
            ),
            (
                Some("mta-sts.a.test"),
                acme,
                now,
                Some(challenge),
                "acme-tls/1",
            ),
            (Some("mta-sts.b.test"), &[], now, None, "not hosted"),
            (
                Some("mta-sts.b.test"),
                acme,
                now,
                None,
                "no challenge for the name",
            ),
            (None, &[], now, None, "no SNI"),
            (Some("mta-sts.a.test"), &[], now + 91 * DAY, None, "expired"),
            (
                Some("mta-sts.a.test"),
                &[],
                now - 2 * DAY,
                None,
                "not yet valid",
            ),
            (
                Some("mta-sts.a.test"),
                acme,
                now + 91 * DAY,
                Some(challenge),
                "challenge: not judged",
            ),
        ];
        for (sni, alpn, at, want, why) in cases {
            let got = r.choose(*sni, alpn.iter().copied(), *at);
            assert_eq!(got.as_deref().map(leaf), *want, "{why}");
        }
    }
}
