use super::*;
use crate::test_pki::{TestCa, Window, self_signed};
use x509_parser::prelude::{FromDer, X509Certificate};

fn spki(cert: &CertificateDer<'_>) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(cert.as_ref()).unwrap();
    c.public_key().raw.to_vec()
}

fn rec(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
    Tlsa {
        usage: usage.into(),
        selector: selector.into(),
        matching: matching.into(),
        data,
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn sha512(b: &[u8]) -> Vec<u8> {
    Sha512::digest(b).to_vec()
}

#[test]
fn rfc7672_3_1_matching_table() {
    let ca = TestCa::new("DANE test root");
    let inter = ca.intermediate("DANE test intermediate");
    let leaf = inter.leaf(&["mx.example.test"], Window::Expired);
    let other = self_signed(&["other.test"], Window::Current);
    let chain = vec![leaf.cert.clone(), inter.cert.clone(), ca.cert.clone()];
    let leaf_der = leaf.cert.as_ref().to_vec();
    let leaf_spki = spki(&leaf.cert);
    let inter_spki = spki(&inter.cert);

    // (record, expected verdict, why)
    let cases: Vec<(Tlsa, DaneVerdict, &str)> = vec![
        (
            rec(3, 1, 1, sha256(&leaf_spki)),
            DaneVerdict::Matched,
            "3 1 1 on the leaf SPKI",
        ),
        (
            rec(3, 0, 1, sha256(&leaf_der)),
            DaneVerdict::Matched,
            "3 0 1 on the leaf cert",
        ),
        (
            rec(3, 1, 2, sha512(&leaf_spki)),
            DaneVerdict::Matched,
            "3 1 2 on the leaf SPKI",
        ),
        (
            rec(3, 0, 0, leaf_der.clone()),
            DaneVerdict::Matched,
            "3 0 0 exact leaf",
        ),
        (
            rec(3, 1, 0, leaf_spki.clone()),
            DaneVerdict::Matched,
            "3 1 0 exact SPKI",
        ),
        (
            rec(2, 1, 1, sha256(&inter_spki)),
            DaneVerdict::Matched,
            "2 1 1 on the intermediate, which signs the leaf",
        ),
        (
            rec(2, 0, 1, sha256(ca.cert.as_ref())),
            DaneVerdict::Matched,
            "2 0 1 on the root, two links away",
        ),
        // bad cases
        (
            rec(3, 1, 1, sha256(&inter_spki)),
            DaneVerdict::NoMatch,
            "DANE-EE looks at the leaf only (RFC 7672 §3.1.1)",
        ),
        (
            rec(2, 0, 1, sha256(other.cert.as_ref())),
            DaneVerdict::NoMatch,
            "DANE-TA for a certificate that is not in the chain",
        ),
        (
            rec(3, 1, 1, vec![0; 32]),
            DaneVerdict::NoMatch,
            "digest of nothing presented",
        ),
        (
            rec(1, 1, 1, sha256(&leaf_spki)),
            DaneVerdict::NoUsableRecords,
            "PKIX-EE is treated as unusable for SMTP (RFC 7672 §3.1.3: MAY), even when it would match",
        ),
        (
            rec(0, 0, 1, sha256(ca.cert.as_ref())),
            DaneVerdict::NoUsableRecords,
            "PKIX-TA is treated as unusable for SMTP (RFC 7672 §3.1.3: MAY)",
        ),
        (
            rec(4, 1, 1, sha256(&leaf_spki)),
            DaneVerdict::NoUsableRecords,
            "unknown usage",
        ),
        (
            rec(3, 2, 1, sha256(&leaf_spki)),
            DaneVerdict::NoUsableRecords,
            "unknown selector",
        ),
        (
            rec(3, 1, 3, sha256(&leaf_spki)),
            DaneVerdict::NoUsableRecords,
            "unknown matching type",
        ),
        (
            rec(3, 1, 1, sha512(&leaf_spki)),
            DaneVerdict::NoUsableRecords,
            "SHA-256 matching type with 64 octets of data",
        ),
    ];
    for (record, want, why) in cases {
        let got = match_tlsa(std::slice::from_ref(&record), &chain);
        assert_eq!(got.verdict, want, "{why}: {got:?}");
    }
}

#[test]
fn rfc7672_3_1_1_dane_ee_ignores_expiry_and_names() {
    let leaf = self_signed(&["wrong-name.test"], Window::Expired);
    let r = rec(3, 1, 1, sha256(&spki(&leaf.cert)));
    let got = match_tlsa(&[r], std::slice::from_ref(&leaf.cert));
    assert_eq!(got.verdict, DaneVerdict::Matched);
    assert_eq!(got.records, vec![RecordOutcome::Matched { depth: 0 }]);
}

#[test]
fn rfc7672_3_1_2_dane_ta_needs_a_path_to_the_leaf() {
    let ca = TestCa::new("real TA");
    let stranger = self_signed(&["mx.example.test"], Window::Current);
    // A chain that carries the TA but whose leaf the TA never signed.
    let chain = vec![stranger.cert.clone(), ca.cert.clone()];
    let r = rec(2, 0, 1, sha256(ca.cert.as_ref()));
    let got = match_tlsa(&[r], &chain);
    assert_eq!(got.verdict, DaneVerdict::NoMatch);
    assert_eq!(got.records, vec![RecordOutcome::BrokenChain { depth: 1 }]);
}

#[test]
fn rfc7672_2_2_one_usable_match_among_unusable_records_is_enough() {
    let leaf = self_signed(&["mx.example.test"], Window::Current);
    let records = vec![
        rec(1, 1, 1, vec![1; 32]),
        rec(3, 1, 1, vec![2; 32]),
        rec(3, 1, 1, sha256(&spki(&leaf.cert))),
    ];
    let got = match_tlsa(&records, std::slice::from_ref(&leaf.cert));
    assert_eq!(got.verdict, DaneVerdict::Matched);
    assert_eq!(
        got.records,
        vec![
            RecordOutcome::Unusable(Unusable::PkixUsage(TlsaUsage::PkixEe)),
            RecordOutcome::NoMatch,
            RecordOutcome::Matched { depth: 0 },
        ]
    );
}

#[test]
fn empty_chain_is_reported_as_such() {
    let got = match_tlsa(&[rec(3, 1, 1, vec![0; 32])], &[]);
    assert_eq!(got.verdict, DaneVerdict::EmptyChain);
}

#[test]
fn rfc6698_2_1_code_points_round_trip() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(TlsaUsage::from(v)), v);
        assert_eq!(u8::from(TlsaSelector::from(v)), v);
        assert_eq!(u8::from(TlsaMatching::from(v)), v);
    }
}

