//! RFC 8460 §5.4 — reports by HTTPS POST, end to end: the policy host's real TLS listener on
//! 127.0.0.1 with a lab certificate, curl as the reporting sender, and sinks of the test's
//! own (recording, quarantining, failing) behind the route.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use stsward_lab::{CertVariant, LabCa};
use stsward_server::config::ServeConfig;
use stsward_server::host::{Challenges, FetchCounter, HostLimits, HostServer, Sites};
use stsward_server::intake::https::{HttpsIntake, HttpsIntakeLimits};
use stsward_server::intake::{Channel, Outcome, ReportSink, SinkError, Submission, SubmissionKind};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

const HOST: &str = "mta-sts.a.test";
const POLICY: &str = "version: STSv1\r\nmode: testing\r\nmx: mx.a.test\r\nmax_age: 86400\r\n";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The test's received_at: the route's clock is an argument.
const NOW: i64 = 1_700_000_000;

/// What each test sink answers.
#[derive(Clone, Copy)]
enum Answer {
    Stored,
    Duplicate,
    Quarantine,
    Fail,
}

/// A real `ReportSink` that keeps what it was given and answers as told.
struct TestSink {
    answer: Answer,
    got: Mutex<Vec<Submission>>,
}

#[async_trait::async_trait]
impl ReportSink for TestSink {
    async fn submit(&self, submission: Submission) -> Result<Outcome, SinkError> {
        self.got.lock().expect("lock").push(submission);
        match self.answer {
            Answer::Stored => Ok(Outcome::Stored {
                stored: 1,
                duplicates: 0,
            }),
            Answer::Duplicate => Ok(Outcome::Stored {
                stored: 0,
                duplicates: 1,
            }),
            Answer::Quarantine => Ok(Outcome::Quarantined {
                reason: "the JSON field \"policies\" is missing".into(),
            }),
            Answer::Fail => Err(SinkError("the database is down".into())),
        }
    }
}

impl TestSink {
    fn new(answer: Answer) -> Arc<TestSink> {
        Arc::new(TestSink {
            answer,
            got: Mutex::new(Vec::new()),
        })
    }

    fn taken(&self) -> Vec<Submission> {
        std::mem::take(&mut *self.got.lock().expect("lock"))
    }
}

struct Running {
    addr: SocketAddr,
    ca: LabCa,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn small_limits() -> HttpsIntakeLimits {
    HttpsIntakeLimits {
        max_body_bytes: 1024 * 1024,
        max_decompressed_bytes: 4 * 1024 * 1024,
        body_timeout: Duration::from_secs(1),
        max_concurrent: 4,
    }
}

async fn start(sink: Arc<TestSink>, limits: HttpsIntakeLimits) -> Running {
    let intake = HttpsIntake::new("/tlsrpt", limits, sink)
        .expect("route")
        .with_clock(Arc::new(|| NOW));
    start_with(intake).await
}

async fn start_with(intake: HttpsIntake) -> Running {
    let ca = LabCa::new(OffsetDateTime::now_utc()).expect("lab CA");
    let sites = Sites::new();
    sites.upsert_policy("a.test", POLICY).expect("policy");
    let issued = ca
        .issue(&[HOST.to_owned()], CertVariant::Good)
        .expect("issue");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = CertifiedKey::from_der(issued.chain.clone(), issued.private_key(), &provider)
        .expect("certified key");
    sites.set_certificate(HOST, key).expect("certificate");
    let server = HostServer::bind(
        &["127.0.0.1:0".parse().expect("addr")],
        &[],
        HostLimits::default(),
    )
    .expect("bind")
    .with_https_intake(intake);
    let addr = server.https_addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        server
            .run(sites, Challenges::new(), FetchCounter::default(), shutdown)
            .await
            .expect("run");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.write_ca_file(dir.path()).expect("CA file");
    Running {
        addr,
        ca,
        ca_file,
        _dir: dir,
        stop: Some(stop),
    }
}

/// What curl saw.
struct CurlResult {
    status: u16,
    uploaded: u64,
    headers: String,
    body: String,
}

/// Runs curl against the route (or `path`) with `args` added; curl is the reporting sender.
async fn curl(running: &Running, path: &str, args: &[&str]) -> CurlResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let url = format!("https://{HOST}:{}{path}", running.addr.port());
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&running.ca_file)
        .arg("--resolve")
        .arg(format!("{HOST}:{}:127.0.0.1", running.addr.port()))
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code} %{size_upload}"])
        .args(args)
        .arg(url);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("curl runs (it is on every test machine)");
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = written.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let uploaded = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!(
        status != 0,
        "curl got no answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    CurlResult {
        status,
        uploaded,
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

async fn post_file(running: &Running, file: &Path, content_type: &str) -> CurlResult {
    let data = format!("@{}", file.display());
    let header = format!("Content-Type: {content_type}");
    curl(running, "/tlsrpt", &["-H", &header, "--data-binary", &data]).await
}

fn corpus_files(sub: &str) -> Option<Vec<PathBuf>> {
    let root = stsward_testkit::corpus("stsward-server/intake_https")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tlsrpt").join(sub))
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Every corpus report, JSON and gzip, reaches the sink byte for byte, with 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8460_5_4_every_corpus_report_reaches_the_sink_exactly() {
    let (Some(json), Some(gz)) = (corpus_files("json"), corpus_files("gz")) else {
        return;
    };
    assert!(!json.is_empty() && !gz.is_empty(), "the corpus has reports");
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), HttpsIntakeLimits::default()).await;
    for (files, media, kind) in [
        (&json, "application/tlsrpt+json", SubmissionKind::Json),
        (&gz, "application/tlsrpt+gzip", SubmissionKind::Gzip),
    ] {
        for file in files {
            let got = post_file(&running, file, media).await;
            assert_eq!(got.status, 201, "{}: {}", file.display(), got.body);
            let sent = sink.taken();
            assert_eq!(sent.len(), 1, "{}", file.display());
            let s = &sent[0];
            let bytes = std::fs::read(file).expect("corpus file");
            assert_eq!(s.raw.as_ref(), bytes.as_slice(), "{}", file.display());
            assert_eq!(s.kind, kind);
            assert_eq!(s.channel, Channel::Https);
            assert_eq!(s.received_at, NOW);
            assert_eq!(s.peer, Some("127.0.0.1".parse().expect("ip")));
            assert!(s.origin.contains(HOST), "{}", s.origin);
            assert!(!s.require_dkim, "HTTPS reports carry no DKIM");
        }
    }
}

