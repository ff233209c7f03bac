//! `stsward config init|check`, and the one loader of `stsward.toml` that `serve`, `domain`,
//! `reports` and the access commands share: the file (or the defaults) with the environment's
//! overrides (docs/configuration.md).
//!
//! `init` exit status: 0 written, 2 not written. `check`: 0 valid, 1 invalid, 2 the file
//! cannot be read.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::json;
use stsward_config::{Invalid, Loaded, Origin, Problem, locate};
use stsward_server::config::{ConfigError, ENV_LAYERS, MAX_CONFIG_BYTES, ServeConfig, TEMPLATE};
use stsward_server::serve::preflight::{Finding, preflight};

use crate::Outcome;
use crate::cli::ConfigCommand;

/// `stsward.toml` at `path` (`None`: the defaults) with the process environment's overrides.
pub fn load(path: Option<&Path>) -> anyhow::Result<Loaded<ServeConfig>> {
    Ok(ServeConfig::load_layered(path, std::env::vars_os())?)
}

/// Logs the overrides applied and the variables that match no key (`serve`).
pub fn log_overrides(loaded: &Loaded<ServeConfig>) {
    for o in &loaded.applied {
        tracing::info!(variable = %o.var, key = %o.key, "configuration overridden by the environment");
    }
    for var in &loaded.unknown {
        tracing::warn!(variable = %var, "no such configuration key; the variable is ignored");
    }
}

pub fn run(c: ConfigCommand) -> anyhow::Result<Outcome> {
    match c {
        ConfigCommand::Init { out, force } => init(out.as_deref(), force),
        ConfigCommand::Check { file, json } => check(&file, json),
    }
}

/// Writes [`TEMPLATE`] to `out`, or prints it.
fn init(out: Option<&Path>, force: bool) -> anyhow::Result<Outcome> {
    let Some(path) = out else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(TEMPLATE.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing to standard output")?;
        return Ok(Outcome::Success);
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "stsward: {} exists; not overwritten (use --force to replace it)",
                path.display()
            );
            return Ok(Outcome::CannotRun);
        }
        Err(e) => return Err(e).with_context(|| format!("--out {}", path.display())),
    };
    file.write_all(TEMPLATE.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(Outcome::Success)
}

/// What `check` found, in the order it prints it.
struct Report {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    applied: Vec<stsward_config::Override>,
    unknown: Vec<String>,
}

/// Parses and validates `path` with the environment's overrides, then makes the checks of
/// `stsward serve`'s start.
fn check(path: &Path, json: bool) -> anyhow::Result<Outcome> {
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("stsward: {e:#}");
            return Ok(Outcome::CannotRun);
        }
    };
    let file = Some((path, text.as_str()));
    let report = match ServeConfig::load_layered(Some(path), std::env::vars_os()) {
        Ok(loaded) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let found = rt.block_on(async { preflight(&loaded.value, now) });
            let at = |f: Finding| {
                locate(
                    file,
                    &loaded.applied,
                    Invalid {
                        key: f.key.into(),
                        reason: f.reason,
                    },
                )
            };
            Report {
                errors: found.errors.into_iter().map(at).collect(),
                warnings: found.warnings.into_iter().map(at).collect(),
                applied: loaded.applied,
                unknown: loaded.unknown,
            }
        }
        Err(ConfigError::Layered(problem)) => {
            // Which overrides were there, even though the file was refused.
            let (applied, unknown) =
                ENV_LAYERS.applicable(&ServeConfig::keys()?, std::env::vars_os());
            Report {
                errors: vec![problem],
                warnings: Vec::new(),
                applied,
                unknown,
            }
        }
        Err(e) => {
            eprintln!("stsward: {e:#}");
            return Ok(Outcome::CannotRun);
        }
    };
    if json {
        print_json(path, &report)?;
    } else {
        print_text(path, &report)?;
    }
    Ok(if report.errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// The file, bounded like `serve` reads it.
fn read(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_CONFIG_BYTES,
        "{} is larger than {MAX_CONFIG_BYTES} bytes",
        path.display()
    );
    Ok(text)
}

fn print_text(path: &Path, r: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for o in &r.applied {
        writeln!(out, "environment: {} sets {}", o.var, o.key)?;
    }
    for var in &r.unknown {
        writeln!(out, "warning: {var}: no such key")?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for e in &r.errors {
        writeln!(out, "error: {e}")?;
    }
    match r.errors.len() {
        0 => writeln!(out, "{}: valid", path.display())?,
        1 => writeln!(out, "{}: invalid: 1 error", path.display())?,
        n => writeln!(out, "{}: invalid: {n} errors", path.display())?,
    }
    Ok(out.flush()?)
}

fn problem_json(p: &Problem) -> serde_json::Value {
    let (line, variable) = match &p.origin {
        Origin::File { line, .. } => (*line, None),
        Origin::Env { var } => (None, Some(var.as_str())),
        Origin::Defaults => (None, None),
    };
    json!({
        "key": p.key,
        "line": line,
        "variable": variable,
        "reason": p.reason,
        "message": p.to_string(),
    })
}

fn print_json(path: &Path, r: &Report) -> anyhow::Result<()> {
    let mut warnings: Vec<serde_json::Value> = r
        .unknown
        .iter()
        .map(|var| {
            json!({"key": null, "line": null, "variable": var, "reason": "no such key",
                   "message": format!("{var}: no such key")})
        })
        .collect();
    warnings.extend(r.warnings.iter().map(problem_json));
    let value = json!({
        "file": path.display().to_string(),
        "valid": r.errors.is_empty(),
        "errors": r.errors.iter().map(problem_json).collect::<Vec<_>>(),
        "warnings": warnings,
        "overrides": r.applied.iter()
            .map(|o| json!({"variable": o.var, "key": o.key}))
            .collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(out.flush()?)
}
