//! RFC 8461 §3.1: the `_mta-sts` records published by postfix-mta-sts-resolver's test zone
//! (corpus `peer-tests/snawoot/dnsmasq.conf.appendix`, read in place), judged by `evaluate`.

use std::path::PathBuf;

use stsward_proto::Severity;
use stsward_proto::mta_sts::evaluate;

fn corpus() -> Option<PathBuf> {
    stsward_testkit::corpus("stsward-proto/rfc8461_txt_record")
}

/// `txt-record=_mta-sts.<zone>,"<text>"` lines → (zone, text).
fn txt_records(conf: &str) -> Vec<(String, String)> {
    conf.lines()
        .filter_map(|line| line.strip_prefix("txt-record=_mta-sts."))
        .filter_map(|rest| {
            let (zone, quoted) = rest.split_once(',')?;
            let text = quoted.strip_prefix('"')?.strip_suffix('"')?;
            Some((zone.to_owned(), text.to_owned()))
        })
        .collect()
}

#[test]
fn rfc8461_3_1_peer_test_zone_records() {
    let Some(dir) = corpus() else { return };
    let conf = std::fs::read_to_string(dir.join("peer-tests/snawoot/dnsmasq.conf.appendix"))
        .expect("dnsmasq.conf.appendix");
    let records = txt_records(&conf);
    assert_eq!(records.len(), 19, "records in the peer test zone");
    for (zone, text) in &records {
        let out = evaluate(&[text.as_str()], &format!("_mta-sts.{zone}"));
        let codes: Vec<(&str, Severity)> = out
            .findings
            .iter()
            .map(|f| (f.code.as_str(), f.severity))
            .collect();
        // (expected findings, whether senders use the record, reason)
        let (want, used, why): (&[(&str, Severity)], bool, &str) = match zone.as_str() {
            "bad-record1.loc" => (
                &[("sts.txt.version", Severity::Error)],
                false,
                "id before v=STSv1",
            ),
            "bad-record2.loc" => (
                &[
                    ("sts.txt.unrelated", Severity::Info),
                    ("sts.txt.missing", Severity::Info),
                ],
                false,
                "garbage is not an MTA-STS record",
            ),
            "bad-record3.loc" => (
                &[("sts.txt.version", Severity::Error)],
                false,
                "v=STSv12 is another version",
            ),
            _ => (&[("sts.txt.ok", Severity::Ok)], true, "good record"),
        };
        assert_eq!(codes, want, "{zone}: {why}");
        assert_eq!(out.record.is_some(), used, "{zone}: {why}");
        if let Some(r) = out.record {
            assert_eq!(r.id.as_str(), "20180907T090909", "{zone}");
            assert_eq!(r.to_string(), "v=STSv1; id=20180907T090909;");
        }
    }
}

#[test]
fn rfc8461_3_1_split_strings_are_joined_before_evaluation() {
    // §3.1: strings of one TXT record are concatenated without spaces; the caller does that,
    // and the joined text must then parse.
    let joined = ["v=STSv1; ", "id=2024"].concat();
    let out = evaluate(&[joined], "_mta-sts.example.com");
    assert_eq!(
        out.record.map(|r| r.id.to_string()),
        Some("2024".to_owned())
    );
}
