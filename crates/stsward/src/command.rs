//! Stage two of argument parsing: raw flags validated into commands the dispatcher runs.
//!
//! Everything a command needs is decided here — colour, input sources, timeouts — so the
//! command bodies in [`crate::cmd`] never look at flags or the environment again.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

#[cfg(feature = "lab")]
use crate::cli::LabCommand;
use crate::cli::{
    Cli, CliCommand, ColorChoice, DomainCommand, DomainCommon, NetArgs, PolicyCommand,
    PolicyFields, ReportCommand, ResolveCommand,
};
use stsward_server::domains::import::ImportDefaults;
use stsward_server::domains::{AddDomain, DomainOptions, MxInput, PolicyChange};

/// Where an input comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl Input {
    fn from_arg(p: PathBuf) -> Self {
        if p.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path(p)
        }
    }

    /// The name to show in messages.
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::Path(p) => p.display().to_string(),
        }
    }

    /// Reads the whole input.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Input::Stdin => {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                Ok(buf)
            }
            Input::Path(p) => std::fs::read(p),
        }
    }
}

/// `stsward policy lint`.
#[derive(Debug)]
pub struct PolicyLint {
    pub input: Input,
    pub json: bool,
    pub color: bool,
}

/// `stsward report parse`.
#[derive(Debug)]
pub struct ReportParse {
    pub files: Vec<PathBuf>,
    pub strict: bool,
    pub pretty: bool,
}

/// Validated network overrides.
#[derive(Debug, Clone)]
pub struct Net {
    pub resolver: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    pub smtp_port: u16,
    pub https_port: u16,
    pub timeout: Duration,
    pub trust_anchors: Option<PathBuf>,
    pub dnssec: bool,
    pub legacy_probe: bool,
}

/// Which domains `stsward check` looks at.
#[derive(Debug)]
pub enum Targets {
    One(String),
    Many(Input),
}

/// `stsward check`.
#[derive(Debug)]
pub struct Check {
    pub targets: Targets,
    pub json: bool,
    pub color: bool,
    /// Standard error is a terminal: show a progress bar in bulk mode.
    pub progress: bool,
    pub net: Net,
    pub concurrency: usize,
    /// `--per-ip`: concurrent SMTP connections per MX address.
    pub per_ip: usize,
    /// Reuse probe results across the domains of one run.
    pub probe_cache: bool,
    /// `--public-only` with its `--allow-range`s: the tenant checks' address filter.
    pub address_filter: Option<Vec<stsward_net::address_policy::Cidr>>,
}

/// `stsward lab up` (feature `lab`).
#[cfg(feature = "lab")]
#[derive(Debug)]
pub struct LabUp {
    pub scenario: PathBuf,
    pub dir: Option<PathBuf>,
    pub dns_port: Option<u16>,
    pub smtp_port: Option<u16>,
    pub https_port: Option<u16>,
    pub bulk: Option<usize>,
}

/// `stsward demo` (feature `lab`).
#[cfg(feature = "lab")]
#[derive(Debug)]
pub struct Demo {
    pub headless: bool,
    pub json: bool,
    pub listen: std::net::SocketAddr,
    pub dir: Option<PathBuf>,
}

/// `stsward resolve test`.
#[derive(Debug)]
pub struct ResolveTest {
    pub destination: String,
    pub json: bool,
    pub tlsrpt_attributes: bool,
    pub dane_first: bool,
    pub dane_only: bool,
    pub temp_on_failure: bool,
    pub resolver: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    pub https_port: u16,
    pub trust_anchors: Option<PathBuf>,
    pub dnssec: bool,
    pub timeout: Duration,
}

/// `stsward resolve serve`: the configuration file and the flags that override it.
#[derive(Debug)]
pub struct ResolveServe {
    pub config: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub unix: Vec<PathBuf>,
    /// `Some(None)`: `--admin ""`, turned off.
    pub admin: Option<Option<SocketAddr>>,
    pub store: Option<String>,
    pub resolver: Option<SocketAddr>,
    pub ca_file: Option<PathBuf>,
    pub https_port: Option<u16>,
    pub trust_anchors: Option<PathBuf>,
    pub tlsrpt_attributes: bool,
}

