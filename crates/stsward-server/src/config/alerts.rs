//! `[alerts]`: the scheduled re-checks, the alert rules' thresholds, and where alerts go (an
//! SMTP relay with STARTTLS, webhooks). See `docs/alerts.md`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Percent};

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Whether this replica re-checks domains, evaluates the rules and sends alerts (default
    /// true). Several replicas share the work through the store.
    pub enabled: bool,
    /// Seconds between two scheduled full checks of one hosted domain (default 21600, six
    /// hours); 0 turns scheduled checks off.
    pub check_interval: u64,
    /// Seconds between two evaluations of one domain's alert rules (default 300).
    pub evaluate_interval: u64,
    /// The session success rate below which an alert opens, in percent (default 95).
    pub min_success_rate: Percent,
    /// UTC days (today included) over which the success rate is measured (default 2).
    pub success_days: u32,
    /// Sessions needed in those days before the rate is judged (default 20).
    pub min_sessions: u64,
    /// Sends per destination per hour at most; more wait for the next hour (default 30).
    pub max_per_hour: u32,
    /// Attempts of one send before it is kept as failed (default 8).
    pub max_attempts: u32,
    /// Seconds before the first retry of a failed send, doubled for each next one, at most
    /// six hours (default 60).
    pub retry_base: u64,
    /// Seconds one webhook POST may take, answer included (default 10).
    pub webhook_timeout: u64,
    /// `[alerts.smtp]`: alerts by e-mail.
    pub smtp: Option<AlertSmtpSection>,
    /// `[[alerts.webhooks]]`: alerts by HTTP POST.
    pub webhooks: Vec<WebhookSection>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            enabled: true,
            check_interval: 21_600,
            evaluate_interval: 300,
            min_success_rate: Percent::from_hundredths(9_500),
            success_days: 2,
            min_sessions: 20,
            max_per_hour: 30,
            max_attempts: 8,
            retry_base: 60,
            webhook_timeout: 10,
            smtp: None,
            webhooks: Vec::new(),
        }
    }
}

/// `[alerts.smtp]`: an SMTP relay, always with STARTTLS (the session is refused without it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSmtpSection {
    /// The relay's host name (its certificate must be valid for it).
    pub relay: String,
    /// Its submission port (default 587).
    #[serde(default = "submission_port")]
    pub port: u16,
    /// The sender, e.g. `stsward <alerts@provider.example>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The user to log in as, if the relay asks for it.
    #[serde(default)]
    pub user: Option<String>,
    /// A file holding the password (read at start).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Extra trust anchors (PEM) for the relay's certificate, besides the web PKI.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one SMTP command may take (default 30).
    #[serde(default = "smtp_timeout")]
    pub timeout: u64,
}

fn submission_port() -> u16 {
    587
}

fn smtp_timeout() -> u64 {
    30
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// stsward's own JSON object (docs/alerts.md).
    #[default]
    Json,
    /// `{"text": "…"}`, the body of Slack's incoming webhooks and of the services
    /// compatible with them.
    Slack,
}

/// `[[alerts.webhooks]]`: one HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// A short name, unique among the webhooks: the destination is stored by it (the URL,
    /// which often holds a secret, never is).
    pub name: String,
    /// `https://…` (or `http://…` to a receiver on the same host or network).
    pub url: String,
    /// `json` (default) or `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// Longest webhook name, in bytes.
const MAX_WEBHOOK_NAME: usize = 64;

