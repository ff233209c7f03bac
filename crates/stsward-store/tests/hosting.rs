//! Hosted domains, policy versions, certificates and ACME accounts on both backends: one
//! table of behaviours, run against a SQLite file and against a throwaway PostgreSQL server
//! (crates/stsward-testkit), each case on a fresh database. Every failing case is named.

use stsward_store::{
    AcmeAccount, Backend, CertState, DomainState, Field, NewDomain, NewVersion, Sealed, Store,
    StoreError, StoredCertificate, TenantId, Transition,
};
mod support;

use support::{Case, Db};

const CASES: &[(&str, Case)] = &[
    ("the_default_tenant_is_created_once", |db| {
        Box::pin(the_default_tenant_is_created_once(db))
    }),
    ("add_get_list_and_history", |db| {
        Box::pin(add_get_list_and_history(db))
    }),
    ("a_name_is_hosted_once_across_tenants", |db| {
        Box::pin(a_name_is_hosted_once_across_tenants(db))
    }),
    ("tenant_b_cannot_read_or_change_tenant_a", |db| {
        Box::pin(tenant_b_cannot_read_or_change_tenant_a(db))
    }),
    ("a_stale_version_is_a_conflict_and_writes_nothing", |db| {
        Box::pin(a_stale_version_is_a_conflict_and_writes_nothing(db))
    }),
    ("two_replicas_racing_create_one_version", |db| {
        Box::pin(two_replicas_racing_create_one_version(db))
    }),
    ("a_version_and_its_move_are_one_transaction", |db| {
        Box::pin(a_version_and_its_move_are_one_transaction(db))
    }),
    ("rfc8461_8_3_removal_then_gone_then_hosted_again", |db| {
        Box::pin(rfc8461_8_3_removal_then_gone_then_hosted_again(db))
    }),
    ("snapshot_spans_tenants_and_skips_gone", |db| {
        Box::pin(snapshot_spans_tenants_and_skips_gone(db))
    }),
    ("certificates_put_fail_get_list", |db| {
        Box::pin(certificates_put_fail_get_list(db))
    }),
    ("one_acme_account_per_directory", |db| {
        Box::pin(one_acme_account_per_directory(db))
    }),
    ("add_many_hosts_new_names_and_skips_hosted_ones", |db| {
        Box::pin(add_many_hosts_new_names_and_skips_hosted_ones(db))
    }),
    ("add_many_refuses_a_bad_batch_and_writes_nothing", |db| {
        Box::pin(add_many_refuses_a_bad_batch_and_writes_nothing(db))
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
    support::run_on_postgres("stsward-store/postgres-hosting", CASES).await;
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

fn new_domain(name: &str, at: i64) -> NewDomain {
    NewDomain {
        domain: name.into(),
        follow_mx: false,
        tlsrpt_rua: None,
        created_at: at,
    }
}

fn version(mode: &str, mx: &[&str], max_age: i64, id: &str, at: i64) -> NewVersion {
    let mut policy = format!("version: STSv1\r\nmode: {mode}\r\n");
    for m in mx {
        policy.push_str(&format!("mx: {m}\r\n"));
    }
    policy.push_str(&format!("max_age: {max_age}\r\n"));
    NewVersion {
        mode: mode.into(),
        mx: mx.iter().map(|s| s.to_string()).collect(),
        max_age,
        policy,
        sts_id: id.into(),
        changed_by: "tester".into(),
        changed_at: at,
        note: None,
    }
}

async fn two_tenants(store: &Store) -> (TenantId, TenantId) {
    let a = store.tenant_default(1).await.expect("default tenant").id;
    let b = store.tenant_create("b", 1).await.expect("tenant b").id;
    assert_ne!(a, b);
    (a, b)
}

async fn the_default_tenant_is_created_once(db: Db) {
    let store = open(&db).await;
    let (x, y) = tokio::join!(store.tenant_default(10), store.tenant_default(20));
    let (x, y) = (x.expect("x"), y.expect("y"));
    assert_eq!(x, y, "both callers get the one default tenant");
    assert_eq!(x.name, "default");
    assert!(x.created_at == 10 || x.created_at == 20);
    // A second store (replica) still finds the same one.
    let again = open(&db).await.tenant_default(30).await.expect("again");
    assert_eq!(again, x);
    match store.tenant_create("default", 40).await {
        Err(StoreError::TenantTaken { name }) => assert_eq!(name, "default"),
        other => panic!("a second tenant named default: {other:?}"),
    }
}

async fn add_get_list_and_history(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    let (d, v1) = store
        .hosted_domain_add(
            t,
            &new_domain("b.test", 100),
            version("testing", &["mx.b.test"], 86400, "a1", 100),
        )
        .await
        .expect("add b");
    assert_eq!(
        (d.state, d.current_version, d.tenant),
        (DomainState::Active, 1, t)
    );
    assert_eq!(v1.version, 1);
    store
        .hosted_domain_add(
            t,
            &new_domain("a.test", 100),
            version("none", &[], 86400, "z1", 100),
        )
        .await
        .expect("add a");
    assert_eq!(
        store.hosted_domain_get(t, "b.test").await.expect("get"),
        Some(d.clone())
    );
    assert_eq!(
        store.hosted_domain_get(t, "c.test").await.expect("get c"),
        None
    );
    let names = |list: Vec<stsward_store::HostedDomain>| {
        list.into_iter().map(|d| d.domain).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.hosted_domain_list(t, None, 10).await.expect("list")),
        ["a.test", "b.test"]
    );
    assert_eq!(
        names(
            store
                .hosted_domain_list(t, Some("a.test"), 10)
                .await
                .expect("page")
        ),
        ["b.test"]
    );
    assert_eq!(
        names(store.hosted_domain_list(t, None, 1).await.expect("limit")),
        ["a.test"]
    );

    let v2 = store
        .policy_version_add(
            t,
            "b.test",
            1,
            version("enforce", &["mx.b.test", "*.b.test"], 604800, "a2", 200),
            None,
        )
        .await
        .expect("v2");
    assert_eq!(v2.version, 2);
    let current = store
        .policy_version_current(t, "b.test")
        .await
        .expect("current")
        .expect("some");
    assert_eq!(current, v2);
    assert_eq!(current.mx, ["mx.b.test", "*.b.test"]);
    let history = store
        .policy_versions(t, "b.test", 10)
        .await
        .expect("history");
    assert_eq!(history, vec![v2.clone(), v1], "newest first, v1 unchanged");
    assert_eq!(
        store
            .hosted_domain_get(t, "b.test")
            .await
            .expect("get")
            .expect("some")
            .current_version,
        2
    );
    let with_current = store
        .hosted_domain_list_current(t, None, 10)
        .await
        .expect("list current");
    assert_eq!(
        with_current
            .iter()
            .map(|(d, v)| (d.domain.as_str(), v.version, v.sts_id.as_str()))
            .collect::<Vec<_>>(),
        [("a.test", 1, "z1"), ("b.test", 2, "a2")]
    );
    store
        .hosted_domain_set_options(t, "b.test", true, Some("mailto:r@b.test"))
        .await
        .expect("options");
    let d = store
        .hosted_domain_get(t, "b.test")
        .await
        .expect("get")
        .expect("some");
    assert!(d.follow_mx);
    assert_eq!(d.tlsrpt_rua.as_deref(), Some("mailto:r@b.test"));
    // Reopening keeps everything (acknowledged writes are durable).
    store.close().await;
    let again = open(&db).await;
    assert_eq!(
        again
            .policy_versions(t, "b.test", 10)
            .await
            .expect("history")
            .len(),
        2
    );
}

async fn a_name_is_hosted_once_across_tenants(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    store
        .hosted_domain_add(
            a,
            &new_domain("shared.test", 1),
            version("testing", &["mx.shared.test"], 86400, "x1", 1),
        )
        .await
        .expect("a adds");
    for tenant in [a, b] {
        match store
            .hosted_domain_add(
                tenant,
                &new_domain("shared.test", 2),
                version("testing", &["mx.evil.test"], 86400, "x2", 2),
            )
            .await
        {
            Err(StoreError::DomainTaken { domain }) => assert_eq!(domain, "shared.test"),
            other => panic!("tenant {tenant} adds a hosted name: {other:?}"),
        }
    }
    // Nothing of the refused adds was written.
    let history = store
        .policy_versions(a, "shared.test", 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].mx, ["mx.shared.test"]);
}

async fn tenant_b_cannot_read_or_change_tenant_a(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    store
        .hosted_domain_add(
            a,
            &new_domain("a-only.test", 1),
            version("enforce", &["mx.a-only.test"], 86400, "a1", 1),
        )
        .await
        .expect("a adds");
    assert_eq!(
        store
            .hosted_domain_get(b, "a-only.test")
            .await
            .expect("get"),
        None
    );
    assert!(
        store
            .hosted_domain_list(b, None, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .hosted_domain_list_current(b, None, 100)
            .await
            .expect("list current")
            .is_empty()
    );
    assert!(
        store
            .policy_versions(b, "a-only.test", 10)
            .await
            .expect("versions")
            .is_empty()
    );
    assert_eq!(
        store
            .policy_version_current(b, "a-only.test")
            .await
            .expect("current"),
        None
    );
    match store
        .policy_version_add(
            b,
            "a-only.test",
            1,
            version("none", &[], 86400, "b2", 2),
            Some(Transition {
                state: DomainState::Removing,
                remove_after: Some(5),
            }),
        )
        .await
    {
        Err(StoreError::DomainNotFound { domain }) => assert_eq!(domain, "a-only.test"),
        other => panic!("b adds a version to a's domain: {other:?}"),
    }
    match store
        .hosted_domain_set_options(b, "a-only.test", true, Some("mailto:x@evil.test"))
        .await
    {
        Err(StoreError::DomainNotFound { .. }) => {}
        other => panic!("b changes a's options: {other:?}"),
    }
    // A removal of a's domain cannot be finished through b either.
    let d = store
        .hosted_domain_get(a, "a-only.test")
        .await
        .expect("get")
        .expect("a still has it");
    assert_eq!(
        (d.current_version, d.state, d.follow_mx, d.tlsrpt_rua),
        (1, DomainState::Active, false, None)
    );
    assert_eq!(
        store
            .policy_versions(a, "a-only.test", 10)
            .await
            .expect("v")
            .len(),
        1
    );
}

async fn a_stale_version_is_a_conflict_and_writes_nothing(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    store
        .hosted_domain_add(
            t,
            &new_domain("c.test", 1),
            version("testing", &["mx.c.test"], 86400, "c1", 1),
        )
        .await
        .expect("add");
    store
        .policy_version_add(
            t,
            "c.test",
            1,
            version("enforce", &["mx.c.test"], 86400, "c2", 2),
            None,
        )
        .await
        .expect("v2");
    for stale in [0, 1, 3] {
        match store
            .policy_version_add(
                t,
                "c.test",
                stale,
                version("none", &[], 86400, "cx", 3),
                None,
            )
            .await
        {
            Err(StoreError::VersionConflict { domain, expected }) => {
                assert_eq!((domain.as_str(), expected), ("c.test", stale))
            }
            other => panic!("expected {stale}: {other:?}"),
        }
    }
    let history = store.policy_versions(t, "c.test", 10).await.expect("h");
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
}

async fn two_replicas_racing_create_one_version(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let t = one.tenant_default(1).await.expect("tenant").id;
    one.hosted_domain_add(
        t,
        &new_domain("race.test", 1),
        version("testing", &["mx.race.test"], 86400, "r1", 1),
    )
    .await
    .expect("add");
    // Eight writers on two pools, all basing their change on version 1.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .policy_version_add(
                    t,
                    "race.test",
                    1,
                    version("enforce", &["mx.race.test"], 86400, &format!("w{i}"), 2),
                    None,
                )
                .await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(v) => won.push(v),
            Err(StoreError::VersionConflict { .. }) => {}
            // SQLite may also give up waiting for the write lock; that is no second version.
            Err(StoreError::Query { .. }) if db.backend == Backend::Sqlite => {}
            Err(e) => panic!("writer: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer wins: {won:?}");
    let history = one.policy_versions(t, "race.test", 10).await.expect("h");
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(history[0].sts_id, won[0].sts_id, "the winner's row is v2");
    let d = one
        .hosted_domain_get(t, "race.test")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(d.current_version, 2);
}

/// A failure between the version insert and the move of `current_version` (a trigger that
/// refuses the move) leaves neither: the insert is rolled back with it.
async fn a_version_and_its_move_are_one_transaction(db: Db) {
    use sqlx::Connection;
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    store
        .hosted_domain_add(
            t,
            &new_domain("atomic.test", 1),
            version("testing", &["mx.atomic.test"], 86400, "t1", 1),
        )
        .await
        .expect("add");
    let statements: &[&str] = match db.backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse_move BEFORE UPDATE ON hosted_domains \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_move() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER refuse_move BEFORE UPDATE ON hosted_domains \
             FOR EACH ROW EXECUTE FUNCTION refuse_move()",
        ],
    };
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url)
                .await
                .expect("conn");
            for s in statements {
                sqlx::query(s).execute(&mut conn).await.expect("trigger");
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("conn");
            for s in statements {
                sqlx::query(s).execute(&mut conn).await.expect("trigger");
            }
        }
    }
    match store
        .policy_version_add(
            t,
            "atomic.test",
            1,
            version("enforce", &["mx.atomic.test"], 86400, "t2", 2),
            None,
        )
        .await
    {
        Err(StoreError::Query { .. }) => {}
        other => panic!("the move was refused, so must the add be: {other:?}"),
    }
    let history = store
        .policy_versions(t, "atomic.test", 10)
        .await
        .expect("h");
    assert_eq!(history.len(), 1, "no half-written version: {history:?}");
}

