//! From a scenario to a lab layout: which loopback address each host gets, which hosts share
//! a listener, and the DNS zones that publish it all (RFC 8461 §3 and §4 names:
//! `_mta-sts.<domain>`, `mta-sts.<domain>`, the MX hosts; RFC 8460 §3 `_smtp._tls.<domain>`;
//! RFC 7672 §2.2 `_25._tcp.<mx>` TLSA).
//!
//! Pure: no sockets, no clock. Every lab host gets its own 127.0.0.0/8 address, except that a
//! scenario with an `address_pool` spreads its good hosts over a few shared addresses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::ca::CertVariant;
use crate::dns::{LabRecord, NS_NAME, Zone};
use crate::https::PolicySite;
use crate::scenario::{
    Dnssec, LAB_TLD, MxBehaviour, PolicyBehaviour, Scenario, TlsaRecord, TlsaSpec, in_zone,
};

/// The lab ran out of loopback addresses in its /16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the scenario needs more than {max} host addresses")]
pub struct AddressSpaceExhausted {
    /// How many addresses one lab can hand out.
    pub max: u32,
}

/// Hands out 127.<octet>.x.y addresses, never .0 or .255 in the last octet.
#[derive(Debug)]
pub(crate) struct Addresses {
    second_octet: u8,
    next: u32,
}

/// Usable last octets per third octet (1..=254).
const PER_BLOCK: u32 = 254;
/// Third octets available.
const BLOCKS: u32 = 256;

impl Addresses {
    pub(crate) fn new(second_octet: u8) -> Self {
        Addresses {
            second_octet,
            next: 0,
        }
    }

    pub(crate) fn allocate(&mut self) -> Result<Ipv4Addr, AddressSpaceExhausted> {
        let n = self.next;
        let max = PER_BLOCK * BLOCKS;
        if n >= max {
            return Err(AddressSpaceExhausted { max });
        }
        self.next += 1;
        let third = u8::try_from(n / PER_BLOCK).map_err(|_| AddressSpaceExhausted { max })?;
        let fourth = u8::try_from(n % PER_BLOCK + 1).map_err(|_| AddressSpaceExhausted { max })?;
        Ok(Ipv4Addr::new(127, self.second_octet, third, fourth))
    }
}

/// One SMTP listener address and the MX hosts behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SmtpPlan {
    pub(crate) addr: Ipv4Addr,
    pub(crate) hosts: Vec<String>,
    pub(crate) behaviour: MxBehaviour,
}

impl SmtpPlan {
    /// The certificate this site presents.
    pub(crate) fn cert_variant(&self) -> CertVariant {
        match self.behaviour {
            MxBehaviour::CertExpired => CertVariant::Expired,
            MxBehaviour::CertExpiring { days } => CertVariant::Expiring { days },
            MxBehaviour::CertWrongName => CertVariant::WrongName,
            MxBehaviour::CertSelfSigned => CertVariant::SelfSigned,
            MxBehaviour::CertUntrusted => CertVariant::Untrusted,
            MxBehaviour::CertEscapeName => CertVariant::EscapeName,
            _ => CertVariant::Good,
        }
    }
}

/// One HTTPS listener address and the policy hosts behind it.
#[derive(Debug, Clone)]
pub(crate) struct HttpsPlan {
    pub(crate) addr: Ipv4Addr,
    pub(crate) sites: Vec<(String, PolicySite)>,
    pub(crate) variant: CertVariant,
}

/// Where everything lives.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) smtp: Vec<SmtpPlan>,
    pub(crate) https: Vec<HttpsPlan>,
    /// Addresses that are published but where nothing listens.
    pub(crate) dead: Vec<Ipv4Addr>,
    /// Every host name that has an A record, with its address.
    pub(crate) addresses: BTreeMap<String, Ipv4Addr>,
}

fn policy_variant(behaviour: PolicyBehaviour) -> CertVariant {
    match behaviour {
        PolicyBehaviour::CertExpired => CertVariant::Expired,
        PolicyBehaviour::CertExpiring { days } => CertVariant::Expiring { days },
        PolicyBehaviour::CertWrongName => CertVariant::WrongName,
        PolicyBehaviour::CertSelfSigned => CertVariant::SelfSigned,
        PolicyBehaviour::CertUntrusted => CertVariant::Untrusted,
        _ => CertVariant::Good,
    }
}

