//! `stsward` — the binary: command-line parsing, configuration and wiring, no protocol logic.
//!
//! Arguments are parsed in two stages (raw clap flags in [`cli`], then a validated
//! [`command::Command`]) and dispatched by one short `match` in [`run`].
//!
//! Exit status (documented in `--help`): 0 success, 1 a finding is an error or an input could
//! not be parsed, 2 the command could not run.

mod cli;
mod cmd;
mod command;

use std::process::ExitCode;

use clap::Parser;

use crate::command::Command;

/// mimalloc instead of the system allocator: report intake reads, parses and frees many
/// small buffers on several threads at once, where glibc's allocator spends a fifth of
/// the import's time (`perf` profile of `bench/ingest`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a command reports back to `main`: the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is fine (exit 0).
    Success,
    /// A finding is an error, or an input could not be parsed (exit 1).
    Problems,
    /// The command could not run (exit 2).
    CannotRun,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Problems => ExitCode::from(1),
            Outcome::CannotRun => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let command = match Command::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stsward: {e:#}");
            return Outcome::CannotRun.into();
        }
    };
    match run(command) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("stsward: {e:#}");
            Outcome::CannotRun.into()
        }
    }
}

/// Dispatches a validated command.
fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Domain(c) => cmd::domain::run(&c),
        Command::Serve(c) => cmd::serve::run(c),
        Command::ResolveTest(c) => cmd::resolve::test(&c),
        Command::ResolveServe(c) => cmd::resolve::serve(c),
        Command::ResolveAdmin(c) => cmd::resolve::admin(&c),
        Command::PolicyLint(c) => cmd::policy::lint(&c),
        Command::ReportParse(c) => cmd::report::parse(&c),
        Command::Reports(c) => cmd::reports::run(c),
        Command::Tenant(c) => cmd::tenant::run(c),
        Command::User(c) => cmd::user::run(c),
        Command::Token(c) => cmd::token::run(c),
        Command::Check(c) => cmd::check::run(c),
        #[cfg(feature = "lab")]
        Command::LabUp(c) => cmd::lab::up(c),
        #[cfg(feature = "lab")]
        Command::Demo(c) => cmd::demo::run(c),
        Command::Completions(c) => cmd::completions::completions(&c),
        Command::Man(c) => cmd::completions::man(&c),
        Command::Config(c) => cmd::config::run(c),
    }
}
