//! The own `_mta-sts` TXT watch (RFC 8461 §3.1): for a domain whose owner keeps its own TXT
//! instead of the CNAME into stsward's zone, the TXT must carry the served policy's `id`, or
//! senders that cached an earlier policy do not fetch the new one. RFC 8461 §3.1: "If
//! multiple TXT records for "_mta-sts" are returned by the resolver, records that do not
//! begin with "v=STSv1;" are discarded.  If the number of resulting records is not one, or
//! if the resulting record is syntactically invalid, senders MUST assume the recipient
//! domain does not have an available MTA-STS Policy and skip the remaining steps of policy
//! discovery."
//!
//! ```text
//! in_step        one v=STSv1 record with the served id        flag cleared
//! stale_id       one v=STSv1 record with another id           flag set (first sighting kept)
//! missing        no v=STSv1 record (NXDOMAIN, NODATA, other)  flag set
//! invalid        several v=STSv1 records, or one that fails   flag set
//! lookup_failed  the lookup failed: nothing can be said       flag kept as it was
//! ```
//!
//! [`judge`] is pure; [`check`] looks up, judges and records.

use stsward_net::dns::{Dns, DnsError, Lookup, Txt};
use stsward_proto::mta_sts::StsRecord;
use stsward_store::{DueDomain, Store, TxtFlag};

/// How the owner's TXT stands against the served id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtVerdict {
    /// It carries the served id.
    InStep,
    /// It carries another id.
    StaleId {
        /// The id found.
        found: String,
    },
    /// No `v=STSv1` record.
    Missing,
    /// Several `v=STSv1` records, or one that does not parse.
    Invalid {
        /// Why.
        why: String,
    },
    /// The lookup failed.
    LookupFailed {
        /// Why.
        why: String,
    },
}

impl TxtVerdict {
    /// The stored outcome code.
    pub fn outcome(&self) -> &'static str {
        match self {
            TxtVerdict::InStep => "in_step",
            TxtVerdict::StaleId { .. } => "stale_id",
            TxtVerdict::Missing => "missing",
            TxtVerdict::Invalid { .. } => "invalid",
            TxtVerdict::LookupFailed { .. } => "lookup_failed",
        }
    }

    /// What becomes of the flag.
    pub fn flag(&self) -> TxtFlag {
        match self {
            TxtVerdict::InStep => TxtFlag::Clear,
            TxtVerdict::LookupFailed { .. } => TxtFlag::Keep,
            _ => TxtFlag::Set,
        }
    }

    /// In words, for `domain show`.
    pub fn detail(&self, name: &str, served_id: &str) -> String {
        match self {
            TxtVerdict::InStep => format!("{name} carries the served id {served_id}"),
            TxtVerdict::StaleId { found } => format!(
                "{name} says id={found} while the served policy's id is {served_id}: senders \
                 that cached an earlier policy will not fetch the current one; publish \
                 \"v=STSv1; id={served_id};\" (or the CNAME, which follows by itself)"
            ),
            TxtVerdict::Missing => format!(
                "{name} has no v=STSv1 TXT record: senders find no policy; publish \
                 \"v=STSv1; id={served_id};\""
            ),
            TxtVerdict::Invalid { why } => {
                format!("{name}: {why} (RFC 8461 §3.1: senders then assume there is no policy)")
            }
            TxtVerdict::LookupFailed { why } => {
                format!("looking up {name} failed ({why}); the flag is left as it was")
            }
        }
    }
}

/// Judges the answer for `_mta-sts.<D>` against `served_id`.
pub fn judge(lookup: &Result<Lookup<Txt>, DnsError>, served_id: &str) -> TxtVerdict {
    let lookup = match lookup {
        Ok(l) => l,
        Err(e) => {
            return TxtVerdict::LookupFailed { why: e.to_string() };
        }
    };
    // RFC 8461 §3.1: records that do not begin with "v=STSv1;" are discarded.
    let texts: Vec<String> = lookup
        .records()
        .iter()
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .filter(|t| t.starts_with("v=STSv1;"))
        .collect();
    match texts.as_slice() {
        [] => TxtVerdict::Missing,
        [one] => match one.parse::<StsRecord>() {
            Ok(r) if r.id.to_string() == served_id => TxtVerdict::InStep,
            Ok(r) => TxtVerdict::StaleId {
                found: r.id.to_string(),
            },
            Err(e) => TxtVerdict::Invalid {
                why: format!("{one:?}: {e}"),
            },
        },
        many => TxtVerdict::Invalid {
            why: format!("{} v=STSv1 records", many.len()),
        },
    }
}

/// Runs the TXT round of `d` at `now` and records it; `true` when nothing could be said.
pub async fn check(dns: &Dns, store: &Store, d: &DueDomain, now: i64) -> bool {
    let name = format!("_mta-sts.{}", d.domain);
    // Read after the MX round: a version it just made is the one the TXT must name.
    let served = match store.policy_version_current(d.tenant, &d.domain).await {
        Ok(Some(v)) => v.sts_id,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(domain = %d.domain, error = %e, "own TXT: cannot read the served id");
            return true;
        }
    };
    let lookup = dns.txt(&name).await;
    let verdict = judge(&lookup, &served);
    let detail = verdict.detail(&name, &served);
    if verdict.flag() == TxtFlag::Set {
        tracing::warn!(domain = %d.domain, outcome = verdict.outcome(), "own TXT: {detail}");
    }
    if let Err(e) = store
        .domain_check_record_txt(d.domain_id, now, verdict.outcome(), &detail, verdict.flag())
        .await
    {
        tracing::warn!(domain = %d.domain, error = %e, "own TXT: the outcome was not recorded");
    }
    matches!(verdict, TxtVerdict::LookupFailed { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_net::dns::{Answer, DnssecStatus};

    fn lookup(texts: &[&str]) -> Result<Lookup<Txt>, DnsError> {
        let records: Vec<Txt> = texts
            .iter()
            .map(|t| Txt {
                data: t.as_bytes().to_vec(),
                strings: 1,
            })
            .collect();
        Ok(Lookup {
            name: "_mta-sts.a.test".into(),
            cname_chain: Vec::new(),
            answer: if records.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(records)
            },
            dnssec: DnssecStatus::Insecure,
        })
    }

    #[test]
    fn rfc8461_3_1_own_txt_verdicts() {
        let served = "20260101T1";
        // (records, outcome, flag, why)
        let cases: &[(&[&str], &str, TxtFlag, &str)] = &[
            (
                &["v=STSv1; id=20260101T1;"],
                "in_step",
                TxtFlag::Clear,
                "the served id",
            ),
            (
                &["v=spf1 -all", "v=STSv1; id=20260101T1;"],
                "in_step",
                TxtFlag::Clear,
                "other TXT records are discarded",
            ),
            (
                &["v=STSv1; id=old1;"],
                "stale_id",
                TxtFlag::Set,
                "another id",
            ),
            (&[], "missing", TxtFlag::Set, "no record"),
            (
                &["v=spf1 -all"],
                "missing",
                TxtFlag::Set,
                "no v=STSv1 record",
            ),
            (
                &["v=STSv1; id=20260101T1;", "v=STSv1; id=old1;"],
                "invalid",
                TxtFlag::Set,
                "two records: senders assume no policy",
            ),
            (
                &["v=STSv1; id=;"],
                "invalid",
                TxtFlag::Set,
                "an empty id does not parse",
            ),
        ];
        for (records, outcome, flag, why) in cases {
            let v = judge(&lookup(records), served);
            assert_eq!(v.outcome(), *outcome, "{why}");
            assert_eq!(v.flag(), *flag, "{why}");
        }
    }
}
