//! The SMTP report intake (RFC 8460 §5.3 report e-mails) against real clients on loopback:
//! Debian's swaks for whole deliveries, plain and over STARTTLS, and a raw TCP client for the
//! bad-input cases (pipelining flood, unfinished DATA, idle connections).
//!
//! The sinks here are real implementations of the intake contract (`ReportSink`): one that
//! records, one that fails first, one that is slow, one that panics. What the listener hands
//! them is compared byte for byte with what was sent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use stsward_server::intake::smtp::{
    ReportRecipients, SmtpLimits, SmtpServer, SmtpSettings, tls_config,
};
use stsward_server::intake::{Channel, Outcome, ReportSink, SinkError, Submission, SubmissionKind};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const REPORT_ADDRESS: &str = "tlsrpt@reports.test";
const HOST: &str = "mx.reports.test";
/// Every wait in these tests ends; none should come near this.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- sinks

/// Records every submission; answers Stored.
#[derive(Default)]
struct Recording {
    got: Mutex<Vec<Submission>>,
}

impl Recording {
    fn all(&self) -> Vec<Submission> {
        self.got.lock().expect("sink lock").clone()
    }
}

#[async_trait::async_trait]
impl ReportSink for Recording {
    async fn submit(&self, s: Submission) -> Result<Outcome, SinkError> {
        self.got.lock().expect("sink lock").push(s);
        Ok(Outcome::Stored {
            stored: 1,
            duplicates: 0,
        })
    }
}

/// Fails the first `failures` submissions (storage down), then records.
struct FailingFirst {
    failures: usize,
    calls: AtomicUsize,
    inner: Recording,
}

#[async_trait::async_trait]
impl ReportSink for FailingFirst {
    async fn submit(&self, s: Submission) -> Result<Outcome, SinkError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(SinkError("database is down (test)".into()));
        }
        self.inner.submit(s).await
    }
}

/// Takes `delay` before it records.
struct Slow {
    delay: Duration,
    inner: Recording,
}

#[async_trait::async_trait]
impl ReportSink for Slow {
    async fn submit(&self, s: Submission) -> Result<Outcome, SinkError> {
        tokio::time::sleep(self.delay).await;
        self.inner.submit(s).await
    }
}

/// Panics on a body that says so, records the rest.
#[derive(Default)]
struct PanicsOnCue {
    inner: Recording,
}

#[async_trait::async_trait]
impl ReportSink for PanicsOnCue {
    async fn submit(&self, s: Submission) -> Result<Outcome, SinkError> {
        if s.raw.windows(5).any(|w| w == b"PANIC") {
            panic!("the sink panicked (test)");
        }
        self.inner.submit(s).await
    }
}

// ---------------------------------------------------------------- server

fn limits() -> SmtpLimits {
    SmtpLimits {
        max_connections: 50,
        max_message_bytes: 1024 * 1024,
        command_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(10),
        session_timeout: Duration::from_secs(60),
        handshake_timeout: Duration::from_secs(5),
        submit_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
        ..SmtpLimits::default()
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(BOUND, self.task)
            .await
            .expect("the server stops within its grace")
            .expect("server task");
    }
}

fn start(limits: SmtpLimits, sink: Arc<dyn ReportSink>, tls: bool) -> Running {
    let settings = SmtpSettings {
        hostname: HOST.into(),
        recipients: ReportRecipients::new(&[REPORT_ADDRESS.into()], &["tlsrpt.test".into()])
            .expect("recipients"),
        require_dkim: false,
        limits,
    };
    let server = SmtpServer::bind(&["127.0.0.1:0".parse().expect("addr")], settings).expect("bind");
    let addr = server.addrs()[0];
    let tls = tls.then(test_tls);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(sink, tls, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
    });
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A self-signed certificate for [`HOST`], made for this run.
fn test_tls() -> Arc<rustls::ServerConfig> {
    let cert = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("rcgen");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified =
        CertifiedKey::from_der(vec![cert.cert.der().clone()], key, &provider).expect("key");
    tls_config(Arc::new(SingleCertAndKey::from(certified))).expect("tls config")
}

// ---------------------------------------------------------------- swaks

