//! # stsward-resolver — the sending side of stsward
//!
//! `stsward resolve`: a Postfix `smtp_tls_policy_maps` daemon over the socketmap protocol. It
//! answers, per next-hop domain, how Postfix must secure delivery: RFC 8461 §5 policy
//! application for MTA-STS, with DANE (RFC 7672) first where the MX hosts publish
//! DNSSEC-validated TLSA records (RFC 8461 §2).

pub mod server;
