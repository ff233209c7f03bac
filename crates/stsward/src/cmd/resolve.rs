//! `stsward resolve test` — wiring only: flags into the resolver's settings, one fresh
//! resolution (no daemon, no cache), and what Postfix would be told, as text or JSON.

use std::sync::Arc;

use anyhow::Context;
use stsward_check::render::escape::escape;
use stsward_resolver::config::EngineSettings;
use stsward_resolver::dane::DaneLevel;
use stsward_resolver::source::{NetSettings, NetSource, roots_from_pem};
use stsward_resolver::{Engine, Explained, FailureAnswer, MemoryPersist, system_clock};

use crate::Outcome;
use crate::command::ResolveTest;

pub fn test(c: &ResolveTest) -> anyhow::Result<Outcome> {
    let mut net = NetSettings {
        resolver: c.resolver,
        https_port: c.https_port,
        dnssec: c.dnssec,
        fetch_timeout: c.timeout,
        ..NetSettings::default()
    };
    if let Some(path) = &c.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
        net.extra_roots =
            roots_from_pem(&pem).with_context(|| format!("--ca-file {}", path.display()))?;
    }
    if let Some(path) = &c.trust_anchors {
        net.trust_anchors = Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--trust-anchors {}", path.display()))?,
        );
    }
    let mut settings = EngineSettings {
        dane_first: c.dane_first,
        dane_level: if c.dane_only {
            DaneLevel::DaneOnly
        } else {
            DaneLevel::Dane
        },
        ..EngineSettings::default()
    };
    settings.answer.tlsrpt_attributes = c.tlsrpt_attributes;
    settings.answer.on_failure = if c.temp_on_failure {
        FailureAnswer::Temp
    } else {
        FailureAnswer::NotFound
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let source = match NetSource::new(&net) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("stsward: {e}");
                return Ok(Outcome::CannotRun);
            }
        };
        let engine = Engine::new(
            settings,
            Arc::new(source),
            Arc::new(MemoryPersist::default()),
            system_clock(),
        );
        let explained = engine.test(&c.destination).await;
        if c.json {
            println!("{}", serde_json::to_string_pretty(&explained)?);
        } else {
            print!("{}", text(&explained));
        }
        Ok(Outcome::Success)
    })
}

/// The human form. Everything that came from the network is escaped: a policy or a DNS
/// message must not move the cursor of the reader's terminal.
fn text(x: &Explained) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "destination: {}\n",
        escape(x.destination.as_deref().unwrap_or(&x.key))
    ));
    out.push_str(&format!("postfix is told: {}\n", escape(&x.wire)));
    out.push_str(&format!("because: {}\n", escape(&x.answer.why)));
    out.push_str("steps:\n");
    for s in &x.steps {
        out.push_str(&format!("  - {}\n", escape(s)));
    }
    out
}
