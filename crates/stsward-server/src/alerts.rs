//! Scheduled re-checks and alerts of `stsward serve` (issue 9, "Scheduler and alerts").
//!
//! - **Re-checks** ([`engine`]): every hosted domain is checked by the same
//!   [`CheckRunner`](crate::checks::CheckRunner) as `POST /api/v1/domains/{d}/checks` (the
//!   `stsward-net` limits and the address filter included) every `[alerts] check_interval`,
//!   spread over the interval, and stored as a check run. Replicas claim each round in the
//!   store, so a domain is checked once per interval.
//! - **Rules** ([`rules`], pure; evidence from [`evidence`]): eight rules turn a domain's
//!   stored evidence into the causes open now, each with a stable key.
//! - **State** (`stsward_store::alerts`): an alert opens once per (domain, rule, key) by a
//!   unique key, resolves when its cause is gone, and opens anew when the cause comes back.
//! - **Delivery** ([`engine`], [`webhook`], [`email`]): each opening and resolution goes to
//!   every destination once (claimed in the store), at most `max_per_hour` per destination,
//!   retried with a doubling delay, and kept as `failed` with its error after the last try.
//!
//! ```text
//! every tick:  check round     seed, list due, take a CheckRunner slot, claim, check, store
//!              evaluate round  seed, list due, claim, gather evidence, rules, alerts_sync
//!              deliver round   list due sends, claim (budget), send, record sent / retry
//! ```

pub mod email;
pub mod engine;
pub mod evidence;
pub mod rules;
pub mod webhook;

use std::time::Duration;

use serde::Serialize;
use stsward_store::{AlertEvent, DueDelivery, SendBudget};

use crate::config::{AlertsSection, WebhookFormat};
use crate::domains::format_time;
pub use engine::{AlertEngine, AlertSetup, RoundReport};

/// The longest delay between two attempts of one send.
pub const MAX_RETRY_DELAY: i64 = 6 * 3600;

/// The engine's settings, from `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// Whether this replica works on alerts at all.
    pub enabled: bool,
    /// Seconds between two scheduled checks of a domain; 0: none.
    pub check_interval: i64,
    /// Seconds between two evaluations of a domain.
    pub evaluate_interval: i64,
    /// The rules' thresholds.
    pub thresholds: rules::Thresholds,
    /// Sends per destination per window.
    pub budget: SendBudget,
    /// Attempts of one send.
    pub max_attempts: u32,
    /// Seconds before the first retry.
    pub retry_base: i64,
    /// Domains or sends handled per round at most.
    pub batch: u32,
    /// How often the engine wakes up.
    pub tick: Duration,
}

impl AlertSettings {
    /// The settings of a validated `[alerts]` section.
    pub fn from_config(s: &AlertsSection) -> AlertSettings {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        AlertSettings {
            enabled: s.enabled,
            check_interval: secs(s.check_interval),
            evaluate_interval: secs(s.evaluate_interval).max(1),
            thresholds: rules::Thresholds {
                min_success_rate: s.min_success_rate.hundredths(),
                success_days: s.success_days,
                min_sessions: s.min_sessions,
            },
            budget: SendBudget {
                max: s.max_per_hour.max(1),
                window: 3600,
            },
            max_attempts: s.max_attempts.max(1),
            retry_base: secs(s.retry_base).max(1),
            batch: 200,
            tick: Duration::from_secs(1),
        }
    }

    /// When attempt `attempts` (1 for the first) failed at `now`: the time of the next one,
    /// or `None` after the last.
    pub fn retry_at(&self, attempts: i64, now: i64) -> Option<i64> {
        if attempts >= i64::from(self.max_attempts) {
            return None;
        }
        let shift = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let delay = self
            .retry_base
            .saturating_mul(1i64 << shift)
            .min(MAX_RETRY_DELAY);
        Some(now.saturating_add(delay))
    }
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// The SMTP relay of `[alerts.smtp]`.
    Email(email::Mailer),
    /// One `[[alerts.webhooks]]` entry.
    Webhook(webhook::Webhook, WebhookFormat),
}

