//! `stsward tenant|user|token` through the real binary on a SQLite file in a temporary
//! directory: names and passwords refused with the field and the reason (exit 1), the
//! password read from stdin and stored only as an argon2id hash, the token printed once and
//! stored only as its digest, and tenant scoping of `token revoke`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use stsward_server::auth::{password, token};
use stsward_store::Store;

struct World {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("stsward.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.db().display())
    }

    /// Runs `stsward ARGS --store URL`, with `stdin` piped in when given.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stsward"))
            .args(args)
            .arg("--store")
            .arg(self.url())
            .env_remove("STSWARD_STORE")
            .env_remove("STSWARD_CONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run stsward");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().expect("exit code"),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = self.run(&all, stdin);
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        serde_json::from_str(&r.out).expect("JSON")
    }

    fn store<T>(&self, f: impl AsyncFnOnce(Store) -> T) -> T {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let store = Store::open(&self.url()).await.expect("open");
            let out = f(store.clone()).await;
            store.close().await;
            out
        })
    }
}

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn tenants_users_and_tokens_round_trip() {
    let w = World::new();
    let t = w.json(&["tenant", "add", "acme"], None);
    assert_eq!(t["name"], "acme");
    let r = w.run(&["tenant", "add", "acme"], None);
    assert_eq!(r.code, 1, "a taken name is refused: {}", r.err);
    assert!(r.err.contains("\"acme\" exists already"), "{}", r.err);
    let list = w.json(&["tenant", "list"], None);
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["acme"]);

    let u = w.json(
        &[
            "user",
            "add",
            "ops@acme",
            "--tenant",
            "acme",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(
        (u["name"].as_str(), u["role"].as_str()),
        (Some("ops@acme"), Some("member"))
    );
    assert!(
        u.get("password_hash").is_none(),
        "the hash is not printed: {u}"
    );
    let root = w.json(
        &["user", "add", "root", "--admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\r\n")),
    );
    assert_eq!(
        (root["tenant"].is_null(), root["role"].as_str()),
        (true, Some("admin"))
    );
    let stored = w.store(async |s| s.user_by_name("ops@acme").await.expect("read"));
    let stored = stored.expect("stored");
    assert!(stored.password_hash.starts_with("$argon2id$"), "{stored:?}");
    assert!(password::verify(&stored.password_hash, PASSWORD));
    let root = w.store(async |s| s.user_by_name("root").await.expect("read").expect("root"));
    assert!(
        password::verify(&root.password_hash, PASSWORD),
        "a CRLF line ending is not part of the password"
    );

    let made = w.json(
        &["token", "create", "--tenant", "acme", "--name", "ci"],
        None,
    );
    let secret = made["token"].as_str().expect("token").to_owned();
    assert!(token::looks_like_token(&secret), "{secret}");
    let found = w.store(async |s| {
        s.api_token_lookup(&token::digest_of(&secret))
            .await
            .expect("lookup")
    });
    assert!(found.is_some_and(|t| t.is_active()), "the digest is stored");
    let listed = w.run(&["token", "list", "--tenant", "acme"], None);
    assert_eq!(listed.code, 0, "{}", listed.err);
    assert!(
        listed.out.contains(&secret[..12]),
        "the prefix is listed: {}",
        listed.out
    );
    assert!(
        !listed.out.contains(&secret),
        "the token is not: {}",
        listed.out
    );
    let raw = std::fs::read(w.db()).expect("db file");
    let wal = std::fs::read(w.dir.path().join("stsward.db-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|win| win == secret.as_bytes()),
            "the token itself is nowhere in the database files"
        );
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|win| win == PASSWORD.as_bytes()),
            "nor the password"
        );
    }

    // Revoking names the tenant: the default tenant has no token 1.
    let id = made["id"].as_i64().expect("id").to_string();
    let r = w.run(&["token", "revoke", &id], None);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("is not a token of tenant default"),
        "{}",
        r.err
    );
    let revoked = w.json(&["token", "revoke", &id, "--tenant", "acme"], None);
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");
    let found = w.store(async |s| {
        s.api_token_lookup(&token::digest_of(&secret))
            .await
            .expect("lookup")
            .expect("kept")
    });
    assert!(!found.is_active());

    let r = w.run(&["user", "disable", "ops@acme"], None);
    assert_eq!(
        (r.code, r.out.trim()),
        (0, "user ops@acme disabled"),
        "{}",
        r.err
    );
    let users = w.json(&["user", "list", "--tenant", "acme"], None);
    assert_eq!(users[0]["disabled"], true, "{users}");
    assert_eq!(
        users.as_array().map(Vec::len),
        Some(1),
        "root is no user of acme"
    );
}

