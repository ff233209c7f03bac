//! A throwaway Pebble (Let's Encrypt's small test ACME CA, RFC 8555) for one test: Debian's
//! `pebble` binary, a temporary config, loopback only, killed when dropped.
//!
//! ```text
//! pebble installed            -> Some(server): pebble -config <tmp>/pebble.json -dnsserver ADDR
//! not installed, CI set       -> panic: CI must never pass without Pebble
//! not installed, CI not set   -> None, and one line in <target>/corpus-skipped/<group>
//! installed but fails to start -> panic with its output: that is a failure, not a skip
//! ```
//!
//! The binary is `$STSWARD_PEBBLE`, else `pebble` on the `PATH` (`scripts/install-test-deps`
//! installs the Debian package). The package ships no certificate for Pebble's own HTTPS
//! endpoints, so each server gets a fresh test CA made here with rcgen; clients trust
//! [`Pebble::wfe_ca_pem`]. The CA that *issues* the ordered certificates is Pebble's own,
//! regenerated at every start; [`Pebble::issuing_root_pem`] holds its root, fetched from the
//! management interface (`/roots/0`), so that tests can verify issued chains.
//!
//! Pebble runs with:
//! - `PEBBLE_VA_NOSLEEP=1`: validate at once, without Pebble's random pause;
//! - `PEBBLE_WFE_NONCEREJECT=0`: accept every good nonce (by default it rejects some, to
//!   exercise clients' `badNonce` retries);
//! - `PEBBLE_AUTHZREUSE=0`: every order needs fresh challenges (by default Pebble reuses a
//!   valid authorization half of the time, which would make challenge tests flaky).
//!
//! Pebble validates challenges by resolving the name through `dns_server` and connecting to
//! the resolved address on the `http_port` (HTTP-01) and `tls_port` (TLS-ALPN-01) given to
//! [`Pebble::start`].

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

/// Overrides the Pebble binary.
pub const PEBBLE_BIN_ENV: &str = "STSWARD_PEBBLE";

/// How long Pebble may take to answer its directory after start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for one request to Pebble's HTTPS endpoints.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a response read from Pebble (a directory or a root certificate).
const MAX_RESPONSE: u64 = 1024 * 1024;

/// A running throwaway Pebble; killed on drop.
#[derive(Debug)]
pub struct Pebble {
    child: Child,
    /// Holds the config, the WFE certificate and key, and Pebble's output; removed on drop.
    dir: tempfile::TempDir,
    listen: SocketAddr,
    management: SocketAddr,
    wfe_ca_pem: String,
    wfe_ca_der: CertificateDer<'static>,
    issuing_root_pem: String,
}

