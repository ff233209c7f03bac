//! `stsward domain add|import|list|show|set|remove|sync-mx|records|verify` — wiring only.
//!
//! The configuration file (or its defaults) and `--store` give the database, `--resolver`
//! the DNS server for MX lookups; [`stsward_server::domains::DomainService`] does the work,
//! as it will for the REST API. This file reads the clock, prints, and picks the exit status:
//! 0 done, 1 refused (invalid input, not hosted, already hosted, a version conflict; nothing
//! changed), 2 could not run (configuration, database, DNS).

use std::time::Duration;

use anyhow::Context;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::config::ReadinessSection;
use stsward_server::domains::import::ImportDefaults;
use stsward_server::domains::{
    CertificateLive, Change, DomainDetail, DomainError, DomainService, DomainSummary,
    FETCH_WINDOW_DAYS, RecordState, Records, Verification, format_time,
};
use stsward_server::readiness::{Readiness, Verdict};
use stsward_store::{DomainState, Store, StoreError, TenantId};

use crate::Outcome;
use crate::command::{Domain, DomainAction, Input};

/// Who the history says made a change from the command line.
const ACTOR: &str = "cli";

pub fn run(c: &Domain) -> anyhow::Result<Outcome> {
    let mut config = crate::cmd::config::load(c.config.as_deref())?.value;
    if let Some(url) = &c.store {
        config.store.url = url.clone();
    }
    // An import file is read before the store is opened: a missing file is reported at once.
    let import_text = match &c.action {
        DomainAction::Import(input, _) => Some(read_import(input)?),
        _ => None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&config.store.url)
            .await
            .context("opening the store (store.url or --store)")?;
        let dns = Dns::new(&DnsConfig {
            server: c.resolver,
            timeout: Duration::from_secs(3),
            attempts: 2,
            lookup_timeout: Duration::from_secs(10),
            // MX names only: no DANE here, so no validation to wait for.
            dnssec: false,
            trust_anchors: None,
        })
        .ok();
        let service = DomainService::new(store.clone(), config.hosting.clone(), dns);
        let result = match (&c.action, &import_text) {
            (DomainAction::Import(input, defaults), Some(text)) => {
                import(&service, c.json, text, defaults, now)
                    .await
                    .map_err(|e| (e, Some(input.display_name())))
            }
            _ => act(&service, c, now, &config.readiness)
                .await
                .map_err(|e| (e, None)),
        };
        store.close().await;
        match result {
            Ok(outcome) => Ok(outcome),
            Err((e, file)) => {
                match (&e, file) {
                    (DomainError::Import { errors, total }, Some(file)) => {
                        for err in errors {
                            eprintln!("{file}:{}: {}: {}", err.line, err.field, err.reason);
                        }
                        if *total > errors.len() {
                            eprintln!("{file}: … and {} more bad lines", total - errors.len());
                        }
                        eprintln!("stsward: {file}: {total} bad line(s); nothing was imported");
                    }
                    (_, Some(file)) => eprintln!("stsward: {file}: {}", chain(&e)),
                    (_, None) => eprintln!("stsward: {}", chain(&e)),
                }
                Ok(if refused(&e) {
                    Outcome::Problems
                } else {
                    Outcome::CannotRun
                })
            }
        }
    })
}

/// The error and its sources, as one line.
fn chain(e: &DomainError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether the request was refused (exit 1) rather than the command unable to run (exit 2).
fn refused(e: &DomainError) -> bool {
    match e {
        DomainError::Name(_)
        | DomainError::Invalid { .. }
        | DomainError::NotFound { .. }
        | DomainError::Removing { .. }
        | DomainError::NoMx { .. }
        | DomainError::Import { .. } => true,
        DomainError::Store(s) => matches!(
            s,
            StoreError::DomainTaken { .. }
                | StoreError::DomainNotFound { .. }
                | StoreError::VersionConflict { .. }
                | StoreError::TooLarge { .. }
                | StoreError::NulCharacter { .. }
        ),
        _ => false,
    }
}

/// The import file as text; a byte that is not UTF-8 is named by its line.
fn read_import(input: &Input) -> anyhow::Result<String> {
    let name = input.display_name();
    let bytes = input.read().with_context(|| format!("reading {name}"))?;
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..good].iter().filter(|b| **b == b'\n').count() + 1;
        anyhow::anyhow!("{name}:{line}: not UTF-8 text")
    })
}

