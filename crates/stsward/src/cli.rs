//! Command-line flags (stage one of two): what the user typed, as clap parses it.
//!
//! Stage two, [`crate::command`], validates these into a [`crate::command::Command`] that
//! the dispatcher runs. Nothing here knows a protocol.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy MTA-STS and TLS reporting without breaking your mail.
///
/// stsward checks a domain's whole SMTP transport-security deployment (MTA-STS, TLS-RPT,
/// DANE), lints MTA-STS policy files, and reads the TLS reports that mail senders send back.
#[derive(Debug, Parser)]
#[command(
    name = "stsward",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "\
Exit status:
  0  success; no finding is an error
  1  a finding is an error, or an input could not be parsed
  2  the command could not run (bad arguments, unreadable file, no resolver)

Run 'stsward <COMMAND> --help' for the options of each command.")]
pub struct Cli {
    /// When to use colour in human output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: CliCommand,
}

/// When to colour human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Check a domain's MTA-STS, TLS-RPT and DANE deployment end to end.
    ///
    /// Looks up the _mta-sts and _smtp._tls TXT records, fetches the policy over HTTPS exactly
    /// as a sending MTA would (no redirects, 64 KiB cap, text/plain only), compares it with the
    /// MX records, and probes every address of every MX host: STARTTLS, TLS version,
    /// certificate trust, name and expiry, and DANE TLSA records. Every problem comes with its
    /// remedy.
    #[command(after_help = "\
Examples:
  stsward check example.com
  stsward check example.com --json
  stsward check --from domains.txt --json > results.jsonl

Exit status: 0 when no finding is an error, 1 when one is, 2 when the check could not run.")]
    Check(CheckArgs),

    /// Work with MTA-STS policy files (RFC 8461 §3.2).
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Work with TLS-RPT reports (RFC 8460).
    #[command(subcommand)]
    Report(ReportCommand),

    /// Received TLS-RPT reports in the store: import files, summarise, the quarantine.
    #[command(subcommand)]
    Reports(ReportsCommand),

    /// The sending side: the Postfix MTA-STS policy resolver (socketmap).
    #[command(subcommand)]
    Resolve(ResolveCommand),

    /// Hosted MTA-STS: the domains this stsward hosts policies for (docs/serve.md).
    #[command(subcommand)]
    Domain(DomainCommand),

    /// Hosted MTA-STS: serve every hosted policy over HTTPS and the delegated zone over DNS.
    #[command(after_help = "\
Examples:
  stsward serve --config /etc/stsward/stsward.toml
  stsward serve --config stsward.toml --https 127.0.0.1:8443 --http 127.0.0.1:8080 --dns 127.0.0.1:5353

Runs until SIGTERM or SIGINT. Exit status: 0 after a clean stop, 2 when it cannot start
(the message names the configuration key) or a listener fails.")]
    Serve(ServeArgs),

    /// Tenants: the customers a provider hosts domains for (docs/auth.md).
    #[command(subcommand)]
    Tenant(TenantCommand),

    /// Users who log in to the dashboard: install admins and tenants' users (docs/auth.md).
    #[command(subcommand)]
    User(UserCommand),

    /// REST API bearer tokens of a tenant (docs/auth.md, docs/api.md).
    #[command(subcommand)]
    Token(TokenCommand),

    /// Run a local test world of DNS, MX and policy hosts (for tests and demos).
    ///
    /// Only in builds with the `lab` feature: the shipped binary carries no test CA.
    #[cfg(feature = "lab")]
    #[command(subcommand)]
    Lab(LabCommand),

    /// Print a shell completion script (bash, zsh or fish) on standard output.
    #[command(after_help = "\
Examples:
  stsward completions bash > /usr/share/bash-completion/completions/stsward
  stsward completions zsh > /usr/share/zsh/vendor-completions/_stsward
  stsward completions fish > ~/.config/fish/completions/stsward.fish")]
    Completions(crate::cmd::completions::CompletionsArgs),

    /// Print the man page (roff) on standard output, or write one page per command.
    #[command(after_help = "\
