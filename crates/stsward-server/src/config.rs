//! The `stsward.toml` that `stsward serve` and `stsward domain` read (TOML, parsed once),
//! and the environment variables that override its keys.
//!
//! Every key has a default. `docs/configuration.md` documents each key with its default and
//! its variable, and [`TEMPLATE`] (what `stsward config init` writes) lists them all; tests
//! hold both to the structs here. Unknown keys are errors, and every error names the key.
//!
//! Environment overrides (see [`stsward_config::layers`]): one variable per key,
//! [`ENV_PREFIX`] + the key's path upper-cased with `.` → `_` (`store.url` →
//! `STSWARD_STORE_URL`), applied over the file before validation.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stsward_config::{Invalid, Keys, Layers, Loaded};
use stsward_proto::tlsrpt::RuaUri;
use thiserror::Error;

use crate::domains::names::domain_name;

mod alerts;
use crate::intake::smtp::{ReportRecipients, SmtpLimits, SmtpSettings};
pub use alerts::{AlertSmtpSection, AlertsSection, WebhookFormat, WebhookSection};

/// Longest configuration file read, in bytes: a config is a few kilobytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The commented `stsward.toml` that `stsward config init` writes: every key with a one-line
/// comment and its default, commented out where the default is no value.
pub const TEMPLATE: &str = include_str!("config/stsward.toml");

/// The prefix of the variables that override keys.
pub const ENV_PREFIX: &str = "STSWARD_";

/// Variables with [`ENV_PREFIX`] that are no key of `stsward.toml`, and are never reported as
/// unknown: the command line's (`--config`, `--store`), and those of the test and benchmark
/// harnesses (`STSWARD_BIN` and so on). The resolver's file has its own prefix,
/// `STSWARD_RESOLVE_`.
pub const ENV_LAYERS: Layers<'static> = Layers {
    prefix: ENV_PREFIX,
    allowed: &[
        "STSWARD_CONFIG",
        "STSWARD_STORE",
        "STSWARD_BIN",
        "STSWARD_ADDR",
        "STSWARD_CORPUS",
        "STSWARD_PG_BINDIR",
        "STSWARD_PEBBLE",
        "STSWARD_UNBOUND",
        "STSWARD_CHROMIUM",
    ],
    others: &["STSWARD_RESOLVE_"],
};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// `[listen]`.
    pub listen: ListenSection,
    /// `[hosting]`.
    pub hosting: HostingSection,
    /// `[acme]`: obtain certificates over ACME.
    pub acme: Option<AcmeSection>,
    /// `[tls]`: one static certificate (self-hosters).
    pub tls: Option<TlsSection>,
    /// `[store]`.
    pub store: StoreSection,
    /// `[api]`.
    pub api: ApiSection,
    /// `[keys]`.
    pub keys: KeysSection,
    /// `[replicas]`: how `stsward serve` notices changes and agrees with other replicas.
    pub replicas: ReplicasSection,
    /// `[intake_smtp]`: the SMTP listener for TLS-RPT reports.
    pub intake_smtp: IntakeSmtpSection,
    /// `[scheduler]`: MX follow, the own-TXT watch, and the fetch-count flush.
    pub scheduler: SchedulerSection,
    /// `[intake_https]`: TLS-RPT reports by HTTPS POST (RFC 8460 §5.4).
    pub intake_https: IntakeHttpsSection,
    /// `[intake_imap]`: TLS-RPT report e-mails read from an IMAP mailbox.
    pub intake_imap: Option<IntakeImapSection>,
    /// `[reports]`: received TLS-RPT reports (docs/reports.md).
    pub reports: ReportsSection,
    /// `[checks]`: checks that tenants run over the API (docs/api.md).
    pub checks: ChecksSection,
    /// `[readiness]`: the criteria of the verdict on moving to `enforce` (docs/api.md).
    pub readiness: ReadinessSection,
    /// `[alerts]`: scheduled re-checks, alert rules and their delivery (docs/alerts.md).
    pub alerts: AlertsSection,
    /// `[metrics]`: the Prometheus endpoint (docs/serve.md).
    pub metrics: MetricsSection,
    /// `[web]`: the dashboard on the REST API's listener (docs/dashboard.md).
    pub web: WebSection,
}

/// `[metrics]`: `GET /metrics` in the OpenMetrics text format, without a token (issue 9).
/// It is served by the REST API's server, so it needs `[api]` to have a token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/metrics` on the REST API's listeners too (default true).
    pub on_api: bool,
    /// Addresses of their own that serve `/metrics` only (e.g. on a monitoring network);
    /// default none.
    pub listen: Vec<SocketAddr>,
    /// Days of reports and policy fetches the gauges cover, today included (default 7).
    pub window_days: u32,
    /// Seconds one scrape's answer is reused (default 10; 0: never).
    pub cache_seconds: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            on_api: true,
            listen: Vec::new(),
            window_days: 7,
            cache_seconds: 10,
        }
    }
}

/// `[web]`: the dashboard, served on `[api] listen` beside the REST API (issue 9).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// Serve the dashboard (it runs only where the REST API runs).
    pub enabled: bool,
    /// Mark the session cookie `Secure` (and name it with the `__Host-` prefix). Turn off
    /// only for a lab where every `api.listen` address is loopback and there is no TLS.
    pub secure_cookies: bool,
    /// How long a session lives after login however busy it is, in seconds.
    pub session_lifetime: u64,
    /// How long a session may sit unused before it ends, in seconds.
    pub session_idle: u64,
}

impl Default for WebSection {
    fn default() -> Self {
        WebSection {
            enabled: true,
            secure_cookies: true,
            session_lifetime: 12 * 3600,
            session_idle: 30 * 60,
        }
    }
}

impl WebSection {
    /// Checks the section against the API's listen addresses: plain cookies only on
    /// loopback, lifetimes that are not zero and an idle time within the lifetime.
    pub fn validate(&self, listen: &[SocketAddr]) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if !self.secure_cookies && listen.iter().any(|a| !a.ip().is_loopback()) {
            return invalid(
                "web.secure_cookies",
                "may be false only when every api.listen address is loopback",
            );
        }
        if self.session_lifetime == 0 || self.session_lifetime > 30 * 86_400 {
            return invalid(
                "web.session_lifetime",
                "must be between 1 second and 30 days",
            );
        }
        if self.session_idle == 0 || self.session_idle > self.session_lifetime {
            return invalid(
                "web.session_idle",
                "must be at least 1 second and at most web.session_lifetime",
            );
        }
        Ok(())
    }
}

/// `[readiness]`: when a domain in `testing` counts as ready for `enforce` (issue 9). RFC
/// 8461 §5: in `enforce`, senders "MUST NOT deliver the message to hosts that fail MX
/// matching or certificate validation or that do not support STARTTLS"; `testing` exists to
/// find those failures first, through the reports of RFC 8460.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessSection {
    /// Days the policy must have been in `testing` (default 30).
    pub min_days_testing: u32,
    /// Days over which reports and sending organisations are counted (default 30).
    pub window_days: u32,
    /// Distinct sending organisations that must have reported in the window (default 2).
    pub min_organizations: u32,
    /// Days over which the session success rate is measured (default 14).
    pub success_days: u32,
    /// The lowest session success rate, in percent (default 99.5).
    pub min_success_rate: Percent,
    /// Days in which no failure that `enforce` would turn into lost mail may be reported
    /// (`sts-*`, `certificate-*`, `starttls-not-supported`; default 7).
    pub failure_days: u32,
    /// Days in which senders must have fetched the policy (default 7).
    pub fetch_days: u32,
}

impl Default for ReadinessSection {
    fn default() -> Self {
        ReadinessSection {
            min_days_testing: 30,
            window_days: 30,
            min_organizations: 2,
            success_days: 14,
            min_success_rate: Percent::from_hundredths(9950),
            failure_days: 7,
            fetch_days: 7,
        }
    }
}

impl ReadinessSection {
    /// Refuses windows of zero days (nothing could ever pass) and of more than ten years.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, days) in [
            ("readiness.window_days", self.window_days),
            ("readiness.success_days", self.success_days),
            ("readiness.failure_days", self.failure_days),
            ("readiness.fetch_days", self.fetch_days),
        ] {
            if !(1..=3660).contains(&days) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{days} is not a number of days from 1 to 3660"),
                });
            }
        }
        Ok(())
    }
}

/// A percentage from 0 to 100 with two decimals (`99.5`), kept as hundredths of a percent
/// so that the configuration stays comparable (`Eq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(u32);

impl Percent {
    /// `hundredths` / 100 percent, at most 100 %.
    pub const fn from_hundredths(hundredths: u32) -> Percent {
        Percent(if hundredths > 10_000 {
            10_000
        } else {
            hundredths
        })
    }

