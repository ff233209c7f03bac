//! # stsward-resolver — the sending side of stsward
//!
//! `stsward resolve`: a Postfix `smtp_tls_policy_maps` daemon over the socketmap protocol. It
//! answers, per next-hop domain, how Postfix must secure delivery: RFC 8461 §5 policy
//! application for MTA-STS, with DANE (RFC 7672) first where the MX hosts publish
//! DNSSEC-validated TLSA records (RFC 8461 §2).
//!
//! One job per module; the decisions are pure and the network sits behind a trait:
//! - [`key`]: socketmap key → destination and Policy Domain (pure);
//! - [`policy`]: the compact cached policy and the persisted row (pure);
//! - [`dane`]: what TLSA records mean for the answer (pure);
//! - [`answer`]: policy state + configuration → what Postfix is told (pure);
//! - [`source`]: discovery, fetch and DANE observation on the network (`stsward-net`);
//! - [`cache`]: the bounded in-memory cache;
//! - [`persist`]: the store behind a trait;
//! - [`engine`]: lookups, single-flight resolutions, refresh, reload, show/purge/test;
//! - [`metrics`]: counters and their Prometheus text;
//! - [`config`]: the TOML configuration;
//! - [`daemon`]: `stsward resolve serve` — the parts wired together, admin endpoint, SIGHUP;
//! - [`server`]: the socketmap listener (TCP and unix sockets, deadlines, shutdown).
//!
//! `docs/resolver.md` explains the answers and the choices behind them.
#![forbid(unsafe_code)]

pub mod answer;
pub mod cache;
pub mod config;
pub mod daemon;
pub mod dane;
pub mod engine;
pub mod key;
pub mod metrics;
pub mod persist;
pub mod policy;
pub mod server;
pub mod source;

pub use answer::{Answer, AnswerConfig, AnswerKind, FailureAnswer};
pub use config::{ConfigError, EngineSettings, ResolverConfig};
pub use engine::{Clock, Engine, Explained, Shown, system_clock};
pub use persist::{MemoryPersist, PersistError, PolicyPersist};
pub use policy::CachedPolicy;
pub use source::{NetSettings, NetSource, Source};