Examples:
  stsward man | man -l -
  stsward man --out-dir /usr/local/share/man/man1")]
    Man(crate::cmd::completions::ManArgs),

    /// See all of stsward work on this machine, without the internet (`scripts/run`).
    ///
    /// Starts a lab world of .test domains in different states, `stsward serve` hosting their
    /// policies on a temporary SQLite store, a month of TLS-RPT reports from four sending
    /// organisations made from the lab's delivery results, and the checks; then prints the
    /// dashboard's address and a one-time login and runs until Ctrl-C. Only in builds with
    /// the `lab` feature.
    #[cfg(feature = "lab")]
    Demo(DemoArgs),

    /// The configuration file of `serve` and `domain`: write a commented one, or check one
    /// (docs/configuration.md).
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `stsward demo`.
#[cfg(feature = "lab")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print a summary and exit instead of serving the dashboard until Ctrl-C (for scripts:
    /// exit 1 when a domain is not as the demo expects it).
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print the summary as JSON.
    #[arg(long, requires = "headless")]
    pub json: bool,
    /// The dashboard's (and REST API's) address.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8480")]
    pub listen: std::net::SocketAddr,
    /// Keep the store, certificates and configuration in DIR (default: a temporary directory
    /// deleted at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domain to check (the part after @ in the mail address).
    #[arg(
        value_name = "DOMAIN",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    pub domain: Option<String>,

    /// Check many domains: one per line from FILE, or '-' for standard input.
    /// Blank lines and lines starting with '#' are skipped.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// Print JSON (with --from: one JSON object per line, then a summary object).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub net: NetArgs,

    /// How many domains to check at once in bulk mode.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,

    /// At most N concurrent SMTP connections to one MX address, across all domains.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub per_ip: usize,

    /// Probe every (MX host, address) again for each domain instead of reusing the result
    /// of another domain of the same run (for benchmarks).
    #[arg(long)]
    pub no_probe_cache: bool,

    /// Connect only to globally reachable addresses, as a check a tenant starts over the API
    /// does: a loopback, private, link-local, shared or multicast address is reported as
    /// net.address.refused and never connected to.
    #[arg(long)]
    pub public_only: bool,

    /// With --public-only, still connect to this range (CIDR, e.g. 10.0.0.0/8); repeatable.
    #[arg(long, value_name = "CIDR", requires = "public_only")]
    pub allow_range: Vec<String>,
}

/// Network overrides shared by every command that talks to the world.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Send DNS queries to this server instead of the system resolver.
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<SocketAddr>,

    /// Also trust the CA certificates in this PEM file (for policy hosts and MX hosts).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// SMTP port to probe on MX hosts.
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub smtp_port: u16,

    /// HTTPS port of policy hosts.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub https_port: u16,

    /// The overall budget of one domain's check, in seconds: the check returns within it
    /// whatever remote hosts do, reporting what did not finish. DNS, the policy fetch and
    /// each SMTP step get shorter timeouts beneath it.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub timeout: f64,

    /// DNSSEC trust anchors (DNSKEY records in zone-file format) replacing the root's; the
    /// lab writes one for its signed zones.
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: Option<PathBuf>,

    /// Do not validate DNSSEC (DANE is then reported as unknown: dns.dnssec.unavailable).
    #[arg(long)]
    pub no_dnssec: bool,

    /// Do not probe MX hosts for TLS 1.0/1.1 with a second connection.
    #[arg(long)]
    pub no_legacy_probe: bool,
}

#[derive(Debug, Subcommand)]
pub enum ResolveCommand {
    /// Resolve a destination afresh and print what Postfix would be told, and why.
    ///
    /// Runs the resolver's own decision (MTA-STS discovery and fetch, DANE first) without a
    /// daemon and without any cache. DESTINATION is a Postfix next hop: a domain,
    /// `domain:port`, `[host]` or `[host]:port`.
    #[command(after_help = "\
Examples:
  stsward resolve test example.com
  stsward resolve test example.com --tlsrpt-attrs --json

Exit status: 0 when an answer was computed, 2 when the resolver could not run.")]
    Test(ResolveTestArgs),

