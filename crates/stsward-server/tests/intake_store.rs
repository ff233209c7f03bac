//! The store-backed intake (RFC 8460 §4.4 reports, §5.3 mail, §3 DKIM) on both backends: every
//! real sample in the corpus stored with the totals it states, exactly once; bad input kept in
//! the quarantine with a reason; retention; two sinks racing on one database.
//!
//! Every case runs on a fresh SQLite file and on a fresh database of a throwaway PostgreSQL
//! server (crates/stsward-testkit), which is skipped visibly where PostgreSQL is absent
//! outside CI.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use stsward_mail::{Limits, extract_from_file, extract_from_message};
use stsward_proto::tlsrpt::parse_report;
use stsward_server::intake::{Channel, Outcome, ReportSink, StoreSink, Submission, SubmissionKind};
use stsward_store::reports::dedup_key;
use stsward_store::{ReportScope, Store, SummaryQuery};
use stsward_testkit::postgres::Postgres;

type Case = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `case` on a fresh SQLite file and on a fresh PostgreSQL database.
async fn on_both(group: &str, case: Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("intake.db").display());
    case(url).await;
    if let Some(server) = Postgres::start(group) {
        case(server.create_database()).await;
    }
}

const T0: i64 = 1_700_000_000;

fn submission(kind: SubmissionKind, raw: Vec<u8>, origin: &str, require_dkim: bool) -> Submission {
    Submission {
        channel: Channel::File,
        kind,
        raw: raw.into(),
        received_at: T0,
        peer: None,
        origin: origin.to_owned(),
        require_dkim,
    }
}

fn kind_of(path: &Path) -> SubmissionKind {
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    if name.ends_with(".eml") {
        SubmissionKind::Message
    } else if name.ends_with(".gz") {
        SubmissionKind::Gzip
    } else if name.ends_with(".json") {
        SubmissionKind::Json
    } else {
        SubmissionKind::File { name }
    }
}

/// Every TLS-RPT sample of the corpus, sorted, or `None` when the corpus is absent.
fn corpus_files() -> Option<Vec<PathBuf>> {
    let root = stsward_testkit::corpus("stsward-server/intake_store")?.join("tlsrpt");
    let mut files = Vec::new();
    for sub in ["json", "gz", "eml"] {
        for entry in std::fs::read_dir(root.join(sub)).expect("corpus dir") {
            files.push(entry.expect("entry").path());
        }
    }
    files.sort();
    assert!(
        files.len() >= 40,
        "corpus has {} TLS-RPT files",
        files.len()
    );
    Some(files)
}

/// What the files state, computed independently of the store: stsward-mail extracts and
/// stsward-proto parses each file; a report whose (organisation, report id) came earlier in
/// `files` is a duplicate.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    reports: u64,
    successful: u64,
    failed: u64,
    report_parts: u64,
}

fn expected(files: &[PathBuf]) -> Expected {
    let mut seen = std::collections::HashSet::new();
    let mut e = Expected::default();
    for path in files {
        let bytes = std::fs::read(path).expect("read");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let extracted = if name.ends_with(".eml") {
            extract_from_message(&bytes, &Limits::default())
        } else {
            extract_from_file(&name, &bytes, &Limits::default())
        };
        let Ok(extracted) = extracted else { continue };
        for part in extracted.reports {
            let Ok(parsed) = parse_report(&part.json) else {
                continue;
            };
            e.report_parts += 1;
            let r = parsed.report;
            let key = dedup_key(&r.organization_name, &r.report_id).expect("key");
            if seen.insert(key) {
                let (s, f) = r.totals().counts();
                e.reports += 1;
                e.successful += s;
                e.failed += f;
            }
        }
    }
    e
}