async fn rfc8461_8_3_removal_then_gone_then_hosted_again(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    store
        .hosted_domain_add(
            a,
            &new_domain("bye.test", 1),
            version("enforce", &["mx.bye.test"], 604800, "b1", 1),
        )
        .await
        .expect("add");
    let none = store
        .policy_version_add(
            a,
            "bye.test",
            1,
            version("none", &["mx.bye.test"], 86400, "b2", 100),
            Some(Transition {
                state: DomainState::Removing,
                remove_after: Some(100 + 604800),
            }),
        )
        .await
        .expect("none version");
    let d = store
        .hosted_domain_get(a, "bye.test")
        .await
        .expect("get")
        .expect("still hosted while removing");
    assert_eq!(
        (d.state, d.remove_after, d.current_version),
        (DomainState::Removing, Some(604900), 2)
    );
    assert_eq!(
        store
            .policy_version_current(a, "bye.test")
            .await
            .expect("c"),
        Some(none)
    );
    // Not yet, and not through another tenant.
    assert!(
        store
            .hosted_domain_finish_removals(None, 604899)
            .await
            .expect("early")
            .is_empty()
    );
    assert!(
        store
            .hosted_domain_finish_removals(Some(b), 604900)
            .await
            .expect("other tenant")
            .is_empty()
    );
    assert!(
        !store
            .hosted_domain_finish_removal("bye.test", 604899)
            .await
            .expect("early by name")
    );
    assert_eq!(
        store
            .hosted_domain_finish_removals(Some(a), 604900)
            .await
            .expect("due"),
        ["bye.test"]
    );
    assert!(
        !store
            .hosted_domain_finish_removal("bye.test", 604900)
            .await
            .expect("already gone")
    );
    assert_eq!(
        store.hosted_domain_get(a, "bye.test").await.expect("get"),
        None
    );
    // The name is free again, for any tenant, with a fresh history.
    let (again, v1) = store
        .hosted_domain_add(
            b,
            &new_domain("bye.test", 700000),
            version("testing", &["mx.new.test"], 86400, "n1", 700000),
        )
        .await
        .expect("hosted again");
    assert_ne!(again.id, d.id);
    assert_eq!((again.tenant, v1.version), (b, 1));
    assert_eq!(
        store
            .policy_versions(b, "bye.test", 10)
            .await
            .expect("h")
            .len(),
        1
    );
}

