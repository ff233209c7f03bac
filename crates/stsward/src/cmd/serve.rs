//! `stsward serve` — wiring only: read the configuration and the overrides, start
//! [`stsward_server::serve::Runtime`], and run it until SIGTERM or SIGINT.
//!
//! Exit status: 0 after a clean stop; 2 when the configuration is refused (the message names
//! the key), the store cannot be opened, a listener cannot be bound, or a role fails.

use std::time::Duration;

use anyhow::Context;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::serve::{Runtime, ServeOptions};

use crate::Outcome;
use crate::command::Serve;

pub fn run(c: Serve) -> anyhow::Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let loaded = crate::cmd::config::load(Some(&c.config))?;
    crate::cmd::config::log_overrides(&loaded);
    let mut config = loaded.value;
    if !c.https.is_empty() {
        config.listen.https = c.https;
    }
    if !c.http.is_empty() {
        config.listen.http = c.http;
    }
    if !c.dns.is_empty() {
        config.listen.dns = c.dns;
    }
    if let Some(url) = c.store {
        config.store.url = url;
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let dns = Dns::new(&DnsConfig {
            server: c.resolver,
            timeout: Duration::from_secs(3),
            attempts: 2,
            lookup_timeout: Duration::from_secs(10),
            dnssec: false,
            trust_anchors: None,
        })
        .ok();
        let key_file = config.keys.dnssec_key_file.clone();
        let runtime = Runtime::start(
            config,
            ServeOptions {
                dns,
                ..ServeOptions::default()
            },
        )
        .await
        .with_context(|| format!("starting from {}", c.config.display()))?;
        let started = runtime.started();
        if let (true, Some(path)) = (started.dnssec_key_created, &key_file) {
            tracing::info!(path = %path.display(), "created a new DNSSEC signing key");
        }
        if let Some(ds) = &started.ds_record {
            println!("{ds}");
        }
        runtime
            .run(shutdown_signal())
            .await
            .context("stsward serve")?;
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
