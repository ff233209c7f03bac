//! The Prometheus endpoint, `GET /metrics` (issue 9), in the OpenMetrics 1.0 text format.
//! Everything is read from the store (`Store::metrics_snapshot`), so every replica on one
//! database shows the same numbers and a scrape of any of them is whole:
//!
//! ```text
//! stsward_hosted_domains{mode,state}                       domains by mode
//! stsward_domain_info{tenant,domain,mode,state}            1 per hosted domain
//! stsward_reported_sessions{domain,result}                 TLS-RPT sessions (RFC 8460 §4.2.2),
//!                                                          last [metrics] window_days
//! stsward_reported_failures{domain,result_type}            failed sessions by result type
//!                                                          (RFC 8460 §4.3; others: "unknown")
//! stsward_policy_fetches{domain}                           policy fetches (RFC 8461 §3.3)
//! stsward_certificate_not_after_seconds{name,state}        policy host certificate expiry
//! stsward_check_verdict{domain,verdict}                    1 for the last check's verdict
//! stsward_check_finished_seconds{domain}                   when that check finished
//! stsward_reports_stored_total{channel}                    reports stored, per channel
//! stsward_alerts_open{rule}                                open alerts (docs/alerts.md)
//! stsward_alert_deliveries{state}                          alert sends by state
//! stsward_metrics_window_days                              the window of the gauges above
//! ```
//!
//! Label values that come from reports are senders' words: result types outside RFC 8460
//! §4.3 are counted as `unknown` (so a sender cannot create series at will), and every
//! label value is escaped (backslash, double quote, line feed), so none can break the
//! exposition. A scrape is cached for `[metrics] cache_seconds`, so that scrapes of many
//! Prometheus servers cost one set of queries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use stsward_proto::tlsrpt::ResultType;
use stsward_store::{MetricsSnapshot, Store, StoreError};

/// The media type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How the endpoint reads and keeps its numbers (`[metrics]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Days of reports and fetches the gauges cover, today included.
    pub window_days: u32,
    /// How long one scrape's answer is reused.
    pub cache: Duration,
}

/// The endpoint: the store, and the last answer.
#[derive(Debug)]
pub struct MetricsEndpoint {
    store: Store,
    settings: MetricsSettings,
    cached: Mutex<Option<(Instant, Arc<String>)>>,
}

impl MetricsEndpoint {
    /// An endpoint over `store`.
    pub fn new(store: Store, settings: MetricsSettings) -> MetricsEndpoint {
        MetricsEndpoint {
            store,
            settings,
            cached: Mutex::new(None),
        }
    }

    /// The exposition at `now` (epoch seconds), from the cache when it is fresh enough.
    pub async fn render(&self, now: i64) -> Result<Arc<String>, StoreError> {
        {
            let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, text)) = cached.as_ref()
                && at.elapsed() < self.settings.cache
            {
                return Ok(text.clone());
            }
        }
        let days = i64::from(self.settings.window_days.max(1));
        let since = now.saturating_sub((days - 1).saturating_mul(86_400));
        let snapshot = self.store.metrics_snapshot(since).await?;
        let text = Arc::new(encode(snapshot, self.settings.window_days));
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

/// Escapes a label value for the text format (OpenMetrics 1.0: `\\`, `\"`, `\n`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The result type as a label: RFC 8460 §4.3's names, else `unknown`.
fn result_label(raw: &str) -> &'static str {
    match raw.parse::<ResultType>() {
        Ok(t) if t.is_known() => KNOWN
            .iter()
            .find(|k| **k == t.as_str())
            .copied()
            .unwrap_or("unknown"),
        _ => "unknown",
    }
}

/// RFC 8460 §4.3's result types (§4.3.1 to §4.3.3).
const KNOWN: &[&str] = &[
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
];

#[derive(Debug)]
struct Snapshot {
    data: MetricsSnapshot,
    window_days: u32,
}

