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
