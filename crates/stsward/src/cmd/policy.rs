//! `stsward policy lint` — an MTA-STS policy file (RFC 8461 §3.2) linted the way senders read
//! it, as text or JSON.

use anyhow::Context;
use owo_colors::OwoColorize;
use serde_json::json;
use stsward_proto::finding::{Severity, verdict};
use stsward_proto::mta_sts::policy::{Lint, lint as lint_policy};

use crate::Outcome;
use crate::command::PolicyLint;

pub fn lint(c: &PolicyLint) -> anyhow::Result<Outcome> {
    let name = c.input.display_name();
    let bytes = match c.input.read() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("stsward: {name}: cannot read: {e}");
            return Ok(Outcome::CannotRun);
        }
    };
    let result = lint_policy(&bytes);
    let worst = verdict(&result.findings);
    if c.json {
        let doc = json!({
            "file": name,
            "verdict": worst,
            "accepted": result.policy.is_some(),
            "policy": result.policy.as_ref().map(|p| p.to_string()),
            "findings": result.findings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).context("serialising JSON")?
        );
    } else {
        print!("{}", render_text(&name, &result, worst, c.color));
    }
    Ok(if worst == Severity::Error {
        Outcome::Problems
    } else {
        Outcome::Success
    })
}

fn render_text(name: &str, result: &Lint, worst: Severity, color: bool) -> String {
    use std::fmt::Write;

    use stsward_check::render::escape::escape;
    let mut s = String::new();
    // The policy may come from anyone (`curl … | stsward policy lint -`): escape what it
    // put into subjects and messages before it reaches a terminal.
    let name = escape(name);
    for f in &result.findings {
        let sev = paint(f.severity, color);
        let (subject, message) = (escape(&f.subject), escape(&f.message));
        let _ = writeln!(s, "{name}: {subject}: {sev} [{}] {message}", f.code);
        if !f.remedy.is_empty() && f.severity > Severity::Ok {
            let (remedy, reference) = (escape(&f.remedy), escape(&f.reference));
            let _ = writeln!(s, "    fix: {remedy} ({reference})");
        }
    }
    let count = |sev| result.findings.iter().filter(|f| f.severity == sev).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let accepted = if result.policy.is_some() {
        "senders will use this policy"
    } else {
        "senders will NOT use this policy"
    };
    let _ = writeln!(
        s,
        "{name}: {} — {errors} error(s), {warnings} warning(s); {accepted}",
        paint(worst, color)
    );
    s
}

fn paint(sev: Severity, color: bool) -> String {
    let text = sev.as_str();
    if !color {
        return text.to_owned();
    }
    match sev {
        Severity::Ok => text.green().to_string(),
        Severity::Info => text.blue().to_string(),
        Severity::Warning => text.yellow().bold().to_string(),
        Severity::Error => text.red().bold().to_string(),
    }
}