/// Lays the scenario out on addresses from `addresses`.
pub(crate) fn plan(
    scenario: &Scenario,
    addresses: &mut Addresses,
) -> Result<Plan, AddressSpaceExhausted> {
    let pool_size = scenario.address_pool.unwrap_or(0);
    let mut plan = Plan {
        smtp: Vec::new(),
        https: Vec::new(),
        dead: Vec::new(),
        addresses: BTreeMap::new(),
    };

    let mut smtp_pool: Vec<usize> = Vec::new();
    let mut next_in_pool = 0usize;
    for host in scenario.mx_hosts.values() {
        match host.behaviour {
            MxBehaviour::NoAddress => continue,
            MxBehaviour::Unreachable => {
                let addr = addresses.allocate()?;
                plan.dead.push(addr);
                plan.addresses.insert(host.name.clone(), addr);
                continue;
            }
            MxBehaviour::Good if pool_size > 0 => {
                if smtp_pool.len() < pool_size {
                    smtp_pool.push(plan.smtp.len());
                    plan.smtp.push(SmtpPlan {
                        addr: addresses.allocate()?,
                        hosts: Vec::new(),
                        behaviour: MxBehaviour::Good,
                    });
                }
                let slot = smtp_pool
                    .get(next_in_pool % smtp_pool.len().max(1))
                    .copied();
                next_in_pool += 1;
                if let Some(site) = slot.and_then(|i| plan.smtp.get_mut(i)) {
                    site.hosts.push(host.name.clone());
                    plan.addresses.insert(host.name.clone(), site.addr);
                }
            }
            behaviour => {
                let addr = addresses.allocate()?;
                plan.smtp.push(SmtpPlan {
                    addr,
                    hosts: vec![host.name.clone()],
                    behaviour,
                });
                plan.addresses.insert(host.name.clone(), addr);
            }
        }
    }

    let mut https_pool: Vec<usize> = Vec::new();
    let mut next_in_pool = 0usize;
    for domain in &scenario.domains {
        let Some(policy) = &domain.policy else {
            continue;
        };
        let name = domain.policy_host_name();
        let site = PolicySite {
            behaviour: policy.behaviour,
            text: policy.text.clone(),
        };
        match policy.behaviour {
            PolicyBehaviour::NoAddress => {}
            PolicyBehaviour::Unreachable => {
                let addr = addresses.allocate()?;
                plan.dead.push(addr);
                plan.addresses.insert(name, addr);
            }
            PolicyBehaviour::Good if pool_size > 0 => {
                if https_pool.len() < pool_size {
                    https_pool.push(plan.https.len());
                    plan.https.push(HttpsPlan {
                        addr: addresses.allocate()?,
                        sites: Vec::new(),
                        variant: CertVariant::Good,
                    });
                }
                let slot = https_pool
                    .get(next_in_pool % https_pool.len().max(1))
                    .copied();
                next_in_pool += 1;
                if let Some(listener) = slot.and_then(|i| plan.https.get_mut(i)) {
                    plan.addresses.insert(name.clone(), listener.addr);
                    listener.sites.push((name, site));
                }
            }
            behaviour => {
                let addr = addresses.allocate()?;
                plan.addresses.insert(name.clone(), addr);
                plan.https.push(HttpsPlan {
                    addr,
                    sites: vec![(name, site)],
                    variant: policy_variant(behaviour),
                });
            }
        }
    }
    Ok(plan)
}

/// The TLSA data a `wrong` host publishes: the digest of a key no lab host has.
fn wrong_tlsa() -> TlsaRecord {
    TlsaRecord {
        usage: 3,
        selector: 1,
        matching: 1,
        data: Sha256::digest(b"stsward-lab: no certificate has this key").to_vec(),
    }
}