type Labels = Vec<(&'static str, String)>;

fn gauges(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(0i64);
    let mut family = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    for (labels, value) in series {
        let labels: Vec<(&str, String)> = labels.iter().map(|(k, v)| (*k, escape(v))).collect();
        ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let d = &self.data;
        let window = format!("over the last {} days", self.window_days);

        let mut by_mode: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for row in &d.domains {
            *by_mode.entry((&row.mode, &row.state)).or_default() += 1;
        }
        let series: Vec<(Labels, i64)> = by_mode
            .into_iter()
            .map(|((mode, state), n)| {
                (
                    vec![("mode", mode.to_owned()), ("state", state.to_owned())],
                    n,
                )
            })
            .collect();
        gauges(
            &mut encoder,
            "stsward_hosted_domains",
            "Hosted domains by policy mode and state.",
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .domains
            .iter()
            .map(|r| {
                let labels = vec![
                    ("tenant", r.tenant.clone()),
                    ("domain", r.domain.clone()),
                    ("mode", r.mode.clone()),
                    ("state", r.state.clone()),
                ];
                (labels, 1)
            })
            .collect();
        gauges(
            &mut encoder,
            "stsward_domain_info",
            "1 for each hosted domain, with its tenant, mode and state.",
            &series,
        )?;

        let mut series: Vec<(Labels, i64)> = Vec::new();
        for r in &d.sessions {
            for (result, n) in [("successful", r.successful), ("failed", r.failed)] {
                let labels = vec![("domain", r.domain.clone()), ("result", result.to_owned())];
                series.push((labels, n));
            }
        }
        gauges(
            &mut encoder,
            "stsward_reported_sessions",
            &format!("TLS sessions senders reported (RFC 8460), {window}."),
            &series,
        )?;
        let mut failures: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for r in &d.failures {
            let key = (r.domain.as_str(), result_label(&r.result_type));
            *failures.entry(key).or_default() += r.failed;
        }
        let series: Vec<(Labels, i64)> = failures
            .into_iter()
            .map(|((domain, t), n)| {
                (
                    vec![("domain", domain.to_owned()), ("result_type", t.to_owned())],
                    n,
                )
            })
            .collect();
        gauges(
            &mut encoder,
            "stsward_reported_failures",
            &format!("Failed sessions by result type (RFC 8460 §4.3), {window}."),
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .fetches
            .iter()
            .map(|(domain, n)| (vec![("domain", domain.clone())], *n))
            .collect();
        gauges(
            &mut encoder,
            "stsward_policy_fetches",
            &format!("Policy fetches by senders (RFC 8461 §3.3), {window}."),
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .certificates
            .iter()
            .filter_map(|c| {
                let labels = vec![("name", c.name.clone()), ("state", c.state.clone())];
                c.not_after.map(|at| (labels, at))
            })
            .collect();
        gauges(
            &mut encoder,
            "stsward_certificate_not_after_seconds",
            "When each policy host certificate expires, Unix time.",
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .verdicts
            .iter()
            .map(|v| {
                let labels = vec![("domain", v.domain.clone()), ("verdict", v.verdict.clone())];
                (labels, 1)
            })
            .collect();
        gauges(
            &mut encoder,
            "stsward_check_verdict",
            "1 for the verdict of each domain's last check.",
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .verdicts
            .iter()
            .map(|v| (vec![("domain", v.domain.clone())], v.finished_at))
            .collect();
        gauges(
            &mut encoder,
            "stsward_check_finished_seconds",
            "When each domain's last check finished, Unix time.",
            &series,
        )?;

        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "stsward_reports_stored",
            "TLS-RPT reports stored, by the channel they came in on.",
            None,
            counter.metric_type(),
        )?;
        for (channel, n) in &d.reports_by_channel {
            let labels = [("channel", escape(channel))];
            ConstCounter::new(n.max(&0).unsigned_abs()).encode(family.encode_family(&labels)?)?;
        }
        let series: Vec<(Labels, i64)> = d
            .open_alerts
            .iter()
            .map(|(rule, n)| (vec![("rule", rule.clone())], *n))
            .collect();
        gauges(
            &mut encoder,
            "stsward_alerts_open",
            "Open alerts by rule (docs/alerts.md).",
            &series,
        )?;
        let series: Vec<(Labels, i64)> = d
            .alert_deliveries
            .iter()
            .map(|(state, n)| (vec![("state", state.clone())], *n))
            .collect();
        gauges(
            &mut encoder,
            "stsward_alert_deliveries",
            "Alert sends by state (pending, sending, sent, failed).",
            &series,
        )?;
        let window = ConstGauge::new(i64::from(self.window_days));
        let family = encoder.encode_descriptor(
            "stsward_metrics_window_days",
            "The days the reported_* and policy_fetches gauges cover, today included.",
            None,
            window.metric_type(),
        )?;
        window.encode(family)?;
        Ok(())
    }
}

/// The exposition of `data`.
pub fn encode(data: MetricsSnapshot, window_days: u32) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot { data, window_days }));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        // Writing to a String does not fail; should it, the scrape says so.
        text.clear();
        let _ = writeln!(
            text,
            "# stsward: the metrics could not be encoded: {e}\n# EOF"
        );
    }
    text
}

#[cfg(test)]
mod tests;
