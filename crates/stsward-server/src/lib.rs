//! # stsward-server — the long-running service behind `stsward serve`
//!
//! One module per role (see DESIGN.md, "Architecture"):
//! - [`acme`]: certificates for the policy hosts from an ACME CA (RFC 8555; HTTP-01, RFC 8737
//!   TLS-ALPN-01), the pre-flight check, and the renewal policies;
//! - [`alerts`]: scheduled re-checks of every hosted domain, the alert rules, and alerts
//!   opened once, resolved when their cause goes, and sent once by e-mail or webhook;
//! - [`api`]: the REST API over the domain service (bearer token, JSON over HTTP/1.1);
//! - [`auth`]: passwords (argon2id), API tokens and login throttling for tenants' users;
//! - [`certs`]: the certificate manager: orders, stores sealed, renews and installs each
//!   policy host's certificate, one replica per name (RFC 8461 §3.3);
//! - [`checks`]: checks that tenants run over the API, never connecting to non-global
//!   addresses (no server-side request forgery), bounded per tenant and overall;
//! - [`config`]: the `stsward.toml` that `stsward serve` and `stsward domain` read;
//! - [`domains`]: hosted domains and their policy versions, the service code that the CLI and
//!   the REST API both call (RFC 8461 §3.2 policies, §3.1 ids, §8.3 safe removal);
//! - [`dns`]: the authoritative DNS for the zone delegated to stsward (RFC 8461 §3.1 TXT,
//!   RFC 8460 §3 TXT);
//! - [`scheduler`]: scheduled work of `stsward serve`: MX follow (RFC 8461 §3.2 `mx`
//!   lines), the own `_mta-sts` TXT watch (§3.1 id), and persisting policy fetch counts;
//! - [`sealing`]: private keys and ACME credentials encrypted at rest (AES-256-GCM);
//! - [`serve`]: `stsward serve`, every role above in one process, kept in step with the store
//!   (RFC 8461 §8.1 ordering across replicas, §8.3 removal);
//! - [`intake`]: report intake (RFC 8460 §5): the channels and the sink they hand reports to;
//! - [`host`]: the HTTPS policy host (RFC 8461 §3.3) with a certificate per SNI name, and the
//!   HTTP listener for ACME HTTP-01 challenges.

#![forbid(unsafe_code)]

pub mod acme;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod certs;
pub mod checks;
pub mod config;
pub mod dns;
pub mod domains;
pub mod host;
pub mod intake;
mod listen;
pub mod metrics;
pub mod readiness;
pub mod scheduler;
pub mod sealing;
pub mod serve;
pub mod web;
