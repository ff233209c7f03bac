//! The scheduler of `stsward serve` against a real store and the lab's authoritative DNS
//! (stsward-lab) on loopback, restarted with other records between rounds:
//! - RFC 8461 §3.2 `mx` lines follow the MX records: a changed MX makes a new version, made
//!   by the scheduler; dropping a pattern from an `enforce` policy warns (senders may keep
//!   the old policy for its `max_age`); a DNS failure or an empty answer changes nothing;
//! - RFC 8461 §3.1: an owner's own `_mta-sts` TXT with a stale id is flagged, then cleared;
//! - on PostgreSQL, two replicas' rounds check each domain once.
//!
//! Rounds are driven with explicit times (`Scheduler::round(now)`), not by waiting.

mod lab_dns;

use lab_dns::{LabDns, zone};
use stsward_lab::dns::Zone;
use stsward_net::dns::Dns;
use stsward_server::config::HostingSection;
use stsward_server::domains::{
    AddDomain, DomainOptions, DomainService, FOLLOW_MX_NOTE, MxInput, SCHEDULER_ACTOR,
};
use stsward_server::host::FetchCounter;
use stsward_server::scheduler::{Scheduler, SchedulerSettings, SchedulerSetup};
use stsward_server::serve::Clock;
use stsward_store::{Store, TenantId};
use stsward_testkit::postgres::Postgres;

/// The check interval of these tests, seconds.
const INTERVAL: i64 = 60;
/// From one round to the next: the interval and the most a domain's next round is spread.
const ROUND: i64 = INTERVAL + INTERVAL / 10;

fn hosting() -> HostingSection {
    HostingSection {
        zone: Some("sts.provider.test".into()),
        policy_host: Some("mta-sts.provider.test".into()),
        ..HostingSection::default()
    }
}

fn settings() -> SchedulerSettings {
    SchedulerSettings {
        check_interval: INTERVAL,
        concurrency: 4,
        ..SchedulerSettings::default()
    }
}

fn scheduler(store: &Store, dns: Dns, holder: &str) -> (Scheduler, DomainService) {
    let service = DomainService::new(store.clone(), hosting(), Some(dns.clone()));
    let s = Scheduler::new(
        SchedulerSetup {
            store: store.clone(),
            service: service.clone(),
            dns,
            counter: FetchCounter::default(),
            clock: Clock::system(),
            holder: holder.into(),
        },
        settings(),
    );
    (s, service)
}