    /// Hundredths of a percent, 0 to 10,000.
    pub const fn hundredths(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, part) = (self.0 / 100, self.0 % 100);
        match part {
            0 => write!(f, "{whole}%"),
            p if p % 10 == 0 => write!(f, "{whole}.{}%", p / 10),
            p => write!(f, "{whole}.{p:02}%"),
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        if !(0.0..=100.0).contains(&value) {
            return Err(serde::de::Error::custom(format!(
                "{value} is not a percentage from 0 to 100"
            )));
        }
        let hundredths = (value * 100.0).round();
        if (value * 100.0 - hundredths).abs() > 1e-6 {
            return Err(serde::de::Error::custom(format!(
                "{value} has more than two decimals"
            )));
        }
        // In range by the check above: 0 to 10,000.
        Ok(Percent::from_hundredths(hundredths as u32))
    }
}

/// `[checks]`: checks a tenant asks for (`POST /api/v1/domains/{domain}/checks`). They never
/// connect to loopback, private, link-local or other non-global addresses (issue 9, no
/// server-side request forgery) unless a range is listed in `allow_ranges`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksSection {
    /// Non-global ranges a tenant's check may still connect to, in CIDR notation
    /// (`"127.0.0.0/8"` for a lab). Default: none.
    pub allow_ranges: Vec<String>,
    /// Seconds one check may take, everything included (default 20).
    pub timeout: u64,
    /// Checks one tenant may run at once; more get 429 (default 2).
    pub max_per_tenant: usize,
    /// Checks all tenants together may run at once; more get 503 (default 8).
    pub max_concurrent: usize,
    /// Past runs kept per domain; older ones are deleted (default 100).
    pub history: u32,
    /// The DNS server (`ADDR:PORT`) checks ask; default: the system's resolvers.
    pub resolver: Option<SocketAddr>,
    /// Extra trust anchors (PEM) for policy hosts and MX certificates, besides the web PKI.
    pub ca_file: Option<PathBuf>,
    /// The SMTP port probed on MX hosts (25; other values only for labs).
    pub smtp_port: u16,
    /// The HTTPS port of policy hosts (443; other values only for labs).
    pub https_port: u16,
}

impl Default for ChecksSection {
    fn default() -> Self {
        ChecksSection {
            allow_ranges: Vec::new(),
            timeout: 20,
            max_per_tenant: 2,
            max_concurrent: 8,
            history: 100,
            resolver: None,
            ca_file: None,
            smtp_port: 25,
            https_port: 443,
        }
    }
}

impl ChecksSection {
    /// The parsed `allow_ranges`; an entry that does not parse is named in the error.
    pub fn allowed(&self) -> Result<Vec<stsward_net::address_policy::Cidr>, ConfigError> {
        self.allow_ranges
            .iter()
            .map(|r| {
                r.parse()
                    .map_err(
                        |e: stsward_net::address_policy::CidrError| ConfigError::Invalid {
                            key: "checks.allow_ranges",
                            reason: format!("{r:?}: {e}"),
                        },
                    )
            })
            .collect()
    }
}

/// `[intake_https]`: the report route on the policy host's TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeHttpsSection {
    /// Whether the route is served (default false).
    pub enabled: bool,
    /// Its path (default `/tlsrpt`): `rua=https://<policy host>/tlsrpt`.
    pub path: String,
    /// The largest body as sent, in octets (default 10 MiB); larger gets 413.
    pub max_body_bytes: u64,
    /// The largest size a gzip body may inflate to, in octets (default 16 MiB).
    pub max_decompressed_bytes: u64,
    /// Seconds for the whole body to arrive (default 30); slower gets 408.
    pub body_timeout: u64,
    /// POSTs read and stored at once (default 16); more get 503 with `Retry-After`.
    pub max_concurrent: usize,
}

impl Default for IntakeHttpsSection {
    fn default() -> Self {
        let limits = crate::intake::https::HttpsIntakeLimits::default();
        IntakeHttpsSection {
            enabled: false,
            path: crate::intake::https::DEFAULT_PATH.into(),
            max_body_bytes: limits.max_body_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
            body_timeout: limits.body_timeout.as_secs(),
            max_concurrent: limits.max_concurrent,
        }
    }
}

impl IntakeHttpsSection {
    /// The route to attach to the policy host with
    /// [`crate::host::HostServer::with_https_intake`], handing reports to `sink`; `None`
    /// when the section is not enabled.
    pub fn intake(
        &self,
        sink: std::sync::Arc<dyn crate::intake::ReportSink>,
    ) -> Result<Option<crate::intake::https::HttpsIntake>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        crate::intake::https::HttpsIntake::new(&self.path, self.limits(), sink)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                key: "intake_https.path",
                reason: e.to_string(),
            })
    }

    /// The route's limits.
    pub fn limits(&self) -> crate::intake::https::HttpsIntakeLimits {
        crate::intake::https::HttpsIntakeLimits {
            max_body_bytes: self.max_body_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            body_timeout: std::time::Duration::from_secs(self.body_timeout),
            max_concurrent: self.max_concurrent,
        }
    }
}

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum ImapTlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    #[serde(rename = "implicit")]
    Implicit,
    /// Plain, then `STARTTLS` before logging in (port 143).
    #[serde(rename = "starttls")]
    Starttls,
    /// No TLS at all: refused unless the host is a loopback address (tests).
    #[serde(rename = "plain")]
    Plain,
}

