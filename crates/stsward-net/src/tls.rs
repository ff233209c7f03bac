//! RFC 8446 / RFC 5246 — the rustls client shared by the policy fetcher and the STARTTLS
//! prober.
//!
//! The handshake must complete even for a chain that PKIX would refuse, so that the prober can
//! report an expired or wrong-name certificate as such rather than as "TLS failed". The
//! verifier below therefore accepts any chain at handshake time; the chain is judged
//! afterwards, at the caller's `now`, by [`crate::cert::judge`]. It still verifies the
//! server's handshake signature, so the peer has proved it holds the leaf's private key.
//! The policy fetcher never sends its request before that judgement passed.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A TLS protocol version as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// SSL 3.0 (RFC 6101), only ever seen through the legacy probe.
    Ssl3,
    /// TLS 1.0 (RFC 2246).
    Tls1_0,
    /// TLS 1.1 (RFC 4346).
    Tls1_1,
    /// TLS 1.2 (RFC 5246).
    Tls1_2,
    /// TLS 1.3 (RFC 8446).
    Tls1_3,
    /// Any other wire value.
    Other(u16),
}

impl TlsVersion {
    /// From the two-octet wire value.
    pub fn from_wire(v: u16) -> TlsVersion {
        match v {
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls1_0,
            0x0302 => TlsVersion::Tls1_1,
            0x0303 => TlsVersion::Tls1_2,
            0x0304 => TlsVersion::Tls1_3,
            other => TlsVersion::Other(other),
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsVersion::Ssl3 => f.write_str("SSLv3"),
            TlsVersion::Tls1_0 => f.write_str("TLSv1.0"),
            TlsVersion::Tls1_1 => f.write_str("TLSv1.1"),
            TlsVersion::Tls1_2 => f.write_str("TLSv1.2"),
            TlsVersion::Tls1_3 => f.write_str("TLSv1.3"),
            TlsVersion::Other(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// What a completed handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Protocol version.
    pub version: TlsVersion,
    /// Cipher suite, IANA name.
    pub cipher: String,
    /// The presented chain, leaf first, exactly as sent.
    pub chain: Vec<CertificateDer<'static>>,
}

pub(crate) fn negotiated(conn: &ClientConnection) -> Negotiated {
    let version = conn
        .protocol_version()
        .map(|v| TlsVersion::from_wire(u16::from(v)))
        .unwrap_or(TlsVersion::Other(0));
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let chain = conn
        .peer_certificates()
        .map(<[CertificateDer<'static>]>::to_vec)
        .unwrap_or_default();
    Negotiated {
        version,
        cipher,
        chain,
    }
}

/// The client configuration of the STARTTLS prober (no ALPN), built once per process.
pub(crate) fn probe_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG.get_or_init(|| client_config(&[])).clone()
}

/// The client configuration of the policy fetcher (ALPN `http/1.1`), built once per process.
pub(crate) fn fetch_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG.get_or_init(|| client_config(&[b"http/1.1"])).clone()
}

/// A client configuration that completes the handshake whatever the chain, offering `alpn`.
/// Building one sets up the crypto provider and its algorithm tables; a server checking
/// thousands of hosts uses the two shared ones above instead.
fn client_config(alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AcceptAnyChain {
        algs: provider.signature_verification_algorithms,
    });
    let mut cfg = ClientConfig::builder_with_provider(provider as Arc<CryptoProvider>)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

#[derive(Debug)]
struct AcceptAnyChain {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Judged after the handshake by `cert::judge`; see the module docs.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