/// `domain import`: hosts the file's domains, reports the skipped ones and the warnings.
async fn import(
    s: &DomainService,
    json: bool,
    text: &str,
    defaults: &ImportDefaults,
    now: i64,
) -> Result<Outcome, DomainError> {
    let tenant = s.default_tenant(now).await?;
    let imported = s.import(tenant, text, defaults, ACTOR, now).await?;
    for w in &imported.warnings {
        eprintln!(
            "warning: {} imported domain(s), from line {}: {}",
            w.domains, w.first_line, w.warning
        );
    }
    if json {
        print_json(&imported);
    } else {
        for skipped in &imported.skipped {
            println!(
                "line {}: {}: already hosted; skipped",
                skipped.line, skipped.domain
            );
        }
        println!(
            "{} domain(s) imported, {} already hosted and skipped",
            imported.added,
            imported.skipped.len()
        );
    }
    Ok(Outcome::Success)
}

async fn act(
    s: &DomainService,
    c: &Domain,
    now: i64,
    readiness: &ReadinessSection,
) -> Result<Outcome, DomainError> {
    let tenant = s.default_tenant(now).await?;
    if let DomainAction::Readiness(domain) = &c.action {
        let r =
            stsward_server::readiness::gather::readiness(s.store(), tenant, domain, now, readiness)
                .await?;
        if c.json {
            print_json(&r);
        } else {
            print!("{}", readiness_text(&r));
        }
        return Ok(if r.criteria.iter().all(|c| c.passed) {
            Outcome::Success
        } else {
            Outcome::Problems
        });
    }
    if let DomainAction::Verify(domain) = &c.action {
        let v = s.verify(tenant, domain).await?;
        if c.json {
            print_json(&v);
        } else {
            print!("{}", verify_text(&v));
        }
        return Ok(if v.all_in_place() {
            Outcome::Success
        } else {
            Outcome::Problems
        });
    }
    act_change(s, c, tenant, now)
        .await
        .map(|()| Outcome::Success)
}