/// `[intake_imap]`: the mailbox polled for report e-mails.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeImapSection {
    /// The server's host name (also the name its certificate must carry) or address.
    pub host: String,
    /// Its port (default 993 for implicit TLS, 143 otherwise).
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit` (default), `starttls`, or `plain` (loopback only).
    #[serde(default)]
    pub tls: ImapTlsMode,
    /// PEM roots trusted for the server's certificate (default: the web PKI).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The login name.
    pub user: String,
    /// The password itself.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (surrounding whitespace ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The mailbox read (default `INBOX`).
    #[serde(default = "default_inbox")]
    pub mailbox: String,
    /// Where stored reports are moved (default `Processed`).
    #[serde(default = "default_processed")]
    pub processed_folder: String,
    /// Where quarantined input is moved (default `Invalid`).
    #[serde(default = "default_invalid")]
    pub invalid_folder: String,
    /// Seconds between rounds (default 300).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: u64,
    /// Seconds any one network wait may take (default 30).
    #[serde(default = "default_imap_timeout")]
    pub timeout: u64,
    /// The largest message fetched, in octets (default 10 MiB); larger ones go to the invalid
    /// folder unread.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: u64,
    /// Quarantine reports without a valid DKIM signature by the reporting domain (RFC 8460
    /// §3; default true).
    #[serde(default = "default_true")]
    pub require_dkim: bool,
}

fn default_inbox() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_invalid() -> String {
    "Invalid".into()
}
fn default_poll_interval() -> u64 {
    300
}
fn default_imap_timeout() -> u64 {
    30
}
fn default_max_message() -> u64 {
    10 * 1024 * 1024
}
fn default_true() -> bool {
    true
}

impl IntakeImapSection {
    /// The poller's settings, with the password read from `password_file` when that is how
    /// it is given.
    pub fn settings(&self) -> Result<crate::intake::imap::ImapSettings, ConfigError> {
        let password = match (&self.password, &self.password_file) {
            (Some(p), None) => p.clone(),
            (None, Some(path)) => {
                let text = read_bounded(path, 4096)?;
                let p = text.trim();
                if p.is_empty() {
                    return Err(ConfigError::Invalid {
                        key: "intake_imap.password_file",
                        reason: format!("{} is empty", path.display()),
                    });
                }
                Secret(p.to_owned())
            }
            _ => {
                return Err(ConfigError::Invalid {
                    key: "intake_imap.password",
                    reason: "set exactly one of password and password_file".into(),
                });
            }
        };
        let port = self.port.unwrap_or(match self.tls {
            ImapTlsMode::Implicit => 993,
            ImapTlsMode::Starttls | ImapTlsMode::Plain => 143,
        });
        Ok(crate::intake::imap::ImapSettings {
            host: self.host.clone(),
            port,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            user: self.user.clone(),
            password,
            mailbox: self.mailbox.clone(),
            processed_folder: self.processed_folder.clone(),
            invalid_folder: self.invalid_folder.clone(),
            poll_interval: std::time::Duration::from_secs(self.poll_interval),
            timeout: std::time::Duration::from_secs(self.timeout),
            max_message_bytes: self.max_message_bytes,
            require_dkim: self.require_dkim,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.host.trim().is_empty() {
            return invalid("intake_imap.host", "is empty".into());
        }
        if self.tls == ImapTlsMode::Plain && !is_loopback_host(&self.host) {
            return invalid(
                "intake_imap.tls",
                format!(
                    "\"plain\" sends the password in the clear; it is allowed only for a \
                     loopback host, not {:?}",
                    self.host
                ),
            );
        }
        if self.user.is_empty() {
            return invalid("intake_imap.user", "is empty".into());
        }
        if self.password.is_some() == self.password_file.is_some() {
            return invalid(
                "intake_imap.password",
                "set exactly one of password and password_file".into(),
            );
        }
        for (key, name) in [
            ("intake_imap.mailbox", &self.mailbox),
            ("intake_imap.processed_folder", &self.processed_folder),
            ("intake_imap.invalid_folder", &self.invalid_folder),
        ] {
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\')
            {
                return invalid(key, format!("{name:?} is not a usable mailbox name"));
            }
        }
        if self.processed_folder == self.mailbox
            || self.invalid_folder == self.mailbox
            || self.processed_folder == self.invalid_folder
        {
            return invalid(
                "intake_imap.processed_folder",
                "mailbox, processed_folder and invalid_folder must all differ".into(),
            );
        }
        if !(1..=86_400).contains(&self.poll_interval) {
            return invalid(
                "intake_imap.poll_interval",
                format!("{} is not between 1 and 86400 seconds", self.poll_interval),
            );
        }
        if !(1..=600).contains(&self.timeout) {
            return invalid(
                "intake_imap.timeout",
                format!("{} is not between 1 and 600 seconds", self.timeout),
            );
        }
        if self.max_message_bytes == 0 {
            return invalid("intake_imap.max_message_bytes", "must be at least 1".into());
        }
        Ok(())
    }
}

/// `localhost` or a loopback address.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `[intake_smtp]`: the receive-only SMTP listener for TLS-RPT report e-mails (RFC 8460
/// §5.3). It runs only when `report_addresses` or `report_domains` names something to
/// accept. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeSmtpSection {
    /// Where it listens (default `0.0.0.0:25` and `[::]:25`).
    pub listen: Vec<SocketAddr>,
    /// The name in the greeting and the EHLO reply (default: `hosting.policy_host`).
    pub hostname: Option<String>,
    /// Mailboxes accepted at `RCPT TO` (the `rua=mailto:` addresses, RFC 8460 §3).
    pub report_addresses: Vec<String>,
    /// Domains whose every mailbox is accepted.
    pub report_domains: Vec<String>,
    /// The largest message in octets, announced as `SIZE` (default 10 MiB).
    pub max_message_bytes: usize,
    /// The octets all messages being received may hold together; a message that finds no
    /// room gets 452 and is retried later (default 128 MiB).
    pub max_buffered_bytes: usize,
    /// Recipients per message (default 100).
    pub max_recipients: usize,
    /// Sessions at once; over it a connection gets 421 (default 1000).
    pub max_connections: usize,
    /// The wait for each command, read and write (default 300).
    pub command_timeout: u64,
    /// The whole DATA block (default 600).
    pub data_timeout: u64,
    /// The whole session (default 1800).
    pub session_timeout: u64,
    /// The store's answer to one message; later, the sender gets 451 (default 300).
    pub submit_timeout: u64,
    /// Where the STARTTLS certificate comes from (default `off`: STARTTLS not offered).
    pub starttls: StartTlsSource,
    /// With `starttls = "files"`: the chain, leaf first (PEM).
    pub cert_file: Option<PathBuf>,
    /// With `starttls = "files"`: the private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Quarantine report e-mails without a valid DKIM signature of the reporting domain
    /// (RFC 8460 §3) instead of storing them (default true).
    pub require_dkim: bool,
}

impl Default for IntakeSmtpSection {
    fn default() -> Self {
        let limits = crate::intake::smtp::SmtpLimits::default();
        IntakeSmtpSection {
            listen: both_families(25),
            hostname: None,
            report_addresses: Vec::new(),
            report_domains: Vec::new(),
            max_message_bytes: limits.max_message_bytes,
            max_buffered_bytes: limits.max_buffered_bytes,
            max_recipients: limits.max_recipients,
            max_connections: limits.max_connections,
            command_timeout: limits.command_timeout.as_secs(),
            data_timeout: limits.data_timeout.as_secs(),
            session_timeout: limits.session_timeout.as_secs(),
            submit_timeout: limits.submit_timeout.as_secs(),
            starttls: StartTlsSource::Off,
            cert_file: None,
            key_file: None,
            require_dkim: true,
        }
    }
}

/// Where the SMTP listener's STARTTLS certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartTlsSource {
    /// STARTTLS is not offered.
    #[default]
    Off,
    /// The certificate stsward keeps in its store for `intake_smtp.hostname`.
    Store,
    /// `intake_smtp.cert_file` and `intake_smtp.key_file`.
    Files,
}

/// `[scheduler]`: the scheduled work of `stsward serve` (see [`crate::scheduler`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSection {
    /// Whether this replica runs scheduled rounds (default true). Fetch counts are flushed
    /// either way.
    pub enabled: bool,
    /// Seconds between two rounds of one domain: MX follow and own-TXT watch (default 3600).
    pub check_interval: u64,
    /// Domains checked at once by this replica, each with its own DNS lookups (default 16).
    pub concurrency: usize,
    /// Domains claimed per wake-up at most (default 500).
    pub batch: u32,
    /// How often the scheduler wakes up, in milliseconds (default 1000).
    pub tick_ms: u64,
    /// Seconds between two flushes of the policy fetch counts to the store (default 60).
    pub fetch_flush_interval: u64,
    /// Days of fetch counts kept in the store (default 400).
    pub fetch_retention_days: u32,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        SchedulerSection {
            enabled: true,
            check_interval: 3600,
            concurrency: 16,
            batch: 500,
            tick_ms: 1000,
            fetch_flush_interval: 60,
            fetch_retention_days: 400,
        }
    }
}

/// `[reports]`: received TLS-RPT reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSection {
    /// Raw inputs and failure details older than this many days are pruned (`stsward
    /// reports prune`, and `stsward serve` once a day); reports and daily rollups are kept.
    /// `None`: kept for ever.
    pub retention_days: Option<u32>,
    /// The DNS server (`ADDR:PORT`) that DKIM keys of report e-mails are looked up at
    /// (RFC 8460 §3); default: the system's resolvers.
    pub dkim_resolver: Option<SocketAddr>,
    /// Seconds for one DKIM key lookup (default 10).
    pub dkim_timeout: u64,
}

impl Default for ReportsSection {
    fn default() -> Self {
        ReportsSection {
            retention_days: None,
            dkim_resolver: None,
            dkim_timeout: 10,
        }
    }
}

/// `[replicas]`: change propagation (RFC 8461 §8.1 ordering across replicas).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasSection {
    /// How often the store is asked for changes, in milliseconds (default 200).
    pub poll_interval_ms: u64,
    /// Seconds after its last heartbeat at which a replica stops counting: the DNS then
    /// publishes a change without waiting for it (default 10).
    pub heartbeat_expiry: u64,
}

impl Default for ReplicasSection {
    fn default() -> Self {
        ReplicasSection {
            poll_interval_ms: 200,
            heartbeat_expiry: 10,
        }
    }
}

/// `[listen]`: IPv4 and IPv6 addresses of each role; high ports for unprivileged tests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSection {
    /// The HTTPS policy host (default `0.0.0.0:443` and `[::]:443`).
    pub https: Vec<SocketAddr>,
    /// HTTP, for ACME HTTP-01 challenges (default port 80).
    pub http: Vec<SocketAddr>,
    /// The authoritative DNS, UDP and TCP (default port 53).
    pub dns: Vec<SocketAddr>,
}

fn both_families(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::from(([0u16; 8], port)),
    ]
}

impl Default for ListenSection {
    fn default() -> Self {
        ListenSection {
            https: both_families(443),
            http: both_families(80),
            dns: both_families(53),
        }
    }
}

/// `[hosting]`: the names customers point at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostingSection {
    /// The zone delegated to stsward: `_mta-sts.<D>.<zone>` and `_smtp._tls.<D>.<zone>` live
    /// there. Normalised to lowercase A-labels without the trailing dot by
    /// [`ServeConfig::validate`].
    pub zone: Option<String>,
    /// The canonical name customers' `mta-sts.<D>` CNAME to.
    pub policy_host: Option<String>,
    /// The A/AAAA addresses of this service (for `policy_host`, and for customers who use
    /// addresses instead of a CNAME).
    pub policy_host_addrs: Vec<IpAddr>,
    /// The zone's name servers (NS), with their addresses.
    pub nameservers: Vec<NameServer>,
    /// TTL of the TXT records in the zone, in seconds (default 300: a policy change reaches
    /// senders quickly, RFC 8461 §3.1).
    pub txt_ttl: u32,
    /// The default `rua` published at `_smtp._tls.<D>.<zone>` (RFC 8460 §3); a domain may
    /// override it.
    pub tlsrpt_rua: Option<String>,
}

