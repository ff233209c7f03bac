//! # stsward-lab — a self-contained local world for tests and demos
//!
//! A lab is built from a [`Scenario`] (TOML) describing `.test` domains: their `_mta-sts`
//! (RFC 8461 §3.1) and `_smtp._tls` (RFC 8460 §3) records, policy hosts (RFC 8461 §3.3), MX
//! hosts with STARTTLS (RFC 3207) and optional TLSA records (RFC 7672), each with a chosen
//! fault. [`Lab::start`] runs it all on loopback: an authoritative DNS server, one SMTP and
//! one HTTPS listener per host address (every host has its own 127.0.0.0/8 address), and a
//! test CA whose root is written to a file for the checker's `--ca-file`. Test senders of
//! TLS-RPT reports get DKIM keys from [`dkim`], published in a lab zone.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stsward_lab::{Lab, LabOptions, Scenario};
//! let scenario: Scenario = std::fs::read_to_string("scenarios/findings.toml")?.parse()?;
//! let lab = Lab::start(&scenario, &LabOptions::new("/tmp/lab", time::OffsetDateTime::now_utc())).await?;
//! println!("{}", lab.describe());
//! lab.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The lab reads no clock of its own (certificates are issued relative to
//! [`LabOptions::now`]); only DNSSEC signatures use hickory's clock.

pub mod ca;
pub mod dkim;
pub mod dns;
pub mod https;
mod plan;
pub mod scenario;
pub mod smtp;
mod world;

pub use ca::{CaError, CertVariant, IssuedCert, LabCa};
pub use plan::AddressSpaceExhausted;
pub use scenario::{Scenario, ScenarioError};
pub use world::{
    Lab, LabError, LabOptions, RunningLab, SMTP_STATS_FILE_NAME, TRUST_ANCHOR_FILE_NAME,
    generate_bulk,
};

/// The shipped scenario with one domain per finding code the lab can provoke.
pub const FINDINGS_SCENARIO: &str = include_str!("../scenarios/findings.toml");

/// The shipped scenario whose hosts send terminal escape sequences (a rejecting greeting, a
/// certificate name), for tests of safe output.
pub const ESCAPE_SCENARIO: &str = include_str!("../scenarios/escape.toml");

#[cfg(test)]
mod tests {
    use super::*;

    // Which codes the findings scenario provokes is asserted where the checker is at hand,
    // by running the scenario through it: stsward-check's
    // `tests/lab_findings.rs::every_code_is_provoked_by_a_findings_scenario_run`.

    #[test]
    fn shipped_scenarios_parse() {
        let scenario: Scenario = FINDINGS_SCENARIO.parse().unwrap();
        assert!(scenario.domain("perfect.test").is_some());
        assert_eq!(scenario.domain("four-mx.test").unwrap().mx.len(), 4);
        let escape: Scenario = ESCAPE_SCENARIO.parse().unwrap();
        assert!(escape.domain("escape-greeting.test").is_some());
        assert!(escape.domain("cert-escape-name.test").is_some());
    }
}
