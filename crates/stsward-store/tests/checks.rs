//! Check runs (issue 9) on both backends: stored per tenant's hosted domain, listed newest
//! first, never across tenants, with the history bounded per domain.

use stsward_store::{Field, NewCheckRun, NewDomain, NewVersion, Store, StoreError, TenantId};
mod support;

use support::{Case, Db};

const T0: i64 = 1_700_000_000;

const CASES: &[(&str, Case)] = &[
    ("runs_are_listed_newest_first_per_domain", |db| {
        Box::pin(runs_are_listed_newest_first_per_domain(db))
    }),
    ("another_tenants_domain_gets_nothing", |db| {
        Box::pin(another_tenants_domain_gets_nothing(db))
    }),
    ("history_is_bounded_per_domain", |db| {
        Box::pin(history_is_bounded_per_domain(db))
    }),
    ("bad_runs_are_refused_naming_the_field", |db| {
        Box::pin(bad_runs_are_refused_naming_the_field(db))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    support::run_on_sqlite(CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    support::run_on_postgres("stsward-store/postgres-checks", CASES).await;
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

async fn host(store: &Store, tenant: TenantId, domain: &str) {
    store
        .hosted_domain_add(
            tenant,
            &NewDomain {
                domain: domain.into(),
                created_at: T0,
                follow_mx: false,
                tlsrpt_rua: None,
            },
            NewVersion {
                mode: "testing".into(),
                mx: vec![format!("mx.{domain}")],
                max_age: 86400,
                policy: format!("version: STSv1\nmode: testing\nmx: mx.{domain}\nmax_age: 86400\n"),
                sts_id: "1".into(),
                changed_by: "test".into(),
                changed_at: T0,
                note: None,
            },
        )
        .await
        .expect("domain");
}

fn run(at: i64, verdict: &str) -> NewCheckRun {
    NewCheckRun {
        started_at: at,
        finished_at: at + 3,
        verdict: verdict.into(),
        findings: format!("[{{\"code\":\"mx.unreachable\",\"at\":{at}}}]"),
    }
}

async fn two_tenants(store: &Store) -> (TenantId, TenantId) {
    let a = store.tenant_create("alpha", T0).await.expect("alpha").id;
    let b = store.tenant_create("beta", T0).await.expect("beta").id;
    (a, b)
}

async fn runs_are_listed_newest_first_per_domain(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    host(&store, a, "one.test").await;
    host(&store, a, "two.test").await;
    let first = store
        .check_run_add(a, "one.test", &run(T0, "error"), 100)
        .await
        .expect("add")
        .expect("a's domain");
    assert_eq!(first.verdict, "error");
    store
        .check_run_add(a, "one.test", &run(T0 + 60, "ok"), 100)
        .await
        .expect("add")
        .expect("a's domain");
    store
        .check_run_add(a, "two.test", &run(T0 + 30, "warning"), 100)
        .await
        .expect("add")
        .expect("a's domain");
    let listed = store.check_run_list(a, "one.test", 10).await.expect("list");
    let seen: Vec<(i64, &str, &str)> = listed
        .iter()
        .map(|r| (r.started_at, r.verdict.as_str(), r.domain.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![(T0 + 60, "ok", "one.test"), (T0, "error", "one.test")]
    );
    assert_eq!(listed[1].findings, run(T0, "error").findings);
    assert_eq!(listed[1].finished_at, T0 + 3);
    let limited = store.check_run_list(a, "one.test", 1).await.expect("list");
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].started_at, T0 + 60);
}

async fn another_tenants_domain_gets_nothing(db: Db) {
    let store = open(&db).await;
    let (a, b) = two_tenants(&store).await;
    host(&store, b, "beta.test").await;
    store
        .check_run_add(b, "beta.test", &run(T0, "ok"), 100)
        .await
        .expect("add")
        .expect("b's domain");
    // A can neither add a run to B's domain nor see B's runs.
    assert_eq!(
        store
            .check_run_add(a, "beta.test", &run(T0, "error"), 100)
            .await
            .expect("add"),
        None
    );
    assert!(
        store
            .check_run_list(a, "beta.test", 10)
            .await
            .expect("list")
            .is_empty()
    );
    // B's history is untouched by A's attempt.
    let b_runs = store
        .check_run_list(b, "beta.test", 10)
        .await
        .expect("list");
    assert_eq!(b_runs.len(), 1);
    assert_eq!(b_runs[0].verdict, "ok");
    // A domain nobody hosts: nothing either.
    assert_eq!(
        store
            .check_run_add(b, "nobody.test", &run(T0, "ok"), 100)
            .await
            .expect("add"),
        None
    );
}

async fn history_is_bounded_per_domain(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    host(&store, a, "one.test").await;
    host(&store, a, "two.test").await;
    store
        .check_run_add(a, "two.test", &run(T0, "ok"), 3)
        .await
        .expect("add")
        .expect("domain");
    for i in 0..7 {
        store
            .check_run_add(a, "one.test", &run(T0 + i, "info"), 3)
            .await
            .expect("add")
            .expect("domain");
    }
    let kept: Vec<i64> = store
        .check_run_list(a, "one.test", 100)
        .await
        .expect("list")
        .iter()
        .map(|r| r.started_at)
        .collect();
    assert_eq!(kept, vec![T0 + 6, T0 + 5, T0 + 4], "the newest 3 are kept");
    // Another domain's history is its own.
    assert_eq!(
        store
            .check_run_list(a, "two.test", 100)
            .await
            .expect("list")
            .len(),
        1
    );
}

async fn bad_runs_are_refused_naming_the_field(db: Db) {
    let store = open(&db).await;
    let (a, _) = two_tenants(&store).await;
    host(&store, a, "one.test").await;
    let bad_verdict = store
        .check_run_add(a, "one.test", &run(T0, "fine"), 100)
        .await;
    assert!(
        matches!(
            bad_verdict,
            Err(StoreError::Invalid {
                field: Field::CheckVerdict,
                ..
            })
        ),
        "{bad_verdict:?}"
    );
    let huge = NewCheckRun {
        findings: "x".repeat(stsward_store::checks::MAX_FINDINGS_BYTES + 1),
        ..run(T0, "ok")
    };
    let too_large = store.check_run_add(a, "one.test", &huge, 100).await;
    assert!(
        matches!(
            too_large,
            Err(StoreError::TooLarge {
                field: Field::CheckFindings,
                ..
            })
        ),
        "{too_large:?}"
    );
    assert!(
        store
            .check_run_list(a, "one.test", 10)
            .await
            .expect("list")
            .is_empty()
    );
}
