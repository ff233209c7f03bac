//! Shared by the dashboard tests (`web`, `web_browser`): users with a known password, and
//! reports stored through the intake's sink.

#![allow(dead_code)] // each test binary uses its own subset

use stsward_server::auth::password;
use stsward_server::domains::{AddDomain, DomainService, MxInput};
use stsward_server::intake::{Channel, Outcome, ReportSink, StoreSink, Submission, SubmissionKind};
use stsward_store::{NewUser, Role, Store, TenantId};

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// A user of `tenant` (a member), or an install admin when `tenant` is `None`.
pub async fn user(store: &Store, tenant: Option<TenantId>, name: &str) {
    store
        .user_create(&NewUser {
            tenant,
            name: name.into(),
            password_hash: password::hash(PASSWORD).expect("hash"),
            role: if tenant.is_some() {
                Role::Member
            } else {
                Role::Admin
            },
            created_at: 1_700_000_000,
        })
        .await
        .expect("user");
}

/// Stores the JSON report `raw` through the intake's sink, received at `at`.
pub async fn ingest(sink: &StoreSink, raw: Vec<u8>, at: i64) {
    let outcome = sink
        .submit(Submission {
            channel: Channel::File,
            kind: SubmissionKind::Json,
            raw: raw.into(),
            received_at: at,
            peer: None,
            origin: "dashboard test".into(),
            require_dkim: false,
        })
        .await
        .expect("submit");
    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
}

/// The form body of a login of `name` with [`PASSWORD`].
pub fn login_form(name: &str) -> String {
    format!("user={name}&password={}", PASSWORD.replace(' ', "+"))
}

/// Tenants `alpha` (domain alpha.test, user ann) and `beta` (beta.test, user bob), each
/// domain in `testing` with the MX `mx1.<domain>`.
pub async fn two_tenants(service: &DomainService, now: i64) -> (TenantId, TenantId) {
    let store = service.store();
    let alpha = store.tenant_create("alpha", now).await.expect("alpha").id;
    let beta = store.tenant_create("beta", now).await.expect("beta").id;
    for (tenant, domain) in [(alpha, "alpha.test"), (beta, "beta.test")] {
        let add = AddDomain {
            domain: domain.into(),
            mode: Some("testing".into()),
            mx: Some(MxInput::Patterns(vec![format!("mx1.{domain}")])),
            max_age: None,
            follow_mx: false,
        };
        service.add(tenant, &add, "test", now).await.expect("add");
    }
    user(store, Some(alpha), "ann").await;
    user(store, Some(beta), "bob").await;
    (alpha, beta)
}
