//! The `stsward.toml` that `stsward serve` and `stsward domain` read (TOML, parsed once).
//!
//! Every key has a default (`docs/serve.md` lists them all, and a test holds the two
//! together); unknown keys are errors, and every error names the key.
//!
//! ```toml
//! [listen]
//! https = ["0.0.0.0:443", "[::]:443"]   # the policy host (RFC 8461 §3.3)
//! http = ["0.0.0.0:80", "[::]:80"]      # ACME HTTP-01 only
//! dns = ["0.0.0.0:53", "[::]:53"]       # the delegated zone, UDP and TCP
//!
//! [hosting]
//! zone = "sts.provider.example"         # delegated to stsward (NS records at the parent)
//! policy_host = "mta-sts.provider.example"  # customers' mta-sts.<domain> CNAME here
//! policy_host_addrs = ["192.0.2.10"]    # A/AAAA of this service
//! txt_ttl = 300                         # seconds, the _mta-sts and _smtp._tls TXT TTL
//! tlsrpt_rua = "mailto:tlsrpt@provider.example"  # published at _smtp._tls
//! [[hosting.nameservers]]
//! name = "ns1.provider.example"
//! addrs = ["192.0.2.53"]
//!
//! [acme]                                # either this ...
//! directory = "https://acme.example/directory"
//! contact = ["mailto:ops@provider.example"]
//! challenge = "http-01"                 # or "tls-alpn-01"
//! [tls]                                 # ... or this, for self-hosters
//! cert_file = "/etc/stsward/cert.pem"
//! key_file = "/etc/stsward/key.pem"
//!
//! [store]
//! url = "sqlite://stsward.db"
//! [api]
//! listen = ["127.0.0.1:8480"]          # the REST API, plain HTTP: loopback or behind TLS
//! token_file = "/etc/stsward/api-token"  # or token = "…"
//! [keys]
//! secret_file = "/etc/stsward/secret.key"  # encrypts private keys at rest
//! dnssec_key_file = "/etc/stsward/zone.key"  # signs the zone (created when missing)
//! [replicas]
//! poll_interval_ms = 200                # how often the store is checked for changes
//! heartbeat_expiry = 10                 # seconds until a silent replica stops counting
//! [reports]
//! retention_days = 400                  # prune raw reports and failure details after this
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stsward_proto::tlsrpt::RuaUri;
use thiserror::Error;

use crate::domains::names::domain_name;

/// Longest configuration file read, in bytes: a config is a few kilobytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// `[listen]`.
    pub listen: ListenSection,
    /// `[hosting]`.
    pub hosting: HostingSection,
    /// `[acme]`: obtain certificates over ACME.
    pub acme: Option<AcmeSection>,
    /// `[tls]`: one static certificate (self-hosters).
    pub tls: Option<TlsSection>,
    /// `[store]`.
    pub store: StoreSection,
    /// `[api]`.
    pub api: ApiSection,
    /// `[keys]`.
    pub keys: KeysSection,
    /// `[replicas]`: how `stsward serve` notices changes and agrees with other replicas.
    pub replicas: ReplicasSection,
    /// `[reports]`: received TLS-RPT reports (docs/reports.md).
    pub reports: ReportsSection,
}

/// `[reports]`: received TLS-RPT reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSection {
    /// Raw inputs and failure details older than this many days are pruned (`stsward
    /// reports prune`); reports and daily rollups are kept. `None`: kept for ever.
    pub retention_days: Option<u32>,
}

/// `[replicas]`: change propagation (RFC 8461 §8.1 ordering across replicas).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasSection {
    /// How often the store is asked for changes, in milliseconds (default 200).
    pub poll_interval_ms: u64,
    /// Seconds after its last heartbeat at which a replica stops counting: the DNS then
    /// publishes a change without waiting for it (default 10).
    pub heartbeat_expiry: u64,
}

impl Default for ReplicasSection {
    fn default() -> Self {
        ReplicasSection {
            poll_interval_ms: 200,
            heartbeat_expiry: 10,
        }
    }
}

/// `[listen]`: IPv4 and IPv6 addresses of each role; high ports for unprivileged tests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSection {
    /// The HTTPS policy host (default `0.0.0.0:443` and `[::]:443`).
    pub https: Vec<SocketAddr>,
    /// HTTP, for ACME HTTP-01 challenges (default port 80).
    pub http: Vec<SocketAddr>,
    /// The authoritative DNS, UDP and TCP (default port 53).
    pub dns: Vec<SocketAddr>,
}

