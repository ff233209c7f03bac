//! The domain service against real parts: a SQLite file and a throwaway PostgreSQL
//! (crates/stsward-testkit), and the lab's DNS on loopback for the MX lookups. One table of
//! behaviours per backend, each case on a fresh database.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_net::dns::{Dns, DnsConfig};
use stsward_proto::mta_sts::Policy;
use stsward_server::config::HostingSection;
use stsward_server::domains::{
    AddDomain, DomainError, DomainOptions, DomainService, MxInput, PolicyChange, Warning,
    id::policy_id, import::ImportDefaults,
};
use stsward_store::{DomainState, Store, StoreError};
use stsward_testkit::postgres::Postgres;

const SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "hosted.test"
mx = [{ host = "mx1.hosted.test", preference = 10 }, { host = "mx2.hosted.test", preference = 20 }]

[[domain]]
name = "nomx.test"
"#;

type Case = fn(DomainService) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("add_defaults_to_testing_and_the_mx_in_dns", |s| {
        Box::pin(add_defaults_to_testing_and_the_mx_in_dns(s))
    }),
    ("invalid_input_names_the_field_and_changes_nothing", |s| {
        Box::pin(invalid_input_names_the_field_and_changes_nothing(s))
    }),
    (
        "rfc8461_3_1_every_change_gets_a_fresh_id_even_in_one_second",
        |s| {
            Box::pin(rfc8461_3_1_every_change_gets_a_fresh_id_even_in_one_second(
                s,
            ))
        },
    ),
    ("sync_mx_in_enforce_warns_about_dropped_patterns", |s| {
        Box::pin(sync_mx_in_enforce_warns_about_dropped_patterns(s))
    }),
    (
        "rfc8461_8_3_remove_serves_none_until_every_old_policy_expired",
        |s| Box::pin(rfc8461_8_3_remove_serves_none_until_every_old_policy_expired(s)),
    ),
    ("another_tenant_sees_and_changes_nothing", |s| {
        Box::pin(another_tenant_sees_and_changes_nothing(s))
    }),
    ("a_domain_without_mx_needs_explicit_patterns", |s| {
        Box::pin(a_domain_without_mx_needs_explicit_patterns(s))
    }),
    ("import_hosts_every_line_and_skips_hosted_domains", |s| {
        Box::pin(import_hosts_every_line_and_skips_hosted_domains(s))
    }),
    ("import_with_a_bad_line_names_it_and_writes_nothing", |s| {
        Box::pin(import_with_a_bad_line_names_it_and_writes_nothing(s))
    }),
    ("records_point_into_the_zone_with_the_current_id", |s| {
        Box::pin(records_point_into_the_zone_with_the_current_id(s))
    }),
];

struct World {
    lab: RunningLab,
    _dir: tempfile::TempDir,
}

async fn lab() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let mut opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    opts.plain_dns = true;
    let lab = Lab::start(&scenario, &opts).await.expect("lab starts");
    World { lab, _dir: dir }
}

fn dns(lab: &RunningLab) -> Dns {
    Dns::new(&DnsConfig {
        server: Some(lab.resolver_addr()),
        timeout: Duration::from_secs(2),
        attempts: 2,
        lookup_timeout: Duration::from_secs(5),
        dnssec: false,
        trust_anchors: None,
    })
    .expect("dns client")
}

fn hosting() -> HostingSection {
    HostingSection {
        zone: Some("sts.provider.test".into()),
        policy_host: Some("mta-sts.provider.test".into()),
        tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
        ..HostingSection::default()
    }
}

