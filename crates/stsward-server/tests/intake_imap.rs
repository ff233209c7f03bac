//! The IMAP poller against a real Dovecot (a throwaway instance on 127.0.0.1): report e-mails
//! (RFC 8460 §5.3) are read, handed to the sink, and filed into the processed or invalid
//! folder; moves use UID MOVE (RFC 6851), or copy and expunge where MOVE is not offered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use stsward_server::config::ServeConfig;
use stsward_server::intake::imap::{self, ImapError, ImapSettings};
use stsward_server::intake::{Channel, Outcome, ReportSink, SinkError, Submission, SubmissionKind};
use stsward_testkit::dovecot::{Dovecot, DovecotOptions};
use tokio::net::TcpStream;

/// The test sink quarantines messages carrying this header.
const NOT_A_REPORT: &[u8] = b"X-Stsward-Test: not a report";
const NOW: i64 = 1_700_000_000;

/// A real `ReportSink`: keeps every submission; quarantines the marked non-report message,
/// stores the rest, or fails everything.
struct TestSink {
    fail: bool,
    got: Mutex<Vec<Submission>>,
}

#[async_trait::async_trait]
impl ReportSink for TestSink {
    async fn submit(&self, submission: Submission) -> Result<Outcome, SinkError> {
        if self.fail {
            return Err(SinkError("the database is down".into()));
        }
        let marked = submission
            .raw
            .windows(NOT_A_REPORT.len())
            .any(|w| w == NOT_A_REPORT);
        self.got.lock().expect("lock").push(submission);
        Ok(if marked {
            Outcome::Quarantined {
                reason: "no TLS-RPT report in the message".into(),
            }
        } else {
            Outcome::Stored {
                stored: 1,
                duplicates: 0,
            }
        })
    }
}

fn sink(fail: bool) -> Arc<TestSink> {
    Arc::new(TestSink {
        fail,
        got: Mutex::new(Vec::new()),
    })
}

fn start(options: DovecotOptions) -> Option<Dovecot> {
    Dovecot::start("stsward-server/intake_imap", options)
}

/// The poller's settings, through the `[intake_imap]` section as an operator writes it.
fn settings(dovecot: &Dovecot, tls: &str, extra: &str) -> ImapSettings {
    let (host, port) = match tls {
        "implicit" => ("localhost", dovecot.imaps_port()),
        "starttls" => ("localhost", dovecot.imap_port()),
        _ => ("127.0.0.1", dovecot.imap_port()),
    };
    let text = format!(
        "[intake_imap]\nhost = {host:?}\nport = {port}\ntls = {tls:?}\nca_file = {:?}\n\
         user = {:?}\npassword = {:?}\ntimeout = 10\n{extra}",
        dovecot.ca_file().display().to_string(),
        dovecot.user(),
        dovecot.password(),
    );
    let config: ServeConfig = text.parse().expect("the test's config");
    config
        .intake_imap
        .expect("section")
        .settings()
        .expect("settings")
}

type Session = async_imap::Session<TcpStream>;

/// A plain IMAP session of the test's own, to deliver and to count.
async fn session(dovecot: &Dovecot) -> Session {
    let tcp = TcpStream::connect(("127.0.0.1", dovecot.imap_port()))
        .await
        .expect("connect");
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.expect("greeting");
    client
        .login(dovecot.user(), dovecot.password())
        .await
        .map_err(|(e, _)| e)
        .expect("login")
}

/// APPENDs each message to INBOX.
async fn deliver(dovecot: &Dovecot, messages: &[Vec<u8>]) {
    let mut s = session(dovecot).await;
    for m in messages {
        s.append("INBOX", None, None, m).await.expect("append");
    }
    s.logout().await.expect("logout");
}

/// How many messages `folder` holds (0 when it does not exist).
async fn count(dovecot: &Dovecot, folder: &str) -> u32 {
    let mut s = session(dovecot).await;
    let n = match s.status(folder, "(MESSAGES)").await {
        Ok(mailbox) => mailbox.exists,
        Err(_) => 0,
    };
    s.logout().await.expect("logout");
    n
}

/// The messages of `folder`, as the server returns them.
async fn contents(dovecot: &Dovecot, folder: &str) -> Vec<Vec<u8>> {
    let mut s = session(dovecot).await;
    let mailbox = s.select(folder).await.expect("select");
    let mut out = Vec::new();
    if mailbox.exists > 0 {
        let fetches: Vec<_> = s
            .fetch("1:*", "BODY.PEEK[]")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetched");
        out = fetches
            .iter()
            .filter_map(|f| f.body().map(<[u8]>::to_vec))
            .collect();
    }
    s.logout().await.expect("logout");
    out
}

fn non_report() -> Vec<u8> {
    let mut m = b"From: someone@example.net\r\nTo: reports@example.com\r\n\
                  Subject: lunch?\r\n"
        .to_vec();
    m.extend_from_slice(NOT_A_REPORT);
    m.extend_from_slice(b"\r\n\r\nNot a TLS report.\r\n");
    m
}

