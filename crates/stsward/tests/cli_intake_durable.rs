//! Report intake is durable and exact with the real `stsward serve` (issue 8, "Crash" and "Two
//! replicas"): RFC 8460 §5.3 mail over SMTP and §5.4 HTTPS POST count as accepted only on
//! `250` after DATA and `201`/`200`, and those promise the report is committed.
//!
//! - Crash: SMTP and HTTPS clients stream distinct reports while the server is SIGKILLed
//!   five times at random moments and restarted on the same store and ports; clients retry
//!   what was not acknowledged. Afterwards every acknowledged report is stored exactly once
//!   (counted per report id in the store's table) and nothing is stored twice. On SQLite,
//!   and on PostgreSQL.
//! - Two replicas: two servers on one PostgreSQL receive the same 10,000 reports at once,
//!   each report by SMTP at one replica and by HTTPS at the other. Afterwards exactly 10,000
//!   are stored, once each, and the stored session totals equal what the reports state.
//!
//! A missing PostgreSQL is skipped and recorded (`stsward_testkit::postgres`), and is a
//! failure under `CI`. The tests take one lock so that they do not compete for the cores.

mod intake_support;
#[path = "../../stsward-server/tests/serve_support/mod.rs"]
mod serve_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use intake_support::{Jitter, Replica, Report, Tally, Via, certificate, run_client, stored_ids};
use stsward_store::Store;

/// One test at a time: they measure nothing, but their deadlines assume the cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The per-id check: every acknowledged report stored once, nothing stored twice, nothing
/// stored that was never sent. Returns (acknowledged, stored, duplicated).
fn check_exactly_once(
    label: &str,
    stored: &HashMap<String, i64>,
    acked: &[&Report],
    sent: &HashMap<String, &Report>,
) -> (usize, usize, usize) {
    let duplicated: Vec<&String> = stored
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&str> = acked
        .iter()
        .filter(|r| stored.get(&r.id) != Some(&1))
        .map(|r| r.id.as_str())
        .collect();
    let unknown: Vec<&String> = stored.keys().filter(|id| !sent.contains_key(*id)).collect();
    let acked_stored = acked.len() - missing.len();
    println!(
        "{label}: acknowledged {}, stored {} (of them acknowledged {acked_stored}), duplicated {}",
        acked.len(),
        stored.len(),
        duplicated.len()
    );
    assert!(
        duplicated.is_empty(),
        "{label}: stored more than once: {duplicated:?}"
    );
    assert!(
        missing.is_empty(),
        "{label}: acknowledged but not stored: {} of them, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        unknown.is_empty(),
        "{label}: stored but never sent: {unknown:?}"
    );
    assert_eq!(acked.len(), acked_stored, "{label}: acknowledged == stored");
    (acked.len(), stored.len(), duplicated.len())
}

/// The store's totals equal the sums the stored reports state.
async fn check_totals(
    label: &str,
    url: &str,
    stored: &HashMap<String, i64>,
    sent: &HashMap<String, &Report>,
) {
    let store = Store::open(url).await.expect("open the store");
    let totals = store.reports_stored_totals().await.expect("totals");
    let (mut successful, mut failed) = (0, 0);
    for id in stored.keys() {
        if let Some(r) = sent.get(id) {
            successful += r.successful;
            failed += r.failed;
        }
    }
    assert_eq!(totals.reports, stored.len() as u64, "{label}: report count");
    assert_eq!(
        totals.successful, successful,
        "{label}: successful sessions"
    );
    assert_eq!(totals.failed, failed, "{label}: failed sessions");
    let quarantined = store
        .quarantine_list(true, None, 10)
        .await
        .expect("quarantine");
    assert!(
        quarantined.is_empty(),
        "{label}: generated reports were quarantined: {quarantined:?}"
    );
    store.close().await;
}

/// The crash test on the store at `url` (a fresh SQLite file or PostgreSQL database).
fn crash_test(label: &str, dir: &std::path::Path, url: &str) {
    const KILLS: usize = 5;
    const SMTP_CLIENTS: u64 = 3;
    const HTTPS_CLIENTS: u64 = 2;
    let pki = certificate(dir);
    let tls = intake_support::tls_client(&pki.ca);
    let mut server = Replica::new(dir, "serve", &pki, url);
    let rt = runtime();
    let mut jitter = Jitter::from_clock();
    println!("{label}: kill moments seeded with {}", jitter.seed());
    server.add_domain();
    server.start();
    rt.block_on(server.wait_ready(&tls));

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..SMTP_CLIENTS + HTTPS_CLIENTS {
        let via = if c < SMTP_CLIENTS {
            Via::Smtp
        } else {
            Via::Https
        };
        let addr = if via == Via::Smtp {
            server.smtp
        } else {
            server.https
        };
        let stop = stop.clone();
        let seq = AtomicU64::new(0);
        let next = move || {
            (!stop.load(Ordering::SeqCst))
                .then(|| Report::new(&format!("crash-{c}"), seq.fetch_add(1, Ordering::SeqCst)))
        };
        // 300 attempts 100 ms apart outlast any restart below.
        clients.push(rt.spawn(run_client(via, addr, tls.clone(), 300, next)));
    }
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(jitter.between(300, 1500)));
        server.kill();
        server.start();
        rt.block_on(server.wait_ready(&tls));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let tallies: Vec<Tally> = rt.block_on(async {
        let mut out = Vec::new();
        for client in clients {
            let tally = tokio::time::timeout(Duration::from_secs(120), client)
                .await
                .expect("the clients finish within 120 s")
                .expect("client task");
            out.push(tally);
        }
        out
    });

    let acked: Vec<&Report> = tallies.iter().flat_map(|t| &t.acked).collect();
    let unacked: Vec<&Report> = tallies.iter().flat_map(|t| &t.unacked).collect();
    let sent: HashMap<String, &Report> = acked
        .iter()
        .chain(&unacked)
        .map(|r| (r.id.clone(), *r))
        .collect();
    let failed_attempts: u64 = tallies.iter().map(|t| t.failed_attempts).sum();
    // A 200 after a retried POST: the killed server had committed it but died before answering.
    let committed_unanswered: u64 = tallies.iter().map(|t| t.duplicate_answers).sum();
    println!(
        "{label}: {KILLS} kills, {} reports sent, {failed_attempts} failed attempts retried, \
         {} never acknowledged, {committed_unanswered} POSTs answered 200 (already stored) on a \
         retry",
        sent.len(),
        unacked.len()
    );
    assert!(
        unacked.is_empty(),
        "{label}: not acknowledged after the last restart: {:?}; last errors {:?}\n{}",
        unacked.iter().map(|r| &r.id).collect::<Vec<_>>(),
        tallies.iter().map(|t| &t.last_error).collect::<Vec<_>>(),
        server.log_tail()
    );
    // The kills must have hit the clients, or the test tested nothing.
    assert!(
        failed_attempts > 0,
        "{label}: no submission was interrupted by the kills"
    );
    assert!(
        acked.len() > 20,
        "{label}: only {} reports went through",
        acked.len()
    );
    server.kill();
    let stored = rt.block_on(stored_ids(url));
    check_exactly_once(label, &stored, &acked, &sent);
    rt.block_on(check_totals(label, url, &stored, &sent));
}