async fn run_table(world: &World, mut fresh: impl FnMut() -> String) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let store = Store::open(&fresh()).await.expect("open");
        let service = DomainService::new(store, hosting(), Some(dns(&world.lab)));
        if let Err(e) = tokio::spawn(case(service)).await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_domain_service() {
    let world = lab().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_table(&world, || {
        n += 1;
        format!("sqlite://{}", dir.path().join(format!("c{n}.db")).display())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_domain_service() {
    let Some(server) = Postgres::start("stsward-server/postgres-domains") else {
        return;
    };
    let world = lab().await;
    run_table(&world, || server.create_database()).await;
}

const T0: i64 = 1_780_000_000;

fn add(domain: &str) -> AddDomain {
    AddDomain {
        domain: domain.into(),
        ..AddDomain::default()
    }
}

fn patterns(p: &[&str]) -> Option<MxInput> {
    Some(MxInput::Patterns(p.iter().map(|s| s.to_string()).collect()))
}

async fn add_defaults_to_testing_and_the_mx_in_dns(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let change = s
        .add(t, &add("Hosted.Test."), "tester", T0)
        .await
        .expect("add");
    assert_eq!(change.domain, "hosted.test");
    let v = &change.version;
    assert_eq!(
        (v.version, v.mode.as_str(), v.max_age),
        (1, "testing", 604800)
    );
    assert_eq!(
        v.mx,
        ["mx1.hosted.test", "mx2.hosted.test"],
        "preference order"
    );
    assert_eq!(v.sts_id, policy_id(T0, 1).expect("id").to_string());
    // The stored text is the proto Policy's Display: what is tested is what is served.
    let parsed: Policy = v.policy.parse().expect("stored policy parses");
    assert_eq!(parsed.to_string(), v.policy);
    assert_eq!(
        v.policy,
        "version: STSv1\r\nmode: testing\r\nmx: mx1.hosted.test\r\nmx: mx2.hosted.test\r\nmax_age: 604800\r\n"
    );
    let list = s.list(t, T0).await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].domain.as_str(), list[0].state, list[0].id.as_str()),
        ("hosted.test", DomainState::Active, v.sts_id.as_str())
    );
    match s.add(t, &add("hosted.test"), "tester", T0 + 1).await {
        Err(DomainError::Store(StoreError::DomainTaken { .. })) => {}
        other => panic!("second add: {other:?}"),
    }
}

async fn invalid_input_names_the_field_and_changes_nothing(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let first = AddDomain {
        mode: Some("enforce".into()),
        mx: patterns(&["mx.hosted.test"]),
        ..add("hosted.test")
    };
    s.add(t, &first, "tester", T0).await.expect("add");
    let bad: Vec<(PolicyChange, &str, &str)> = vec![
        (
            PolicyChange {
                mode: Some("Enforce".into()),
                ..PolicyChange::default()
            },
            "mode",
            "modes are case-sensitive (RFC 8461 §3.2)",
        ),
        (
            PolicyChange {
                max_age: Some(31_557_601),
                ..PolicyChange::default()
            },
            "max_age",
            "over the RFC 8461 §3.2 maximum",
        ),
        (
            PolicyChange {
                mx: patterns(&["*"]),
                ..PolicyChange::default()
            },
            "mx",
            "a bare wildcard",
        ),
        (
            PolicyChange {
                mx: patterns(&["bücher.test"]),
                ..PolicyChange::default()
            },
            "mx",
            "U-labels in a pattern (RFC 8461 §3.2)",
        ),
        (
            PolicyChange {
                mx: patterns(&[]),
                ..PolicyChange::default()
            },
            "mx",
            "enforce without mx",
        ),
    ];
    for (change, field, why) in bad {
        match s.set(t, "hosted.test", &change, "tester", T0 + 5).await {
            Err(e @ DomainError::Invalid { .. }) => {
                let DomainError::Invalid { field: got, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(*got, field, "{why}: {e}");
                assert!(e.to_string().starts_with(field), "{why}: {e}");
            }
            other => panic!("{why}: {other:?}"),
        }
    }
    let detail = s.show(t, "hosted.test", T0 + 5).await.expect("show");
    assert_eq!(detail.history.len(), 1, "nothing was written");
    assert!(matches!(
        s.add(t, &add("not a domain"), "tester", T0).await,
        Err(DomainError::Name(_))
    ));
}

async fn rfc8461_3_1_every_change_gets_a_fresh_id_even_in_one_second(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let v1 = s
        .add(t, &add("hosted.test"), "tester", T0)
        .await
        .expect("add")
        .version;
    let enforce = PolicyChange {
        mode: Some("enforce".into()),
        ..PolicyChange::default()
    };
    let v2 = s
        .set(t, "hosted.test", &enforce, "tester", T0)
        .await
        .expect("set")
        .version;
    let longer = PolicyChange {
        max_age: Some(1_209_600),
        note: Some("two weeks".into()),
        ..PolicyChange::default()
    };
    let v3 = s
        .set(t, "hosted.test", &longer, "ops", T0)
        .await
        .expect("set")
        .version;
    let ids = [&v1.sts_id, &v2.sts_id, &v3.sts_id];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert!(v3.policy.contains("mode: enforce\r\n") && v3.policy.contains("max_age: 1209600\r\n"));
    // Setting what is served already writes nothing.
    let same = s
        .set(t, "hosted.test", &enforce, "tester", T0 + 1)
        .await
        .expect("same");
    assert!(!same.changed);
    assert_eq!(same.version, v3);
    let detail = s.show(t, "hosted.test", T0 + 1).await.expect("show");
    assert_eq!(
        detail
            .history
            .iter()
            .map(|v| (v.version, v.changed_by.as_str(), v.note.as_deref()))
            .collect::<Vec<_>>(),
        [
            (3, "ops", Some("two weeks")),
            (2, "tester", None),
            (1, "tester", None)
        ]
    );
    assert_eq!(detail.current, v3);
}

async fn sync_mx_in_enforce_warns_about_dropped_patterns(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let first = AddDomain {
        mode: Some("enforce".into()),
        mx: patterns(&["old-mx.hosted.test", "mx1.hosted.test"]),
        max_age: Some(604800),
        ..add("hosted.test")
    };
    s.add(t, &first, "tester", T0).await.expect("add");
    let change = s
        .sync_mx(t, "hosted.test", "tester", T0 + 10)
        .await
        .expect("sync");
    assert!(change.changed);
    assert_eq!(change.version.mx, ["mx1.hosted.test", "mx2.hosted.test"]);
    assert_eq!(change.version.mode, "enforce");
    assert_eq!(
        change.warnings.first(),
        Some(&Warning::DroppedPatterns {
            dropped: vec!["old-mx.hosted.test".into()],
            version: 1,
            max_age: 604800,
            cached_until: T0 + 10 + 604800,
        })
    );
    assert!(change.warnings[0].to_string().contains("max_age"));
    // In step with DNS now: nothing to do.
    let again = s
        .sync_mx(t, "hosted.test", "tester", T0 + 20)
        .await
        .expect("again");
    assert!(!again.changed && again.warnings.is_empty());
    assert_eq!(again.version.version, 2);
    // A testing policy may drop patterns without the warning.
    s.set(
        t,
        "hosted.test",
        &PolicyChange {
            mode: Some("testing".into()),
            ..PolicyChange::default()
        },
        "tester",
        T0 + 30,
    )
    .await
    .expect("testing");
    let drop = s
        .set(
            t,
            "hosted.test",
            &PolicyChange {
                mx: patterns(&["mx1.hosted.test"]),
                ..PolicyChange::default()
            },
            "tester",
            T0 + 40,
        )
        .await
        .expect("drop in testing");
    assert!(
        !drop
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::DroppedPatterns { .. }))
    );
}