/// `stsward resolve show|purge`.
#[derive(Debug)]
pub struct ResolveAdmin {
    pub domain: String,
    pub admin: SocketAddr,
    pub purge: bool,
}

/// `stsward domain …`: where the store and the DNS are, and what to do.
#[derive(Debug)]
pub struct Domain {
    pub config: Option<PathBuf>,
    pub store: Option<String>,
    pub resolver: Option<SocketAddr>,
    pub json: bool,
    pub action: DomainAction,
}

/// One `stsward domain` subcommand, validated.
#[derive(Debug)]
pub enum DomainAction {
    Add(AddDomain),
    Import(Input, ImportDefaults),
    List,
    Show(String),
    Set(String, PolicyChange, DomainOptions),
    Remove(String),
    SyncMx(String),
    Records(String),
    Verify(String),
    Readiness(String),
}

/// `stsward serve`: the configuration file and its overrides.
#[derive(Debug)]
pub struct Serve {
    pub config: PathBuf,
    pub https: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    pub dns: Vec<SocketAddr>,
    pub store: Option<String>,
    pub resolver: Option<SocketAddr>,
}

/// A validated command.
#[derive(Debug)]
pub enum Command {
    Domain(Domain),
    Serve(Serve),
    ResolveTest(ResolveTest),
    ResolveServe(ResolveServe),
    ResolveAdmin(ResolveAdmin),
    PolicyLint(PolicyLint),
    ReportParse(ReportParse),
    Reports(crate::cmd::reports::Reports),
    Tenant(crate::cli::TenantCommand),
    User(crate::cli::UserCommand),
    Token(crate::cli::TokenCommand),
    Check(Check),
    #[cfg(feature = "lab")]
    LabUp(LabUp),
    #[cfg(feature = "lab")]
    Demo(Demo),
    Completions(crate::cmd::completions::CompletionsArgs),
    Man(crate::cmd::completions::ManArgs),
    Config(crate::cli::ConfigCommand),
}

