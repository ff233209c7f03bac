//! The `stsward resolve serve --config FILE` configuration (TOML, parsed once).
//!
//! ```toml
//! [listen]
//! tcp = ["127.0.0.1:8461"]          # socketmap over TCP (default)
//! unix = []                         # socketmap over unix sockets, e.g. "/run/stsward/resolve.sock"
//!
//! [dns]
//! resolver = "127.0.0.1:53"         # default: the system's resolvers
//! timeout_ms = 3000                 # one query attempt
//! attempts = 2
//! dnssec = true                     # validate DNSSEC (needed for DANE first)
//! trust_anchors = "/path/keys.txt"  # DNSKEYs replacing the root's (labs only)
//!
//! [fetch]
//! https_port = 443
//! ca_file = "/path/extra-roots.pem" # extra roots for the policy hosts
//! webpki_roots = true               # also trust the Mozilla roots
//! timeout_secs = 60                 # RFC 8461 §3.3: "A suggested timeout is one minute"
//! max_concurrent = 64               # policy resolutions in flight at once
//!
//! [cache]
//! store = "sqlite:///var/lib/stsward/resolver.db"   # persistence (the lead wires it)
//! max_domains = 200000
//! txt_recheck_secs = 900            # re-check the _mta-sts id after this (RFC 8461 §3.1, §5.1)
//! refresh_before_secs = 86400       # refresh a policy this long before it expires (§3.3)
//! fetch_retry_secs = 300            # after a failed fetch, per id (§3.3: "five minutes or longer")
//! negative_ttl_secs = 300           # "no policy" is cached this long
//! error_ttl_secs = 60               # a failure without a cached policy is cached this long
//!
//! [admin]
//! listen = "127.0.0.1:8462"         # HTTP: GET /metrics, GET and DELETE /domains/NAME
//!                                   # ("" turns it off; keep it on loopback: no auth)
//!
//! [answer]
//! tlsrpt_attributes = false         # Postfix >= 3.10 only
//! on_failure = "notfound"           # or "temp"
//! dane_first = true                 # RFC 8461 §2
//! dane_level = "dane-only"          # or "dane"
//! lookup_deadline_ms = 5000         # a lookup never waits longer (then TEMP)
//! ```
//!
//! Unknown keys are errors; every error names the key (`toml`'s messages carry the key and
//! the line; range checks here name `section.key`).
//!
//! Every key can be overridden by an environment variable (see [`stsward_config::layers`]):
//! [`ENV_PREFIX`] + the key's path upper-cased with `.` → `_` (`cache.store` →
//! `STSWARD_RESOLVE_CACHE_STORE`), applied over the file before validation;
//! `docs/configuration.md` lists them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use stsward_config::{Invalid, Keys, Layers, Loaded};
use thiserror::Error;

use crate::answer::{AnswerConfig, FailureAnswer};
use crate::dane::DaneLevel;

/// The prefix of the variables that override keys of this file.
pub const ENV_PREFIX: &str = "STSWARD_RESOLVE_";

/// Variables with [`ENV_PREFIX`] that are no key: the command line's `--config` and `--store`.
pub const ENV_LAYERS: Layers<'static> = Layers {
    prefix: ENV_PREFIX,
    allowed: &["STSWARD_RESOLVE_CONFIG", "STSWARD_RESOLVE_STORE"],
    others: &[],
};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ResolverConfig {
    /// `[listen]`.
    pub listen: ListenConfig,
    /// `[dns]`.
    pub dns: DnsSection,
    /// `[fetch]`.
    pub fetch: FetchSection,
    /// `[cache]`.
    pub cache: CacheSection,
    /// `[answer]`.
    pub answer: AnswerSection,
    /// `[admin]`.
    pub admin: AdminSection,
}

/// `[admin]`: the local HTTP endpoint that `stsward resolve show|purge` and Prometheus use.
/// It has no authentication: bind it to loopback (the default) or a private address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Where to listen (default `127.0.0.1:8462`); the empty string turns it off.
    #[serde(deserialize_with = "optional_addr")]
    pub listen: Option<SocketAddr>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8462))),
        }
    }
}

/// `""` → none, else a socket address.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not ADDR:PORT: {e}")))
}