    /// Run the Postfix socketmap policy daemon (smtp_tls_policy_maps).
    ///
    /// Answers Postfix's lookups from a cache of MTA-STS policies (RFC 8461 §5.1), refreshed
    /// in the background when the `_mta-sts` id changes, with DANE first. Settings come from
    /// the TOML file (docs/resolver.md lists every key); flags override it. SIGHUP re-reads
    /// the file; SIGINT and SIGTERM stop the daemon after in-flight lookups.
    #[command(after_help = "\
Examples:
  stsward resolve serve --config /etc/stsward/resolve.toml
  stsward resolve serve --listen 127.0.0.1:8461 --store sqlite:///var/lib/stsward/resolve.db

Postfix (main.cf):
  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix

Exit status: 0 after a clean shutdown, 2 when the daemon could not start.")]
    Serve(ResolveServeArgs),

    /// Show what a running daemon has cached for a domain (JSON).
    #[command(after_help = "\
Examples:
  stsward resolve show example.com
  stsward resolve show example.com --admin 127.0.0.1:8462

Exit status: 0 when the daemon answered, 2 when it could not be reached.")]
    Show(ResolveAdminArgs),

    /// Forget a domain in a running daemon's cache and in its store.
    #[command(after_help = "\
Examples:
  stsward resolve purge example.com

Exit status: 0 when the daemon answered, 2 when it could not be reached.")]
    Purge(ResolveAdminArgs),
}

#[derive(Debug, Args)]
pub struct ResolveServeArgs {
    /// The configuration file (TOML; see docs/resolver.md).
    #[arg(long, value_name = "FILE", env = "STSWARD_RESOLVE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Serve socketmap on this TCP address (repeatable; replaces `listen.tcp`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// Serve socketmap on this unix socket (repeatable; replaces `listen.unix`).
    #[arg(long, value_name = "PATH")]
    pub unix: Vec<PathBuf>,

    /// The admin HTTP endpoint (metrics, show, purge); "" turns it off.
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin: Option<String>,

    /// Persist the cache: sqlite://PATH or postgres://… (replaces `cache.store`).
    #[arg(long, value_name = "URL", env = "STSWARD_RESOLVE_STORE")]
    pub store: Option<String>,

    /// Send DNS queries to this server instead of the system resolver.
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<SocketAddr>,

    /// Also trust the CA certificates in this PEM file (for policy hosts).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// HTTPS port of policy hosts.
    #[arg(long, value_name = "PORT")]
    pub https_port: Option<u16>,

    /// DNSSEC trust anchors (DNSKEY records in zone-file format) replacing the root's.
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: Option<PathBuf>,

    /// Answer with the Postfix 3.10 TLSRPT attributes (policy_type=sts ...).
    #[arg(long)]
    pub tlsrpt_attrs: bool,
}

#[derive(Debug, Args)]
pub struct ResolveAdminArgs {
    /// The domain.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    /// The daemon's configuration file, to find its admin address.
    #[arg(long, value_name = "FILE", env = "STSWARD_RESOLVE_CONFIG")]
    pub config: Option<PathBuf>,

