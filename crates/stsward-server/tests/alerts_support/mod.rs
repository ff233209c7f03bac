//! Local receivers for the alert tests, on loopback: an SMTP sink that offers STARTTLS and
//! takes mail only after it (before, mail commands get a 530 refusal, as RFC 3207 has a
//! server that requires TLS answer; paraphrased), and a
//! webhook receiver (hyper) that records each JSON body and can be told to fail.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use stsward_lab::ca::{CertVariant, LabCa};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The longest command line or message the sink takes.
const MAX_LINE: u64 = 4096;
const MAX_MESSAGE: usize = 1024 * 1024;
/// One SMTP session's deadline.
const SESSION: Duration = Duration::from_secs(20);

/// A mail the sink took.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Whether the session was under TLS when the mail came.
    pub tls: bool,
    /// `RCPT TO` arguments.
    pub rcpt: Vec<String>,
    /// The message, headers and body.
    pub data: String,
}

/// An SMTP sink with STARTTLS on 127.0.0.1 (its certificate names `localhost`).
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    /// The PEM file of the CA that signed its certificate.
    pub ca_file: PathBuf,
    /// The mails taken.
    pub mails: Arc<Mutex<Vec<Mail>>>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts the sink.
    pub async fn start() -> SmtpSink {
        SmtpSink::start_offering(true).await
    }

    /// Starts a sink that offers STARTTLS, or (`false`) one that does not.
    pub async fn start_offering(starttls: bool) -> SmtpSink {
        let ca = LabCa::new(time::OffsetDateTime::now_utc()).expect("lab CA");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = ca.write_ca_file(dir.path()).expect("CA file");
        let issued = ca
            .issue(&["localhost".to_owned()], CertVariant::Good)
            .expect("certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(issued.chain.clone(), issued.private_key())
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let taken = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, taken) = (acceptor.clone(), taken.clone());
                tokio::spawn(async move {
                    let talk = session(tcp, acceptor, taken, starttls);
                    let _ = tokio::time::timeout(SESSION, talk).await;
                });
            }
        });
        SmtpSink {
            port,
            ca_file,
            mails,
            _dir: dir,
            task,
        }
    }

    /// The mails taken so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("mails").clone()
    }
}

/// Reads one line (bounded), without its CRLF; `None` at the end of the stream.
async fn line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Option<String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if n == 0 {
        return None;
    }
    let text = String::from_utf8_lossy(&buf);
    Some(text.trim_end_matches(['\r', '\n']).to_owned())
}

async fn session(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    mails: Arc<Mutex<Vec<Mail>>>,
    starttls: bool,
) {
    let mut plain = BufReader::new(tcp);
    if plain
        .get_mut()
        .write_all(b"220 sink ESMTP\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Before STARTTLS only EHLO, STARTTLS and QUIT are taken.
    loop {
        let Some(cmd) = line(&mut plain).await else {
            return;
        };
        let verb = cmd.to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") && !starttls {
            b"250 sink\r\n"
        } else if verb.starts_with("EHLO") {
            b"250-sink\r\n250 STARTTLS\r\n"
        } else if verb == "STARTTLS" && starttls {
            if plain
                .get_mut()
                .write_all(b"220 go ahead\r\n")
                .await
                .is_err()
            {
                return;
            }
            break;
        } else if verb == "QUIT" {
            let _ = plain.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"530 Must issue a STARTTLS command first\r\n"
        };
        if plain.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
    let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
        return;
    };
    mail_loop(BufReader::new(tls), mails).await;
}

async fn mail_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: BufReader<S>,
    mails: Arc<Mutex<Vec<Mail>>>,
) {
    let mut rcpt = Vec::new();
    loop {
        let Some(cmd) = line(&mut s).await else {
            return;
        };
        let verb = cmd.to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if verb.starts_with("MAIL FROM:") || verb == "RSET" || verb == "NOOP" {
            rcpt.clear();
            b"250 ok\r\n"
        } else if verb.starts_with("RCPT TO:") {
            rcpt.push(cmd["RCPT TO:".len()..].trim().to_owned());
            b"250 ok\r\n"
        } else if verb == "DATA" {
            if s.get_mut().write_all(b"354 go on\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                let Some(l) = line(&mut s).await else {
                    return;
                };
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
                if data.len() > MAX_MESSAGE {
                    return;
                }
            }
            mails.lock().expect("mails").push(Mail {
                tls: true,
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 queued\r\n"
        } else if verb == "QUIT" {
            let _ = s.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not here\r\n"
        };
        if s.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// A webhook receiver on 127.0.0.1: records each POSTed JSON body; answers 500 while
/// `fail` is above zero (counting down).
pub struct Receiver {
    /// Its address.
    pub addr: SocketAddr,
    /// The bodies received and answered with success.
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Requests still to fail.
    pub fail: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts the receiver.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicUsize::new(0));
        let (b, f) = (bodies.clone(), fail.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (b, f) = (b.clone(), f.clone());
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (b, f) = (b.clone(), f.clone());
                    async move {
                        let body = Limited::new(req.into_body(), 256 * 1024)
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        let failing = f
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        let status = if failing {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            b.lock().expect("bodies").push(json);
                            StatusCode::OK
                        };
                        let mut answer = Response::new(Full::new(Bytes::from_static(b"{}")));
                        *answer.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(answer)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            bodies,
            fail,
            task,
        }
    }

    /// The URL to configure, with a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("bodies").clone()
    }
}