#[test]
fn crash_sqlite_every_acknowledged_report_is_stored_exactly_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    crash_test("crash/sqlite", dir.path(), &url);
}

#[test]
fn crash_postgres_every_acknowledged_report_is_stored_exactly_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = stsward_testkit::postgres::Postgres::start("stsward/intake-crash-postgres")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    crash_test("crash/postgres", dir.path(), &pg.create_database());
}

#[test]
fn two_replicas_on_one_postgres_store_10000_reports_once_each() {
    const REPORTS: u64 = 10_000;
    /// Lanes per channel: lane k's reports go by SMTP to one replica and by HTTPS to the other.
    const LANES: u64 = 4;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = stsward_testkit::postgres::Postgres::start("stsward/intake-two-replicas") else {
        return;
    };
    let url = pg.create_database();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = certificate(dir.path());
    let tls = intake_support::tls_client(&pki.ca);
    let mut a = Replica::new(dir.path(), "replica-a", &pki, &url);
    let mut b = Replica::new(dir.path(), "replica-b", &pki, &url);
    let rt = runtime();
    a.add_domain();
    a.start();
    rt.block_on(a.wait_ready(&tls));
    b.start();
    rt.block_on(b.wait_ready(&tls));

    let reports: Vec<Report> = (0..REPORTS).map(|n| Report::new("twin", n)).collect();
    let lanes: Vec<Arc<Vec<Report>>> = (0..LANES)
        .map(|k| {
            Arc::new(
                reports
                    .iter()
                    .filter(|r| {
                        r.id.rsplit('-')
                            .next()
                            .and_then(|n| n.parse::<u64>().ok())
                            .is_some_and(|n| n % LANES == k)
                    })
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    let started = Instant::now();
    let mut clients = Vec::new();
    for (k, lane) in lanes.iter().enumerate() {
        let (by_smtp, by_https) = if k % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for (via, addr) in [(Via::Smtp, by_smtp.smtp), (Via::Https, by_https.https)] {
            let lane = lane.clone();
            let mut i = 0;
            let next = move || {
                i += 1;
                lane.get(i - 1).cloned()
            };
            clients.push(rt.spawn(run_client(via, addr, tls.clone(), 20, next)));
        }
    }
    let tallies: Vec<Tally> = rt.block_on(async {
        let mut out = Vec::new();
        for client in clients {
            let tally = tokio::time::timeout(Duration::from_secs(240), client)
                .await
                .expect("the clients finish within 240 s")
                .expect("client task");
            out.push(tally);
        }
        out
    });
    let elapsed = started.elapsed();
    let unacked: Vec<&Report> = tallies.iter().flat_map(|t| &t.unacked).collect();
    assert!(
        unacked.is_empty(),
        "not acknowledged: {} submissions; last errors {:?}\n{}\n{}",
        unacked.len(),
        tallies.iter().map(|t| &t.last_error).collect::<Vec<_>>(),
        a.log_tail(),
        b.log_tail()
    );
    let submissions: usize = tallies.iter().map(|t| t.acked.len()).sum();
    let created: u64 = tallies.iter().map(|t| t.created).sum();
    let duplicate_answers: u64 = tallies.iter().map(|t| t.duplicate_answers).sum();
    println!(
        "two replicas: {submissions} submissions acknowledged in {elapsed:.1?} \
         ({:.0}/s); HTTPS 201 {created}, 200 (duplicate) {duplicate_answers}",
        submissions as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        submissions as u64,
        2 * REPORTS,
        "every report went to both replicas"
    );
    // Every HTTPS POST met a report that its twin by SMTP had either stored already or not.
    assert_eq!(created + duplicate_answers, REPORTS);
    a.kill();
    b.kill();

    let sent: HashMap<String, &Report> = reports.iter().map(|r| (r.id.clone(), r)).collect();
    let acked: Vec<&Report> = reports.iter().collect();
    let stored = rt.block_on(stored_ids(&url));
    let (_, stored_count, _) = check_exactly_once("two replicas", &stored, &acked, &sent);
    assert_eq!(stored_count as u64, REPORTS);
    rt.block_on(check_totals("two replicas", &url, &stored, &sent));
}
