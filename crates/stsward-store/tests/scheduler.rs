//! The scheduler's tables on both backends (crates/stsward-testkit gives the PostgreSQL):
//! rounds spread over the interval and claimed by one replica each, the MX and own-TXT
//! outcomes with the stale-id flag, and policy fetch counts that add up across replicas and
//! survive reopening the store.

use stsward_store::{
    Backend, DomainState, FetchRow, NewDomain, NewVersion, Store, StoreError, TenantId, Transition,
    TxtFlag,
};
mod support;

use support::{Case, Db};

const CASES: &[(&str, Case)] = &[
    ("seeded_rounds_spread_and_each_is_claimed_once", |db| {
        Box::pin(seeded_rounds_spread_and_each_is_claimed_once(db))
    }),
    ("two_replicas_racing_claim_each_round_once", |db| {
        Box::pin(two_replicas_racing_claim_each_round_once(db))
    }),
    ("outcomes_and_the_stale_txt_flag", |db| {
        Box::pin(outcomes_and_the_stale_txt_flag(db))
    }),
    ("own_txt_setting_is_per_tenant", |db| {
        Box::pin(own_txt_setting_is_per_tenant(db))
    }),
    ("fetch_counts_add_up_across_replicas_and_reopen", |db| {
        Box::pin(fetch_counts_add_up_across_replicas_and_reopen(db))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    support::run_on_sqlite(CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    support::run_on_postgres("stsward-store/postgres-scheduler", CASES).await;
}

async fn open(db: &Db) -> Store {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    store
}

fn version(mx: &str, id: &str) -> NewVersion {
    NewVersion {
        mode: "testing".into(),
        mx: vec![mx.into()],
        max_age: 86400,
        policy: format!("version: STSv1\r\nmode: testing\r\nmx: {mx}\r\nmax_age: 86400\r\n"),
        sts_id: id.into(),
        changed_by: "tester".into(),
        changed_at: 1,
        note: None,
    }
}

async fn host(store: &Store, tenant: TenantId, name: &str, follow_mx: bool) {
    store
        .hosted_domain_add(
            tenant,
            &NewDomain {
                domain: name.into(),
                follow_mx,
                tlsrpt_rua: None,
                created_at: 1,
            },
            version(&format!("mx.{name}"), "v1"),
        )
        .await
        .expect("add");
}

async fn seeded_rounds_spread_and_each_is_claimed_once(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    for i in 0..20 {
        host(&store, t, &format!("f{i}.test"), true).await;
    }
    host(&store, t, "nofollow.test", false).await;
    let interval = 1000;
    assert_eq!(
        store.domain_checks_seed(0, interval).await.expect("seed"),
        20
    );
    assert_eq!(
        store.domain_checks_seed(0, interval).await.expect("again"),
        0,
        "seeding twice makes no second row"
    );
    // Spread: due times are within the interval and not all the same.
    let all = store.domain_checks_due(interval, 100).await.expect("due");
    assert_eq!(all.len(), 20, "a domain not following its MX has no round");
    let dues: std::collections::BTreeSet<i64> = all.iter().map(|d| d.due_at).collect();
    assert!(dues.len() >= 10, "rounds are spread: {dues:?}");
    assert!(all.iter().all(|d| (0..interval).contains(&d.due_at)));
    let early = store
        .domain_checks_due(interval / 2, 100)
        .await
        .expect("half");
    assert!(!early.is_empty() && early.len() < 20, "{}", early.len());

    // Claiming moves the round: a second claim of the same listing fails, and the domain is
    // not due again until the next round.
    let first = &all[0];
    assert!(
        store
            .domain_check_claim(first, "r1", 5000)
            .await
            .expect("claim")
    );
    assert!(
        !store
            .domain_check_claim(first, "r2", 5000)
            .await
            .expect("again")
    );
    let later = store.domain_checks_due(interval, 100).await.expect("due");
    assert_eq!(later.len(), 19);
    assert!(later.iter().all(|d| d.domain_id != first.domain_id));
    let again = store
        .domain_checks_due(5000, 100)
        .await
        .expect("next round");
    assert!(again.iter().any(|d| d.domain_id == first.domain_id));

    // A removing domain has no rounds.
    store
        .policy_version_add(
            t,
            &first.domain,
            1,
            version("mx.x.test", "v2"),
            Some(Transition {
                state: DomainState::Removing,
                remove_after: Some(10_000),
            }),
        )
        .await
        .expect("removal");
    let removing = store.domain_checks_due(5000, 100).await.expect("due");
    assert!(removing.iter().all(|d| d.domain_id != first.domain_id));
}

async fn two_replicas_racing_claim_each_round_once(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let t = one.tenant_default(1).await.expect("tenant").id;
    for i in 0..10 {
        host(&one, t, &format!("race{i}.test"), true).await;
    }
    one.domain_checks_seed(0, 100).await.expect("seed");
    // Both replicas list the same due rounds and try to claim all of them at once.
    let listed_one = one.domain_checks_due(100, 100).await.expect("due");
    let listed_two = two.domain_checks_due(100, 100).await.expect("due");
    assert_eq!(listed_one, listed_two);
    let mut tasks = Vec::new();
    for (store, listed, name) in [
        (one.clone(), listed_one, "r1"),
        (two.clone(), listed_two, "r2"),
    ] {
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for d in &listed {
                match store.domain_check_claim(d, name, 1000).await {
                    Ok(true) => won.push(d.domain_id),
                    Ok(false) => {}
                    // SQLite may give up waiting for the write lock: no claim either.
                    Err(StoreError::Query { .. }) if store.backend() == Backend::Sqlite => {}
                    Err(e) => panic!("claim: {e}"),
                }
            }
            won
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("task"));
    }
    claimed.sort();
    let mut unique = claimed.clone();
    unique.dedup();
    assert_eq!(claimed, unique, "no round was claimed twice");
    assert_eq!(claimed.len(), 10, "every round was claimed by someone");
}

async fn outcomes_and_the_stale_txt_flag(db: Db) {
    let store = open(&db).await;
    let t = store.tenant_default(1).await.expect("tenant").id;
    host(&store, t, "own.test", false).await;
    assert_eq!(
        store.domain_check_get(t, "own.test").await.expect("get"),
        None
    );
    store
        .domain_set_own_sts_txt(t, "own.test", true, 50)
        .await
        .expect("own txt");
    let due = store.domain_checks_due(50, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert!(due[0].own_sts_txt && !due[0].follow_mx);
    let id = due[0].domain_id;

    store
        .domain_check_record_txt(id, 100, "stale_id", "id=old", TxtFlag::Set)
        .await
        .expect("flag");
    store
        .domain_check_record_txt(id, 200, "stale_id", "id=old", TxtFlag::Set)
        .await
        .expect("flag again");
    let c = store
        .domain_check_get(t, "own.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(c.txt_flagged_since, Some(100), "the first sighting is kept");
    assert_eq!(c.txt_checked_at, Some(200));
    store
        .domain_check_record_txt(id, 300, "lookup_failed", "timeout", TxtFlag::Keep)
        .await
        .expect("keep");
    let c = store
        .domain_check_get(t, "own.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        c.txt_flagged_since,
        Some(100),
        "a failed lookup leaves the flag"
    );
    assert_eq!(c.txt_outcome.as_deref(), Some("lookup_failed"));
    store
        .domain_check_record_txt(id, 400, "in_step", "id=new", TxtFlag::Clear)
        .await
        .expect("clear");
    let c = store
        .domain_check_get(t, "own.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(c.txt_flagged_since, None);

    // MX: a warning stays until the next one.
    store
        .domain_check_record_mx(id, 500, "changed", "v2", Some("dropped mx.a"))
        .await
        .expect("mx");
    store
        .domain_check_record_mx(id, 600, "in_step", "same", None)
        .await
        .expect("mx");
    let c = store
        .domain_check_get(t, "own.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        (
            c.mx_outcome.as_deref(),
            c.mx_warning.as_deref(),
            c.mx_warning_at
        ),
        (Some("in_step"), Some("dropped mx.a"), Some(500))
    );

    // Switching the setting off clears the TXT state and the domain is no longer due.
    store
        .domain_set_own_sts_txt(t, "own.test", false, 700)
        .await
        .expect("off");
    let c = store
        .domain_check_get(t, "own.test")
        .await
        .expect("get")
        .expect("row");
    assert!(!c.own_sts_txt);
    assert_eq!((c.txt_outcome, c.txt_flagged_since), (None, None));
    assert!(
        store
            .domain_checks_due(10_000, 10)
            .await
            .expect("due")
            .is_empty()
    );
}

async fn own_txt_setting_is_per_tenant(db: Db) {
    let store = open(&db).await;
    let a = store.tenant_default(1).await.expect("tenant").id;
    let b = store.tenant_create("b", 1).await.expect("b").id;
    host(&store, a, "a.test", false).await;
    match store.domain_set_own_sts_txt(b, "a.test", true, 1).await {
        Err(StoreError::DomainNotFound { domain }) => assert_eq!(domain, "a.test"),
        other => panic!("tenant b changed tenant a's domain: {other:?}"),
    }
    store
        .domain_set_own_sts_txt(a, "a.test", true, 1)
        .await
        .expect("a");
    assert!(
        store
            .domain_check_get(b, "a.test")
            .await
            .expect("b")
            .is_none()
    );
    assert!(
        store
            .domain_check_get(a, "a.test")
            .await
            .expect("a")
            .is_some()
    );
    store
        .policy_fetches_add(&[FetchRow {
            domain: "a.test".into(),
            day: 10,
            network: "192.0.2.0/24".into(),
            fetches: 3,
        }])
        .await
        .expect("add");
    assert_eq!(
        store
            .policy_fetches_since(b, "a.test", 0)
            .await
            .expect("b")
            .fetches,
        0,
        "tenant b sees no counts of tenant a's domain"
    );
}

fn row(domain: &str, day: i64, network: &str, fetches: i64) -> FetchRow {
    FetchRow {
        domain: domain.into(),
        day,
        network: network.into(),
        fetches,
    }
}

async fn fetch_counts_add_up_across_replicas_and_reopen(db: Db) {
    let one = open(&db).await;
    let two = open(&db).await;
    let t = one.tenant_default(1).await.expect("tenant").id;
    host(&one, t, "count.test", false).await;
    // Two replicas flushing the same keys at once: every fetch is counted once.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            let rows = [
                row("count.test", 100, "192.0.2.0/24", 2),
                row("count.test", 101, "198.51.100.0/24", 1),
                row("unknown.test", 100, "192.0.2.0/24", 5),
            ];
            // SQLite may give up waiting for the write lock; the caller keeps the rows and
            // retries, as the scheduler does.
            loop {
                match store.policy_fetches_add(&rows).await {
                    Ok(n) => return n,
                    Err(StoreError::Query { .. }) if store.backend() == Backend::Sqlite => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("add: {e}"),
                }
            }
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.expect("task"),
            2,
            "the unhosted domain is skipped"
        );
    }
    one.close().await;
    two.close().await;
    let again = open(&db).await;
    let all = again
        .policy_fetches_since(t, "count.test", 0)
        .await
        .expect("since");
    assert_eq!(all.fetches, 18);
    assert_eq!(all.networks, 2);
    assert_eq!(all.by_day, vec![(100, 12), (101, 6)]);
    let recent = again
        .policy_fetches_since(t, "count.test", 101)
        .await
        .expect("since");
    assert_eq!((recent.fetches, recent.networks), (6, 1));
    assert_eq!(again.policy_fetches_prune(101).await.expect("prune"), 1);
    let pruned = again
        .policy_fetches_since(t, "count.test", 0)
        .await
        .expect("since");
    assert_eq!(pruned.fetches, 6);
}
