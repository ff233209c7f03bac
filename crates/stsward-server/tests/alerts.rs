//! Alerts end to end (issue 9, "Alert tests"), on SQLite and PostgreSQL: each rule's trigger,
//! made real in the store (reports through the intake, certificates, check runs, the
//! scheduler's TXT and MX outcomes), opens one alert that reaches a local SMTP sink (over
//! STARTTLS) and local webhooks (JSON and Slack-style) exactly once; it resolves when the
//! cause goes and fires again only after the cause has come back. The clock is an argument,
//! moved forward instead of slept. Two engines on one database send each alert once; failed
//! sends are retried and kept; sends are rate-limited per destination; scheduled checks run
//! once per interval; tenants see only their own alerts.

mod alerts_support;
mod api_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alerts_support::{Receiver, SmtpSink};
use api_support::send;
use stsward_server::alerts::{AlertEngine, AlertSettings, AlertSetup, destinations};
use stsward_server::api::{ApiLimits, ApiServer};
use stsward_server::checks::CheckRunner;
use stsward_server::config::{
    AlertSmtpSection, AlertsSection, ChecksSection, HostingSection, ServeConfig, WebhookFormat,
    WebhookSection,
};
use stsward_server::domains::{AddDomain, DomainService, MxInput};
use stsward_server::intake::{Channel, Outcome, ReportSink, StoreSink, Submission, SubmissionKind};
use stsward_server::serve::Clock;
use stsward_store::{CertState, NewCheckRun, Store, StoredCertificate, TenantId, TxtFlag};
use stsward_testkit::postgres::Postgres;

type Case = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const DAY: i64 = 86_400;
/// 2026-06-15 12:00:00 UTC.
const T0: i64 = 1_781_524_800;
const DOMAIN: &str = "alerted.test";
/// More than the evaluation interval of these tests: every step finds each domain due.
const STEP: i64 = 70;

