//! `stsward completions` and `stsward man`: shell completion scripts (clap_complete) and
//! roff manual pages (clap_mangen) generated from the clap definitions in [`crate::cli`],
//! so that they always describe the binary that prints them. The packages ship both
//! (docs/packaging.md).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};

use crate::Outcome;
use crate::cli::Cli;

/// The shells `stsward completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash (bash-completion: /usr/share/bash-completion/completions/stsward).
    Bash,
    /// Zsh (a `_stsward` file in a directory of $fpath).
    Zsh,
    /// Fish (~/.config/fish/completions/stsward.fish).
    Fish,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(s: CompletionShell) -> Self {
        match s {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// `stsward completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: CompletionShell,
}

/// `stsward man [--out-dir DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command and subcommand into DIR (stsward.1, stsward-check.1,
    /// stsward-policy-lint.1, ...) instead of printing the top-level page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on standard output.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(args.shell),
        &mut cmd,
        "stsward",
        &mut out,
    );
    write_stdout(&out)?;
    Ok(Outcome::Success)
}

/// Prints the top-level man page, or writes every page into `args.out_dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<Outcome> {
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--out-dir {}: creating the directory", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("--out-dir {}: writing the man pages", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("rendering the man page")?;
            write_stdout(&out)?;
        }
    }
    Ok(Outcome::Success)
}

/// Writes `bytes` to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}
