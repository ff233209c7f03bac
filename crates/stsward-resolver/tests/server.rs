//! The socketmap listener on real sockets: loopback TCP on port 0 and unix sockets in a
//! temporary directory, with a small test `Lookup`; and Postfix's own client (`postmap -q`)
//! where it is installed.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stsward_proto::socketmap::{MAX_REPLY_LEN, Reply, ReplyParser, Request};
use stsward_resolver::server::{Endpoint, Lookup, Server, ServerConfig, ServerError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Answers by key: `example.com` has a policy, `temp.test` fails, `sleep-<ms>` answers after
/// that many milliseconds, `inline.test` is answered at once (`lookup_now`, as a cache hit
/// is), everything else is not found.
#[derive(Default)]
struct TestLookup {
    calls: AtomicUsize,
    /// `lookup_now` calls.
    now_calls: AtomicUsize,
    /// `sleep-<ms>` lookups that ran to the end.
    slept: AtomicUsize,
}

const POLICY: &str = "secure match=.example.com servername=hostname";

impl Lookup for TestLookup {
    async fn lookup(&self, _name: &str, key: &str) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if key == "example.com" {
            return Reply::Ok(POLICY.into());
        }
        if key == "panic.test" {
            panic!("the test lookup panics on purpose");
        }
        if key == "temp.test" {
            return Reply::Temp("lab DNS said SERVFAIL".into());
        }
        if let Some(ms) = key.strip_prefix("sleep-").and_then(|m| m.parse().ok()) {
            sleep(Duration::from_millis(ms)).await;
            self.slept.fetch_add(1, Ordering::SeqCst);
            return Reply::Ok(format!("slept {ms}"));
        }
        Reply::NotFound
    }

    fn lookup_now(&self, _name: &str, key: &str) -> Option<Reply> {
        self.now_calls.fetch_add(1, Ordering::SeqCst);
        (key == "inline.test").then(|| Reply::Ok("inline".into()))
    }
}

struct Running {
    endpoints: Vec<Endpoint>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    lookup: Arc<TestLookup>,
}

impl Running {
    fn tcp(&self) -> std::net::SocketAddr {
        self.endpoints
            .iter()
            .find_map(|e| match e {
                Endpoint::Tcp(a) => Some(*a),
                Endpoint::Unix(_) => None,
            })
            .expect("a TCP endpoint")
    }

    /// Signals shutdown.
    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (bounded) for `run` to return.
    async fn wait(mut self) {
        timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run returns after shutdown")
            .expect("run does not panic");
    }

    /// Signals shutdown and waits for `run` to return; how long that took.
    async fn shutdown(mut self) -> Duration {
        let started = Instant::now();
        self.signal();
        self.wait().await;
        started.elapsed()
    }
}

async fn start(config: ServerConfig, endpoints: &[Endpoint]) -> Running {
    let lookup = Arc::new(TestLookup::default());
    let server = Server::bind(endpoints, config, Arc::clone(&lookup))
        .await
        .expect("bind");
    let endpoints = server.local_endpoints();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        endpoints,
        stop: Some(stop),
        task,
        lookup,
    }
}

async fn start_tcp(config: ServerConfig) -> Running {
    start(
        config,
        &[Endpoint::Tcp("127.0.0.1:0".parse().expect("addr"))],
    )
    .await
}

fn config() -> ServerConfig {
    ServerConfig {
        shutdown_grace: Duration::from_secs(3),
        ..ServerConfig::default()
    }
}

/// A socketmap client: sends netstrings, reads replies with the codec's reply parser.
struct Client<S> {
    stream: S,
    parser: ReplyParser,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            parser: ReplyParser::new(MAX_REPLY_LEN),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    async fn send(&mut self, name: &str, key: &str) {
        let request = Request {
            name: name.into(),
            key: key.into(),
        };
        self.send_raw(&request.encode()).await;
    }

    /// The next reply, or `None` when the server closed the connection; panics when nothing
    /// happens within `wait`.
    async fn reply_within(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(reply) = self.parser.next_reply().expect("well-formed reply") {
                return Some(reply);
            }
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("the server answers in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.parser.push(&buf[..n]);
        }
    }

    async fn reply(&mut self) -> Option<Reply> {
        self.reply_within(Duration::from_secs(5)).await
    }

    async fn ask(&mut self, key: &str) -> Reply {
        self.send("postfix", key).await;
        self.reply().await.expect("a reply, not EOF")
    }

