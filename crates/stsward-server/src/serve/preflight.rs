//! What `stsward serve` checks of its configuration when it starts, without binding, creating
//! or writing anything: for `stsward config check`. Each problem names its key; all of them
//! are reported, not just the first.
//!
//! Left out, because only running finds them: whether the store opens, whether the addresses
//! can be bound, and whether the ACME CA answers.

use std::error::Error;

use super::{ServeError, intake, setup};
use crate::config::{ConfigError, ServeConfig, StartTlsSource};

/// One problem: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `section.key` (or the section).
    pub key: &'static str,
    /// Why, with the underlying error's causes.
    pub reason: String,
}

/// What the start-up checks found.
#[derive(Debug, Default)]
pub struct Preflight {
    /// What stops `stsward serve` from starting.
    pub errors: Vec<Finding>,
    /// What it starts without (a role that stays off, checks that are unavailable).
    pub warnings: Vec<Finding>,
}

impl Preflight {
    fn error(&mut self, key: &'static str, e: impl Into<ServeError>) {
        self.errors.push(finding(key, &e.into()));
    }

    fn warning(&mut self, key: &'static str, reason: impl Into<String>) {
        self.warnings.push(Finding {
            key,
            reason: reason.into(),
        });
    }
}

/// `e` with its causes, under its own key when it names one, else under `key`.
fn finding(key: &'static str, e: &ServeError) -> Finding {
    let (key, mut reason) = match e {
        ServeError::Config(ConfigError::Invalid { key, reason }) => (*key, reason.clone()),
        ServeError::Tls { key, path, reason } => (*key, format!("{}: {reason}", path.display())),
        ServeError::DnssecKey { path, reason } => (
            "keys.dnssec_key_file",
            format!("{}: {reason}", path.display()),
        ),
        other => (key, other.to_string()),
    };
    if let Some(cause) = e.source().map(chain)
        && !reason.ends_with(&cause)
    {
        reason = format!("{reason}: {cause}");
    }
    Finding { key, reason }
}

/// Runs every check `stsward serve` makes of `config` before it binds its listeners. Call it
/// inside a Tokio runtime (the alert mailer and the checker are built as `serve` builds them).
pub fn preflight(config: &ServeConfig, now: i64) -> Preflight {
    let mut p = Preflight::default();
    match config.validate_for_serving() {
        Ok(()) => {
            if let Err(e) = setup::zone_settings(config, None, now) {
                p.error("hosting", e);
            }
        }
        Err(e) => p.error("acme", e),
    }
    if let Some(tls) = &config.tls
        && let Err(e) = setup::static_certificate(&tls.cert_file, &tls.key_file)
    {
        p.error("tls.cert_file", e);
    }
    if let Some(path) = &config.keys.dnssec_key_file {
        match setup::read_dnssec_key(path) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                if !dir.is_dir() {
                    p.error(
                        "keys.dnssec_key_file",
                        ConfigError::Invalid {
                            key: "keys.dnssec_key_file",
                            reason: format!(
                                "{} does not exist and cannot be created: {} is not a directory",
                                path.display(),
                                dir.display()
                            ),
                        },
                    );
                }
            }
            Err(e) => p.error("keys.dnssec_key_file", e),
        }
    }
    let sealing = config.sealing_key();
    if let Err(e) = &sealing {
        p.errors.push(Finding {
            key: "keys.secret_file",
            reason: chain(e),
        });
    }
    if let Some(acme) = &config.acme {
        if matches!(sealing, Ok(None)) {
            p.error(
                "keys.secret_file",
                ConfigError::Invalid {
                    key: "keys.secret_file",
                    reason: "is not set: [acme] stores certificate keys sealed with it".into(),
                },
            );
        }
        if let Some(path) = &acme.ca_file
            && let Err(e) = setup::ca_roots(path)
        {
            p.error("acme.ca_file", e);
        }
    }
    match config.api_token() {
        Ok(Some(_)) => {}
        Ok(None) => p.warning(
            "api.token",
            "neither api.token nor api.token_file is set: the REST API, the dashboard and \
             /metrics on the API's listeners are off",
        ),
        Err(e) => p.errors.push(Finding {
            key: "api.token_file",
            reason: chain(&e),
        }),
    }
    match config.smtp_settings() {
        Ok(Some(_)) if config.intake_smtp.starttls == StartTlsSource::Files => {
            if let Err(e) = intake::smtp_certificate(&config.intake_smtp) {
                p.error("intake_smtp.cert_file", e);
            }
        }
        Ok(_) => {}
        Err(e) => p.error("intake_smtp", e),
    }
    if let Some(imap) = &config.intake_imap
        && let Err(e) = imap.settings()
    {
        p.errors.push(Finding {
            key: "intake_imap.password_file",
            reason: chain(&e),
        });
    }
    if let Err(reason) = crate::alerts::destinations(&config.alerts) {
        p.errors.push(Finding {
            key: "alerts",
            reason,
        });
    }
    if let Err(e) = crate::checks::CheckRunner::new(&config.checks) {
        p.warning(
            "checks",
            format!(
                "scheduled and tenant checks will be unavailable: {}",
                chain(&e)
            ),
        );
    }
    if let Err(e) = crate::intake::mail_dkim::MailDkim::new(
        config.reports.dkim_resolver,
        std::time::Duration::from_secs(config.reports.dkim_timeout),
    ) {
        p.errors.push(Finding {
            key: "reports.dkim_resolver",
            reason: chain(&e),
        });
    }
    p
}

/// `e` and its causes, `: `-separated, each said once.
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    text
}
