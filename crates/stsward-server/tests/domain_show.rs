//! `domain show` (the service's `show`, which the CLI and the REST API print) on a real
//! store: the live state of the policy host's certificate (RFC 8461 §3.3: senders validate
//! it), read from the stored chain, and the policy fetches of the last seven UTC days.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use stsward_server::config::HostingSection;
use stsward_server::domains::{AddDomain, DomainService, MxInput};
use stsward_store::{CertState, FetchRow, Sealed, Store, StoredCertificate};

const DAY: i64 = 86_400;

/// A chain for `mta-sts.<domain>` from a CA named "Show Test CA", valid for 90 days from
/// `not_before`.
fn chain(domain: &str, not_before: i64) -> String {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Show Test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec![format!("mta-sts.{domain}")]).expect("leaf");
    leaf.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("t");
    leaf.not_after = time::OffsetDateTime::from_unix_timestamp(not_before + 90 * DAY).expect("t");
    let leaf = leaf.signed_by(&key, &issuer).expect("signed");
    format!("{}{}", leaf.pem(), ca.pem())
}

#[tokio::test]
async fn show_reads_the_live_certificate_and_seven_days_of_fetches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url).await.expect("store");
    let service = DomainService::new(store.clone(), HostingSection::default(), None);
    // Midday, so that day arithmetic below is not at a boundary.
    let now = 1_900_000_000 / DAY * DAY + DAY / 2;
    let tenant = service.default_tenant(now).await.expect("tenant");
    service
        .add(
            tenant,
            &AddDomain {
                domain: "show.test".into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec!["mx.show.test".into()])),
                max_age: Some(604_800),
                follow_mx: false,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    let none = service.show(tenant, "show.test", now).await.expect("show");
    let live = none
        .certificate_live
        .expect("a state even without a certificate");
    assert!(!live.valid && live.issuer.is_none() && live.days_left.is_none());

    let not_before = now - 30 * DAY;
    store
        .certificate_put(&StoredCertificate {
            name: "mta-sts.show.test".into(),
            chain_pem: Some(chain("show.test", not_before)),
            key: Some(Sealed {
                ciphertext: vec![1; 48],
                nonce: vec![2; 12],
            }),
            not_before: Some(not_before),
            not_after: Some(not_before + 90 * DAY),
            state: CertState::Valid,
            last_error: None,
            updated_at: now,
        })
        .await
        .expect("certificate");
    let d = service.show(tenant, "show.test", now).await.expect("show");
    let live = d.certificate_live.expect("live");
    assert!(live.valid, "{live:?}");
    assert_eq!(live.issuer.as_deref(), Some("CN=Show Test CA"));
    assert_eq!(live.days_left, Some(60));
    // Two thirds of 90 days: day 60, 30 days from now.
    assert_eq!(live.renew_at, Some(not_before + 60 * DAY));
    assert!(!live.renewal_due);
    let later = service
        .show(tenant, "show.test", now + 31 * DAY)
        .await
        .expect("show")
        .certificate_live
        .expect("live");
    assert!(later.renewal_due, "{later:?}");
    assert_eq!(later.days_left, Some(29));

    // Fetches: today and the six days before count; the eighth day back does not.
    let today = now.div_euclid(DAY);
    let row = |day: i64, network: &str, fetches: i64| FetchRow {
        domain: "show.test".into(),
        day,
        network: network.into(),
        fetches,
    };
    store
        .policy_fetches_add(&[
            row(today, "192.0.2.0/24", 5),
            row(today - 6, "198.51.100.0/24", 2),
            row(today - 7, "203.0.113.0/24", 100),
        ])
        .await
        .expect("fetches");
    let f = service
        .show(tenant, "show.test", now)
        .await
        .expect("show")
        .fetches;
    assert_eq!((f.fetches, f.networks), (7, 2), "{f:?}");
    assert_eq!(f.by_day, vec![(today - 6, 2), (today, 5)]);
}
