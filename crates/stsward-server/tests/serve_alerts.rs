//! The alert engine inside `stsward serve`: the runtime evaluates the rules on its own clock
//! (moved forward by the test, never slept through) and sends an alert from `[alerts]` to a
//! local webhook receiver on loopback; the REST API lists it.

mod alerts_support;
mod serve_support;

use std::time::Duration;

use alerts_support::Receiver;
use serve_support::{config_text, pki, within};
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, MxInput};
use stsward_server::serve::{Clock, Runtime, ServeOptions};
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_an_alert_on_its_clock() {
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.alerted.test"]);
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    // The common test config turns scheduled checks off; this one adds a webhook and a
    // short evaluation interval.
    let base = config_text(&pki, &url, false).replace("[alerts]\ncheck_interval = 0\n", "");
    let text = format!(
        "{base}[alerts]\ncheck_interval = 0\nevaluate_interval = 10\n\
         [[alerts.webhooks]]\nname = \"ops\"\nurl = {:?}\n",
        hook.url("/hook")
    );
    let cfg: ServeConfig = text.parse().expect("test config");
    let clock = Clock::system();
    let runtime = Runtime::start(
        cfg,
        ServeOptions {
            clock: clock.clone(),
            replica_id: Some("replica-1".into()),
            ..ServeOptions::default()
        },
    )
    .await
    .expect("the runtime starts");
    let service = runtime.service().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runtime
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("run");
    });
    let now = clock.now();
    let tenant = service.default_tenant(now).await.expect("tenant");
    let add = AddDomain {
        domain: "alerted.test".into(),
        mode: Some("testing".into()),
        mx: Some(MxInput::Patterns(vec!["mx1.alerted.test".into()])),
        max_age: Some(604_800),
        follow_mx: false,
    };
    service.add(tenant, &add, "test", now).await.expect("add");
    service
        .store()
        .certificate_fail("mta-sts.alerted.test", "order failed: rateLimited", now)
        .await
        .expect("fail");
    // The engine seeds the domain's rounds at its next tick, due within 10 s of its clock:
    // the clock moves on (11 s a poll) instead of the test waiting for it.
    let sent = within(Duration::from_secs(10), || {
        clock.advance(Duration::from_secs(11));
        async { !hook.bodies().is_empty() }
    })
    .await;
    assert!(sent.is_some(), "the alert reached the webhook");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["rule"], "renewal-failed");
    assert_eq!(bodies[0]["domain"], "alerted.test");
    // Further rounds (a few ticks of the engine, each a round on the moved clock) send
    // nothing new while the cause lasts.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(11));
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(hook.bodies().len(), 1);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns after the shutdown signal")
        .expect("run task");
}
