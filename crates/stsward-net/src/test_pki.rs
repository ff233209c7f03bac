//! A throw-away PKI for tests: one CA, leaves with chosen names and validity, self-signed
//! leaves. Shared by the unit tests and (through `#[path]`) the integration tests.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The fixed "now" of every test: 2026-06-01T00:00:00Z.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_272_000)
}

/// A certificate with its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Leaf {
    pub fn key_clone(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// A test certificate authority.
pub struct TestCa {
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// Validity windows used by the tests, relative to [`now`].
#[derive(Clone, Copy)]
pub enum Window {
    /// 2025-01-01 .. 2027-01-01: valid at `now`.
    Current,
    /// 2024-01-01 .. 2025-01-01: expired at `now`.
    Expired,
    /// 2027-01-01 .. 2028-01-01: not yet valid at `now`.
    Future,
    /// 2025-06-01 .. 2026-06-10: valid at `now`, expiring within 14 days.
    ExpiringSoon,
}

fn apply(params: &mut CertificateParams, w: Window) {
    let (nb, na) = match w {
        Window::Current => (date_time_ymd(2025, 1, 1), date_time_ymd(2027, 1, 1)),
        Window::Expired => (date_time_ymd(2024, 1, 1), date_time_ymd(2025, 1, 1)),
        Window::Future => (date_time_ymd(2027, 1, 1), date_time_ymd(2028, 1, 1)),
        Window::ExpiringSoon => (date_time_ymd(2025, 6, 1), date_time_ymd(2026, 6, 10)),
    };
    params.not_before = nb;
    params.not_after = na;
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, signed by this CA.
    pub fn leaf(&self, names: &[&str], w: Window) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        apply(&mut params, w);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: key_der(&key),
        }
    }

    /// An intermediate CA signed by this CA.
    pub fn intermediate(&self, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = date_time_ymd(2021, 1, 1);
        params.not_after = date_time_ymd(2039, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCa {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }
}

/// A self-signed leaf for `names`.
pub fn self_signed(names: &[&str], w: Window) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    apply(&mut params, w);
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        cert: cert.der().clone(),
        key: key_der(&key),
    }
}