    /// The daemon's admin address (default: from --config, else 127.0.0.1:8462).
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ResolveTestArgs {
    /// The next-hop destination as Postfix looks it up.
    #[arg(value_name = "DESTINATION")]
    pub destination: String,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,

    /// Answer with the Postfix 3.10 TLSRPT attributes (policy_type=sts ...).
    #[arg(long)]
    pub tlsrpt_attrs: bool,

    /// Do not apply DANE first (RFC 8461 §2).
    #[arg(long)]
    pub no_dane: bool,

    /// The DANE level for enforce domains whose MX hosts have TLSA records.
    #[arg(long, value_name = "LEVEL", default_value = "dane-only", value_parser = ["dane-only", "dane"])]
    pub dane_level: String,

    /// Answer TEMP instead of NOTFOUND when discovery fails and nothing is cached.
    #[arg(long)]
    pub temp_on_failure: bool,

    /// Send DNS queries to this server instead of the system resolver.
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<SocketAddr>,

    /// Also trust the CA certificates in this PEM file (for policy hosts).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// HTTPS port of policy hosts.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub https_port: u16,

    /// DNSSEC trust anchors (DNSKEY records in zone-file format) replacing the root's.
    #[arg(long, value_name = "FILE")]
    pub trust_anchors: Option<PathBuf>,

    /// Do not validate DNSSEC (no TLSA record is then "secure": DANE first never applies).
    #[arg(long)]
    pub no_dnssec: bool,

    /// Time allowed for the policy fetch, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub timeout: u64,
}

/// `stsward serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; every key in docs/configuration.md).
    #[arg(long, value_name = "FILE", env = "STSWARD_CONFIG")]
    pub config: PathBuf,

    /// Serve HTTPS on this address (repeatable; replaces `listen.https`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub https: Vec<SocketAddr>,

    /// Serve HTTP (ACME HTTP-01) on this address (repeatable; replaces `listen.http`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Vec<SocketAddr>,

    /// Answer DNS on this address, UDP and TCP (repeatable; replaces `listen.dns`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub dns: Vec<SocketAddr>,

    /// The database: sqlite://PATH or postgres://… (replaces `store.url`).
    #[arg(long, value_name = "URL", env = "STSWARD_STORE")]
    pub store: Option<String>,

    /// Send DNS queries (MX lookups, pre-flight checks) to this server instead of the
    /// system resolver.
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<SocketAddr>,
}

/// What every `stsward domain` command takes.
#[derive(Debug, Args)]
pub struct DomainCommon {
    /// The configuration file (TOML; every key in docs/configuration.md). Without it, the
    /// defaults apply.
    #[arg(long, value_name = "FILE", env = "STSWARD_CONFIG")]
    pub config: Option<PathBuf>,

    /// The database: sqlite://PATH or postgres://… (replaces `store.url`).
    #[arg(long, value_name = "URL", env = "STSWARD_STORE")]
    pub store: Option<String>,

    /// Send DNS queries (MX lookups) to this server instead of the system resolver.
    #[arg(long, value_name = "ADDR:PORT")]
    pub resolver: Option<SocketAddr>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A domain argument and the common flags.
#[derive(Debug, Args)]
pub struct DomainArg {
    /// The domain (a trailing dot and Unicode are accepted; stored as A-labels).
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    #[command(flatten)]
    pub common: DomainCommon,
}

/// The policy fields of `add` and `set`.
#[derive(Debug, Args)]
pub struct PolicyFields {
    /// The policy mode.
    #[arg(long, value_name = "MODE", value_parser = ["testing", "enforce", "none"])]
    pub mode: Option<String>,

    /// An mx pattern (repeatable): a host name, or *.domain for one label (RFC 8461 §4.1).
    #[arg(long, value_name = "PATTERN", num_args = 1.., conflicts_with = "mx_from_dns")]
    pub mx: Vec<String>,

    /// Take the mx patterns from the domain's MX records in DNS.
    #[arg(long)]
    pub mx_from_dns: bool,

    /// The policy's max_age, in seconds (at most 31557600).
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Host a new domain's policy (by default: testing, the MX hosts in DNS, one week).
    #[command(after_help = "\
Examples:
  stsward domain add example.com
  stsward domain add example.org --mode enforce --mx mail.example.org --max-age 604800

Exit status: 0 when added, 1 when refused (invalid input, already hosted, no MX records),
2 when the command could not run.")]
    Add {
        #[command(flatten)]
        target: DomainArg,
        #[command(flatten)]
        policy: PolicyFields,
        /// Rebuild the mx lines from DNS on a schedule (stsward serve).
        #[arg(long)]
        follow_mx: bool,
    },

