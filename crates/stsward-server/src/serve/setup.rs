//! What `stsward serve` builds from its configuration before serving: the zone settings, the
//! DNSSEC key file, the static certificate of `[tls]`, and the DNS sockets (UDP and TCP on one
//! port, IPv6 sockets IPv6-only so that `0.0.0.0` and `[::]` can both be given).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use socket2::{Protocol, Type};
use stsward_proto::tlsrpt::RuaUri;
use tokio::net::{TcpListener, UdpSocket};

use super::ServeError;
use crate::config::{ConfigError, ServeConfig};
use crate::dns::{DEFAULT_TTL, NameServer, SoaSettings, ZoneKey, ZoneSettings};
use crate::listen;

/// Longest DNSSEC key file read, in bytes (a P-256 PKCS#8 key is about 140).
const MAX_KEY_FILE: u64 = 16 * 1024;
/// How often a free port for DNS over both UDP and TCP is looked for when port 0 is asked.
const PORT_ATTEMPTS: usize = 16;

/// A `rua` list (RFC 8460 §3: URIs separated by commas) as the zone takes it; `None` when a
/// URI does not parse (the caller logs it and serves the zone's default).
pub(super) fn rua_list(rua: &str) -> Option<Vec<RuaUri>> {
    rua.split(',')
        .map(|u| u.trim().parse::<RuaUri>().ok())
        .collect()
}

/// The zone's settings from `[hosting]` (validated for serving) and the signing key.
pub(super) fn zone_settings(
    cfg: &ServeConfig,
    signing_key: Option<ZoneKey>,
    now: i64,
) -> Result<ZoneSettings, ServeError> {
    let h = &cfg.hosting;
    let missing = |key: &'static str| {
        ServeError::Config(crate::config::ConfigError::Invalid {
            key,
            reason: "is not set".into(),
        })
    };
    let apex = h.zone.clone().ok_or_else(|| missing("hosting.zone"))?;
    let policy_host = h
        .policy_host
        .clone()
        .ok_or_else(|| missing("hosting.policy_host"))?;
    let first_ns = h
        .nameservers
        .first()
        .ok_or_else(|| missing("hosting.nameservers"))?;
    let default_rua = match &h.tlsrpt_rua {
        Some(r) => Some(rua_list(r).ok_or_else(|| {
            ServeError::Config(crate::config::ConfigError::Invalid {
                key: "hosting.tlsrpt_rua",
                reason: format!("{r:?} is not a list of TLS-RPT URIs"),
            })
        })?),
        None => None,
    };
    Ok(ZoneSettings {
        soa: SoaSettings {
            mname: first_ns.name.clone(),
            rname: format!("hostmaster.{apex}"),
            // Seconds since the epoch: a restarted server starts above its last serial.
            serial: u32::try_from(now.max(1) % i64::from(u32::MAX)).unwrap_or(1),
            refresh: 3600,
            retry: 600,
            expire: 1_209_600,
            // RFC 2308 §4: how long resolvers cache NXDOMAIN and NODATA; the TXT TTL, so a
            // newly added domain appears as quickly as a changed one.
            minimum: h.txt_ttl,
        },
        name_servers: h
            .nameservers
            .iter()
            .map(|ns| NameServer {
                name: ns.name.clone(),
                addrs: ns.addrs.clone(),
            })
            .collect(),
        policy_host: NameServer {
            name: policy_host,
            addrs: h.policy_host_addrs.clone(),
        },
        apex,
        ttl: DEFAULT_TTL,
        txt_ttl: h.txt_ttl,
        default_rua,
        signing_key,
    })
}

/// Reads the DNSSEC key at `path` (PKCS#8, PEM or DER), or creates it with mode 0600 when the
/// file does not exist. Returns the key and whether it was created.
pub(super) fn dnssec_key(path: &Path) -> Result<(ZoneKey, bool), ServeError> {
    if let Some(key) = read_dnssec_key(path)? {
        return Ok((key, false));
    }
    let fail = |reason: String| ServeError::DnssecKey {
        path: path.to_owned(),
        reason,
    };
    let key = ZoneKey::generate().map_err(|e| fail(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| fail(format!("cannot create: {e}")))?;
    file.write_all(key.pkcs8_der())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(format!("cannot write: {e}")))?;
    Ok((key, true))
}

/// The DNSSEC key in `path`; `None` when the file does not exist.
pub(super) fn read_dnssec_key(path: &Path) -> Result<Option<ZoneKey>, ServeError> {
    use std::io::Read;
    let fail = |reason: String| ServeError::DnssecKey {
        path: path.to_owned(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(fail(format!("larger than {MAX_KEY_FILE} bytes")));
    }
    let der = if bytes.starts_with(b"-----BEGIN") {
        let pem = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(&bytes)
            .map_err(|e| fail(format!("not a PEM PKCS#8 private key: {e}")))?;
        pem.secret_pkcs8_der().to_vec()
    } else {
        bytes
    };
    ZoneKey::from_pkcs8_der(der)
        .map(Some)
        .map_err(|e| fail(e.to_string()))
}

/// The `[tls]` certificate chain and key, ready to present.
pub(super) fn static_certificate(cert: &Path, key: &Path) -> Result<CertifiedKey, ServeError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls {
            key: "tls.cert_file",
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(ServeError::Tls {
            key: "tls.cert_file",
            path: cert.to_owned(),
            reason: "holds no certificate".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| ServeError::Tls {
        key: "tls.key_file",
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, private, &provider).map_err(|e| ServeError::Tls {
        key: "tls.key_file",
        path: key.to_owned(),
        reason: format!("does not match the certificate or is unsupported: {e}"),
    })
}

fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = listen::socket(addr, Type::DGRAM, Protocol::UDP)?;
    udp.bind(&addr.into())?;
    let udp = UdpSocket::from_std(udp.into())?;
    let port = udp.local_addr()?.port();
    let tcp_addr = SocketAddr::new(addr.ip(), port);
    Ok((udp, listen::tcp(tcp_addr, 1024)?))
}

/// Binds UDP and TCP on each address, on the same port (port 0: a free port for both).
pub(super) fn bind_dns(
    addrs: &[SocketAddr],
) -> Result<(Vec<UdpSocket>, Vec<TcpListener>), ServeError> {
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in addrs {
        let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            match bind_pair(addr) {
                Ok((u, t)) => {
                    udp.push(u);
                    tcp.push(t);
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(source) = last {
            return Err(ServeError::Bind {
                role: "dns",
                addr,
                source,
            });
        }
    }
    Ok((udp, tcp))
}

/// `[acme] ca_file`: the PEM certificates a private CA's HTTPS is trusted through.
pub(crate) fn ca_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "acme.ca_file",
        reason,
    };
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if roots.is_empty() {
        return Err(invalid(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(roots)
}
