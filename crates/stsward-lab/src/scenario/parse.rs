//! Parsing a scenario: the raw serde model of the TOML file (`deny_unknown_fields`) and its
//! validation into the plain structs of [`super`], with errors that name the field.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::smtp::Stall;

use super::{
    AddressRecord, Cname, DEFAULT_EXPIRING_DAYS, DEFAULT_SLOW_DELAY, Delegation, Dnssec, Domain,
    LAB_TLD, MAX_LABEL_LEN, MAX_NAME_LEN, MxBehaviour, MxHost, MxRecord, PolicyBehaviour,
    PolicyHost, Scenario, ScenarioError, TlsaRecord, TlsaSpec, generated_policy, generated_sts_txt,
    generated_tlsrpt_txt, in_zone,
};

// ---------------------------------------------------------------------------------------------
// Raw (serde) model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    lab: Option<RawLab>,
    #[serde(default)]
    domain: Vec<RawDomain>,
    #[serde(default)]
    mx_host: Vec<RawMxHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    address_pool: Option<usize>,
    dns: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: String,
    #[serde(default)]
    mx: Vec<RawMx>,
    sts_txt: Option<RawTxt>,
    tlsrpt_txt: Option<RawTxt>,
    #[serde(default)]
    cname: Vec<RawCname>,
    #[serde(default)]
    delegation: Vec<RawDelegation>,
    #[serde(default)]
    address: Vec<RawAddress>,
    policy: Option<RawPolicy>,
    dnssec: Option<RawDnssec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDnssec {
    Flag(bool),
    Keyword(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMx {
    host: String,
    #[serde(default = "default_preference")]
    preference: u16,
}

fn default_preference() -> u16 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTxt {
    Keyword(String),
    Records(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCname {
    name: String,
    target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddress {
    name: String,
    addrs: Vec<std::net::Ipv4Addr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelegation {
    zone: String,
    ns: String,
    #[serde(default)]
    glue: Vec<std::net::Ipv4Addr>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawPolicyBehaviour {
    Good,
    Redirect,
    NotFound,
    ServerError,
    WrongContentType,
    Oversize,
    Slow,
    CertExpired,
    CertExpiring,
    CertWrongName,
    CertSelfSigned,
    CertUntrusted,
    NoAddress,
    Unreachable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    behaviour: RawPolicyBehaviour,
    text: Option<String>,
    mode: Option<String>,
    delay_ms: Option<u64>,
    expiring_days: Option<u32>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawMxBehaviour {
    Good,
    NoStarttls,
    CertExpired,
    CertExpiring,
    CertWrongName,
    CertSelfSigned,
    CertUntrusted,
    Tls10Only,
    TlsLegacyToo,
    HandshakeFail,
    Unreachable,
    NoAddress,
    StallConnect,
    StallAfterConnect,
    StallAfterBanner,
    StallAfterEhlo,
    StallAtQuit,
    StallHandshake,
    TrickleBanner,
    EscapeGreeting,
    CertEscapeName,
    DelayedBanner,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMxHost {
    name: String,
    behaviour: RawMxBehaviour,
    tlsa: Option<RawTxt>,
    expiring_days: Option<u32>,
    banner_delay_ms: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::from_toml_str(s)
    }
}

impl Scenario {
    /// Parses and validates a scenario file's text.
    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(text)?;
        validate(raw)
    }

    /// The domain named `name`, if the scenario has it.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }
}

fn validate(raw: RawScenario) -> Result<Scenario, ScenarioError> {
    let plain_dns = match raw.lab.as_ref().and_then(|lab| lab.dns.as_deref()) {
        None | Some("dnssec") => false,
        Some("plain") => true,
        Some(other) => {
            return Err(ScenarioError::BadKeyword {
                field: "lab.dns".into(),
                value: other.to_owned(),
                expected: "\"dnssec\" or \"plain\"",
            });
        }
    };
    let address_pool = match raw.lab.and_then(|lab| lab.address_pool) {
        Some(0) => {
            return Err(ScenarioError::OutOfRange {
                field: "lab.address_pool".into(),
                reason: "must be at least 1",
            });
        }
        other => other,
    };

    let mut mx_hosts = BTreeMap::new();
    for (i, host) in raw.mx_host.into_iter().enumerate() {
        let field = format!("mx_host[{i}]");
        let host = validate_mx_host(host, &field)?;
        if mx_hosts.contains_key(&host.name) {
            return Err(ScenarioError::DuplicateHost {
                field: format!("{field}.name"),
                name: host.name,
            });
        }
        mx_hosts.insert(host.name.clone(), host);
    }

    let mut domains: Vec<Domain> = Vec::new();
    let mut names = BTreeSet::new();
    for (i, raw_domain) in raw.domain.into_iter().enumerate() {
        let field = format!("domain[{i}]");
        let domain = validate_domain(raw_domain, &field)?;
        if !names.insert(domain.name.clone()) {
            return Err(ScenarioError::DuplicateDomain {
                field: format!("{field}.name"),
                name: domain.name,
            });
        }
        for mx in &domain.mx {
            // Undeclared MX hosts are good ones: most scenarios only care about a few faults.
            mx_hosts.entry(mx.host.clone()).or_insert_with(|| MxHost {
                name: mx.host.clone(),
                behaviour: MxBehaviour::Good,
                tlsa: TlsaSpec::None,
            });
        }
        domains.push(domain);
    }
    Ok(Scenario {
        domains,
        mx_hosts,
        address_pool,
        plain_dns,
    })
}

fn validate_domain(raw: RawDomain, field: &str) -> Result<Domain, ScenarioError> {
    let name = lab_name(&raw.name, &format!("{field}.name"), false)?;
    let mut mx = Vec::with_capacity(raw.mx.len());
    for (j, record) in raw.mx.into_iter().enumerate() {
        mx.push(MxRecord {
            host: lab_name(&record.host, &format!("{field}.mx[{j}].host"), false)?,
            preference: record.preference,
        });
    }
    let mx_names: Vec<String> = mx.iter().map(|m| m.host.clone()).collect();

    let policy = match raw.policy {
        None => None,
        Some(p) => Some(validate_policy(p, &mx_names, &format!("{field}.policy"))?),
    };

    let sts_txt = match raw.sts_txt {
        None => Vec::new(),
        Some(RawTxt::Records(records)) => records,
        Some(RawTxt::Keyword(word)) if word == "good" => {
            // Without a policy host the id still has to be something stable.
            let basis = policy.as_ref().map_or(name.as_str(), |p| p.text.as_str());
            vec![generated_sts_txt(basis)]
        }
        Some(RawTxt::Keyword(word)) => {
            return Err(ScenarioError::BadKeyword {
                field: format!("{field}.sts_txt"),
                value: word,
                expected: "\"good\" or a list of TXT strings",
            });
        }
    };
    let tlsrpt_txt = match raw.tlsrpt_txt {
        None => Vec::new(),
        Some(RawTxt::Records(records)) => records,
        Some(RawTxt::Keyword(word)) if word == "good" => vec![generated_tlsrpt_txt(&name)],
        Some(RawTxt::Keyword(word)) => {
            return Err(ScenarioError::BadKeyword {
                field: format!("{field}.tlsrpt_txt"),
                value: word,
                expected: "\"good\" or a list of TXT strings",
            });
        }
    };

    let mut cnames = Vec::with_capacity(raw.cname.len());
    for (j, cname) in raw.cname.into_iter().enumerate() {
        let owner_field = format!("{field}.cname[{j}].name");
        let owner = lab_name(&cname.name, &owner_field, true)?;
        if !in_zone(&owner, &name) {
            return Err(ScenarioError::BadName {
                field: owner_field,
                name: owner,
                reason: "a CNAME's owner must lie inside its domain",
            });
        }
        let target = lab_name(&cname.target, &format!("{field}.cname[{j}].target"), true)?;
        let sts_name = format!("_mta-sts.{name}");
        let tlsrpt_name = format!("_smtp._tls.{name}");
        let clashes = owner == name
            || (owner == sts_name && !sts_txt.is_empty())
            || (owner == tlsrpt_name && !tlsrpt_txt.is_empty())
            || (policy.is_some() && owner == format!("mta-sts.{name}"))
            || cnames.iter().any(|c: &Cname| c.name == owner);
        if clashes {
            return Err(ScenarioError::CnameConflict {
                field: owner_field,
                name: owner,
            });
        }
        cnames.push(Cname {
            name: owner,
            target,
        });
    }

    let mut delegations = Vec::with_capacity(raw.delegation.len());
    for (j, d) in raw.delegation.into_iter().enumerate() {
        let zone_field = format!("{field}.delegation[{j}].zone");
        let zone = lab_name(&d.zone, &zone_field, false)?;
        if zone == name || !in_zone(&zone, &name) {
            return Err(ScenarioError::BadName {
                field: zone_field,
                name: zone,
                reason: "a delegated zone must lie below its domain",
            });
        }
        if cnames.iter().any(|c| c.name == zone) {
            return Err(ScenarioError::CnameConflict {
                field: zone_field,
                name: zone,
            });
        }
        let ns_field = format!("{field}.delegation[{j}].ns");
        let ns = lab_name(&d.ns, &ns_field, false)?;
        if d.glue.is_empty() && in_zone(&ns, &zone) {
            return Err(ScenarioError::OutOfRange {
                field: format!("{field}.delegation[{j}].glue"),
                reason: "a name server inside the zone it serves needs glue addresses",
            });
        }
        delegations.push(Delegation {
            zone,
            ns,
            glue: d.glue,
        });
    }

    let mut addresses = Vec::with_capacity(raw.address.len());
    for (j, a) in raw.address.into_iter().enumerate() {
        let owner_field = format!("{field}.address[{j}].name");
        let owner = lab_name(&a.name, &owner_field, false)?;
        if !in_zone(&owner, &name) {
            return Err(ScenarioError::BadName {
                field: owner_field,
                name: owner,
                reason: "an address record's owner must lie inside its domain",
            });
        }
        // The lab gives its own hosts their addresses; a name it serves itself, or one with
        // a CNAME (RFC 1034 §3.6.2), cannot have others.
        let clashes = (policy.is_some() && owner == format!("mta-sts.{name}"))
            || mx_names.contains(&owner)
            || cnames.iter().any(|c| c.name == owner)
            || addresses.iter().any(|r: &AddressRecord| r.name == owner);
        if clashes {
            return Err(ScenarioError::CnameConflict {
                field: owner_field,
                name: owner,
            });
        }
        if a.addrs.is_empty() {
            return Err(ScenarioError::OutOfRange {
                field: format!("{field}.address[{j}].addrs"),
                reason: "at least one address",
            });
        }
        addresses.push(AddressRecord {
            name: owner,
            addrs: a.addrs,
        });
    }

    let dnssec = match raw.dnssec {
        None | Some(RawDnssec::Flag(false)) => Dnssec::Off,
        Some(RawDnssec::Flag(true)) => Dnssec::Signed,
        Some(RawDnssec::Keyword(word)) if word == "bogus" => Dnssec::Bogus,
        Some(RawDnssec::Keyword(word)) if word == "expired" => Dnssec::Expired,
        Some(RawDnssec::Keyword(word)) => {
            return Err(ScenarioError::BadKeyword {
                field: format!("{field}.dnssec"),
                value: word,
                expected: "true, false, \"bogus\" or \"expired\"",
            });
        }
    };

    Ok(Domain {
        name,
        mx,
        sts_txt,
        tlsrpt_txt,
        cnames,
        delegations,
        addresses,
        policy,
        dnssec,
    })
}

fn validate_policy(
    raw: RawPolicy,
    mx_names: &[String],
    field: &str,
) -> Result<PolicyHost, ScenarioError> {
    let expiring_days = raw.expiring_days.unwrap_or(DEFAULT_EXPIRING_DAYS);
    if expiring_days == 0 {
        return Err(ScenarioError::OutOfRange {
            field: format!("{field}.expiring_days"),
            reason: "must be at least 1",
        });
    }
    let behaviour = match raw.behaviour {
        RawPolicyBehaviour::Good => PolicyBehaviour::Good,
        RawPolicyBehaviour::Redirect => PolicyBehaviour::Redirect,
        RawPolicyBehaviour::NotFound => PolicyBehaviour::NotFound,
        RawPolicyBehaviour::ServerError => PolicyBehaviour::ServerError,
        RawPolicyBehaviour::WrongContentType => PolicyBehaviour::WrongContentType,
        RawPolicyBehaviour::Oversize => PolicyBehaviour::Oversize,
        RawPolicyBehaviour::Slow => PolicyBehaviour::Slow {
            delay: raw
                .delay_ms
                .map_or(DEFAULT_SLOW_DELAY, Duration::from_millis),
        },
        RawPolicyBehaviour::CertExpired => PolicyBehaviour::CertExpired,
        RawPolicyBehaviour::CertExpiring => PolicyBehaviour::CertExpiring {
            days: expiring_days,
        },
        RawPolicyBehaviour::CertWrongName => PolicyBehaviour::CertWrongName,
        RawPolicyBehaviour::CertSelfSigned => PolicyBehaviour::CertSelfSigned,
        RawPolicyBehaviour::CertUntrusted => PolicyBehaviour::CertUntrusted,
        RawPolicyBehaviour::NoAddress => PolicyBehaviour::NoAddress,
        RawPolicyBehaviour::Unreachable => PolicyBehaviour::Unreachable,
    };
    if raw.delay_ms.is_some() && !matches!(behaviour, PolicyBehaviour::Slow { .. }) {
        return Err(ScenarioError::OutOfRange {
            field: format!("{field}.delay_ms"),
            reason: "only a \"slow\" policy host has a delay",
        });
    }
    let text = match (raw.text, raw.mode) {
        (Some(_), Some(_)) => {
            return Err(ScenarioError::OutOfRange {
                field: format!("{field}.mode"),
                reason: "give either text or mode, not both",
            });
        }
        (Some(text), None) => text,
        (None, mode) => {
            let mode = mode.unwrap_or_else(|| "enforce".to_owned());
            if !matches!(mode.as_str(), "enforce" | "testing" | "none") {
                return Err(ScenarioError::BadKeyword {
                    field: format!("{field}.mode"),
                    value: mode,
                    expected: "enforce, testing or none",
                });
            }
            generated_policy(&mode, mx_names)
        }
    };
    Ok(PolicyHost { behaviour, text })
}

fn validate_mx_host(raw: RawMxHost, field: &str) -> Result<MxHost, ScenarioError> {
    let name = lab_name(&raw.name, &format!("{field}.name"), false)?;
    let days = raw.expiring_days.unwrap_or(DEFAULT_EXPIRING_DAYS);
    if days == 0 {
        return Err(ScenarioError::OutOfRange {
            field: format!("{field}.expiring_days"),
            reason: "must be at least 1",
        });
    }
    let behaviour = match raw.behaviour {
        RawMxBehaviour::Good => MxBehaviour::Good,
        RawMxBehaviour::NoStarttls => MxBehaviour::NoStarttls,
        RawMxBehaviour::CertExpired => MxBehaviour::CertExpired,
        RawMxBehaviour::CertExpiring => MxBehaviour::CertExpiring { days },
        RawMxBehaviour::CertWrongName => MxBehaviour::CertWrongName,
        RawMxBehaviour::CertSelfSigned => MxBehaviour::CertSelfSigned,
        RawMxBehaviour::CertUntrusted => MxBehaviour::CertUntrusted,
        RawMxBehaviour::Tls10Only => MxBehaviour::Tls10Only,
        RawMxBehaviour::TlsLegacyToo => MxBehaviour::TlsLegacyToo,
        RawMxBehaviour::HandshakeFail => MxBehaviour::HandshakeFail,
        RawMxBehaviour::Unreachable => MxBehaviour::Unreachable,
        RawMxBehaviour::NoAddress => MxBehaviour::NoAddress,
        RawMxBehaviour::StallConnect => MxBehaviour::Stall(Stall::Connect),
        RawMxBehaviour::StallAfterConnect => MxBehaviour::Stall(Stall::AfterConnect),
        RawMxBehaviour::StallAfterBanner => MxBehaviour::Stall(Stall::AfterBanner),
        RawMxBehaviour::StallAfterEhlo => MxBehaviour::Stall(Stall::AfterEhlo),
        RawMxBehaviour::StallAtQuit => MxBehaviour::Stall(Stall::AtQuit),
        RawMxBehaviour::StallHandshake => MxBehaviour::Stall(Stall::InHandshake),
        RawMxBehaviour::TrickleBanner => MxBehaviour::Stall(Stall::TrickleBanner),
        RawMxBehaviour::EscapeGreeting => MxBehaviour::EscapeGreeting,
        RawMxBehaviour::CertEscapeName => MxBehaviour::CertEscapeName,
        RawMxBehaviour::DelayedBanner => MxBehaviour::DelayedBanner {
            delay: raw
                .banner_delay_ms
                .map_or(super::DEFAULT_BANNER_DELAY, Duration::from_millis),
        },
    };
    let tlsa = match raw.tlsa {
        None => TlsaSpec::None,
        Some(RawTxt::Keyword(word)) => match word.as_str() {
            "auto" => TlsaSpec::Auto,
            "auto-pkix-ee" => TlsaSpec::AutoPkixEe,
            "wrong" => TlsaSpec::Wrong,
            "none" => TlsaSpec::None,
            _ => {
                return Err(ScenarioError::BadKeyword {
                    field: format!("{field}.tlsa"),
                    value: word,
                    expected: "\"auto\", \"auto-pkix-ee\", \"wrong\", \"none\" or a list of \"u s m hex\" records",
                });
            }
        },
        Some(RawTxt::Records(records)) => {
            let mut parsed = Vec::with_capacity(records.len());
            for (k, text) in records.into_iter().enumerate() {
                match text.parse::<TlsaRecord>() {
                    Ok(record) => parsed.push(record),
                    Err(reason) => {
                        return Err(ScenarioError::BadTlsa {
                            field: format!("{field}.tlsa[{k}]"),
                            value: text,
                            reason,
                        });
                    }
                }
            }
            TlsaSpec::Explicit(parsed)
        }
    };
    Ok(MxHost {
        name,
        behaviour,
        tlsa,
    })
}

/// Normalises and checks a lab name: lowercase, no trailing dot, under `.test`, RFC 1035
/// lengths; letters, digits and hyphens, plus `_` where `underscore` allows (owner names such
/// as `_mta-sts.x.test`).
fn lab_name(raw: &str, field: &str, underscore: bool) -> Result<String, ScenarioError> {
    let name = raw.trim_end_matches('.').to_ascii_lowercase();
    let bad = |reason| ScenarioError::BadName {
        field: field.to_owned(),
        name: raw.to_owned(),
        reason,
    };
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 253 characters"));
    }
    if !in_zone(&name, LAB_TLD) || name == LAB_TLD {
        return Err(bad("lab names must end in .test"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(bad("a label is longer than 63 characters"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_');
        if !label.chars().all(allowed) {
            return Err(bad("only letters, digits and hyphens are allowed"));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn good_keywords_generate_rfc_records() {
        let scenario: Scenario = r#"
            [[domain]]
            name = "Perfect.TEST."
            mx = [{ host = "mx1.perfect.test", preference = 10 }, { host = "mx2.perfect.test" }]
            sts_txt = "good"
            tlsrpt_txt = "good"
            policy = { behaviour = "good" }
        "#
        .parse()
        .unwrap();
        let domain = scenario.domain("perfect.test").unwrap();
        let policy = domain.policy.as_ref().unwrap();
        assert_eq!(
            policy.text,
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.perfect.test\r\nmx: mx2.perfect.test\r\nmax_age: 604800\r\n"
        );
        assert_eq!(domain.sts_txt.len(), 1);
        assert!(domain.sts_txt[0].starts_with("v=STSv1; id="));
        assert_eq!(
            domain.tlsrpt_txt,
            vec!["v=TLSRPTv1; rua=mailto:tlsrpt@perfect.test".to_owned()]
        );
        assert_eq!(domain.mx[1].preference, 10);
        assert_eq!(
            scenario.mx_hosts["mx2.perfect.test"].behaviour,
            MxBehaviour::Good
        );
    }

    #[test]
    fn rfc8461_3_1_generated_id_is_1_to_32_alphanumerics_and_follows_the_policy() {
        let a = generated_policy_id("version: STSv1\r\n");
        let b = generated_policy_id("version: STSv1\r\nmode: none\r\n");
        assert_ne!(a, b);
        assert!((1..=32).contains(&a.len()));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn behaviours_and_tlsa_parse() {
        let scenario: Scenario = r#"
            [[domain]]
            name = "slow.test"
            policy = { behaviour = "slow", delay_ms = 1500 }
            [[mx_host]]
            name = "mx.slow.test"
            behaviour = "cert-expiring"
            expiring_days = 3
            tlsa = ["3 1 1 00ff", "2 0 1 ABCD"]
        "#
        .parse()
        .unwrap();
        assert_eq!(
            scenario.domains[0].policy.as_ref().unwrap().behaviour,
            PolicyBehaviour::Slow {
                delay: Duration::from_millis(1500)
            }
        );
        let host = &scenario.mx_hosts["mx.slow.test"];
        assert_eq!(host.behaviour, MxBehaviour::CertExpiring { days: 3 });
        assert_eq!(
            host.tlsa,
            TlsaSpec::Explicit(vec![
                TlsaRecord {
                    usage: 3,
                    selector: 1,
                    matching: 1,
                    data: vec![0, 0xff]
                },
                TlsaRecord {
                    usage: 2,
                    selector: 0,
                    matching: 1,
                    data: vec![0xab, 0xcd]
                },
            ])
        );
    }

    #[test]
    fn address_records_parse_and_conflicts_are_refused() {
        let s: Scenario = "[[domain]]\nname = \"hosted.test\"\naddress = [{ name = \"MTA-STS.hosted.test.\", addrs = [\"127.0.0.2\", \"127.0.0.3\"] }]\n"
            .parse()
            .unwrap();
        assert_eq!(
            s.domains[0].addresses,
            vec![AddressRecord {
                name: "mta-sts.hosted.test".into(),
                addrs: vec![
                    std::net::Ipv4Addr::new(127, 0, 0, 2),
                    std::net::Ipv4Addr::new(127, 0, 0, 3)
                ],
            }]
        );
        // (scenario, field named in the error)
        let bad = [
            (
                "[[domain]]\nname = \"a.test\"\naddress = [{ name = \"x.b.test\", addrs = [\"127.0.0.2\"] }]\n",
                "domain[0].address[0].name",
            ),
            (
                "[[domain]]\nname = \"a.test\"\npolicy = { behaviour = \"good\" }\naddress = [{ name = \"mta-sts.a.test\", addrs = [\"127.0.0.2\"] }]\n",
                "domain[0].address[0].name",
            ),
            (
                "[[domain]]\nname = \"a.test\"\nmx = [{ host = \"mx.a.test\" }]\naddress = [{ name = \"mx.a.test\", addrs = [\"127.0.0.2\"] }]\n",
                "domain[0].address[0].name",
            ),
            (
                "[[domain]]\nname = \"a.test\"\naddress = [{ name = \"w.a.test\", addrs = [] }]\n",
                "domain[0].address[0].addrs",
            ),
        ];
        for (text, field) in bad {
            let err = text.parse::<Scenario>().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn dnssec_values_and_plain_dns_parse() {
        // (dnssec value, expected, why)
        let cases = [
            ("false", Dnssec::Off, "unsigned"),
            ("true", Dnssec::Signed, "signed, anchor written"),
            ("\"bogus\"", Dnssec::Bogus, "signed, another key announced"),
            ("\"expired\"", Dnssec::Expired, "signed, signatures expired"),
        ];
        for (value, want, why) in cases {
            let text = format!("[[domain]]\nname = \"a.test\"\ndnssec = {value}\n");
            let s: Scenario = text.parse().unwrap();
            assert_eq!(s.domains[0].dnssec, want, "{why}");
            assert!(!s.plain_dns, "the DNS server supports DNSSEC unless told");
        }
        let plain: Scenario = "[lab]\ndns = \"plain\"\n".parse().unwrap();
        assert!(plain.plain_dns);
        let signed: Scenario = "[lab]\ndns = \"dnssec\"\n".parse().unwrap();
        assert!(!signed.plain_dns);
    }

    #[test]
    fn rfc1034_4_2_1_a_delegation_with_glue_parses() {
        let s: Scenario = "[[domain]]\nname = \"provider.test\"\ndelegation = [{ zone = \"STS.provider.test.\", ns = \"ns1.sts.provider.test\", glue = [\"127.200.0.53\"] }, { zone = \"x.provider.test\", ns = \"ns.elsewhere.test\" }]\n"
            .parse()
            .unwrap();
        assert_eq!(
            s.domains[0].delegations,
            vec![
                Delegation {
                    zone: "sts.provider.test".into(),
                    ns: "ns1.sts.provider.test".into(),
                    glue: vec![std::net::Ipv4Addr::new(127, 200, 0, 53)],
                },
                Delegation {
                    zone: "x.provider.test".into(),
                    ns: "ns.elsewhere.test".into(),
                    glue: Vec::new(),
                },
            ]
        );
    }

    #[test]
    fn bad_scenarios_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[[domain]]\nname = \"a.test\"\nbogus = 1\n",
                "bogus",
                "unknown keys are rejected",
            ),
            (
                "[[domain]]\nname = \"a.example\"\n",
                "domain[0].name",
                "names outside .test would leak into real DNS",
            ),
            (
                "[[domain]]\nname = \"a.test\"\nsts_txt = \"great\"\n",
                "domain[0].sts_txt",
                "the only keyword is good",
            ),
            (
                "[[domain]]\nname = \"a.test\"\n[[domain]]\nname = \"A.test\"\n",
                "domain[1].name",
                "duplicate domain, case-insensitive",
            ),
            (
                "[[domain]]\nname = \"a.test\"\npolicy = { behaviour = \"teapot\" }\n",
                "teapot",
                "unknown behaviour",
            ),
            (
                "[[mx_host]]\nname = \"mx.a.test\"\nbehaviour = \"good\"\ntlsa = [\"3 1 x 00\"]\n",
                "mx_host[0].tlsa[0]",
                "TLSA matching type not a number",
            ),
            (
                "[[mx_host]]\nname = \"mx.a.test\"\nbehaviour = \"good\"\ntlsa = [\"3 1 1 0g\"]\n",
                "mx_host[0].tlsa[0]",
                "TLSA data not hex",
            ),
            (
                "[[domain]]\nname = \"a.test\"\nsts_txt = \"good\"\ncname = [{ name = \"_mta-sts.a.test\", target = \"b.test\" }]\n",
                "domain[0].cname[0].name",
                "CNAME beside TXT at the same name",
            ),
            (
                "[[domain]]\nname = \"a.test\"\ncname = [{ name = \"x.b.test\", target = \"b.test\" }]\n",
                "domain[0].cname[0].name",
                "CNAME owner outside the domain's zone",
            ),
            (
                "[[domain]]\nname = \"a.test\"\nmx = [{ host = \"mx..a.test\" }]\n",
                "domain[0].mx[0].host",
                "empty label",
            ),
            (
                "[[domain]]\nname = \"a.test\"\ndelegation = [{ zone = \"b.test\", ns = \"ns.b.test\", glue = [\"127.1.0.1\"] }]\n",
                "domain[0].delegation[0].zone",
                "a delegation outside the domain",
            ),
            (
                "[[domain]]\nname = \"a.test\"\ndelegation = [{ zone = \"b.a.test\", ns = \"ns.b.a.test\" }]\n",
                "domain[0].delegation[0].glue",
                "a name server inside its zone without glue",
            ),
            (
                "[[domain]]\nname = \"a.test\"\ndnssec = \"maybe\"\n",
                "domain[0].dnssec",
                "dnssec keyword other than bogus",
            ),
            (
                "[lab]\ndns = \"bind\"\n",
                "lab.dns",
                "dns is \"dnssec\" or \"plain\"",
            ),
            (
                "[lab]\naddress_pool = 0\n",
                "lab.address_pool",
                "a pool of no addresses",
            ),
            (
                "[[domain]]\nname = \"a.test\"\npolicy = { behaviour = \"good\", delay_ms = 5 }\n",
                "domain[0].policy.delay_ms",
                "delay only for slow hosts",
            ),
            (
                "[[mx_host]]\nname = \"mx.a.test\"\nbehaviour = \"good\"\n[[mx_host]]\nname = \"MX.a.test\"\nbehaviour = \"good\"\n",
                "mx_host[1].name",
                "duplicate MX host",
            ),
        ];
        for (text, field, reason) in cases {
            let err = Scenario::from_toml_str(text).expect_err(reason);
            let message = err.to_string();
            assert!(
                message.contains(field),
                "{reason}: {message:?} should name {field:?}"
            );
        }
    }
}
