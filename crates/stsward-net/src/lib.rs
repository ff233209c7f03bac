//! # stsward-net — the client-side network layer of stsward
//!
//! What a sender (RFC 8461 §5) and a checker both need to observe on the wire:
//! - [`dns`]: TXT, MX, A/AAAA and TLSA lookups with CNAME chains and DNSSEC status;
//! - [`policy_fetch`]: the RFC 8461 §3.3 policy fetch over HTTPS;
//! - [`starttls`]: the SMTP STARTTLS probe of an MX host (RFC 3207), with [`smtp_reply`] as
//!   its pure reply parser, [`smtp_conn`] as the client side of the conversation, and
//!   [`legacy`] for TLS 1.0/1.1 detection;
//! - [`limit`]: at most N concurrent connections per destination address;
//! - [`probe_cache`]: probe results per (MX host, address), shared by every job;
//! - [`cert`]: judging a presented chain (trust, name, validity, separately);
//! - [`dane`]: RFC 7672 TLSA matching;
//! - [`address_policy`]: which addresses a tenant-requested check may connect to (no
//!   server-side request forgery; a pure function), applied to every DNS answer and every
//!   connection by [`connect_guard`].
//!
//! This crate observes and reports typed facts and errors. It never decides how bad a fact is:
//! severities belong to `stsward-check`. Time is always an argument.
//!
//! Every await on the network is bounded: each step has its own timeout, and the callers
//! pass the deadline of the whole job, which cuts every step short.

pub mod address_policy;
pub mod cert;
pub mod connect_guard;
pub mod dane;
pub mod dns;
pub mod error;
pub mod legacy;
pub mod limit;
pub mod policy_fetch;
pub mod probe_cache;
pub mod smtp_conn;
pub mod smtp_reply;
pub mod starttls;
pub mod tls;

pub use error::NetError;

#[cfg(test)]
mod test_pki;
