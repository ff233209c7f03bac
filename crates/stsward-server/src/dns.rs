//! The authoritative DNS for the zone delegated to stsward (RFC 1034/1035), which answers
//! the `_mta-sts` TXT record of each hosted domain (RFC 8461 §3.1) and its `_smtp._tls` TXT
//! record (RFC 8460 §3).
//!
//! A provider delegates a zone, say `sts.provider.example`, to stsward. Each customer domain
//! D then publishes CNAMEs into it:
//!
//! ```text
//! _mta-sts.D.      CNAME  _mta-sts.D.sts.provider.example.
//! _smtp._tls.D.    CNAME  _smtp._tls.D.sts.provider.example.
//! mta-sts.D.       CNAME  <policy host, inside the zone>
//! ```
//!
//! and stsward answers the targets: the TXT `v=STSv1; id=<id>;` whose id changes with the
//! policy, the TXT `v=TLSRPTv1; rua=<uri>`, and the policy host's addresses. RFC 8461 §3.1:
//! "The "_mta-sts" record MAY return a CNAME that points (directly or via other CNAMEs) to a
//! TXT record, in which case senders MUST follow the CNAME pointers." §8.2 describes this
//! delegation.
//!
//! How the service uses it (the wiring maps its configuration onto [`ZoneSettings`]):
//!
//! ```text
//! let zone = Arc::new(Zone::new(settings)?);          // apex, SOA, NS, policy host, key
//! zone.upsert("example.com", &policy_id, None)?;       // one domain; returns the new serial
//! zone.remove("example.com")?;                         // NXDOMAIN from the next answer on
//! let server = DnsServer::start(zone.clone(), udp_sockets, tcp_listeners, DnsLimits::default())?;
//! server.run_until(shutdown_signal).await?;
//! ```
//!
//! - [`settings`]: the plain values an operator chooses ([`ZoneSettings`]);
//! - [`zone`]: the zone in memory, cheap to change one domain at a time ([`Zone`]);
//! - [`sign`]: DNSSEC signing, online, when a [`ZoneKey`] is configured; the parent zone
//!   publishes [`Zone::ds_record`];
//! - [`server`]: UDP through hickory-server, TCP through our own bounded loop
//!   ([`DnsServer`]);
//! - `names`, `rrsets`, `tcp`: name checks, record building and the TCP loop behind them.
//!
//! hickory-server logs every answered question at `info` level (target `hickory_server`);
//! a busy server filters that target to `warn`.

mod names;
mod rrsets;
pub mod server;
pub mod settings;
pub mod sign;
mod tcp;
pub mod zone;

pub use server::{DnsLimits, DnsServer};
pub use settings::{DEFAULT_TTL, DEFAULT_TXT_TTL, NameServer, SoaSettings, ZoneSettings};
pub use sign::ZoneKey;
pub use zone::{DelegatedNames, Zone};

use hickory_proto::rr::RecordType;

/// Why the zone could not be built or changed, or the server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A setting is not a valid DNS name.
    #[error("{field} = {value:?} is not a DNS name: {source}")]
    Name {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What hickory said.
        #[source]
        source: hickory_proto::ProtoError,
    },
    /// A setting is out of range or inconsistent.
    #[error("{field} = {value:?}: {reason}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A hosted domain name that cannot be served.
    #[error("domain {domain:?}: {reason}")]
    Domain {
        /// The domain as given.
        domain: String,
        /// Why.
        reason: &'static str,
    },
    /// The TLS-RPT record built from a `rua` list does not parse back (RFC 8460 §3).
    #[error("{field}: the TLS-RPT record would be invalid: {source}")]
    TlsRpt {
        /// `rua` or `default_rua`.
        field: &'static str,
        /// What the parser said.
        #[source]
        source: stsward_proto::tlsrpt::RecordError,
    },
    /// The signing key is not a usable ECDSA P-256 key.
    #[error("DNSSEC signing key: {source}")]
    SigningKey {
        /// What hickory said.
        #[source]
        source: hickory_proto::dnssec::DnsSecError,
    },
    /// Signing an RRset failed.
    #[error("signing {record_type} at {name}: {source}")]
    Sign {
        /// The owner name.
        name: String,
        /// The RRset's type.
        record_type: RecordType,
        /// What hickory said.
        #[source]
        source: hickory_proto::ProtoError,
    },
    /// The server was given no socket to listen on.
    #[error("the DNS server needs at least one UDP socket or TCP listener")]
    NoSockets,
    /// A socket given to the server is unusable.
    #[error("DNS socket: {source}")]
    Socket {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A listener stopped with an error.
    #[error("DNS server: {source}")]
    Serve {
        /// What hickory said.
        #[source]
        source: hickory_server::net::NetError,
    },
}
