//! Several resolvers on one PostgreSQL (DESIGN "Scale-out"): a policy that one resolver
//! fetched is served by a second one from the shared store, without a fetch of its own, and
//! a purge through one is seen by a resolver that starts afterwards.

use std::sync::Arc;
use std::time::Duration;

use stsward_lab::{Lab, LabOptions, Scenario};
use stsward_resolver::config::EngineSettings;
use stsward_resolver::source::{NetSettings, NetSource, roots_from_pem};
use stsward_resolver::{Engine, PolicyPersist, system_clock};
use stsward_store::Store;
use stsward_testkit::postgres::Postgres;
use time::OffsetDateTime;

const SCENARIO: &str = include_str!("../../stsward-lab/scenarios/resolver.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resolvers_share_policies_through_postgresql() {
    let Some(pg) = Postgres::start("stsward-resolver/shared_store") else {
        return;
    };
    let url = pg.create_database();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let lab = Lab::start(
        &scenario,
        &LabOptions::new(dir.path(), OffsetDateTime::now_utc()),
    )
    .await
    .expect("lab starts");
    let pem = std::fs::read(lab.ca_file()).expect("ca file");
    let source = Arc::new(
        NetSource::new(&NetSettings {
            resolver: Some(lab.resolver_addr()),
            dns_timeout: Duration::from_secs(2),
            trust_anchors: lab
                .trust_anchor_file()
                .map(|p| std::fs::read_to_string(p).expect("anchors")),
            https_port: lab.https_port(),
            extra_roots: roots_from_pem(&pem).expect("pem"),
            webpki_roots: false,
            fetch_timeout: Duration::from_secs(10),
            ..NetSettings::default()
        })
        .expect("source"),
    );
    let settings = EngineSettings {
        lookup_deadline: Duration::from_secs(20),
        dane_first: false,
        ..EngineSettings::default()
    };
    let replica = |store: Store| {
        let persist: Arc<dyn PolicyPersist> = Arc::new(store);
        Engine::new(settings, source.clone(), persist, system_clock())
    };

    let a = replica(Store::open(&url).await.expect("store a"));
    let want = "OK secure match=mx.resolve-enforce.test servername=hostname";
    assert_eq!(
        a.lookup("postfix", "resolve-enforce.test").await.wire(),
        want
    );
    a.idle().await;
    assert_eq!(a.metrics().fetches, 1, "replica a fetched the policy");

    // Replica b starts after: warm from PostgreSQL, same answer, no fetch of its own.
    let b = replica(Store::open(&url).await.expect("store b"));
    assert_eq!(b.warm().await.expect("warm"), 1);
    assert_eq!(
        b.lookup("postfix", "resolve-enforce.test").await.wire(),
        want
    );
    assert_eq!(b.metrics().fetches, 0, "served from the shared store");

    // A purge through b removes the row for everyone who starts later.
    assert!(b.purge("resolve-enforce.test").await.expect("purge"));
    let c = replica(Store::open(&url).await.expect("store c"));
    assert_eq!(c.warm().await.expect("warm"), 0);
    lab.shutdown().await;
}