async fn rfc8461_8_3_remove_serves_none_until_every_old_policy_expired(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let first = AddDomain {
        mode: Some("enforce".into()),
        mx: patterns(&["mx1.hosted.test"]),
        max_age: Some(604800),
        ..add("hosted.test")
    };
    s.add(t, &first, "tester", T0).await.expect("add");
    // A later version with a shorter max_age: the older, longer one still bounds the removal.
    s.set(
        t,
        "hosted.test",
        &PolicyChange {
            max_age: Some(86400),
            ..PolicyChange::default()
        },
        "tester",
        T0 + 1000,
    )
    .await
    .expect("shorter");
    let removal = s
        .remove(t, "hosted.test", "tester", T0 + 2000)
        .await
        .expect("remove");
    let v = &removal.version;
    assert_eq!((v.version, v.mode.as_str(), v.max_age), (3, "none", 86400));
    assert_ne!(v.sts_id, policy_id(T0 + 1000, 2).expect("id").to_string());
    let gone_at = (T0 + 1000) + 604800;
    let detail = s.show(t, "hosted.test", T0 + 2000).await.expect("show");
    assert_eq!(
        (detail.state, detail.gone_at),
        (DomainState::Removing, Some(gone_at))
    );
    match s
        .set(
            t,
            "hosted.test",
            &PolicyChange::default(),
            "tester",
            T0 + 3000,
        )
        .await
    {
        Err(DomainError::Removing { gone_at: at, .. }) => assert_eq!(at, gone_at),
        other => panic!("set while removing: {other:?}"),
    }
    assert!(matches!(
        s.add(t, &add("hosted.test"), "tester", T0 + 3000).await,
        Err(DomainError::Store(StoreError::DomainTaken { .. }))
    ));
    // Served with mode none until the last old policy expired, then not at all.
    let before = s.snapshot(gone_at - 1).await.expect("snapshot");
    assert_eq!(before.len(), 1);
    assert!(before[0].policy.contains("mode: none\r\n"));
    assert_eq!(before[0].id, v.sts_id);
    assert_eq!(
        before[0].tlsrpt_rua.as_deref(),
        Some("mailto:tlsrpt@provider.test")
    );
    assert!(s.snapshot(gone_at).await.expect("snapshot").is_empty());
    assert_eq!(
        s.show(t, "hosted.test", gone_at).await.expect("show").state,
        DomainState::Gone
    );
    // Then the name can be hosted again, with a new history.
    let again = s
        .add(t, &add("hosted.test"), "tester", gone_at)
        .await
        .expect("again");
    assert_eq!(again.version.version, 1);
    assert_eq!(
        s.show(t, "hosted.test", gone_at)
            .await
            .expect("show")
            .history
            .len(),
        1
    );
}

