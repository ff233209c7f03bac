//! `stsward check` — wiring only: flags into a `CheckConfig`, results to the renderers of
//! `stsward-check`, the worst result into the exit status.
//!
//! `--timeout SECS` is the overall budget of one domain's check (20 s by default); the
//! checker derives every shorter timeout beneath it. In bulk mode each domain's line is
//! printed as soon as that domain is done (so lines come in the order domains finish; each
//! names its domain), and the summary follows the last one.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use stsward_check::render::{json, text};
use stsward_check::{
    BulkSummary, CheckConfig, CheckResult, Checker, EXIT_ERRORS, EXIT_NOT_RUN, exit_status,
};

use crate::Outcome;
use crate::command::{Check, Input, Net, Targets, validate_domain};

/// DNS answers come fast or not at all; a whole step timeout per query would make one dead
/// name server stall a check for the full step time several times over.
const MAX_DNS_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(c: Check) -> anyhow::Result<Outcome> {
    let cfg = config(&c)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let checker = match Checker::new(cfg) {
            Ok(ch) => ch,
            Err(e) => {
                eprintln!("stsward: {e}");
                return Ok(Outcome::CannotRun);
            }
        };
        match &c.targets {
            Targets::One(domain) => one(&checker, domain, &c).await,
            Targets::Many(input) => many(&checker, input, &c).await,
        }
    })
}

fn config(c: &Check) -> anyhow::Result<CheckConfig> {
    let net: &Net = &c.net;
    let mut cfg = CheckConfig {
        resolver: net.resolver,
        smtp_port: net.smtp_port,
        https_port: net.https_port,
        budget: net.timeout,
        dns_timeout: net.timeout.min(MAX_DNS_TIMEOUT),
        fetch_timeout: net.timeout,
        smtp_step_timeout: net.timeout,
        validate_dnssec: net.dnssec,
        probe_legacy_tls: net.legacy_probe,
        // Each domain has a few MX addresses; keep that many probes in flight per domain.
        concurrency: c.concurrency.saturating_mul(4).max(8),
        per_ip: c.per_ip,
        probe_cache: c.probe_cache,
        address_filter: c.address_filter.clone(),
        ..CheckConfig::default()
    };
    if let Some(path) = &net.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
        cfg.extra_roots = CheckConfig::roots_from_pem(&pem)
            .with_context(|| format!("--ca-file {}", path.display()))?;
    }
    if let Some(path) = &net.trust_anchors {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--trust-anchors {}", path.display()))?;
        cfg.trust_anchors = Some(text);
    }
    Ok(cfg)
}

async fn one(checker: &Checker, domain: &str, c: &Check) -> anyhow::Result<Outcome> {
    let result = checker
        .check_domain(domain, time::OffsetDateTime::now_utc())
        .await;
    let out = match (&result, c.json) {
        (Ok(report), true) => json::render(report),
        (Ok(report), false) => text::render(report, c.color),
        (Err(not_run), true) => json::render_not_run(not_run),
        (Err(not_run), false) => text::render_not_run(not_run, c.color),
    };
    print_out(&out)?;
    Ok(outcome(std::slice::from_ref(&result)))
}

async fn many(checker: &Checker, input: &Input, c: &Check) -> anyhow::Result<Outcome> {
    let bytes = match input.read() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("stsward: {}: cannot read: {e}", input.display_name());
            return Ok(Outcome::CannotRun);
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut domains = Vec::new();
    let mut bad = 0usize;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match validate_domain(line) {
            Ok(d) => domains.push(d),
            Err(e) => {
                bad += 1;
                eprintln!("stsward: {} line {}: {e:#}", input.display_name(), n + 1);
            }
        }
    }
    let bar = if c.progress {
        let bar = ProgressBar::new(domains.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} domains ({per_sec}, eta {eta})")
                .context("progress bar template")?,
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    // Each domain's line goes out as soon as it is done: a bulk run of thousands of domains
    // shows progress on a pipe, and a stuck domain (bounded by its budget) holds up no one.
    let mut write_error = None;
    let results = checker
        .check_many(domains, c.concurrency, time::OffsetDateTime::now_utc, |r| {
            let line = if c.json {
                json::render_line(r)
            } else {
                match r {
                    Ok(report) => format!("{}\n", text::verdict_line_plain(report)),
                    Err(not_run) => text::render_not_run(not_run, c.color),
                }
            };
            let printed = match &bar {
                Some(b) => {
                    b.inc(1);
                    b.suspend(|| print_out(&line))
                }
                None => print_out(&line),
            };
            if let Err(e) = printed {
                write_error.get_or_insert(e);
            }
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    let mut out = String::new();
    let summary = BulkSummary::of(&results);
    if c.json {
        out.push_str(&json::render_summary(&summary));
    } else {
        out.push_str(&text::render_summary(&summary));
    }
    print_out(&out)?;
    if bad > 0 {
        return Ok(Outcome::CannotRun);
    }
    Ok(outcome(&results))
}

fn outcome(results: &[CheckResult]) -> Outcome {
    match exit_status(results) {
        EXIT_NOT_RUN => Outcome::CannotRun,
        EXIT_ERRORS => Outcome::Problems,
        _ => Outcome::Success,
    }
}

fn print_out(s: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(s.as_bytes())
        .context("writing to standard output")?;
    stdout.flush().context("writing to standard output")
}
