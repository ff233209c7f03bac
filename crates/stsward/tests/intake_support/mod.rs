//! Shared by the intake durability tests: `stsward serve` as a real process on fixed loopback
//! ports (so that it can be killed and restarted on the same ones), generated TLS-RPT reports
//! (RFC 8460 §4.4) with unique report ids, and the two clients a reporting sender uses: SMTP
//! (§5.3, many messages per session) and HTTPS POST (§5.4, one keep-alive connection). Each
//! client counts a report as acknowledged only on the answer that promises it is committed:
//! `250` after DATA, `201` or `200` after POST. Every wait has a deadline.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use crate::serve_support::{self, Pki};

/// The mailbox `[intake_smtp]` accepts.
pub const REPORT_ADDRESS: &str = "tlsrpt@provider.test";
/// The hosted domain whose `mta-sts.` name the POST goes to.
pub const DOMAIN: &str = "intake.test";
/// The name the POST goes to, which the static certificate covers.
pub const POST_HOST: &str = "mta-sts.intake.test";
/// The deadline of one client step (connect, one reply, one POST answer).
pub const STEP: Duration = Duration::from_secs(30);
/// How long a (re)started server may take until both intake listeners answer.
pub const READY: Duration = Duration::from_secs(30);

/// A free loopback TCP port at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A certificate for the policy host, written into `dir`.
pub fn certificate(dir: &Path) -> Pki {
    serve_support::pki(dir, &[POST_HOST])
}