async fn on_both(group: &str, case: Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
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

/// Ingests a report by `org` for the UTC day before `at`: `ok` successful sessions and
/// `failed` failures, detailed as `result_type` unless it is empty.
async fn report(store: &Store, id: &str, at: i64, ok: u64, failed: u64, result_type: &str) {
    let start = (at / DAY - 1) * DAY;
    let details = if failed > 0 && !result_type.is_empty() {
        format!(
            r#","failure-details":[{{"result-type":"{result_type}","receiving-mx-hostname":"mx1.alerted.test","failed-session-count":{failed}}}]"#
        )
    } else {
        String::new()
    };
    let raw = format!(
        r#"{{"organization-name":"sender.example","date-range":{{"start-datetime":"{}","end-datetime":"{}"}},"contact-info":"tlsrpt@sender.example","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"{DOMAIN}","mx-host":["mx1.alerted.test"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}}{details}}}]}}"#,
        date(start),
        date(start + DAY - 1),
    );
    let outcome = StoreSink::new(store.clone())
        .submit(Submission {
            channel: Channel::File,
            kind: SubmissionKind::Json,
            raw: raw.into_bytes().into(),
            received_at: at,
            peer: None,
            origin: "alerts test".into(),
            require_dkim: false,
        })
        .await
        .expect("submit");
    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
}

/// `(event, rule)` of a headline: "[stsward] alert: <domain> <rule>" or "[stsward] resolved: …".
fn headline(line: &str) -> (String, String) {
    let event = if line.contains("] resolved:") {
        "resolved"
    } else {
        "opened"
    };
    let rule = line.rsplit(' ').next().unwrap_or_default();
    (event.to_owned(), rule.to_owned())
}

/// The receivers, and the `[alerts]` section that points at them.
struct Sinks {
    smtp: SmtpSink,
    json: Receiver,
    slack: Receiver,
}

impl Sinks {
    async fn start() -> Sinks {
        Sinks {
            smtp: SmtpSink::start().await,
            json: Receiver::start().await,
            slack: Receiver::start().await,
        }
    }

    fn section(&self) -> AlertsSection {
        AlertsSection {
            evaluate_interval: 60,
            check_interval: 0,
            smtp: Some(AlertSmtpSection {
                relay: "localhost".into(),
                port: self.smtp.port,
                from: "stsward <alerts@provider.test>".into(),
                to: vec!["ops@provider.test".into()],
                user: None,
                password_file: None,
                ca_file: Some(self.smtp.ca_file.clone()),
                timeout: 10,
            }),
            webhooks: vec![
                WebhookSection {
                    name: "ops".into(),
                    url: self.json.url("/hooks/stsward"),
                    format: WebhookFormat::Json,
                },
                WebhookSection {
                    name: "chat".into(),
                    url: self.slack.url("/services/T0/B0/secret"),
                    format: WebhookFormat::Slack,
                },
            ],
            ..AlertsSection::default()
        }
    }

    /// Per destination, the `(event, rule)` notices received so far.
    fn notices(&self) -> [Vec<(String, String)>; 3] {
        let mails = self
            .smtp
            .mails()
            .into_iter()
            .map(|m| {
                assert!(m.tls, "mail only after STARTTLS");
                assert_eq!(m.rcpt, ["<ops@provider.test>"], "{m:?}");
                let subject = m.data.lines().find_map(|l| l.strip_prefix("Subject: "));
                headline(subject.unwrap_or_default())
            })
            .collect();
        let json = self
            .json
            .bodies()
            .into_iter()
            .map(|b| {
                assert_eq!(b["domain"], DOMAIN, "{b}");
                (
                    b["event"].as_str().unwrap_or_default().to_owned(),
                    b["rule"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let slack = self
            .slack
            .bodies()
            .into_iter()
            .map(|b| {
                let text = b["text"].as_str().unwrap_or_default();
                headline(text.lines().next().unwrap_or_default())
            })
            .collect();
        [mails, json, slack]
    }

    /// How many `(event, rule)` notices each destination has had.
    fn count(&self, event: &str, rule: &str) -> [usize; 3] {
        self.notices()
            .map(|n| n.iter().filter(|(e, r)| e == event && r == rule).count())
    }
}

/// `[alerts]` with the evaluation interval of these tests, no scheduled checks, and one JSON
/// webhook at `url` (none when `None`).
fn webhook_only(url: Option<String>) -> AlertsSection {
    AlertsSection {
        evaluate_interval: 60,
        check_interval: 0,
        webhooks: url
            .into_iter()
            .map(|url| WebhookSection {
                name: "ops".into(),
                url,
                format: WebhookFormat::Json,
            })
            .collect(),
        ..AlertsSection::default()
    }
}

/// Records a failed renewal of `domain`'s policy host certificate at `at`.
async fn fail_renewal(store: &Store, domain: &str, at: i64) {
    store
        .certificate_fail(&format!("mta-sts.{domain}"), "order failed", at)
        .await
        .expect("fail");
}

fn engine(store: &Store, section: &AlertsSection, holder: &str) -> AlertEngine {
    let settings = AlertSettings::from_config(section);
    AlertEngine::new(
        AlertSetup {
            store: store.clone(),
            runner: None,
            clock: Clock::system(),
            holder: holder.into(),
            destinations: Arc::new(destinations(section).expect("destinations")),
        },
        settings,
    )
}

/// One evaluation and one send round at `now`.
async fn step(e: &AlertEngine, now: i64) {
    e.evaluate_round(now).await.expect("evaluate");
    let sent = e.deliver_round(now).await.expect("deliver");
    assert_eq!(sent.failed, 0, "{sent:?}");
}

async fn hosted(store: &Store, tenant_name: Option<&str>, domain: &str) -> (TenantId, i64) {
    let service = DomainService::new(store.clone(), HostingSection::default(), None);
    let tenant = match tenant_name {
        None => service.default_tenant(T0 - 40 * DAY).await.expect("tenant"),
        Some(name) => store.tenant_create(name, T0).await.expect("tenant").id,
    };
    let add = AddDomain {
        domain: domain.into(),
        mode: Some("testing".into()),
        mx: Some(MxInput::Patterns(vec![format!("mx1.{domain}")])),
        max_age: Some(604_800),
        follow_mx: false,
    };
    service
        .add(tenant, &add, "test", T0 - 40 * DAY)
        .await
        .expect("add");
    let id = store
        .hosted_domain_get(tenant, domain)
        .await
        .expect("get")
        .expect("hosted")
        .id;
    (tenant, id)
}

fn cert(state: CertState, not_after: i64, now: i64) -> StoredCertificate {
    StoredCertificate {
        name: format!("mta-sts.{DOMAIN}"),
        chain_pem: None,
        key: None,
        not_before: Some(not_after - 90 * DAY),
        not_after: Some(not_after),
        state,
        last_error: (state == CertState::Failed).then(|| "order failed: rateLimited".into()),
        updated_at: now,
    }
}

fn run(verdict: &str, findings: &[(&str, &str)], at: i64) -> NewCheckRun {
    let list: Vec<serde_json::Value> = findings
        .iter()
        .map(|(code, subject)| {
            serde_json::json!({"code": code, "severity": "warning", "subject": subject,
                "message": "seen by the test", "remedy": "", "reference": ""})
        })
        .collect();
    NewCheckRun {
        started_at: at,
        finished_at: at,
        verdict: verdict.into(),
        findings: serde_json::Value::Array(list).to_string(),
    }
}

/// What a trigger does to the store: make the cause, or take it away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Cause,
    Clear,
}

/// Makes or clears the cause of `rule` at `now`; returns the time to evaluate at.
async fn act(store: &Store, tenant: TenantId, domain_id: i64, rule: &str, a: Act, now: i64) -> i64 {
    let cause = a == Act::Cause;
    match rule {
        "txt-stale" => {
            let flag = if cause { TxtFlag::Set } else { TxtFlag::Clear };
            store
                .domain_check_record_txt(domain_id, now, "stale_id", "test", flag)
                .await
                .expect("txt");
        }
        "mx-drift" => {
            let outcome = if cause { "no_mx" } else { "in_step" };
            store
                .domain_check_record_mx(domain_id, now, outcome, "test", None)
                .await
                .expect("mx");
        }
        "cert-expiring" => {
            let left = if cause { 10 } else { 60 };
            store
                .certificate_put(&cert(CertState::Valid, now + left * DAY, now))
                .await
                .expect("cert");
        }
        "renewal-failed" => {
            if cause {
                store
                    .certificate_fail(
                        &format!("mta-sts.{DOMAIN}"),
                        "order failed: rateLimited",
                        now,
                    )
                    .await
                    .expect("fail");
            } else {
                store
                    .certificate_put(&cert(CertState::Valid, now + 60 * DAY, now))
                    .await
                    .expect("cert");
            }
        }
        "verdict-worse" => {
            let verdict = if cause { "error" } else { "ok" };
            store
                .check_run_add(tenant, DOMAIN, &run(verdict, &[], now), 100)
                .await
                .expect("run");
        }
        "success-rate" => {
            if cause {
                report(store, &format!("rate-{now}"), now, 50, 950, "").await;
            } else {
                // Two days on, the failing day is out of the two days measured.
                report(store, &format!("clean-{now}"), now + 2 * DAY, 5000, 0, "").await;
                return now + 2 * DAY;
            }
        }
        "new-failure-type" => {
            if cause {
                report(
                    store,
                    &format!("new-{now}"),
                    now,
                    5000,
                    2,
                    "certificate-expired",
                )
                .await;
            } else {
                // Out of "today or yesterday", it is no longer new (and is now seen before).
                report(store, &format!("later-{now}"), now + 3 * DAY, 5000, 0, "").await;
                return now + 3 * DAY;
            }
        }
        "reports-stopped" => {
            if cause {
                return now + 4 * DAY;
            }
            report(store, &format!("back-{now}"), now, 5000, 0, "").await;
        }
        other => panic!("no trigger for {other}"),
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trigger_fires_once_and_again_only_after_it_resolved() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let sinks = Sinks::start().await;
            let section = sinks.section();
            let e = engine(&store, &section, "replica-a");
            let (tenant, domain_id) = hosted(&store, None, DOMAIN).await;
            // A history of clean reports, a clean check and a long-lived certificate: no
            // rule is open to start with.
            let mut now = T0;
            for d in (1..=20).rev() {
                report(&store, &format!("base-{d}"), now - d * DAY, 5000, 0, "").await;
            }
            report(&store, "base-0", now, 5000, 0, "").await;
            store
                .check_run_add(tenant, DOMAIN, &run("ok", &[], now), 100)
                .await
                .expect("run");
            store
                .certificate_put(&cert(CertState::Valid, now + 60 * DAY, now))
                .await
                .expect("cert");
            store
                .domain_set_own_sts_txt(tenant, DOMAIN, true, now)
                .await
                .expect("own txt");
            e.seed(now).await.expect("seed");
            now += STEP;
            step(&e, now).await;
            assert!(
                sinks.notices().iter().all(Vec::is_empty),
                "nothing open at the start: {:?}",
                sinks.notices()
            );

            // Report-based triggers last: they move the clock by days.
            let rules = [
                "txt-stale",
                "mx-drift",
                "cert-expiring",
                "renewal-failed",
                "verdict-worse",
                "success-rate",
                "reports-stopped",
                "new-failure-type",
            ];
            for rule in rules {
                // Fires once at each destination ...
                now = act(&store, tenant, domain_id, rule, Act::Cause, now + STEP).await;
                step(&e, now).await;
                assert_eq!(sinks.count("opened", rule), [1, 1, 1], "{rule} opened");
                // ... and not again while the cause lasts.
                now += STEP;
                step(&e, now).await;
                assert_eq!(
                    sinks.count("opened", rule),
                    [1, 1, 1],
                    "{rule} deduplicated"
                );
                let open = store
                    .alert_list(tenant, Some(DOMAIN), true, 100)
                    .await
                    .expect("list");
                assert_eq!(
                    open.iter().filter(|a| a.rule == rule).count(),
                    1,
                    "{rule}: {open:?}"
                );
                // Resolves when the cause goes ...
                now = act(&store, tenant, domain_id, rule, Act::Clear, now + STEP).await;
                step(&e, now).await;
                assert_eq!(sinks.count("resolved", rule), [1, 1, 1], "{rule} resolved");
                assert_eq!(
                    sinks.count("opened", rule),
                    [1, 1, 1],
                    "{rule} not reopened"
                );
                // ... and fires again only when it comes back.
                if rule == "new-failure-type" {
                    // Not new again until 30 days without it.
                    now = act(&store, tenant, domain_id, rule, Act::Cause, now + STEP).await;
                    step(&e, now).await;
                    assert_eq!(
                        sinks.count("opened", rule),
                        [1, 1, 1],
                        "seen lately: not new"
                    );
                    now += 35 * DAY;
                }
                now = act(&store, tenant, domain_id, rule, Act::Cause, now + STEP).await;
                step(&e, now).await;
                assert_eq!(sinks.count("opened", rule), [2, 2, 2], "{rule} fired again");
                now = act(&store, tenant, domain_id, rule, Act::Clear, now + STEP).await;
                step(&e, now).await;
                assert_eq!(
                    sinks.count("resolved", rule),
                    [2, 2, 2],
                    "{rule} resolved again"
                );
                if rule == "reports-stopped" || rule == "new-failure-type" {
                    // Days passed: keep the reports flowing so that they do not stop.
                    report(&store, &format!("keep-{now}"), now, 5000, 0, "").await;
                }
            }
            let history = store
                .alert_list(tenant, Some(DOMAIN), false, 1000)
                .await
                .expect("list");
            for rule in rules {
                assert!(
                    history.iter().filter(|a| a.rule == rule).count() >= 2,
                    "{rule} opened twice: {history:?}"
                );
            }
            // The JSON body carries what docs/alerts.md says.
            let first = &sinks.json.bodies()[0];
            for key in [
                "event",
                "alert_id",
                "tenant",
                "domain",
                "rule",
                "key",
                "summary",
                "opened_at",
            ] {
                assert!(first.get(key).is_some(), "{key} in {first}");
            }
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_database_send_each_alert_once() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store_a = Store::open(&url).await.expect("open a");
            let store_b = Store::open(&url).await.expect("open b");
            let sinks = Sinks::start().await;
            let section = sinks.section();
            let a = engine(&store_a, &section, "replica-a");
            let b = engine(&store_b, &section, "replica-b");
            let (tenant, domain_id) = hosted(&store_a, None, DOMAIN).await;
            a.seed(T0).await.expect("seed");
            let mut now = T0;
            for round in 0..3 {
                let cause = if round % 2 == 0 {
                    TxtFlag::Set
                } else {
                    TxtFlag::Clear
                };
                store_a
                    .domain_set_own_sts_txt(tenant, DOMAIN, true, now)
                    .await
                    .expect("own txt");
                store_a
                    .domain_check_record_txt(domain_id, now, "stale_id", "test", cause)
                    .await
                    .expect("txt");
                now += STEP;
                // Both evaluate and send at once.
                let (ra, rb) = tokio::join!(
                    async {
                        a.evaluate_round(now).await.expect("a evaluates");
                        a.deliver_round(now).await.expect("a sends")
                    },
                    async {
                        b.evaluate_round(now).await.expect("b evaluates");
                        b.deliver_round(now).await.expect("b sends")
                    }
                );
                // Sends a lost claim would leave are picked up by whoever looks next.
                a.deliver_round(now).await.expect("a sends");
                b.deliver_round(now).await.expect("b sends");
                assert_eq!(ra.failed + rb.failed, 0);
            }
            assert_eq!(sinks.count("opened", "txt-stale"), [2, 2, 2]);
            assert_eq!(sinks.count("resolved", "txt-stale"), [1, 1, 1]);
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_with_backoff_and_never_dropped_silently() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let hook = Receiver::start().await;
            let section = AlertsSection {
                retry_base: 60,
                max_attempts: 3,
                ..webhook_only(Some(hook.url("/")))
            };
            let e = engine(&store, &section, "replica-a");
            let (tenant, _) = hosted(&store, None, DOMAIN).await;
            e.seed(T0).await.expect("seed");
            let mut now = T0;
            fail_renewal(&store, DOMAIN, now).await;
            hook.fail.store(2, Ordering::SeqCst);
            now += STEP;
            e.evaluate_round(now).await.expect("evaluate");
            let r = e.deliver_round(now).await.expect("deliver");
            assert_eq!((r.sent, r.failed), (0, 1), "first attempt fails");
            // Not due again before its delay (60 s) ...
            let r = e.deliver_round(now + 30).await.expect("deliver");
            assert_eq!((r.sent, r.failed), (0, 0), "waits for the retry time");
            let r = e.deliver_round(now + 60).await.expect("deliver");
            assert_eq!((r.sent, r.failed), (0, 1), "second attempt fails");
            // ... and the delay doubles.
            let r = e.deliver_round(now + 60 + 90).await.expect("deliver");
            assert_eq!((r.sent, r.failed), (0, 0), "doubled delay");
            let r = e.deliver_round(now + 60 + 120).await.expect("deliver");
            assert_eq!((r.sent, r.failed), (1, 0), "third attempt succeeds");
            assert_eq!(hook.bodies().len(), 1);

            // A destination that never answers well: kept as failed with its error.
            hook.fail.store(100, Ordering::SeqCst);
            store
                .certificate_put(&cert(CertState::Valid, now + 60 * DAY, now + 500))
                .await
                .expect("renewed");
            now += 500;
            e.evaluate_round(now).await.expect("evaluate: resolved");
            let mut at = now;
            for _ in 0..3 {
                e.deliver_round(at).await.expect("deliver");
                at += 1000;
            }
            let alerts = store
                .alert_list(tenant, Some(DOMAIN), false, 10)
                .await
                .expect("list");
            let renewal = alerts
                .iter()
                .find(|a| a.rule == "renewal-failed")
                .expect("the renewal alert");
            let deliveries = store
                .alert_deliveries_of(renewal.id)
                .await
                .expect("deliveries");
            let resolved = deliveries
                .iter()
                .find(|d| d.1 == "resolved")
                .expect("the resolution's send");
            assert_eq!(resolved.2, "failed", "{deliveries:?}");
            assert_eq!(resolved.3, 3, "three attempts");
            assert!(
                resolved.4.as_deref().unwrap_or_default().contains("500"),
                "the error is kept: {deliveries:?}"
            );
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_rate_limited_per_destination() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let hook = Receiver::start().await;
            let section = AlertsSection {
                max_per_hour: 1,
                ..webhook_only(Some(hook.url("/")))
            };
            let e = engine(&store, &section, "replica-a");
            let (tenant, domain_id) = hosted(&store, None, DOMAIN).await;
            e.seed(T0).await.expect("seed");
            let now = T0 + STEP;
            store
                .domain_set_own_sts_txt(tenant, DOMAIN, true, T0)
                .await
                .expect("own txt");
            store
                .domain_check_record_txt(domain_id, T0, "stale_id", "test", TxtFlag::Set)
                .await
                .expect("txt");
            fail_renewal(&store, DOMAIN, T0).await;
            let opened = e.evaluate_round(now).await.expect("evaluate");
            assert_eq!(opened.opened, 2);
            let r = e.deliver_round(now).await.expect("deliver");
            assert_eq!((r.sent, r.rate_limited), (1, 1), "one per hour");
            let r = e.deliver_round(now + 1800).await.expect("deliver");
            assert_eq!((r.sent, r.rate_limited), (0, 1), "still the same hour");
            let r = e.deliver_round(now + 3600).await.expect("deliver");
            assert_eq!((r.sent, r.rate_limited), (1, 0), "the next hour");
            assert_eq!(hook.bodies().len(), 2, "held back, not dropped");
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_alerts() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let section = webhook_only(None);
            let e = engine(&store, &section, "replica-a");
            let (mine, _) = hosted(&store, None, DOMAIN).await;
            let (theirs, _) = hosted(&store, Some("other"), "other.test").await;
            e.seed(T0).await.expect("seed");
            fail_renewal(&store, DOMAIN, T0).await;
            fail_renewal(&store, "other.test", T0).await;
            e.evaluate_round(T0 + STEP).await.expect("evaluate");
            let a = store.alert_list(mine, None, true, 10).await.expect("mine");
            let b = store
                .alert_list(theirs, None, true, 10)
                .await
                .expect("theirs");
            assert_eq!(
                a.iter().map(|x| x.domain.as_str()).collect::<Vec<_>>(),
                [DOMAIN]
            );
            assert_eq!(
                b.iter().map(|x| x.domain.as_str()).collect::<Vec<_>>(),
                ["other.test"]
            );
            // Naming another tenant's domain gives nothing.
            let cross = store
                .alert_list(mine, Some("other.test"), false, 10)
                .await
                .expect("cross");
            assert!(cross.is_empty(), "{cross:?}");
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_checks_run_once_per_interval_across_replicas() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            // A resolver that never answers (a closed port on loopback): each check ends
            // quickly as a stored run without reaching anything else.
            let resolver = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
            let checks = ChecksSection {
                resolver: Some(resolver.local_addr().expect("addr")),
                timeout: 1,
                ..ChecksSection::default()
            };
            let runner = Arc::new(CheckRunner::new(&checks).expect("runner"));
            let section = AlertsSection {
                check_interval: 600,
                ..AlertsSection::default()
            };
            let make = |holder: &str| {
                AlertEngine::new(
                    AlertSetup {
                        store: store.clone(),
                        runner: Some(runner.clone()),
                        clock: Clock::system(),
                        holder: holder.into(),
                        destinations: Arc::new(Vec::new()),
                    },
                    AlertSettings::from_config(&section),
                )
            };
            let (a, b) = (make("replica-a"), make("replica-b"));
            let (tenant, _) = hosted(&store, None, DOMAIN).await;
            let runs = || async {
                store
                    .check_run_list(tenant, DOMAIN, 100)
                    .await
                    .expect("runs")
                    .len()
            };
            // Seeded within the interval: by its end the domain is due once.
            let now = T0 + 600;
            a.seed(T0).await.expect("seed");
            let before = runs().await;
            let (ra, rb) = tokio::join!(a.check_round(now), b.check_round(now));
            let (ra, rb) = (ra.expect("a"), rb.expect("b"));
            assert_eq!(ra.domains + rb.domains, 1, "one replica checks it");
            assert_eq!(runs().await, before + 1, "and the run is stored");
            // Not again within the interval ...
            let r = a.check_round(now + 300).await.expect("a");
            assert_eq!(r.domains, 0);
            // ... and once more after it (plus the spread of up to a tenth).
            let r = b.check_round(now + 600 + 60).await.expect("b");
            assert_eq!(r.domains, 1);
            assert_eq!(runs().await, before + 2);
        })
    })
    .await;
}

const ADMIN: &str = "install-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_a_tenants_alerts_and_nothing_of_others() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let section = webhook_only(None);
            let e = engine(&store, &section, "replica-a");
            hosted(&store, None, DOMAIN).await;
            let (beta, _) = hosted(&store, Some("beta"), "beta.test").await;
            e.seed(T0).await.expect("seed");
            for name in [DOMAIN, "beta.test"] {
                fail_renewal(&store, name, T0).await;
            }
            e.evaluate_round(T0 + STEP).await.expect("evaluate");
            // Beta's token, made the way `stsward token add` makes one.
            let secret = stsward_server::auth::token::generate().expect("token");
            let new = stsward_store::NewToken {
                tenant: beta,
                name: "beta automation".into(),
                prefix: secret.prefix.clone(),
                digest: secret.digest.clone(),
                created_at: T0,
            };
            let beta_token: &'static str = Box::leak(secret.token.into_boxed_str());
            store.api_token_create(&new).await.expect("token");

            let service = DomainService::new(store.clone(), HostingSection::default(), None);
            let server = ApiServer::bind(
                &["127.0.0.1:0".parse().expect("addr")],
                ApiLimits::default(),
            )
            .expect("bind");
            let addr = server.addrs()[0];
            let cfg: ServeConfig = format!("[api]\ntoken = {ADMIN:?}\n")
                .parse()
                .expect("config");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server.run(service, cfg.api_token().expect("token"), async {
                let _ = stopped.await;
            }));
            let get = |token: &'static str, path: &'static str| async move {
                let head = if token.is_empty() {
                    Vec::new()
                } else {
                    vec![format!("Authorization: Bearer {token}")]
                };
                let mut tries = 0;
                loop {
                    let r = send(addr, "GET", path, &head, b"").await;
                    // The listener is bound already; the first calls may race its start.
                    if r.status != 0 || tries > 50 {
                        return r;
                    }
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            };
            let domains = |r: &api_support::Reply| -> Vec<String> {
                r.body["alerts"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| x["domain"].as_str().unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let r = get(ADMIN, "/api/v1/alerts").await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(domains(&r), [DOMAIN], "{r:?}");
            assert_eq!(r.body["alerts"][0]["rule"], "renewal-failed");
            let r = get(beta_token, "/api/v1/alerts?open=true&limit=10").await;
            assert_eq!(domains(&r), ["beta.test"], "{r:?}");
            let r = get(beta_token, "/api/v1/domains/beta.test/alerts").await;
            assert_eq!(
                (r.status, domains(&r)),
                (200, vec!["beta.test".to_owned()]),
                "{r:?}"
            );
            // Another tenant's domain is not found; bad queries are named; no token, no list.
            let r = get(beta_token, "/api/v1/domains/alerted.test/alerts").await;
            assert_eq!(r.status, 404, "{r:?}");
            let r = get(beta_token, "/api/v1/alerts?open=maybe").await;
            assert_eq!((r.status, r.field()), (400, Some("open")), "{r:?}");
            let r = get("", "/api/v1/alerts").await;
            assert_eq!(r.status, 401, "{r:?}");
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_evaluations_open_one_alert_and_one_claim_wins() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let (_, domain_id) = hosted(&store, None, DOMAIN).await;
            // Four replicas (a pool each) find the same cause at once.
            let mut syncs = tokio::task::JoinSet::new();
            for _ in 0..4 {
                let replica = Store::open(&url).await.expect("open");
                syncs.spawn(async move {
                    let cause = stsward_store::OpenCause {
                        rule: "txt-stale".into(),
                        key: String::new(),
                        summary: "stale".into(),
                    };
                    let to = ["webhook:ops".to_owned()];
                    replica
                        .alerts_sync(domain_id, &["txt-stale"], &[cause], &to, T0)
                        .await
                        .expect("sync")
                        .opened
                        .len()
                });
            }
            let mut opened = 0;
            while let Some(n) = syncs.join_next().await {
                opened += n.expect("task");
            }
            assert_eq!(opened, 1, "the unique key lets one replica open it");
            let due = store.alert_deliveries_due(T0, 10).await.expect("due");
            assert_eq!(due.len(), 1, "{due:?}");
            // Four replicas claim its send at once: one wins.
            let budget = stsward_store::SendBudget {
                max: 100,
                window: 3600,
            };
            let mut claims = tokio::task::JoinSet::new();
            for n in 0..4 {
                let replica = Store::open(&url).await.expect("open");
                let id = due[0].id;
                claims.spawn(async move {
                    replica
                        .alert_delivery_claim(
                            id,
                            "webhook:ops",
                            &format!("r{n}"),
                            T0,
                            T0 + 600,
                            budget,
                        )
                        .await
                        .expect("claim")
                });
            }
            let mut won = 0;
            while let Some(c) = claims.join_next().await {
                won += usize::from(c.expect("task") == stsward_store::DeliveryClaim::Claimed);
            }
            assert_eq!(won, 1, "one replica sends it");
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_checks_mx_findings_open_and_resolve_alerts() {
    on_both("stsward-server/alerts", |url| {
        Box::pin(async move {
            let store = Store::open(&url).await.expect("open");
            let e = engine(&store, &webhook_only(None), "replica-a");
            let (tenant, _) = hosted(&store, None, DOMAIN).await;
            e.seed(T0).await.expect("seed");
            const FOUND: &[(&str, &str)] = &[
                ("mx.cert.expiring", "mx1.alerted.test"),
                ("sts.mx.uncovered", "mx2.alerted.test"),
            ];
            let add =
                |verdict: &'static str, findings: &'static [(&'static str, &'static str)], at| {
                    let store = store.clone();
                    async move {
                        store
                            .check_run_add(tenant, DOMAIN, &run(verdict, findings, at), 100)
                            .await
                            .expect("run");
                    }
                };
            add("warning", &[], T0).await;
            add("warning", FOUND, T0 + 1).await;
            // A run that could not run does not hide the last one that did.
            add("not-run", &[], T0 + 2).await;
            e.evaluate_round(T0 + STEP).await.expect("evaluate");
            let keys = |alerts: Vec<stsward_store::Alert>| -> Vec<(String, String)> {
                let mut k: Vec<_> = alerts.into_iter().map(|a| (a.rule, a.key)).collect();
                k.sort();
                k
            };
            let open = store
                .alert_list(tenant, Some(DOMAIN), true, 10)
                .await
                .expect("list");
            assert_eq!(
                keys(open),
                [
                    ("cert-expiring".to_owned(), "mx:mx1.alerted.test".to_owned()),
                    (
                        "mx-drift".to_owned(),
                        "uncovered:mx2.alerted.test".to_owned()
                    ),
                ]
            );
            // The next check finds neither: both resolve.
            add("warning", &[], T0 + 3).await;
            e.evaluate_round(T0 + 2 * STEP).await.expect("evaluate");
            let open = store
                .alert_list(tenant, Some(DOMAIN), true, 10)
                .await
                .expect("list");
            assert!(open.is_empty(), "{open:?}");
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mail_goes_to_a_relay_without_starttls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
    let store = Store::open(&url).await.expect("open");
    let relay = SmtpSink::start_offering(false).await;
    let section = AlertsSection {
        smtp: Some(AlertSmtpSection {
            relay: "localhost".into(),
            port: relay.port,
            from: "alerts@provider.test".into(),
            to: vec!["ops@provider.test".into()],
            user: None,
            password_file: None,
            ca_file: Some(relay.ca_file.clone()),
            timeout: 10,
        }),
        ..webhook_only(None)
    };
    let e = engine(&store, &section, "replica-a");
    let (tenant, _) = hosted(&store, None, DOMAIN).await;
    e.seed(T0).await.expect("seed");
    fail_renewal(&store, DOMAIN, T0).await;
    e.evaluate_round(T0 + STEP).await.expect("evaluate");
    let r = e.deliver_round(T0 + STEP).await.expect("deliver");
    assert_eq!((r.sent, r.failed), (0, 1), "refused without STARTTLS");
    assert!(relay.mails().is_empty(), "nothing was sent in the clear");
    let alert = &store.alert_list(tenant, None, true, 1).await.expect("list")[0];
    let kept = store
        .alert_deliveries_of(alert.id)
        .await
        .expect("deliveries");
    assert_eq!(kept[0].2, "pending", "kept for a retry: {kept:?}");
    assert!(kept[0].4.is_some(), "with its error: {kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_answers_fails_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
    let store = Store::open(&url).await.expect("open");
    // Accepts connections and reads nothing, answers nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            open.push(tcp);
        }
    });
    let section = AlertsSection {
        webhook_timeout: 1,
        ..webhook_only(Some(format!("http://{addr}/hook")))
    };
    let e = engine(&store, &section, "replica-a");
    let (tenant, _) = hosted(&store, None, DOMAIN).await;
    e.seed(T0).await.expect("seed");
    fail_renewal(&store, DOMAIN, T0).await;
    e.evaluate_round(T0 + STEP).await.expect("evaluate");
    let started = std::time::Instant::now();
    let r = e.deliver_round(T0 + STEP).await.expect("deliver");
    assert_eq!((r.sent, r.failed), (0, 1));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let alert = &store.alert_list(tenant, None, true, 1).await.expect("list")[0];
    let kept = store
        .alert_deliveries_of(alert.id)
        .await
        .expect("deliveries");
    let error = kept[0].4.clone().unwrap_or_default();
    assert!(error.contains("no answer within"), "{error}");
    held.abort();
}