impl Command {
    /// Validates raw flags.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Command> {
        let color = match cli.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Ok(match cli.command {
            CliCommand::Policy(PolicyCommand::Lint { file, json }) => {
                Command::PolicyLint(PolicyLint {
                    input: Input::from_arg(file),
                    json,
                    color,
                })
            }
            CliCommand::Report(ReportCommand::Parse {
                files,
                strict,
                pretty,
            }) => Command::ReportParse(ReportParse {
                files,
                strict,
                pretty,
            }),
            CliCommand::Resolve(ResolveCommand::Test(a)) => {
                if a.timeout == 0 || a.timeout > 600 {
                    bail!(
                        "--timeout must be between 1 and 600 seconds, not {}",
                        a.timeout
                    );
                }
                if let Some(ca) = &a.ca_file {
                    std::fs::metadata(ca).with_context(|| format!("--ca-file {}", ca.display()))?;
                }
                Command::ResolveTest(ResolveTest {
                    destination: a.destination,
                    json: a.json,
                    tlsrpt_attributes: a.tlsrpt_attrs,
                    dane_first: !a.no_dane,
                    dane_only: a.dane_level == "dane-only",
                    temp_on_failure: a.temp_on_failure,
                    resolver: a.resolver,
                    ca_file: a.ca_file,
                    https_port: a.https_port,
                    trust_anchors: a.trust_anchors,
                    dnssec: !a.no_dnssec,
                    timeout: Duration::from_secs(a.timeout),
                })
            }
            CliCommand::Resolve(ResolveCommand::Serve(a)) => {
                let admin = match a.admin.as_deref() {
                    None => None,
                    Some("") => Some(None),
                    Some(text) => {
                        Some(Some(text.parse::<SocketAddr>().with_context(|| {
                            format!("--admin {text:?}: not ADDR:PORT")
                        })?))
                    }
                };
                Command::ResolveServe(ResolveServe {
                    config: a.config,
                    listen: a.listen,
                    unix: a.unix,
                    admin,
                    store: a.store,
                    resolver: a.resolver,
                    ca_file: a.ca_file,
                    https_port: a.https_port,
                    trust_anchors: a.trust_anchors,
                    tlsrpt_attributes: a.tlsrpt_attrs,
                })
            }
            CliCommand::Resolve(ResolveCommand::Show(a)) => {
                Command::ResolveAdmin(resolve_admin(a, false)?)
            }
            CliCommand::Resolve(ResolveCommand::Purge(a)) => {
                Command::ResolveAdmin(resolve_admin(a, true)?)
            }
            CliCommand::Domain(d) => Command::Domain(domain(d)?),
            CliCommand::Reports(r) => Command::Reports(crate::cli::reports_command(r)?),
            CliCommand::Tenant(t) => Command::Tenant(t),
            CliCommand::User(u) => Command::User(u),
            CliCommand::Token(t) => Command::Token(t),
            CliCommand::Serve(a) => Command::Serve(Serve {
                config: a.config,
                https: a.https,
                http: a.http,
                dns: a.dns,
                store: a.store,
                resolver: a.resolver,
            }),
            CliCommand::Check(args) => {
                let targets = match (args.domain, args.from) {
                    (Some(d), None) => Targets::One(validate_domain(&d)?),
                    (None, Some(f)) => Targets::Many(Input::from_arg(f)),
                    _ => bail!("give either one DOMAIN or --from FILE"),
                };
                if args.concurrency == 0 {
                    bail!("--concurrency must be at least 1");
                }
                if args.per_ip == 0 {
                    bail!("--per-ip must be at least 1");
                }
                let address_filter = if args.public_only {
                    let ranges = args
                        .allow_range
                        .iter()
                        .map(|r| {
                            r.parse::<stsward_net::address_policy::Cidr>()
                                .with_context(|| format!("--allow-range {r:?}"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    Some(ranges)
                } else {
                    None
                };
                Command::Check(Check {
                    targets,
                    json: args.json,
                    color,
                    progress: std::io::stderr().is_terminal(),
                    net: net(args.net)?,
                    concurrency: args.concurrency,
                    per_ip: args.per_ip,
                    probe_cache: !args.no_probe_cache,
                    address_filter,
                })
            }
            #[cfg(feature = "lab")]
            CliCommand::Lab(LabCommand::Up {
                scenario,
                dir,
                dns_port,
                smtp_port,
                https_port,
                bulk,
            }) => Command::LabUp(LabUp {
                scenario,
                dir,
                dns_port,
                smtp_port,
                https_port,
                bulk,
            }),
            #[cfg(feature = "lab")]
            CliCommand::Demo(a) => Command::Demo(Demo {
                headless: a.headless,
                json: a.json,
                listen: a.listen,
                dir: a.dir,
            }),
            CliCommand::Completions(a) => Command::Completions(a),
            CliCommand::Man(a) => Command::Man(a),
            CliCommand::Config(c) => Command::Config(c),
        })
    }
}

fn mx_input(p: &PolicyFields) -> Option<MxInput> {
    if p.mx_from_dns {
        Some(MxInput::FromDns)
    } else if p.mx.is_empty() {
        None
    } else {
        Some(MxInput::Patterns(p.mx.clone()))
    }
}

fn domain(d: DomainCommand) -> anyhow::Result<Domain> {
    let with = |common: DomainCommon, action| Domain {
        config: common.config,
        store: common.store,
        resolver: common.resolver,
        json: common.json,
        action,
    };
    Ok(match d {
        DomainCommand::Add {
            target,
            policy,
            follow_mx,
        } => {
            let add = AddDomain {
                domain: target.domain,
                mode: policy.mode.clone(),
                mx: mx_input(&policy),
                max_age: policy.max_age,
                follow_mx,
            };
            with(target.common, DomainAction::Add(add))
        }
        DomainCommand::Import {
            file,
            mode,
            mx,
            max_age,
            follow_mx,
            common,
        } => with(
            common,
            DomainAction::Import(
                Input::from_arg(file),
                ImportDefaults {
                    mode,
                    mx,
                    max_age,
                    follow_mx,
                },
            ),
        ),
        DomainCommand::List { common } => with(common, DomainAction::List),
        DomainCommand::Show { target } => with(target.common, DomainAction::Show(target.domain)),
        DomainCommand::Set {
            target,
            policy,
            note,
            follow_mx,
            tlsrpt_rua,
            own_txt,
        } => {
            let options = DomainOptions {
                follow_mx: follow_mx.map(|v| v == "on"),
                tlsrpt_rua: tlsrpt_rua.map(|r| (r != "default").then_some(r)),
                own_sts_txt: own_txt.map(|v| v == "on"),
            };
            let change = PolicyChange {
                mode: policy.mode.clone(),
                mx: mx_input(&policy),
                max_age: policy.max_age,
                note,
            };
            if change.mode.is_none()
                && change.mx.is_none()
                && change.max_age.is_none()
                && options.is_empty()
            {
                bail!(
                    "nothing to change: give --mode, --mx, --mx-from-dns, --max-age, \
                     --follow-mx, --tlsrpt-rua or --own-txt"
                );
            }
            with(
                target.common,
                DomainAction::Set(target.domain, change, options),
            )
        }
        DomainCommand::Remove { target } => {
            with(target.common, DomainAction::Remove(target.domain))
        }
        DomainCommand::SyncMx { target } => {
            with(target.common, DomainAction::SyncMx(target.domain))
        }
        DomainCommand::Verify { target } => {
            with(target.common, DomainAction::Verify(target.domain))
        }
        DomainCommand::Records { target } => {
            with(target.common, DomainAction::Records(target.domain))
        }
        DomainCommand::Readiness { target } => {
            with(target.common, DomainAction::Readiness(target.domain))
        }
    })
}

fn net(a: NetArgs) -> anyhow::Result<Net> {
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 600.0) {
        bail!(
            "--timeout must be a number of seconds between 0 and 600, not {}",
            a.timeout
        );
    }
    if let Some(ca) = &a.ca_file {
        std::fs::metadata(ca).with_context(|| format!("--ca-file {}", ca.display()))?;
    }
    Ok(Net {
        resolver: a.resolver,
        ca_file: a.ca_file,
        smtp_port: a.smtp_port,
        https_port: a.https_port,
        timeout: Duration::from_secs_f64(a.timeout),
        trust_anchors: a.trust_anchors,
        dnssec: !a.no_dnssec,
        legacy_probe: !a.no_legacy_probe,
    })
}

/// Normalises a domain argument: trims, drops one trailing dot, lowercases; rejects what
/// cannot be a domain (an address, a URL) with a message saying what to pass instead.
pub fn validate_domain(raw: &str) -> anyhow::Result<String> {
    let d = raw.trim();
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() {
        bail!("empty domain");
    }
    if let Some((_, after)) = d.rsplit_once('@') {
        bail!("{raw:?} is a mail address; pass its domain, e.g. {after:?}");
    }
    if d.contains("://") || d.contains('/') {
        bail!("{raw:?} is not a domain name; pass just the domain, e.g. example.com");
    }
    if d.chars().any(|c| c.is_whitespace() || c == ':') || d.len() > 253 {
        bail!("{raw:?} is not a domain name");
    }
    Ok(d.to_ascii_lowercase())
}

/// The admin address of `show`/`purge`: the flag, else the configuration file's, else the
/// default.
fn resolve_admin(a: crate::cli::ResolveAdminArgs, purge: bool) -> anyhow::Result<ResolveAdmin> {
    let admin = match (a.admin, &a.config) {
        (Some(addr), _) => addr,
        (None, path) => {
            let text = match path {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("--config {}", p.display()))?,
                ),
                None => None,
            };
            let file = path.as_deref().zip(text.as_deref());
            let cfg =
                stsward_resolver::ResolverConfig::load_layered(file, std::env::vars_os())?.value;
            cfg.admin.listen.context(
                "admin.listen is off (in --config or STSWARD_RESOLVE_ADMIN_LISTEN); the daemon \
                 has no admin endpoint",
            )?
        }
    };
    Ok(ResolveAdmin {
        domain: a.domain,
        admin,
        purge,
    })
}
