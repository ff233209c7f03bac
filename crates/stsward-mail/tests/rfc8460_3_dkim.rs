//! RFC 8460 §3: report e-mails must carry a valid DKIM signature by the reporting domain,
//! without `l=`. Signed by the lab's test senders, verified against keys the lab DNS
//! publishes, over real UDP/TCP on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use stsward_lab::dkim::{DkimKeyKind, DkimSender, SignOptions};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_mail::dkim::{self, DkimFailure, DkimVerdict, DomainSource};
use stsward_mail::dkim_dns::{DnsKeyLookup, KeyServer};
use stsward_mail::{Limits, extract_from_message};
use tokio::net::{TcpListener, UdpSocket};

const RECEIVER: &str = "receiver.test";

/// A lab DNS serving `zones` on a free loopback port (UDP and TCP).
async fn start_dns(zones: &[Zone]) -> (DnsServer, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let opts = DnsServerOptions {
            now: time::OffsetDateTime::now_utc(),
            plain: true,
        };
        let server = DnsServer::start(udp, tcp, zones, opts).expect("lab DNS starts");
        return (server, addr);
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn zone(origin: &str, records: Vec<LabRecord>) -> Zone {
    Zone {
        origin: origin.to_owned(),
        records,
        dnssec: Dnssec::Off,
    }
}

/// The lab world of these tests: `sender.test` publishes an Ed25519 key (`lab`) and an RSA
/// key (`rsa`), `foreign.test` one key, and the `test` TLD itself one key.
struct World {
    sender: DkimSender,
    sender_rsa: DkimSender,
    foreign: DkimSender,
    tld: DkimSender,
    dns: DnsServer,
    lookup: DnsKeyLookup,
}

impl World {
    async fn start() -> World {
        let sender =
            DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).expect("Ed25519 key");
        let sender_rsa =
            DkimSender::generate("sender.test", "rsa", DkimKeyKind::Rsa2048).expect("RSA key");
        let foreign =
            DkimSender::generate("foreign.test", "lab", DkimKeyKind::Ed25519).expect("Ed25519 key");
        let tld = DkimSender::generate("test", "lab", DkimKeyKind::Ed25519).expect("Ed25519 key");
        let zones = [
            zone(
                "sender.test",
                vec![sender.txt_record(), sender_rsa.txt_record()],
            ),
            zone("foreign.test", vec![foreign.txt_record()]),
            zone("test", vec![tld.txt_record()]),
        ];
        let (dns, addr) = start_dns(&zones).await;
        let lookup =
            DnsKeyLookup::new(KeyServer::At(addr), Duration::from_secs(5)).expect("resolver");
        World {
            sender,
            sender_rsa,
            foreign,
            tld,
            dns,
            lookup,
        }
    }

    async fn verify(&self, raw: &[u8]) -> DkimVerdict {
        dkim::verify(raw, &self.lookup).await
    }
}

/// Who a test report says it is from.
struct Claims<'a> {
    submitter_field: Option<&'a str>,
    subject_submitter: Option<&'a str>,
    from: &'a str,
}

impl<'a> Claims<'a> {
    fn submitter(domain: &'a str) -> Self {
        Claims {
            submitter_field: Some(domain),
            subject_submitter: Some(domain),
            from: "tlsrpt@mailer.example",
        }
    }
}

