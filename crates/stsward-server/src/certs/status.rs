//! A certificate's state for `stsward domain show`, read from the store alone so that the CLI
//! sees what any replica did: valid until when, and whether a replica is ordering, the last
//! order failed, or the name does not point here yet (the pre-flight's reason).

use std::fmt;

use stsward_store::{CertState, Store};
use time::OffsetDateTime;

use super::{CertError, from_unix, lease_name, unix};
use crate::acme::preflight;

/// What is happening to a certificate besides its validity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CertActivity {
    /// Nothing was tried yet.
    NotYetRequested,
    /// Nothing to do.
    Idle,
    /// A replica holds the lease and is ordering, until `until` at most.
    Ordering {
        /// When the lease ends, epoch seconds.
        until: i64,
    },
    /// The last order failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Not ordered: `mta-sts.<domain>` does not point at this service yet.
    WaitingForDns {
        /// What the pre-flight found.
        reason: String,
    },
}

/// A certificate's state, as `domain show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertStatus {
    /// The host name.
    pub name: String,
    /// The stored certificate's `notAfter` when it is valid now, epoch seconds.
    pub valid_until: Option<i64>,
    /// What else is going on.
    pub activity: CertActivity,
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.valid_until {
            Some(until) => {
                let at = from_unix(until)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| until.to_string());
                parts.push(format!("valid until {at}"));
            }
            None => parts.push("no valid certificate".to_owned()),
        }
        match &self.activity {
            CertActivity::NotYetRequested => parts.push("not requested yet".to_owned()),
            CertActivity::Idle => {}
            CertActivity::Ordering { .. } => parts.push("ordering".to_owned()),
            CertActivity::Failed { reason } => parts.push(format!("failed: {reason}")),
            CertActivity::WaitingForDns { reason } => {
                parts.push(format!("waiting for DNS: {reason}"))
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// The state of `domain`'s certificate (`mta-sts.<domain>`) at `now`, from the store alone:
/// what the CLI shows, whichever replica did the work.
pub async fn certificate_status(
    store: &Store,
    domain: &str,
    now: OffsetDateTime,
) -> Result<CertStatus, CertError> {
    let name = preflight::policy_host_name(domain)?;
    let row = store.certificate_get(&name).await?;
    let lease = store.lease_get(&lease_name(&name)).await?;
    let valid_until = row
        .as_ref()
        .filter(|r| r.chain_pem.is_some() && r.key.is_some())
        .and_then(|r| r.not_after)
        .filter(|na| *na > unix(now));
    let activity = match (&lease, &row) {
        (Some(l), _) if l.expires_at > unix(now) => CertActivity::Ordering {
            until: l.expires_at,
        },
        (_, None) => CertActivity::NotYetRequested,
        (_, Some(r)) => match (r.state, &r.last_error) {
            (CertState::Pending, Some(reason)) => CertActivity::WaitingForDns {
                reason: reason.clone(),
            },
            (CertState::Failed, reason) => CertActivity::Failed {
                reason: reason.clone().unwrap_or_default(),
            },
            (CertState::Pending, None) => CertActivity::NotYetRequested,
            (CertState::Valid, _) => CertActivity::Idle,
        },
    };
    Ok(CertStatus {
        name,
        valid_until,
        activity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_validity_and_activity() {
        let at = 1_800_000_000;
        let cases = [
            (
                Some(at),
                CertActivity::Idle,
                "valid until 2027-01-15T08:00:00Z",
            ),
            (
                None,
                CertActivity::NotYetRequested,
                "no valid certificate; not requested yet",
            ),
            (
                Some(at),
                CertActivity::Ordering { until: at },
                "valid until 2027-01-15T08:00:00Z; ordering",
            ),
            (
                None,
                CertActivity::Failed {
                    reason: "CA said no".to_owned(),
                },
                "no valid certificate; failed: CA said no",
            ),
            (
                None,
                CertActivity::WaitingForDns {
                    reason: "points at 192.0.2.1".to_owned(),
                },
                "no valid certificate; waiting for DNS: points at 192.0.2.1",
            ),
        ];
        for (valid_until, activity, want) in cases {
            let status = CertStatus {
                name: "mta-sts.example.com".to_owned(),
                valid_until,
                activity,
            };
            assert_eq!(status.to_string(), want);
        }
    }
}
