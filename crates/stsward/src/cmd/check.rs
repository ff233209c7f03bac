//! `stsward check` — wiring only; the checks live in `stsward-check`.

use crate::Outcome;
use crate::command::Check;

pub fn run(_c: Check) -> anyhow::Result<Outcome> {
    anyhow::bail!("stsward check is not wired yet")
}