async fn another_tenant_sees_and_changes_nothing(s: DomainService) {
    let a = s.default_tenant(T0).await.expect("tenant a");
    let b = s
        .store()
        .tenant_create("other", T0)
        .await
        .expect("tenant b")
        .id;
    s.add(a, &add("hosted.test"), "a", T0).await.expect("add");
    let not_found = |r: Result<_, DomainError>, what: &str| match r {
        Err(DomainError::NotFound { domain }) => assert_eq!(domain, "hosted.test", "{what}"),
        Err(e) => panic!("{what}: {e}"),
        Ok(_) => panic!("{what}: tenant b reached tenant a's domain"),
    };
    not_found(s.show(b, "hosted.test", T0).await.map(|_| ()), "show");
    not_found(
        s.set(
            b,
            "hosted.test",
            &PolicyChange {
                mode: Some("none".into()),
                ..PolicyChange::default()
            },
            "b",
            T0,
        )
        .await
        .map(|_| ()),
        "set",
    );
    not_found(
        s.remove(b, "hosted.test", "b", T0).await.map(|_| ()),
        "remove",
    );
    not_found(
        s.sync_mx(b, "hosted.test", "b", T0).await.map(|_| ()),
        "sync-mx",
    );
    not_found(s.records(b, "hosted.test").await.map(|_| ()), "records");
    not_found(
        s.set_options(
            b,
            "hosted.test",
            &DomainOptions {
                follow_mx: Some(true),
                tlsrpt_rua: Some(Some("mailto:evil@b.test".into())),
                own_sts_txt: Some(true),
            },
        )
        .await
        .map(|_| ()),
        "set-options",
    );
    assert!(s.list(b, T0).await.expect("list").is_empty());
    let detail = s.show(a, "hosted.test", T0).await.expect("a still sees it");
    assert_eq!(
        (detail.history.len(), detail.state),
        (1, DomainState::Active)
    );
}

async fn a_domain_without_mx_needs_explicit_patterns(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    match s.add(t, &add("nomx.test"), "tester", T0).await {
        Err(e @ DomainError::NoMx { .. }) => assert!(e.to_string().contains("--mx"), "{e}"),
        other => panic!("no MX: {other:?}"),
    }
    match s.add(t, &add("nonexistent.test"), "tester", T0).await {
        Err(DomainError::NoMx { why, .. }) => assert!(why.contains("NXDOMAIN"), "{why}"),
        other => panic!("NXDOMAIN: {other:?}"),
    }
    assert!(
        s.list(t, T0).await.expect("list").is_empty(),
        "nothing added"
    );
    let explicit = AddDomain {
        mx: patterns(&["mx.elsewhere.test"]),
        ..add("nomx.test")
    };
    s.add(t, &explicit, "tester", T0)
        .await
        .expect("explicit mx");
}

async fn records_point_into_the_zone_with_the_current_id(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    s.add(t, &add("hosted.test"), "tester", T0)
        .await
        .expect("add");
    let v2 = s
        .set(
            t,
            "hosted.test",
            &PolicyChange {
                mode: Some("enforce".into()),
                ..PolicyChange::default()
            },
            "tester",
            T0 + 1,
        )
        .await
        .expect("set")
        .version;
    let r = s.records(t, "HOSTED.test.").await.expect("records");
    assert_eq!(
        r.policy_host.zone_line(),
        "mta-sts.hosted.test. IN CNAME mta-sts.provider.test."
    );
    assert_eq!(
        r.sts.zone_line(),
        "_mta-sts.hosted.test. IN CNAME _mta-sts.hosted.test.sts.provider.test."
    );
    assert_eq!(r.sts_txt.value, format!("v=STSv1; id={};", v2.sts_id));
    assert_eq!(r.served[0].name, "_mta-sts.hosted.test.sts.provider.test.");
    assert_eq!(r.served[0].value, r.sts_txt.value);
}