impl Pebble {
    /// Starts Pebble for the test group `group` (e.g. `stsward-server/acme`), resolving names
    /// through `dns_server` and validating challenges on `http_port` and `tls_port`; `None`
    /// when Pebble is not installed and the group is skipped (see the module docs).
    ///
    /// # Panics
    ///
    /// When Pebble is absent and `CI` is set, and when an installed Pebble fails to start.
    pub fn start(
        group: &str,
        dns_server: SocketAddr,
        http_port: u16,
        tls_port: u16,
    ) -> Option<Pebble> {
        let Some(bin) = find_binary() else {
            let why = match std::env::var_os(PEBBLE_BIN_ENV) {
                Some(bin) => format!(
                    "Pebble not found: {PEBBLE_BIN_ENV}={} is not a file",
                    Path::new(&bin).display()
                ),
                None => format!(
                    "Pebble not installed (no pebble on PATH; set {PEBBLE_BIN_ENV} or run \
                     scripts/install-test-deps)"
                ),
            };
            if crate::in_ci(std::env::var("CI").ok().as_deref()) {
                panic!("{group}: {why}; CI is set, so a missing Pebble is a failure");
            }
            crate::record_skip(group, &why);
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("stsward-pebble-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{group}: temporary directory: {e}"));
        let wfe = WfeCert::generate(group);
        write(group, &dir.path().join("cert.pem"), &wfe.leaf_pem);
        write(group, &dir.path().join("key.pem"), &wfe.key_pem);

        let mut last = String::new();
        // Another process may take a probed port before Pebble binds it: try a few times.
        for _ in 0..5 {
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let management = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let config = serde_json::json!({
                "pebble": {
                    "listenAddress": listen.to_string(),
                    "managementListenAddress": management.to_string(),
                    "certificate": dir.path().join("cert.pem"),
                    "privateKey": dir.path().join("key.pem"),
                    "httpPort": http_port,
                    "tlsPort": tls_port,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": false
                }
            });
            let config_file = dir.path().join("pebble.json");
            write(group, &config_file, &config.to_string());
            let log_file = dir.path().join("pebble.log");
            let log = std::fs::File::create(&log_file)
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", log_file.display()));
            let log_err = log
                .try_clone()
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", log_file.display()));
            let child = Command::new(&bin)
                .arg("-config")
                .arg(&config_file)
                .arg("-dnsserver")
                .arg(dns_server.to_string())
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("{group}: cannot run {}: {e}", bin.display()));
            let mut child = child;
            match wait_ready(&mut child, &wfe.ca_der, listen, management) {
                Ok(issuing_root_pem) => {
                    return Some(Pebble {
                        child,
                        dir,
                        listen,
                        management,
                        wfe_ca_pem: wfe.ca_pem,
                        wfe_ca_der: wfe.ca_der,
                        issuing_root_pem,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!(
                        "{e}\npebble output:\n{}",
                        std::fs::read_to_string(&log_file).unwrap_or_default()
                    );
                }
            }
        }
        panic!("{group}: Pebble did not start: {last}");
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// The management interface's base URL (`/roots/0`, `/intermediates/0`, ...).
    pub fn management_url(&self) -> String {
        format!("https://{}", self.management)
    }

    /// The CA (PEM) that signed Pebble's own HTTPS certificate: what an ACME client trusts.
    pub fn wfe_ca_pem(&self) -> &str {
        &self.wfe_ca_pem
    }

    /// The same CA, DER.
    pub fn wfe_ca_der(&self) -> CertificateDer<'static> {
        self.wfe_ca_der.clone()
    }

    /// The root (PEM) of the CA that issues the ordered certificates.
    pub fn issuing_root_pem(&self) -> &str {
        &self.issuing_root_pem
    }

    /// Pebble's output so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        // Pebble keeps everything in memory: nothing to flush, a kill is a clean stop.
        if let Err(e) = self.child.kill() {
            eprintln!("stopping the test Pebble at {}: {e}", self.listen);
        }
        let _ = self.child.wait();
    }
}

/// Polls the directory until it answers, then fetches the issuing root.
fn wait_ready(
    child: &mut Child,
    ca: &CertificateDer<'static>,
    listen: SocketAddr,
    management: SocketAddr,
) -> Result<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("pebble exited with {status}"));
        }
        match https_get(ca, listen, "/dir") {
            Ok(body) if body.contains("newOrder") => {
                return https_get(ca, management, "/roots/0")
                    .map_err(|e| format!("GET /roots/0 on the management interface: {e}"));
            }
            Ok(body) => last = format!("unexpected directory: {body}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no directory at https://{listen}/dir within {START_TIMEOUT:?}: {last}"
    ))
}

/// The test CA and the certificate for Pebble's listeners (`127.0.0.1`, `localhost`).
struct WfeCert {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    leaf_pem: String,
    key_pem: String,
}

impl WfeCert {
    fn generate(group: &str) -> WfeCert {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let fail = |e: rcgen::Error| -> ! { panic!("{group}: making Pebble's test CA: {e}") };
        let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "stsward test CA for Pebble's HTTPS");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap_or_else(|e| fail(e));
        let leaf = params.signed_by(&key, &issuer).unwrap_or_else(|e| fail(e));
        WfeCert {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            leaf_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn write(group: &str, path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{group}: {}: {e}", path.display()));
}

/// `$STSWARD_PEBBLE`, else `pebble` in a `PATH` directory.
fn find_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(PEBBLE_BIN_ENV) {
        let bin = PathBuf::from(bin);
        return bin.is_file().then_some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("pebble"))
        .find(|bin| bin.is_file())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A blocking `GET path` over HTTPS to `addr`, trusting only `ca`; the body on a 200.
fn https_get(ca: &CertificateDer<'static>, addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| format!("test CA: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| format!("TLS client: {e}"))?;
    let tcp = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    let mut response = Vec::new();
    // Pebble may close without a TLS close_notify; what was read until then is the answer.
    if let Err(e) = (&mut tls).take(MAX_RESPONSE).read_to_end(&mut response)
        && response.is_empty()
    {
        return Err(format!("GET {path} on {addr}: {e}"));
    }
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path} on {addr}: no HTTP header in {text:?}"))?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|line| line.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return Err(format!("GET {path} on {addr}: {head}"));
    }
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(dechunk("0\r\n\r\n"), "");
    }
}