/// The destinations of `section`, each with the name it is stored by (`email`,
/// `webhook:<name>`). Reads the SMTP files; an error names the key.
pub fn destinations(section: &AlertsSection) -> Result<Vec<(String, Destination)>, String> {
    let mut all = Vec::new();
    if let Some(smtp) = &section.smtp {
        all.push((
            "email".to_owned(),
            Destination::Email(email::Mailer::new(smtp)?),
        ));
    }
    let timeout = Duration::from_secs(section.webhook_timeout.max(1));
    for w in &section.webhooks {
        let hook = webhook::Webhook::new(&w.url, timeout)
            .map_err(|e| format!("alerts.webhooks {:?}: {e}", w.name))?;
        all.push((
            format!("webhook:{}", w.name),
            Destination::Webhook(hook, w.format),
        ));
    }
    Ok(all)
}

/// What a JSON webhook receives (docs/alerts.md).
#[derive(Debug, Serialize)]
pub struct Notice<'a> {
    /// `opened` or `resolved`.
    pub event: AlertEvent,
    /// The alert's id.
    pub alert_id: i64,
    /// The owning tenant's id.
    pub tenant: i64,
    /// The domain.
    pub domain: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// The cause's key.
    pub key: &'a str,
    /// In words.
    pub summary: &'a str,
    /// Epoch seconds.
    pub opened_at: i64,
    /// Epoch seconds, once resolved.
    pub resolved_at: Option<i64>,
}

impl<'a> Notice<'a> {
    /// The notice of a due send.
    pub fn of(d: &'a DueDelivery) -> Notice<'a> {
        Notice {
            event: d.event,
            alert_id: d.alert.id,
            tenant: d.tenant.0,
            domain: &d.alert.domain,
            rule: &d.alert.rule,
            key: &d.alert.key,
            summary: &d.alert.summary,
            opened_at: d.alert.opened_at,
            resolved_at: d.alert.resolved_at,
        }
    }

    /// One line for people: the e-mail subject and the Slack text's first line.
    pub fn headline(&self) -> String {
        let what = match self.event {
            AlertEvent::Opened => "alert",
            AlertEvent::Resolved => "resolved",
        };
        format!("[stsward] {what}: {} {}", self.domain, self.rule)
    }

    /// The plain-text body of an e-mail or chat message.
    pub fn text(&self) -> String {
        let mut text = format!("{}\n{}\n", self.headline(), self.summary);
        if !self.key.is_empty() {
            text.push_str(&format!("cause: {}\n", self.key));
        }
        text.push_str(&format!(
            "alert {} opened {}",
            self.alert_id,
            format_time(self.opened_at)
        ));
        if let Some(at) = self.resolved_at {
            text.push_str(&format!(", resolved {}", format_time(at)));
        }
        text.push('\n');
        text
    }
}

/// Sends `d` to `to`.
pub async fn send(to: &Destination, d: &DueDelivery) -> Result<(), String> {
    let notice = Notice::of(d);
    match to {
        Destination::Email(mailer) => mailer.send(&notice.headline(), notice.text()).await,
        Destination::Webhook(hook, format) => {
            let body = match format {
                WebhookFormat::Json => serde_json::to_vec(&notice),
                WebhookFormat::Slack => serde_json::to_vec(&serde_json::json!({
                    "text": notice.text().trim_end(),
                })),
            }
            .map_err(|e| format!("the webhook body: {e}"))?;
            hook.post(body).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_reads_for_people() {
        let n = Notice {
            event: AlertEvent::Resolved,
            alert_id: 7,
            tenant: 1,
            domain: "example.com",
            rule: "txt-stale",
            key: "",
            summary: "the TXT id is stale",
            opened_at: 1_781_524_800,
            resolved_at: Some(1_781_528_400),
        };
        assert_eq!(n.headline(), "[stsward] resolved: example.com txt-stale");
        assert_eq!(
            n.text(),
            "[stsward] resolved: example.com txt-stale\nthe TXT id is stale\n\
             alert 7 opened 2026-06-15T12:00:00Z, resolved 2026-06-15T13:00:00Z\n"
        );
    }

    #[test]
    fn retries_double_up_to_the_cap_and_stop_after_the_last_attempt() {
        let s = AlertSettings {
            max_attempts: 4,
            retry_base: 60,
            ..AlertSettings::from_config(&AlertsSection::default())
        };
        assert_eq!(s.retry_at(1, 1000), Some(1060));
        assert_eq!(s.retry_at(2, 1000), Some(1120));
        assert_eq!(s.retry_at(3, 1000), Some(1240));
        assert_eq!(
            s.retry_at(4, 1000),
            None,
            "the last attempt is kept as failed"
        );
        let long = AlertSettings {
            max_attempts: 100,
            ..s
        };
        assert_eq!(long.retry_at(40, 0), Some(MAX_RETRY_DELAY));
    }
}