fn import_defaults(mx: &[&str]) -> ImportDefaults {
    ImportDefaults {
        mx: mx.iter().map(|s| s.to_string()).collect(),
        ..ImportDefaults::default()
    }
}

async fn import_hosts_every_line_and_skips_hosted_domains(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    s.add(
        t,
        &AddDomain {
            mode: Some("enforce".into()),
            mx: patterns(&["mx1.hosted.test"]),
            ..add("hosted.test")
        },
        "tester",
        T0,
    )
    .await
    .expect("add hosted.test");
    // 2,500 domains: three store batches; hosted.test on line 5 is hosted already.
    let mut text = String::from("# bulk\n\n");
    for i in 0..2500 {
        if i == 2 {
            text.push_str("Hosted.Test.   # already here\n");
        }
        text.push_str(&format!("b{i:04}.test\n"));
    }
    text.push_str(
        "own.test mode=enforce mx=mx.own.test,*.mx.example.net max_age=86400 follow_mx=on\n",
    );
    let imported = s
        .import(
            t,
            &text,
            &import_defaults(&["mx.example.net"]),
            "tester",
            T0 + 1,
        )
        .await
        .expect("import");
    assert_eq!(imported.added, 2501);
    assert_eq!(imported.skipped.len(), 1);
    assert_eq!(
        (
            imported.skipped[0].line,
            imported.skipped[0].domain.as_str()
        ),
        (5, "hosted.test")
    );
    assert_eq!(s.list(t, T0 + 1).await.expect("list").len(), 2502);
    let hosted = s.show(t, "hosted.test", T0 + 1).await.expect("show");
    assert_eq!(
        (hosted.current.version, hosted.current.mode.as_str()),
        (1, "enforce"),
        "the hosted domain is not changed by the import"
    );
    let own = s.show(t, "own.test", T0 + 1).await.expect("show own");
    assert_eq!(own.current.version, 1);
    assert!(own.domain.follow_mx);
    let policy: Policy = own.current.policy.parse().expect("served text parses");
    assert_eq!(
        policy.to_string(),
        "version: STSv1\r\nmode: enforce\r\nmx: mx.own.test\r\nmx: *.mx.example.net\r\nmax_age: 86400\r\n"
    );
    assert_eq!(
        own.current.sts_id,
        policy_id(T0 + 1, 1).expect("id").to_string()
    );
    let plain = s.show(t, "b2499.test", T0 + 1).await.expect("show b2499");
    assert_eq!(plain.current.mx, ["mx.example.net"]);
    assert_eq!(plain.current.mode, "testing");
    assert_eq!(plain.current.max_age, 604_800);
    // The same file again: every line is skipped, nothing is duplicated.
    let again = s
        .import(
            t,
            &text,
            &import_defaults(&["mx.example.net"]),
            "tester",
            T0 + 2,
        )
        .await
        .expect("import again");
    assert_eq!((again.added, again.skipped.len()), (0, 2502));
    assert_eq!(s.list(t, T0 + 2).await.expect("list").len(), 2502);
    assert_eq!(
        s.show(t, "b0000.test", T0 + 2)
            .await
            .expect("show")
            .history
            .len(),
        1
    );
}

async fn import_with_a_bad_line_names_it_and_writes_nothing(s: DomainService) {
    let t = s.default_tenant(T0).await.expect("tenant");
    let mut text: String = (0..1500).map(|i| format!("g{i:04}.test\n")).collect();
    text.push_str("bad.test mode=enforce max_age=forever\n");
    text.push_str("g0007.test\n");
    let err = s
        .import(
            t,
            &text,
            &import_defaults(&["mx.example.net"]),
            "tester",
            T0,
        )
        .await
        .expect_err("bad lines");
    match err {
        DomainError::Import { errors, total } => {
            assert_eq!(total, 2);
            assert_eq!((errors[0].line, errors[0].field), (1501, "max_age"));
            assert_eq!((errors[1].line, errors[1].field), (1502, "domain"));
            assert!(errors[1].reason.contains("line 8"), "{}", errors[1].reason);
        }
        other => panic!("expected the bad lines, got {other:?}"),
    }
    assert!(
        s.list(t, T0).await.expect("list").is_empty(),
        "nothing was written"
    );
}