/// A report already stored gets 200, a new one 201: both are RFC 8460 §5.4 successes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8460_5_4_duplicate_gets_200() {
    let sink = TestSink::new(Answer::Duplicate);
    let running = start(sink.clone(), small_limits()).await;
    let got = curl(
        &running,
        "/tlsrpt",
        &[
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--data-binary",
            "{}",
        ],
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.contains("already stored"), "{}", got.body);
    assert_eq!(sink.taken().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_content_type_gets_415_and_nothing_is_submitted() {
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), small_limits()).await;
    // (extra curl arguments, why it is refused)
    let bad: [(&[&str], &str); 3] = [
        (
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{}",
            ],
            "a generic JSON type",
        ),
        (
            &["-H", "Content-Type: text/plain", "--data-binary", "{}"],
            "text",
        ),
        (
            &["-H", "Content-Type:", "--data-binary", "{}"],
            "no Content-Type at all",
        ),
    ];
    for (args, why) in bad {
        let got = curl(&running, "/tlsrpt", args).await;
        assert_eq!(got.status, 415, "{why}: {}", got.body);
        assert!(got.body.contains("application/tlsrpt+gzip"), "{why}");
    }
    let got = curl(&running, "/tlsrpt", &[]).await;
    assert_eq!(got.status, 405, "GET of the route");
    assert!(got.headers.to_ascii_lowercase().contains("allow: post"));
    assert!(sink.taken().is_empty());
}