impl AlertsSection {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.evaluate_interval == 0 {
            return invalid(
                "alerts.evaluate_interval",
                "must be at least 1 second".into(),
            );
        }
        if !(1..=31).contains(&self.success_days) {
            return invalid(
                "alerts.success_days",
                format!("{} is not a number of days from 1 to 31", self.success_days),
            );
        }
        if self.max_per_hour == 0 || self.max_attempts == 0 {
            return invalid(
                "alerts.max_per_hour",
                "max_per_hour and max_attempts must be at least 1".into(),
            );
        }
        if self.webhook_timeout == 0 {
            return invalid("alerts.webhook_timeout", "must be at least 1 second".into());
        }
        let mut names = BTreeSet::new();
        for w in &self.webhooks {
            if w.name.is_empty()
                || w.name.len() > MAX_WEBHOOK_NAME
                || !w
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return invalid(
                    "alerts.webhooks.name",
                    format!(
                        "{:?}: 1 to {MAX_WEBHOOK_NAME} letters, digits, '-' or '_'",
                        w.name
                    ),
                );
            }
            if !names.insert(w.name.as_str()) {
                return invalid(
                    "alerts.webhooks.name",
                    format!("{:?} is given twice", w.name),
                );
            }
            match w.url.parse::<http::Uri>() {
                Ok(u) if matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some() => {
                }
                Ok(_) => {
                    return invalid(
                        "alerts.webhooks.url",
                        format!(
                            "webhook {:?}: an http:// or https:// URL with a host",
                            w.name
                        ),
                    );
                }
                Err(e) => {
                    return invalid("alerts.webhooks.url", format!("webhook {:?}: {e}", w.name));
                }
            }
        }
        if let Some(smtp) = &self.smtp {
            if smtp.relay.is_empty() {
                return invalid("alerts.smtp.relay", "the relay's host name is empty".into());
            }
            if smtp.to.is_empty() {
                return invalid("alerts.smtp.to", "at least one recipient".into());
            }
            for (key, addr) in std::iter::once(("alerts.smtp.from", &smtp.from))
                .chain(smtp.to.iter().map(|t| ("alerts.smtp.to", t)))
            {
                if let Err(e) = addr.parse::<lettre::message::Mailbox>() {
                    return invalid(key, format!("{addr:?}: {e}"));
                }
            }
            if smtp.user.is_some() != smtp.password_file.is_some() {
                return invalid(
                    "alerts.smtp.user",
                    "user and password_file go together".into(),
                );
            }
            if smtp.timeout == 0 {
                return invalid("alerts.smtp.timeout", "must be at least 1 second".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(toml: &str) -> Result<AlertsSection, String> {
        let s: AlertsSection = toml::from_str(toml).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn good_and_bad_alert_settings() {
        assert_eq!(parsed("").expect("empty"), AlertsSection::default());
        let good = parsed(
            "[[webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example/x\"\nformat = \"slack\"\n\
             [smtp]\nrelay = \"smtp.example\"\nfrom = \"stsward <a@example.org>\"\nto = [\"b@example.org\"]\n",
        )
        .expect("good");
        assert_eq!(good.webhooks[0].format, WebhookFormat::Slack);
        assert_eq!(good.smtp.as_ref().map(|s| s.port), Some(587));
        // (toml, the key the error must name): each bad case with its reason.
        let bad = [
            ("evaluate_interval = 0", "alerts.evaluate_interval"),
            ("success_days = 0", "alerts.success_days"),
            ("max_per_hour = 0", "alerts.max_per_hour"),
            // Names key the stored destination: they must be unique.
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"https://x.example/\"\n[[webhooks]]\nname = \"a\"\nurl = \"https://y.example/\"",
                "alerts.webhooks.name",
            ),
            // No scheme we can POST to.
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"ftp://x.example/\"",
                "alerts.webhooks.url",
            ),
            (
                "[smtp]\nrelay = \"r.example\"\nfrom = \"not an address\"\nto = [\"b@example.org\"]",
                "alerts.smtp.from",
            ),
            (
                "[smtp]\nrelay = \"r.example\"\nfrom = \"a@example.org\"\nto = []",
                "alerts.smtp.to",
            ),
            // A password without a user (or the reverse) is a mistake, not a default.
            (
                "[smtp]\nrelay = \"r.example\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\nuser = \"u\"",
                "alerts.smtp.user",
            ),
        ];
        for (toml, key) in bad {
            let err = parsed(toml).expect_err(toml);
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
}