/// Whether swaks is installed; outside CI a missing swaks skips the test visibly (a marker
/// in `<target>/corpus-skipped/`, like the other external tools), under CI it fails.
fn have_swaks(group: &str) -> bool {
    if Command::new("swaks").arg("--version").output().is_ok() {
        return true;
    }
    let why = "swaks is not installed (scripts/install-test-deps installs it)";
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("{group}: {why}; CI is set, so this is a failure");
    }
    let line = format!("skipped {group}: {why}\n");
    eprint!("{line}");
    let dir = stsward_testkit::target_dir().join(stsward_testkit::SKIP_DIR_NAME);
    let _ = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(group.replace('/', "__")), line));
    false
}

struct SwaksRun {
    ok: bool,
    transcript: String,
}

/// Sends `data_file` (already in wire form: CRLF lines, dot-stuffed, ending in ".") with
/// swaks, untouched (`--no-data-fixup`: no token replacement, no header rewriting).
async fn swaks(addr: SocketAddr, to: &str, data_file: &Path, extra: &[&str]) -> SwaksRun {
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", &addr.ip().to_string()])
        .args(["--port", &addr.port().to_string()])
        .args(["--helo", "reporter.test", "--from", "noreply@reporter.test"])
        .args(["--to", to])
        .args(["--timeout", "20", "--no-data-fixup"])
        .arg("--data")
        .arg(format!("@{}", data_file.display()))
        .args(extra);
    let out = timeout(
        BOUND,
        tokio::task::spawn_blocking(move || cmd.output().expect("swaks runs")),
    )
    .await
    .expect("swaks ends in time")
    .expect("swaks task");
    SwaksRun {
        ok: out.status.success(),
        transcript: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A message as it travels: CRLF line ends (a lone LF becomes CRLF, as every sender's MTA
/// does), ending in CRLF. This is what the sink must receive.
fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The DATA block for `message` (already CRLF): each line starting with "." gets another
/// (RFC 5321 §4.5.2, paraphrase), then the final "." (swaks adds its CRLF).
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out.push(b'.');
    out
}

/// A message of our own whose lines start with dots, to prove the unstuffing.
fn own_message() -> Vec<u8> {
    b"From: reports@reporter.test\r\n\
To: tlsrpt@reports.test\r\n\
Subject: Report Domain: reports.test Submitter: reporter.test Report-ID: <own@reporter.test>\r\n\
TLS-Report-Domain: reports.test\r\n\
TLS-Report-Submitter: reporter.test\r\n\
\r\n\
.\r\n\
..\r\n\
.leading dot\r\n\
a line with a . inside\r\n\
...\r\n"
        .to_vec()
}

fn corpus_emls(group: &str) -> Option<Vec<PathBuf>> {
    let root = stsward_testkit::corpus(group)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tlsrpt/eml"))
        .expect("corpus tlsrpt/eml")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus has .eml reports");
    Some(files)
}

/// Sends every corpus e-mail and our own through swaks; the sink holds exactly those bytes.
async fn deliver_all(group: &str, tls: bool) {
    if !have_swaks(group) {
        return;
    }
    let Some(files) = corpus_emls(group) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut messages: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("read corpus eml");
            (p.display().to_string(), crlf(&bytes))
        })
        .collect();
    messages.push(("own message with dot lines".into(), own_message()));

    let sink = Arc::new(Recording::default());
    let server = start(limits(), sink.clone(), tls);
    let mut extra = vec!["--pipeline"];
    if tls {
        extra.push("--tls");
    }
    for (i, (name, message)) in messages.iter().enumerate() {
        let file = dir.path().join(format!("{i}.data"));
        std::fs::write(&file, stuffed(message)).expect("write data file");
        let run = swaks(server.addr, REPORT_ADDRESS, &file, &extra).await;
        assert!(run.ok, "{name}: swaks failed:\n{}", run.transcript);
        assert!(
            run.transcript.contains("<~  250 2.0.0 report accepted")
                || (!tls && run.transcript.contains("<-  250 2.0.0 report accepted")),
            "{name}: no 250 after DATA:\n{}",
            run.transcript
        );
        if tls {
            assert!(
                run.transcript.contains("TLS started"),
                "{name}: no TLS:\n{}",
                run.transcript
            );
        }
    }
    let got = sink.all();
    assert_eq!(got.len(), messages.len(), "one submission per message");
    for ((name, message), s) in messages.iter().zip(&got) {
        assert_eq!(
            s.raw.as_ref(),
            message.as_slice(),
            "{name}: the sink got other bytes"
        );
        assert_eq!(s.channel, Channel::Smtp);
        assert_eq!(s.kind, SubmissionKind::Message);
        assert_eq!(s.peer, Some(server.addr.ip()));
        assert_eq!(
            s.origin,
            "smtp from 127.0.0.1 MAIL FROM:<noreply@reporter.test>"
        );
        assert!(!s.require_dkim, "the configured require_dkim is passed on");
        assert!(s.received_at > 1_700_000_000, "a real clock reading");
    }
    // The dot lines came through unstuffed, exactly once each.
    let own = &got[got.len() - 1].raw;
    assert!(own.ends_with(b"\r\n.\r\n..\r\n.leading dot\r\na line with a . inside\r\n...\r\n"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_report_email_arrives_byte_for_byte_over_swaks() {
    deliver_all("stsward-server/intake_smtp_plain", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3207_every_corpus_report_email_arrives_over_starttls() {
    deliver_all("stsward-server/intake_smtp_starttls", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_recipient_gets_550_at_rcpt_and_nothing_is_submitted() {
    if !have_swaks("stsward-server/intake_smtp_recipient") {
        return;
    }
    let sink = Arc::new(Recording::default());
    let server = start(limits(), sink.clone(), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("m.data");
    std::fs::write(&file, stuffed(&own_message())).expect("write");
    for to in [
        "postmaster@reports.test",
        "tlsrpt@elsewhere.test",
        "x@sub.tlsrpt.test",
    ] {
        let run = swaks(server.addr, to, &file, &[]).await;
        assert!(!run.ok, "{to}: swaks should fail");
        assert!(
            run.transcript.contains("<** 550 5.1.1"),
            "{to}: no 550 5.1.1 at RCPT:\n{}",
            run.transcript
        );
    }
    assert!(sink.all().is_empty());
    // A whole configured domain is accepted.
    let run = swaks(server.addr, "anyone@tlsrpt.test", &file, &[]).await;
    assert!(run.ok, "{}", run.transcript);
    assert_eq!(sink.all().len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_gets_451_and_the_retry_is_stored_once() {
    if !have_swaks("stsward-server/intake_smtp_failing_sink") {
        return;
    }
    let sink = Arc::new(FailingFirst {
        failures: 1,
        calls: AtomicUsize::new(0),
        inner: Recording::default(),
    });
    let server = start(limits(), sink.clone(), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("m.data");
    std::fs::write(&file, stuffed(&own_message())).expect("write");
    let first = swaks(server.addr, REPORT_ADDRESS, &file, &[]).await;
    assert!(!first.ok);
    assert!(
        first.transcript.contains("<** 451 4.3.0"),
        "{}",
        first.transcript
    );
    assert!(
        !first.transcript.contains("database is down"),
        "the sink's error stays inside"
    );
    assert!(sink.inner.all().is_empty());
    let retry = swaks(server.addr, REPORT_ADDRESS, &file, &[]).await;
    assert!(retry.ok, "{}", retry.transcript);
    let got = sink.inner.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), own_message().as_slice());
    server.shutdown().await;
}

// ---------------------------------------------------------------- raw client

/// One whole reply: its code and its last line; `None` at EOF or on a read error.
async fn read_reply(read: &mut BufReader<OwnedReadHalf>) -> Option<(u16, String)> {
    loop {
        let mut line = String::new();
        let n = timeout(BOUND, read.read_line(&mut line))
            .await
            .expect("a reply in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        let code = line.get(..3)?.parse().ok()?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Some((code, line.trim_end().to_owned()));
        }
    }
}

struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let tcp = timeout(BOUND, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (r, w) = tcp.into_split();
        Client {
            read: BufReader::new(r),
            write: w,
        }
    }

    async fn reply(&mut self) -> Option<(u16, String)> {
        read_reply(&mut self.read).await
    }

    async fn send(&mut self, bytes: &[u8]) {
        timeout(BOUND, self.write.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await.expect("a reply")
    }

    /// Greeting, EHLO, MAIL, RCPT: ready for DATA.
    async fn envelope(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.reply().await.expect("greeting").0, 220);
        assert_eq!(c.command("EHLO client.test").await.0, 250);
        assert_eq!(c.command("MAIL FROM:<a@reporter.test>").await.0, 250);
        assert_eq!(
            c.command(&format!("RCPT TO:<{REPORT_ADDRESS}>")).await.0,
            250
        );
        c
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc1870_size_over_the_limit_gets_552_and_nothing_is_submitted() {
    let sink = Arc::new(Recording::default());
    let mut l = limits();
    l.max_message_bytes = 64 * 1024;
    let server = start(l, sink.clone(), false);
    let mut c = Client::connect(server.addr).await;
    c.reply().await.expect("greeting");
    assert_eq!(c.command("EHLO client.test").await.0, 250);
    let (code, text) = c.command("MAIL FROM:<a@reporter.test> SIZE=65537").await;
    assert!(code == 552 && text.starts_with("552 5.3.4"), "{text}");
    assert_eq!(
        c.command("MAIL FROM:<a@reporter.test> SIZE=1000").await.0,
        250
    );
    assert_eq!(
        c.command(&format!("RCPT TO:<{REPORT_ADDRESS}>")).await.0,
        250
    );
    assert_eq!(c.command("DATA").await.0, 354);
    // A body over the limit that never said its size: read to its end, 552, nothing kept.
    let line = [b'x'; 998];
    for _ in 0..200 {
        c.send(&line).await;
        c.send(b"\r\n").await;
    }
    let (code, text) = c.command(".").await;
    assert!(code == 552 && text.starts_with("552 5.3.4"), "{text}");
    // The session goes on and the next message fits.
    assert_eq!(c.command("MAIL FROM:<a@reporter.test>").await.0, 250);
    assert_eq!(
        c.command(&format!("RCPT TO:<{REPORT_ADDRESS}>")).await.0,
        250
    );
    assert_eq!(c.command("DATA").await.0, 354);
    assert_eq!(c.command("small\r\n.").await.0, 250);
    let got = sink.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), b"small\r\n");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_panicking_sink_gets_451_and_the_session_goes_on() {
    // Slow past the submit deadline: 451.
    let slow = Arc::new(Slow {
        delay: Duration::from_secs(3),
        inner: Recording::default(),
    });
    let mut l = limits();
    l.submit_timeout = Duration::from_secs(1);
    let server = start(l, slow.clone(), false);
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    let started = Instant::now();
    let (code, text) = c.command("late\r\n.").await;
    assert_eq!(code, 451, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the deadline"
    );
    assert_eq!(c.command("NOOP").await.0, 250, "the session goes on");
    server.shutdown().await;

    // Slow within the deadline: the sender waits and gets 250.
    let slow = Arc::new(Slow {
        delay: Duration::from_millis(500),
        inner: Recording::default(),
    });
    let server = start(limits(), slow.clone(), false);
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    assert_eq!(c.command("patience\r\n.").await.0, 250);
    assert_eq!(slow.inner.all().len(), 1);
    server.shutdown().await;

    // A panic in the sink: 451, and the next message of the same session is stored.
    let panics = Arc::new(PanicsOnCue::default());
    let server = start(limits(), panics.clone(), false);
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    assert_eq!(c.command("PANIC\r\n.").await.0, 451);
    assert_eq!(c.command("MAIL FROM:<a@reporter.test>").await.0, 250);
    assert_eq!(
        c.command(&format!("RCPT TO:<{REPORT_ADDRESS}>")).await.0,
        250
    );
    assert_eq!(c.command("DATA").await.0, 354);
    assert_eq!(c.command("calm\r\n.").await.0, 250);
    assert_eq!(panics.inner.all().len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2920_a_pipelining_flood_is_answered_in_order() {
    let sink = Arc::new(Recording::default());
    let server = start(limits(), sink.clone(), false);
    let mut c = Client::connect(server.addr).await;
    c.reply().await.expect("greeting");
    // 100,000 NOOPs and a whole transaction in one go, read while it is written.
    const NOOPS: usize = 100_000;
    let mut flood = b"EHLO client.test\r\n".to_vec();
    flood.extend_from_slice(&b"NOOP\r\n".repeat(NOOPS));
    flood.extend_from_slice(
        format!("MAIL FROM:<a@reporter.test>\r\nRCPT TO:<{REPORT_ADDRESS}>\r\nDATA\r\n").as_bytes(),
    );
    flood.extend_from_slice(b"pipelined\r\n.\r\nQUIT\r\n");
    let Client {
        mut read,
        mut write,
    } = c;
    let writer = tokio::spawn(async move {
        timeout(BOUND, write.write_all(&flood))
            .await
            .expect("the flood is read as it comes")
            .expect("flood written");
    });
    assert_eq!(read_reply(&mut read).await.expect("ehlo").0, 250);
    for i in 0..NOOPS {
        let r = read_reply(&mut read).await.expect("a NOOP reply");
        assert_eq!(r.0, 250, "NOOP {i}: {}", r.1);
    }
    let mut tail = Vec::new();
    while let Some((code, _)) = read_reply(&mut read).await {
        tail.push(code);
    }
    assert_eq!(
        tail,
        vec![250, 250, 354, 250, 221],
        "MAIL RCPT DATA dot QUIT"
    );
    writer.await.expect("writer");
    let got = sink.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), b"pipelined\r\n");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_that_never_reads_its_replies_is_cut_off_without_buffering_it() {
    let sink = Arc::new(Recording::default());
    let mut l = limits();
    l.command_timeout = Duration::from_secs(2);
    let server = start(l, sink.clone(), false);
    let mut c = Client::connect(server.addr).await;
    c.reply().await.expect("greeting");
    // Up to 256 MiB of NOOPs, never reading a reply. The server stops reading once its
    // replies cannot be written, and drops the connection at the write deadline; so only
    // what the kernel's socket buffers hold gets through, not the flood.
    const OFFERED: usize = 256 * 1024 * 1024;
    let chunk = b"NOOP\r\n".repeat(64 * 1024 / 6);
    let mut written = 0usize;
    let started = Instant::now();
    while written < OFFERED {
        match timeout(Duration::from_secs(10), c.write.write_all(&chunk)).await {
            Ok(Ok(())) => written += chunk.len(),
            Ok(Err(_)) => break, // the server closed the connection
            Err(_) => panic!("the server neither read nor closed for 10 s"),
        }
    }
    assert!(
        written < 64 * 1024 * 1024,
        "the server kept taking input: {written} octets"
    );
    assert!(started.elapsed() < BOUND);
    // It still serves others.
    let mut other = Client::envelope(server.addr).await;
    assert_eq!(other.command("DATA").await.0, 354);
    assert_eq!(other.command("after the flood\r\n.").await.0, 250);
    assert_eq!(sink.all().len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_data_is_cut_off_and_nothing_is_submitted() {
    let sink = Arc::new(Recording::default());
    let mut l = limits();
    l.command_timeout = Duration::from_secs(1);
    l.data_timeout = Duration::from_secs(3);
    let server = start(l, sink.clone(), false);

    // Silent after DATA: the per-read deadline.
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    c.send(b"Subject: never ends\r\n\r\nhalf a report").await;
    let started = Instant::now();
    let (code, text) = c.reply().await.expect("a 421 before the close");
    assert!(code == 421 && text.contains("4.4.2"), "{text}");
    assert!(c.reply().await.is_none(), "closed");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Trickling a byte every 300 ms keeps each read in time, but not the DATA block.
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    let started = Instant::now();
    let mut cut = false;
    for _ in 0..40 {
        if c.write.write_all(b"x").await.is_err() {
            cut = true;
            break;
        }
        let mut one = [0u8; 1];
        match timeout(Duration::from_millis(300), c.read.read(&mut one)).await {
            Err(_) => continue,
            Ok(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the DATA deadline cut the trickle off");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(2500) && elapsed < Duration::from_secs(6),
        "cut at the DATA deadline, not the command one: {elapsed:?}"
    );
    assert!(
        sink.all().is_empty(),
        "nothing of an unfinished message is submitted"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_connections_hold_at_most_the_limit() {
    let sink = Arc::new(Recording::default());
    let mut l = limits();
    l.max_connections = 100;
    // Long enough that no idle session times out while the 500 connect, even on a busy
    // machine: that would free a slot and let a later one in.
    l.command_timeout = Duration::from_secs(10);
    let server = start(l, sink.clone(), false);
    let mut idle = Vec::new();
    let mut greeted = 0;
    let mut refused = 0;
    for _ in 0..500 {
        let mut c = Client::connect(server.addr).await;
        match c.reply().await {
            Some((220, _)) => {
                greeted += 1;
                idle.push(c);
            }
            Some((421, text)) => {
                assert!(text.contains("4.3.2"), "{text}");
                assert!(c.reply().await.is_none(), "closed after the 421");
                refused += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((greeted, refused), (100, 400));
    // While they sit there, a newcomer is refused too.
    let mut c = Client::connect(server.addr).await;
    assert_eq!(c.reply().await.map(|r| r.0), Some(421));
    // The command deadline ends every idle session, with a 421 first.
    for c in &mut idle {
        let (code, text) = c.reply().await.expect("421 at the deadline");
        assert!(code == 421 && text.contains("4.4.2"), "{text}");
        assert!(c.reply().await.is_none());
    }
    drop(idle);
    // Slots are given back: a new client is served and its message stored.
    let mut c = Client::envelope(server.addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    assert_eq!(c.command("after the crowd\r\n.").await.0, 250);
    assert_eq!(sink.all().len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_message_in_flight_then_closes() {
    let slow = Arc::new(Slow {
        delay: Duration::from_secs(1),
        inner: Recording::default(),
    });
    let server = start(limits(), slow.clone(), false);
    let addr = server.addr;
    let mut idle = Client::connect(addr).await;
    assert_eq!(idle.reply().await.map(|r| r.0), Some(220));
    let mut c = Client::envelope(addr).await;
    assert_eq!(c.command("DATA").await.0, 354);
    c.send(b"in flight\r\n.\r\n").await;
    // The sink is working on it when the shutdown comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::spawn(server.shutdown());
    let (code, text) = c.reply().await.expect("the answer to the dot");
    assert_eq!(code, 250, "{text}");
    let (code, text) = c.reply().await.expect("then 421");
    assert!(code == 421 && text.contains("shutting down"), "{text}");
    let (code, _) = idle.reply().await.expect("the idle session is told too");
    assert_eq!(code, 421);
    timeout(BOUND, stopping)
        .await
        .expect("stopped in time")
        .expect("stop task");
    assert_eq!(slow.inner.all().len(), 1);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_in_flight_share_a_memory_budget_and_the_loser_gets_452() {
    let sink = Arc::new(Recording::default());
    let mut l = limits();
    l.max_message_bytes = 200 * 1024;
    l.max_buffered_bytes = 256 * 1024;
    let server = start(l, sink.clone(), false);
    let body: Vec<u8> = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"
        .repeat(150 * 1024 / 64);

    // The first sender holds 150 KiB (and room for its next reads), unfinished.
    let mut first = Client::envelope(server.addr).await;
    assert_eq!(first.command("DATA").await.0, 354);
    first.send(&body).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The second finds no room for its 150 KiB: read to its end, 452, nothing kept.
    let mut second = Client::envelope(server.addr).await;
    assert_eq!(second.command("DATA").await.0, 354);
    second.send(&body).await;
    let (code, text) = second.command(".").await;
    assert!(code == 452 && text.starts_with("452 4.3.1"), "{text}");
    assert!(sink.all().is_empty());

    // The first completes; its room is given back and the second's retry fits.
    assert_eq!(first.command(".").await.0, 250);
    assert_eq!(second.command("MAIL FROM:<a@reporter.test>").await.0, 250);
    assert_eq!(
        second
            .command(&format!("RCPT TO:<{REPORT_ADDRESS}>"))
            .await
            .0,
        250
    );
    assert_eq!(second.command("DATA").await.0, 354);
    second.send(&body).await;
    assert_eq!(second.command(".").await.0, 250);
    let got = sink.all();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|s| s.raw.as_ref() == body.as_slice()));
    server.shutdown().await;
}
