//! Dashboard sessions on both backends: one table of behaviours, run against a SQLite file
//! and against a throwaway PostgreSQL server (crates/stsward-testkit), each case on a fresh
//! database.

use stsward_store::{Field, NewUser, NewWebSession, Role, Store, StoreError, UserId};
mod support;

use support::{Case, Db};

const T0: i64 = 1_700_000_000;

const CASES: &[(&str, Case)] = &[
    ("a_session_is_found_by_digest_with_its_user", |db| {
        Box::pin(a_session_is_found_by_digest_with_its_user(db))
    }),
    ("touch_and_prune_follow_the_times", |db| {
        Box::pin(touch_and_prune_follow_the_times(db))
    }),
    ("another_replica_sees_the_session_and_its_deletion", |db| {
        Box::pin(another_replica_sees_the_session_and_its_deletion(db))
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
    support::run_on_postgres("stsward-store/postgres-web-sessions", CASES).await;
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

async fn ann(store: &Store) -> UserId {
    let tenant = store.tenant_create("alpha", T0).await.expect("tenant").id;
    store
        .user_create(&NewUser {
            tenant: Some(tenant),
            name: "ann".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$ann".into(),
            role: Role::Member,
            created_at: T0,
        })
        .await
        .expect("user")
        .id
}

fn digest(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(11).wrapping_add(seed))
        .collect()
}

fn session(user: UserId, seed: u8, expires_at: i64) -> NewWebSession {
    NewWebSession {
        digest: digest(seed),
        user,
        csrf_token: format!("csrf-{seed}"),
        created_at: T0,
        expires_at,
    }
}

async fn a_session_is_found_by_digest_with_its_user(db: Db) {
    let store = open(&db).await;
    let user = ann(&store).await;
    store
        .web_session_create(&session(user, 1, T0 + 3600))
        .await
        .expect("create");
    let found = store
        .web_session_lookup(&digest(1))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.user.id, user);
    assert_eq!(found.user.name, "ann");
    assert_eq!(found.csrf_token, "csrf-1");
    assert_eq!(
        (found.created_at, found.expires_at, found.last_seen_at),
        (T0, T0 + 3600, T0)
    );
    assert_eq!(
        store.web_session_lookup(&digest(2)).await.expect("lookup"),
        None,
        "another digest finds nothing"
    );
    assert!(store.web_session_delete(&digest(1)).await.expect("delete"));
    assert_eq!(
        store.web_session_lookup(&digest(1)).await.expect("lookup"),
        None,
        "a deleted session is gone"
    );
    assert!(
        !store.web_session_delete(&digest(1)).await.expect("delete"),
        "a second delete finds nothing"
    );
}

async fn touch_and_prune_follow_the_times(db: Db) {
    let store = open(&db).await;
    let user = ann(&store).await;
    store
        .web_session_create(&session(user, 1, T0 + 3600))
        .await
        .expect("create 1");
    store
        .web_session_create(&session(user, 2, T0 + 100))
        .await
        .expect("create 2");
    assert!(
        !store
            .web_session_touch(&digest(1), T0 + 30, 60)
            .await
            .expect("touch"),
        "within the interval nothing is written"
    );
    assert!(
        store
            .web_session_touch(&digest(1), T0 + 60, 60)
            .await
            .expect("touch"),
        "after the interval the time moves"
    );
    let seen = store
        .web_session_lookup(&digest(1))
        .await
        .expect("lookup")
        .expect("found")
        .last_seen_at;
    assert_eq!(seen, T0 + 60);
    // At T0 + 100 session 2 has expired; session 1 was seen at T0 + 60, after the idle cut.
    assert_eq!(
        store
            .web_session_prune(T0 + 100, T0 + 50)
            .await
            .expect("prune"),
        1
    );
    assert!(
        store
            .web_session_lookup(&digest(2))
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .web_session_lookup(&digest(1))
            .await
            .expect("lookup")
            .is_some()
    );
    // Idle since T0 + 60: an idle cut after it removes the session.
    assert_eq!(
        store
            .web_session_prune(T0 + 100, T0 + 60)
            .await
            .expect("prune"),
        1
    );
    assert!(
        store
            .web_session_lookup(&digest(1))
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn another_replica_sees_the_session_and_its_deletion(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let user = ann(&one).await;
    one.web_session_create(&session(user, 3, T0 + 3600))
        .await
        .expect("create");
    assert!(
        two.web_session_lookup(&digest(3))
            .await
            .expect("lookup")
            .is_some()
    );
    assert!(two.web_session_delete(&digest(3)).await.expect("delete"));
    assert!(
        one.web_session_lookup(&digest(3))
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn bad_values_are_refused_naming_the_field(db: Db) {
    let store = open(&db).await;
    let user = ann(&store).await;
    let field_of = |e: StoreError| match e {
        StoreError::Invalid { field, .. }
        | StoreError::TooLarge { field, .. }
        | StoreError::NulCharacter { field } => field,
        other => panic!("unexpected error {other:?}"),
    };
    let mut short = session(user, 1, T0 + 10);
    short.digest.truncate(31);
    let e = store
        .web_session_create(&short)
        .await
        .expect_err("short digest");
    assert_eq!(field_of(e), Field::SessionDigest);
    let e = store
        .web_session_lookup(&[0; 3])
        .await
        .expect_err("short digest");
    assert_eq!(field_of(e), Field::SessionDigest);
    let mut long = session(user, 1, T0 + 10);
    long.csrf_token = "x".repeat(129);
    let e = store
        .web_session_create(&long)
        .await
        .expect_err("long token");
    assert_eq!(field_of(e), Field::CsrfToken);
}
