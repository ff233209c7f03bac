//! Users, API tokens, tenants and login-failure counts on both backends: one table of
//! behaviours, run against a SQLite file and against a throwaway PostgreSQL server
//! (crates/stsward-testkit), each case on a fresh database. Every failing case is named.

use stsward_store::{
    Field, LoginScope, NewDomain, NewToken, NewUser, Role, Store, StoreError, TenantId, TokenId,
};
mod support;

use support::{Case, Db};

const T0: i64 = 1_700_000_000;

const CASES: &[(&str, Case)] = &[
    ("tenants_are_listed_and_found_by_name", |db| {
        Box::pin(tenants_are_listed_and_found_by_name(db))
    }),
    (
        "users_are_unique_install_wide_and_listed_per_tenant",
        |db| Box::pin(users_are_unique_install_wide_and_listed_per_tenant(db)),
    ),
    ("a_tenant_cannot_disable_another_tenants_user", |db| {
        Box::pin(a_tenant_cannot_disable_another_tenants_user(db))
    }),
    ("tokens_are_found_by_digest_and_revoked_once", |db| {
        Box::pin(tokens_are_found_by_digest_and_revoked_once(db))
    }),
    ("tenant_a_cannot_list_or_revoke_tenant_bs_tokens", |db| {
        Box::pin(tenant_a_cannot_list_or_revoke_tenant_bs_tokens(db))
    }),
    ("last_used_is_written_at_most_once_per_interval", |db| {
        Box::pin(last_used_is_written_at_most_once_per_interval(db))
    }),
    ("login_failures_slide_by_bucket_per_scope_and_key", |db| {
        Box::pin(login_failures_slide_by_bucket_per_scope_and_key(db))
    }),
    ("two_stores_on_one_database_share_the_counts", |db| {
        Box::pin(two_stores_on_one_database_share_the_counts(db))
    }),
    ("bad_values_are_refused_naming_the_field", |db| {
        Box::pin(bad_values_are_refused_naming_the_field(db))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    support::run_on_sqlite(CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    support::run_on_postgres("stsward-store/postgres-auth", CASES).await;
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

async fn two_tenants(store: &Store) -> (TenantId, TenantId) {
    let a = store.tenant_create("alpha", T0).await.expect("alpha").id;
    let b = store.tenant_create("beta", T0).await.expect("beta").id;
    (a, b)
}

fn user(tenant: Option<TenantId>, name: &str, role: Role) -> NewUser {
    NewUser {
        tenant,
        name: name.into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${name}"),
        role,
        created_at: T0,
    }
}

/// A distinct 32-byte digest per seed (the store only compares them).
fn digest(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn token(tenant: TenantId, name: &str, seed: u8) -> NewToken {
    NewToken {
        tenant,
        name: name.into(),
        digest: digest(seed),
        prefix: format!("stw_{seed:04}"),
        created_at: T0,
    }
}

async fn tenants_are_listed_and_found_by_name(db: Db) {
    let store = open(&db).await;
    let default = store.tenant_default(T0).await.expect("default");
    let (a, b) = two_tenants(&store).await;
    let names: Vec<(String, TenantId)> = store
        .tenant_list()
        .await
        .expect("list")
        .into_iter()
        .map(|t| (t.name, t.id))
        .collect();
    assert_eq!(
        names,
        vec![
            ("alpha".to_string(), a),
            ("beta".to_string(), b),
            ("default".to_string(), default.id),
        ]
    );
    let found = store.tenant_by_name("beta").await.expect("by name");
    assert_eq!(found.map(|t| t.id), Some(b));
    assert_eq!(store.tenant_by_name("gamma").await.expect("none"), None);
    assert!(matches!(
        store.tenant_create("alpha", T0).await,
        Err(StoreError::TenantTaken { name }) if name == "alpha"
    ));
}

async fn users_are_unique_install_wide_and_listed_per_tenant(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    let root = store
        .user_create(&user(None, "root", Role::Admin))
        .await
        .expect("install admin");
    assert!(root.is_install_admin());
    store
        .user_create(&user(Some(a), "ann", Role::Admin))
        .await
        .expect("ann");
    store
        .user_create(&user(Some(a), "al", Role::Member))
        .await
        .expect("al");
    store
        .user_create(&user(Some(b), "bob", Role::Member))
        .await
        .expect("bob");
    // One name across the install: tenant B cannot take tenant A's user name.
    match store.user_create(&user(Some(b), "ann", Role::Member)).await {
        Err(StoreError::UserTaken { name }) => assert_eq!(name, "ann"),
        other => panic!("a second ann: {other:?}"),
    }
    let names = |users: Vec<stsward_store::User>| -> Vec<String> {
        users.into_iter().map(|u| u.name).collect()
    };
    assert_eq!(
        names(store.user_list(Some(a)).await.expect("a")),
        ["al", "ann"]
    );
    assert_eq!(names(store.user_list(Some(b)).await.expect("b")), ["bob"]);
    assert_eq!(
        names(store.user_list(None).await.expect("all")),
        ["al", "ann", "bob", "root"]
    );
    let ann = store
        .user_by_name("ann")
        .await
        .expect("read")
        .expect("ann exists");
    assert_eq!(
        (ann.tenant, ann.role, ann.disabled),
        (Some(a), Role::Admin, false)
    );
    assert!(
        ann.password_hash.starts_with("$argon2id$"),
        "the hash is kept"
    );
    assert!(
        !format!("{ann:?}").contains("argon2id"),
        "Debug leaves the hash out: {ann:?}"
    );
    assert_eq!(store.user_by_name("nobody").await.expect("read"), None);
}

async fn a_tenant_cannot_disable_another_tenants_user(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    store
        .user_create(&user(Some(b), "bob", Role::Member))
        .await
        .expect("bob");
    assert_eq!(
        store
            .user_set_disabled(Some(a), "bob", true)
            .await
            .expect("scoped"),
        None,
        "bob is not tenant A's"
    );
    let bob = store.user_by_name("bob").await.expect("read").expect("bob");
    assert!(!bob.disabled, "A's attempt changed nothing");
    let bob = store
        .user_set_disabled(Some(b), "bob", true)
        .await
        .expect("own")
        .expect("found");
    assert!(bob.disabled);
    let bob = store
        .user_set_disabled(None, "bob", false)
        .await
        .expect("install-wide")
        .expect("found");
    assert!(!bob.disabled, "an install admin enables any user");
    assert_eq!(
        store
            .user_set_disabled(None, "nobody", true)
            .await
            .expect("none"),
        None
    );
}

async fn tokens_are_found_by_digest_and_revoked_once(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    let made = store
        .api_token_create(&token(a, "deploy", 1))
        .await
        .expect("create");
    assert!(made.is_active());
    let found = store
        .api_token_lookup(&digest(1))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found, made);
    assert_eq!(
        store.api_token_lookup(&digest(2)).await.expect("lookup"),
        None,
        "another digest finds nothing"
    );
    let revoked = store
        .api_token_revoke(a, made.id, T0 + 10)
        .await
        .expect("revoke")
        .expect("own token");
    assert_eq!(revoked.revoked_at, Some(T0 + 10));
    let again = store
        .api_token_revoke(a, made.id, T0 + 99)
        .await
        .expect("revoke again")
        .expect("still there");
    assert_eq!(
        again.revoked_at,
        Some(T0 + 10),
        "the first revocation stays"
    );
    let found = store
        .api_token_lookup(&digest(1))
        .await
        .expect("lookup")
        .expect("found");
    assert!(!found.is_active(), "lookup shows the revocation: {found:?}");
    assert_eq!(
        store
            .api_token_revoke(a, TokenId(made.id.0 + 1000), T0)
            .await
            .expect("none"),
        None
    );
}

async fn tenant_a_cannot_list_or_revoke_tenant_bs_tokens(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    let a1 = store
        .api_token_create(&token(a, "a1", 1))
        .await
        .expect("a1");
    let b1 = store
        .api_token_create(&token(b, "b1", 2))
        .await
        .expect("b1");
    let a2 = store
        .api_token_create(&token(a, "a2", 3))
        .await
        .expect("a2");
    assert_eq!(store.api_token_list(a).await.expect("a"), vec![a1, a2]);
    assert_eq!(store.api_token_list(b).await.expect("b"), vec![b1.clone()]);
    assert_eq!(
        store.api_token_revoke(a, b1.id, T0).await.expect("revoke"),
        None,
        "A cannot revoke B's token"
    );
    let b_now = store
        .api_token_lookup(&digest(2))
        .await
        .expect("lookup")
        .expect("b1");
    assert!(b_now.is_active(), "B's token still works: {b_now:?}");
    assert_eq!(b_now.tenant, b, "a token maps to its own tenant");
    // Domains follow the same rule: a domain of B is not listed for A.
    let (_, _) = store
        .hosted_domain_add(
            b,
            &NewDomain {
                domain: "beta.test".into(),
                created_at: T0,
                follow_mx: false,
                tlsrpt_rua: None,
            },
            stsward_store::NewVersion {
                mode: "testing".into(),
                mx: vec!["mx.beta.test".into()],
                max_age: 86400,
                policy: "version: STSv1\nmode: testing\nmx: mx.beta.test\nmax_age: 86400\n".into(),
                sts_id: "1".into(),
                changed_by: "test".into(),
                changed_at: T0,
                note: None,
            },
        )
        .await
        .expect("domain");
    assert_eq!(
        store
            .hosted_domain_get(a, "beta.test")
            .await
            .expect("get")
            .map(|d| d.domain),
        None
    );
}

async fn last_used_is_written_at_most_once_per_interval(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    let t = store.api_token_create(&token(a, "t", 1)).await.expect("t");
    let used_at = |store: Store| async move {
        store
            .api_token_lookup(&digest(1))
            .await
            .expect("lookup")
            .expect("found")
            .last_used_at
    };
    assert_eq!(used_at(store.clone()).await, None);
    assert!(
        store
            .api_token_touch(t.id, T0 + 100, 60)
            .await
            .expect("first")
    );
    assert!(
        !store
            .api_token_touch(t.id, T0 + 130, 60)
            .await
            .expect("soon"),
        "within the interval nothing is written"
    );
    assert_eq!(used_at(store.clone()).await, Some(T0 + 100));
    assert!(
        store
            .api_token_touch(t.id, T0 + 160, 60)
            .await
            .expect("later")
    );
    assert_eq!(used_at(store.clone()).await, Some(T0 + 160));
}

async fn login_failures_slide_by_bucket_per_scope_and_key(db: Db) {
    let store = open(&db).await;
    const BUCKET: i64 = 60;
    const WINDOW: i64 = 900;
    for i in 0..3 {
        store
            .login_failure_record(LoginScope::User, "ann", T0 + i, BUCKET)
            .await
            .expect("record");
    }
    store
        .login_failure_record(LoginScope::User, "ann", T0 + 600, BUCKET)
        .await
        .expect("record");
    store
        .login_failure_record(LoginScope::Ip, "ann", T0, BUCKET)
        .await
        .expect("same key, other scope");
    store
        .login_failure_record(LoginScope::User, "bob", T0, BUCKET)
        .await
        .expect("other key");
    let count = |scope, key: &'static str, now| {
        let store = store.clone();
        async move {
            store
                .login_failure_count(scope, key, now, WINDOW)
                .await
                .expect("count")
        }
    };
    assert_eq!(count(LoginScope::User, "ann", T0 + 600).await, 4);
    assert_eq!(count(LoginScope::Ip, "ann", T0 + 600).await, 1);
    assert_eq!(count(LoginScope::User, "bob", T0 + 600).await, 1);
    // T0 is in the bucket starting at T0 - T0 % 60; once the window has passed it, the
    // first three fall out and the later one stays.
    let first_bucket = T0 - T0.rem_euclid(BUCKET);
    assert_eq!(
        count(LoginScope::User, "ann", first_bucket + WINDOW).await,
        1
    );
    assert_eq!(
        count(LoginScope::User, "ann", first_bucket + WINDOW - 1).await,
        4
    );
    store
        .login_failure_clear(LoginScope::User, "ann")
        .await
        .expect("clear");
    assert_eq!(count(LoginScope::User, "ann", T0 + 600).await, 0);
    assert_eq!(
        count(LoginScope::Ip, "ann", T0 + 600).await,
        1,
        "clear keeps other scopes"
    );
    let pruned = store
        .login_failure_prune(first_bucket)
        .await
        .expect("prune");
    assert_eq!(pruned, 2, "the ip and bob buckets at T0");
    assert_eq!(count(LoginScope::User, "bob", T0 + 600).await, 0);
}

async fn two_stores_on_one_database_share_the_counts(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .login_failure_record(LoginScope::Ip, "192.0.2.7", T0, 60)
                .await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("record");
    }
    assert_eq!(
        one.login_failure_count(LoginScope::Ip, "192.0.2.7", T0, 900)
            .await
            .expect("count"),
        10,
        "every replica's failures are counted once"
    );
}

async fn bad_values_are_refused_naming_the_field(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    let field_of = |e: StoreError| match e {
        StoreError::Invalid { field, .. }
        | StoreError::TooLarge { field, .. }
        | StoreError::NulCharacter { field } => field,
        other => panic!("not a refusal of a value: {other:?}"),
    };
    let mut short = token(a, "t", 1);
    short.digest.truncate(16);
    assert_eq!(
        field_of(store.api_token_create(&short).await.expect_err("short")),
        Field::TokenDigest
    );
    assert_eq!(
        field_of(store.api_token_lookup(&[0; 31]).await.expect_err("short")),
        Field::TokenDigest
    );
    assert_eq!(
        field_of(
            store
                .api_token_create(&token(a, "a\0b", 2))
                .await
                .expect_err("nul")
        ),
        Field::TokenName
    );
    assert_eq!(
        field_of(
            store
                .user_create(&user(None, "lonely", Role::Member))
                .await
                .expect_err("member without tenant")
        ),
        Field::Role
    );
    assert_eq!(
        field_of(
            store
                .user_create(&user(Some(a), &"x".repeat(300), Role::Member))
                .await
                .expect_err("long")
        ),
        Field::UserName
    );
    assert_eq!(store.user_list(None).await.expect("list"), vec![]);
    assert_eq!(store.api_token_list(a).await.expect("list"), vec![]);
}