fn plain_report(n: usize) -> Vec<u8> {
    format!(
        "From: tlsrpt@sender.example\r\nTo: reports@example.com\r\n\
         Subject: Report Domain: example.com Submitter: sender.example Report-ID: <{n}@x>\r\n\
         TLS-Report-Domain: example.com\r\nTLS-Report-Submitter: sender.example\r\n\r\n\
         report {n}\r\n"
    )
    .into_bytes()
}

/// Line ends as stored: Dovecot hands messages back with CRLF.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn corpus_emls() -> Option<Vec<PathBuf>> {
    let root = stsward_testkit::corpus("stsward-server/intake_imap")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tlsrpt/eml"))
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    Some(files)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("corpus file")
}

/// Every corpus e-mail plus one non-report: reports end in Processed, the non-report in
/// Invalid, the INBOX is empty, and the sink saw each message once, as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_email_is_submitted_and_filed() {
    let Some(files) = corpus_emls() else { return };
    let Some(dovecot) = start(DovecotOptions::default()) else {
        return;
    };
    let mut messages: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    let reports = messages.len();
    assert!(reports > 0, "the corpus has e-mails");
    messages.push(non_report());
    deliver(&dovecot, &messages).await;
    assert_eq!(count(&dovecot, "INBOX").await as usize, reports + 1);

    let sink = sink(false);
    let settings = settings(&dovecot, "starttls", "");
    let summary = imap::poll_once(&settings, sink.as_ref(), NOW)
        .await
        .expect("a round");
    assert_eq!(summary.processed, reports, "{summary:?}\n{}", dovecot.log());
    assert_eq!(summary.quarantined, 1);
    assert_eq!(summary.deferred, None);

    assert_eq!(count(&dovecot, "INBOX").await, 0, "the INBOX is empty");
    assert_eq!(count(&dovecot, "Processed").await as usize, reports);
    let invalid = contents(&dovecot, "Invalid").await;
    assert_eq!(invalid.len(), 1);
    assert_eq!(
        invalid[0],
        crlf(&non_report()),
        "the non-report is in Invalid"
    );

    let got = sink.got.lock().expect("lock").clone();
    assert_eq!(got.len(), reports + 1, "each message submitted once");
    let mut submitted: Vec<Vec<u8>> = got.iter().map(|s| crlf(&s.raw)).collect();
    let mut delivered: Vec<Vec<u8>> = messages.iter().map(|m| crlf(m)).collect();
    submitted.sort();
    delivered.sort();
    assert!(
        submitted == delivered,
        "the sink got the delivered messages"
    );
    for s in &got {
        assert_eq!(s.channel, Channel::Imap);
        assert_eq!(s.kind, SubmissionKind::Message);
        assert!(s.require_dkim, "require_dkim defaults to true");
        assert_eq!(s.received_at, NOW);
        assert_eq!(s.peer, None);
        assert!(
            s.origin.contains("INBOX") && s.origin.contains(" uid "),
            "{}",
            s.origin
        );
    }
    // A second round finds nothing left to do.
    let again = imap::poll_once(&settings, sink.as_ref(), NOW)
        .await
        .expect("a round");
    assert_eq!((again.processed, again.quarantined), (0, 0));
}

/// A failing sink: the message stays in the INBOX, the round stops at it, and the next round
/// (with the store back) files everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_leaves_everything_in_the_inbox() {
    let Some(dovecot) = start(DovecotOptions::default()) else {
        return;
    };
    let messages: Vec<Vec<u8>> = (0..3).map(plain_report).collect();
    deliver(&dovecot, &messages).await;
    let settings = settings(&dovecot, "plain", "require_dkim = false\n");

    let failing = sink(true);
    let summary = imap::poll_once(&settings, failing.as_ref(), NOW)
        .await
        .expect("the round itself works");
    assert!(summary.deferred.is_some(), "{summary:?}");
    assert_eq!(summary.processed, 0);
    assert_eq!(count(&dovecot, "INBOX").await, 3, "nothing moved");
    assert_eq!(count(&dovecot, "Processed").await, 0);
    assert_eq!(count(&dovecot, "Invalid").await, 0);

    let working = sink(false);
    let summary = imap::poll_once(&settings, working.as_ref(), NOW)
        .await
        .expect("a round");
    assert_eq!(summary.processed, 3);
    assert_eq!(count(&dovecot, "INBOX").await, 0);
    assert_eq!(count(&dovecot, "Processed").await, 3);
    let got = working.got.lock().expect("lock");
    assert!(
        got.iter().all(|s| !s.require_dkim),
        "require_dkim = false is passed on"
    );
}