async fn snapshot_spans_tenants_and_skips_gone(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    for (tenant, name) in [(a, "s1.test"), (b, "s2.test"), (a, "s3.test")] {
        store
            .hosted_domain_add(
                tenant,
                &new_domain(name, 1),
                version("testing", &["mx.s.test"], 86400, "s1", 1),
            )
            .await
            .expect("add");
    }
    store
        .policy_version_add(
            b,
            "s2.test",
            1,
            version("enforce", &["mx.s.test"], 86400, "s2", 2),
            None,
        )
        .await
        .expect("v2");
    store
        .policy_version_add(
            a,
            "s3.test",
            1,
            version("none", &[], 86400, "s3", 2),
            Some(Transition {
                state: DomainState::Removing,
                remove_after: Some(10),
            }),
        )
        .await
        .expect("removing");
    let snap = store.hosting_snapshot().await.expect("snapshot");
    let seen: Vec<(&str, TenantId, i64, &str, DomainState)> = snap
        .iter()
        .map(|e| {
            (
                e.domain.as_str(),
                e.tenant,
                e.version,
                e.sts_id.as_str(),
                e.state,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("s1.test", a, 1, "s1", DomainState::Active),
            ("s2.test", b, 2, "s2", DomainState::Active),
            ("s3.test", a, 2, "s3", DomainState::Removing),
        ]
    );
    assert!(snap[1].policy.contains("mode: enforce\r\n"));
    store
        .hosted_domain_finish_removals(None, 10)
        .await
        .expect("finish");
    let snap = store.hosting_snapshot().await.expect("snapshot");
    assert_eq!(snap.len(), 2, "gone is not served");
}

fn cert(name: &str, state: CertState, at: i64) -> StoredCertificate {
    StoredCertificate {
        name: name.into(),
        chain_pem: Some(format!("-----BEGIN CERTIFICATE-----\n{at}\n")),
        key: Some(Sealed {
            ciphertext: vec![1, 2, 3, at as u8],
            nonce: vec![9; 12],
        }),
        not_before: Some(at),
        not_after: Some(at + 90 * 86400),
        state,
        last_error: None,
        updated_at: at,
    }
}

async fn certificates_put_fail_get_list(db: Db) {
    let store = open(&db).await;
    let c = cert("mta-sts.c.test", CertState::Valid, 100);
    store.certificate_put(&c).await.expect("put");
    assert_eq!(
        store.certificate_get("mta-sts.c.test").await.expect("get"),
        Some(c.clone())
    );
    // An older write (another replica, late) does not replace a newer one.
    store
        .certificate_put(&cert("mta-sts.c.test", CertState::Pending, 50))
        .await
        .expect("older put");
    assert_eq!(
        store.certificate_get("mta-sts.c.test").await.expect("get"),
        Some(c.clone())
    );
    // A failed renewal keeps the chain and key.
    store
        .certificate_fail("mta-sts.c.test", "rate limited\0 by CA", 200)
        .await
        .expect("fail");
    let failed = store
        .certificate_get("mta-sts.c.test")
        .await
        .expect("get")
        .expect("some");
    assert_eq!(failed.state, CertState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("rate limited by CA"));
    assert_eq!((failed.chain_pem, failed.key), (c.chain_pem, c.key));
    // A failure for a name with no certificate yet creates the row.
    store
        .certificate_fail("mta-sts.a.test", "no CNAME", 200)
        .await
        .expect("fail new");
    let list = store.certificate_list(None, 10).await.expect("list");
    assert_eq!(
        list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["mta-sts.a.test", "mta-sts.c.test"]
    );
    assert_eq!(
        (list[0].chain_pem.as_ref(), list[0].key.as_ref()),
        (None, None)
    );
    let page = store
        .certificate_list(Some("mta-sts.a.test"), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
}

async fn one_acme_account_per_directory(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let account = |n: u8, at| AcmeAccount {
        directory_url: "https://127.0.0.1:14000/dir".into(),
        credentials: Sealed {
            ciphertext: vec![n; 40],
            nonce: vec![n; 12],
        },
        contact: Some("mailto:ops@example.test".into()),
        created_at: at,
    };
    assert_eq!(
        one.acme_account_get("https://127.0.0.1:14000/dir")
            .await
            .expect("get"),
        None
    );
    let (first, second) = (account(1, 10), account(2, 20));
    let (x, y) = tokio::join!(
        one.acme_account_insert(&first),
        two.acme_account_insert(&second)
    );
    let (x, y) = (x.expect("x"), y.expect("y"));
    assert_eq!(x, y, "both replicas use the first account stored");
    assert!(x == account(1, 10) || x == account(2, 20));
}

async fn bad_values_are_refused_naming_the_field(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    let mut long_note = version("testing", &["mx.n.test"], 86400, "n1", 1);
    long_note.note = Some("x".repeat(5000));
    let mut nul_actor = version("testing", &["mx.n.test"], 86400, "n1", 1);
    nul_actor.changed_by = "a\0b".into();
    let long_id = version("testing", &["mx.n.test"], 86400, &"1".repeat(33), 1);
    let cases: Vec<(NewDomain, NewVersion, Field)> = vec![
        (new_domain("n.test", 1), long_note, Field::Note),
        (new_domain("n.test", 1), nul_actor, Field::ChangedBy),
        (new_domain("n.test", 1), long_id, Field::StsId),
        (
            new_domain(&"a".repeat(300), 1),
            version("testing", &["mx.n.test"], 86400, "n1", 1),
            Field::Domain,
        ),
    ];
    for (d, v, field) in cases {
        match store.hosted_domain_add(t, &d, v).await {
            Err(StoreError::TooLarge { field: got, .. })
            | Err(StoreError::NulCharacter { field: got }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(
        store
            .hosted_domain_list(t, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn add_many_hosts_new_names_and_skips_hosted_ones(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    store
        .hosted_domain_add(
            b,
            &new_domain("taken.test", 50),
            version("enforce", &["mx.taken.test"], 86400, "b1", 50),
        )
        .await
        .expect("tenant b hosts taken.test");
    let before = store.hosting_change_position().await.expect("position");
    // More than one multi-row statement's worth (500 rows), with the taken name inside.
    let mut batch: Vec<(NewDomain, NewVersion)> = (0..1200)
        .map(|i| {
            (
                new_domain(&format!("n{i:04}.test"), 100),
                version(
                    "testing",
                    &["mx.example.net"],
                    604800,
                    &format!("id{i}"),
                    100,
                ),
            )
        })
        .collect();
    batch.insert(
        700,
        (
            new_domain("taken.test", 100),
            version("testing", &["mx.example.net"], 604800, "x", 100),
        ),
    );
    match store.hosted_domains_add_many(a, &batch).await {
        Err(StoreError::BatchTooLarge {
            len: 1201,
            max: 1000,
        }) => {}
        other => panic!("a batch over MAX_BATCH: {other:?}"),
    }
    let (first, rest) = batch.split_at(1000);
    let added = store
        .hosted_domains_add_many(a, first)
        .await
        .expect("first batch");
    let again = store
        .hosted_domains_add_many(a, rest)
        .await
        .expect("second batch");
    let added: Vec<bool> = added.into_iter().chain(again).collect();
    assert_eq!(added.len(), 1201);
    assert_eq!(added.iter().filter(|x| **x).count(), 1200);
    assert!(!added[700], "taken.test is hosted by tenant b: skipped");
    let listed = store
        .hosted_domain_list(a, None, 2000)
        .await
        .expect("list a");
    assert_eq!(listed.len(), 1200);
    assert!(
        listed
            .iter()
            .all(|d| d.current_version == 1 && d.state == DomainState::Active)
    );
    assert!(
        store
            .hosted_domain_get(a, "taken.test")
            .await
            .expect("get")
            .is_none(),
        "tenant a did not get tenant b's domain"
    );
    let taken = store
        .policy_version_current(b, "taken.test")
        .await
        .expect("b's")
        .expect("some");
    assert_eq!(taken.mode, "enforce", "tenant b's policy is unchanged");
    let v = store
        .policy_version_current(a, "n1199.test")
        .await
        .expect("v")
        .expect("some");
    assert_eq!(
        (v.version, v.sts_id.as_str(), v.mx.as_slice()),
        (1, "id1199", &["mx.example.net".to_owned()][..])
    );
    // Every added domain is one change for the serving replicas, as a single add is.
    let changes = store
        .hosting_changes_since(before, 5000)
        .await
        .expect("changes");
    assert_eq!(changes.len(), 1200);
    // Importing the same names again adds nothing and duplicates nothing.
    let third = store
        .hosted_domains_add_many(a, first)
        .await
        .expect("again");
    assert!(third.iter().all(|x| !x));
    assert_eq!(
        store
            .hosted_domain_list(a, None, 2000)
            .await
            .expect("list")
            .len(),
        1200
    );
    assert_eq!(
        store.hosting_snapshot().await.expect("snapshot").len(),
        1201
    );
}

async fn add_many_refuses_a_bad_batch_and_writes_nothing(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    let ok = |name: &str| {
        (
            new_domain(name, 100),
            version("testing", &["mx.example.net"], 604800, "i1", 100),
        )
    };
    match store
        .hosted_domains_add_many(t, &[ok("a.test"), ok("b.test"), ok("a.test")])
        .await
    {
        Err(StoreError::DuplicateInBatch { domain }) => assert_eq!(domain, "a.test"),
        other => panic!("a name twice in a batch: {other:?}"),
    }
    let mut nul = ok("c.test");
    nul.1.note = Some("a\0b".into());
    match store.hosted_domains_add_many(t, &[ok("d.test"), nul]).await {
        Err(StoreError::NulCharacter { field: Field::Note }) => {}
        other => panic!("a NUL in a note: {other:?}"),
    }
    assert!(
        store
            .hosted_domain_list(t, None, 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing was written"
    );
    assert_eq!(
        store.hosted_domains_add_many(t, &[]).await.expect("empty"),
        Vec::<bool>::new()
    );
}
