//! Human-readable output of a check, grouped by area
//!
//! ```text
//! example.test
//!
//! MTA-STS record  _mta-sts.example.test
//!   ok     sts.txt.ok           one v=STSv1 record: "v=STSv1; id=1;"
//! Policy  https://mta-sts.example.test/.well-known/mta-sts.txt
//!   error  sts.policy.redirect  https://… answered 301 redirecting to …
//!          fix: Serve the policy directly at …
//!          see: RFC 8461 §3.3
//! …
//! example.test: 2 errors, 1 warning — not ready for enforce
//! ```
//!
//! Every problem is followed by its remedy and reference; passing checks take one line.
//! Colour is used only when the caller asks for it (the CLI asks on a terminal).
//!
//! Every field is passed through [`escape`] on its way out (the painter escapes what it
//! paints, [`finding`] escapes what it writes plain), because subjects, messages and titles
//! carry text that the checked hosts chose: SMTP replies, certificate names, HTTP headers.

use std::fmt::Write as _;

use owo_colors::OwoColorize;
use stsward_proto::{Finding, Severity};

use super::Area;
use super::escape::escape;
use crate::error::NotRun;
use crate::observe::{AddressLookup, MxLookup};
use crate::report::{BulkSummary, CheckReport};

/// Room for the longest severity name, `warning`, and a space.
const LABEL_WIDTH: usize = 8;

/// Renders one report.
pub fn render(report: &CheckReport, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.bold(&report.domain));
    let width = report
        .findings
        .iter()
        .map(|f| f.code.as_str().len())
        .max()
        .unwrap_or(0);
    let obs = &report.observed;
    let of_area = |area: Area| -> Vec<&Finding> {
        report
            .findings
            .iter()
            .filter(|f| Area::of(f.code) == area)
            .collect()
    };

    let section = |out: &mut String, title: String, implied: Option<&str>, items: &[&Finding]| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{}", p.bold(&title));
        for f in items {
            finding(out, f, implied, width, &p);
        }
    };

    section(
        &mut out,
        format!("MTA-STS record  {}", obs.sts_txt.name),
        Some(&obs.sts_txt.name),
        &of_area(Area::StsRecord),
    );
    section(
        &mut out,
        format!("Policy  {}", obs.policy.url),
        Some(&obs.policy.host),
        &of_area(Area::Policy),
    );
    section(
        &mut out,
        "MX coverage".to_owned(),
        Some(&obs.domain),
        &of_area(Area::MxCoverage),
    );

    let host_findings = of_area(Area::MxHost);
    let mut shown: Vec<&str> = Vec::new();
    if let MxLookup::Answer { hosts } = &obs.mx {
        for h in hosts {
            let items: Vec<&Finding> = host_findings
                .iter()
                .copied()
                .filter(|f| f.subject == h.host)
                .collect();
            let addrs = match &h.addresses {
                AddressLookup::Answer { addresses } => addresses
                    .iter()
                    .map(|a| a.ip.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                AddressLookup::Failed(_) => "no address".to_owned(),
            };
            let title = format!("MX host {} (preference {}; {addrs})", h.host, h.preference);
            section(&mut out, title, Some(&h.host), &items);
            shown.push(&h.host);
        }
    }
    // Findings about hosts the observation does not list (none today; kept so that a
    // finding is never silently dropped from the output).
    let rest: Vec<&Finding> = host_findings
        .into_iter()
        .filter(|f| !shown.contains(&f.subject.as_str()))
        .collect();
    section(&mut out, "MX hosts".to_owned(), None, &rest);

    section(&mut out, "DANE".to_owned(), None, &of_area(Area::Dane));
    section(
        &mut out,
        format!("TLS-RPT record  {}", obs.tlsrpt_txt.name),
        Some(&obs.tlsrpt_txt.name),
        &of_area(Area::TlsRpt),
    );

    let _ = writeln!(out, "\n{}", verdict_line(report, &p));
    out
}

/// The one-line verdict, e.g. `example.test: 2 errors, 1 warning — not ready for enforce`.
pub fn verdict_line_plain(report: &CheckReport) -> String {
    verdict_line(report, &Painter { color: false })
}

fn verdict_line(report: &CheckReport, p: &Painter) -> String {
    let c = report.counts;
    let counted = match (c.error, c.warning) {
        (0, 0) => format!("no errors or warnings ({} checks passed)", c.ok),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    };
    let line = format!("{}: {counted} — {}", report.domain, report.readiness());
    p.severity(report.verdict, &line)
}

/// Renders a check that could not run.
pub fn render_not_run(not_run: &NotRun, color: bool) -> String {
    let p = Painter { color };
    format!("{}\n", p.severity(Severity::Error, &not_run.to_string()))
}

/// Renders the bulk summary line, e.g. `5 domains: 2 ok, 1 warning, 1 error, 1 not run`.
pub fn render_summary(summary: &BulkSummary) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (summary.ok, "ok"),
        (summary.info, "info"),
        (summary.warning, "warning"),
        (summary.error, "error"),
        (summary.not_run, "not run"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{}: {}\n",
        plural(summary.domains, "domain"),
        if parts.is_empty() {
            "nothing checked".to_owned()
        } else {
            parts.join(", ")
        }
    )
}

fn finding(out: &mut String, f: &Finding, implied: Option<&str>, width: usize, p: &Painter) {
    let label = format!("{:<LABEL_WIDTH$}", f.severity.as_str());
    let code = format!("{:<width$}", f.code.as_str());
    let message = if implied == Some(f.subject.as_str()) {
        escape(&f.message).into_owned()
    } else {
        format!("{}: {}", escape(&f.subject), escape(&f.message))
    };
    let _ = writeln!(out, "  {}{code}  {message}", p.severity(f.severity, &label));
    if f.severity > Severity::Ok {
        let indent = " ".repeat(2 + LABEL_WIDTH);
        if !f.remedy.is_empty() {
            let _ = writeln!(out, "{indent}{} {}", p.dim("fix:"), escape(&f.remedy));
        }
        let _ = writeln!(out, "{indent}{} {}", p.dim("see:"), escape(&f.reference));
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Applies colour only when asked, so that pipes and files get plain text. Escapes what it
/// paints first, so that its own colour codes are the only escape sequences in the output.
struct Painter {
    color: bool,
}

impl Painter {
    fn severity(&self, s: Severity, text: &str) -> String {
        let text = escape(text);
        if !self.color {
            return text.into_owned();
        }
        match s {
            Severity::Ok => text.green().to_string(),
            Severity::Info => text.cyan().to_string(),
            Severity::Warning => text.yellow().bold().to_string(),
            Severity::Error => text.red().bold().to_string(),
        }
    }

    fn bold(&self, text: &str) -> String {
        let text = escape(text);
        if self.color {
            text.bold().to_string()
        } else {
            text.into_owned()
        }
    }

    fn dim(&self, text: &str) -> String {
        let text = escape(text);
        if self.color {
            text.dimmed().to_string()
        } else {
            text.into_owned()
        }
    }
}