/// The zones that publish `plan`. `leaf_spki` maps each MX host to the SHA-256 of the
/// SubjectPublicKeyInfo it presents (for `auto` TLSA records).
pub(crate) fn zones(
    scenario: &Scenario,
    plan: &Plan,
    dns_addr: Option<Ipv4Addr>,
    leaf_spki: &BTreeMap<String, [u8; 32]>,
) -> Vec<Zone> {
    let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
    zones.insert(
        LAB_TLD.to_owned(),
        Zone {
            origin: LAB_TLD.to_owned(),
            records: Vec::new(),
            dnssec: Dnssec::Off,
        },
    );
    for domain in &scenario.domains {
        zones.insert(
            domain.name.clone(),
            Zone {
                origin: domain.name.clone(),
                records: Vec::new(),
                dnssec: domain.dnssec,
            },
        );
    }
    let origins: std::collections::HashSet<String> = zones.keys().cloned().collect();
    // The closest enclosing zone: lab domains may nest (`a.test` and `x.a.test`). The name
    // itself, then each parent in turn (the first that is a zone is the longest), so that
    // a bulk lab of 100,000 zones is planned in linear time.
    let zone_of = |name: &str| -> String {
        let mut candidate = name;
        loop {
            if origins.contains(candidate) && in_zone(name, candidate) {
                return candidate.to_owned();
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return LAB_TLD.to_owned(),
            }
        }
    };
    let mut add = |record: LabRecord| {
        let origin = zone_of(record_owner(&record));
        if let Some(zone) = zones.get_mut(&origin) {
            zone.records.push(record);
        }
    };

    if let Some(addr) = dns_addr {
        add(LabRecord::A {
            name: NS_NAME.to_owned(),
            addr,
        });
    }
    for domain in &scenario.domains {
        for mx in &domain.mx {
            add(LabRecord::Mx {
                name: domain.name.clone(),
                preference: mx.preference,
                exchange: mx.host.clone(),
            });
        }
        for text in &domain.sts_txt {
            add(LabRecord::Txt {
                name: format!("_mta-sts.{}", domain.name),
                text: text.clone(),
            });
        }
        for text in &domain.tlsrpt_txt {
            add(LabRecord::Txt {
                name: format!("_smtp._tls.{}", domain.name),
                text: text.clone(),
            });
        }
        for cname in &domain.cnames {
            add(LabRecord::Cname {
                name: cname.name.clone(),
                target: cname.target.clone(),
            });
        }
        for record in &domain.addresses {
            for addr in &record.addrs {
                add(LabRecord::A {
                    name: record.name.clone(),
                    addr: *addr,
                });
            }
        }
        for delegation in &domain.delegations {
            add(LabRecord::Ns {
                name: delegation.zone.clone(),
                host: delegation.ns.clone(),
            });
            for addr in &delegation.glue {
                add(LabRecord::A {
                    name: delegation.ns.clone(),
                    addr: *addr,
                });
            }
        }
    }
    for (name, addr) in &plan.addresses {
        add(LabRecord::A {
            name: name.clone(),
            addr: *addr,
        });
    }
    for host in scenario.mx_hosts.values() {
        let records = match &host.tlsa {
            TlsaSpec::None => Vec::new(),
            TlsaSpec::Auto => leaf_spki
                .get(&host.name)
                .map(|digest| {
                    vec![TlsaRecord {
                        usage: 3,
                        selector: 1,
                        matching: 1,
                        data: digest.to_vec(),
                    }]
                })
                .unwrap_or_default(),
            TlsaSpec::AutoPkixEe => leaf_spki
                .get(&host.name)
                .map(|digest| {
                    vec![TlsaRecord {
                        usage: 1,
                        selector: 1,
                        matching: 1,
                        data: digest.to_vec(),
                    }]
                })
                .unwrap_or_default(),
            TlsaSpec::Wrong => vec![wrong_tlsa()],
            TlsaSpec::Explicit(records) => records.clone(),
        };
        for record in records {
            add(LabRecord::Tlsa {
                name: format!("_25._tcp.{}", host.name),
                record,
            });
        }
    }
    zones.into_values().collect()
}