    /// Host many domains from a file, one a line with optional per-line options
    /// (docs/serve.md, "Importing domains"); domains hosted already are skipped.
    #[command(after_help = "\
Line format (# starts a comment; blank lines are skipped):
  example.com
  example.org mode=enforce mx=mx1.example.org,*.mx.example.net max_age=604800 follow_mx=on

Examples:
  stsward domain import domains.txt --mx mx.example.net
  stsward domain import - --mode enforce --mx '*.mail.example.net' < domains.txt

Every line is checked first: a bad line fails the whole import, naming the file, the line and
the field, and nothing is written. The mx patterns never come from DNS: each line needs mx=
unless --mx gives a default.

Exit status: 0 when imported (including when every domain was hosted already), 1 when a line
is refused (nothing written), 2 when the command could not run.")]
    Import {
        /// The import file, or '-' for standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The mode of lines without mode= (default testing).
        #[arg(long, value_name = "MODE", value_parser = ["testing", "enforce", "none"])]
        mode: Option<String>,
        /// The mx patterns of lines without mx= (repeatable).
        #[arg(long, value_name = "PATTERN", num_args = 1..)]
        mx: Vec<String>,
        /// The max_age of lines without max_age=, in seconds (default 604800).
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
        /// Follow the MX records on a schedule for lines without follow_mx=.
        #[arg(long)]
        follow_mx: bool,
        #[command(flatten)]
        common: DomainCommon,
    },

    /// List the hosted domains.
    #[command(after_help = "\
Exit status: 0 when listed, 2 when the command could not run.")]
    List {
        #[command(flatten)]
        common: DomainCommon,
    },

    /// Show a domain's current policy, id, state, certificate and history.
    #[command(after_help = "\
Exit status: 0 when shown, 1 when the domain is not hosted, 2 when the command could not run.")]
    Show {
        #[command(flatten)]
        target: DomainArg,
    },

    /// Change the policy (a new version with a new id).
    #[command(after_help = "\
Examples:
  stsward domain set example.com --mode enforce
  stsward domain set example.com --mx mx1.example.com --mx '*.mx.example.net'

Exit status: 0 when changed (or already so), 1 when refused (the error names the field;
nothing changes), 2 when the command could not run.")]
    Set {
        #[command(flatten)]
        target: DomainArg,
        #[command(flatten)]
        policy: PolicyFields,
        /// Why (kept in the history).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// Rebuild the mx lines from DNS on a schedule (stsward serve): on or off.
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        follow_mx: Option<String>,
        /// The rua published at _smtp._tls for this domain, or "default" for the install's.
        #[arg(long, value_name = "URI|default")]
        tlsrpt_rua: Option<String>,
        /// The domain keeps its own _mta-sts TXT (not the CNAME): stsward serve then watches
        /// it and flags an id that is not the served policy's. on or off.
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        own_txt: Option<String>,
    },

    /// Stop hosting a domain safely (RFC 8461 §8.3): mode none with a new id first, gone
    /// once every earlier policy has expired from senders' caches.
    #[command(after_help = "\
Exit status: 0 when the removal started, 1 when refused, 2 when the command could not run.")]
    Remove {
        #[command(flatten)]
        target: DomainArg,
    },

    /// Rebuild the mx lines from the domain's MX records in DNS (a new version if they differ).
    #[command(
        name = "sync-mx",
        after_help = "\
Exit status: 0 when in step (changed or not), 1 when refused, 2 when the command could not run."
    )]
    SyncMx {
        #[command(flatten)]
        target: DomainArg,
    },

    /// Print the DNS records to publish for a domain, as zone-file lines and as a table.
    #[command(after_help = "\
Exit status: 0 when printed, 1 when the domain is not hosted, 2 when the command could not run
(hosting.zone and hosting.policy_host must be set in the configuration).")]
    Records {
        #[command(flatten)]
        target: DomainArg,
    },

