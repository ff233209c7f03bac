//! `stsward lab up` — wiring only; the lab lives in `stsward-lab`. Built only with the `lab`
//! feature, so that the shipped binary carries no test CA and no fault hosts.

use std::path::PathBuf;

use anyhow::Context;
use stsward_lab::{Lab, LabOptions, Scenario, generate_bulk};

use crate::Outcome;
use crate::command::LabUp;

pub fn up(c: LabUp) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(&c.scenario)
        .with_context(|| format!("reading scenario {}", c.scenario.display()))?;
    let mut scenario: Scenario = text
        .parse()
        .with_context(|| format!("scenario {}", c.scenario.display()))?;
    if let Some(n) = c.bulk {
        scenario = generate_bulk(n, &scenario);
    }
    let dir = c.dir.unwrap_or_else(default_dir);
    let mut opts = LabOptions::new(&dir, time::OffsetDateTime::now_utc());
    opts.dns_port = c.dns_port;
    opts.smtp_port = c.smtp_port;
    opts.https_port = c.https_port;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let lab = Lab::start(&scenario, &opts)
            .await
            .context("starting the lab")?;
        println!("stsward lab is up. Check its domains with:");
        println!("  stsward check DOMAIN {}", lab.describe().trim_end());
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        lab.shutdown().await;
        Ok(Outcome::Success)
    })
}

fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("stsward-lab-{}", std::process::id()))
}