/// A TLS-RPT report e-mail in the RFC 8460 §5.3 form.
fn report(claims: &Claims<'_>) -> Vec<u8> {
    let submitter = claims.subject_submitter.unwrap_or("mailer.example");
    let mut m = format!("From: TLS reports <{}>\r\n", claims.from);
    m.push_str(&format!("To: tlsrpt@{RECEIVER}\r\n"));
    match claims.subject_submitter {
        Some(s) => m.push_str(&format!(
            "Subject: Report Domain: {RECEIVER} Submitter: {s} Report-ID: <r1@{s}>\r\n"
        )),
        None => m.push_str("Subject: TLS report\r\n"),
    }
    m.push_str("Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n");
    m.push_str(&format!("Message-ID: <r1@{submitter}>\r\n"));
    m.push_str(&format!("TLS-Report-Domain: {RECEIVER}\r\n"));
    if let Some(s) = claims.submitter_field {
        m.push_str(&format!("TLS-Report-Submitter: {s}\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b1\"\r\n\r\n");
    m.push_str("--b1\r\nContent-Type: text/plain\r\n\r\nA TLS report.\r\n");
    m.push_str("--b1\r\nContent-Type: application/tlsrpt+json\r\n");
    m.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{submitter}!{RECEIVER}!1764720000!1764806399.json\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "{{\"organization-name\":\"Lab\",\"date-range\":{{\"start-datetime\":\"2025-12-03T00:00:00Z\",\
         \"end-datetime\":\"2025-12-03T23:59:59Z\"}},\"contact-info\":\"tlsrpt@{submitter}\",\
         \"report-id\":\"r1\",\"policies\":[]}}\r\n"
    ));
    m.push_str("--b1--\r\n");
    m.into_bytes()
}

fn failure(verdict: DkimVerdict) -> DkimFailure {
    match verdict {
        DkimVerdict::Fail(f) => f,
        pass => panic!("expected a failure, got {pass}"),
    }
}