/// The TLS client configuration that trusts the test CA.
pub fn tls_client(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("test root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One `stsward serve` with its own config, SMTP and HTTPS ports and log, on `store_url`.
/// Killed (SIGKILL) when dropped.
pub struct Replica {
    pub name: String,
    config: PathBuf,
    pub smtp: SocketAddr,
    pub https: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// Writes the configuration: the serve test defaults, SMTP intake for
    /// [`REPORT_ADDRESS`] without the DKIM requirement, and the POST route.
    pub fn new(dir: &Path, name: &str, pki: &Pki, store_url: &str) -> Replica {
        let smtp: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let https: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let text = format!(
            "{}\n[intake_smtp]\nlisten = [\"{smtp}\"]\nreport_addresses = [\"{REPORT_ADDRESS}\"]\n\
             require_dkim = false\n[intake_https]\nenabled = true\npath = \"/tlsrpt\"\n",
            serve_support::config_text(pki, store_url, false)
        );
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).expect("config");
        Replica {
            name: name.to_owned(),
            config,
            smtp,
            https,
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Hosts [`DOMAIN`] in the store (`stsward domain add`), so that the policy host's TLS
    /// listeners serve [`POST_HOST`] and with it the POST route.
    pub fn add_domain(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
            .args(["domain", "add", DOMAIN, "--mx", "mx.intake.test"])
            .arg("--config")
            .arg(&self.config)
            .env_remove("STSWARD_STORE")
            .output()
            .expect("stsward domain add");
        assert!(
            out.status.success(),
            "domain add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the process (its stderr appended to the log); see [`Replica::wait_ready`].
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_stsward"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .args(["--https", &self.https.to_string()])
            .env_remove("STSWARD_STORE")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn stsward serve");
        self.child = Some(child);
    }

    /// SIGKILL, and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process has exited on its own.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!("{} log:\n{}", self.name, lines[from..].join("\n"))
    }

    /// Waits until the SMTP listener greets and the HTTPS listener completes a handshake.
    pub async fn wait_ready(&mut self, tls: &Arc<ClientConfig>) {
        let start = Instant::now();
        while start.elapsed() < READY {
            assert!(!self.exited(), "serve exited: {}", self.log_tail());
            let smtp = SmtpClient::open(self.smtp).await.is_ok();
            if smtp && HttpsClient::open(self.https, tls).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve not ready within {READY:?}: {}", self.log_tail());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One generated report: a unique id and the session counts it states.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: String,
    pub successful: u64,
    pub failed: u64,
}

impl Report {
    /// Report `n` of the series `prefix`, with counts derived from `n`.
    pub fn new(prefix: &str, n: u64) -> Report {
        Report {
            id: format!("{prefix}-{n}"),
            successful: n % 7 + 1,
            failed: n % 3,
        }
    }

    /// The report as RFC 8460 §4.4 JSON (one line).
    pub fn json(&self) -> String {
        let details = if self.failed > 0 {
            format!(
                r#","failure-details":[{{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx1.example.net","failed-session-count":{}}}]"#,
                self.failed
            )
        } else {
            String::new()
        };
        format!(
            r#"{{"organization-name":"Durable Sender","date-range":{{"start-datetime":"2026-11-30T00:00:00Z","end-datetime":"2026-11-30T23:59:59Z"}},"contact-info":"tlsrpt@sender.test","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.example.net","max_age: 86400"],"policy-domain":"example.net","mx-host":["mx1.example.net"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}}{details}}}]}}"#,
            id = self.id,
            ok = self.successful,
            failed = self.failed,
        )
    }

    /// The report as an RFC 8460 §5.3 report e-mail (the JSON as a 7bit attachment).
    pub fn mail(&self) -> String {
        format!(
            "From: tlsrpt@sender.test\r\nTo: {REPORT_ADDRESS}\r\n\
             Subject: Report Domain: example.net Submitter: sender.test Report-ID: <{id}@sender.test>\r\n\
             TLS-Report-Domain: example.net\r\nTLS-Report-Submitter: sender.test\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"BOUND\"\r\n\r\n\
             --BOUND\r\nContent-Type: text/plain\r\n\r\nThis is a TLS report.\r\n\
             --BOUND\r\nContent-Type: application/tlsrpt+json\r\n\
             Content-Disposition: attachment; filename=\"report.json\"\r\n\r\n{json}\r\n\
             --BOUND--\r\n",
            id = self.id,
            json = self.json(),
        )
    }
}

/// A minimal SMTP client: one session, many messages.
pub struct SmtpClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl SmtpClient {
    /// Connects, takes the greeting and says EHLO.
    pub async fn open(addr: SocketAddr) -> Result<SmtpClient, String> {
        let tcp = timeout(STEP, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect: timeout".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        let (r, w) = tcp.into_split();
        let mut client = SmtpClient {
            reader: BufReader::new(r),
            writer: w,
        };
        client.expect(220).await?;
        client.command("EHLO client.test\r\n", 250).await?;
        Ok(client)
    }

    async fn reply(&mut self) -> Result<u16, String> {
        let read = async {
            loop {
                let mut line = String::new();
                let n = self
                    .reader
                    .read_line(&mut line)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection closed".to_owned());
                }
                let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
                match (code, line.as_bytes().get(3)) {
                    (Some(_), Some(b'-')) => continue,
                    (Some(code), _) => return Ok(code),
                    _ => return Err(format!("bad reply line {line:?}")),
                }
            }
        };
        timeout(STEP, read)
            .await
            .map_err(|_| "reply: timeout".to_owned())?
    }

    async fn expect(&mut self, want: u16) -> Result<(), String> {
        match self.reply().await? {
            code if code == want => Ok(()),
            code => Err(format!("reply {code}, wanted {want}")),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        timeout(STEP, self.writer.write_all(bytes))
            .await
            .map_err(|_| "write: timeout".to_owned())?
            .map_err(|e| format!("write: {e}"))
    }

    async fn command(&mut self, line: &str, want: u16) -> Result<(), String> {
        self.write(line.as_bytes()).await?;
        self.expect(want).await
    }

    /// Sends one message; the reply code after the final dot.
    pub async fn send(&mut self, message: &str) -> Result<u16, String> {
        self.command("MAIL FROM:<tlsrpt@sender.test>\r\n", 250)
            .await?;
        self.command(&format!("RCPT TO:<{REPORT_ADDRESS}>\r\n"), 250)
            .await?;
        self.command("DATA\r\n", 354).await?;
        let body = message.replace("\r\n.", "\r\n..");
        self.write(format!("{body}.\r\n").as_bytes()).await?;
        self.reply().await
    }
}

/// An HTTP/1.1 client on one keep-alive TLS connection to [`POST_HOST`].
pub struct HttpsClient {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl HttpsClient {
    /// Connects and completes the TLS handshake.
    pub async fn open(addr: SocketAddr, tls: &Arc<ClientConfig>) -> Result<HttpsClient, String> {
        let work = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let name = ServerName::try_from(POST_HOST.to_owned()).map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("http handshake: {e}"))?;
            tokio::spawn(connection);
            Ok(HttpsClient { sender })
        };
        timeout(STEP, work)
            .await
            .map_err(|_| "connect: timeout".to_owned())?
    }

    /// POSTs one JSON report; the status code.
    pub async fn post(&mut self, json: String) -> Result<u16, String> {
        let work = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            let request = hyper::Request::post("/tlsrpt")
                .header("host", POST_HOST)
                .header("content-type", "application/tlsrpt+json")
                .body(Full::new(Bytes::from(json)))
                .map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = response.status().as_u16();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok(status)
        };
        timeout(STEP, work)
            .await
            .map_err(|_| "POST: timeout".to_owned())?
    }
}

/// Which channel a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Smtp,
    Https,
}

enum Connection {
    Smtp(SmtpClient),
    Https(HttpsClient),
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Reports whose submission was acknowledged.
    pub acked: Vec<Report>,
    /// Reports never acknowledged within the attempt bound.
    pub unacked: Vec<Report>,
    /// Failed attempts (connection lost, timeout, a non-acknowledging answer).
    pub failed_attempts: u64,
    /// HTTPS answers 201 (something new stored) and 200 (all duplicates).
    pub created: u64,
    pub duplicate_answers: u64,
    /// The last failure, for messages.
    pub last_error: Option<String>,
}

/// Submits the reports `next` yields, in order, over `via` to `addr`, one connection reused
/// while it works. A report not acknowledged is retried on a new connection, at most
/// `attempts` times, 100 ms apart.
pub async fn run_client(
    via: Via,
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    attempts: u32,
    mut next: impl FnMut() -> Option<Report>,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<Connection> = None;
    while let Some(report) = next() {
        let mut acked = false;
        for _ in 0..attempts {
            if connection.is_none() {
                let opened = match via {
                    Via::Smtp => SmtpClient::open(addr).await.map(Connection::Smtp),
                    Via::Https => HttpsClient::open(addr, &tls).await.map(Connection::Https),
                };
                match opened {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        tally.failed_attempts += 1;
                        tally.last_error = Some(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let answer = match connection.as_mut() {
                Some(Connection::Smtp(c)) => c.send(&report.mail()).await,
                Some(Connection::Https(c)) => c.post(report.json()).await,
                None => Err("no connection".to_owned()),
            };
            match (via, answer) {
                (Via::Smtp, Ok(250)) => acked = true,
                (Via::Https, Ok(201)) => {
                    tally.created += 1;
                    acked = true;
                }
                (Via::Https, Ok(200)) => {
                    tally.duplicate_answers += 1;
                    acked = true;
                }
                (_, Ok(code)) => tally.last_error = Some(format!("answer {code}")),
                (_, Err(e)) => tally.last_error = Some(e),
            }
            if acked {
                break;
            }
            tally.failed_attempts += 1;
            connection = None;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if acked {
            tally.acked.push(report);
        } else {
            tally.unacked.push(report);
        }
    }
    tally
}

/// Stored report rows per report id, read from the store's `reports` table directly (so that
/// a second row for one id would show, whatever the unique key says).
pub async fn stored_ids(url: &str) -> HashMap<String, i64> {
    const SQL: &str = "SELECT report_id, COUNT(*) FROM reports GROUP BY report_id";
    let rows: Vec<(String, i64)> = if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url)
            .await
            .expect("connect PostgreSQL");
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open SQLite");
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.expect("query");
        pool.close().await;
        rows
    };
    rows.into_iter().collect()
}

/// A small xorshift generator for the kill moments, seeded from the clock (the seed is
/// printed, so that a failing run can be repeated).
pub struct Jitter(u64);

impl Jitter {
    pub fn from_clock() -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Jitter(seed)
    }

    pub fn seed(&self) -> u64 {
        self.0
    }

    /// A value in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low).max(1)
    }
}
