//! What a caller asks for (`add`, `set`), validated into an RFC 8461 §3.2 policy with
//! `stsward-proto`'s types: a policy that `stsward policy lint` would reject is refused,
//! naming the field (`mode`, `mx`, `max_age`, `policy`), and lint warnings come back.

use stsward_proto::Severity;
use stsward_proto::mta_sts::policy::lint;
use stsward_proto::mta_sts::{MaxAge, Mode, MxPattern, Policy, PolicyId};
use stsward_store::NewVersion;

use super::id;
use super::{DomainError, Warning};

/// Where the `mx` patterns of a new policy come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxInput {
    /// As given (validated as RFC 8461 §3.2 `mx` values).
    Patterns(Vec<String>),
    /// The exchanges of the domain's MX records, now.
    FromDns,
}

/// `domain add`: what a new domain's first policy says. Unset fields take the defaults
/// (`testing`, the MX hosts in DNS, [`DEFAULT_MAX_AGE`](super::DEFAULT_MAX_AGE)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddDomain {
    /// The domain, as typed (normalised to A-labels).
    pub domain: String,
    /// `testing`, `enforce` or `none`.
    pub mode: Option<String>,
    /// The `mx` patterns.
    pub mx: Option<MxInput>,
    /// Seconds.
    pub max_age: Option<u64>,
    /// Opt in to following the MX records on a schedule.
    pub follow_mx: bool,
}

/// `domain set`: per-domain options, which are not part of the policy (no new version).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainOptions {
    /// Rebuild the `mx` lines from DNS on a schedule (opt-in).
    pub follow_mx: Option<bool>,
    /// The `rua` published at `_smtp._tls` (RFC 8460 §3): `Some(None)` goes back to the
    /// install's default.
    pub tlsrpt_rua: Option<Option<String>>,
    /// The owner keeps its own `_mta-sts` TXT (RFC 8461 §3.1) instead of the CNAME into the
    /// zone: the scheduler then watches it for an `id` that is not the served policy's.
    pub own_sts_txt: Option<bool>,
}

impl DomainOptions {
    /// Whether anything is to change.
    pub fn is_empty(&self) -> bool {
        self.follow_mx.is_none() && self.tlsrpt_rua.is_none() && self.own_sts_txt.is_none()
    }
}

/// `domain set`: the fields to change; unset fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// `testing`, `enforce` or `none`.
    pub mode: Option<String>,
    /// New `mx` patterns.
    pub mx: Option<MxInput>,
    /// Seconds.
    pub max_age: Option<u64>,
    /// Why (kept in the history).
    pub note: Option<String>,
}

pub(super) fn parse_mode(raw: &str) -> Result<Mode, DomainError> {
    raw.parse()
        .map_err(|e: stsward_proto::mta_sts::Error| DomainError::Invalid {
            field: "mode",
            reason: e.to_string(),
        })
}

pub(super) fn parse_max_age(secs: u64) -> Result<MaxAge, DomainError> {
    MaxAge::new(secs).map_err(|e| DomainError::Invalid {
        field: "max_age",
        reason: e.to_string(),
    })
}

pub(super) fn parse_patterns(raw: &[String]) -> Result<Vec<MxPattern>, DomainError> {
    let mut out: Vec<MxPattern> = Vec::with_capacity(raw.len());
    for p in raw {
        let pattern: MxPattern =
            p.parse()
                .map_err(|e: stsward_proto::mta_sts::Error| DomainError::Invalid {
                    field: "mx",
                    reason: e.to_string(),
                })?;
        if !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    Ok(out)
}

/// The policy from its parts, refused as `stsward policy lint` would refuse it; lint
/// findings below error severity come back as warnings.
pub(super) fn build_policy(
    mode: Mode,
    max_age: MaxAge,
    mx: Vec<MxPattern>,
) -> Result<(Policy, Vec<Warning>), DomainError> {
    let policy = Policy::new(mode, max_age, mx).map_err(|e| DomainError::Invalid {
        field: "mx",
        reason: format!("{e} (a {mode} policy needs at least one mx pattern)"),
    })?;
    let text = policy.to_string();
    let checked = lint(text.as_bytes());
    let mut warnings = Vec::new();
    for f in &checked.findings {
        match f.severity {
            Severity::Error => {
                return Err(DomainError::Invalid {
                    field: "policy",
                    reason: format!("{}: {}", f.code, f.message),
                });
            }
            Severity::Warning => warnings.push(Warning::Lint {
                code: f.code.to_string(),
                message: f.message.clone(),
            }),
            _ => {}
        }
    }
    if checked.policy.as_ref() != Some(&policy) {
        return Err(DomainError::Invalid {
            field: "policy",
            reason: "the served text would not parse back to the same policy".into(),
        });
    }
    Ok((policy, warnings))
}

pub(super) fn new_version(
    policy: &Policy,
    version: i64,
    actor: &str,
    now: i64,
    note: Option<String>,
) -> Result<(NewVersion, PolicyId), DomainError> {
    let id = id::policy_id(now, version).map_err(|e| DomainError::Invalid {
        field: "id",
        reason: e.to_string(),
    })?;
    Ok((
        NewVersion {
            mode: policy.mode().to_string(),
            mx: policy.mx().iter().map(ToString::to_string).collect(),
            max_age: i64::from(policy.max_age().as_secs()),
            policy: policy.to_string(),
            sts_id: id.to_string(),
            changed_by: actor.to_owned(),
            changed_at: now,
            note,
        },
        id,
    ))
}