impl Default for HostingSection {
    fn default() -> Self {
        HostingSection {
            zone: None,
            policy_host: None,
            policy_host_addrs: Vec::new(),
            nameservers: Vec::new(),
            txt_ttl: 300,
            tlsrpt_rua: None,
        }
    }
}

/// One `[[hosting.nameservers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameServer {
    /// Its host name.
    pub name: String,
    /// Its addresses (glue when it is inside the zone).
    #[serde(default)]
    pub addrs: Vec<IpAddr>,
}

/// `[acme]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// The CA's directory URL.
    pub directory: String,
    /// Contact URIs given to the CA (`mailto:…`).
    #[serde(default)]
    pub contact: Vec<String>,
    /// The challenge tried first; the other is the fallback (default `http-01`).
    #[serde(default)]
    pub challenge: Challenge,
    /// PEM roots trusted for the CA's own HTTPS, for a private CA (step-ca, Pebble); the web
    /// PKI when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The ACME challenge type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Challenge {
    /// RFC 8555 §8.3, on the HTTP listener.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737, on the HTTPS listener.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// `[tls]`: a static certificate and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH` (default `sqlite://stsward.db`) or `postgres://…`.
    pub url: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: "sqlite://stsward.db".into(),
        }
    }
}

/// `[api]`: where the REST API listens, and its bearer token, inline or in a file (not both).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// The REST API's addresses (default `127.0.0.1:8480`: loopback only, plain HTTP; put it
    /// behind TLS before listening anywhere else).
    pub listen: Vec<SocketAddr>,
    /// The token itself.
    pub token: Option<Secret>,
    /// A file holding the token (surrounding whitespace ignored).
    pub token_file: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8480))],
            token: None,
            token_file: None,
        }
    }
}

/// `[keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// The file holding the key that encrypts private keys and ACME credentials at rest.
    pub secret_file: Option<PathBuf>,
    /// The DNSSEC key that signs the delegated zone (ECDSA P-256, PKCS#8, PEM or DER);
    /// created (mode 0600) when the file does not exist. Unset: the zone is not signed.
    pub dnssec_key_file: Option<PathBuf>,
}