#[tokio::test]
async fn rfc8460_3_report_signed_by_the_lab_sender_passes() {
    let world = World::start().await;
    for sender in [&world.sender, &world.sender_rsa] {
        let signed = sender
            .sign(&report(&Claims::submitter("sender.test")))
            .expect("sign");
        let verdict = world.verify(&signed).await;
        assert_eq!(
            verdict,
            DkimVerdict::Pass {
                domain: "sender.test".into(),
                selector: sender.selector().into(),
            },
            "{:?}",
            sender.kind()
        );
        assert!(verdict.is_pass() && !verdict.is_temporary());
        // Signing leaves the report readable.
        let extracted = extract_from_message(&signed, &Limits::default()).expect("extract");
        assert_eq!(extracted.reports.len(), 1);
        assert_eq!(extracted.dkim_signatures.len(), 1);
    }
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_unsigned_report_is_refused() {
    let world = World::start().await;
    let verdict = world
        .verify(&report(&Claims::submitter("sender.test")))
        .await;
    assert_eq!(failure(verdict), DkimFailure::NoSignature);
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_report_altered_after_signing_is_refused() {
    let world = World::start().await;
    for sender in [&world.sender, &world.sender_rsa] {
        let signed = sender
            .sign(&report(&Claims::submitter("sender.test")))
            .expect("sign");
        let text = String::from_utf8(signed).expect("ASCII");
        let ids = (String::from("sender.test"), sender.selector().to_owned());

        // The body: the report id changed.
        let body_altered = text.replace("\"report-id\":\"r1\"", "\"report-id\":\"r2\"");
        assert_ne!(body_altered, text);
        assert_eq!(
            failure(world.verify(body_altered.as_bytes()).await),
            DkimFailure::BodyHashMismatch {
                domain: ids.0.clone(),
                selector: ids.1.clone(),
            },
            "{:?}",
            sender.kind()
        );

        // A signed header field: the policy domain the report claims to be about.
        let header_altered = text.replace(
            &format!("TLS-Report-Domain: {RECEIVER}"),
            "TLS-Report-Domain: victim.test",
        );
        assert_ne!(header_altered, text);
        assert_eq!(
            failure(world.verify(header_altered.as_bytes()).await),
            DkimFailure::SignatureMismatch {
                domain: ids.0,
                selector: ids.1,
            },
            "{:?}",
            sender.kind()
        );
    }
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_signature_with_l_does_not_count() {
    let world = World::start().await;
    let options = SignOptions {
        body_length: true,
        ..SignOptions::default()
    };
    let signed = world
        .sender
        .sign_with(&report(&Claims::submitter("sender.test")), &options)
        .expect("sign");
    let verdict = world.verify(&signed).await;
    assert_eq!(
        failure(verdict.clone()),
        DkimFailure::BodyLengthLimit {
            domain: "sender.test".into(),
            selector: "lab".into()
        }
    );
    assert!(verdict.to_string().contains("l="), "{verdict}");
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_foreign_signer_does_not_count() {
    let world = World::start().await;
    // A valid signature, but by foreign.test for a report submitted as sender.test.
    let signed = world
        .foreign
        .sign(&report(&Claims::submitter("sender.test")))
        .expect("sign");
    let DkimFailure::ForeignDomain {
        signer,
        reporting_domain,
    } = failure(world.verify(&signed).await)
    else {
        panic!("expected a foreign-domain failure");
    };
    assert_eq!(signer, "foreign.test");
    assert_eq!(reporting_domain.domain, "sender.test");
    assert_eq!(reporting_domain.source, DomainSource::SubmitterField);
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_parent_domain_signature_passes_but_not_a_bare_tld() {
    let world = World::start().await;
    let child = report(&Claims::submitter("mx1.sender.test"));
    let verdict = world
        .verify(&world.sender.sign(&child).expect("sign"))
        .await;
    assert_eq!(
        verdict,
        DkimVerdict::Pass {
            domain: "sender.test".into(),
            selector: "lab".into()
        }
    );

    // d=test is a parent of sender.test with a valid, published key: still no.
    let by_tld = world
        .tld
        .sign(&report(&Claims::submitter("sender.test")))
        .expect("sign");
    let DkimFailure::TopLevelDomain {
        signer,
        reporting_domain,
    } = failure(world.verify(&by_tld).await)
    else {
        panic!("expected a top-level-domain failure");
    };
    assert_eq!(
        (signer.as_str(), reporting_domain.domain.as_str()),
        ("test", "sender.test")
    );

    // A child of the submitter is not the submitter.
    let by_child = DkimSender::generate("mx1.sender.test", "lab", DkimKeyKind::Ed25519)
        .expect("key")
        .sign(&report(&Claims::submitter("sender.test")))
        .expect("sign");
    assert!(matches!(
        failure(world.verify(&by_child).await),
        DkimFailure::ForeignDomain { .. }
    ));
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_one_signature_by_the_reporting_domain_is_enough() {
    let world = World::start().await;
    let message = report(&Claims::submitter("sender.test"));
    // A foreign signature on top of a valid one by the reporting domain: passes.
    let both = world
        .foreign
        .sign(&world.sender.sign(&message).expect("sign"))
        .expect("sign");
    assert_eq!(
        world.verify(&both).await,
        DkimVerdict::Pass {
            domain: "sender.test".into(),
            selector: "lab".into()
        }
    );
    // An l= signature beside a full one by the same domain: the full one counts.
    let limited = SignOptions {
        body_length: true,
        ..SignOptions::default()
    };
    let with_l = world
        .sender
        .sign_with(&world.sender_rsa.sign(&message).expect("sign"), &limited)
        .expect("sign");
    assert!(world.verify(&with_l).await.is_pass());
    // A foreign valid signature and one by the reporting domain whose key is gone: the
    // reason is about the reporting domain's signature, the one that could have counted.
    let gone = DkimSender::generate("sender.test", "gone", DkimKeyKind::Ed25519).expect("key");
    let near_miss = world
        .foreign
        .sign(&gone.sign(&message).expect("sign"))
        .expect("sign");
    assert!(matches!(
        failure(world.verify(&near_miss).await),
        DkimFailure::KeyNotFound { ref selector, .. } if selector == "gone"
    ));
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_unpublished_key_is_a_permanent_failure() {
    let world = World::start().await;
    let unpublished = DkimSender::generate("sender.test", "gone", DkimKeyKind::Ed25519)
        .expect("key")
        .sign(&report(&Claims::submitter("sender.test")))
        .expect("sign");
    let verdict = world.verify(&unpublished).await;
    assert!(!verdict.is_temporary());
    assert_eq!(
        failure(verdict),
        DkimFailure::KeyNotFound {
            domain: "sender.test".into(),
            selector: "gone".into(),
            record: "gone._domainkey.sender.test".into(),
        }
    );
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_reporting_domain_falls_back_to_subject_then_from() {
    let world = World::start().await;
    let subject_only = Claims {
        submitter_field: None,
        subject_submitter: Some("sender.test"),
        from: "tlsrpt@mailer.example",
    };
    let from_only = Claims {
        submitter_field: None,
        subject_submitter: None,
        from: "tlsrpt@sender.test",
    };
    for (claims, source) in [
        (subject_only, DomainSource::Subject),
        (from_only, DomainSource::From),
    ] {
        let signed = world.sender.sign(&report(&claims)).expect("sign");
        let domain = dkim::reporting_domain(&signed).expect("a reporting domain");
        assert_eq!(
            (domain.domain.as_str(), domain.source),
            ("sender.test", source)
        );
        assert!(world.verify(&signed).await.is_pass(), "{source:?}");
        // And the same signer for a From domain that is not it.
        let foreign = world.foreign.sign(&report(&claims)).expect("sign");
        assert!(matches!(
            failure(world.verify(&foreign).await),
            DkimFailure::ForeignDomain { .. }
        ));
    }
    // Nothing to compare with.
    let anonymous = b"From: undisclosed-recipients:;\r\nSubject: TLS report\r\n\r\nbody\r\n";
    let signed = world.sender.sign(anonymous).expect("sign");
    assert_eq!(
        failure(world.verify(&signed).await),
        DkimFailure::NoReportingDomain
    );
    world.dns.shutdown().await;
}

#[tokio::test]
async fn rfc8460_3_key_lookup_timeout_is_temporary() {
    // A DNS server that never answers: UDP bound but never read, TCP never accepted.
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = udp.local_addr().expect("address");
    let _tcp = TcpListener::bind(addr).await.ok();
    let deadline = Duration::from_millis(600);
    let lookup = DnsKeyLookup::new(KeyServer::At(addr), deadline).expect("resolver");
    let sender = DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).expect("key");
    let signed = sender
        .sign(&report(&Claims::submitter("sender.test")))
        .expect("sign");
    let started = Instant::now();
    let verdict = dkim::verify(&signed, &lookup).await;
    let took = started.elapsed();
    assert!(verdict.is_temporary(), "{verdict}");
    let DkimFailure::KeyLookupFailed { record, .. } = failure(verdict) else {
        unreachable!("is_temporary means KeyLookupFailed");
    };
    assert_eq!(record, "lab._domainkey.sender.test");
    assert!(
        took >= deadline / 2 && took < deadline * 3,
        "the lookup ended after {took:?}, deadline {deadline:?}"
    );
    drop(udp);
}

#[tokio::test]
async fn rfc8460_3_corpus_messages_without_resolvable_keys_never_pass() {
    let Some(root) = stsward_testkit::corpus("stsward-mail/rfc8460_3_dkim") else {
        return;
    };
    let dir: PathBuf = root.join("tlsrpt/eml");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no .eml", dir.display());
    // An empty root zone: every key name is NXDOMAIN, as if the keys were long withdrawn.
    let (dns, addr) = start_dns(&[zone(".", Vec::new())]).await;
    let lookup = DnsKeyLookup::new(KeyServer::At(addr), Duration::from_secs(5)).expect("resolver");
    let mut key_not_found = 0;
    for path in &files {
        let raw = std::fs::read(path).expect("read");
        let verdict = dkim::verify(&raw, &lookup).await;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        eprintln!("{name:?}: {verdict}");
        match failure(verdict) {
            DkimFailure::KeyNotFound { .. } => key_not_found += 1,
            DkimFailure::NoSignature
            | DkimFailure::ForeignDomain { .. }
            | DkimFailure::Malformed { .. }
            | DkimFailure::NoReportingDomain => {}
            other => panic!("{name:?}: unexpected verdict: {other}"),
        }
    }
    assert!(
        key_not_found > 0,
        "no corpus message got as far as a key lookup"
    );
    dns.shutdown().await;
}
