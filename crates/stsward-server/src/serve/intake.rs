//! The report intake of `stsward serve` (RFC 8460 §5.3 reports by mail, §5.4 by HTTPS POST):
//! one store-backed sink, with the DKIM check of §3, handed to every channel the
//! configuration enables, and the daily retention prune.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use stsward_store::Store;
use tokio::sync::watch;

use super::{ServeError, setup};
use crate::config::{IntakeSmtpSection, ServeConfig, StartTlsSource};
use crate::host::Sites;
use crate::intake::https::HttpsIntake;
use crate::intake::imap::{self, ImapSettings};
use crate::intake::mail_dkim::MailDkim;
use crate::intake::smtp::{self, SmtpServer};
use crate::intake::{ReportSink, StoreSink};

/// How often the retention prune runs.
const PRUNE_EVERY: Duration = Duration::from_secs(86_400);

/// The channels bound and configured at start, ready to run.
pub(super) struct Intake {
    /// The sink every channel hands its input to.
    pub(super) sink: Arc<dyn ReportSink>,
    /// The SMTP listener and its STARTTLS configuration, when report addresses are set.
    pub(super) smtp: Option<(SmtpServer, Option<Arc<rustls::ServerConfig>>)>,
    /// The POST route for the policy host, when `[intake_https]` is enabled.
    pub(super) https: Option<HttpsIntake>,
    /// The IMAP poller's settings, when `[intake_imap]` is present.
    pub(super) imap: Option<ImapSettings>,
}

/// STARTTLS with the certificate the store keeps for a name: the client's SNI when one of
/// ours, else the listener's host name (senders often send no SNI with STARTTLS).
#[derive(Debug)]
struct StoredCertificate {
    sites: Sites,
    hostname: String,
}

impl ResolvesServerCert for StoredCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = SystemTime::now();
        hello
            .server_name()
            .and_then(|sni| self.sites.certificate_for(&sni.to_ascii_lowercase(), now))
            .or_else(|| self.sites.certificate_for(&self.hostname, now))
    }
}

/// The SMTP listener's STARTTLS certificate with `starttls = "files"`: `intake_smtp.cert_file`
/// and `intake_smtp.key_file`, read like `[tls]`'s.
pub(super) fn smtp_certificate(section: &IntakeSmtpSection) -> Result<CertifiedKey, ServeError> {
    let (Some(cert), Some(key)) = (&section.cert_file, &section.key_file) else {
        return Err(crate::config::ConfigError::Invalid {
            key: "intake_smtp.cert_file",
            reason: "starttls = \"files\" needs cert_file and key_file".into(),
        }
        .into());
    };
    setup::static_certificate(cert, key).map_err(|e| match e {
        ServeError::Tls { key, path, reason } => ServeError::Tls {
            key: if key == "tls.cert_file" {
                "intake_smtp.cert_file"
            } else {
                "intake_smtp.key_file"
            },
            path,
            reason,
        },
        other => other,
    })
}

/// Builds the sink and binds the channels that `config` enables.
pub(super) fn prepare(
    config: &ServeConfig,
    store: &Store,
    sites: &Sites,
) -> Result<Intake, ServeError> {
    let dkim = MailDkim::new(
        config.reports.dkim_resolver,
        Duration::from_secs(config.reports.dkim_timeout),
    )
    .map_err(|e| ServeError::Resolver(format!("reports.dkim_resolver: {e}")))?;
    // Called from `serve`'s async start-up, so the committer starts on its runtime.
    let sink: Arc<dyn ReportSink> = Arc::new(
        StoreSink::new(store.clone())
            .with_dkim(Arc::new(dkim))
            .with_group_commit(),
    );
    let smtp = match config.smtp_settings()? {
        Some(settings) => {
            let section = &config.intake_smtp;
            let tls = match section.starttls {
                StartTlsSource::Off => None,
                StartTlsSource::Files => {
                    let certified = smtp_certificate(section)?;
                    let resolver = rustls::sign::SingleCertAndKey::from(certified);
                    Some(smtp_tls(Arc::new(resolver))?)
                }
                StartTlsSource::Store => Some(smtp_tls(Arc::new(StoredCertificate {
                    sites: sites.clone(),
                    hostname: settings.hostname.to_ascii_lowercase(),
                }))?),
            };
            let server = SmtpServer::bind(&section.listen, settings)
                .map_err(|e| ServeError::Intake(e.to_string()))?;
            Some((server, tls))
        }
        None => None,
    };
    let https = config.intake_https.intake(sink.clone())?;
    let imap = match &config.intake_imap {
        Some(section) => Some(section.settings()?),
        None => None,
    };
    Ok(Intake {
        sink,
        smtp,
        https,
        imap,
    })
}

fn smtp_tls(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    smtp::tls_config(resolver).map_err(|e| ServeError::Intake(format!("intake_smtp TLS: {e}")))
}

/// Runs the SMTP listener and the IMAP poller until `stop`, and prunes raw inputs and
/// failure details past `[reports] retention_days` once a day.
pub(super) async fn run(
    smtp: Option<(SmtpServer, Option<Arc<rustls::ServerConfig>>)>,
    imap: Option<ImapSettings>,
    sink: Arc<dyn ReportSink>,
    store: Store,
    retention_days: Option<u32>,
    clock: super::Clock,
    stop: watch::Receiver<bool>,
) {
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let smtp_task = smtp.map(|(server, tls)| {
        let sink = sink.clone();
        let stop = stopped(stop.clone());
        tokio::spawn(async move {
            if let Err(e) = server.run(sink, tls, stop).await {
                tracing::error!(role = "intake_smtp", error = %e, "the SMTP listener failed");
            }
        })
    });
    let imap_task = imap.map(|settings| imap::start(settings, sink.clone(), stop.clone()));
    if let Some(days) = retention_days {
        let mut stop = stop.clone();
        loop {
            let before = clock.now() - i64::from(days) * 86_400;
            match store.reports_prune(before).await {
                Ok(pruned) => tracing::info!(?pruned, days, "reports: retention prune"),
                Err(e) => tracing::warn!(error = %e, "reports: the retention prune failed"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }
    for task in [smtp_task, imap_task].into_iter().flatten() {
        let _ = task.await;
    }
}
