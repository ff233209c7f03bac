//! `stsward resolve test|serve|show|purge` — wiring only.
//!
//! - `test`: flags into the resolver's settings, one fresh resolution (no daemon, no cache),
//!   and what Postfix would be told, as text or JSON;
//! - `serve`: the configuration file plus flag overrides into `stsward_resolver::daemon`;
//! - `show`/`purge`: one request to a running daemon's admin endpoint.

use std::sync::Arc;

use anyhow::Context;
use stsward_check::render::escape::escape;
use stsward_resolver::config::EngineSettings;
use stsward_resolver::daemon::{ConfigSource, Daemon};
use stsward_resolver::dane::DaneLevel;
use stsward_resolver::source::{NetSettings, NetSource, roots_from_pem};
use stsward_resolver::{
    Engine, Explained, FailureAnswer, MemoryPersist, ResolverConfig, system_clock,
};

use crate::Outcome;
use crate::command::{ResolveAdmin, ResolveServe, ResolveTest};

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

/// `stsward resolve serve`.
pub fn serve(c: ResolveServe) -> anyhow::Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let path = c.config.clone();
    let overrides = move |cfg: &mut ResolverConfig| {
        if !c.listen.is_empty() {
            cfg.listen.tcp.clone_from(&c.listen);
        }
        if !c.unix.is_empty() {
            cfg.listen.unix.clone_from(&c.unix);
        }
        if let Some(admin) = c.admin {
            cfg.admin.listen = admin;
        }
        if let Some(store) = &c.store {
            cfg.cache.store = Some(store.clone());
        }
        if let Some(r) = c.resolver {
            cfg.dns.resolver = Some(r);
        }
        if let Some(ca) = &c.ca_file {
            cfg.fetch.ca_file = Some(ca.clone());
        }
        if let Some(port) = c.https_port {
            cfg.fetch.https_port = port;
        }
        if let Some(ta) = &c.trust_anchors {
            cfg.dns.trust_anchors = Some(ta.clone());
        }
        if c.tlsrpt_attributes {
            cfg.answer.tlsrpt_attributes = true;
        }
    };
    let source = ConfigSource {
        path,
        overrides: Arc::new(overrides),
        env: std::env::vars_os().collect(),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let daemon = match Daemon::bind(source).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("stsward: {e}");
                return Ok(Outcome::CannotRun);
            }
        };
        for ep in daemon.endpoints() {
            tracing::info!(endpoint = %ep, "socketmap listening");
        }
        if let Some(addr) = daemon.admin_addr() {
            tracing::info!(%addr, "admin endpoint listening (GET /metrics, /domains/NAME)");
        }
        daemon.run(shutdown_signal()).await;
        Ok(Outcome::Success)
    })
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// How long `show`/`purge` wait for the daemon.
const ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The largest admin answer read.
const ADMIN_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// `stsward resolve show|purge`: one HTTP/1.0 request to the admin endpoint.
pub fn admin(c: &ResolveAdmin) -> anyhow::Result<Outcome> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let domain = match stsward_resolver::key::normalize_key(&c.domain) {
        Ok(dest) => dest.domain,
        Err(e) => anyhow::bail!("{:?}: {e}", c.domain),
    };
    let method = if c.purge { "DELETE" } else { "GET" };
    let request = format!(
        "{method} /domains/{domain} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        c.admin
    );
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let raw = rt.block_on(async {
        tokio::time::timeout(ADMIN_TIMEOUT, async {
            let mut stream = tokio::net::TcpStream::connect(c.admin).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            stream.take(ADMIN_MAX_BYTES).read_to_end(&mut raw).await?;
            Ok::<_, std::io::Error>(raw)
        })
        .await
    });
    let raw = match raw {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => {
            eprintln!("stsward: admin endpoint {}: {e}", c.admin);
            return Ok(Outcome::CannotRun);
        }
        Err(_) => {
            eprintln!(
                "stsward: admin endpoint {}: no answer within {} s",
                c.admin,
                ADMIN_TIMEOUT.as_secs()
            );
            return Ok(Outcome::CannotRun);
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        eprintln!(
            "stsward: admin endpoint {} answered {}: {}",
            c.admin,
            escape(head.lines().next().unwrap_or("")),
            escape(body.trim())
        );
        return Ok(Outcome::CannotRun);
    }
    // JSON from the daemon: every string in it is JSON-escaped, so no control character.
    print!("{body}");
    Ok(Outcome::Success)
}