/// Arguments, standard input, exit status, a part of the message, and why.
type Refusal<'a> = (&'a [&'a str], Option<&'a str>, i32, &'a str, &'a str);

#[test]
fn bad_input_is_refused_naming_the_field() {
    let w = World::new();
    let cases: &[Refusal] = &[
        (
            &["tenant", "add", "Acme"],
            None,
            1,
            "tenant name may hold only",
            "upper case",
        ),
        (
            &["tenant", "add", "_x"],
            None,
            1,
            "tenant name must start",
            "a leading underscore",
        ),
        (
            &["user", "add", "bob", "--password-stdin"],
            Some("short\n"),
            1,
            "password is shorter than 12 characters",
            "a short password",
        ),
        (
            &["user", "add", "Bob", "--password-stdin"],
            Some("x\n"),
            1,
            "user name may hold only",
            "the name is checked before the password",
        ),
        (
            &[
                "user",
                "add",
                "bob",
                "--tenant",
                "nowhere",
                "--password-stdin",
            ],
            Some("a-long-enough-password\n"),
            1,
            "--tenant: no tenant is called \"nowhere\"",
            "an unknown tenant",
        ),
        (
            &["user", "add", "bob"],
            None,
            2,
            "no terminal to ask the password on",
            "no terminal and no --password-stdin",
        ),
        (
            &["token", "create", "--tenant", "nowhere", "--name", "x"],
            None,
            1,
            "--tenant: no tenant is called",
            "an unknown tenant",
        ),
        (
            &["token", "create", "--name", "a\tb"],
            None,
            1,
            "--name holds a control character",
            "a control character",
        ),
        (
            &["user", "disable", "nobody"],
            None,
            1,
            "NAME: no user is called \"nobody\"",
            "an unknown user",
        ),
    ];
    for (args, stdin, code, message, why) in cases {
        let r = w.run(args, *stdin);
        assert_eq!(r.code, *code, "{why}: {args:?}: {}", r.err);
        assert!(r.err.contains(message), "{why}: {}", r.err);
    }
    let users = w.json(&["user", "list"], None);
    assert_eq!(users, Value::Array(vec![]), "nothing was created");
    let r = w.run(
        &["user", "add", "bob", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let r = w.run(
        &["user", "add", "bob", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(r.code, 1, "a second bob: {}", r.err);
    assert!(r.err.contains("user \"bob\" exists already"), "{}", r.err);
}

/// One request to the API at `addr` bearing `token`: the status code.
async fn api_status(addr: std::net::SocketAddr, token: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut raw),
    )
    .await
    .expect("an answer within 10 s")
    .expect("read");
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[test]
fn a_token_from_the_cli_opens_the_api_until_revoked() {
    use stsward_server::api::{ApiLimits, ApiServer};
    use stsward_server::config::{HostingSection, ServeConfig};
    use stsward_server::domains::DomainService;

    let w = World::new();
    w.json(&["tenant", "add", "acme"], None);
    let made = w.json(
        &["token", "create", "--tenant", "acme", "--name", "ci"],
        None,
    );
    let secret = made["token"].as_str().expect("token").to_owned();
    let id = made["id"].as_i64().expect("id").to_string();
    let cfg: ServeConfig = "[api]\ntoken = \"configured-admin-token-123\"\n"
        .parse()
        .expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, stop, task) = rt.block_on(async {
        let store = Store::open(&w.url()).await.expect("open");
        let service = DomainService::new(store, HostingSection::default(), None);
        let server = ApiServer::bind(
            &["127.0.0.1:0".parse().expect("addr")],
            ApiLimits::default(),
        )
        .expect("bind");
        let addr = server.addrs()[0];
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(service, cfg.api_token().expect("token"), async {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    });
    let status = |token: &str| rt.block_on(api_status(addr, token, "/api/v1/domains"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&secret) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the API did not take the token"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = w.run(&["token", "revoke", &id, "--tenant", "acme"], None);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        status(&secret),
        401,
        "revoked from the CLI, refused by the API"
    );
    let _ = stop.send(());
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the API stops")
            .expect("no panic")
            .expect("it ran");
    });
}
