//! RFC 8460 §3 — the DNS side of DKIM verification: key records by hickory-resolver
//!
//! A DKIM key is a TXT record at `selector._domainkey.domain` (RFC 6376; paraphrased, as
//! that RFC is not in the reference set). The RFC 8460 §3 sample, exactly:
//!
//! ```text
//! dkim_selector._domainkey.example.com TXT
//!       "v=DKIM1;k=rsa;s=tlsrpt;p=Mlf4qwSZfase4fa=="
//! ```
//!
//! [`DnsKeyLookup`] asks one given server (`ADDR:PORT`, for tests and the lab) or
//! the system's resolvers, and every lookup ends by its deadline, as a temporary failure.
//!
//! This is the only network I/O of the crate, behind the `dns` feature. It uses the
//! hickory-resolver that mail-auth already builds on (one DNS stack in the workspace).

use std::net::SocketAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::rr::RData;
use mail_auth::hickory_resolver::{TokioResolver, system_conf};

use crate::dkim::{KeyLookup, KeyLookupError};

/// The default deadline of one key lookup, all attempts and servers included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Which DNS server answers the key lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyServer {
    /// The resolvers of the system configuration (`/etc/resolv.conf`).
    System,
    /// One server, over UDP with TCP fallback (`--resolver ADDR:PORT`).
    At(SocketAddr),
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimDnsError {
    /// The system configuration could not be read or names no server.
    #[error("DKIM key lookups: the system DNS configuration cannot be used: {detail}")]
    SystemConfig {
        /// What is wrong.
        detail: String,
    },
    /// hickory refused the configuration.
    #[error("DKIM key lookups: the resolver cannot be built: {detail}")]
    Build {
        /// What hickory said.
        detail: String,
    },
}

/// Looks up DKIM key records in DNS, each lookup bounded by a deadline. Answers are cached
/// by the resolver for their TTL. Cheap to clone (the resolver is shared); must be built
/// inside a tokio runtime.
#[derive(Clone)]
pub struct DnsKeyLookup {
    resolver: TokioResolver,
    deadline: Duration,
}

impl std::fmt::Debug for DnsKeyLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsKeyLookup")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl DnsKeyLookup {
    /// A lookup through `server` whose every lookup ends within `deadline`.
    pub fn new(server: KeyServer, deadline: Duration) -> Result<Self, DkimDnsError> {
        let servers = match server {
            KeyServer::At(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut ns.connections {
                    connection.port = addr.port();
                }
                vec![ns]
            }
            KeyServer::System => {
                let (config, _) =
                    system_conf::read_system_conf().map_err(|e| DkimDnsError::SystemConfig {
                        detail: e.to_string(),
                    })?;
                if config.name_servers().is_empty() {
                    return Err(DkimDnsError::SystemConfig {
                        detail: "no nameserver is configured".into(),
                    });
                }
                config.name_servers().to_vec()
            }
        };
        let mut opts = ResolverOpts::default();
        // Two tries, each given half the deadline; the deadline itself is enforced below.
        opts.attempts = 2;
        opts.timeout = (deadline / 2).max(Duration::from_millis(50));
        opts.try_tcp_on_error = true;
        // Names are always absolute: no search list, no ndots games.
        opts.ndots = 0;
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| DkimDnsError::Build {
                detail: e.to_string(),
            })?;
        Ok(DnsKeyLookup { resolver, deadline })
    }

    /// The deadline of one lookup.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

impl KeyLookup for DnsKeyLookup {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, KeyLookupError> {
        let absolute = format!("{}.", name.trim_end_matches('.'));
        let lookup =
            tokio::time::timeout(self.deadline, self.resolver.txt_lookup(absolute.as_str()));
        let answer = match lookup.await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(KeyLookupError::Temporary {
                    name: name.to_owned(),
                    reason: format!("no answer within {:?}", self.deadline),
                });
            }
        };
        match answer {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(txt.txt_data.concat()),
                    _ => None,
                })
                .collect()),
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Err(KeyLookupError::NotFound {
                name: name.to_owned(),
            }),
            Err(NetError::Timeout) => Err(KeyLookupError::Temporary {
                name: name.to_owned(),
                reason: "the DNS query timed out".into(),
            }),
            Err(other) => Err(KeyLookupError::Temporary {
                name: name.to_owned(),
                reason: other.to_string(),
            }),
        }
    }
}
