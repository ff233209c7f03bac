//! Starting and stopping a lab: binds the sockets of a [`Plan`], issues the certificates,
//! and runs the DNS, SMTP and HTTPS servers on loopback (RFC 8461 §3.3 policy hosts,
//! RFC 3207 MX hosts, RFC 1035 authoritative DNS).
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so every lab host can have its
//! own address with no setup. The ports are shared by all hosts of a kind (one for SMTP, one
//! for HTTPS, one for DNS) and picked at random unless the options fix them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::ca::{CaError, CertVariant, LabCa};
use crate::dns::{DnsError, DnsServer, DnsServerOptions};
use crate::https::{HttpsError, PolicySites, SniCerts};
use crate::plan::{AddressSpaceExhausted, Addresses, plan, zones};
use crate::scenario::{
    Domain, MxBehaviour, MxRecord, PolicyBehaviour, PolicyHost, Scenario, generated_policy,
    generated_sts_txt, generated_tlsrpt_txt,
};
use crate::smtp::{ConnStats, LegacyTls, SmtpError, SmtpSite, SmtpTls, Stall};

/// The file, inside the lab directory, holding the DNSKEYs of the signed zones.
pub const TRUST_ANCHOR_FILE_NAME: &str = "trust-anchors.txt";

/// The file in the lab directory where the SMTP listeners' connection counts are kept
/// (rewritten while the lab runs): `max-concurrent-per-address N`, then one line per
/// address, `ADDR peak N total M`.
pub const SMTP_STATS_FILE_NAME: &str = "smtp-connections.txt";