async fn act_change(
    s: &DomainService,
    c: &Domain,
    tenant: TenantId,
    now: i64,
) -> Result<(), DomainError> {
    match &c.action {
        DomainAction::Add(add) => {
            let change = s.add(tenant, add, ACTOR, now).await?;
            print_change(c.json, "added", &change)
        }
        DomainAction::Set(domain, change, options) => {
            // Options first: they are validated and need no new version.
            if !options.is_empty() {
                let d = s.set_options(tenant, domain, options).await?;
                if !c.json {
                    println!(
                        "{}: follow mx {}, tlsrpt rua {}",
                        d.domain,
                        if d.follow_mx { "on" } else { "off" },
                        d.tlsrpt_rua.as_deref().unwrap_or("(the install's default)")
                    );
                    if let Some(own) = options.own_sts_txt {
                        println!(
                            "{}: own _mta-sts TXT {}",
                            d.domain,
                            if own {
                                "on (stsward serve watches its id)"
                            } else {
                                "off"
                            }
                        );
                    }
                }
            }
            if change.mode.is_none() && change.mx.is_none() && change.max_age.is_none() {
                if c.json {
                    print_json(&s.show(tenant, domain, now).await?);
                }
                return Ok(());
            }
            let change = s.set(tenant, domain, change, ACTOR, now).await?;
            print_change(c.json, "changed", &change)
        }
        DomainAction::SyncMx(domain) => {
            let change = s.sync_mx(tenant, domain, ACTOR, now).await?;
            print_change(c.json, "mx synchronised", &change)
        }
        DomainAction::Remove(domain) => {
            let change = s.remove(tenant, domain, ACTOR, now).await?;
            let detail = s.show(tenant, &change.domain, now).await?;
            if c.json {
                print_json(&serde_json::json!({
                    "domain": change.domain,
                    "version": change.version,
                    "state": detail.state,
                    "gone_at": detail.gone_at,
                }));
            } else {
                println!(
                    "{}: removing (RFC 8461 §8.3): serving mode none under id {} until {}, \
                     then gone",
                    change.domain,
                    change.version.sts_id,
                    detail.gone_at.map_or_else(|| "-".into(), format_time)
                );
            }
            Ok(())
        }
        DomainAction::List => {
            let list = s.list(tenant, now).await?;
            if c.json {
                print_json(&list);
            } else {
                print!("{}", list_text(&list));
            }
            Ok(())
        }
        DomainAction::Show(domain) => {
            let detail = s.show(tenant, domain, now).await?;
            if c.json {
                print_json(&detail);
            } else {
                print!("{}", show_text(&detail));
            }
            Ok(())
        }
        DomainAction::Records(domain) => {
            let records = s.records(tenant, domain).await?;
            if c.json {
                print_json(&records);
            } else {
                print!("{}", records_text(&records));
            }
            Ok(())
        }
        DomainAction::Verify(_) | DomainAction::Import(..) | DomainAction::Readiness(_) => Ok(()),
    }
}

fn readiness_text(r: &Readiness) -> String {
    let verdict = match r.verdict {
        Verdict::Ready => "ready for enforce",
        Verdict::NotReady => "not ready for enforce",
        Verdict::Enforcing => "in enforce",
    };
    let mut out = format!("{}: {verdict} (mode {})\n", r.domain, r.mode);
    for c in &r.criteria {
        let mark = if c.passed { "pass" } else { "FAIL" };
        out.push_str(&format!("  {mark}  {:<22} {}\n", c.code, c.evidence));
        if let Some(next) = &c.next_step {
            out.push_str(&format!("        {:<22} next: {next}\n", ""));
        }
    }
    if let Some(next) = &r.next_step {
        out.push_str(&format!("next step: {next}\n"));
    }
    out
}

fn verify_text(v: &Verification) -> String {
    let mut out = String::new();
    for r in &v.records {
        let line = match &r.state {
            RecordState::InPlace { how } => format!("in place  {}  ({how})", r.name),
            RecordState::Missing => format!("missing   {}  fix: publish {}", r.name, r.expected),
            RecordState::Wrong { found } => {
                format!(
                    "wrong     {}  found {found}; fix: publish {}",
                    r.name, r.expected
                )
            }
            RecordState::Unknown { why } => format!("unknown   {}  lookup failed: {why}", r.name),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let bad = v.records.iter().filter(|r| !r.state.is_in_place()).count();
    if bad == 0 {
        out.push_str(&format!("{}: every record is in place\n", v.domain));
    } else {
        out.push_str(&format!(
            "{}: {bad} of {} records need a fix\n",
            v.domain,
            v.records.len()
        ));
    }
    out
}

fn print_json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("stsward: cannot write JSON: {e}"),
    }
}

fn print_change(json: bool, verb: &str, change: &Change) -> Result<(), DomainError> {
    for w in &change.warnings {
        eprintln!("warning: {w}");
    }
    if json {
        print_json(change);
        return Ok(());
    }
    let v = &change.version;
    if change.changed {
        println!(
            "{}: {verb}: version {}, id {}",
            change.domain, v.version, v.sts_id
        );
    } else {
        println!(
            "{}: unchanged: version {}, id {}",
            change.domain, v.version, v.sts_id
        );
    }
    print!("{}", indent(&v.policy));
    Ok(())
}