fn lookup(dnssec: crate::dns::DnssecStatus, records: Vec<Tlsa>) -> crate::dns::Lookup<Tlsa> {
    crate::dns::Lookup {
        name: "_25._tcp.mx.example.test".into(),
        cname_chain: Vec::new(),
        answer: if records.is_empty() {
            crate::dns::Answer::NoData
        } else {
            crate::dns::Answer::Records(records)
        },
        dnssec,
    }
}

type Outcome = Result<crate::dns::Lookup<Tlsa>, crate::dns::DnsError>;

/// RFC 7672 §2.2: "A "secure" non-empty TLSA RRset where all the records are unusable:  Any
/// connection to the MTA MUST be made via TLS, but authentication is not required." Before
/// issue 6 an all-unusable RRset was read as "DANE does not apply".
#[test]
fn rfc7672_2_2_tlsa_lookup_outcome_decides_what_a_sender_must_do() {
    use crate::dns::{DnsError, DnssecStatus::*};
    let usable = rec(3, 1, 1, vec![7; 32]);
    let pkix = rec(1, 1, 1, vec![7; 32]);
    let unknown = rec(3, 1, 9, vec![7; 32]);
    // (lookup outcome, expected, why)
    let cases: Vec<(Outcome, TlsaRequirement, &str)> = vec![
        (
            Ok(lookup(Secure, vec![usable.clone()])),
            TlsaRequirement::AuthenticatedTls,
            "secure RRset with a usable record",
        ),
        (
            Ok(lookup(Secure, vec![pkix.clone(), usable.clone()])),
            TlsaRequirement::AuthenticatedTls,
            "one usable record among unusable ones is enough",
        ),
        (
            Ok(lookup(Secure, vec![pkix.clone(), unknown.clone()])),
            TlsaRequirement::EncryptedTls,
            "secure, non-empty, every record unusable: TLS is still required (§2.2)",
        ),
        (
            Ok(lookup(Secure, vec![pkix.clone()])),
            TlsaRequirement::EncryptedTls,
            "PKIX-EE alone, treated as unusable (§3.1.3 MAY), still commits the host to TLS",
        ),
        (
            Ok(lookup(Secure, Vec::new())),
            TlsaRequirement::Opportunistic,
            "DNSSEC-authenticated denial of existence",
        ),
        (
            Ok(lookup(Insecure, vec![usable.clone()])),
            TlsaRequirement::Opportunistic,
            "insecure TLSA RRset: DANE does not apply",
        ),
        (
            Ok(lookup(Indeterminate, vec![usable.clone()])),
            TlsaRequirement::LookupFailed,
            "indeterminate is treated as bogus by a sender (§2.1.1)",
        ),
        (
            Err(DnsError::DnssecBogus {
                name: "_25._tcp.mx.example.test".into(),
            }),
            TlsaRequirement::LookupFailed,
            "bogus",
        ),
        (
            Err(DnsError::ServFail {
                name: "_25._tcp.mx.example.test".into(),
            }),
            TlsaRequirement::LookupFailed,
            "SERVFAIL is a lookup error (§2.1.2)",
        ),
    ];
    for (outcome, want, why) in cases {
        assert_eq!(requirement(outcome.as_ref()), want, "{why}");
    }
}