fn all_time() -> SummaryQuery {
    SummaryQuery {
        scope: ReportScope::Install,
        domain: None,
        since: 0,
        until: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8460_4_4_corpus_totals_are_stored_once() {
    let Some(files) = corpus_files() else { return };
    let want = expected(&files);
    assert!(
        want.reports >= 20 && want.successful > 0 && want.failed > 0,
        "{want:?}"
    );
    on_both("stsward-server/intake_store", |url| {
        Box::pin(async move {
            let files = corpus_files().expect("corpus");
            let want = expected(&files);
            let store = Store::open(&url).await.expect("open");
            let sink = StoreSink::new(store.clone());
            let (mut stored, mut duplicates, mut quarantined) = (0, 0, 0);
            for path in &files {
                let raw = std::fs::read(path).expect("read");
                let s = submission(kind_of(path), raw, &path.display().to_string(), false);
                match sink.submit(s).await.expect("submit") {
                    Outcome::Stored {
                        stored: s,
                        duplicates: d,
                    } => {
                        stored += s;
                        duplicates += d;
                    }
                    Outcome::Quarantined { reason } => {
                        assert!(!reason.is_empty());
                        quarantined += 1;
                    }
                }
            }
            assert_eq!(stored as u64, want.reports, "{url}");
            assert_eq!((stored + duplicates) as u64, want.report_parts, "{url}");
            let totals = store.reports_stored_totals().await.expect("totals");
            assert_eq!(
                (totals.reports, totals.successful, totals.failed),
                (want.reports, want.successful, want.failed),
                "stored rows vs the files, {url}"
            );
            let summary = store.reports_summary(&all_time()).await.expect("summary");
            assert_eq!(
                (summary.successful, summary.failed),
                (want.successful, want.failed),
                "rollups vs the files, {url}"
            );
            let by_day: u64 = summary.days.iter().map(|d| d.successful + d.failed).sum();
            assert_eq!(by_day, want.successful + want.failed);
            let by_org: u64 = summary.by_organization.iter().map(|o| o.failed).sum();
            assert_eq!(by_org, want.failed);

            // Twice: nothing new stored, every report counted as a duplicate, the quarantine
            // keeps one entry per unreadable input.
            let waiting = store
                .quarantine_list(false, None, 1000)
                .await
                .expect("list");
            assert_eq!(waiting.len(), quarantined, "{url}");
            let mut again = 0;
            for path in &files {
                let raw = std::fs::read(path).expect("read");
                let s = submission(kind_of(path), raw, "again", false);
                if let Outcome::Stored { stored, duplicates } =
                    sink.submit(s).await.expect("submit")
                {
                    assert_eq!(stored, 0, "{} stored twice on {url}", path.display());
                    again += duplicates;
                }
            }
            assert_eq!(again as u64, want.report_parts, "{url}");
            assert_eq!(store.reports_stored_totals().await.expect("totals"), totals);
            assert_eq!(
                store.reports_summary(&all_time()).await.expect("summary"),
                summary
            );
            let waiting_again = store
                .quarantine_list(false, None, 1000)
                .await
                .expect("list");
            assert_eq!(waiting_again, waiting, "{url}");
            store.close().await;
        })
    })
    .await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

const GOOD: &str = r#"{"organization-name":"Org","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"contact-info":"a@org.example","report-id":"ID","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},"summary":{"total-successful-session-count":7,"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired","receiving-mx-hostname":"mx.example.com","failed-session-count":2}]}]}"#;

fn report(org: &str, id: &str) -> String {
    GOOD.replace("\"Org\"", &format!("{org:?}"))
        .replace("\"ID\"", &format!("{id:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_quarantined_with_its_reason_and_bytes() {
    on_both("stsward-server/intake_store_bad", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let sink = StoreSink::new(store.clone());
            let good_gz = gzip(report("Org", "trunc").as_bytes());
            let mut invalid_utf8 = report("Org", "utf8").into_bytes();
            let at = invalid_utf8.iter().position(|&b| b == b'a').expect("a");
            invalid_utf8[at] = 0xff;
            let wrong_types = report("Org", "types").replace(
                "\"total-successful-session-count\":7",
                "\"total-successful-session-count\":{\"n\":7}",
            );
            // (name, kind, bytes, what the reason must say)
            let cases: Vec<(&str, SubmissionKind, Vec<u8>, &str)> = vec![
                (
                    "gzip bomb",
                    SubmissionKind::Gzip,
                    gzip(&vec![b' '; 40 << 20]),
                    "exceeds the limit",
                ),
                (
                    "truncated gzip",
                    SubmissionKind::Gzip,
                    good_gz[..good_gz.len() / 2].to_vec(),
                    "gzip",
                ),
                (
                    "JSON with wrong types",
                    SubmissionKind::Json,
                    wrong_types.into_bytes(),
                    "total-successful-session-count",
                ),
                ("invalid UTF-8", SubmissionKind::Json, invalid_utf8, "JSON"),
                (
                    "a 50 MB body",
                    SubmissionKind::Json,
                    vec![b'{'; 50 << 20],
                    "exceeds the limit",
                ),
                (
                    "not a report",
                    SubmissionKind::Json,
                    b"{\"a\": 1}".to_vec(),
                    "not a TLS-RPT report",
                ),
                (
                    "empty organisation",
                    SubmissionKind::Json,
                    report(" ", "x").into_bytes(),
                    "organization-name is empty",
                ),
            ];
            for (name, kind, bytes, says) in cases {
                let s = submission(kind, bytes.clone(), name, false);
                let outcome = sink.submit(s).await.expect("committed");
                let Outcome::Quarantined { reason } = outcome else {
                    panic!("{name}: {outcome:?} on {url}");
                };
                assert!(reason.contains(says), "{name}: {reason:?} lacks {says:?}");
                let listed = store.quarantine_list(false, None, 10).await.expect("list");
                let entry = listed.iter().find(|q| q.origin == name).expect(name);
                assert_eq!(entry.reason, reason, "{name}");
                assert_eq!(entry.size, bytes.len() as u64, "{name}");
                let (_, raw) = store
                    .quarantine_get(entry.id)
                    .await
                    .expect("get")
                    .expect(name);
                assert!(
                    raw.decompress().expect("raw") == bytes,
                    "{name}: raw bytes kept"
                );
            }
            let totals = store.reports_stored_totals().await.expect("totals");
            assert_eq!(totals.reports, 0, "nothing bad was counted on {url}");
            store.close().await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8460_3_unsigned_mail_is_quarantined_where_dkim_is_required_and_can_be_released() {
    let Some(files) = corpus_files() else { return };
    let eml = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with("tlsrpt-rs__google1.eml"))
        .expect("a corpus e-mail")
        .clone();
    on_both("stsward-server/intake_store_dkim", move |url| {
        let eml = corpus_files()
            .expect("corpus")
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with("tlsrpt-rs__google1.eml"))
            .expect("eml");
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let sink = StoreSink::new(store.clone());
            let raw = std::fs::read(&eml).expect("read");
            let s = submission(SubmissionKind::Message, raw.clone(), "smtp test", true);
            let Outcome::Quarantined { reason } = sink.submit(s).await.expect("submit") else {
                panic!("stored without a DKIM check on {url}");
            };
            assert!(
                reason.contains("DKIM") && reason.contains("RFC 8460 §3"),
                "{reason}"
            );
            assert_eq!(store.reports_stored_totals().await.expect("t").reports, 0);
            let entry = store.quarantine_list(false, None, 10).await.expect("list")[0].clone();
            let released = sink
                .release(entry.id, false, T0 + 60)
                .await
                .expect("release");
            assert!(
                matches!(released, Some(Outcome::Stored { stored, .. }) if stored >= 1),
                "{released:?}"
            );
            assert!(
                store
                    .quarantine_list(false, None, 10)
                    .await
                    .expect("list")
                    .is_empty()
            );
            let all = store.quarantine_list(true, None, 10).await.expect("list");
            assert_eq!(all[0].released_at, Some(T0 + 60));
            // Released once: a second release stores nothing new.
            let again = sink
                .release(entry.id, false, T0 + 61)
                .await
                .expect("release");
            assert!(
                matches!(again, Some(Outcome::Stored { stored: 0, .. })),
                "{again:?}"
            );
            assert_eq!(sink.release(9999, false, T0).await.expect("release"), None);
            store.close().await;
        })
    })
    .await;
    drop(eml);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_raw_input_and_details_but_not_the_summary() {
    on_both("stsward-server/intake_store_retention", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let sink = StoreSink::new(store.clone());
            let batch: Vec<Submission> = (0..20)
                .map(|i| {
                    submission(
                        SubmissionKind::Json,
                        report("Org", &format!("r{i}")).into_bytes(),
                        "gen",
                        false,
                    )
                })
                .collect();
            // The same report twice in one batch: stored once, then a duplicate.
            let twice = vec![batch[0].clone(), batch[0].clone()];
            let outcomes = sink.submit_batch(&twice).await.expect("twice");
            assert_eq!(
                outcomes,
                vec![
                    Outcome::Stored {
                        stored: 1,
                        duplicates: 0
                    },
                    Outcome::Stored {
                        stored: 0,
                        duplicates: 1
                    }
                ],
                "{url}"
            );
            let outcomes = sink.submit_batch(&batch[1..]).await.expect("batch");
            assert!(outcomes.iter().all(|o| *o
                == Outcome::Stored {
                    stored: 1,
                    duplicates: 0
                }));
            let before = store.reports_summary(&all_time()).await.expect("summary");
            assert_eq!((before.successful, before.failed), (140, 40));
            let totals = store.reports_stored_totals().await.expect("totals");
            assert_eq!((totals.failure_details, totals.raw_inputs), (20, 20));
            // Nothing is older than T0 yet.
            assert_eq!(store.reports_prune(T0).await.expect("prune").raw_inputs, 0);
            let pruned = store.reports_prune(T0 + 1).await.expect("prune");
            assert_eq!((pruned.raw_inputs, pruned.failure_details), (20, 20));
            let after = store.reports_stored_totals().await.expect("totals");
            assert_eq!(
                (after.reports, after.failure_details, after.raw_inputs),
                (20, 0, 0)
            );
            assert_eq!(
                store.reports_summary(&all_time()).await.expect("summary"),
                before
            );
            // A pruned report sent again is still a duplicate.
            let again = sink.submit_batch(&batch[..1]).await.expect("again");
            assert_eq!(
                again,
                vec![Outcome::Stored {
                    stored: 0,
                    duplicates: 1
                }]
            );
            store.close().await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_on_one_database_store_each_report_exactly_once() {
    on_both("stsward-server/intake_store_race", |url| {
        Box::pin(async move {
            const N: usize = 400;
            let make = |i: usize| {
                submission(
                    SubmissionKind::Json,
                    report(&format!("Org{}", i % 7), &format!("race-{i}")).into_bytes(),
                    "race",
                    false,
                )
            };
            let forward: Vec<Submission> = (0..N).map(make).collect();
            let backward: Vec<Submission> = (0..N).rev().map(make).collect();
            let mut tasks = Vec::new();
            for subs in [forward, backward] {
                // Two stores, two pools: two replicas.
                let store = Store::open(&url).await.expect("open");
                tasks.push(tokio::spawn(async move {
                    let sink = StoreSink::new(store.clone());
                    let (mut stored, mut dups) = (0, 0);
                    for chunk in subs.chunks(25) {
                        for o in sink.submit_batch(chunk).await.expect("batch") {
                            let Outcome::Stored {
                                stored: s,
                                duplicates: d,
                            } = o
                            else {
                                panic!("{o:?}")
                            };
                            stored += s;
                            dups += d;
                        }
                    }
                    store.close().await;
                    (stored, dups)
                }));
            }
            let mut stored = 0;
            for t in tasks {
                let (s, d) = t.await.expect("task");
                assert_eq!(s + d, N, "every report acknowledged on {url}");
                stored += s;
            }
            assert_eq!(stored, N, "each stored by exactly one sink on {url}");
            let store = Store::open(&url).await.expect("open");
            let totals = store.reports_stored_totals().await.expect("totals");
            assert_eq!(totals.reports, N as u64);
            let summary = store.reports_summary(&all_time()).await.expect("summary");
            assert_eq!(
                (summary.successful, summary.failed),
                (7 * N as u64, 2 * N as u64)
            );
            store.close().await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_summary_covers_only_the_domains_it_hosts() {
    on_both("stsward-server/intake_store_tenants", |url| {
        Box::pin(async move {
            use stsward_store::{NewDomain, NewVersion};
            let store = Store::open(&url).await.expect("open");
            let sink = StoreSink::new(store.clone());
            let a = store.tenant_create("a", T0).await.expect("tenant a");
            let b = store.tenant_create("b", T0).await.expect("tenant b");
            for (tenant, domain) in [(a.id, "example.com"), (b.id, "other.example")] {
                let new = NewDomain {
                    domain: domain.into(),
                    follow_mx: false,
                    tlsrpt_rua: None,
                    created_at: T0,
                };
                let version = NewVersion {
                    mode: "testing".into(),
                    mx: vec!["mx.example.com".into()],
                    max_age: 86_400,
                    policy: "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 86400\r\n".into(),
                    sts_id: "1".into(),
                    changed_by: "test".into(),
                    changed_at: T0,
                    note: None,
                };
                store.hosted_domain_add(tenant, &new, version).await.expect("add");
            }
            let other = report("Org", "o1").replace("example.com\"}", "other.example\"}");
            let batch = vec![
                submission(SubmissionKind::Json, report("Org", "e1").into_bytes(), "e1", false),
                submission(SubmissionKind::Json, other.into_bytes(), "o1", false),
                submission(SubmissionKind::Json, report("Org", "x").replace("example.com\"}", "unhosted.example\"}").into_bytes(), "x", false),
            ];
            sink.submit_batch(&batch).await.expect("batch");
            let of = |scope| SummaryQuery { scope, ..all_time() };
            let install = store.reports_summary(&of(ReportScope::Install)).await.expect("all");
            assert_eq!(install.successful, 21, "{url}");
            for tenant in [a.id, b.id] {
                let s = store.reports_summary(&of(ReportScope::Tenant(tenant))).await.expect("tenant");
                assert_eq!((s.successful, s.failed), (7, 2), "tenant {tenant} on {url}");
            }
            // Tenant a asking for b's domain sees nothing.
            let mut q = of(ReportScope::Tenant(a.id));
            q.domain = Some("other.example".into());
            let s = store.reports_summary(&q).await.expect("foreign");
            assert_eq!((s.successful, s.failed, s.days.len()), (0, 0, 0), "{url}");
            store.close().await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_answers_each_concurrent_submission_with_its_own_outcome() {
    on_both("stsward-server/intake_store_group", |url| {
        Box::pin(async move {
            const N: usize = 300;
            let store = Store::open(&url).await.expect("open");
            let sink = Arc::new(StoreSink::new(store.clone()).with_group_commit());
            // Every report twice, plus one unreadable input per ten: 2N + N/10 sessions at
            // once, so that many share a transaction.
            let mut tasks = Vec::new();
            for i in 0..2 * N + N / 10 {
                let sink = sink.clone();
                let raw = if i < 2 * N {
                    report("Group", &format!("g-{}", i % N)).into_bytes()
                } else {
                    format!("not json {i}").into_bytes()
                };
                tasks.push(tokio::spawn(async move {
                    let sub = submission(SubmissionKind::Json, raw, &format!("s{i}"), false);
                    (i, sink.submit(sub).await.expect("submit"))
                }));
            }
            let (mut stored, mut dups, mut quarantined) = (0, 0, 0);
            for t in tasks {
                match t.await.expect("task") {
                    (
                        i,
                        Outcome::Stored {
                            stored: s,
                            duplicates: d,
                        },
                    ) if i < 2 * N => {
                        assert_eq!(s + d, 1, "session {i}: one report, {s} stored {d} dup");
                        stored += s;
                        dups += d;
                    }
                    (i, Outcome::Quarantined { reason }) if i >= 2 * N => {
                        assert!(reason.contains("JSON"), "session {i}: {reason}");
                        quarantined += 1;
                    }
                    (i, other) => panic!("session {i} on {url}: {other:?}"),
                }
            }
            assert_eq!((stored, dups, quarantined), (N, N, N / 10), "on {url}");
            let totals = store.reports_stored_totals().await.expect("totals");
            assert_eq!(totals.reports, N as u64, "on {url}");
            let listed = store.quarantine_list(true, None, 1000).await.expect("list");
            assert_eq!(listed.len(), N / 10, "on {url}");
            store.close().await;
        })
    })
    .await;
}