fn both_families(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::from(([0u16; 8], port)),
    ]
}

impl Default for ListenSection {
    fn default() -> Self {
        ListenSection {
            https: both_families(443),
            http: both_families(80),
            dns: both_families(53),
        }
    }
}

/// `[hosting]`: the names customers point at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostingSection {
    /// The zone delegated to stsward: `_mta-sts.<D>.<zone>` and `_smtp._tls.<D>.<zone>` live
    /// there. Normalised to lowercase A-labels without the trailing dot by
    /// [`ServeConfig::validate`].
    pub zone: Option<String>,
    /// The canonical name customers' `mta-sts.<D>` CNAME to.
    pub policy_host: Option<String>,
    /// The A/AAAA addresses of this service (for `policy_host`, and for customers who use
    /// addresses instead of a CNAME).
    pub policy_host_addrs: Vec<IpAddr>,
    /// The zone's name servers (NS), with their addresses.
    pub nameservers: Vec<NameServer>,
    /// TTL of the TXT records in the zone, in seconds (default 300: a policy change reaches
    /// senders quickly, RFC 8461 §3.1).
    pub txt_ttl: u32,
    /// The default `rua` published at `_smtp._tls.<D>.<zone>` (RFC 8460 §3); a domain may
    /// override it.
    pub tlsrpt_rua: Option<String>,
}

impl Default for HostingSection {
    fn default() -> Self {
        HostingSection {
            zone: None,
            policy_host: None,
            policy_host_addrs: Vec::new(),
            nameservers: Vec::new(),
            txt_ttl: 300,
            tlsrpt_rua: None,
        }
    }
}

/// One `[[hosting.nameservers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameServer {
    /// Its host name.
    pub name: String,
    /// Its addresses (glue when it is inside the zone).
    #[serde(default)]
    pub addrs: Vec<IpAddr>,
}

/// `[acme]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// The CA's directory URL.
    pub directory: String,
    /// Contact URIs given to the CA (`mailto:…`).
    #[serde(default)]
    pub contact: Vec<String>,
    /// The challenge tried first; the other is the fallback (default `http-01`).
    #[serde(default)]
    pub challenge: Challenge,
    /// PEM roots trusted for the CA's own HTTPS, for a private CA (step-ca, Pebble); the web
    /// PKI when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The ACME challenge type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Challenge {
    /// RFC 8555 §8.3, on the HTTP listener.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737, on the HTTPS listener.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// `[tls]`: a static certificate and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH` (default `sqlite://stsward.db`) or `postgres://…`.
    pub url: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: "sqlite://stsward.db".into(),
        }
    }
}

/// `[api]`: where the REST API listens, and its bearer token, inline or in a file (not both).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// The REST API's addresses (default `127.0.0.1:8480`: loopback only, plain HTTP; put it
    /// behind TLS before listening anywhere else).
    pub listen: Vec<SocketAddr>,
    /// The token itself.
    pub token: Option<Secret>,
    /// A file holding the token (surrounding whitespace ignored).
    pub token_file: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8480))],
            token: None,
            token_file: None,
        }
    }
}

