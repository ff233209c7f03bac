//! Logins against real stores (a SQLite file and a throwaway PostgreSQL from
//! crates/stsward-testkit): argon2id verification, one answer for an unknown user, a wrong
//! password and a disabled user, and the failure limits per user name and per source
//! address, shared by two stores on one database as replicas share them.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use stsward_server::auth::{LoginError, LoginLimits, login, password};
use stsward_store::{NewUser, Role, Store, TenantId};
use stsward_testkit::postgres::Postgres;

const T0: i64 = 1_700_000_000;
const GOOD: &str = "correct horse battery staple";

type Case = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("one_answer_for_every_kind_of_wrong", |u| {
        Box::pin(one_answer_for_every_kind_of_wrong(u))
    }),
    ("five_failures_lock_the_user_name_for_the_window", |u| {
        Box::pin(five_failures_lock_the_user_name_for_the_window(u))
    }),
    ("twenty_failures_lock_the_address_not_others", |u| {
        Box::pin(twenty_failures_lock_the_address_not_others(u))
    }),
    ("a_success_clears_the_user_count", |u| {
        Box::pin(a_success_clears_the_user_count(u))
    }),
    ("replicas_share_the_counts", |u| {
        Box::pin(replicas_share_the_counts(u))
    }),
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect(s)
}

async fn store_with_users(url: &str) -> (Store, TenantId) {
    let store = Store::open(url).await.expect("open");
    let tenant = store.tenant_create("acme", T0).await.expect("tenant").id;
    for name in ["ann", "bob", "cy"] {
        store
            .user_create(&NewUser {
                tenant: Some(tenant),
                name: name.into(),
                password_hash: password::hash(GOOD).expect("hash"),
                role: Role::Member,
                created_at: T0,
            })
            .await
            .expect("user");
    }
    (store, tenant)
}

fn refused(r: Result<stsward_store::User, LoginError>, why: &str) {
    assert!(matches!(r, Err(LoginError::Refused)), "{why}: {r:?}");
}

fn throttled(r: Result<stsward_store::User, LoginError>, why: &str) {
    assert!(
        matches!(r, Err(LoginError::Throttled { .. })),
        "{why}: {r:?}"
    );
}

async fn one_answer_for_every_kind_of_wrong(url: String) {
    let (store, tenant) = store_with_users(&url).await;
    let limits = LoginLimits::default();
    let from = ip("192.0.2.1");
    let user = login(&store, &limits, "ann", GOOD, from, T0)
        .await
        .expect("the right password");
    assert_eq!((user.name.as_str(), user.tenant), ("ann", Some(tenant)));
    refused(
        login(&store, &limits, "ann", "wrong password!", from, T0).await,
        "a wrong password",
    );
    refused(
        login(&store, &limits, "nobody", GOOD, from, T0).await,
        "an unknown user",
    );
    refused(
        login(&store, &limits, &"x".repeat(5000), GOOD, from, T0).await,
        "a name longer than any stored",
    );
    store
        .user_set_disabled(Some(tenant), "bob", true)
        .await
        .expect("disable")
        .expect("bob");
    refused(
        login(&store, &limits, "bob", GOOD, from, T0).await,
        "a disabled user, right password",
    );
    assert_eq!(
        LoginError::Refused.to_string(),
        "the user name or the password is wrong",
        "the message does not say which"
    );
}

async fn five_failures_lock_the_user_name_for_the_window(url: String) {
    let (store, _) = store_with_users(&url).await;
    let limits = LoginLimits::default();
    for i in 0..5u8 {
        // From five addresses: the per-user limit does not depend on where.
        refused(
            login(
                &store,
                &limits,
                "ann",
                "nope nope nope",
                ip(&format!("192.0.2.{i}")),
                T0,
            )
            .await,
            "a wrong password",
        );
    }
    throttled(
        login(&store, &limits, "ann", GOOD, ip("198.51.100.1"), T0 + 60).await,
        "the right password, after five failures",
    );
    throttled(
        login(
            &store,
            &limits,
            "ann",
            GOOD,
            ip("198.51.100.1"),
            T0 + 899 - T0 % 60,
        )
        .await,
        "still inside the window",
    );
    login(&store, &limits, "bob", GOOD, ip("192.0.2.0"), T0 + 60)
        .await
        .expect("another user from the same addresses");
    let later = T0 - T0 % 60 + limits.window_secs;
    login(&store, &limits, "ann", GOOD, ip("198.51.100.1"), later)
        .await
        .expect("the window has passed the failures");
    // A failure then drops every bucket the window has passed: bob's address counts are
    // gone from the table, not only from the sums.
    refused(
        login(
            &store,
            &limits,
            "bob",
            "nope nope nope",
            ip("192.0.2.200"),
            later,
        )
        .await,
        "a late failure",
    );
    let old = store
        .login_failure_prune(later - limits.window_secs)
        .await
        .expect("prune");
    assert_eq!(old, 0, "the late failure already pruned the old buckets");
    let kept = store
        .login_failure_count(
            stsward_store::LoginScope::User,
            "bob",
            later,
            limits.window_secs,
        )
        .await
        .expect("count");
    assert_eq!(kept, 1, "the new bucket stays");
}

