//! The change log and the replica table (src/replicas.rs) on both backends: every write that
//! changes what is served appears in `hosting_changes` in order, and the lowest position
//! applied counts only replicas heard from recently (RFC 8461 §8.1 ordering across replicas).

use stsward_store::{DomainState, NewDomain, NewVersion, Store, Transition};

mod support;
use support::{Case, Db};

const CASES: &[(&str, Case)] = &[
    ("every_served_change_is_logged_in_order", |db| {
        Box::pin(every_served_change_is_logged_in_order(db))
    }),
    ("only_live_replicas_hold_back_the_position", |db| {
        Box::pin(only_live_replicas_hold_back_the_position(db))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    support::run_on_sqlite(CASES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    support::run_on_postgres("stsward-store/postgres-replicas", CASES).await;
}

fn version(mode: &str, id: &str, at: i64) -> NewVersion {
    NewVersion {
        mode: mode.into(),
        mx: vec!["mx.a.test".into()],
        max_age: 86_400,
        policy: format!("version: STSv1\r\nmode: {mode}\r\nmx: mx.a.test\r\nmax_age: 86400\r\n"),
        sts_id: id.into(),
        changed_by: "tester".into(),
        changed_at: at,
        note: None,
    }
}

async fn every_served_change_is_logged_in_order(db: Db) {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    assert_eq!(store.hosting_change_position().await.expect("position"), 0);
    let a = store.tenant_default(1).await.expect("tenant").id;
    let b = store.tenant_create("b", 1).await.expect("tenant b").id;
    let new = |name: &str| NewDomain {
        domain: name.into(),
        follow_mx: false,
        tlsrpt_rua: None,
        created_at: 10,
    };
    store
        .hosted_domain_add(a, &new("a.test"), version("testing", "id1", 10))
        .await
        .expect("add a");
    store
        .hosted_domain_add(b, &new("b.test"), version("testing", "idb", 11))
        .await
        .expect("add b");
    let changes = store.hosting_changes_since(0, 100).await.expect("changes");
    let seen: Vec<(&str, i64)> = changes
        .iter()
        .map(|c| (c.domain.as_str(), c.version))
        .collect();
    assert_eq!(seen, vec![("a.test", 1), ("b.test", 1)], "one row per add");
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    let cursor = changes.last().expect("rows").seq;
    assert_eq!(store.hosting_change_position().await.expect("pos"), cursor);
    assert!(
        store
            .hosting_changes_since(cursor, 100)
            .await
            .expect("none")
            .is_empty()
    );

    // A new version: logged, and the served entry is the new one (any tenant's).
    store
        .policy_version_add(a, "a.test", 1, version("enforce", "id2", 20), None)
        .await
        .expect("set");
    let after = store
        .hosting_changes_since(cursor, 100)
        .await
        .expect("changes");
    assert!(!after.is_empty() && after.iter().all(|c| c.domain == "a.test" && c.version == 2));
    let served = store
        .hosting_served("a.test")
        .await
        .expect("served")
        .expect("hosted");
    assert_eq!((served.version, served.sts_id.as_str()), (2, "id2"));
    assert!(served.policy.contains("mode: enforce"));
    assert_eq!(served.tenant, a);
    assert_eq!(
        store
            .hosting_served("b.test")
            .await
            .expect("served")
            .map(|s| s.tenant),
        Some(b)
    );
    assert!(
        store
            .hosting_served("none.test")
            .await
            .expect("served")
            .is_none()
    );

    // Options (rua) are logged too; the limit pages.
    let cursor = after.last().expect("rows").seq;
    store
        .hosted_domain_set_options(a, "a.test", false, Some("mailto:r@a.test"))
        .await
        .expect("options");
    let rua = store.hosting_changes_since(cursor, 100).await.expect("rua");
    assert_eq!(rua.len(), 1, "{rua:?}");
    assert_eq!(
        store.hosting_changes_since(0, 2).await.expect("page").len(),
        2
    );

    // A removal, then gone: logged, and no longer served.
    let cursor = rua[0].seq;
    store
        .policy_version_add(
            a,
            "a.test",
            2,
            version("none", "id3", 30),
            Some(Transition {
                state: DomainState::Removing,
                remove_after: Some(100),
            }),
        )
        .await
        .expect("remove");
    store
        .hosted_domain_finish_removals(None, 100)
        .await
        .expect("finish");
    let end = store.hosting_changes_since(cursor, 100).await.expect("end");
    assert!(
        end.iter().all(|c| c.domain == "a.test" && c.version == 3),
        "{end:?}"
    );
    assert!(
        end.len() >= 2,
        "the removal and the end are both logged: {end:?}"
    );
    assert!(
        store
            .hosting_served("a.test")
            .await
            .expect("served")
            .is_none()
    );
    store.close().await;
}

async fn only_live_replicas_hold_back_the_position(db: Db) {
    let store = Store::open(&db.url).await.expect("open");
    assert_eq!(store.backend(), db.backend);
    assert_eq!(
        store.replica_min_applied(0).await.expect("empty"),
        (None, None)
    );
    store.replica_heartbeat("r1", 5, 1_000).await.expect("r1");
    store.replica_heartbeat("r2", 3, 5_000).await.expect("r2");
    // r1 was last seen before 2000: only r2 counts as live.
    assert_eq!(
        store.replica_min_applied(2_000).await.expect("min"),
        (Some(3), Some(3))
    );
    // r1 catches up and beats again; r2 moves on.
    store
        .replica_heartbeat("r1", 9, 6_000)
        .await
        .expect("r1 again");
    store
        .replica_heartbeat("r2", 7, 6_000)
        .await
        .expect("r2 again");
    assert_eq!(
        store.replica_min_applied(2_000).await.expect("min"),
        (Some(7), Some(7))
    );
    store.replica_leave("r2").await.expect("leave");
    assert_eq!(
        store.replica_min_applied(2_000).await.expect("min"),
        (Some(9), Some(9))
    );

    // Pruning deletes the changes every replica applied, and forgets silent replicas.
    let t = store.tenant_default(1).await.expect("tenant").id;
    for (i, name) in ["p1.test", "p2.test", "p3.test"].iter().enumerate() {
        let new = NewDomain {
            domain: (*name).into(),
            follow_mx: false,
            tlsrpt_rua: None,
            created_at: 1,
        };
        store
            .hosted_domain_add(t, &new, version("testing", &format!("p{i}"), 1))
            .await
            .expect("add");
    }
    let all = store.hosting_changes_since(0, 100).await.expect("all");
    assert_eq!(all.len(), 3);
    let deleted = store
        .hosting_changes_prune(all[1].seq, 0)
        .await
        .expect("prune");
    assert_eq!(deleted, 2);
    let left = store.hosting_changes_since(0, 100).await.expect("left");
    assert_eq!(left, all[2..].to_vec());
    store.hosting_changes_prune(0, 7_000).await.expect("forget");
    assert_eq!(
        store.replica_min_applied(0).await.expect("gone"),
        (None, None)
    );
    store.close().await;
}