/// 50 MB: refused from its Content-Length (curl stops after `Expect: 100-continue`), and a
/// chunked one is cut off where the bound is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_body_gets_413_without_being_read() {
    const FIFTY_MB: u64 = 50 * 1024 * 1024;
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), small_limits()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.json");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(FIFTY_MB).expect("sparse 50 MB file");
    let got = post_file(&running, &big, "application/tlsrpt+json").await;
    assert_eq!(got.status, 413, "{}", got.body);
    assert!(
        got.uploaded < FIFTY_MB,
        "curl uploaded {} bytes",
        got.uploaded
    );

    // No Expect: the head alone, declaring 50 MB, is answered at once.
    let mut tls = connect(&running).await;
    let head = format!(
        "POST /tlsrpt HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/tlsrpt+json\r\n\
         Content-Length: {FIFTY_MB}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    let answer = read_head(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Chunked: the server stops reading at the bound, so the sender cannot push 50 MB.
    let mut tls = connect(&running).await;
    let head = format!(
        "POST /tlsrpt HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/tlsrpt+json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    let mut sent: u64 = 0;
    let pushed = tokio::time::timeout(Duration::from_secs(10), async {
        while sent < FIFTY_MB {
            if tls.write_all(chunk.as_bytes()).await.is_err() {
                return false;
            }
            sent += 0x10000;
        }
        true
    })
    .await;
    assert!(
        !matches!(pushed, Ok(true)),
        "all 50 MB were accepted ({sent} bytes)"
    );
    assert!(sink.taken().is_empty(), "nothing oversized was submitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_gets_413() {
    use std::io::Write;
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), small_limits()).await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(&vec![b' '; 8 * 1024 * 1024])
        .expect("compress");
    let bomb = encoder.finish().expect("finish");
    assert!(bomb.len() < 1024 * 1024, "small when compressed");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bomb.json.gz");
    std::fs::write(&file, bomb).expect("write");
    let got = post_file(&running, &file, "application/tlsrpt+gzip").await;
    assert_eq!(got.status, 413, "{}", got.body);
    assert!(got.body.contains("decompressed"), "{}", got.body);
    assert!(sink.taken().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_input_gets_400_with_the_reason() {
    let sink = TestSink::new(Answer::Quarantine);
    let running = start(sink.clone(), small_limits()).await;
    let got = curl(
        &running,
        "/tlsrpt",
        &[
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--data-binary",
            "{\"organization-name\": 1}",
        ],
    )
    .await;
    assert_eq!(got.status, 400);
    assert!(got.body.contains("\"policies\" is missing"), "{}", got.body);
    assert_eq!(sink.taken().len(), 1, "it was committed (quarantined)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_gets_503_with_retry_after() {
    let sink = TestSink::new(Answer::Fail);
    let running = start(sink.clone(), small_limits()).await;
    let got = curl(
        &running,
        "/tlsrpt",
        &[
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--data-binary",
            "{}",
        ],
    )
    .await;
    assert_eq!(got.status, 503, "{}", got.body);
    assert!(
        got.headers.to_ascii_lowercase().contains("retry-after: "),
        "{}",
        got.headers
    );
    assert!(
        !got.body.contains("database"),
        "internals stay in the log: {}",
        got.body
    );
}

/// A sender that stops sending its body is cut off at the body deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off() {
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), small_limits()).await;
    let mut tls = connect(&running).await;
    let head = format!(
        "POST /tlsrpt HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/tlsrpt+json\r\n\
         Content-Length: 100\r\n\r\n{{\"a\":"
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    let started = std::time::Instant::now();
    let answer = read_head(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(sink.taken().is_empty());
}

/// With every slot taken by a sender still sending, the next POST gets 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_posts_than_slots_get_503() {
    let sink = TestSink::new(Answer::Stored);
    let limits = HttpsIntakeLimits {
        max_concurrent: 1,
        body_timeout: Duration::from_secs(5),
        ..small_limits()
    };
    let running = start(sink.clone(), limits).await;
    let mut slow = connect(&running).await;
    let head = format!(
        "POST /tlsrpt HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/tlsrpt+json\r\n\
         Content-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.expect("head");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let json = [
        "-H",
        "Content-Type: application/tlsrpt+json",
        "--data-binary",
        "{}",
    ];
    let got = curl(&running, "/tlsrpt", &json).await;
    assert_eq!(got.status, 503, "{}", got.body);
    assert!(got.headers.to_ascii_lowercase().contains("retry-after: "));
    drop(slow);
    // The slot comes back once the slow sender is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = curl(&running, "/tlsrpt", &json).await;
        if got.status == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sink.taken().len(), 1);
}

/// The policy is still served on the same listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_still_served() {
    let sink = TestSink::new(Answer::Stored);
    let running = start(sink.clone(), small_limits()).await;
    let got = curl(&running, "/.well-known/mta-sts.txt", &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, POLICY);
    let got = curl(
        &running,
        "/.well-known/mta-sts.txt",
        &[
            "-H",
            "Content-Type: application/tlsrpt+json",
            "--data-binary",
            "{}",
        ],
    )
    .await;
    assert_eq!(got.status, 405, "POST to the policy path is not intake");
    assert!(sink.taken().is_empty());
}

/// `[intake_https]` builds the route: its path is served, the default path is not, and a
/// disabled section builds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_section_builds_the_route() {
    let sink = TestSink::new(Answer::Stored);
    let off: ServeConfig = "".parse().expect("defaults");
    assert!(off.intake_https.intake(sink.clone()).expect("ok").is_none());
    let on: ServeConfig = "[intake_https]\nenabled = true\npath = \"/reports/tls\"\n\
                           max_body_bytes = 100\n"
        .parse()
        .expect("parses");
    let intake = on
        .intake_https
        .intake(sink.clone())
        .expect("ok")
        .expect("enabled");
    let running = start_with(intake).await;
    let json = [
        "-H",
        "Content-Type: application/tlsrpt+json",
        "--data-binary",
    ];
    let got = curl(&running, "/reports/tls", &[&json[..], &["{}"]].concat()).await;
    assert_eq!(got.status, 201, "{}", got.body);
    let big = "x".repeat(101);
    let got = curl(
        &running,
        "/reports/tls",
        &[&json[..], &[big.as_str()]].concat(),
    )
    .await;
    assert_eq!(got.status, 413, "max_body_bytes is applied");
    let got = curl(&running, "/tlsrpt", &[&json[..], &["{}"]].concat()).await;
    assert_eq!(got.status, 404, "only the configured path is the route");
    assert_eq!(sink.taken().len(), 1);
}

async fn connect(running: &Running) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(running.ca.ca_der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(running.addr).await.expect("connect");
    let name = ServerName::try_from(HOST.to_owned()).expect("name");
    tokio::time::timeout(
        CLIENT_TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake")
}

/// Reads until the end of a response head.
async fn read_head(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("an answer in time");
    String::from_utf8_lossy(&buf).into_owned()
}