/// A secret string: compared and used, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML does not parse, has an unknown key or a wrong type (the message names the key
    /// and the line).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A value of the file or of an environment override is refused: where it came from (the
    /// file's line, or the variable), the key and why.
    #[error(transparent)]
    Layered(#[from] stsward_config::Problem),
    /// The keys could not be traced from the structs (a bug, caught by the tests).
    #[error(transparent)]
    Keys(#[from] stsward_config::TraceError),
    /// A value is not allowed.
    #[error("{key}: {reason}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl std::str::FromStr for ServeConfig {
    type Err = ConfigError;

    /// Parses and validates (see [`ServeConfig::validate`]); names are normalised.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut cfg: ServeConfig = toml::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads a small file, refusing one over `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<String, ConfigError> {
    use std::io::Read;
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(max + 1).read_to_string(&mut text).map_err(read)?;
    if text.len() as u64 > max {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

impl ServeConfig {
    /// Reads, parses and validates the file at `path`, without environment overrides. Errors
    /// name the file, the line and the key.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        Ok(Self::load_layered(Some(path), std::iter::empty())?.value)
    }

    /// Reads the file at `path` (`None`: the defaults), applies the overrides found in `env`
    /// (see [`ENV_LAYERS`]), and validates the result. Errors name where the refused value
    /// came from (the file's line, or the variable), the key and why.
    pub fn load_layered(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Loaded<ServeConfig>, ConfigError> {
        let text = match path {
            Some(p) => Some(read_bounded(p, MAX_CONFIG_BYTES)?),
            None => None,
        };
        let file = path.zip(text.as_deref());
        Ok(
            ENV_LAYERS.load(&Self::keys()?, file, env, |cfg: &mut ServeConfig| {
                cfg.validate().map_err(invalid)
            })?,
        )
    }

    /// Every key of the file, traced from these structs.
    pub fn keys() -> Result<Keys, ConfigError> {
        Ok(Keys::trace::<ServeConfig>()?)
    }

    /// Checks what serde cannot, and normalises host names to lowercase A-labels without the
    /// trailing dot. Whether the file is complete enough to serve is
    /// [`ServeConfig::validate_for_serving`].
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        let h = &mut self.hosting;
        for (key, name) in [
            ("hosting.zone", &mut h.zone),
            ("hosting.policy_host", &mut h.policy_host),
        ] {
            if let Some(n) = name {
                match domain_name(n) {
                    Ok(normal) => *n = normal,
                    Err(e) => return invalid(key, e.to_string()),
                }
            }
        }
        for ns in &mut h.nameservers {
            match domain_name(&ns.name) {
                Ok(normal) => ns.name = normal,
                Err(e) => return invalid("hosting.nameservers.name", e.to_string()),
            }
        }
        self.alerts.validate()?;
        let h = &mut self.hosting;
        if h.txt_ttl == 0 {
            return invalid("hosting.txt_ttl", "must be at least 1 second".into());
        }
        if let Some(rua) = &h.tlsrpt_rua {
            check_rua(rua).or_else(|reason| invalid("hosting.tlsrpt_rua", reason))?;
        }
        if self.acme.is_some() && self.tls.is_some() {
            return invalid(
                "acme",
                "[acme] and [tls] are both set; keep one (ACME, or static certificate files)"
                    .into(),
            );
        }
        if let Some(acme) = &self.acme
            && !acme.directory.starts_with("https://")
        {
            return invalid(
                "acme.directory",
                format!("{:?} is not an https:// URL", acme.directory),
            );
        }
        if self.api.token.is_some() && self.api.token_file.is_some() {
            return invalid(
                "api.token",
                "api.token and api.token_file are both set; keep one".into(),
            );
        }
        if self
            .api
            .token
            .as_ref()
            .is_some_and(|t| t.0.trim().is_empty())
        {
            return invalid("api.token", "is empty".into());
        }
        if self.store.url.trim().is_empty() {
            return invalid("store.url", "is empty".into());
        }
        if self.reports.retention_days == Some(0) {
            return invalid("reports.retention_days", "must be at least 1".into());
        }
        self.checks.allowed()?;
        self.readiness.check()?;
        if !(1..=3660).contains(&self.metrics.window_days) {
            return invalid(
                "metrics.window_days",
                format!(
                    "{} is not a number of days from 1 to 3660",
                    self.metrics.window_days
                ),
            );
        }
        if self.metrics.cache_seconds > 3600 {
            return invalid(
                "metrics.cache_seconds",
                format!("{} is more than an hour", self.metrics.cache_seconds),
            );
        }
        let c = &self.checks;
        if !(1..=25).contains(&c.timeout) {
            return invalid(
                "checks.timeout",
                format!(
                    "{} is not between 1 and 25 seconds (an API request is answered within 30)",
                    c.timeout
                ),
            );
        }
        for (key, n) in [
            ("checks.max_per_tenant", c.max_per_tenant),
            ("checks.max_concurrent", c.max_concurrent),
        ] {
            if !(1..=1000).contains(&n) {
                return invalid(key, format!("{n} is not between 1 and 1000"));
            }
        }
        if !(1..=10_000).contains(&c.history) {
            return invalid(
                "checks.history",
                format!("{} is not between 1 and 10000", c.history),
            );
        }
        if !(1..=120).contains(&self.reports.dkim_timeout) {
            return invalid(
                "reports.dkim_timeout",
                format!(
                    "{} is not between 1 and 120 seconds",
                    self.reports.dkim_timeout
                ),
            );
        }
        let r = &self.replicas;
        if !(10..=10_000).contains(&r.poll_interval_ms) {
            return invalid(
                "replicas.poll_interval_ms",
                format!("{} is not between 10 and 10000", r.poll_interval_ms),
            );
        }
        if r.heartbeat_expiry == 0
            || r.heartbeat_expiry > 3600
            || r.heartbeat_expiry.saturating_mul(1000) < r.poll_interval_ms.saturating_mul(3)
        {
            return invalid(
                "replicas.heartbeat_expiry",
                format!(
                    "{} s must be at most 3600 and at least three poll intervals",
                    r.heartbeat_expiry
                ),
            );
        }
        let sc = &self.scheduler;
        if !(10..=7 * 86_400).contains(&sc.check_interval) {
            return invalid(
                "scheduler.check_interval",
                format!("{} s is not between 10 and 604800", sc.check_interval),
            );
        }
        if !(1..=256).contains(&sc.concurrency) {
            return invalid(
                "scheduler.concurrency",
                format!("{} is not between 1 and 256", sc.concurrency),
            );
        }
        if !(1..=10_000).contains(&sc.batch) {
            return invalid(
                "scheduler.batch",
                format!("{} is not between 1 and 10000", sc.batch),
            );
        }
        if !(10..=60_000).contains(&sc.tick_ms) {
            return invalid(
                "scheduler.tick_ms",
                format!("{} is not between 10 and 60000", sc.tick_ms),
            );
        }
        if !(1..=3600).contains(&sc.fetch_flush_interval) {
            return invalid(
                "scheduler.fetch_flush_interval",
                format!("{} s is not between 1 and 3600", sc.fetch_flush_interval),
            );
        }
        if !(7..=3660).contains(&sc.fetch_retention_days) {
            return invalid(
                "scheduler.fetch_retention_days",
                format!("{} is not between 7 and 3660", sc.fetch_retention_days),
            );
        }
        let https = &self.intake_https;
        if let Err(e) = crate::intake::https::check_path(&https.path) {
            return invalid("intake_https.path", e.to_string());
        }
        if https.max_body_bytes == 0 || https.max_decompressed_bytes == 0 {
            return invalid(
                "intake_https.max_body_bytes",
                "max_body_bytes and max_decompressed_bytes must be at least 1".into(),
            );
        }
        if !(1..=3600).contains(&https.body_timeout) {
            return invalid(
                "intake_https.body_timeout",
                format!("{} is not between 1 and 3600 seconds", https.body_timeout),
            );
        }
        if !(1..=4096).contains(&https.max_concurrent) {
            return invalid(
                "intake_https.max_concurrent",
                format!("{} is not between 1 and 4096", https.max_concurrent),
            );
        }
        if let Some(imap) = &self.intake_imap {
            imap.validate()?;
        }
        self.validate_intake_smtp()
    }

    /// `[intake_smtp]`: names normalised, limits in range, TLS files only with `files`.
    fn validate_intake_smtp(&mut self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        let m = &mut self.intake_smtp;
        if let Some(h) = &mut m.hostname {
            match domain_name(h) {
                Ok(normal) => *h = normal,
                Err(e) => return invalid("intake_smtp.hostname", e.to_string()),
            }
        }
        if let Err(e) = ReportRecipients::new(&m.report_addresses, &[]) {
            return invalid("intake_smtp.report_addresses", e.to_string());
        }
        if let Err(e) = ReportRecipients::new(&[], &m.report_domains) {
            return invalid("intake_smtp.report_domains", e.to_string());
        }
        if !(1024..=1024 * 1024 * 1024).contains(&m.max_message_bytes) {
            return invalid(
                "intake_smtp.max_message_bytes",
                format!("{} is not between 1024 and 1 GiB", m.max_message_bytes),
            );
        }
        if m.max_buffered_bytes < m.max_message_bytes {
            return invalid(
                "intake_smtp.max_buffered_bytes",
                format!(
                    "{} is smaller than max_message_bytes ({})",
                    m.max_buffered_bytes, m.max_message_bytes
                ),
            );
        }
        // RFC 5321 §4.5.3.1.8 (paraphrase): at least 100 recipients must be accepted.
        if !(100..=10_000).contains(&m.max_recipients) {
            return invalid(
                "intake_smtp.max_recipients",
                format!("{} is not between 100 and 10000", m.max_recipients),
            );
        }
        if !(1..=1_000_000).contains(&m.max_connections) {
            return invalid(
                "intake_smtp.max_connections",
                format!("{} is not between 1 and 1000000", m.max_connections),
            );
        }
        for (key, secs) in [
            ("intake_smtp.command_timeout", m.command_timeout),
            ("intake_smtp.data_timeout", m.data_timeout),
            ("intake_smtp.session_timeout", m.session_timeout),
            ("intake_smtp.submit_timeout", m.submit_timeout),
        ] {
            if !(1..=86_400).contains(&secs) {
                return invalid(key, format!("{secs} s is not between 1 and 86400"));
            }
        }
        let files = m.starttls == StartTlsSource::Files;
        match (files, m.cert_file.is_some(), m.key_file.is_some()) {
            (true, true, true) | (false, false, false) => Ok(()),
            (true, _, _) => invalid(
                "intake_smtp.cert_file",
                "starttls = \"files\" needs both cert_file and key_file".into(),
            ),
            (false, _, _) => invalid(
                "intake_smtp.starttls",
                "cert_file and key_file are set but starttls is not \"files\"".into(),
            ),
        }
    }

    /// The SMTP intake's settings, or `None` when `[intake_smtp]` names no report address or
    /// domain (the listener then does not run). The host name defaults to
    /// `hosting.policy_host`.
    pub fn smtp_settings(&self) -> Result<Option<SmtpSettings>, ConfigError> {
        let m = &self.intake_smtp;
        let recipients =
            ReportRecipients::new(&m.report_addresses, &m.report_domains).map_err(|e| {
                ConfigError::Invalid {
                    key: "intake_smtp.report_addresses",
                    reason: e.to_string(),
                }
            })?;
        if recipients.is_empty() {
            return Ok(None);
        }
        let Some(hostname) = m
            .hostname
            .clone()
            .or_else(|| self.hosting.policy_host.clone())
        else {
            return Err(ConfigError::Invalid {
                key: "intake_smtp.hostname",
                reason: "is not set, and there is no hosting.policy_host to use instead".into(),
            });
        };
        let secs = std::time::Duration::from_secs;
        Ok(Some(SmtpSettings {
            hostname,
            recipients,
            require_dkim: m.require_dkim,
            limits: SmtpLimits {
                max_connections: m.max_connections,
                max_message_bytes: m.max_message_bytes,
                max_buffered_bytes: m.max_buffered_bytes,
                max_recipients: m.max_recipients,
                command_timeout: secs(m.command_timeout),
                data_timeout: secs(m.data_timeout),
                session_timeout: secs(m.session_timeout),
                submit_timeout: secs(m.submit_timeout),
                ..SmtpLimits::default()
            },
        }))
    }

    /// What `stsward serve` needs beyond [`ServeConfig::validate`]: the hosting names, a
    /// listener for each role, and exactly one of `[acme]` and `[tls]`.
    pub fn validate_for_serving(&self) -> Result<(), ConfigError> {
        let missing = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.acme.is_none() && self.tls.is_none() {
            return missing(
                "acme",
                "serving needs [acme] (certificates from a CA) or [tls] (certificate files)",
            );
        }
        if self.hosting.zone.is_none() {
            return missing("hosting.zone", "is not set: the zone delegated to stsward");
        }
        if self.hosting.policy_host.is_none() {
            return missing(
                "hosting.policy_host",
                "is not set: the name customers' mta-sts hosts CNAME to",
            );
        }
        if self.hosting.nameservers.is_empty() {
            return missing("hosting.nameservers", "the zone needs at least one NS");
        }
        if self.listen.https.is_empty() {
            return missing("listen.https", "no address to serve policies on");
        }
        if self.listen.dns.is_empty() {
            return missing("listen.dns", "no address to answer DNS on");
        }
        self.web.validate(&self.api.listen)
    }

    /// The REST API token: inline, or read from `api.token_file`; `None` when neither is set
    /// (the API is then off).
    pub fn api_token(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(t) = &self.api.token {
            return Ok(Some(t.clone()));
        }
        let Some(path) = &self.api.token_file else {
            return Ok(None);
        };
        let text = read_bounded(path, 4096)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ConfigError::Invalid {
                key: "api.token_file",
                reason: format!("{} is empty", path.display()),
            });
        }
        Ok(Some(Secret(token.to_owned())))
    }
}

impl ServeConfig {
    /// The key that seals private keys and ACME credentials at rest, read from
    /// `keys.secret_file`; `None` when it is not set.
    pub fn sealing_key(&self) -> Result<Option<crate::sealing::SealingKey>, ConfigError> {
        let Some(path) = &self.keys.secret_file else {
            return Ok(None);
        };
        let text = read_bounded(path, 4096)?;
        crate::sealing::SealingKey::from_hex(&text)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                key: "keys.secret_file",
                reason: format!("{}: {e}", path.display()),
            })
    }
}