    /// Look up the records `records` prints (through --resolver or the system's resolver) and
    /// say which are in place, missing or wrong, each with its fix.
    #[command(after_help = "\
Exit status: 0 when every record is in place, 1 when one is missing, wrong or unknown (or the domain is
not hosted), 2 when the command could not run.")]
    Verify {
        #[command(flatten)]
        target: DomainArg,
    },

    /// Say whether a domain in testing is ready for enforce: each criterion of [readiness]
    /// (days in testing, reporting senders, success rate, blocking failures, MX coverage and
    /// certificates at the last check, policy fetches, the TLS-RPT record) with its evidence
    /// and the next thing to fix.
    #[command(after_help = "\
Exit status: 0 when every criterion holds, 1 when one does not (or the domain is not hosted), 2 when
the command could not run.")]
    Readiness {
        #[command(flatten)]
        target: DomainArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Lint an MTA-STS policy file: syntax, values, and what senders will make of it.
    #[command(after_help = "\
Examples:
  stsward policy lint mta-sts.txt
  curl -s https://mta-sts.example.com/.well-known/mta-sts.txt | stsward policy lint -

Exit status: 0 when no finding is an error, 1 when one is, 2 when the file cannot be read.")]
    Lint {
        /// The policy file, or '-' for standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Parse TLS-RPT reports and print each as normalised RFC 8460 JSON.
    ///
    /// Accepts bare .json, .json.gz and .zip reports and report e-mails (.eml), and prints one
    /// JSON line per report. Real senders deviate from the RFC; those deviations are accepted
    /// and, with --strict, listed.
    #[command(after_help = "\
Examples:
  stsward report parse google.com!example.com!1700000000!1700086399.json.gz
  stsward report parse --strict reports/*.eml

Exit status: 0 when every input parsed, 1 when any input could not be parsed,
2 when no input could be read at all.")]
    Parse {
        /// Report files: .json, .json.gz, .zip, or e-mail messages.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Also print each report's deviations from RFC 8460.
        #[arg(long)]
        strict: bool,
        /// Pretty-print the JSON instead of one line per report.
        #[arg(long)]
        pretty: bool,
    },
}

#[cfg(feature = "lab")]
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab world described by a scenario file and run it until interrupted.
    ///
    /// Prints the --resolver, --ca-file, --smtp-port and --https-port flags to pass to
    /// 'stsward check' for the lab's .test domains.
    Up {
        /// The scenario (TOML).
        #[arg(value_name = "SCENARIO.toml")]
        scenario: PathBuf,
        /// Directory for the lab's CA file (default: a new temporary directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Fixed DNS port (default: a free high port).
        #[arg(long, value_name = "PORT")]
        dns_port: Option<u16>,
        /// Fixed SMTP port for every MX host (default: a free high port).
        #[arg(long, value_name = "PORT")]
        smtp_port: Option<u16>,
        /// Fixed HTTPS port for every policy host (default: a free high port).
        #[arg(long, value_name = "PORT")]
        https_port: Option<u16>,
        /// Add N generated good domains (bulk-0.test ... ) for load tests.
        #[arg(long, value_name = "N")]
        bulk: Option<usize>,
    },
}

/// What every `stsward reports` command takes.
#[derive(Debug, Args)]
pub struct ReportsCommon {
    /// The configuration file (TOML; every key in docs/configuration.md), for `store.url`.
    #[arg(long, value_name = "FILE", env = "STSWARD_CONFIG")]
    pub config: Option<PathBuf>,

    /// The database: sqlite://PATH or postgres://… (replaces `store.url`).
    #[arg(long, alias = "db", value_name = "URL", env = "STSWARD_STORE")]
    pub store: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Import report files and directories (recursively): .eml, .mbox, .json, .json.gz, .zip.
    ///
    /// Each report is stored once (a report already stored is counted as a duplicate);
    /// input that cannot be read is kept in the quarantine with the reason. DKIM is
    /// recorded, not required, unless --require-dkim: archived mail outlives its keys.
    #[command(after_help = "\
Examples:
  stsward reports import --config stsward.toml ~/Maildir/tlsrpt/
  stsward reports import --store sqlite://reports.db reports.mbox *.json.gz

Exit status: 0 when every input was read, 1 when some input was quarantined, 2 when the
import could not run.")]
    Import {
        /// Files or directories.
        #[arg(value_name = "PATH", required = true)]
        paths: Vec<PathBuf>,
        /// Quarantine report e-mails without a valid DKIM signature (RFC 8460 §3).
        #[arg(long)]
        require_dkim: bool,
        /// Inputs committed per transaction.
        #[arg(long, value_name = "N", default_value_t = 500)]
        batch: usize,
        #[command(flatten)]
        common: ReportsCommon,
    },
    /// Sessions successful and failed, failures by type, organisation and MX, day by day.
    #[command(after_help = "\
Examples:
  stsward reports summary
  stsward reports summary --domain example.com --since 7d --json")]
    Summary {
        /// Only this policy domain.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
        /// How far back: 30d, 12h, 2w (default 30d).
        #[arg(long, value_name = "AGE", default_value = "30d")]
        since: String,
        #[command(flatten)]
        common: ReportsCommon,
    },
    /// List quarantined input with the reasons.
    Invalid {
        /// Also list released entries.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: ReportsCommon,
    },
    /// Run a quarantined input through intake again (DKIM not required unless asked).
    Release {
        /// The entry's id (from `stsward reports invalid`).
        #[arg(value_name = "ID")]
        id: i64,
        /// Require a valid DKIM signature this time.
        #[arg(long)]
        require_dkim: bool,
        #[command(flatten)]
        common: ReportsCommon,
    },
    /// Delete raw inputs and failure details older than AGE; rollups (summaries) stay.
    Prune {
        /// The age: 90d, 12w, ... (default: `reports.retention_days` of the configuration).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        #[command(flatten)]
        common: ReportsCommon,
    },
}

/// Validates `stsward reports …`.
pub fn reports_command(r: ReportsCommand) -> anyhow::Result<crate::cmd::reports::Reports> {
    use crate::cmd::reports::{Reports, ReportsAction, parse_age};
    let age = |flag: &str, s: &str| parse_age(s).map_err(|e| anyhow::anyhow!("{flag}: {e}"));
    let (common, action) = match r {
        ReportsCommand::Import {
            paths,
            require_dkim,
            batch,
            common,
        } => (
            common,
            ReportsAction::Import {
                paths,
                require_dkim,
                batch,
            },
        ),
        ReportsCommand::Summary {
            domain,
            since,
            common,
        } => {
            let since_secs = age("--since", &since)?;
            (common, ReportsAction::Summary { domain, since_secs })
        }
        ReportsCommand::Invalid { all, common } => (common, ReportsAction::Invalid { all }),
        ReportsCommand::Release {
            id,
            require_dkim,
            common,
        } => (common, ReportsAction::Release { id, require_dkim }),
        ReportsCommand::Prune { older_than, common } => {
            let older_than_secs = older_than.map(|o| age("--older-than", &o)).transpose()?;
            (common, ReportsAction::Prune { older_than_secs })
        }
    };
    Ok(Reports {
        config: common.config,
        store: common.store,
        json: common.json,
        action,
    })
}

/// What every `stsward tenant|user|token` command takes.
#[derive(Debug, Args)]
pub struct AccessCommon {
    /// The configuration file (TOML; every key in docs/configuration.md), for `store.url`.
    #[arg(long, value_name = "FILE", env = "STSWARD_CONFIG")]
    pub config: Option<PathBuf>,

    /// The database: sqlite://PATH or postgres://… (replaces `store.url`).
    #[arg(long, value_name = "URL", env = "STSWARD_STORE")]
    pub store: Option<String>,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
Exit status: 0 done, 1 refused (invalid name, name taken), 2 could not run (configuration,
database).")]
pub enum TenantCommand {
    /// Create a tenant.
    #[command(after_help = "\
Examples:
  stsward tenant add acme
  stsward user add ops@acme --tenant acme
  stsward token create --tenant acme --name 'acme provisioning'")]
    Add {
        /// Its name: a-z, 0-9, '.', '_', '@', '-', at most 64 characters.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        common: AccessCommon,
    },
    /// List every tenant.
    List {
        #[command(flatten)]
        common: AccessCommon,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
Exit status: 0 done, 1 refused (invalid name or password, name taken, no such user or
tenant), 2 could not run (configuration, database, no terminal for the password).")]
pub enum UserCommand {
    /// Create a user. The password is asked on the terminal (without echo), or read from
    /// standard input with --password-stdin; it is never an argument.
    #[command(after_help = "\
Examples:
  stsward user add root --admin                  an install admin (every tenant)
  stsward user add ops@acme --tenant acme        a user of tenant acme
  printf '%s\\n' \"$PASSWORD\" | stsward user add ci --tenant acme --password-stdin")]
    Add {
        /// The user's name (unique across the install): a-z, 0-9, '.', '_', '@', '-'.
        #[arg(value_name = "NAME")]
        name: String,
        /// The tenant the user belongs to. Without it, --admin makes an install admin and
        /// otherwise the user belongs to the default tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// An admin: of the tenant with --tenant, of the whole install without.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        common: AccessCommon,
    },
    /// List users: every user, or those of one tenant.
    List {
        /// Only this tenant's users.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        #[command(flatten)]
        common: AccessCommon,
    },
    /// Disable a user: it can no longer log in (nothing is deleted).
    Disable {
        /// The user's name.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        common: AccessCommon,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
Exit status: 0 done, 1 refused (invalid name, no such tenant or token), 2 could not run
(configuration, database).")]
pub enum TokenCommand {
    /// Create a token for a tenant and print it, once: only its digest is stored.
    #[command(after_help = "\
Examples:
  stsward token create --tenant acme --name 'acme provisioning'
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8480/api/v1/domains")]
    Create {
        /// The tenant the token acts for.
        #[arg(long, value_name = "TENANT", default_value = "default")]
        tenant: String,
        /// What the token is for (shown in lists).
        #[arg(long, value_name = "NAME")]
        name: String,
        #[command(flatten)]
        common: AccessCommon,
    },
    /// List a tenant's tokens (prefix, name, created, last used, revoked).
    List {
        /// The tenant.
        #[arg(long, value_name = "TENANT", default_value = "default")]
        tenant: String,
        #[command(flatten)]
        common: AccessCommon,
    },
    /// Revoke a token of a tenant: it is refused from then on.
    Revoke {
        /// The token's id (from `stsward token list`).
        #[arg(value_name = "ID")]
        id: i64,
        /// The tenant the token belongs to.
        #[arg(long, value_name = "TENANT", default_value = "default")]
        tenant: String,
        #[command(flatten)]
        common: AccessCommon,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented stsward.toml with every key and its default.
    #[command(after_help = "\
Examples:
  stsward config init                      # print it
  stsward config init --out /etc/stsward/stsward.toml

Exit status: 0 written, 2 when FILE exists (without --force) or cannot be written.")]
    Init {
        /// Write it to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite FILE when it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Check a stsward.toml, with the environment's overrides, as `stsward serve` would.
    #[command(after_help = "\
Examples:
  stsward config check /etc/stsward/stsward.toml
  STSWARD_STORE_URL=postgres://db/stsward stsward config check stsward.toml --json

Exit status: 0 valid, 1 invalid (each error names the key and the reason), 2 when FILE cannot
be read.")]
    Check {
        /// The file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