/// `[listen]`: where the socketmap server listens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// TCP addresses (default `["127.0.0.1:8461"]`).
    pub tcp: Vec<SocketAddr>,
    /// Unix socket paths (default none).
    pub unix: Vec<PathBuf>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            tcp: vec![SocketAddr::from(([127, 0, 0, 1], 8461))],
            unix: Vec::new(),
        }
    }
}

/// `[dns]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Ask this server instead of the system's resolvers.
    pub resolver: Option<SocketAddr>,
    /// One query attempt, in milliseconds (default 3000).
    pub timeout_ms: u64,
    /// Attempts per query (default 2).
    pub attempts: usize,
    /// Validate DNSSEC (default true; DANE first needs it).
    pub dnssec: bool,
    /// DNSKEY trust anchors in presentation format, replacing the root's (labs).
    pub trust_anchors: Option<PathBuf>,
}

impl Default for DnsSection {
    fn default() -> Self {
        DnsSection {
            resolver: None,
            timeout_ms: 3000,
            attempts: 2,
            dnssec: true,
            trust_anchors: None,
        }
    }
}

/// `[fetch]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSection {
    /// The policy hosts' port (default 443).
    pub https_port: u16,
    /// Extra trusted roots (PEM).
    pub ca_file: Option<PathBuf>,
    /// Trust the Mozilla root set too (default true).
    pub webpki_roots: bool,
    /// The whole policy fetch, in seconds (default 60, RFC 8461 §3.3).
    pub timeout_secs: u64,
    /// Resolutions (TXT + fetch + DANE) in flight at once (default 64).
    pub max_concurrent: usize,
}

impl Default for FetchSection {
    fn default() -> Self {
        FetchSection {
            https_port: 443,
            ca_file: None,
            webpki_roots: true,
            timeout_secs: 60,
            max_concurrent: 64,
        }
    }
}

/// `[cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// The persistence URL (`sqlite://…` or `postgres://…`); none keeps the cache in memory.
    pub store: Option<String>,
    /// Most destinations kept in memory (default 200,000).
    pub max_domains: usize,
    /// Seconds after which the `_mta-sts` TXT id is re-checked in the background (default 900).
    pub txt_recheck_secs: u64,
    /// Refresh a policy this many seconds before it expires (default 86400).
    pub refresh_before_secs: u64,
    /// After a failed fetch, no new fetch for the same id for this long (default 300).
    pub fetch_retry_secs: u64,
    /// How long "no policy" is cached (default 300).
    pub negative_ttl_secs: u64,
    /// How long a failure without a cached policy is cached (default 60).
    pub error_ttl_secs: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            store: None,
            max_domains: 200_000,
            txt_recheck_secs: 900,
            refresh_before_secs: 86_400,
            fetch_retry_secs: 300,
            negative_ttl_secs: 300,
            error_ttl_secs: 60,
        }
    }
}

/// `[answer]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerSection {
    /// Add the Postfix 3.10 TLSRPT attributes (default false).
    pub tlsrpt_attributes: bool,
    /// `"notfound"` (default) or `"temp"`.
    pub on_failure: FailureAnswer,
    /// DANE first (default true).
    pub dane_first: bool,
    /// `"dane-only"` (default) or `"dane"`.
    pub dane_level: DaneLevel,
    /// Longest a lookup waits, in milliseconds (default 5000).
    pub lookup_deadline_ms: u64,
}