/// Implicit TLS and STARTTLS both work with the configured CA, and a server whose
/// certificate is not trusted is refused before the password is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_implicit_and_starttls() {
    let Some(dovecot) = start(DovecotOptions::default()) else {
        return;
    };
    for (i, mode) in ["implicit", "starttls"].into_iter().enumerate() {
        deliver(&dovecot, &[plain_report(i)]).await;
        let sink = sink(false);
        let summary = imap::poll_once(&settings(&dovecot, mode, ""), sink.as_ref(), NOW)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}\n{}", dovecot.log()));
        assert_eq!(summary.processed, 1, "{mode}");
        assert_eq!(count(&dovecot, "Processed").await as usize, i + 1, "{mode}");
    }
    deliver(&dovecot, &[plain_report(9)]).await;
    let mut untrusted = settings(&dovecot, "implicit", "");
    untrusted.ca_file = None; // the web PKI does not know the test certificate
    let error = imap::poll_once(&untrusted, sink(false).as_ref(), NOW)
        .await
        .expect_err("an untrusted certificate");
    assert!(matches!(error, ImapError::Tls { .. }), "{error}");
    assert_eq!(count(&dovecot, "INBOX").await, 1, "nothing was read");
}

/// Without MOVE the poller copies, flags \Deleted and expunges: same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_copy_and_expunge() {
    let options = DovecotOptions {
        without_move: true,
        ..DovecotOptions::default()
    };
    let Some(dovecot) = start(options) else {
        return;
    };
    // The server really does not offer MOVE.
    let mut s = session(&dovecot).await;
    let caps = s.capabilities().await.expect("capabilities");
    assert!(!caps.has_str("MOVE") && caps.has_str("UIDPLUS"));
    s.logout().await.expect("logout");

    deliver(&dovecot, &[plain_report(1), non_report(), plain_report(2)]).await;
    let summary = imap::poll_once(&settings(&dovecot, "plain", ""), sink(false).as_ref(), NOW)
        .await
        .expect("a round");
    assert_eq!((summary.processed, summary.quarantined), (2, 1));
    assert_eq!(count(&dovecot, "INBOX").await, 0);
    assert_eq!(count(&dovecot, "Processed").await, 2);
    assert_eq!(count(&dovecot, "Invalid").await, 1);
}

/// A message over the bound goes to Invalid without being fetched or submitted; custom
/// folder names are created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_mail_is_filed_unread_into_custom_folders() {
    let Some(dovecot) = start(DovecotOptions::default()) else {
        return;
    };
    let mut big = plain_report(1);
    big.extend(std::iter::repeat_n(b'x', 4096));
    big.extend_from_slice(b"\r\n");
    deliver(&dovecot, &[big, plain_report(2)]).await;
    let extra = "max_message_bytes = 2048\nprocessed_folder = \"Reports/Done\"\n\
                 invalid_folder = \"Reports/Bad\"\n";
    let sink = sink(false);
    let summary = imap::poll_once(&settings(&dovecot, "plain", extra), sink.as_ref(), NOW)
        .await
        .expect("a round");
    assert_eq!(
        (summary.processed, summary.oversized),
        (1, 1),
        "{summary:?}"
    );
    assert_eq!(
        sink.got.lock().expect("lock").len(),
        1,
        "the big one was not submitted"
    );
    assert_eq!(count(&dovecot, "Reports/Done").await, 1);
    assert_eq!(count(&dovecot, "Reports/Bad").await, 1);
    assert_eq!(count(&dovecot, "INBOX").await, 0);
}

/// The running poller (as `stsward serve` starts it) files mail that arrives between rounds,
/// and stops when told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_runs_rounds_until_stopped() {
    let Some(dovecot) = start(DovecotOptions::default()) else {
        return;
    };
    let settings = settings(&dovecot, "plain", "poll_interval = 1\n");
    let sink = sink(false);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = imap::start(settings, sink.clone(), stop_rx);
    for n in 0..2 {
        deliver(&dovecot, &[plain_report(n)]).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        while (count(&dovecot, "Processed").await as usize) < n + 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {n} did not come"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    stop_tx.send(true).expect("the poller listens");
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("stops in time")
        .expect("task");
    assert_eq!(sink.got.lock().expect("lock").len(), 2);
}

/// A server that accepts and then says nothing: the round ends at the deadline, with an
/// error that names the step.
#[tokio::test]
async fn a_silent_server_hits_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            conns.push(conn); // kept open, never written to
        }
    });
    let text = format!(
        "[intake_imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nuser = \"u\"\n\
         password = \"p\"\ntimeout = 1\n"
    );
    let config: ServeConfig = text.parse().expect("config");
    let settings = config.intake_imap.expect("section").settings().expect("ok");
    let started = std::time::Instant::now();
    let error = imap::poll_once(&settings, sink(false).as_ref(), NOW)
        .await
        .expect_err("no greeting");
    assert!(
        matches!(&error, ImapError::Timeout { step, .. } if step.contains("greeting")),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    held.abort();
}
