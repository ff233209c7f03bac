//! `stsward serve` with report intake on (RFC 8460 §5.3 mail, §5.4 HTTPS POST), in-process
//! with real listeners on loopback: a report e-mail DKIM-signed by the reporting domain, its
//! key published in the lab DNS, is stored (RFC 8460 §3); an unsigned one is quarantined
//! with the reason, not lost; a repeat is acknowledged and stored once; a report POSTed to
//! the policy host is stored.

mod serve_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serve_support::{Pki, config_text, pki};
use stsward_lab::dkim::{DkimKeyKind, DkimSender};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, MxInput};
use stsward_server::serve::{Clock, Runtime, ServeOptions};
use stsward_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);
const DOMAIN: &str = "customer.test";

async fn lab_dns(records: Vec<LabRecord>) -> (DnsServer, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let zone = Zone {
            origin: "sender.test".into(),
            records,
            dnssec: Dnssec::Off,
        };
        let opts = DnsServerOptions {
            now: time::OffsetDateTime::now_utc(),
            plain: true,
        };
        let server = DnsServer::start(udp, tcp, &[zone], opts).expect("lab DNS starts");
        return (server, addr);
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A TLS-RPT report e-mail (RFC 8460 §5.3) from `sender.test` about `DOMAIN`.
fn report_mail(report_id: &str) -> Vec<u8> {
    let json = report_json(report_id, "Sender Lab");
    format!(
        "From: TLS reports <tlsrpt@sender.test>\r\n\
         To: tlsrpt@provider.test\r\n\
         Subject: Report Domain: {DOMAIN} Submitter: sender.test Report-ID: <{report_id}>\r\n\
         Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{report_id}@sender.test>\r\n\
         TLS-Report-Domain: {DOMAIN}\r\n\
         TLS-Report-Submitter: sender.test\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nA TLS report.\r\n\
         --b1\r\nContent-Type: application/tlsrpt+json\r\n\
         Content-Disposition: attachment; filename=\"sender.test!{DOMAIN}!1764720000!1764806399.json\"\r\n\r\n\
         {json}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// A report with 7 successful and 2 failed sessions.
fn report_json(report_id: &str, org: &str) -> String {
    format!(
        "{{\"organization-name\":\"{org}\",\"date-range\":{{\"start-datetime\":\"2026-12-02T00:00:00Z\",\
         \"end-datetime\":\"2026-12-02T23:59:59Z\"}},\"contact-info\":\"tlsrpt@sender.test\",\
         \"report-id\":\"{report_id}\",\"policies\":[{{\"policy\":{{\"policy-type\":\"sts\",\
         \"policy-string\":[\"version: STSv1\",\"mode: testing\",\"mx: mx.{DOMAIN}\",\"max_age: 86400\"],\
         \"policy-domain\":\"{DOMAIN}\"}},\"summary\":{{\"total-successful-session-count\":7,\
         \"total-failure-session-count\":2}},\"failure-details\":[{{\"result-type\":\"certificate-expired\",\
         \"sending-mta-ip\":\"192.0.2.1\",\"receiving-mx-hostname\":\"mx.{DOMAIN}\",\
         \"failed-session-count\":2}}]}}]}}"
    )
}

/// Reads one SMTP reply (all its lines); its code.
async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> u16 {
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, r.read_line(&mut line))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3).and_then(|c| c.parse().ok()).expect("code");
        }
    }
}

/// Sends one message over SMTP; the code after DATA.
async fn send(addr: SocketAddr, message: &[u8]) -> u16 {
    let tcp = TcpStream::connect(addr).await.expect("connect SMTP");
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    assert_eq!(reply(&mut r).await, 220);
    for (cmd, code) in [
        ("EHLO sender.test\r\n", 250),
        ("MAIL FROM:<tlsrpt@sender.test>\r\n", 250),
        ("RCPT TO:<tlsrpt@provider.test>\r\n", 250),
        ("DATA\r\n", 354),
    ] {
        w.write_all(cmd.as_bytes()).await.expect("write");
        assert_eq!(reply(&mut r).await, code, "{cmd}");
    }
    w.write_all(message).await.expect("write body");
    w.write_all(b".\r\n").await.expect("write end");
    let code = reply(&mut r).await;
    w.write_all(b"QUIT\r\n").await.expect("write");
    code
}