/// `[keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// The file holding the key that encrypts private keys and ACME credentials at rest.
    pub secret_file: Option<PathBuf>,
    /// The DNSSEC key that signs the delegated zone (ECDSA P-256, PKCS#8, PEM or DER);
    /// created (mode 0600) when the file does not exist. Unset: the zone is not signed.
    pub dnssec_key_file: Option<PathBuf>,
}

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML does not parse, has an unknown key or a wrong type (the message names the key
    /// and the line).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A value is not allowed.
    #[error("{key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl std::str::FromStr for ServeConfig {
    type Err = ConfigError;

    /// Parses and validates (see [`ServeConfig::validate`]); names are normalised.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut cfg: ServeConfig = toml::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads a small file, refusing one over `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<String, ConfigError> {
    use std::io::Read;
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(read)?;
    if text.len() as u64 > max {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

impl ServeConfig {
    /// Reads, parses and validates the file at `path`. TOML errors keep the key and line;
    /// they are wrapped by the caller with the path.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        read_bounded(path, MAX_CONFIG_BYTES)?.parse()
    }

    /// Checks what serde cannot, and normalises host names to lowercase A-labels without the
    /// trailing dot. Whether the file is complete enough to serve is
    /// [`ServeConfig::validate_for_serving`].
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        let h = &mut self.hosting;
        for (key, name) in [
            ("hosting.zone", &mut h.zone),
            ("hosting.policy_host", &mut h.policy_host),
        ] {
            if let Some(n) = name {
                match domain_name(n) {
                    Ok(normal) => *n = normal,
                    Err(e) => return invalid(key, e.to_string()),
                }
            }
        }
        for ns in &mut h.nameservers {
            match domain_name(&ns.name) {
                Ok(normal) => ns.name = normal,
                Err(e) => return invalid("hosting.nameservers.name", e.to_string()),
            }
        }
        if h.txt_ttl == 0 {
            return invalid("hosting.txt_ttl", "must be at least 1 second".into());
        }
        if let Some(rua) = &h.tlsrpt_rua {
            check_rua(rua).or_else(|reason| invalid("hosting.tlsrpt_rua", reason))?;
        }
        if self.acme.is_some() && self.tls.is_some() {
            return invalid(
                "acme",
                "[acme] and [tls] are both set; keep one (ACME, or static certificate files)"
                    .into(),
            );
        }
        if let Some(acme) = &self.acme
            && !acme.directory.starts_with("https://")
        {
            return invalid(
                "acme.directory",
                format!("{:?} is not an https:// URL", acme.directory),
            );
        }
        if self.api.token.is_some() && self.api.token_file.is_some() {
            return invalid(
                "api.token",
                "api.token and api.token_file are both set; keep one".into(),
            );
        }
        if self
            .api
            .token
            .as_ref()
            .is_some_and(|t| t.0.trim().is_empty())
        {
            return invalid("api.token", "is empty".into());
        }
        if self.store.url.trim().is_empty() {
            return invalid("store.url", "is empty".into());
        }
        if self.reports.retention_days == Some(0) {
            return invalid("reports.retention_days", "must be at least 1".into());
        }
        let r = &self.replicas;
        if !(10..=10_000).contains(&r.poll_interval_ms) {
            return invalid(
                "replicas.poll_interval_ms",
                format!("{} is not between 10 and 10000", r.poll_interval_ms),
            );
        }
        if r.heartbeat_expiry == 0
            || r.heartbeat_expiry > 3600
            || r.heartbeat_expiry.saturating_mul(1000) < r.poll_interval_ms.saturating_mul(3)
        {
            return invalid(
                "replicas.heartbeat_expiry",
                format!(
                    "{} s must be at most 3600 and at least three poll intervals",
                    r.heartbeat_expiry
                ),
            );
        }
        Ok(())
    }

    /// What `stsward serve` needs beyond [`ServeConfig::validate`]: the hosting names, a
    /// listener for each role, and exactly one of `[acme]` and `[tls]`.
    pub fn validate_for_serving(&self) -> Result<(), ConfigError> {
        let missing = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.acme.is_none() && self.tls.is_none() {
            return missing(
                "acme",
                "serving needs [acme] (certificates from a CA) or [tls] (certificate files)",
            );
        }
        if self.hosting.zone.is_none() {
            return missing("hosting.zone", "is not set: the zone delegated to stsward");
        }
        if self.hosting.policy_host.is_none() {
            return missing(
                "hosting.policy_host",
                "is not set: the name customers' mta-sts hosts CNAME to",
            );
        }
        if self.hosting.nameservers.is_empty() {
            return missing("hosting.nameservers", "the zone needs at least one NS");
        }
        if self.listen.https.is_empty() {
            return missing("listen.https", "no address to serve policies on");
        }
        if self.listen.dns.is_empty() {
            return missing("listen.dns", "no address to answer DNS on");
        }
        Ok(())
    }

    /// The REST API token: inline, or read from `api.token_file`; `None` when neither is set
    /// (the API is then off).
    pub fn api_token(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(t) = &self.api.token {
            return Ok(Some(t.clone()));
        }
        let Some(path) = &self.api.token_file else {
            return Ok(None);
        };
        let text = read_bounded(path, 4096)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ConfigError::Invalid {
                key: "api.token_file",
                reason: format!("{} is empty", path.display()),
            });
        }
        Ok(Some(Secret(token.to_owned())))
    }
}

impl ServeConfig {
    /// The key that seals private keys and ACME credentials at rest, read from
    /// `keys.secret_file`; `None` when it is not set.
    pub fn sealing_key(&self) -> Result<Option<crate::sealing::SealingKey>, ConfigError> {
        let Some(path) = &self.keys.secret_file else {
            return Ok(None);
        };
        let text = read_bounded(path, 4096)?;
        crate::sealing::SealingKey::from_hex(&text)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                key: "keys.secret_file",
                reason: format!("{}: {e}", path.display()),
            })
    }
}