impl Default for AnswerSection {
    fn default() -> Self {
        AnswerSection {
            tlsrpt_attributes: false,
            on_failure: FailureAnswer::NotFound,
            dane_first: true,
            dane_level: DaneLevel::DaneOnly,
            lookup_deadline_ms: 5000,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse or has an unknown key or a wrong type.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A value of the file or of an environment override is refused: where it came from (the
    /// file's line, or the variable), the key and why.
    #[error(transparent)]
    Layered(#[from] stsward_config::Problem),
    /// The keys could not be traced from the structs (a bug, caught by the tests).
    #[error(transparent)]
    Keys(#[from] stsward_config::TraceError),
    /// A value out of range.
    #[error("{key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl std::str::FromStr for ResolverConfig {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cfg: ResolverConfig = toml::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

impl ResolverConfig {
    /// Every key of the file, traced from these structs.
    pub fn keys() -> Result<Keys, ConfigError> {
        Ok(Keys::trace::<ResolverConfig>()?)
    }

    /// The file (its path and text; `None`: the defaults) with the overrides found in `env`
    /// (see [`ENV_LAYERS`]), validated. Errors name where the refused value came from (the
    /// file's line, or the variable), the key and why.
    pub fn load_layered(
        file: Option<(&std::path::Path, &str)>,
        env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Loaded<ResolverConfig>, ConfigError> {
        let validate = |cfg: &mut ResolverConfig| {
            cfg.validate().map_err(|e| match e {
                ConfigError::Invalid { key, reason } => Invalid {
                    key: key.into(),
                    reason: reason.into(),
                },
                other => Invalid {
                    key: String::new(),
                    reason: other.to_string(),
                },
            })
        };
        Ok(ENV_LAYERS.load(&Self::keys()?, file, env, validate)?)
    }

    /// Range checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason| Err(ConfigError::Invalid { key, reason });
        if self.dns.timeout_ms == 0 {
            return bad("dns.timeout_ms", "must be at least 1");
        }
        if self.dns.attempts == 0 {
            return bad("dns.attempts", "must be at least 1");
        }
        if self.fetch.timeout_secs == 0 {
            return bad("fetch.timeout_secs", "must be at least 1");
        }
        if self.fetch.max_concurrent == 0 {
            return bad("fetch.max_concurrent", "must be at least 1");
        }
        if self.cache.max_domains == 0 {
            return bad("cache.max_domains", "must be at least 1");
        }
        if self.cache.txt_recheck_secs == 0 {
            return bad("cache.txt_recheck_secs", "must be at least 1");
        }
        if self.cache.fetch_retry_secs < 300 {
            return bad(
                "cache.fetch_retry_secs",
                "RFC 8461 §3.3 asks for five minutes (300) or longer",
            );
        }
        if self.answer.lookup_deadline_ms == 0 {
            return bad("answer.lookup_deadline_ms", "must be at least 1");
        }
        if self.listen.tcp.is_empty() && self.listen.unix.is_empty() {
            return bad("listen", "no tcp or unix listener");
        }
        Ok(())
    }

    /// The engine's knobs.
    pub fn engine(&self) -> EngineSettings {
        EngineSettings {
            answer: AnswerConfig {
                tlsrpt_attributes: self.answer.tlsrpt_attributes,
                on_failure: self.answer.on_failure,
            },
            dane_first: self.answer.dane_first,
            dane_level: self.answer.dane_level,
            lookup_deadline: Duration::from_millis(self.answer.lookup_deadline_ms),
            max_domains: self.cache.max_domains,
            txt_recheck_secs: secs(self.cache.txt_recheck_secs),
            refresh_before_secs: secs(self.cache.refresh_before_secs),
            fetch_retry_secs: secs(self.cache.fetch_retry_secs),
            negative_ttl_secs: secs(self.cache.negative_ttl_secs),
            error_ttl_secs: secs(self.cache.error_ttl_secs),
            max_concurrent: self.fetch.max_concurrent,
        }
    }
}

impl ResolverConfig {
    /// The network settings, given the contents of the files the config names (the binary
    /// reads `fetch.ca_file` and `dns.trust_anchors`; this crate reads no files).
    pub fn net(
        &self,
        extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
        trust_anchors: Option<String>,
    ) -> crate::source::NetSettings {
        crate::source::NetSettings {
            resolver: self.dns.resolver,
            dns_timeout: Duration::from_millis(self.dns.timeout_ms),
            dns_attempts: self.dns.attempts,
            dnssec: self.dns.dnssec,
            trust_anchors,
            https_port: self.fetch.https_port,
            extra_roots,
            webpki_roots: self.fetch.webpki_roots,
            fetch_timeout: Duration::from_secs(self.fetch.timeout_secs),
        }
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The engine's knobs as plain values (what [`crate::Engine::reload`] takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// How answers are written.
    pub answer: AnswerConfig,
    /// RFC 8461 §2 DANE first.
    pub dane_first: bool,
    /// The DANE level for `enforce` domains.
    pub dane_level: DaneLevel,
    /// The longest a lookup waits.
    pub lookup_deadline: Duration,
    /// The memory bound, in destinations.
    pub max_domains: usize,
    /// TXT re-check interval, seconds.
    pub txt_recheck_secs: i64,
    /// Proactive refresh lead, seconds.
    pub refresh_before_secs: i64,
    /// Failed-fetch back-off per id, seconds.
    pub fetch_retry_secs: i64,
    /// "No policy" TTL, seconds.
    pub negative_ttl_secs: i64,
    /// Failure TTL, seconds.
    pub error_ttl_secs: i64,
    /// Resolutions in flight at once.
    pub max_concurrent: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        ResolverConfig::default().engine()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        vars.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// One variable per key, all distinct, none taken by the command line's.
    #[test]
    fn every_key_has_its_own_variable() {
        let keys = ResolverConfig::keys().expect("traced");
        let mut seen = std::collections::BTreeSet::new();
        for (var, key) in keys.env_vars(ENV_PREFIX) {
            assert!(seen.insert(var.clone()), "{var} names two keys");
            assert!(
                !ENV_LAYERS.allowed.contains(&var.as_str()),
                "{var}: {}",
                key.path
            );
        }
        assert!(seen.contains("STSWARD_RESOLVE_CACHE_STORE"));
        assert_eq!(seen.len(), keys.iter().count());
    }

    #[test]
    fn environment_overrides_apply_before_validation() {
        let path = std::path::Path::new("resolve.toml");
        let text = "[cache]\nfetch_retry_secs = 100\n";
        let err = ResolverConfig::load_layered(Some((path, text)), env(&[]))
            .expect_err("below RFC 8461's five minutes")
            .to_string();
        assert!(
            err.starts_with("resolve.toml: line 2: cache.fetch_retry_secs: "),
            "{err}"
        );
        let loaded = ResolverConfig::load_layered(
            Some((path, text)),
            env(&[
                ("STSWARD_RESOLVE_CACHE_FETCH_RETRY_SECS", "600"),
                ("STSWARD_RESOLVE_ADMIN_LISTEN", ""),
                ("STSWARD_RESOLVE_LISTEN_TCP", "[\"127.0.0.1:9461\"]"),
                ("STSWARD_RESOLVE_STORE", "sqlite://flag.db"),
                ("STSWARD_RESOLVE_NOPE", "1"),
            ]),
        )
        .expect("fixed by the variable");
        let cfg = &loaded.value;
        assert_eq!(cfg.cache.fetch_retry_secs, 600);
        assert_eq!(cfg.admin.listen, None, "\"\" turns it off");
        assert_eq!(cfg.listen.tcp[0].port(), 9461);
        assert_eq!(cfg.cache.store, None, "the flag's variable is no key");
        assert_eq!(loaded.unknown, ["STSWARD_RESOLVE_NOPE"]);
        let err = ResolverConfig::load_layered(None, env(&[("STSWARD_RESOLVE_DNS_ATTEMPTS", "0")]))
            .expect_err("no attempt")
            .to_string();
        assert_eq!(
            err,
            "STSWARD_RESOLVE_DNS_ATTEMPTS: dns.attempts: must be at least 1"
        );
    }

    /// docs/configuration.md's resolver part has every key and no other, each with its
    /// variable; a default it gives, set alone in a file, gives the defaults.
    #[test]
    fn the_configuration_doc_has_every_resolver_key() {
        let doc = include_str!("../../../docs/configuration.md");
        let part = doc
            .split("\n# The resolver's file")
            .nth(1)
            .expect("docs/configuration.md has a part on the resolver's file");
        let keys = ResolverConfig::keys().expect("traced");
        let rows = stsward_config::doc::rows(part).expect("rows");
        if let Err(e) = stsward_config::doc::check(&keys, ENV_PREFIX, &rows) {
            panic!("docs/configuration.md: {e}");
        }
        for row in &rows {
            let path = &row.key;
            let Some(value) = row.default_value() else {
                assert_eq!(row.default, "none", "{path}");
                continue;
            };
            let (section, name) = path.split_once('.').expect("section.key");
            let alone: ResolverConfig = toml::from_str(&format!("[{section}]\n{name} = {value}\n"))
                .unwrap_or_else(|e| panic!("{path} = {value}: {e}"));
            assert_eq!(
                alone,
                ResolverConfig::default(),
                "{path}: {value} is not the default"
            );
        }
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let cfg: ResolverConfig = "".parse().expect("empty config");
        assert_eq!(cfg, ResolverConfig::default());
        let e = cfg.engine();
        assert!(!e.answer.tlsrpt_attributes, "off for Postfix < 3.10");
        assert_eq!(e.answer.on_failure, FailureAnswer::NotFound);
        assert!(e.dane_first);
        assert_eq!(e.dane_level, DaneLevel::DaneOnly);
        assert_eq!(e.txt_recheck_secs, 900);
        assert_eq!(e.fetch_retry_secs, 300);
        assert_eq!(
            cfg.listen.tcp,
            vec!["127.0.0.1:8461".parse().expect("addr")]
        );
    }

    /// docs/resolver.md lists every key with its default: the block parses to exactly the
    /// defaults, and uncommenting its commented keys gives no unknown key.
    #[test]
    fn the_documented_configuration_block_is_the_defaults() {
        let doc = include_str!("../../../docs/resolver.md");
        let section = doc
            .split("## Configuration")
            .nth(1)
            .expect("docs/resolver.md has a Configuration section");
        let block = section
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block in the Configuration section");
        let cfg: ResolverConfig = block.parse().expect("the documented block parses");
        assert_eq!(
            cfg,
            ResolverConfig::default(),
            "documented defaults drifted"
        );
        let uncommented: String = block
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let all: ResolverConfig = uncommented
            .parse()
            .expect("every commented key is a real key");
        assert!(all.cache.store.is_some() && all.dns.resolver.is_some());
        assert!(all.fetch.ca_file.is_some() && all.dns.trust_anchors.is_some());
        // And every section of the code is in the document.
        for section in [
            "[listen]", "[admin]", "[dns]", "[fetch]", "[cache]", "[answer]",
        ] {
            assert!(block.contains(section), "{section} is not documented");
        }
    }

    #[test]
    fn a_full_file_parses() {
        let text = r#"
[listen]
tcp = ["127.0.0.1:9000"]
unix = ["/run/x.sock"]
[dns]
resolver = "127.0.0.1:5353"
dnssec = false
[fetch]
https_port = 8443
timeout_secs = 10
[cache]
store = "sqlite://x.db"
txt_recheck_secs = 60
[answer]
tlsrpt_attributes = true
on_failure = "temp"
dane_level = "dane"
"#;
        let cfg: ResolverConfig = text.parse().expect("parses");
        assert_eq!(cfg.fetch.https_port, 8443);
        assert_eq!(cfg.answer.on_failure, FailureAnswer::Temp);
        assert_eq!(cfg.answer.dane_level, DaneLevel::Dane);
        assert_eq!(cfg.cache.store.as_deref(), Some("sqlite://x.db"));
    }

    #[test]
    fn errors_name_the_key() {
        // (text, a word the message must contain, why)
        let bad = [
            ("[answer]\ntlsrpt = true\n", "tlsrpt", "unknown key"),
            (
                "[cache]\nmax_domains = \"many\"\n",
                "max_domains",
                "wrong type",
            ),
            (
                "[answer]\non_failure = \"bounce\"\n",
                "bounce",
                "unknown variant",
            ),
            (
                "[answer]\ndane_level = \"secure\"\n",
                "secure",
                "not a DANE level",
            ),
            (
                "[cache]\nfetch_retry_secs = 10\n",
                "cache.fetch_retry_secs",
                "RFC 8461 §3.3 back-off",
            ),
            ("[dns]\nattempts = 0\n", "dns.attempts", "zero attempts"),
            ("[listen]\ntcp = []\n", "listen", "nothing to listen on"),
            ("[bogus]\n", "bogus", "unknown section"),
        ];
        for (text, word, why) in bad {
            let err = text.parse::<ResolverConfig>().expect_err(why).to_string();
            assert!(err.contains(word), "{why}: {err}");
        }
    }
}
