//! RFC 8461 §3.3 — the HTTPS policy host, and the HTTP listener for ACME HTTP-01.
//!
//! ```text
//! https://mta-sts.<domain>/.well-known/mta-sts.txt      (RFC 8461 §3.2, §3.3)
//!   TLS 1.2 or 1.3; the certificate is chosen by SNI      (sni.rs)
//!   GET/HEAD, Host = SNI = a hosted policy host           (policy.rs)
//!   200, text/plain; charset=utf-8, the policy's Display (CRLF lines), never a redirect
//! http://<any>/.well-known/acme-challenge/<token>          (RFC 8555 §8.3, http01.rs)
//! TLS with ALPN "acme-tls/1" and SNI <name>               (RFC 8737 §3, sni.rs)
//! ```
//!
//! What is served lives in memory, in [`Sites`] and [`Challenges`]; both are cheap to update
//! one domain at a time while the listeners run, and are shared with the code that decides
//! what to serve (the domain service, the ACME module). Fetches are counted in
//! [`FetchCounter`] for a periodic task to persist. [`HostServer`] owns the sockets and the
//! limits ([`HostLimits`]): every wait on a client has a deadline, and the number of
//! connections has a bound.
//!
//! RFC 8461 is quoted from the project's reference text. RFC 8555 (ACME), RFC 8737
//! (TLS-ALPN-01), RFC 9110 and RFC 9112 (HTTP) are not in that set: where they are cited, the
//! text is paraphrased, never quoted.
//!
//! This module reads no configuration file and no store: the caller builds the values above
//! and keeps them up to date.
//!
//! Choices made here, each explained where it is implemented:
//! - no certificate, an expired one, or no SNI → the handshake fails; there is no default
//!   certificate (`sni.rs`);
//! - `Host` ≠ SNI → 421; a query string or any other spelling of the path → 404; HEAD is
//!   answered but not counted as a fetch (`policy.rs`);
//! - plain HTTP answers ACME challenges only, with no redirect to HTTPS (`http01.rs`);
//! - HTTP/1.x only; when every connection slot is taken, new connections wait in the listen
//!   backlog (`serve.rs`);
//! - the fetching network is the client's TCP peer address: behind a TCP load balancer that
//!   hides it, the counts show the balancer's network (no PROXY protocol support).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stsward_server::host::{Challenges, FetchCounter, HostLimits, HostServer, Sites};
//! let sites = Sites::new();
//! sites.upsert_policy("example.com", "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n")?;
//! // sites.set_certificate("mta-sts.example.com", certified_key)?;
//! let server = HostServer::bind(
//!     &["0.0.0.0:443".parse()?, "[::]:443".parse()?],
//!     &["0.0.0.0:80".parse()?, "[::]:80".parse()?],
//!     HostLimits::default(),
//! )?;
//! let counter = FetchCounter::default();
//! server
//!     .run(sites, Challenges::new(), counter, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(()) }
//! ```

mod challenges;
mod counts;
mod http01;
mod name;
mod policy;
mod serve;
mod sites;
mod sni;

pub use challenges::{
    ACME_TLS_ALPN, ChallengeError, Challenges, MAX_HTTP01_CHALLENGES, MAX_TLS_ALPN01_CHALLENGES,
};
pub use counts::{DEFAULT_MAX_COUNT_KEYS, FetchCount, FetchCounter, FetchCounts, Network};
pub use http01::ACME_CHALLENGE_PREFIX;
pub use name::NameError;
pub use policy::{POLICY_CONTENT_TYPE, WELL_KNOWN_PATH};
pub use serve::{HostError, HostLimits, HostServer};
pub use sites::{SiteError, Sites};
pub use sni::SniResolver;
