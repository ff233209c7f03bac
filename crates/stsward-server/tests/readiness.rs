//! The readiness verdict (issue 9) on a real store, SQLite and PostgreSQL: reports (RFC 8460
//! §4) stored through the intake, check runs and policy fetches, read back over moving
//! windows as the clock moves; another tenant's domain is not found.

use std::future::Future;
use std::pin::Pin;

use stsward_server::config::{HostingSection, ReadinessSection};
use stsward_server::domains::{AddDomain, DomainError, DomainService, MxInput, PolicyChange};
use stsward_server::intake::{Channel, Outcome, ReportSink, StoreSink, Submission, SubmissionKind};
use stsward_server::readiness::gather::readiness;
use stsward_server::readiness::{Readiness, Verdict};
use stsward_store::{FetchRow, NewCheckRun, Store, TenantId};
use stsward_testkit::postgres::Postgres;

type Case = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const DAY: i64 = 86_400;
/// 2026-06-15 12:00:00 UTC.
const NOW: i64 = 1_781_524_800;
const DOMAIN: &str = "ready.test";

async fn on_both(group: &str, case: Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("readiness.db").display());
    case(url).await;
    if let Some(server) = Postgres::start(group) {
        case(server.create_database()).await;
    }
}

fn date(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A report by `org` on the UTC day before `at`, with `ok` successful sessions and `failed`
/// failures of `result_type` at mx1.
fn report(org: &str, id: &str, at: i64, ok: u64, failed: u64, result_type: &str) -> Vec<u8> {
    let start = (at / DAY - 1) * DAY;
    let details = if failed > 0 {
        format!(
            r#","failure-details":[{{"result-type":"{result_type}","receiving-mx-hostname":"mx1.ready.test","failed-session-count":{failed}}}]"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"organization-name":"{org}","date-range":{{"start-datetime":"{}","end-datetime":"{}"}},"contact-info":"tlsrpt@{org}","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"{DOMAIN}","mx-host":["mx1.ready.test"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}}{details}}}]}}"#,
        date(start),
        date(start + DAY - 1),
    )
    .into_bytes()
}

async fn ingest(sink: &StoreSink, raw: Vec<u8>, at: i64) {
    let outcome = sink
        .submit(Submission {
            channel: Channel::File,
            kind: SubmissionKind::Json,
            raw: raw.into(),
            received_at: at,
            peer: None,
            origin: "readiness test".into(),
            require_dkim: false,
        })
        .await
        .expect("submit");
    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
}

/// A day of traffic at `at`: each `(org, id, ok, failed, result type)` report ingested, and
/// 12 policy fetches from one network.
async fn traffic(
    sink: &StoreSink,
    store: &Store,
    at: i64,
    reports: &[(&str, &str, u64, u64, &str)],
) {
    for (org, id, ok, failed, result_type) in reports {
        ingest(sink, report(org, id, at, *ok, *failed, result_type), at).await;
    }
    let fetches = FetchRow {
        domain: DOMAIN.into(),
        day: at / DAY,
        network: "192.0.2.0/24".into(),
        fetches: 12,
    };
    store.policy_fetches_add(&[fetches]).await.expect("fetches");
}

/// The verdict at `at` with the default criteria.
async fn verdict_at(store: &Store, tenant: TenantId, at: i64) -> Readiness {
    readiness(store, tenant, DOMAIN, at, &ReadinessSection::default())
        .await
        .expect("readiness")
}

const GOOD_FINDINGS: &str = r#"[
 {"code":"sts.mx.covered","severity":"ok","subject":"ready.test","message":"every MX is covered","remedy":"","reference":"RFC 8461 §4.1"},
 {"code":"mx.cert.ok","severity":"ok","subject":"mx1.ready.test","message":"valid","remedy":"","reference":"RFC 8461 §4.2"},
 {"code":"tlsrpt.txt.ok","severity":"ok","subject":"_smtp._tls.ready.test","message":"v=TLSRPTv1","remedy":"","reference":"RFC 8460 §3"}
]"#;

fn passed(r: &Readiness) -> Vec<(&'static str, bool)> {
    r.criteria.iter().map(|c| (c.code, c.passed)).collect()
}

fn failing(r: &Readiness) -> Vec<&'static str> {
    r.criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.code)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_follows_reports_checks_fetches_and_the_clock() {
    on_both("stsward-server/readiness", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let service = DomainService::new(store.clone(), HostingSection::default(), None);
            let sink = StoreSink::new(store.clone());
            let added = NOW - 10 * DAY;
            let tenant = service.default_tenant(added).await.expect("tenant");
            let add = AddDomain {
                domain: DOMAIN.into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec!["mx1.ready.test".into()])),
                max_age: Some(604_800),
                follow_mx: false,
            };
            service.add(tenant, &add, "test", added).await.expect("add");

            // Fresh: only "no blocking failures" holds, vacuously.
            let r = verdict_at(&store, tenant, NOW).await;
            assert_eq!(r.verdict, Verdict::NotReady);
            assert_eq!(failing(&r).len(), 6, "{r:#?}");
            assert!(passed(&r).contains(&("blocking-failures", true)));
            let days = &r.criteria[0].evidence;
            assert!(days.contains("10 days (at least 30 needed)"), "{r:#?}");

            // Two senders report, a clean check runs, senders fetch the policy: only the
            // time in testing is missing.
            let clean_day = |g: &'static str, m: &'static str| {
                [
                    ("google.com", g, 6000, 0, ""),
                    ("microsoft.com", m, 4000, 0, ""),
                ]
            };
            traffic(&sink, &store, NOW, &clean_day("g1", "m1")).await;
            let run = NewCheckRun {
                started_at: NOW - 60,
                finished_at: NOW - 50,
                verdict: "warning".into(),
                findings: GOOD_FINDINGS.into(),
            };
            let stored = store.check_run_add(tenant, DOMAIN, &run, 10).await;
            assert!(stored.expect("check run").is_some());
            let r = verdict_at(&store, tenant, NOW).await;
            assert_eq!(failing(&r), vec!["days-in-testing"], "{r:#?}");
            assert_eq!(r.next_step, r.criteria[0].next_step);

            // 25 days later the time in testing is enough, and the old reports still count
            // for the 30-day window of senders, but not for the 14-day success rate, and
            // the fetches are older than 7 days.
            let later = NOW + 25 * DAY;
            let r = verdict_at(&store, tenant, later).await;
            assert_eq!(
                failing(&r),
                vec!["success-rate", "policy-fetches"],
                "{r:#?}"
            );
            let day = [
                ("google.com", "g2", 6000, 0, ""),
                ("microsoft.com", "m2", 4000, 3, "validation-failure"),
            ];
            traffic(&sink, &store, later, &day).await;
            let r = verdict_at(&store, tenant, later).await;
            assert_eq!(r.verdict, Verdict::Ready, "{r:#?}");
            assert!(r.next_step.is_none());

            // A certificate failure reported by a third sender: not ready, and the next
            // step names it.
            let expired = report("yahoo.com", "y1", later, 2000, 4, "certificate-expired");
            ingest(&sink, expired, later).await;
            let r = verdict_at(&store, tenant, later).await;
            assert_eq!(failing(&r), vec!["blocking-failures"], "{r:#?}");
            let step = r.next_step.clone().unwrap_or_default();
            assert!(step.starts_with("fix certificate-expired:"), "{step}");
            // Eight days on, with fresh clean reports, it has aged out of the failure window.
            let clean = later + 8 * DAY;
            traffic(&sink, &store, clean, &clean_day("g3", "m3")).await;
            let r = verdict_at(&store, tenant, clean).await;
            assert_eq!(r.verdict, Verdict::Ready, "{r:#?}");

            // Switching to enforce restarts the mode's clock and makes the verdict Enforcing.
            let change = PolicyChange {
                mode: Some("enforce".into()),
                ..PolicyChange::default()
            };
            service
                .set(tenant, DOMAIN, &change, "test", clean)
                .await
                .expect("enforce");
            let r = verdict_at(&store, tenant, clean).await;
            assert_eq!(
                (r.verdict, r.mode.as_str()),
                (Verdict::Enforcing, "enforce")
            );
            assert!(
                r.criteria[0].evidence.starts_with("in enforce since "),
                "{r:#?}"
            );

            // Another tenant does not see the domain.
            let other = store.tenant_create("other", NOW).await.expect("tenant");
            let refused = readiness(
                &store,
                other.id,
                DOMAIN,
                clean,
                &ReadinessSection::default(),
            )
            .await;
            assert!(
                matches!(refused, Err(DomainError::NotFound { .. })),
                "{refused:?}"
            );
            store.close().await;
        })
    })
    .await;
}