async fn twenty_failures_lock_the_address_not_others(url: String) {
    let (store, _) = store_with_users(&url).await;
    let limits = LoginLimits::default();
    let attacker = ip("2001:db8:1:2::66");
    for i in 0..20 {
        // Many names, four failures each at most: only the address limit is reached.
        let name = format!("guess{}", i % 5);
        let from = if i % 2 == 0 {
            attacker
        } else {
            ip("2001:db8:1:2:ffff::1")
        };
        refused(
            login(&store, &limits, &name, "guess guess guess", from, T0).await,
            "a guess",
        );
    }
    throttled(
        login(&store, &limits, "cy", GOOD, ip("2001:db8:1:2::99"), T0).await,
        "the same /64, a real user and password",
    );
    login(&store, &limits, "cy", GOOD, ip("2001:db8:1:3::99"), T0)
        .await
        .expect("another /64 is not locked");
}

async fn a_success_clears_the_user_count(url: String) {
    let (store, _) = store_with_users(&url).await;
    let limits = LoginLimits {
        per_ip: 1000,
        ..LoginLimits::default()
    };
    let from = ip("203.0.113.5");
    for round in 0..2 {
        for _ in 0..4 {
            refused(
                login(&store, &limits, "ann", "typo typo typo", from, T0).await,
                "a typo",
            );
        }
        login(&store, &limits, "ann", GOOD, from, T0)
            .await
            .unwrap_or_else(|e| panic!("round {round}: four typos then the password: {e}"));
    }
}

async fn replicas_share_the_counts(url: String) {
    let (one, _) = store_with_users(&url).await;
    let two = Store::open(&url).await.expect("a second replica");
    let limits = LoginLimits::default();
    for i in 0..5 {
        let replica = if i % 2 == 0 { &one } else { &two };
        refused(
            login(
                replica,
                &limits,
                "ann",
                "wrong wrong wrong",
                ip("192.0.2.9"),
                T0,
            )
            .await,
            "a failure on either replica",
        );
    }
    throttled(
        login(&two, &limits, "ann", GOOD, ip("192.0.2.9"), T0).await,
        "replica two sees all five",
    );
    throttled(
        login(&one, &limits, "ann", GOOD, ip("192.0.2.9"), T0).await,
        "and so does replica one",
    );
}

async fn run_table(mut fresh: impl FnMut() -> String) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        if let Err(e) = tokio::spawn(case(fresh())).await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_logins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_table(|| {
        n += 1;
        format!("sqlite://{}", dir.path().join(format!("l{n}.db")).display())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logins() {
    let Some(server) = Postgres::start("stsward-server/postgres-login") else {
        return;
    };
    run_table(|| server.create_database()).await;
}

/// An unknown name costs a full argon2id verification, as a wrong password does: without the
/// dummy verification it would answer in a store lookup's time (a hundredth of it or less).
/// The bound is loose (a quarter) so that a busy machine does not fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_costs_as_much_as_a_wrong_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("timing.db").display());
    let (store, _) = store_with_users(&url).await;
    let limits = LoginLimits {
        per_user: 1000,
        per_ip: 1000,
        ..LoginLimits::default()
    };
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        let from = ip(&format!("192.0.2.{i}"));
        let started = std::time::Instant::now();
        refused(
            login(&store, &limits, "ann", "wrong wrong wrong", from, T0).await,
            "wrong password",
        );
        wrong.push(started.elapsed());
        let started = std::time::Instant::now();
        refused(
            login(&store, &limits, "nobody", "wrong wrong wrong", from, T0).await,
            "unknown user",
        );
        unknown.push(started.elapsed());
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    assert!(
        unknown * 4 >= wrong,
        "an unknown user answered in {unknown:?}, a wrong password in {wrong:?}"
    );
}
