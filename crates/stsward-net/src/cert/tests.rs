use super::*;
use crate::test_pki::{TestCa, Window, now, self_signed};

fn roots(ca: &TestCa) -> Roots {
    Roots::new(false, std::slice::from_ref(&ca.cert)).unwrap()
}

#[test]
fn rfc8461_4_2_judge_table() {
    let ca = TestCa::new("judge CA");
    let r = roots(&ca);
    let host = "mx1.example.test";
    struct Case {
        chain: Vec<CertificateDer<'static>>,
        trusted: bool,
        name_ok: bool,
        validity: &'static str,
        why: &'static str,
    }
    let good = ca.leaf(&[host], Window::Current);
    let wild = ca.leaf(&["*.example.test"], Window::Current);
    let deep_wild = ca.leaf(&["*.test"], Window::Current);
    let expired = ca.leaf(&[host], Window::Expired);
    let future = ca.leaf(&[host], Window::Future);
    let wrong = ca.leaf(&["other.example.test"], Window::Current);
    let selfs = self_signed(&[host], Window::Current);
    let stranger = TestCa::new("stranger CA").leaf(&[host], Window::Current);
    let cases = vec![
        Case {
            chain: vec![good.cert.clone()],
            trusted: true,
            name_ok: true,
            validity: "valid",
            why: "good leaf",
        },
        Case {
            chain: vec![wild.cert.clone()],
            trusted: true,
            name_ok: true,
            validity: "valid",
            why: "wildcard covers one label (RFC 6125 §6.4.3)",
        },
        Case {
            chain: vec![deep_wild.cert.clone()],
            trusted: true,
            name_ok: false,
            validity: "valid",
            why: "bad: *.test does not cover two labels",
        },
        Case {
            chain: vec![expired.cert.clone()],
            trusted: true,
            name_ok: true,
            validity: "expired",
            why: "bad: expired, yet trusted and named",
        },
        Case {
            chain: vec![future.cert.clone()],
            trusted: true,
            name_ok: true,
            validity: "not-yet",
            why: "bad: not yet valid",
        },
        Case {
            chain: vec![wrong.cert.clone()],
            trusted: true,
            name_ok: false,
            validity: "valid",
            why: "bad: wrong name, yet trusted and valid",
        },
        Case {
            chain: vec![selfs.cert.clone()],
            trusted: false,
            name_ok: true,
            validity: "valid",
            why: "bad: self-signed",
        },
        Case {
            chain: vec![stranger.cert.clone()],
            trusted: false,
            name_ok: true,
            validity: "valid",
            why: "bad: unknown CA",
        },
    ];
    for c in cases {
        let v = judge(&c.chain, host, &r, now());
        assert_eq!(v.trusted.is_ok(), c.trusted, "{}: {v:?}", c.why);
        assert_eq!(v.name_ok, c.name_ok, "{}: {v:?}", c.why);
        let got = match v.validity {
            Validity::Valid { .. } => "valid",
            Validity::Expired { .. } => "expired",
            Validity::NotYetValid { .. } => "not-yet",
            Validity::Unreadable => "unreadable",
        };
        assert_eq!(got, c.validity, "{}", c.why);
    }
}

#[test]
fn rfc8461_4_2_intermediate_from_the_chain_is_used() {
    let ca = TestCa::new("root");
    let inter = ca.intermediate("issuing CA");
    let leaf = inter.leaf(&["mx.example.test"], Window::Current);
    let r = roots(&ca);
    let full = judge(
        &[leaf.cert.clone(), inter.cert.clone()],
        "mx.example.test",
        &r,
        now(),
    );
    assert_eq!(full.trusted, Ok(()));
    let partial = judge(
        std::slice::from_ref(&leaf.cert),
        "mx.example.test",
        &r,
        now(),
    );
    assert_eq!(
        partial.trusted,
        Err(Untrusted {
            reason: UntrustedReason::UnknownIssuer
        }),
        "a missing intermediate is an incomplete chain"
    );
}

#[test]
fn self_signed_is_named_as_such() {
    let leaf = self_signed(&["mx.example.test"], Window::Current);
    let v = judge(
        &[leaf.cert],
        "mx.example.test",
        &Roots::new(false, &[]).unwrap(),
        now(),
    );
    assert_eq!(
        v.trusted,
        Err(Untrusted {
            reason: UntrustedReason::SelfSigned
        })
    );
}

#[test]
fn problem_order_is_trust_then_validity_then_name() {
    let ca = TestCa::new("CA");
    let r = roots(&ca);
    let expired_wrong = ca.leaf(&["other.test"], Window::Expired);
    let v = judge(&[expired_wrong.cert], "mx.example.test", &r, now());
    assert!(
        matches!(v.problem(), Some(CertProblem::Expired { checked_at, .. }) if checked_at == now())
    );
    let wrong = ca.leaf(&["other.test"], Window::Current);
    let v = judge(&[wrong.cert], "mx.example.test", &r, now());
    assert_eq!(
        v.problem(),
        Some(CertProblem::NameMismatch {
            presented_names: vec!["other.test".into()]
        })
    );
}

#[test]
fn empty_and_garbage_chains_are_untrusted_not_panics() {
    let r = Roots::new(true, &[]).unwrap();
    let v = judge(&[], "mx.example.test", &r, now());
    assert_eq!(
        v.trusted,
        Err(Untrusted {
            reason: UntrustedReason::EmptyChain
        })
    );
    let v = judge(
        &[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])],
        "mx.example.test",
        &r,
        now(),
    );
    assert_eq!(
        v.trusted,
        Err(Untrusted {
            reason: UntrustedReason::Unparseable
        })
    );
    assert_eq!(v.validity, Validity::Unreadable);
}

#[test]
fn inspect_reads_names_and_dates() {
    let leaf = self_signed(&["a.example.test", "b.example.test"], Window::Current);
    let info = inspect(&leaf.cert).unwrap();
    assert_eq!(info.subject_alt_names, ["a.example.test", "b.example.test"]);
    assert_eq!(
        info.not_before,
        UNIX_EPOCH + Duration::from_secs(1_735_689_600)
    );
    assert_eq!(
        info.not_after,
        UNIX_EPOCH + Duration::from_secs(1_798_761_600)
    );
}