fn indent(policy: &str) -> String {
    policy
        .lines()
        .map(|l| format!("    {}\n", l.trim_end_matches('\r')))
        .collect()
}

fn state_text(state: DomainState, gone_at: Option<i64>) -> String {
    match (state, gone_at) {
        (DomainState::Removing, Some(at)) => format!("removing (gone at {})", format_time(at)),
        (state, _) => state.to_string(),
    }
}

fn list_text(list: &[DomainSummary]) -> String {
    if list.is_empty() {
        return "no hosted domains\n".into();
    }
    let width = list
        .iter()
        .map(|d| d.domain.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:<width$}  {:<8}  {:>7}  {:<20}  STATE\n",
        "DOMAIN", "MODE", "VERSION", "ID"
    );
    for d in list {
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>7}  {:<20}  {}\n",
            d.domain,
            d.mode,
            d.version,
            d.id,
            state_text(d.state, d.gone_at)
        ));
    }
    out
}

fn show_text(d: &DomainDetail) -> String {
    let c = &d.current;
    let mut out = format!(
        "{}\n  state:    {}\n  version:  {}\n  id:       {}\n  mode:     {}\n  max_age:  {}\n  mx:       {}\n  follow mx: {}\n",
        d.domain.domain,
        state_text(d.state, d.gone_at),
        c.version,
        c.sts_id,
        c.mode,
        c.max_age,
        if c.mx.is_empty() {
            "-".into()
        } else {
            c.mx.join(", ")
        },
        if d.domain.follow_mx { "yes" } else { "no" },
    );
    match &d.certificate {
        Some(cert) => out.push_str(&format!(
            "  certificate: {} ({}{})\n",
            cert.state,
            cert.not_after
                .map_or_else(String::new, |t| format!("until {}", format_time(t))),
            cert.last_error
                .as_ref()
                .map_or_else(String::new, |e| format!("; last error: {e}"))
        )),
        None => out.push_str("  certificate: none yet\n"),
    }
    if let Some(live) = &d.certificate_live {
        out.push_str(&certificate_live_text(live));
    }
    out.push_str(&checks_text(d));
    out.push_str(&format!(
        "  policy fetches (last {FETCH_WINDOW_DAYS} days): {} from {} network{}\n",
        d.fetches.fetches,
        d.fetches.networks,
        if d.fetches.networks == 1 { "" } else { "s" }
    ));
    out.push_str("  policy served:\n");
    for line in c.policy.lines() {
        out.push_str(&format!("      {}\n", line.trim_end_matches('\r')));
    }
    out.push_str("  history (newest first):\n");
    for v in &d.history {
        out.push_str(&format!(
            "    v{} {} by {}: mode {}, max_age {}, mx {}, id {}{}\n",
            v.version,
            format_time(v.changed_at),
            v.changed_by,
            v.mode,
            v.max_age,
            if v.mx.is_empty() {
                "-".into()
            } else {
                v.mx.join(" ")
            },
            v.sts_id,
            v.note
                .as_ref()
                .map_or_else(String::new, |n| format!(" ({n})"))
        ));
    }
    out
}

/// The policy host's certificate as it is now (issuer, validity, renewal).
fn certificate_live_text(c: &CertificateLive) -> String {
    let mut out = format!("  certificate now: {}\n", c.summary);
    if let Some(issuer) = &c.issuer {
        out.push_str(&format!("    issuer: {issuer}\n"));
    }
    if let (Some(na), Some(days)) = (c.not_after, c.days_left) {
        out.push_str(&format!(
            "    not after: {} ({days} days left)\n",
            format_time(na)
        ));
    }
    if let Some(at) = c.renew_at {
        out.push_str(&format!(
            "    renewal: {} at {}\n",
            if c.renewal_due { "due since" } else { "due" },
            format_time(at)
        ));
    }
    out
}

