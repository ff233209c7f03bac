//! `stsward demo` — the whole of stsward on one machine, without the internet, in under
//! 30 seconds: a lab world of `.test` domains in different states, `stsward serve` hosting
//! their MTA-STS policies (RFC 8461 §3.3) on an embedded SQLite in a temporary directory,
//! a month of TLS-RPT reports (RFC 8460 §4) made from the lab's own delivery results, the
//! checks, and the dashboard with a one-time login. `--headless --json` prints a summary and
//! exits instead, for scripted verification.
//!
//! Built only with the `lab` feature (the lab's test CA never ships).

mod senders;
mod traffic;
mod world;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_net::dns::{Dns, DnsConfig};
use stsward_proto::failure::Failure;
use stsward_proto::finding::Code;
use stsward_server::checks::CheckRunner;
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, DomainService, MxInput, PolicyChange};
use stsward_server::readiness::CheckFinding;
use stsward_server::serve::{Runtime, ServeOptions};
use stsward_store::{FetchRow, NewUser, ReportScope, Role, Store, SummaryQuery, TenantId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use self::traffic::{DAY, Delivery, DomainTraffic, ORGS, Route, ServedPolicy};
use self::world::{DOMAINS, DemoDomain};
use crate::Outcome;
use crate::command::Demo;

/// The address stsward's policy host and DNS listen on: loopback, outside the lab's
/// 127.x.0.0/16 subnets (their second octet is never 0).
const POLICY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The address reports give for an MX host the lab no longer has (one a domain moved away
/// from): a documentation address.
const FORMER_MX_IP: &str = "203.0.113.25";
/// Days of reports fed in.
const REPORT_DAYS: i64 = 30;
/// How long the dashboard may take to answer after the start.
const DASHBOARD_DEADLINE: Duration = Duration::from_secs(30);
/// Reports POSTed at once (the intake commits them in groups).
const INGEST_CONCURRENCY: usize = 16;
/// The dashboard user.
const USER: &str = "demo";
/// How long the demo waits for the alerts its stories imply (`[alerts] evaluate_interval`
/// is 5 s in the demo).
const ALERTS_WAIT: Duration = Duration::from_secs(20);

/// Runs the demo.
pub fn run(c: Demo) -> anyhow::Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Ctrl-C at any moment ends the demo with its temporary directory removed: while it
    // serves, `demo` stops stsward serve and the lab in order; before that, dropping its
    // future drops them and the directory.
    rt.block_on(async {
        let (tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        let serving = Arc::new(AtomicBool::new(false));
        let mut early = stop.clone();
        let orderly = serving.clone();
        tokio::select! {
            outcome = demo(c, stop, serving) => outcome,
            _ = async move {
                let _ = early.wait_for(|s| *s).await;
                if orderly.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            } => {
                eprintln!("stsward demo: interrupted while starting");
                Ok(Outcome::Success)
            }
        }
    })
}

fn say(c: &Demo, line: &str) {
    if !c.headless {
        eprintln!("stsward demo: {line}");
    }
}

/// What one domain came to.
struct DomainResult {
    domain: &'static DemoDomain,
    mode: String,
    verdict: String,
    findings: Vec<CheckFinding>,
    readiness: Value,
    alerts: Vec<String>,
    generated: (usize, u64, u64),
    stored: (u64, u64),
}

async fn demo(
    c: Demo,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
    waiting: Arc<AtomicBool>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    say(
        &c,
        "starting a lab world and stsward serve on loopback (no internet needed)",
    );
    let temp = match &c.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("stsward-demo-")
                .tempdir()
                .context("creating a temporary directory")?,
        ),
    };
    let dir: PathBuf = match (&c.dir, &temp) {
        (Some(d), _) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => anyhow::bail!("no directory"),
    };
    let db = dir.join("stsward.db");
    if db.exists() {
        anyhow::bail!(
            "{} exists: the demo starts from an empty store (choose another --dir)",
            db.display()
        );
    }
    let now = time::OffsetDateTime::now_utc();
    let at = now.unix_timestamp();

    // 1. The hosted domains, with their history, in a fresh store.
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .context("opening the demo's SQLite store")?;
    let hosting: ServeConfig = format!(
        "[hosting]\nzone = \"{}\"\npolicy_host = \"{}\"\n",
        world::ZONE,
        world::POLICY_HOST
    )
    .parse()
    .context("the demo's [hosting]")?;
    let service = DomainService::new(store.clone(), hosting.hosting, None);
    let oldest = DOMAINS.iter().map(|d| d.added_at(at)).min().unwrap_or(at);
    let tenant = service
        .default_tenant(oldest)
        .await
        .context("the default tenant")?;
    let mut ids = Vec::new();
    for d in &DOMAINS {
        host(&service, &store, tenant, d, at).await?;
        let shown = service.show(tenant, d.name, at).await?;
        ids.push(shown.current.sts_id.clone());
    }

    // 2. The lab: DNS with the customers' records, their MX hosts with their faults.
    let scenario: Scenario = world::scenario(&ids, POLICY_IP)
        .parse()
        .context("the demo's lab scenario")?;
    let lab = Lab::start(&scenario, &LabOptions::new(dir.join("lab"), now))
        .await
        .context("starting the lab")?;

    // 3. stsward serve, its certificate from the lab's root.
    let mut names: Vec<String> = DOMAINS
        .iter()
        .map(|d| format!("mta-sts.{}", d.name))
        .collect();
    names.push(world::POLICY_HOST.to_owned());
    let cert = lab
        .issue(&names)
        .context("issuing the policy host's certificate")?;
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.chain_pem()).context("writing cert.pem")?;
    std::fs::write(&key_file, cert.key_pem()).context("writing key.pem")?;
    let token = stsward_server::auth::token::generate().context("an API token")?;
    let config_text = world::config(
        &world::LabPoints {
            resolver: lab.resolver_addr(),
            ca_file: lab.ca_file(),
            smtp_port: lab.smtp_port(),
            https_port: lab.https_port(),
        },
        &world::ServePoints {
            policy_ip: POLICY_IP,
            api: c.listen,
            token: &token.token,
            cert_file: &cert_file,
            key_file: &key_file,
            db: &db,
        },
    );
    std::fs::write(dir.join("stsward.toml"), &config_text).context("writing stsward.toml")?;
    let config: ServeConfig = config_text.parse().context("the demo's stsward.toml")?;
    let dns = Dns::new(&DnsConfig {
        server: Some(lab.resolver_addr()),
        ..DnsConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("a DNS client for the lab: {e}"))?;
    let runtime = Runtime::start(
        config.clone(),
        ServeOptions {
            dns: Some(dns),
            ..ServeOptions::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "starting stsward serve (is {} free? choose another with --listen)",
            c.listen
        )
    })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(runtime.run(async {
        let _ = stopped.await;
    }));

    // 4. The checks, as the dashboard's "Run a check now" runs them.
    say(&c, "checking the domains");
    let runner = CheckRunner::new(&config.checks).context("the checker")?;
    let checks = futures::future::join_all(DOMAINS.iter().map(|d| {
        let (runner, store) = (&runner, &store);
        async move {
            let slot = runner
                .try_start(tenant)
                .map_err(|_| anyhow::anyhow!("{}: no place for a check", d.name))?;
            let outcome = runner
                .run(slot, store, tenant, d.name)
                .await?
                .with_context(|| format!("{}: not hosted", d.name))?;
            anyhow::Ok(outcome.run)
        }
    }))
    .await;

    // 5. A month of reports from four senders, from what those deliveries gave.
    say(
        &c,
        "four sending organisations POST a month of TLS-RPT reports to the HTTPS intake",
    );
    let today = at.div_euclid(DAY);
    let mut results = Vec::new();
    let mut generated_all = Vec::new();
    for (d, check) in DOMAINS.iter().zip(checks) {
        let check = check?;
        let findings: Vec<CheckFinding> = serde_json::from_str(&check.findings)
            .with_context(|| format!("{}: the stored findings", d.name))?;
        let shown = service.show(tenant, d.name, at).await?;
        let t = domain_traffic(d, &findings, &shown.history, &lab, at);
        let reports = if d.tlsrpt {
            let first = (today - REPORT_DAYS).max(d.added_at(at).div_euclid(DAY));
            traffic::reports(&t, first, today - 1)
        } else {
            Vec::new()
        };
        let generated = (
            reports.len(),
            reports.iter().map(|g| g.successful).sum(),
            reports.iter().map(|g| g.failed).sum(),
        );
        generated_all.extend(reports);
        results.push(DomainResult {
            domain: d,
            mode: shown.current.mode.clone(),
            verdict: check.verdict.clone(),
            findings,
            readiness: Value::Null,
            alerts: Vec::new(),
            generated,
            stored: (0, 0),
        });
    }
    let poster = senders::Poster::new(
        SocketAddr::from((POLICY_IP, lab.https_port())),
        &config.intake_https.path,
        &std::fs::read(lab.ca_file()).context("the lab's root CA")?,
    )?;
    let stored = deliver(&poster, &generated_all).await?;
    record_fetches(&store, at).await?;

    // 6. The dashboard and its one-time login.
    let password = one_time_password()?;
    store
        .user_create(&NewUser {
            tenant: None,
            name: USER.into(),
            password_hash: stsward_server::auth::password::hash(&password)
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?,
            role: Role::Admin,
            created_at: at,
        })
        .await
        .context("creating the dashboard user")?;
    say(&c, "waiting for the alert rules' first evaluation");
    let mut alerts = open_alerts(&store, tenant).await?;
    let answered = dashboard_answers(c.listen, started).await;

    // 7. What it all came to.
    for r in &mut results {
        let readiness = stsward_server::readiness::gather::readiness(
            &store,
            tenant,
            r.domain.name,
            at,
            &config.readiness,
        )
        .await?;
        r.readiness = serde_json::to_value(&readiness)?;
        let summary = store
            .reports_summary(&SummaryQuery {
                scope: ReportScope::Tenant(tenant),
                domain: Some(r.domain.name.to_owned()),
                since: 0,
                until: None,
            })
            .await?;
        r.stored = (summary.successful, summary.failed);
        r.alerts = alerts.remove(r.domain.name).unwrap_or_default();
    }
    let url = format!("http://{}/", c.listen);
    let summary = summary_json(
        &results,
        &url,
        &password,
        stored,
        generated_all.len(),
        answered,
    );
    let as_expected = summary["as_expected"].as_bool().unwrap_or(false);

    if c.headless {
        if c.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print_text(&results, &url, &password, answered, temp.is_some());
        }
    } else {
        print_text(&results, &url, &password, answered, temp.is_some());
        println!(
            "\nEverything lives in {}{}.\nPress Ctrl-C to stop.",
            dir.display(),
            if temp.is_some() {
                " and is deleted when the demo stops"
            } else {
                " (kept: --dir)"
            }
        );
        waiting.store(true, Ordering::SeqCst);
        let _ = interrupt.wait_for(|s| *s).await;
        eprintln!("stsward demo: stopping");
    }
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), serving).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("stsward demo: stsward serve stopped with an error: {e}"),
        Ok(Err(e)) => eprintln!("stsward demo: stsward serve failed: {e}"),
        Err(_) => eprintln!("stsward demo: stsward serve did not stop within 10 s"),
    }
    lab.shutdown().await;
    drop(temp);
    Ok(if as_expected || !c.headless {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// Hosts `d` as it was added `added_days_ago` days ago, moves it to `enforce` when its story
/// says so, and turns on the watch of the customer's own `_mta-sts` TXT.
async fn host(
    service: &DomainService,
    store: &Store,
    tenant: TenantId,
    d: &DemoDomain,
    now: i64,
) -> anyhow::Result<()> {
    let add = AddDomain {
        domain: d.name.into(),
        mode: Some("testing".into()),
        mx: Some(MxInput::Patterns(vec![d.policy_mx.into()])),
        max_age: Some(604_800),
        follow_mx: false,
    };
    service
        .add(tenant, &add, "demo", d.added_at(now))
        .await
        .with_context(|| format!("hosting {}", d.name))?;
    if let Some(days) = d.enforce_days_ago {
        let change = PolicyChange {
            mode: Some("enforce".into()),
            note: Some("three weeks of clean reports".into()),
            ..PolicyChange::default()
        };
        service
            .set(tenant, d.name, &change, "demo", now - days * DAY)
            .await
            .with_context(|| format!("{}: to enforce", d.name))?;
    }
    store
        .domain_set_own_sts_txt(tenant, d.name, true, now)
        .await
        .with_context(|| format!("{}: watching its own TXT", d.name))?;
    Ok(())
}

/// What a delivery to `host` gives, by the check's findings: a failure whose finding code
/// has an RFC 8460 §4.3 result type (stsward-proto's one mapping), or an MX that no `mx`
/// pattern covers, which senders report as `validation-failure` ("a general failure for a
/// reason not matching a category above", RFC 8460 §4.3.1).
fn delivery(findings: &[CheckFinding], domain: &str, host: &str) -> Delivery {
    // In `testing` a failure is a warning (the mail still goes), in `enforce` an error.
    for f in findings
        .iter()
        .filter(|f| f.severity == "error" || f.severity == "warning")
    {
        let about = f.subject == host || f.subject.contains(domain);
        if !about {
            continue;
        }
        if f.code == "sts.mx.uncovered" && f.subject == host {
            return Delivery::Fails {
                result_type: "validation-failure".into(),
                reason: format!("{host} matches no mx pattern of the MTA-STS policy"),
            };
        }
        let rt = Code::from_str(&f.code)
            .ok()
            .and_then(Failure::for_code)
            .and_then(|failure| failure.result_type());
        if let Some(rt) = rt {
            return Delivery::Fails {
                result_type: rt.to_string(),
                reason: f.message.clone(),
            };
        }
    }
    Delivery::Ok
}

/// `d`'s mail over time: its policy versions, and its MX routes with what a delivery to each
/// gave now (the current MX) or gave before it moved (the old one delivered fine).
fn domain_traffic(
    d: &DemoDomain,
    findings: &[CheckFinding],
    history: &[stsward_store::PolicyVersion],
    lab: &RunningLab,
    now: i64,
) -> DomainTraffic {
    let mut policies: Vec<ServedPolicy> = history
        .iter()
        .map(|v| ServedPolicy {
            from_day: v.changed_at.div_euclid(DAY),
            text: v.policy.clone(),
            mx: v.mx.clone(),
        })
        .collect();
    policies.sort_by_key(|p| p.from_day);
    let added_day = d.added_at(now).div_euclid(DAY);
    let ip = |host: &str| {
        lab.host_addr(host)
            .map_or_else(|| FORMER_MX_IP.to_owned(), |a| a.to_string())
    };
    let mut routes = Vec::new();
    if let Some(old) = &d.old_mx {
        routes.push(Route {
            host: old.host.into(),
            ip: FORMER_MX_IP.into(),
            from_day: added_day,
            delivery: Delivery::Ok,
        });
    }
    routes.push(Route {
        host: d.mx.host.into(),
        ip: ip(d.mx.host),
        from_day: d
            .mx_moved_days_ago
            .map_or(added_day, |days| (now - days * DAY).div_euclid(DAY)),
        delivery: delivery(findings, d.name, d.mx.host),
    });
    DomainTraffic {
        domain: d.name.into(),
        daily_sessions: d.daily_sessions,
        policies,
        routes,
    }
}

/// Every generated report POSTed to stsward's HTTPS intake by its sender (RFC 8460 §5.4);
/// returns how many were stored (201) — a 200 is a duplicate, anything else an error.
async fn deliver(
    poster: &senders::Poster,
    reports: &[traffic::Generated],
) -> anyhow::Result<usize> {
    let outcomes: Vec<anyhow::Result<usize>> = futures::stream::iter(reports)
        .map(|g| async move {
            let json = serde_json::to_vec(&g.json)?;
            let status = poster
                .post(&format!("mta-sts.{}", g.domain), &json)
                .await
                .with_context(|| format!("{}'s report for {}", g.org, g.domain))?;
            match status.as_u16() {
                201 => Ok(1),
                200 => Ok(0),
                other => anyhow::bail!(
                    "{}'s report for {}: the intake answered {other}",
                    g.org,
                    g.domain
                ),
            }
        })
        .buffer_unordered(INGEST_CONCURRENCY)
        .collect()
        .await;
    outcomes.into_iter().sum()
}

/// The senders' policy fetches since each domain was added: every organisation fetches
/// each policy a few times a day from its network (RFC 8461 §3.3), counted per day.
async fn record_fetches(store: &Store, now: i64) -> anyhow::Result<()> {
    let today = now.div_euclid(DAY);
    let mut rows = Vec::new();
    for d in &DOMAINS {
        for day in d.added_at(now).div_euclid(DAY)..today {
            for org in &ORGS {
                rows.push(FetchRow {
                    domain: d.name.into(),
                    day,
                    network: org.network.into(),
                    fetches: 1 + (day + org.share as i64).rem_euclid(3),
                });
            }
        }
    }
    store
        .policy_fetches_add(&rows)
        .await
        .context("recording policy fetches")?;
    Ok(())
}

/// Waits, at most [`ALERTS_WAIT`], until every alert rule the domains' stories imply is open
/// (the engine in `stsward serve` evaluates them on its own schedule); returns the open
/// rules by domain, whatever they are by then.
async fn open_alerts(
    store: &Store,
    tenant: TenantId,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let deadline = Instant::now() + ALERTS_WAIT;
    loop {
        let mut open: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for a in store.alert_list(tenant, None, true, 500).await? {
            open.entry(a.domain).or_default().push(a.rule);
        }
        let complete = DOMAINS.iter().all(|d| {
            d.expected.alerts.iter().all(|rule| {
                open.get(d.name)
                    .is_some_and(|r| r.iter().any(|x| x == rule))
            })
        });
        if complete || Instant::now() >= deadline {
            for rules in open.values_mut() {
                rules.sort();
                rules.dedup();
            }
            return Ok(open);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// 24 hex digits from the system's CSPRNG.
fn one_time_password() -> anyhow::Result<String> {
    let token = stsward_server::auth::token::generate().context("the system random source")?;
    let t = &token.token;
    Ok(t.get(t.len().saturating_sub(24)..).unwrap_or(t).to_owned())
}

/// Waits until `GET /login` on the dashboard answers 200; returns the time since the demo
/// started, or `None` when it did not answer by [`DASHBOARD_DEADLINE`].
async fn dashboard_answers(addr: SocketAddr, started: Instant) -> Option<Duration> {
    while started.elapsed() < DASHBOARD_DEADLINE {
        if get_status(addr, "/login").await == Some(200) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The status of a plain HTTP/1.1 `GET path` at `addr`, within two seconds.
async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let exchange = async {
        let mut sock = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await.ok()?;
        let mut head = vec![0u8; 64];
        let n = sock.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

fn readiness_verdict(r: &DomainResult) -> &str {
    r.readiness["verdict"].as_str().unwrap_or("")
}

fn findings_of(r: &DomainResult, severities: &[&str]) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| severities.contains(&f.severity.as_str()))
        .map(|f| format!("{} ({})", f.code, f.subject))
        .collect()
}

fn summary_json(
    results: &[DomainResult],
    url: &str,
    password: &str,
    stored: usize,
    generated: usize,
    answered: Option<Duration>,
) -> Value {
    let domains: Vec<Value> = results
        .iter()
        .map(|r| {
            let failing: Vec<&str> = r.readiness["criteria"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter(|c| c["passed"] == false)
                        .filter_map(|c| c["code"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "domain": r.domain.name,
                "story": r.domain.story,
                "mode": r.mode,
                "check": {
                    "verdict": r.verdict,
                    "problems": findings_of(r, &["error", "warning"]),
                    "notes": findings_of(r, &["info"]),
                },
                "readiness": {
                    "verdict": readiness_verdict(r),
                    "failing": failing,
                    "next_step": r.readiness["next_step"],
                },
                "alerts": r.alerts,
                "expected": {
                    "verdict": r.domain.expected.verdict,
                    "readiness": r.domain.expected.readiness,
                    "alerts": r.domain.expected.alerts,
                },
                "as_expected": r.verdict == r.domain.expected.verdict
                    && readiness_verdict(r) == r.domain.expected.readiness
                    && r.domain.expected.alerts.iter().all(|a| r.alerts.iter().any(|x| x == a)),
                "reports": {
                    "generated": r.generated.0,
                    "generated_successful": r.generated.1,
                    "generated_failed": r.generated.2,
                    "stored_successful": r.stored.0,
                    "stored_failed": r.stored.1,
                },
            })
        })
        .collect();
    let totals_match = results
        .iter()
        .all(|r| (r.generated.1, r.generated.2) == r.stored);
    let as_expected = domains.iter().all(|d| d["as_expected"] == true)
        && totals_match
        && stored == generated
        && answered.is_some();
    json!({
        "dashboard": {
            "url": url,
            "user": USER,
            "password": password,
            "answered_after_ms": answered.map(|d| d.as_millis() as u64),
        },
        "reports": {
            "generated": generated,
            "stored": stored,
            "organizations": ORGS.iter().map(|o| o.name).collect::<Vec<_>>(),
            "totals_match": totals_match,
        },
        "domains": domains,
        "as_expected": as_expected,
    })
}

fn print_text(
    results: &[DomainResult],
    url: &str,
    password: &str,
    answered: Option<Duration>,
    temporary: bool,
) {
    println!();
    for r in results {
        println!(
            "  {:<15} {:<8} check {:<8} readiness {:<10} {}",
            r.domain.name,
            r.mode,
            r.verdict,
            readiness_verdict(r),
            r.domain.story
        );
        if !r.alerts.is_empty() {
            println!("  {:<15} open alerts: {}", "", r.alerts.join(", "));
        }
    }
    println!();
    match answered {
        Some(d) => println!(
            "Dashboard: {url}  (answered {:.1} s after the start)",
            d.as_secs_f64()
        ),
        None => println!("Dashboard: {url}  (it did not answer within 30 s)"),
    }
    println!("Log in as: {USER}");
    if temporary {
        println!("Password:  {password}  (one-time: the demo's store is deleted when it stops)");
    } else {
        println!("Password:  {password}");
    }
}