/// POSTs a report to the policy host over TLS with curl; the HTTP status.
async fn post(https: SocketAddr, ca: &std::path::Path, body: &str) -> u16 {
    let host = format!("mta-sts.{DOMAIN}");
    let mut curl = std::process::Command::new("curl");
    curl.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("--resolve")
    .arg(format!("{host}:{}:{}", https.port(), https.ip()))
    .arg("--cacert")
    .arg(ca)
    .args([
        "-H",
        "Content-Type: application/tlsrpt+json",
        "--data-binary",
        body,
    ])
    .arg(format!("https://{host}:{}/tlsrpt", https.port()));
    let out = tokio::task::spawn_blocking(move || curl.output())
        .await
        .expect("join")
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("status")
}

fn ca_pem(pki: &Pki, dir: &std::path::Path) -> std::path::PathBuf {
    let pem = openssl::x509::X509::from_der(&pki.ca)
        .and_then(|c| c.to_pem())
        .expect("CA as PEM");
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem).expect("write CA");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_by_mail_and_post_are_stored_once_and_unsigned_mail_is_quarantined() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki(dir.path(), &[&format!("mta-sts.{DOMAIN}")]);
    let ca = ca_pem(&pki, dir.path());
    let sender = DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).expect("key");
    let (dns, dns_addr) = lab_dns(vec![sender.txt_record()]).await;
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let text = format!(
        "{}\n[intake_smtp]\nlisten = [\"127.0.0.1:0\"]\nreport_addresses = [\"tlsrpt@provider.test\"]\n\
         [intake_https]\nenabled = true\n[reports]\ndkim_resolver = \"{dns_addr}\"\ndkim_timeout = 5\n",
        config_text(&pki, &url, false)
    );
    let cfg: ServeConfig = text.parse().expect("test config");
    let runtime = Runtime::start(cfg, ServeOptions::default())
        .await
        .expect("the runtime starts");
    let started = runtime.started().clone();
    let service = runtime.service().clone();
    let now = Clock::system().now();
    let tenant = service.default_tenant(now).await.expect("tenant");
    service
        .add(
            tenant,
            &AddDomain {
                domain: DOMAIN.into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec![format!("mx.{DOMAIN}")])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(runtime.run(async {
        let _ = stopped.await;
    }));
    let smtp = *started.smtp.first().expect("the SMTP listener is bound");
    let store = Store::open(&url).await.expect("store");

    // Signed by the reporting domain, key in the lab DNS: stored; again: acknowledged, once.
    let signed = sender.sign(&report_mail("signed-1")).expect("sign");
    assert_eq!(send(smtp, &signed).await, 250);
    assert_eq!(send(smtp, &signed).await, 250);
    let totals = store.reports_stored_totals().await.expect("totals");
    assert_eq!(
        (totals.reports, totals.successful, totals.failed),
        (1, 7, 2)
    );

    // Unsigned: acknowledged (nothing accepted is lost) but quarantined with the reason.
    assert_eq!(send(smtp, &report_mail("unsigned-1")).await, 250);
    let totals = store.reports_stored_totals().await.expect("totals");
    assert_eq!(totals.reports, 1, "the unsigned report is not counted");
    let quarantined = store.quarantine_list(false, None, 10).await.expect("list");
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0].channel, "smtp");
    assert!(
        quarantined[0].reason.contains("DKIM"),
        "{}",
        quarantined[0].reason
    );

    // HTTPS POST on the policy host (RFC 8460 §5.4): 201 when stored, 200 for a repeat.
    let https = started.https[0];
    let body = report_json("posted-1", "Poster Lab");
    assert_eq!(post(https, &ca, &body).await, 201);
    assert_eq!(post(https, &ca, &body).await, 200);
    let totals = store.reports_stored_totals().await.expect("totals");
    assert_eq!(
        (totals.reports, totals.successful, totals.failed),
        (2, 14, 4)
    );

    let _ = stop.send(());
    tokio::time::timeout(WAIT, task)
        .await
        .expect("serve stops")
        .expect("join")
        .expect("run");
    store.close().await;
    dns.shutdown().await;
}