/// Rewrites the SMTP connection counts whenever they change, a few times a second.
fn write_smtp_stats(path: PathBuf, stats: Vec<(Ipv4Addr, Arc<ConnStats>)>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let max = stats.iter().map(|(_, s)| s.peak()).max().unwrap_or(0);
            let mut text = format!("max-concurrent-per-address {max}\n");
            for (addr, s) in &stats {
                text.push_str(&format!("{addr} peak {} total {}\n", s.peak(), s.total()));
            }
            if text != last {
                if let Err(error) = tokio::fs::write(&path, &text).await {
                    tracing::debug!(%error, "writing the SMTP connection counts");
                }
                last = text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

/// How many random ports to try before giving up.
const PORT_TRIES: usize = 64;
/// The range random ports come from: unprivileged, and every bind is checked, so a port
/// some other program holds is simply skipped.
const PORT_RANGE: std::ops::RangeInclusive<u16> = 20_000..=60_999;
/// Second octets the lab picks its 127.x.0.0/16 from, so that labs started side by side (in
/// parallel tests) do not share addresses.
const SUBNET_RANGE: std::ops::RangeInclusive<u8> = 64..=191;
/// The most names one policy-host certificate carries (bulk labs with 100,000 domains
/// share a handful of addresses).
const CERT_NAMES_MAX: usize = 500;
/// How many addresses `generate_bulk` scenarios share among their good hosts.
const BULK_ADDRESS_POOL: usize = 4;
/// How many MX hosts the domains of a bulk scenario share.
const BULK_MX_HOSTS: usize = 8;

/// Starting a lab failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// The CA could not issue a certificate or write its file.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The DNS zones could not be built.
    #[error(transparent)]
    Dns(#[from] DnsError),
    /// An SMTP site could not be configured.
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// An HTTPS site could not be configured.
    #[error(transparent)]
    Https(#[from] HttpsError),
    /// Too many hosts.
    #[error(transparent)]
    Addresses(#[from] AddressSpaceExhausted),
    /// A fixed port could not be bound.
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// The address and port.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No random port was free on all the addresses that need it.
    #[error("no free {what} port found on {addresses} addresses after {tries} tries")]
    NoFreePort {
        /// Which server.
        what: &'static str,
        /// How many addresses needed it.
        addresses: usize,
        /// How many ports were tried.
        tries: usize,
    },
    /// A lab file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How to run a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Where the DNS server listens; default: the first address of the lab's subnet.
    pub dns_addr: Option<IpAddr>,
    /// DNS port; default: random free port.
    pub dns_port: Option<u16>,
    /// SMTP port of every MX host; default: random free port.
    pub smtp_port: Option<u16>,
    /// HTTPS port of every policy host; default: random free port.
    pub https_port: Option<u16>,
    /// Directory for the CA file and trust anchors (created if missing).
    pub dir: PathBuf,
    /// The time certificates are issued relative to (and `dnssec = "expired"` zones are
    /// signed before).
    pub now: OffsetDateTime,
    /// Run the DNS server without DNSSEC support, whatever the scenario says (see
    /// `[lab] dns = "plain"` in the scenario format): every zone unsigned, no RRSIG or
    /// DNSKEY, the DO bit ignored, no trust-anchor file.
    pub plain_dns: bool,
}

impl LabOptions {
    /// Random ports and addresses, files in `dir`, certificates relative to `now`.
    pub fn new(dir: impl Into<PathBuf>, now: OffsetDateTime) -> Self {
        LabOptions {
            dns_addr: None,
            dns_port: None,
            smtp_port: None,
            https_port: None,
            dir: dir.into(),
            now,
            plain_dns: false,
        }
    }
}

/// The lab entry point.
#[derive(Debug)]
pub struct Lab;

/// A running lab. Dropping it stops every server; [`RunningLab::shutdown`] also waits until
/// the ports are free again.
#[derive(Debug)]
pub struct RunningLab {
    dns: Option<DnsServer>,
    tasks: Vec<JoinHandle<()>>,
    resolver_addr: SocketAddr,
    ca: LabCa,
    ca_file: PathBuf,
    trust_anchor_file: Option<PathBuf>,
    smtp_port: u16,
    https_port: u16,
    domains: Vec<String>,
    addresses: BTreeMap<String, Ipv4Addr>,
    smtp_stats: Vec<(Ipv4Addr, Arc<ConnStats>)>,
}

fn random_u64(salt: u64) -> u64 {
    // A fresh RandomState is seeded from the OS once per process and then stepped, which is
    // all the lab needs to spread labs over ports and subnets.
    RandomState::new().hash_one(salt)
}

fn random_in<T>(range: &std::ops::RangeInclusive<T>, salt: u64) -> T
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    let (low, high) = ((*range.start()).into(), (*range.end()).into());
    let span = high.saturating_sub(low).saturating_add(1);
    T::try_from(low + random_u64(salt) % span).unwrap_or(*range.start())
}

impl Lab {
    /// Starts every server of `scenario` on loopback, in the current tokio runtime.
    pub async fn start(scenario: &Scenario, opts: &LabOptions) -> Result<RunningLab, LabError> {
        let subnet = match opts.dns_addr {
            Some(IpAddr::V4(v4)) if v4.is_loopback() && v4.octets()[1] != 0 => v4.octets()[1],
            _ => random_in(&SUBNET_RANGE, 1),
        };
        let mut addresses = Addresses::new(subnet);
        let dns_ip = match opts.dns_addr {
            Some(ip) => ip,
            None => IpAddr::V4(addresses.allocate()?),
        };
        let layout = plan(scenario, &mut addresses)?;

        let ca = LabCa::new(opts.now)?;
        let ca_file = ca.write_ca_file(&opts.dir)?;

        // Certificates first: TLSA `auto` records need the leaf keys.
        let mut leaf_spki = BTreeMap::new();
        let mut smtp_sites = Vec::with_capacity(layout.smtp.len());
        for site in &layout.smtp {
            let hostname = site.hosts.first().cloned().unwrap_or_default();
            let cert = ca.issue(&site.hosts, site.cert_variant())?;
            let digest = cert.spki_sha256()?;
            for host in &site.hosts {
                leaf_spki.insert(host.clone(), digest);
            }
            let tls = match site.behaviour {
                MxBehaviour::NoStarttls => SmtpTls::NotOffered,
                MxBehaviour::HandshakeFail => SmtpTls::Garbage,
                MxBehaviour::EscapeGreeting => {
                    SmtpTls::RejectGreeting(crate::smtp::ESCAPE_GREETING)
                }
                MxBehaviour::DelayedBanner { delay } => {
                    SmtpTls::DelayedBanner(delay, Box::new(SmtpTls::modern(&hostname, &cert)?))
                }
                MxBehaviour::Tls10Only => SmtpTls::legacy(&hostname, &cert, LegacyTls::Tls10Only)?,
                MxBehaviour::TlsLegacyToo => {
                    SmtpTls::legacy(&hostname, &cert, LegacyTls::Tls10AndModern)?
                }
                MxBehaviour::Stall(Stall::AtQuit) => SmtpTls::NotOffered,
                _ => SmtpTls::modern(&hostname, &cert)?,
            };
            let stall = match site.behaviour {
                MxBehaviour::Stall(stall) => Some(stall),
                _ => None,
            };
            smtp_sites.push((
                site.addr,
                Arc::new(SmtpSite {
                    hostname,
                    tls,
                    stall,
                }),
            ));
        }
        let mut https_sites = Vec::with_capacity(layout.https.len());
        for site in &layout.https {
            let names: Vec<String> = site.sites.iter().map(|(name, _)| name.clone()).collect();
            let first = names.first().cloned().unwrap_or_default();
            let certs = if site.variant == CertVariant::WrongName {
                SniCerts::new(&first, &ca.issue(&names, site.variant)?)?
            } else {
                // One certificate per chunk of names: a bulk lab puts thousands of policy
                // hosts on one address, and a certificate naming them all would exceed
                // what a TLS client parses.
                let mut chunks = names.chunks(CERT_NAMES_MAX);
                let head = chunks.next().unwrap_or_default();
                let cert = ca.issue(head, site.variant)?;
                let mut certs = SniCerts::new(&first, &cert)?;
                certs.add(head, &cert)?;
                for chunk in chunks {
                    certs.add(chunk, &ca.issue(chunk, site.variant)?)?;
                }
                certs
            };
            let sites: PolicySites = site.sites.iter().cloned().collect::<HashMap<_, _>>();
            https_sites.push((site.addr, Arc::new(certs), Arc::new(sites)));
        }

        let dns_v4 = match dns_ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        };
        let zone_list = zones(scenario, &layout, dns_v4, &leaf_spki);

        // Sockets: each kind shares one port across its addresses.
        let smtp_addrs: Vec<IpAddr> = smtp_sites.iter().map(|(a, _)| IpAddr::V4(*a)).collect();
        let https_addrs: Vec<IpAddr> = https_sites.iter().map(|(a, ..)| IpAddr::V4(*a)).collect();
        let dead: Vec<IpAddr> = layout.dead.iter().map(|a| IpAddr::V4(*a)).collect();
        let (smtp_port, smtp_listeners) =
            bind_all("SMTP", &smtp_addrs, &dead, opts.smtp_port, 2).await?;
        let (https_port, https_listeners) =
            bind_all("HTTPS", &https_addrs, &dead, opts.https_port, 3).await?;
        let (dns_port, udp, tcp) = bind_dns(dns_ip, opts.dns_port).await?;
        let resolver_addr = SocketAddr::new(dns_ip, dns_port);

        let dns = DnsServer::start(
            udp,
            tcp,
            &zone_list,
            DnsServerOptions {
                now: opts.now,
                plain: opts.plain_dns || scenario.plain_dns,
            },
        )?;
        let trust_anchor_file = if dns.trust_anchors().is_empty() {
            None
        } else {
            let path = opts.dir.join(TRUST_ANCHOR_FILE_NAME);
            std::fs::write(&path, dns.trust_anchors()).map_err(|source| LabError::Write {
                path: path.clone(),
                source,
            })?;
            Some(path)
        };

        let mut tasks = Vec::with_capacity(smtp_sites.len() + https_sites.len() + 1);
        let mut smtp_stats = Vec::with_capacity(smtp_sites.len());
        for ((addr, site), listener) in smtp_sites.into_iter().zip(smtp_listeners) {
            let stats = Arc::new(ConnStats::default());
            smtp_stats.push((addr, stats.clone()));
            tasks.push(crate::smtp::spawn(listener, site, stats));
        }
        tasks.push(write_smtp_stats(
            opts.dir.join(SMTP_STATS_FILE_NAME),
            smtp_stats.clone(),
        ));
        for ((_, certs, sites), listener) in https_sites.into_iter().zip(https_listeners) {
            tasks.push(crate::https::spawn(listener, certs, sites)?);
        }

        Ok(RunningLab {
            dns: Some(dns),
            tasks,
            resolver_addr,
            ca,
            ca_file,
            trust_anchor_file,
            smtp_port,
            https_port,
            domains: scenario.domains.iter().map(|d| d.name.clone()).collect(),
            addresses: layout.addresses,
            smtp_stats,
        })
    }
}

/// Binds a TCP listener on `port` at every address, or finds a random port where all binds
/// succeed and the `dead` addresses are free too (so "unreachable" really is unreachable).
async fn bind_all(
    what: &'static str,
    addrs: &[IpAddr],
    dead: &[IpAddr],
    port: Option<u16>,
    salt: u64,
) -> Result<(u16, Vec<TcpListener>), LabError> {
    if let Some(port) = port {
        let mut listeners = Vec::with_capacity(addrs.len());
        for ip in addrs {
            let addr = SocketAddr::new(*ip, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| LabError::Bind { what, addr, source })?;
            listeners.push(listener);
        }
        return Ok((port, listeners));
    }
    'ports: for attempt in 0..PORT_TRIES {
        let port = random_in(&PORT_RANGE, salt * 1000 + attempt as u64);
        let mut listeners = Vec::with_capacity(addrs.len());
        for ip in addrs {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(listener) => listeners.push(listener),
                Err(_) => continue 'ports,
            }
        }
        for ip in dead {
            if TcpListener::bind(SocketAddr::new(*ip, port)).await.is_err() {
                continue 'ports;
            }
        }
        return Ok((port, listeners));
    }
    Err(LabError::NoFreePort {
        what,
        addresses: addrs.len(),
        tries: PORT_TRIES,
    })
}