/// What the scheduler of `stsward serve` found last: MX follow and the own TXT watch.
fn checks_text(d: &DomainDetail) -> String {
    let Some(c) = &d.checks else {
        return if d.domain.follow_mx {
            "  mx follow: not checked yet\n".into()
        } else {
            String::new()
        };
    };
    let mut out = String::new();
    if d.domain.follow_mx {
        match (c.mx_checked_at, &c.mx_outcome) {
            (Some(at), Some(outcome)) => out.push_str(&format!(
                "  mx follow: {outcome} at {}: {}\n",
                format_time(at),
                c.mx_detail.as_deref().unwrap_or("-")
            )),
            _ => out.push_str("  mx follow: not checked yet\n"),
        }
    }
    if let (Some(at), Some(warning)) = (c.mx_warning_at, &c.mx_warning) {
        out.push_str(&format!("  mx warning ({}): {warning}\n", format_time(at)));
    }
    if c.own_sts_txt {
        match (c.txt_checked_at, &c.txt_outcome) {
            (Some(at), Some(outcome)) => out.push_str(&format!(
                "  own _mta-sts TXT: {outcome} at {}: {}\n",
                format_time(at),
                c.txt_detail.as_deref().unwrap_or("-")
            )),
            _ => out.push_str("  own _mta-sts TXT: not checked yet\n"),
        }
        if let Some(since) = c.txt_flagged_since {
            out.push_str(&format!(
                "  FLAG: the own _mta-sts TXT has not carried the served id since {}\n",
                format_time(since)
            ));
        }
    }
    if let Some(due) = c.due_at
        && (d.domain.follow_mx || c.own_sts_txt)
    {
        let when = if due <= 0 {
            "at once".to_owned()
        } else {
            format_time(due)
        };
        out.push_str(&format!("  next check: {when}\n"));
    }
    out
}

fn records_text(r: &Records) -> String {
    let mut out = format!("; Records to publish in the zone of {}\n", r.domain);
    out.push_str("; the policy host (or, instead of the CNAME, the A/AAAA lines after it)\n");
    out.push_str(&format!("{}\n", r.policy_host.zone_line()));
    for a in &r.policy_host_addrs {
        out.push_str(&format!("; {}\n", a.zone_line()));
    }
    out.push_str("; the policy id, kept in step by stsward\n");
    out.push_str(&format!("{}\n", r.sts.zone_line()));
    out.push_str("; (or, to keep your own TXT, update it at every change:)\n");
    out.push_str(&format!("; {}\n", r.sts_txt.zone_line()));
    match &r.tlsrpt {
        Some(t) => {
            out.push_str("; TLS reports (RFC 8460)\n");
            out.push_str(&format!("{}\n", t.zone_line()));
        }
        None => out.push_str("; no TLS-RPT record: hosting.tlsrpt_rua is not set\n"),
    }
    let mut rows: Vec<(&str, &str, String)> = vec![(
        r.policy_host.name.as_str(),
        r.policy_host.rtype,
        r.policy_host.value.clone(),
    )];
    rows.extend(r.policy_host_addrs.iter().map(|a| {
        (
            a.name.as_str(),
            a.rtype,
            format!("{} (instead of the CNAME)", a.value),
        )
    }));
    rows.push((r.sts.name.as_str(), r.sts.rtype, r.sts.value.clone()));
    rows.push((
        r.sts_txt.name.as_str(),
        r.sts_txt.rtype,
        format!("{} (instead of the CNAME)", r.sts_txt.value),
    ));
    if let Some(t) = &r.tlsrpt {
        rows.push((t.name.as_str(), t.rtype, t.value.clone()));
    }
    let host_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    out.push('\n');
    out.push_str(&format!("{:<host_w$}  {:<5}  Value\n", "Host", "Type"));
    for (host, rtype, value) in rows {
        out.push_str(&format!("{host:<host_w$}  {rtype:<5}  {value}\n"));
    }
    out
}