/// A validation error as [`stsward_config`] locates it.
pub fn invalid(e: ConfigError) -> Invalid {
    match e {
        ConfigError::Invalid { key, reason } => Invalid {
            key: key.into(),
            reason,
        },
        other => Invalid {
            key: String::new(),
            reason: other.to_string(),
        },
    }
}

/// A `rua` list as RFC 8460 §3 writes it: one or more URIs separated by commas.
pub(crate) fn check_rua(rua: &str) -> Result<(), String> {
    if rua.trim().is_empty() {
        return Err("is empty".into());
    }
    for uri in rua.split(',') {
        uri.trim()
            .parse::<RuaUri>()
            .map_err(|e| format!("{uri:?} is not a TLS-RPT rua URI: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let cfg: ServeConfig = "".parse().expect("empty config");
        assert_eq!(cfg, ServeConfig::default());
        assert_eq!(cfg.store.url, "sqlite://stsward.db");
        assert_eq!(cfg.hosting.txt_ttl, 300);
        assert_eq!(
            cfg.listen.https,
            vec![
                "0.0.0.0:443".parse::<SocketAddr>().expect("v4"),
                "[::]:443".parse().expect("v6")
            ]
        );
        assert_eq!(cfg.listen.dns[1].port(), 53);
        assert_eq!(
            cfg.api.listen,
            vec![SocketAddr::from(([127, 0, 0, 1], 8480))]
        );
        assert!(cfg.acme.is_none() && cfg.tls.is_none());
        // Defaults are enough for `stsward domain`, not for serving.
        assert!(cfg.validate_for_serving().is_err());
    }

    #[test]
    fn web_settings_good_and_bad() {
        let loopback = [SocketAddr::from(([127, 0, 0, 1], 8480))];
        let public = [SocketAddr::from(([192, 0, 2, 1], 8480))];
        assert!(
            WebSection::default().validate(&public).is_ok(),
            "the defaults"
        );
        let plain = WebSection {
            secure_cookies: false,
            ..WebSection::default()
        };
        assert!(
            plain.validate(&loopback).is_ok(),
            "plain cookies on loopback"
        );
        let bad: &[(WebSection, &[SocketAddr], &str)] = &[
            (plain.clone(), &public, "web.secure_cookies"),
            (
                WebSection {
                    session_lifetime: 0,
                    ..WebSection::default()
                },
                &loopback,
                "web.session_lifetime",
            ),
            (
                WebSection {
                    session_idle: 50_000,
                    ..WebSection::default()
                },
                &loopback,
                "web.session_idle",
            ),
            (
                WebSection {
                    session_idle: 0,
                    ..WebSection::default()
                },
                &loopback,
                "web.session_idle",
            ),
        ];
        for (section, listen, key) in bad {
            match section.validate(listen) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, *key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    /// [`TEMPLATE`] with its commented-out keys uncommented (`## ` lines stay comments).
    fn uncommented_template() -> String {
        TEMPLATE
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The dotted keys of a parsed file: through sections and the first table of each array
    /// of tables, as [`ServeConfig::keys`] names them.
    fn keys_in(table: &toml::Table, prefix: &str, keys: &Keys, out: &mut Vec<String>) {
        for (name, value) in table {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match value {
                toml::Value::Table(t) if keys.is_table(&path) => keys_in(t, &path, keys, out),
                toml::Value::Array(items)
                    if keys
                        .get(&path)
                        .is_some_and(|k| k.kind == stsward_config::KeyKind::ArrayOfTables) =>
                {
                    out.push(path.clone());
                    if let Some(toml::Value::Table(t)) = items.first() {
                        keys_in(t, &path, keys, out);
                    }
                }
                _ => out.push(path),
            }
        }
    }

    /// The template lists every key with its default: as written it parses to exactly the
    /// defaults; uncommented, it has every key of the structs and no other, each line with its
    /// comment.
    #[test]
    fn the_template_is_the_defaults_and_has_every_key() {
        let cfg: ServeConfig = TEMPLATE.parse().expect("the template parses");
        assert_eq!(
            cfg,
            ServeConfig::default(),
            "the template's defaults drifted"
        );
        let uncommented = uncommented_template();
        // Raw parse: the template shows [acme] and [tls] side by side, which validate refuses.
        let all: ServeConfig = toml::from_str(&uncommented).expect("every commented key is real");
        assert!(all.acme.is_some() && all.tls.is_some() && all.intake_imap.is_some());
        let table: toml::Table = toml::from_str(&uncommented).expect("parses");
        let keys = ServeConfig::keys().expect("traced");
        let mut found = Vec::new();
        keys_in(&table, "", &keys, &mut found);
        let mut code: Vec<String> = keys.iter().map(|k| k.path.clone()).collect();
        found.sort();
        code.sort();
        assert_eq!(found, code, "the template's keys are not the structs' keys");
        for line in uncommented.lines() {
            let line = line.trim_start();
            if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
                continue;
            }
            assert!(
                line.contains(" # "),
                "no comment on the template's line {line:?}"
            );
        }
    }

    /// The template's value of each key, as written (commented out or not): `(value,
    /// commented)`.
    fn template_values() -> std::collections::BTreeMap<String, (String, bool)> {
        let mut values = std::collections::BTreeMap::new();
        let mut section = String::new();
        for raw in TEMPLATE.lines() {
            let (line, commented) = match raw.strip_prefix("# ") {
                Some(l) => (l, true),
                None => (raw, false),
            };
            if let Some(header) = line.strip_prefix('[') {
                section = header
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                continue;
            }
            let Some((key, rest)) = line.split_once(" = ") else {
                continue;
            };
            if key.starts_with('#') || key.contains(' ') {
                continue;
            }
            let value = rest.split(" # ").next().unwrap_or_default().trim_end();
            values.insert(format!("{section}.{key}"), (value.to_owned(), commented));
        }
        values
    }

    /// docs/configuration.md documents every key and no other, each with its variable, and
    /// its default as the template has it (until its part on the resolver's file).
    #[test]
    fn the_configuration_doc_has_every_key_its_variable_and_default() {
        let doc = include_str!("../../../docs/configuration.md");
        let serve = doc.split("\n# ").next().unwrap_or_default();
        let rows = stsward_config::doc::rows(serve).expect("rows");
        let keys = ServeConfig::keys().expect("traced");
        if let Err(e) = stsward_config::doc::check(&keys, ENV_PREFIX, &rows) {
            panic!("docs/configuration.md: {e}");
        }
        let template = template_values();
        let as_written: toml::Table = toml::from_str(TEMPLATE).expect("parses");
        let present = |path: &str| {
            let mut t = &as_written;
            for part in path.split('.') {
                match t.get(part) {
                    Some(toml::Value::Table(inner)) => t = inner,
                    _ => return false,
                }
            }
            true
        };
        for row in &rows {
            let (path, default) = (&row.key, &row.default);
            let section = path.rsplit_once('.').map_or("", |(s, _)| s);
            match (row.default_value(), template.get(path)) {
                (Some(value), Some((written, _))) => {
                    assert_eq!(value, written, "{path}: the default is not the template's")
                }
                (Some(_), None) => panic!("{path}: a default, but no line in the template"),
                (None, Some((_, false))) => {
                    panic!("{path}: the template writes a default the doc does not give")
                }
                (None, _) => assert!(
                    !present(section) || default == "none",
                    "{path}: {default:?} in a section that is always there"
                ),
            }
        }
    }

    /// The short example of docs/serve.md is a file `stsward serve` accepts.
    #[test]
    fn the_serve_doc_example_is_complete_for_serving() {
        let doc = include_str!("../../../docs/serve.md");
        let example = doc
            .split("## Configuration")
            .nth(1)
            .and_then(|s| s.split("```toml\n").nth(1))
            .and_then(|b| b.split("```").next())
            .expect("a toml block in the Configuration section");
        let cfg: ServeConfig = example.parse().expect("the example parses");
        cfg.validate_for_serving().expect("the example can serve");
    }

    /// The custom `Deserialize` impls trace as the values they read: a percentage is a
    /// number, a secret and a path are text, addresses are values (not tables).
    #[test]
    fn custom_deserialize_impls_trace_as_values() {
        let keys = ServeConfig::keys().expect("traced");
        let key = |path: &str| keys.get(path).unwrap_or_else(|| panic!("{path} traced"));
        for (path, text) in [
            ("readiness.min_success_rate", false),
            ("alerts.min_success_rate", false),
            ("api.token", true),
            ("intake_imap.password", true),
            ("keys.secret_file", true),
            ("api.listen", false),
            ("checks.resolver", false),
            ("hosting.policy_host_addrs", false),
            ("acme.challenge", false),
        ] {
            assert_eq!(key(path).kind, stsward_config::KeyKind::Value, "{path}");
            assert_eq!(key(path).text, text, "{path}");
        }
        assert_eq!(
            key("hosting.nameservers.addrs").kind,
            stsward_config::KeyKind::InArray
        );
        assert!(keys.is_table("alerts.smtp") && keys.is_table("intake_imap"));
    }

    /// One variable per key, all distinct, none taken by the command line, the allow-list or
    /// the resolver's prefix.
    #[test]
    fn every_key_has_its_own_variable() {
        let keys = ServeConfig::keys().expect("traced");
        let mut seen = std::collections::BTreeMap::new();
        for (var, key) in keys.env_vars(ENV_PREFIX) {
            if let Some(other) = seen.insert(var.clone(), key.path.clone()) {
                panic!("{var} would override both {other} and {}", key.path);
            }
            assert!(
                !ENV_LAYERS.allowed.contains(&var.as_str()),
                "{var} is allowed"
            );
            assert!(
                !ENV_LAYERS.others.iter().any(|o| var.starts_with(o)),
                "{var} has another file's prefix"
            );
        }
        assert_eq!(
            seen.get("STSWARD_STORE_URL").map(String::as_str),
            Some("store.url")
        );
        assert_eq!(
            seen.get("STSWARD_API_TOKEN").map(String::as_str),
            Some("api.token")
        );
        assert_eq!(
            seen.get("STSWARD_INTAKE_SMTP_REPORT_ADDRESSES")
                .map(String::as_str),
            Some("intake_smtp.report_addresses")
        );
        assert_eq!(
            seen.get("STSWARD_HOSTING_NAMESERVERS").map(String::as_str),
            Some("hosting.nameservers")
        );
        assert!(!seen.contains_key("STSWARD_HOSTING_NAMESERVERS_NAME"));
        assert!(seen.len() > 100, "{} variables", seen.len());
    }

    #[test]
    fn overrides_apply_before_validation() {
        let env = |vars: &[(&str, &str)]| -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
            vars.iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let loaded = ServeConfig::load_layered(
            None,
            env(&[
                ("STSWARD_STORE_URL", "postgres://db.test/stsward"),
                ("STSWARD_API_TOKEN", "12345"),
                ("STSWARD_HOSTING_TXT_TTL", "60"),
                ("STSWARD_READINESS_MIN_SUCCESS_RATE", "99.9"),
                ("STSWARD_HOSTING_ZONE", "STS.Provider.Test"),
                (
                    "STSWARD_HOSTING_NAMESERVERS",
                    r#"[{name = "ns1.provider.test", addrs = ["192.0.2.53"]}]"#,
                ),
                ("STSWARD_LISTEN_DNS", r#"["127.0.0.1:5353"]"#),
                ("STSWARD_CHECKS_RESOLVER", "127.0.0.1:53"),
                ("STSWARD_BIN", "/x"),
                ("STSWARD_RESOLVE_CACHE_STORE", "sqlite://r.db"),
                ("STSWARD_NOPE", "1"),
            ]),
        )
        .expect("loads");
        let c = &loaded.value;
        assert_eq!(c.store.url, "postgres://db.test/stsward");
        assert_eq!(c.api.token.as_ref().map(Secret::expose), Some("12345"));
        assert_eq!(c.hosting.txt_ttl, 60);
        assert_eq!(c.readiness.min_success_rate.hundredths(), 9990);
        assert_eq!(
            c.hosting.zone.as_deref(),
            Some("sts.provider.test"),
            "normalised"
        );
        assert_eq!(c.hosting.nameservers[0].addrs.len(), 1);
        assert_eq!(c.listen.dns[0].port(), 5353);
        assert_eq!(c.checks.resolver.map(|r| r.port()), Some(53));
        assert_eq!(loaded.unknown, ["STSWARD_NOPE"]);
        assert_eq!(loaded.applied.len(), 8);

        let err = ServeConfig::load_layered(None, env(&[("STSWARD_HOSTING_TXT_TTL", "0")]))
            .expect_err("zero TTL")
            .to_string();
        assert_eq!(
            err,
            "STSWARD_HOSTING_TXT_TTL: hosting.txt_ttl: must be at least 1 second"
        );
    }

    #[test]
    fn a_full_file_parses_and_names_are_normalised() {
        let text = r#"
[listen]
https = ["127.0.0.1:8443", "[::1]:8443"]
http = ["127.0.0.1:8080"]
dns = ["127.0.0.1:5353"]
[hosting]
zone = "STS.Provider.Test."
policy_host = "mta-sts.provider.test"
policy_host_addrs = ["127.0.0.1", "::1"]
txt_ttl = 60
tlsrpt_rua = "mailto:tlsrpt@provider.test,https://provider.test/tlsrpt"
[[hosting.nameservers]]
name = "ns1.provider.test"
addrs = ["127.0.0.1"]
[acme]
directory = "https://127.0.0.1:14000/dir"
contact = ["mailto:ops@provider.test"]
challenge = "tls-alpn-01"
[store]
url = "postgres://stsward@127.0.0.1/stsward"
[api]
listen = ["127.0.0.1:18480", "[::1]:18480"]
token = "s3cret"
[keys]
secret_file = "/etc/stsward/secret.key"
"#;
        let cfg: ServeConfig = text.parse().expect("parses");
        assert_eq!(cfg.hosting.zone.as_deref(), Some("sts.provider.test"));
        assert_eq!(cfg.listen.https[1], "[::1]:8443".parse().expect("v6"));
        assert_eq!(cfg.api.listen[1], "[::1]:18480".parse().expect("v6"));
        assert_eq!(
            cfg.acme.as_ref().map(|a| a.challenge),
            Some(Challenge::TlsAlpn01)
        );
        assert_eq!(cfg.hosting.txt_ttl, 60);
        assert!(cfg.validate_for_serving().is_ok());
        assert_eq!(
            cfg.api_token()
                .expect("token")
                .map(|t| t.expose().to_owned()),
            Some("s3cret".into())
        );
        assert!(
            !format!("{cfg:?}").contains("s3cret"),
            "Debug hides the token"
        );
    }

    #[test]
    fn the_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc123\n").expect("write");
        let cfg: ServeConfig = format!("[api]\ntoken_file = {:?}\n", path.display().to_string())
            .parse()
            .expect("parses");
        assert_eq!(
            cfg.api_token()
                .expect("read")
                .map(|t| t.expose().to_owned()),
            Some("abc123".into())
        );
        std::fs::write(&path, "\n").expect("write");
        let err = cfg.api_token().expect_err("empty").to_string();
        assert!(err.contains("api.token_file"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        // (text, a word the message must contain, why)
        let bad = [
            ("[listen]\nhttps = [\"443\"]\n", "https", "not ADDR:PORT"),
            ("[api]\nlisten = \"127.0.0.1:1\"\n", "listen", "not a list"),
            ("[hosting]\nttl = 5\n", "ttl", "unknown key"),
            ("[hosting]\ntxt_ttl = 0\n", "hosting.txt_ttl", "zero TTL"),
            (
                "[hosting]\nzone = \"a b.test\"\n",
                "hosting.zone",
                "not a name",
            ),
            (
                "[hosting]\nzone = \"192.0.2.1\"\n",
                "hosting.zone",
                "an address",
            ),
            (
                "[hosting]\npolicy_host = \"\"\n",
                "hosting.policy_host",
                "empty name",
            ),
            (
                "[hosting]\ntlsrpt_rua = \"ftp://x.test\"\n",
                "hosting.tlsrpt_rua",
                "not mailto or https",
            ),
            (
                "[[hosting.nameservers]]\nname = \"ns..test\"\n",
                "hosting.nameservers.name",
                "empty label",
            ),
            (
                "[acme]\ndirectory = \"https://ca.test/dir\"\nchallenge = \"dns-01\"\n",
                "dns-01",
                "unsupported challenge",
            ),
            (
                "[acme]\ndirectory = \"http://ca.test/dir\"\n",
                "acme.directory",
                "not https",
            ),
            (
                "[acme]\ndirectory = \"https://ca.test/dir\"\n[tls]\ncert_file = \"c\"\nkey_file = \"k\"\n",
                "acme",
                "both acme and tls",
            ),
            (
                "[tls]\ncert_file = \"c\"\n",
                "key_file",
                "half a tls section",
            ),
            (
                "[api]\ntoken = \"x\"\ntoken_file = \"/t\"\n",
                "api.token",
                "both token and token_file",
            ),
            ("[store]\nurl = \"\"\n", "store.url", "empty url"),
            ("[bogus]\n", "bogus", "unknown section"),
            (
                "[replicas]\npoll_interval_ms = 5\n",
                "replicas.poll_interval_ms",
                "too fast",
            ),
            (
                "[replicas]\nheartbeat_expiry = 0\n",
                "replicas.heartbeat_expiry",
                "zero expiry",
            ),
            (
                "[intake_https]\npath = \"tlsrpt\"\n",
                "intake_https.path",
                "a relative path",
            ),
            (
                "[intake_https]\npath = \"/.well-known/mta-sts.txt\"\n",
                "intake_https.path",
                "the policy's own path",
            ),
            (
                "[intake_https]\nmax_body_bytes = 0\n",
                "intake_https.max_body_bytes",
                "a zero bound",
            ),
            (
                "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\n",
                "intake_imap.password",
                "no password at all",
            ),
            (
                "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\npassword = \"p\"\n\
                 password_file = \"/p\"\n",
                "intake_imap.password",
                "both password and password_file",
            ),
            (
                "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\npassword = \"p\"\n\
                 tls = \"plain\"\n",
                "intake_imap.tls",
                "a clear-text password over the network",
            ),
            (
                "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\npassword = \"p\"\n\
                 processed_folder = \"INBOX\"\n",
                "intake_imap.processed_folder",
                "moving into the mailbox read",
            ),
            (
                "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\npassword = \"p\"\n\
                 poll_interval = 0\n",
                "intake_imap.poll_interval",
                "no pause between rounds",
            ),
            (
                "[intake_smtp]\nreport_addresses = [\"no-at-sign\"]\n",
                "intake_smtp.report_addresses",
                "not local@domain",
            ),
            (
                "[intake_smtp]\nreport_domains = [\"a b.test\"]\n",
                "intake_smtp.report_domains",
                "not a domain",
            ),
            (
                "[intake_smtp]\nhostname = \"mx..test\"\n",
                "intake_smtp.hostname",
                "empty label",
            ),
            (
                "[intake_smtp]\nmax_buffered_bytes = 2048\n",
                "intake_smtp.max_buffered_bytes",
                "less than one message",
            ),
            (
                "[intake_smtp]\nmax_recipients = 10\n",
                "intake_smtp.max_recipients",
                "fewer than RFC 5321's 100",
            ),
            (
                "[intake_smtp]\ndata_timeout = 0\n",
                "intake_smtp.data_timeout",
                "zero timeout",
            ),
            (
                "[intake_smtp]\nstarttls = \"files\"\ncert_file = \"c\"\n",
                "intake_smtp.cert_file",
                "files without a key",
            ),
            (
                "[intake_smtp]\ncert_file = \"c\"\nkey_file = \"k\"\n",
                "intake_smtp.starttls",
                "files given but not used",
            ),
            (
                "[intake_smtp]\nstarttls = \"yes\"\n",
                "starttls",
                "not a TLS source",
            ),
            (
                "[scheduler]\ncheck_interval = 1\n",
                "scheduler.check_interval",
                "a round every second would hammer DNS",
            ),
            (
                "[scheduler]\nconcurrency = 0\n",
                "scheduler.concurrency",
                "no lookups at all",
            ),
            (
                "[scheduler]\nfetch_flush_interval = 0\n",
                "scheduler.fetch_flush_interval",
                "a flush loop without pause",
            ),
            (
                "[checks]\nallow_ranges = [\"127.0.0.1/8\"]\n",
                "checks.allow_ranges",
                "host bits after the prefix: a typo",
            ),
            (
                "[checks]\nmax_per_tenant = 0\n",
                "checks.max_per_tenant",
                "no check could ever run",
            ),
            (
                "[metrics]\nwindow_days = 0\n",
                "metrics.window_days",
                "gauges over no days",
            ),
            (
                "[readiness]\nsuccess_days = 0\n",
                "readiness.success_days",
                "a window of no days",
            ),
            (
                "[readiness]\nmin_success_rate = 100.5\n",
                "not a percentage from 0 to 100",
                "over 100 %",
            ),
            (
                "[readiness]\nmin_success_rate = 99.555\n",
                "more than two decimals",
                "finer than the store keeps",
            ),
        ];
        for (text, word, why) in bad {
            let err = text.parse::<ServeConfig>().expect_err(why).to_string();
            assert!(err.contains(word), "{why}: {err}");
        }
    }

    #[test]
    fn readiness_percentages_take_integers_and_two_decimals() {
        for (text, hundredths) in [("99", 9900), ("99.5", 9950), ("99.95", 9995), ("0", 0)] {
            let cfg: ServeConfig = format!("[readiness]\nmin_success_rate = {text}\n")
                .parse()
                .expect(text);
            assert_eq!(
                cfg.readiness.min_success_rate.hundredths(),
                hundredths,
                "{text}"
            );
        }
    }

    #[test]
    fn the_secret_file_gives_the_sealing_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).expect("write");
        let cfg: ServeConfig = format!("[keys]\nsecret_file = {:?}\n", path.display().to_string())
            .parse()
            .expect("parses");
        let key = cfg.sealing_key().expect("key").expect("set");
        let sealed = key.seal(b"k", "n").expect("seal");
        assert_eq!(key.open(&sealed, "n", "key").expect("open"), b"k");
        std::fs::write(&path, "short\n").expect("write");
        let err = cfg.sealing_key().expect_err("short key").to_string();
        assert!(err.contains("keys.secret_file"), "{err}");
        assert!(
            ServeConfig::default()
                .sealing_key()
                .expect("none")
                .is_none()
        );
    }

    #[test]
    fn the_imap_section_gives_the_poller_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("imap-password");
        std::fs::write(&path, "  hunter2\n").expect("write");
        let text = format!(
            "[intake_imap]\nhost = \"127.0.0.1\"\ntls = \"plain\"\nuser = \"r\"\n\
             password_file = {:?}\n",
            path.display().to_string()
        );
        let cfg: ServeConfig = text.parse().expect("plain is allowed on loopback");
        let imap = cfg.intake_imap.as_ref().expect("section");
        let settings = imap.settings().expect("settings");
        assert_eq!(settings.password.expose(), "hunter2");
        assert_eq!(settings.port, 143, "the default port without implicit TLS");
        assert_eq!(settings.mailbox, "INBOX");
        assert_eq!(settings.processed_folder, "Processed");
        assert_eq!(settings.invalid_folder, "Invalid");
        assert!(
            settings.require_dkim,
            "live channels require DKIM by default"
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
        let implicit: ServeConfig =
            "[intake_imap]\nhost = \"imap.example\"\nuser = \"u\"\npassword = \"p\"\n"
                .parse()
                .expect("parses");
        let port = implicit
            .intake_imap
            .expect("section")
            .settings()
            .expect("ok")
            .port;
        assert_eq!(port, 993);
    }

    #[test]
    fn intake_smtp_settings_follow_the_section() {
        let off: ServeConfig = "".parse().expect("defaults");
        assert!(off.intake_smtp.require_dkim, "RFC 8460 §3 by default");
        assert_eq!(off.intake_smtp.listen[0].port(), 25);
        assert!(
            off.smtp_settings().expect("settings").is_none(),
            "off by default"
        );

        let no_host: ServeConfig = "[intake_smtp]\nreport_domains = [\"r.test\"]\n"
            .parse()
            .expect("parses");
        let err = no_host
            .smtp_settings()
            .expect_err("no host name")
            .to_string();
        assert!(err.contains("intake_smtp.hostname"), "{err}");

        let text = r#"
[hosting]
policy_host = "mta-sts.provider.test"
[intake_smtp]
listen = ["127.0.0.1:2525"]
report_addresses = ["TLSRPT@Provider.Test"]
max_message_bytes = 2048
command_timeout = 7
require_dkim = false
starttls = "files"
cert_file = "/etc/stsward/mx.pem"
key_file = "/etc/stsward/mx.key"
"#;
        let cfg: ServeConfig = text.parse().expect("parses");
        assert_eq!(cfg.intake_smtp.starttls, StartTlsSource::Files);
        let s = cfg.smtp_settings().expect("valid").expect("on");
        assert_eq!(
            s.hostname, "mta-sts.provider.test",
            "falls back to the policy host"
        );
        assert!(s.recipients.accepts("tlsrpt@provider.test"));
        assert!(!s.recipients.accepts("other@provider.test"));
        assert!(!s.require_dkim);
        assert_eq!(s.limits.max_message_bytes, 2048);
        assert_eq!(s.limits.command_timeout, std::time::Duration::from_secs(7));
        assert_eq!(
            s.limits.data_timeout,
            std::time::Duration::from_secs(IntakeSmtpSection::default().data_timeout)
        );
    }

    #[test]
    fn load_names_a_missing_file() {
        let err = ServeConfig::load(Path::new("/nonexistent/stsward.toml"))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/stsward.toml"), "{err}");
    }
}