async fn add(
    service: &DomainService,
    tenant: TenantId,
    domain: &str,
    mode: &str,
    mx: Option<&[&str]>,
    now: i64,
) -> String {
    let change = service
        .add(
            tenant,
            &AddDomain {
                domain: domain.into(),
                mode: Some(mode.into()),
                mx: Some(match mx {
                    Some(p) => MxInput::Patterns(p.iter().map(|s| s.to_string()).collect()),
                    None => MxInput::FromDns,
                }),
                max_age: Some(604_800),
                follow_mx: true,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    change.version.sts_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_3_2_mx_lines_follow_the_mx_records_and_never_a_dns_failure() {
    let mut lab = LabDns::start(&[
        zone("follow.test", &["mx1.follow.test", "mx2.follow.test"], None),
        zone(
            "enforce.test",
            &["mx1.enforce.test", "mx2.enforce.test"],
            None,
        ),
        zone("empty.test", &[], None),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url).await.expect("store");
    let (sched, service) = scheduler(&store, lab.client(), "replica-1");
    let t0 = 1_900_000_000;
    let tenant = service.default_tenant(t0).await.expect("tenant");
    add(&service, tenant, "follow.test", "testing", None, t0).await;
    add(&service, tenant, "enforce.test", "enforce", None, t0).await;
    add(
        &service,
        tenant,
        "empty.test",
        "testing",
        Some(&["mx.empty.test"]),
        t0,
    )
    .await;

    // Round 1: everything in step; the empty MX answer is recorded, nothing written.
    assert_eq!(sched.seed(t0).await.expect("seed"), 3);
    let t1 = t0 + ROUND;
    let r = sched.round(t1).await.expect("round 1");
    assert_eq!((r.claimed, r.changed), (3, 0), "{r:?}");
    let empty = service.show(tenant, "empty.test", t1).await.expect("show");
    assert_eq!(empty.current.version, 1);
    let c = empty.checks.expect("checked");
    assert_eq!(c.mx_outcome.as_deref(), Some("no_mx"));
    assert!(
        c.mx_detail
            .as_deref()
            .is_some_and(|d| d.contains("unchanged")),
        "{c:?}"
    );
    // Claimed rounds are not due again within the interval.
    assert_eq!(sched.round(t1 + 1).await.expect("again").claimed, 0);

    // The MX records change: mx2 goes, mx3 comes.
    lab.restart(&[
        zone("follow.test", &["mx1.follow.test", "mx3.follow.test"], None),
        zone("enforce.test", &["mx1.enforce.test"], None),
        zone("empty.test", &[], None),
    ])
    .await;
    let t2 = t1 + ROUND;
    let r = sched.round(t2).await.expect("round 2");
    assert_eq!((r.claimed, r.changed), (3, 2), "{r:?}");

    let follow = service.show(tenant, "follow.test", t2).await.expect("show");
    assert_eq!(follow.current.version, 2);
    assert_eq!(follow.current.mx, ["mx1.follow.test", "mx3.follow.test"]);
    assert_eq!(follow.current.changed_by, SCHEDULER_ACTOR);
    assert_eq!(follow.current.note.as_deref(), Some(FOLLOW_MX_NOTE));
    assert!(follow.current.policy.contains("mx: mx3.follow.test\r\n"));
    assert_ne!(
        follow.current.sts_id, follow.history[1].sts_id,
        "a fresh id"
    );
    let fc = follow.checks.expect("checked");
    assert_eq!(fc.mx_outcome.as_deref(), Some("changed"));
    assert_eq!(fc.mx_warning, None, "a testing policy warns of nothing");

    // Enforce lost mx2: the warning names it and the max_age, and show keeps it.
    let enforce = service
        .show(tenant, "enforce.test", t2)
        .await
        .expect("show");
    assert_eq!(enforce.current.mx, ["mx1.enforce.test"]);
    let ec = enforce.checks.expect("checked");
    let warning = ec.mx_warning.expect("a dropped-pattern warning");
    assert!(warning.contains("mx2.enforce.test"), "{warning}");
    assert!(warning.contains("max_age (604800 s"), "{warning}");
    assert_eq!(ec.mx_warning_at, Some(t2));
    assert_eq!(
        service
            .show(tenant, "empty.test", t2)
            .await
            .expect("s")
            .current
            .version,
        1
    );

    // The DNS fails: nothing is rewritten, and show says why.
    lab.stop().await;
    let t3 = t2 + ROUND;
    let r = sched.round(t3).await.expect("round 3");
    assert_eq!((r.claimed, r.changed), (3, 0), "{r:?}");
    for (domain, version) in [("follow.test", 2), ("enforce.test", 2), ("empty.test", 1)] {
        let d = service.show(tenant, domain, t3).await.expect("show");
        assert_eq!(d.current.version, version, "{domain} unchanged");
        let c = d.checks.expect("checked");
        assert_eq!(c.mx_checked_at, Some(t3));
        assert_eq!(
            c.mx_outcome.as_deref(),
            Some("dns_failed"),
            "{domain}: {c:?}"
        );
        assert!(
            c.mx_detail
                .as_deref()
                .is_some_and(|d| d.ends_with("the policy is unchanged"))
        );
    }
    // The warning of round 2 is still there for the user.
    let ec = service
        .show(tenant, "enforce.test", t3)
        .await
        .expect("show")
        .checks
        .expect("checked");
    assert_eq!(ec.mx_warning_at, Some(t2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_3_1_a_stale_own_txt_is_flagged_then_cleared() {
    let mut lab = LabDns::start(&[zone("own.test", &["mx.own.test"], None)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url).await.expect("store");
    let (sched, service) = scheduler(&store, lab.client(), "replica-1");
    let t0 = 1_900_000_000;
    let tenant = service.default_tenant(t0).await.expect("tenant");
    let change = service
        .add(
            tenant,
            &AddDomain {
                domain: "own.test".into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec!["mx.own.test".into()])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            t0,
        )
        .await
        .expect("add");
    let id = change.version.sts_id;
    // Not watched until the owner says it keeps its own TXT.
    assert_eq!(sched.seed(t0).await.expect("seed"), 0);
    assert_eq!(sched.round(t0).await.expect("round").claimed, 0);
    service
        .set_options(
            tenant,
            "own.test",
            &DomainOptions {
                own_sts_txt: Some(true),
                ..DomainOptions::default()
            },
        )
        .await
        .expect("own txt on");

    // The owner's TXT still names an old id.
    lab.restart(&[zone(
        "own.test",
        &["mx.own.test"],
        Some("v=STSv1; id=old20250101;"),
    )])
    .await;
    let t1 = t0 + 1;
    assert_eq!(sched.round(t1).await.expect("round").claimed, 1);
    let c = service
        .show(tenant, "own.test", t1)
        .await
        .expect("show")
        .checks
        .expect("checked");
    assert_eq!(c.txt_outcome.as_deref(), Some("stale_id"));
    assert_eq!(c.txt_flagged_since, Some(t1));
    assert!(
        c.txt_detail
            .as_deref()
            .is_some_and(|d| d.contains("old20250101") && d.contains(&id)),
        "{c:?}"
    );

    // Still stale a round later: the first sighting is kept.
    let t2 = t1 + ROUND;
    sched.round(t2).await.expect("round");
    let c = service
        .show(tenant, "own.test", t2)
        .await
        .expect("show")
        .checks
        .expect("checked");
    assert_eq!(
        (c.txt_checked_at, c.txt_flagged_since),
        (Some(t2), Some(t1))
    );

    // A DNS failure says nothing: the flag stays.
    lab.stop().await;
    let t3 = t2 + ROUND;
    sched.round(t3).await.expect("round");
    let c = service
        .show(tenant, "own.test", t3)
        .await
        .expect("show")
        .checks
        .expect("checked");
    assert_eq!(c.txt_outcome.as_deref(), Some("lookup_failed"));
    assert_eq!(c.txt_flagged_since, Some(t1));

    // Fixed: the flag clears.
    lab.restart(&[zone(
        "own.test",
        &["mx.own.test"],
        Some(&format!("v=STSv1; id={id};")),
    )])
    .await;
    let t4 = t3 + ROUND;
    sched.round(t4).await.expect("round");
    let c = service
        .show(tenant, "own.test", t4)
        .await
        .expect("show")
        .checks
        .expect("checked");
    assert_eq!(c.txt_outcome.as_deref(), Some("in_step"));
    assert_eq!(c.txt_flagged_since, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_check_each_domain_once_per_round() {
    let Some(server) = Postgres::start("stsward-server/scheduler-replicas") else {
        return;
    };
    let url = server.create_database();
    let names: Vec<String> = (0..12).map(|i| format!("d{i}.test")).collect();
    let zones: Vec<Zone> = names
        .iter()
        .map(|n| zone(n, &[&format!("mx.{n}")], None))
        .collect();
    let mut lab = LabDns::start(&zones).await;
    let one = Store::open(&url).await.expect("store 1");
    let two = Store::open(&url).await.expect("store 2");
    let (s1, service) = scheduler(&one, lab.client(), "replica-1");
    let (s2, _) = scheduler(&two, lab.client(), "replica-2");
    let t0 = 1_900_000_000;
    let tenant = service.default_tenant(t0).await.expect("tenant");
    for n in &names {
        add(&service, tenant, n, "testing", None, t0).await;
    }
    s1.seed(t0).await.expect("seed");
    // The MX records all change; both replicas run the same round at once.
    let changed: Vec<Zone> = names
        .iter()
        .map(|n| zone(n, &[&format!("mx-new.{n}")], None))
        .collect();
    lab.restart(&changed).await;
    let t1 = t0 + ROUND;
    let (r1, r2) = tokio::join!(s1.round(t1), s2.round(t1));
    let (r1, r2) = (r1.expect("replica 1"), r2.expect("replica 2"));
    assert_eq!(r1.claimed + r2.claimed, names.len(), "{r1:?} {r2:?}");
    assert_eq!(r1.changed + r2.changed, names.len());
    for n in &names {
        let d = service.show(tenant, n, t1).await.expect("show");
        assert_eq!(d.history.len(), 2, "{n}: exactly one new version");
        assert_eq!(d.current.mx, [format!("mx-new.{n}")]);
    }
    lab.stop().await;
}