/// A `rua` list as RFC 8460 §3 writes it: one or more URIs separated by commas.
pub(crate) fn check_rua(rua: &str) -> Result<(), String> {
    if rua.trim().is_empty() {
        return Err("is empty".into());
    }
    for uri in rua.split(',') {
        uri.trim()
            .parse::<RuaUri>()
            .map_err(|e| format!("{uri:?} is not a TLS-RPT rua URI: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let cfg: ServeConfig = "".parse().expect("empty config");
        assert_eq!(cfg, ServeConfig::default());
        assert_eq!(cfg.store.url, "sqlite://stsward.db");
        assert_eq!(cfg.hosting.txt_ttl, 300);
        assert_eq!(
            cfg.listen.https,
            vec![
                "0.0.0.0:443".parse::<SocketAddr>().expect("v4"),
                "[::]:443".parse().expect("v6")
            ]
        );
        assert_eq!(cfg.listen.dns[1].port(), 53);
        assert_eq!(
            cfg.api.listen,
            vec![SocketAddr::from(([127, 0, 0, 1], 8480))]
        );
        assert!(cfg.acme.is_none() && cfg.tls.is_none());
        // Defaults are enough for `stsward domain`, not for serving.
        assert!(cfg.validate_for_serving().is_err());
    }

    fn documented_block() -> &'static str {
        let doc = include_str!("../../../docs/serve.md");
        let section = doc
            .split("## Configuration")
            .nth(1)
            .expect("docs/serve.md has a Configuration section");
        section
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block in the Configuration section")
    }

    /// docs/serve.md lists every key with its default: the block parses to exactly the
    /// defaults, and uncommenting its commented keys gives no unknown key.
    #[test]
    fn the_documented_configuration_block_is_the_defaults() {
        let block = documented_block();
        let cfg: ServeConfig = block.parse().expect("the documented block parses");
        assert_eq!(cfg, ServeConfig::default(), "documented defaults drifted");
        let uncommented: String = block
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        // Raw parse: the example shows [acme] and [tls] side by side, which validate refuses.
        let all: ServeConfig = toml::from_str(&uncommented).expect("every commented key is real");
        assert!(all.hosting.zone.is_some() && all.hosting.policy_host.is_some());
        assert!(!all.hosting.nameservers.is_empty() && !all.hosting.policy_host_addrs.is_empty());
        assert!(all.acme.is_some() && all.tls.is_some());
        assert!(all.api.token_file.is_some() && all.keys.secret_file.is_some());
        assert!(all.hosting.tlsrpt_rua.is_some());
        assert!(all.keys.dnssec_key_file.is_some());
        for section in [
            "[listen]",
            "[hosting]",
            "[acme]",
            "[tls]",
            "[store]",
            "[api]",
            "[keys]",
            "[replicas]",
        ] {
            assert!(block.contains(section), "{section} is not documented");
        }
    }

    #[test]
    fn a_full_file_parses_and_names_are_normalised() {
        let text = r#"
[listen]
https = ["127.0.0.1:8443", "[::1]:8443"]
http = ["127.0.0.1:8080"]
dns = ["127.0.0.1:5353"]
[hosting]
zone = "STS.Provider.Test."
policy_host = "mta-sts.provider.test"
policy_host_addrs = ["127.0.0.1", "::1"]
txt_ttl = 60
tlsrpt_rua = "mailto:tlsrpt@provider.test,https://provider.test/tlsrpt"
[[hosting.nameservers]]
name = "ns1.provider.test"
addrs = ["127.0.0.1"]
[acme]
directory = "https://127.0.0.1:14000/dir"
contact = ["mailto:ops@provider.test"]
challenge = "tls-alpn-01"
[store]
url = "postgres://stsward@127.0.0.1/stsward"
[api]
listen = ["127.0.0.1:18480", "[::1]:18480"]
token = "s3cret"
[keys]
secret_file = "/etc/stsward/secret.key"
"#;
        let cfg: ServeConfig = text.parse().expect("parses");
        assert_eq!(cfg.hosting.zone.as_deref(), Some("sts.provider.test"));
        assert_eq!(cfg.listen.https[1], "[::1]:8443".parse().expect("v6"));
        assert_eq!(cfg.api.listen[1], "[::1]:18480".parse().expect("v6"));
        assert_eq!(
            cfg.acme.as_ref().map(|a| a.challenge),
            Some(Challenge::TlsAlpn01)
        );
        assert_eq!(cfg.hosting.txt_ttl, 60);
        assert!(cfg.validate_for_serving().is_ok());
        assert_eq!(
            cfg.api_token()
                .expect("token")
                .map(|t| t.expose().to_owned()),
            Some("s3cret".into())
        );
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "Debug hides the token"
        );
    }

    #[test]
    fn the_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc123\n").expect("write");
        let cfg: ServeConfig = format!("[api]\ntoken_file = {:?}\n", path.display().to_string())
            .parse()
            .expect("parses");
        assert_eq!(
            cfg.api_token()
                .expect("read")
                .map(|t| t.expose().to_owned()),
            Some("abc123".into())
        );
        std::fs::write(&path, "\n").expect("write");
        let err = cfg.api_token().expect_err("empty").to_string();
        assert!(err.contains("api.token_file"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        // (text, a word the message must contain, why)
        let bad = [
            ("[listen]\nhttps = [\"443\"]\n", "https", "not ADDR:PORT"),
            ("[api]\nlisten = \"127.0.0.1:1\"\n", "listen", "not a list"),
            ("[hosting]\nttl = 5\n", "ttl", "unknown key"),
            ("[hosting]\ntxt_ttl = 0\n", "hosting.txt_ttl", "zero TTL"),
            (
                "[hosting]\nzone = \"a b.test\"\n",
                "hosting.zone",
                "not a name",
            ),
            (
                "[hosting]\nzone = \"192.0.2.1\"\n",
                "hosting.zone",
                "an address",
            ),
            (
                "[hosting]\npolicy_host = \"\"\n",
                "hosting.policy_host",
                "empty name",
            ),
            (
                "[hosting]\ntlsrpt_rua = \"ftp://x.test\"\n",
                "hosting.tlsrpt_rua",
                "not mailto or https",
            ),
            (
                "[[hosting.nameservers]]\nname = \"ns..test\"\n",
                "hosting.nameservers.name",
                "empty label",
            ),
            (
                "[acme]\ndirectory = \"https://ca.test/dir\"\nchallenge = \"dns-01\"\n",
                "dns-01",
                "unsupported challenge",
            ),
            (
                "[acme]\ndirectory = \"http://ca.test/dir\"\n",
                "acme.directory",
                "not https",
            ),
            (
                "[acme]\ndirectory = \"https://ca.test/dir\"\n[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
                "acme",
                "both acme and tls",
            ),
            (
                "[tls]\ncert_file = \"c\"\n",
                "key_file",
                "half a tls section",
            ),
            (
                "[api]\ntoken = \"x\"\ntoken_file = \"/t\"\n",
                "api.token",
                "both token and token_file",
            ),
            ("[store]\nurl = \"\"\n", "store.url", "empty url"),
            ("[bogus]\n", "bogus", "unknown section"),
            (
                "[replicas]\npoll_interval_ms = 5\n",
                "replicas.poll_interval_ms",
                "too fast",
            ),
            (
                "[replicas]\nheartbeat_expiry = 0\n",
                "replicas.heartbeat_expiry",
                "zero expiry",
            ),
        ];
        for (text, word, why) in bad {
            let err = text.parse::<ServeConfig>().expect_err(why).to_string();
            assert!(err.contains(word), "{why}: {err}");
        }
    }

    #[test]
    fn the_secret_file_gives_the_sealing_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).expect("write");
        let cfg: ServeConfig = format!("[keys]\nsecret_file = {:?}\n", path.display().to_string())
            .parse()
            .expect("parses");
        let key = cfg.sealing_key().expect("key").expect("set");
        let sealed = key.seal(b"k", "n").expect("seal");
        assert_eq!(key.open(&sealed, "n", "key").expect("open"), b"k");
        std::fs::write(&path, "short\n").expect("write");
        let err = cfg.sealing_key().expect_err("short key").to_string();
        assert!(err.contains("keys.secret_file"), "{err}");
        assert!(
            ServeConfig::default()
                .sealing_key()
                .expect("none")
                .is_none()
        );
    }

    #[test]
    fn load_names_a_missing_file() {
        let err = ServeConfig::load(Path::new("/nonexistent/stsward.toml"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/stsward.toml"), "{err}");
    }
}
