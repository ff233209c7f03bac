//! The resolver's policy cache on both backends: one table of behaviours, run against a
//! SQLite file and against a throwaway PostgreSQL server (crates/stsward-testkit), each case
//! on a fresh database. Every failing case is named in the report.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stsward_proto::mta_sts::MAX_POLICY_BYTES;
use stsward_store::{Backend, CachedPolicy, Field, Operation, Store, StoreError, StoreOptions};
mod support;

use support::{Case, Db};

/// The table: every case runs once per backend.
const CASES: &[(&str, Case)] = &[
    ("migrations_are_idempotent_on_reopen", |db| {
        Box::pin(migrations_are_idempotent_on_reopen(db))
    }),
    ("get_put_touch_delete", |db| {
        Box::pin(get_put_touch_delete(db))
    }),
    (
        "rfc8461_5_1_a_newer_fetch_wins_an_older_never_overwrites",
        |db| Box::pin(rfc8461_5_1_a_newer_fetch_wins_an_older_never_overwrites(db)),
    ),
    (
        "two_replicas_putting_at_once_converge_to_the_newest_fetch",
        |db| {
            Box::pin(two_replicas_putting_at_once_converge_to_the_newest_fetch(
                db,
            ))
        },
    ),
    ("an_acknowledged_put_survives_drop_and_reopen", |db| {
        Box::pin(an_acknowledged_put_survives_drop_and_reopen(db))
    }),
    ("an_acknowledged_put_survives_a_killed_process", |db| {
        Box::pin(an_acknowledged_put_survives_a_killed_process(db))
    }),
    ("oversized_values_are_refused_naming_the_field", |db| {
        Box::pin(oversized_values_are_refused_naming_the_field(db))
    }),
    (
        "rfc8461_3_2_load_returns_unexpired_by_domain_up_to_limit",
        |db| Box::pin(rfc8461_3_2_load_returns_unexpired_by_domain_up_to_limit(db)),
    ),
    ("purge_deletes_exactly_the_expired", |db| {
        Box::pin(purge_deletes_exactly_the_expired(db))
    }),
    ("a_blocked_write_ends_at_the_deadline", |db| {
        Box::pin(a_blocked_write_ends_at_the_deadline(db))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    support::run_on_sqlite(CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    support::run_on_postgres("stsward-store/postgres", CASES).await;
}

fn policy(domain: &str, sts_id: &str, fetched_at: i64, max_age: i64) -> CachedPolicy {
    CachedPolicy {
        domain: domain.into(),
        sts_id: sts_id.into(),
        policy: format!(
            "version: STSv1\r\nmode: enforce\r\nmx: mx.{domain}\r\nmax_age: {max_age}\r\n"
        ),
        fetched_at,
        expires_at: fetched_at + max_age,
        txt_checked_at: fetched_at,
    }
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

async fn migrations_are_idempotent_on_reopen(db: Db) {
    let first = open(&db).await;
    let p = policy("example.test", "20260101", 1_000, 86_400);
    first.resolver_policy_put(&p).await.expect("put");
    first.close().await;
    // Reopening applies nothing twice (a second CREATE TABLE would fail the open) and
    // keeps the rows.
    let again = open(&db).await;
    assert_eq!(
        again
            .resolver_policy_get("example.test")
            .await
            .expect("get"),
        Some(p)
    );
    again.close().await;
    // Two processes starting at once.
    let (a, b) = tokio::join!(Store::open(&db.url), Store::open(&db.url));
    a.expect("concurrent open a");
    b.expect("concurrent open b");
}

async fn get_put_touch_delete(db: Db) {
    let store = open(&db).await;
    assert_eq!(
        store
            .resolver_policy_get("example.test")
            .await
            .expect("get"),
        None
    );

    let p = policy("example.test", "abc123", 1_000, 604_800);
    store.resolver_policy_put(&p).await.expect("put");
    let other = policy("other.test", "x", 1_000, 604_800);
    store.resolver_policy_put(&other).await.expect("put other");
    assert_eq!(
        store
            .resolver_policy_get("example.test")
            .await
            .expect("get"),
        Some(p.clone())
    );
    assert_eq!(
        store
            .resolver_policy_get("EXAMPLE.test")
            .await
            .expect("get"),
        None,
        "domains are stored normalised; lookups are exact"
    );

    // touch: forward only, and only the row named.
    store
        .resolver_policy_touch("example.test", 2_000)
        .await
        .expect("touch");
    let touched = store
        .resolver_policy_get("example.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(touched.txt_checked_at, 2_000);
    assert_eq!(
        CachedPolicy {
            txt_checked_at: p.txt_checked_at,
            ..touched.clone()
        },
        p,
        "touch changes txt_checked_at only"
    );
    store
        .resolver_policy_touch("example.test", 1_500)
        .await
        .expect("touch older");
    let after = store
        .resolver_policy_get("example.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        after.txt_checked_at, 2_000,
        "an older check reported late does not move it back"
    );
    store
        .resolver_policy_touch("absent.test", 3_000)
        .await
        .expect("touch absent");
    assert_eq!(
        store.resolver_policy_get("absent.test").await.expect("get"),
        None
    );
    assert_eq!(
        store.resolver_policy_get("other.test").await.expect("get"),
        Some(other.clone()),
        "touching one domain leaves the others"
    );

    assert!(
        store
            .resolver_policy_delete("example.test")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .resolver_policy_delete("example.test")
            .await
            .expect("delete again")
    );
    assert_eq!(
        store
            .resolver_policy_get("example.test")
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store.resolver_policy_get("other.test").await.expect("get"),
        Some(other)
    );
}

async fn rfc8461_5_1_a_newer_fetch_wins_an_older_never_overwrites(db: Db) {
    let store = open(&db).await;
    // (put, what is stored afterwards, why)
    let steps: &[(CachedPolicy, &str, &str)] = &[
        (
            policy("e.test", "first", 100, 1_000),
            "first",
            "an empty slot takes any fetch",
        ),
        (
            policy("e.test", "older", 50, 1_000),
            "first",
            "an older fetch never overwrites",
        ),
        (
            policy("e.test", "same", 100, 1_000),
            "same",
            "the same fetch time replaces (>=)",
        ),
        (
            policy("e.test", "newer", 200, 1_000),
            "newer",
            "a newer fetch replaces",
        ),
        (
            policy("e.test", "stale", 199, 9_999),
            "newer",
            "older, even with a longer max_age",
        ),
    ];
    for (put, stored_id, why) in steps {
        store.resolver_policy_put(put).await.expect("put");
        let got = store
            .resolver_policy_get("e.test")
            .await
            .expect("get")
            .expect("row");
        assert_eq!(got.sts_id, *stored_id, "{why}");
        if got.sts_id == put.sts_id {
            assert_eq!(&got, put, "{why}: the whole row is replaced");
        }
    }
}

async fn two_replicas_putting_at_once_converge_to_the_newest_fetch(db: Db) {
    let a = open(&db).await;
    let b = open(&db).await;
    let domains = ["a.test", "b.test", "c.test"];
    let mut tasks = Vec::new();
    // Each replica puts every fetch time for every domain, in opposite orders, all at once.
    for (replica, store) in [(0, a.clone()), (1, b.clone())] {
        for domain in domains {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut times: Vec<i64> = (1..=20).collect();
                if replica == 1 {
                    times.reverse();
                }
                for t in times {
                    let p = policy(domain, &format!("r{replica}t{t}"), t * 10, 1_000);
                    store.resolver_policy_put(&p).await.expect("put");
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("put task");
    }
    for domain in domains {
        for store in [&a, &b] {
            let got = store
                .resolver_policy_get(domain)
                .await
                .expect("get")
                .expect("row");
            assert_eq!(got.fetched_at, 200, "{domain}: the newest fetch is kept");
            assert!(got.sts_id.ends_with("t20"), "{domain}: {got:?}");
        }
    }
}

async fn an_acknowledged_put_survives_drop_and_reopen(db: Db) {
    let store = open(&db).await;
    let p = policy("durable.test", "d1", 1_000, 86_400);
    store.resolver_policy_put(&p).await.expect("put");
    // No close: the store goes away as at the end of a process that did not shut down.
    drop(store);
    let reopened = open(&db).await;
    assert_eq!(
        reopened
            .resolver_policy_get("durable.test")
            .await
            .expect("get"),
        Some(p)
    );
}

/// The environment variable that turns `crash_child` into the writer of the crash test.
const CRASH_URL_ENV: &str = "STSWARD_STORE_CRASH_URL";
const ACKNOWLEDGED: &str = "put acknowledged";

async fn an_acknowledged_put_survives_a_killed_process(db: Db) {
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_URL_ENV, &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer");
        let stdout = child.stdout.take().expect("stdout");
        let acknowledged = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest may print "test crash_child ... " on the same line first.
            .any(|line| line.ends_with(ACKNOWLEDGED));
        // SIGKILL: no destructor, no pool close, no checkpoint runs in the writer.
        child.kill().expect("kill the writer");
        child.wait().expect("reap the writer");
        assert!(acknowledged, "the writer never acknowledged its put");
    })
    .await
    .expect("writer");
    let store = open(&db).await;
    let got = store.resolver_policy_get("crash.test").await.expect("get");
    assert_eq!(got, Some(policy("crash.test", "c1", 1_000, 86_400)));
}

/// Not a test on its own: the process `an_acknowledged_put_survives_a_killed_process`
/// starts, which puts one policy, says so, and waits to be killed.
#[tokio::test]
async fn crash_child() {
    let Ok(url) = std::env::var(CRASH_URL_ENV) else {
        return;
    };
    let store = Store::open(&url).await.expect("open");
    store
        .resolver_policy_put(&policy("crash.test", "c1", 1_000, 86_400))
        .await
        .expect("put");
    println!("{ACKNOWLEDGED}");
    // Bounded: if the parent dies first, this process ends by itself.
    tokio::time::sleep(Duration::from_secs(60)).await;
    std::process::exit(1);
}

async fn oversized_values_are_refused_naming_the_field(db: Db) {
    let store = open(&db).await;
    let longest = format!("{}.test", "a".repeat(253 - ".test".len()));
    let mut largest = policy(&longest, &"9".repeat(32), 1_000, 86_400);
    largest.policy = "x".repeat(MAX_POLICY_BYTES);
    store
        .resolver_policy_put(&largest)
        .await
        .expect("the largest values are stored");
    assert_eq!(
        store.resolver_policy_get(&longest).await.expect("get"),
        Some(largest.clone()),
        "and come back whole"
    );

    let mut body = policy("big.test", "x", 1_000, 86_400);
    body.policy = "x".repeat(MAX_POLICY_BYTES + 1);
    let cases: &[(CachedPolicy, Field, &str)] = &[
        (
            policy(&format!("a{longest}"), "x", 1_000, 86_400),
            Field::Domain,
            "254-byte domain",
        ),
        (
            policy("id.test", &"9".repeat(33), 1_000, 86_400),
            Field::StsId,
            "33-character id",
        ),
        (body, Field::Policy, "a body one byte over 64 KiB"),
    ];
    for (p, field, why) in cases {
        match store.resolver_policy_put(p).await {
            Err(StoreError::TooLarge {
                field: got,
                len,
                max,
            }) => {
                assert_eq!(got, *field, "{why}");
                assert!(len > max, "{why}: {len} > {max}");
            }
            other => panic!("{why}: {other:?}"),
        }
        assert_eq!(
            store.resolver_policy_get(&p.domain).await.expect("get"),
            None,
            "{why}"
        );
    }
    let mut nul = policy("nul.test", "x", 1_000, 86_400);
    nul.policy.push('\0');
    assert!(
        matches!(
            store.resolver_policy_put(&nul).await,
            Err(StoreError::NulCharacter {
                field: Field::Policy
            })
        ),
        "a NUL is refused on both backends alike"
    );
}

async fn rfc8461_3_2_load_returns_unexpired_by_domain_up_to_limit(db: Db) {
    let store = open(&db).await;
    let now = 10_000;
    // (domain, expires_at - now)
    let rows: &[(&str, i64)] = &[
        ("d.test", 5),
        ("b.test", 1),
        ("xn--bcher-kva.test", 100),
        ("a.test", 0),   // expires now: expired (expires_at > now is required)
        ("c.test", -50), // expired
        ("e.test", 1_000),
    ];
    for (domain, left) in rows {
        let p = CachedPolicy {
            expires_at: now + left,
            ..policy(domain, "id1", 1_000, 1)
        };
        store.resolver_policy_put(&p).await.expect("put");
    }
    let names = |v: Vec<CachedPolicy>| v.into_iter().map(|p| p.domain).collect::<Vec<_>>();
    let cases: &[(u32, &[&str], &str)] = &[
        (
            100,
            &["b.test", "d.test", "e.test", "xn--bcher-kva.test"],
            "all unexpired, by domain",
        ),
        (2, &["b.test", "d.test"], "the first `limit` by domain"),
        (0, &[], "limit 0"),
    ];
    for (limit, expected, why) in cases {
        let got = names(store.resolver_policy_load(now, *limit).await.expect("load"));
        assert_eq!(got, *expected, "{why}");
    }
    let loaded = store.resolver_policy_load(now, 1).await.expect("load");
    assert_eq!(
        loaded,
        vec![CachedPolicy {
            expires_at: now + 1,
            ..policy("b.test", "id1", 1_000, 1)
        }],
        "rows come back whole"
    );
}

async fn purge_deletes_exactly_the_expired(db: Db) {
    let store = open(&db).await;
    let now = 5_000;
    for (domain, expires_at) in [
        ("gone1.test", 10),
        ("gone2.test", now),
        ("kept.test", now + 1),
    ] {
        let p = CachedPolicy {
            expires_at,
            ..policy(domain, "id", 1, 1)
        };
        store.resolver_policy_put(&p).await.expect("put");
    }
    assert_eq!(
        store
            .resolver_policy_purge_expired(now)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(
        store
            .resolver_policy_purge_expired(now)
            .await
            .expect("purge again"),
        0
    );
    for (domain, present) in [
        ("gone1.test", false),
        ("gone2.test", false),
        ("kept.test", true),
    ] {
        let got = store.resolver_policy_get(domain).await.expect("get");
        assert_eq!(got.is_some(), present, "{domain}");
    }
}

async fn a_blocked_write_ends_at_the_deadline(db: Db) {
    let options = StoreOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(500),
        query_timeout: Duration::from_millis(300),
    };
    let store = Store::open_with(&db.url, &options).await.expect("open");
    // Another client holds the table's write lock and never lets go.
    let blocker = match db.backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&db.url)
                .await
                .expect("blocker");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("lock");
            Blocker::Sqlite(conn)
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("blocker");
            sqlx::query("BEGIN")
                .execute(&mut conn)
                .await
                .expect("begin");
            sqlx::query("LOCK TABLE resolver_policy IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .expect("lock");
            Blocker::Postgres(conn)
        }
    };
    let started = Instant::now();
    let result = store
        .resolver_policy_put(&policy("blocked.test", "x", 1, 1))
        .await;
    let took = started.elapsed();
    match result {
        Err(StoreError::Query { op, .. }) | Err(StoreError::Timeout { op, .. }) => {
            assert_eq!(op, Operation::ResolverPolicyPut)
        }
        other => panic!("a blocked put must fail, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(3),
        "ended at the deadline, took {took:?}"
    );
    drop(blocker);
}

/// Holds a lock for as long as it lives.
#[allow(dead_code)] // held, never read
enum Blocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

#[tokio::test]
async fn urls_the_store_cannot_open_fail_saying_why() {
    match Store::open("mysql://user:secret@127.0.0.1/db").await {
        Err(StoreError::UnsupportedScheme { scheme }) => assert_eq!(scheme, "mysql"),
        other => panic!("mysql: {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let missing_parent = dir.path().join("no/such/dir/x.db");
    match Store::open(&format!("sqlite://{}", missing_parent.display())).await {
        Err(StoreError::Open {
            backend: Backend::Sqlite,
            ..
        }) => {}
        other => panic!("sqlite in a missing folder: {other:?}"),
    }
    // A closed loopback port: refused at once, reported as an open failure, no password shown.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let options = StoreOptions {
        acquire_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
    match Store::open_with(&url, &options).await {
        Err(
            e @ StoreError::Open {
                backend: Backend::Postgres,
                ..
            },
        ) => {
            assert!(!format!("{e} {e:?}").contains("secret"), "{e:?}")
        }
        other => panic!("postgres on a closed port: {other:?}"),
    }
}

#[tokio::test]
async fn an_in_memory_database_keeps_its_rows_for_the_life_of_the_store() {
    let store = Store::open("sqlite::memory:").await.expect("open");
    let p = policy("memory.test", "m1", 1, 86_400);
    store.resolver_policy_put(&p).await.expect("put");
    // Other operations in between must not lose the database (one connection, never idle-closed).
    for _ in 0..3 {
        store.resolver_policy_load(0, 10).await.expect("load");
    }
    assert_eq!(
        store.resolver_policy_get("memory.test").await.expect("get"),
        Some(p)
    );
    let other = Store::open("sqlite::memory:").await.expect("open another");
    assert_eq!(
        other.resolver_policy_get("memory.test").await.expect("get"),
        None,
        "each in-memory store is its own database"
    );
}
