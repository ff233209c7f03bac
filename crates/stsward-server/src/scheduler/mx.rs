//! MX follow (RFC 8461 §3.2 `mx` lines; §4.1: senders check each MX host against them): one
//! domain's round. The lookup and the new version are [`DomainService::follow_mx`], the same
//! code as `domain sync-mx`; this file turns its result into what is logged and stored for
//! `domain show`.
//!
//! ```text
//! in step            the MX hosts are the mx lines (as sets)         nothing written
//! changed            a new version with the MX hosts                 warning if enforce lost
//!                                                                    a pattern (RFC 8461 §3.2)
//! dns_failed         the lookup failed (timeout, SERVFAIL, …)        policy unchanged
//! no_mx              NXDOMAIN, no MX records, or a null MX           policy unchanged
//! failed             anything else (a concurrent change, the store)  policy unchanged
//! ```

use stsward_store::{DueDomain, Store};

use crate::domains::{Change, DomainError, DomainService, SCHEDULER_ACTOR, Warning};

/// What one MX round came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRound {
    /// The stored outcome code.
    pub outcome: &'static str,
    /// In words, for `domain show`.
    pub detail: String,
    /// The dropped-pattern warning of a change, when there was one.
    pub warning: Option<String>,
    /// Whether a new version was made.
    pub changed: bool,
    /// Whether nothing could be said (lookup or store failure).
    pub failed: bool,
}

/// The words of an error and its sources, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Judges the result of [`DomainService::follow_mx`].
pub fn judge(result: &Result<Option<Change>, DomainError>) -> MxRound {
    let unchanged = "; the policy is unchanged";
    match result {
        Ok(None) => MxRound {
            outcome: "in_step",
            detail: "the MX records match the mx lines".into(),
            warning: None,
            changed: false,
            failed: false,
        },
        Ok(Some(change)) => {
            let v = &change.version;
            let warning = change
                .warnings
                .iter()
                .find(|w| matches!(w, Warning::DroppedPatterns { .. }))
                .map(|w| format!("version {}: {w} (RFC 8461 §3.2 max_age)", v.version));
            MxRound {
                outcome: "changed",
                detail: format!(
                    "the MX records changed: version {} serves mx {} under id {}",
                    v.version,
                    v.mx.join(", "),
                    v.sts_id
                ),
                warning,
                changed: change.changed,
                failed: false,
            }
        }
        Err(e @ DomainError::Dns { .. }) => MxRound {
            outcome: "dns_failed",
            detail: format!("{}{unchanged}", chain(e)),
            warning: None,
            changed: false,
            failed: true,
        },
        Err(DomainError::NoMx { domain, why }) => MxRound {
            outcome: "no_mx",
            detail: format!("the MX answer of {domain} is empty ({why}){unchanged}"),
            warning: None,
            changed: false,
            failed: false,
        },
        Err(e) => MxRound {
            outcome: "failed",
            detail: format!("{}{unchanged}", chain(e)),
            warning: None,
            changed: false,
            failed: true,
        },
    }
}

/// Runs the MX round of `d` at `now` and records it. A failure to record is logged.
pub async fn check(service: &DomainService, store: &Store, d: &DueDomain, now: i64) -> MxRound {
    let result = service
        .follow_mx(d.tenant, &d.domain, SCHEDULER_ACTOR, now)
        .await;
    let round = judge(&result);
    match (&round.warning, round.changed) {
        (Some(w), _) => {
            tracing::warn!(domain = %d.domain, warning = %w, "mx follow: {}", round.detail)
        }
        (None, true) => tracing::info!(domain = %d.domain, "mx follow: {}", round.detail),
        (None, false) if round.outcome != "in_step" => {
            tracing::info!(domain = %d.domain, outcome = round.outcome, "mx follow: {}", round.detail)
        }
        (None, false) => {}
    }
    if let Err(e) = store
        .domain_check_record_mx(
            d.domain_id,
            now,
            round.outcome,
            &round.detail,
            round.warning.as_deref(),
        )
        .await
    {
        tracing::warn!(domain = %d.domain, error = %e, "mx follow: the outcome was not recorded");
    }
    round
}

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_store::PolicyVersion;

    fn version(mx: &[&str]) -> PolicyVersion {
        PolicyVersion {
            version: 3,
            mode: "enforce".into(),
            mx: mx.iter().map(|s| s.to_string()).collect(),
            max_age: 604_800,
            policy: String::new(),
            sts_id: "abc3".into(),
            changed_by: SCHEDULER_ACTOR.into(),
            changed_at: 0,
            note: None,
        }
    }

    #[test]
    fn outcomes_table() {
        let dropped = Change {
            domain: "a.test".into(),
            version: version(&["mx2.a.test"]),
            changed: true,
            warnings: vec![Warning::DroppedPatterns {
                dropped: vec!["mx1.a.test".into()],
                version: 2,
                max_age: 604_800,
                cached_until: 604_800,
            }],
        };
        // (result, outcome, changed, warned)
        type Case = (
            Result<Option<Change>, DomainError>,
            &'static str,
            bool,
            bool,
        );
        let cases: Vec<Case> = vec![
            (Ok(None), "in_step", false, false),
            (Ok(Some(dropped)), "changed", true, true),
            (
                Err(DomainError::NoMx {
                    domain: "a.test".into(),
                    why: "no MX records",
                }),
                "no_mx",
                false,
                false,
            ),
            (
                Err(DomainError::NotFound {
                    domain: "a.test".into(),
                }),
                "failed",
                false,
                false,
            ),
        ];
        for (result, outcome, changed, warned) in cases {
            let r = judge(&result);
            assert_eq!(r.outcome, outcome);
            assert_eq!(r.changed, changed, "{outcome}");
            assert_eq!(r.warning.is_some(), warned, "{outcome}");
            if !changed {
                assert!(
                    r.outcome == "in_step" || r.detail.ends_with("the policy is unchanged"),
                    "{}",
                    r.detail
                );
            }
        }
    }
}
