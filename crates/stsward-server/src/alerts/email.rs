//! Alert e-mail through the operator's SMTP relay, always upgraded with STARTTLS (RFC 3207)
//! and never sent without it, by `lettre` on tokio with rustls (aws-lc-rs). The
//! relay's certificate must be valid for its host name, under the web PKI roots or the
//! `ca_file` of `[alerts.smtp]`.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::AlertSmtpSection;

/// Longest PEM file of extra roots or password read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The configured relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{key} {shown}: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{key} {shown}: larger than {MAX_FILE_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| format!("{key} {shown}: {e}"))
}

impl Mailer {
    /// A mailer for `section` (validated with the config); reads its files.
    pub fn new(section: &AlertSmtpSection) -> Result<Mailer, String> {
        let from: Mailbox = section
            .from
            .parse()
            .map_err(|e| format!("alerts.smtp.from: {e}"))?;
        let to = section
            .to
            .iter()
            .map(|t| t.parse().map_err(|e| format!("alerts.smtp.to {t:?}: {e}")))
            .collect::<Result<Vec<Mailbox>, String>>()?;
        let mut tls = TlsParameters::builder(section.relay.clone());
        if let Some(path) = &section.ca_file {
            let pem = read("alerts.smtp.ca_file", path)?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("alerts.smtp.ca_file {}: {e}", path.display()))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("alerts.smtp: TLS settings: {e}"))?;
        let hello = from.email.domain().to_owned();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&section.relay)
            .port(section.port)
            .tls(Tls::Required(tls))
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(Duration::from_secs(section.timeout.max(1))));
        if let (Some(user), Some(path)) = (&section.user, &section.password_file) {
            let password = read("alerts.smtp.password_file", path)?;
            let password = String::from_utf8(password)
                .map_err(|_| format!("alerts.smtp.password_file {}: not UTF-8", path.display()))?;
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.trim_end_matches(['\r', '\n']).to_owned(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// Sends one message with `subject` and the plain-text `body` to every recipient.
    pub async fn send(&self, subject: &str, body: String) -> Result<(), String> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(body)
            .map_err(|e| format!("the alert message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP relay: {e}"))
    }
}