fn record_owner(record: &LabRecord) -> &str {
    match record {
        LabRecord::A { name, .. }
        | LabRecord::Mx { name, .. }
        | LabRecord::Txt { name, .. }
        | LabRecord::Cname { name, .. }
        | LabRecord::Tlsa { name, .. }
        | LabRecord::Ns { name, .. } => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
        [[domain]]
        name = "a.test"
        mx = [{ host = "mx.a.test" }, { host = "mx.provider.test", preference = 20 }]
        sts_txt = "good"
        policy = { behaviour = "good" }
        [[domain]]
        name = "sub.a.test"
        mx = [{ host = "mx.dead.test" }, { host = "mx.ghost.test" }]
        policy = { behaviour = "unreachable" }
        [[mx_host]]
        name = "mx.dead.test"
        behaviour = "unreachable"
        [[mx_host]]
        name = "mx.ghost.test"
        behaviour = "no-address"
        [[mx_host]]
        name = "mx.a.test"
        behaviour = "good"
        tlsa = "auto"
    "#;

    #[test]
    fn addresses_skip_network_and_broadcast_octets() {
        let mut addresses = Addresses::new(99);
        let first: Vec<Ipv4Addr> = (0..256).map(|_| addresses.allocate().unwrap()).collect();
        assert_eq!(first[0], Ipv4Addr::new(127, 99, 0, 1));
        assert_eq!(first[253], Ipv4Addr::new(127, 99, 0, 254));
        assert_eq!(first[254], Ipv4Addr::new(127, 99, 1, 1));
    }

    #[test]
    fn each_host_gets_its_own_address_and_faults_shape_the_records() {
        let scenario: Scenario = SCENARIO.parse().unwrap();
        let plan = plan(&scenario, &mut Addresses::new(90)).unwrap();
        assert_eq!(plan.smtp.len(), 2, "mx.a.test and mx.provider.test listen");
        assert_eq!(
            plan.dead.len(),
            2,
            "mx.dead.test and mta-sts.sub.a.test are dead"
        );
        assert!(!plan.addresses.contains_key("mx.ghost.test"));
        let mut spki = BTreeMap::new();
        spki.insert("mx.a.test".to_owned(), [7u8; 32]);
        let zones = zones(&scenario, &plan, Some(Ipv4Addr::new(127, 90, 9, 9)), &spki);
        let origins: Vec<&str> = zones.iter().map(|z| z.origin.as_str()).collect();
        assert_eq!(origins, ["a.test", "sub.a.test", "test"]);
        let sub = &zones[1];
        assert!(
            sub.records
                .iter()
                .any(|r| matches!(r, LabRecord::A { name, .. } if name == "mta-sts.sub.a.test")),
            "an unreachable policy host still has its address, in the closest zone"
        );
        let test = &zones[2];
        assert!(
            !test
                .records
                .iter()
                .any(|r| matches!(r, LabRecord::Tlsa { .. }))
        );
        let a = &zones[0];
        assert!(a.records.iter().any(|r| matches!(r, LabRecord::Tlsa { name, record } if name == "_25._tcp.mx.a.test" && record.data == vec![7u8; 32])));
        assert!(
            test.records
                .iter()
                .any(|r| matches!(r, LabRecord::A { name, .. } if name == "mx.provider.test"))
        );
    }

    #[test]
    fn rfc1034_4_2_1_a_delegation_and_its_glue_sit_in_the_parent_zone() {
        let scenario: Scenario = "[[domain]]\nname = \"provider.test\"\ndelegation = [{ zone = \"sts.provider.test\", ns = \"ns1.sts.provider.test\", glue = [\"127.200.0.53\"] }]\n"
            .parse()
            .unwrap();
        let plan = plan(&scenario, &mut Addresses::new(92)).unwrap();
        let zones = zones(&scenario, &plan, None, &BTreeMap::new());
        let provider = zones
            .iter()
            .find(|z| z.origin == "provider.test")
            .expect("the parent zone");
        assert!(provider.records.contains(&LabRecord::Ns {
            name: "sts.provider.test".into(),
            host: "ns1.sts.provider.test".into(),
        }));
        assert!(provider.records.contains(&LabRecord::A {
            name: "ns1.sts.provider.test".into(),
            addr: Ipv4Addr::new(127, 200, 0, 53),
        }));
    }

    #[test]
    fn address_pool_shares_good_hosts_only() {
        let mut text = String::from("[lab]\naddress_pool = 2\n");
        for i in 0..10 {
            text.push_str(&format!(
                "[[domain]]\nname = \"d{i}.test\"\nmx = [{{ host = \"mx{i}.p.test\" }}]\npolicy = {{ behaviour = \"good\" }}\n"
            ));
        }
        text.push_str(
            "[[domain]]\nname = \"bad.test\"\npolicy = { behaviour = \"cert-expired\" }\n",
        );
        let scenario: Scenario = text.parse().unwrap();
        let plan = plan(&scenario, &mut Addresses::new(91)).unwrap();
        assert_eq!(plan.smtp.len(), 2);
        assert_eq!(plan.smtp.iter().map(|s| s.hosts.len()).sum::<usize>(), 10);
        assert_eq!(
            plan.https.len(),
            3,
            "two pooled listeners and the faulty host"
        );
        assert_eq!(plan.https[2].variant, CertVariant::Expired);
    }
}