    /// True when the server closes the connection within `wait` without sending anything.
    async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            timeout(wait, self.stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

async fn connect(running: &Running) -> Client<TcpStream> {
    Client::new(TcpStream::connect(running.tcp()).await.expect("connect"))
}

fn perm_reason(reply: Option<Reply>) -> String {
    match reply {
        Some(Reply::Perm(reason)) => reason,
        other => panic!("expected PERM, got {other:?}"),
    }
}

#[tokio::test]
async fn socketmap_many_requests_on_one_connection() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    for i in 0..200 {
        let (key, expected) = match i % 3 {
            0 => ("example.com", Reply::Ok(POLICY.into())),
            1 => ("temp.test", Reply::Temp("lab DNS said SERVFAIL".into())),
            _ => ("nothing.test", Reply::NotFound),
        };
        assert_eq!(client.ask(key).await, expected, "request {i}");
    }
    assert_eq!(running.lookup.calls.load(Ordering::SeqCst), 200);
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_pipelined_requests_are_answered_in_order() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    let mut batch = Vec::new();
    for key in ["sleep-50", "example.com", "nothing.test", "sleep-1"] {
        batch.extend(
            Request {
                name: "postfix".into(),
                key: key.into(),
            }
            .encode(),
        );
    }
    client.send_raw(&batch).await;
    assert_eq!(client.reply().await, Some(Reply::Ok("slept 50".into())));
    assert_eq!(client.reply().await, Some(Reply::Ok(POLICY.into())));
    assert_eq!(client.reply().await, Some(Reply::NotFound));
    assert_eq!(client.reply().await, Some(Reply::Ok("slept 1".into())));
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_request_split_across_writes() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    client.stream.set_nodelay(true).expect("nodelay");
    for byte in b"19:postfix example.com," {
        client.send_raw(&[*byte]).await;
        sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.reply().await, Some(Reply::Ok(POLICY.into())));
    // And again on the same connection, split in the middle of the length.
    client.send_raw(b"1").await;
    sleep(Duration::from_millis(20)).await;
    client.send_raw(b"9:postfix example.com,").await;
    assert_eq!(client.reply().await, Some(Reply::Ok(POLICY.into())));
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_oversized_length_gets_perm_and_close_before_the_body() {
    let running = start_tcp(ServerConfig {
        max_request_len: 64,
        ..config()
    })
    .await;
    let mut client = connect(&running).await;
    // Only the length is sent: the server must not wait for 100000 bytes.
    client.send_raw(b"100000:").await;
    let reason = perm_reason(client.reply().await);
    assert!(reason.contains("limit of 64"), "{reason}");
    assert_eq!(client.reply().await, None, "the connection is closed");
    assert_eq!(running.lookup.calls.load(Ordering::SeqCst), 0);
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_malformed_requests_get_perm_and_close() {
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"GET / HTTP/1.0\r\n\r\n",
            "byte 0x47 at offset 23",
            "HTTP instead of a netstring",
        ),
        (
            b"019:postfix example.com,",
            "leading zero",
            "a leading zero",
        ),
        (
            b"19:postfix example.com\r\n",
            "','",
            "a line end instead of the comma",
        ),
        (b"7:postfix,", "no space", "no key"),
        (b"5:a \xff\xfe.,", "not UTF-8", "a key that is not UTF-8"),
    ];
    let running = start_tcp(config()).await;
    for (input, expected, why) in cases {
        let mut client = connect(&running).await;
        // A good request first: what came before the bad bytes is still answered.
        client.send("postfix", "example.com").await;
        client.send_raw(input).await;
        assert_eq!(
            client.reply().await,
            Some(Reply::Ok(POLICY.into())),
            "{why}"
        );
        let reason = perm_reason(client.reply().await);
        assert!(reason.contains(expected), "{why}: {reason}");
        assert_eq!(
            client.reply().await,
            None,
            "{why}: the connection is closed"
        );
    }
    // The server still serves others.
    assert_eq!(
        connect(&running).await.ask("example.com").await,
        Reply::Ok(POLICY.into())
    );
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_unknown_map_name_gets_perm_and_the_connection_stays_usable() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    client.send("sendmail", "example.com").await;
    let reason = perm_reason(client.reply().await);
    assert!(reason.contains("\"sendmail\""), "{reason}");
    assert_eq!(running.lookup.calls.load(Ordering::SeqCst), 0);
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_idle_connection_is_closed_after_the_idle_timeout() {
    let running = start_tcp(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut client = connect(&running).await;
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    let started = Instant::now();
    assert!(client.closed_within(Duration::from_secs(5)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_partial_request_is_closed_after_the_request_timeout() {
    let running = start_tcp(ServerConfig {
        request_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let mut client = connect(&running).await;
    client.send_raw(b"19:postfix exa").await;
    // The idle timeout is a minute; the request deadline closes it much sooner.
    assert!(client.closed_within(Duration::from_secs(5)).await);
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_slow_lookup_is_answered_temp_at_the_deadline() {
    let running = start_tcp(ServerConfig {
        lookup_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let mut client = connect(&running).await;
    let started = Instant::now();
    let reply = client.ask("sleep-600").await;
    let waited = started.elapsed();
    let Reply::Temp(reason) = reply else {
        panic!("expected TEMP, got {reply:?}");
    };
    assert!(reason.contains("200 ms"), "{reason}");
    assert!(
        (Duration::from_millis(150)..Duration::from_secs(3)).contains(&waited),
        "{waited:?}"
    );
    // The connection goes on.
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    // The abandoned lookup was aborted, not left running to its end.
    sleep(Duration::from_millis(800)).await;
    assert_eq!(running.lookup.slept.load(Ordering::SeqCst), 0);
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_panicking_lookup_is_answered_temp_and_the_connection_goes_on() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    let reply = client.ask("panic.test").await;
    assert!(matches!(reply, Reply::Temp(_)), "{reply:?}");
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_an_answer_at_hand_is_sent_without_the_lookup() {
    let running = start_tcp(config()).await;
    let mut client = connect(&running).await;
    assert_eq!(client.ask("inline.test").await, Reply::Ok("inline".into()));
    assert_eq!(running.lookup.calls.load(Ordering::SeqCst), 0);
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    assert_eq!(running.lookup.calls.load(Ordering::SeqCst), 1);
    assert_eq!(running.lookup.now_calls.load(Ordering::SeqCst), 2);
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_connection_cap_makes_the_next_client_wait() {
    let running = start_tcp(ServerConfig {
        max_connections: 1,
        ..config()
    })
    .await;
    let mut first = connect(&running).await;
    assert_eq!(first.ask("example.com").await, Reply::Ok(POLICY.into()));

    let mut second = connect(&running).await;
    second.send("postfix", "example.com").await;
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(400), second.stream.read(&mut buf))
            .await
            .is_err(),
        "over the cap, the second client must wait, not be answered or closed"
    );
    // The first client still gets answers while the second waits.
    assert_eq!(first.ask("nothing.test").await, Reply::NotFound);

    drop(first);
    assert_eq!(second.reply().await, Some(Reply::Ok(POLICY.into())));
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_unix_socket_is_served_with_its_mode_and_removed_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("socketmap");
    let running = start(
        ServerConfig {
            unix_mode: 0o660,
            ..config()
        },
        &[
            Endpoint::Unix(path.clone()),
            Endpoint::Tcp("127.0.0.1:0".parse().expect("addr")),
        ],
    )
    .await;
    let meta = std::fs::symlink_metadata(&path).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);

    // One lookup, served on both kinds of listener.
    let mut unix = Client::new(UnixStream::connect(&path).await.expect("connect"));
    assert_eq!(unix.ask("example.com").await, Reply::Ok(POLICY.into()));
    assert_eq!(
        connect(&running).await.ask("example.com").await,
        Reply::Ok(POLICY.into())
    );
    drop(unix);

    running.shutdown().await;
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

async fn bind_unix(path: &Path) -> Result<Server<TestLookup>, ServerError> {
    Server::bind(
        &[Endpoint::Unix(path.to_owned())],
        config(),
        Arc::new(TestLookup::default()),
    )
    .await
}

#[tokio::test]
async fn socketmap_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("socketmap");
    // A crashed daemon leaves its socket file behind: nobody listens on it.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());
    let server = bind_unix(&path).await.expect("a stale socket is replaced");
    let mut client = Client::new(UnixStream::connect(&path).await.expect("connect"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    assert_eq!(client.ask("example.com").await, Reply::Ok(POLICY.into()));
    let _ = stop.send(());
    timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("no panic");
}

#[tokio::test]
async fn socketmap_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("socketmap");
    std::fs::write(&path, "not a socket").expect("file");
    let error = bind_unix(&path)
        .await
        .expect_err("a regular file is refused");
    assert!(
        matches!(&error, ServerError::NotASocket { path: p } if *p == path),
        "{error:?}"
    );
    assert!(error.to_string().contains("is not a socket"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("file"),
        "not a socket"
    );

    let live = dir.path().join("live");
    let _listener = std::os::unix::net::UnixListener::bind(&live).expect("live socket");
    let error = bind_unix(&live)
        .await
        .expect_err("a live socket is refused");
    assert!(
        matches!(error, ServerError::SocketInUse { .. }),
        "{error:?}"
    );
    assert!(live.exists(), "a live socket is left alone");
}

#[tokio::test]
async fn socketmap_shutdown_lets_in_flight_requests_finish() {
    let mut running = start_tcp(config()).await;
    let mut busy = connect(&running).await;
    let mut idle = connect(&running).await;
    assert_eq!(idle.ask("example.com").await, Reply::Ok(POLICY.into()));
    busy.send("postfix", "sleep-400").await;
    sleep(Duration::from_millis(100)).await;
    let addr = running.tcp();

    let started = Instant::now();
    running.signal();
    // The idle connection is closed at once; the lookup in flight is answered.
    assert!(idle.closed_within(Duration::from_secs(2)).await);
    assert_eq!(busy.reply().await, Some(Reply::Ok("slept 400".into())));
    assert_eq!(busy.reply().await, None, "closed after its last answer");
    running.wait().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn socketmap_shutdown_drops_what_outlives_the_grace() {
    let running = start_tcp(ServerConfig {
        shutdown_grace: Duration::from_millis(300),
        lookup_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let mut busy = connect(&running).await;
    busy.send("postfix", "sleep-30000").await;
    sleep(Duration::from_millis(100)).await;
    let took = running.shutdown().await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(busy.reply().await, None, "dropped unanswered");
}

#[tokio::test]
async fn socketmap_serves_ipv6_loopback() {
    let addr: std::net::SocketAddr = "[::1]:0".parse().expect("addr");
    if std::net::TcpListener::bind(addr).is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let running = start(config(), &[Endpoint::Tcp(addr)]).await;
    assert!(running.tcp().is_ipv6());
    assert_eq!(
        connect(&running).await.ask("example.com").await,
        Reply::Ok(POLICY.into())
    );
    running.shutdown().await;
}

#[tokio::test]
async fn socketmap_bad_configuration_is_refused() {
    let tcp = [Endpoint::Tcp("127.0.0.1:0".parse().expect("addr"))];
    let cases: &[(&[Endpoint], ServerConfig, &str)] = &[
        (&[], config(), "endpoints"),
        (
            &tcp,
            ServerConfig {
                max_connections: 0,
                ..config()
            },
            "max_connections",
        ),
        (
            &tcp,
            ServerConfig {
                map_names: vec!["two words".into()],
                ..config()
            },
            "map_names",
        ),
    ];
    for (endpoints, config, field) in cases {
        let error = Server::bind(endpoints, config.clone(), Arc::new(TestLookup::default()))
            .await
            .expect_err(field);
        assert!(
            matches!(error, ServerError::InvalidConfig { field: f, .. } if f == *field),
            "{error:?}"
        );
    }
}

/// Postfix's own socketmap client against the listener: `postmap -q` with a throwaway
/// configuration directory (`-c`), so no system main.cf is needed.
#[tokio::test]
async fn socketmap_postmap_q_reads_the_answer() {
    let Some(postmap) = ["/usr/sbin/postmap", "/usr/bin/postmap"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "postmap is required when CI is set (apt-get install postfix)"
        );
        eprintln!("SKIPPED: postmap is not installed (apt-get install postfix)");
        return;
    };
    let postmap = postmap.to_owned();
    let running = start_tcp(config()).await;
    let port = running.tcp().port();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("main.cf"), "compatibility_level = 3.6\n").expect("main.cf");
    let conf = dir.path().to_owned();

    let run = move |key: &'static str| {
        let postmap = postmap.clone();
        let conf = conf.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(&postmap)
                .arg("-c")
                .arg(&conf)
                .arg("-q")
                .arg(key)
                .arg(format!("socketmap:inet:127.0.0.1:{port}:postfix"))
                .output()
                .expect("run postmap")
        })
    };

    let found = run("example.com").await.expect("join");
    assert!(
        found.status.success(),
        "postmap failed: {found:?}\n{}",
        String::from_utf8_lossy(&found.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        format!("{POLICY}\n")
    );

    // NOTFOUND: postmap -q exits 1 with no output.
    let missing = run("nothing.test").await.expect("join");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(missing.stdout.is_empty());
    running.shutdown().await;
}