async fn bind_dns(
    ip: IpAddr,
    port: Option<u16>,
) -> Result<(u16, UdpSocket, TcpListener), LabError> {
    let what = "DNS";
    if let Some(port) = port {
        let addr = SocketAddr::new(ip, port);
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| LabError::Bind { what, addr, source })?;
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| LabError::Bind { what, addr, source })?;
        return Ok((port, udp, tcp));
    }
    for attempt in 0..PORT_TRIES {
        let port = random_in(&PORT_RANGE, 4000 + attempt as u64);
        let addr = SocketAddr::new(ip, port);
        let Ok(udp) = UdpSocket::bind(addr).await else {
            continue;
        };
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        return Ok((port, udp, tcp));
    }
    Err(LabError::NoFreePort {
        what,
        addresses: 1,
        tries: PORT_TRIES,
    })
}

impl RunningLab {
    /// The most SMTP connections that were open at once to any one lab MX address.
    pub fn smtp_peak_per_address(&self) -> usize {
        self.smtp_stats
            .iter()
            .map(|(_, s)| s.peak())
            .max()
            .unwrap_or(0)
    }

    /// How many messages the MX host `name` accepted (always over TLS: the lab takes no
    /// mail in plaintext); the count of its listening address, which hosts of a bulk
    /// scenario share. `None` when the lab has no SMTP listener for that host.
    pub fn smtp_messages_accepted(&self, name: &str) -> Option<usize> {
        let addr = self.host_addr(name)?;
        self.smtp_stats
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, s)| s.messages())
    }

    /// Where the lab's DNS server answers (UDP and TCP): the checker's `--resolver`.
    pub fn resolver_addr(&self) -> SocketAddr {
        self.resolver_addr
    }

    /// A valid certificate from the lab's trusted root for `names`: for servers outside the
    /// lab that its clients (and the checker with [`RunningLab::ca_file`]) must trust.
    pub fn issue(&self, names: &[String]) -> Result<crate::IssuedCert, CaError> {
        self.ca.issue(names, CertVariant::Good)
    }

    /// The PEM file of the lab root CA: the checker's `--ca-file`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The DNSKEYs of the DNSSEC-signed zones, if any zone is signed.
    pub fn trust_anchor_file(&self) -> Option<&Path> {
        self.trust_anchor_file.as_deref()
    }

    /// The SMTP port of every MX host.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The HTTPS port of every policy host.
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The lab's domains, in scenario order.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The address published for a lab host, if it has one.
    pub fn host_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.addresses.get(&name.to_ascii_lowercase()).copied()
    }

    /// The flags to pass to `stsward check` to point it at this lab, one line, then the
    /// domains.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "--resolver {} --ca-file {} --smtp-port {} --https-port {}\n",
            self.resolver_addr,
            self.ca_file.display(),
            self.smtp_port,
            self.https_port
        );
        if let Some(anchors) = &self.trust_anchor_file {
            let _ = writeln!(text, "DNSSEC trust anchors: {}", anchors.display());
        }
        let _ = writeln!(text, "{} domains:", self.domains.len());
        for domain in &self.domains {
            let _ = writeln!(text, "  {domain}");
        }
        text
    }

    /// Stops every server and waits until their sockets are closed.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
    }
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `base` plus `n` similar good domains (`bulk-00000.test` …) for bulk checks: each has a
/// good `_mta-sts` and `_smtp._tls` record, an enforce policy, and two MX hosts drawn from a
/// small shared set. The good hosts share a few addresses so that thousands of domains start
/// in moments with a handful of sockets.
pub fn generate_bulk(n: usize, base: &Scenario) -> Scenario {
    let mut scenario = base.clone();
    let mx_names: Vec<String> = (1..=BULK_MX_HOSTS)
        .map(|k| format!("mx{k}.bulk-mail.test"))
        .collect();
    for i in 0..n {
        let name = format!("bulk-{i:05}.test");
        let pair = [i % BULK_MX_HOSTS, (i + 1) % BULK_MX_HOSTS];
        let mx: Vec<MxRecord> = pair
            .iter()
            .zip([10u16, 20])
            .filter_map(|(k, preference)| {
                mx_names.get(*k).map(|host| MxRecord {
                    host: host.clone(),
                    preference,
                })
            })
            .collect();
        let hosts: Vec<String> = mx.iter().map(|m| m.host.clone()).collect();
        let text = generated_policy("enforce", &hosts);
        for host in &hosts {
            scenario
                .mx_hosts
                .entry(host.clone())
                .or_insert_with(|| crate::scenario::MxHost {
                    name: host.clone(),
                    behaviour: MxBehaviour::Good,
                    tlsa: crate::scenario::TlsaSpec::None,
                });
        }
        scenario.domains.push(Domain {
            sts_txt: vec![generated_sts_txt(&text)],
            tlsrpt_txt: vec![generated_tlsrpt_txt(&name)],
            name,
            mx,
            cnames: Vec::new(),
            delegations: Vec::new(),
            addresses: Vec::new(),
            policy: Some(PolicyHost {
                behaviour: PolicyBehaviour::Good,
                text,
            }),
            dnssec: crate::scenario::Dnssec::Off,
        });
    }
    scenario.address_pool = Some(scenario.address_pool.unwrap_or(BULK_ADDRESS_POOL));
    scenario
}
