//! `stsward domain …` run as a real process: a temporary SQLite store, a configuration file,
//! and the lab's DNS on loopback for the MX lookups (`--resolver`).

use std::path::PathBuf;
use std::process::Command;

use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};

const SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "hosted.test"
mx = [{ host = "mx1.hosted.test", preference = 10 }, { host = "mx2.hosted.test", preference = 20 }]

[[domain]]
name = "nomx.test"

# domain verify: the customer published the CNAMEs for the policy host and _mta-sts, and no
# _smtp._tls record.
[[domain]]
name = "delegated.test"
mx = [{ host = "mx.delegated.test" }]
cname = [
  { name = "mta-sts.delegated.test", target = "mta-sts.provider.test" },
  { name = "_mta-sts.delegated.test", target = "_mta-sts.delegated.test.sts.provider.test" },
]

# domain verify: the customer keeps an own TXT with a stale id and an own TLSRPT record.
[[domain]]
name = "selftxt.test"
mx = [{ host = "mx.selftxt.test" }]
sts_txt = ["v=STSv1; id=stale1;"]
tlsrpt_txt = ["v=TLSRPTv1; rua=mailto:tlsrpt@provider.test"]

# The provider's own zone, so that the lab answers NXDOMAIN (not REFUSED) under it.
[[domain]]
name = "provider.test"
"#;

/// Fields drop in order: the lab's servers stop before their runtime goes.
struct World {
    lab: RunningLab,
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn world() -> World {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let mut opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    opts.plain_dns = true;
    let lab = rt
        .block_on(Lab::start(&scenario, &opts))
        .expect("lab starts");
    let config = dir.path().join("stsward.toml");
    std::fs::write(
        &config,
        format!(
            "[hosting]\nzone = \"sts.provider.test\"\npolicy_host = \"mta-sts.provider.test\"\n\
             policy_host_addrs = [\"192.0.2.10\"]\ntlsrpt_rua = \"mailto:tlsrpt@provider.test\"\n\
             [store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("stsward.db").display()
        ),
    )
    .expect("config");
    World {
        lab,
        _rt: rt,
        dir,
        config,
    }
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl World {
    fn domain(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
            .arg("domain")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--resolver")
            .arg(self.lab.resolver_addr().to_string())
            .env_remove("STSWARD_STORE")
            .output()
            .expect("run stsward");
        Run {
            code: out.status.code().expect("exit code"),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = self.domain(&all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        serde_json::from_str(&r.out).expect("JSON")
    }
}

#[test]
fn add_show_set_records_sync_and_remove_through_the_binary() {
    let w = world();
    // Defaults: testing, the MX hosts in the lab's DNS, one week.
    let r = w.domain(&["add", "Hosted.Test."]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.starts_with("hosted.test: added: version 1, id "),
        "{}",
        r.out
    );
    assert!(r.out.contains("mode: testing\n"), "{}", r.out);
    assert!(
        r.out
            .contains("mx: mx1.hosted.test\n    mx: mx2.hosted.test\n"),
        "{}",
        r.out
    );

    let shown = w.json(&["show", "hosted.test"]);
    assert_eq!(shown["state"], "active");
    assert_eq!(shown["current"]["max_age"], 604800);
    let v1_id = shown["current"]["sts_id"].as_str().expect("id").to_owned();
    assert_eq!(
        shown["current"]["policy"],
        "version: STSv1\r\nmode: testing\r\nmx: mx1.hosted.test\r\nmx: mx2.hosted.test\r\nmax_age: 604800\r\n"
    );

    // Invalid input names the field, exits 1, and changes nothing.
    let r = w.domain(&["set", "hosted.test", "--max-age", "31557601"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.starts_with("stsward: max_age: "), "{}", r.err);
    let r = w.domain(&["set", "hosted.test", "--mx", "*"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.starts_with("stsward: mx: "), "{}", r.err);
    assert_eq!(
        w.json(&["show", "hosted.test"])["history"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A real change: a new version, a new id.
    let changed = w.json(&[
        "set",
        "hosted.test",
        "--mode",
        "enforce",
        "--mx",
        "old.hosted.test",
        "--mx",
        "mx1.hosted.test",
    ]);
    assert_eq!(changed["changed"], true);
    assert_eq!(changed["version"]["version"], 2);
    assert_ne!(changed["version"]["sts_id"].as_str(), Some(v1_id.as_str()));

    // The records point into the zone; the table has one row per record.
    let r = w.domain(&["records", "hosted.test"]);
    assert_eq!(r.code, 0, "{}", r.err);
    for line in [
        "mta-sts.hosted.test. IN CNAME mta-sts.provider.test.\n",
        "_mta-sts.hosted.test. IN CNAME _mta-sts.hosted.test.sts.provider.test.\n",
        "_smtp._tls.hosted.test. IN CNAME _smtp._tls.hosted.test.sts.provider.test.\n",
        "; mta-sts.hosted.test. IN A 192.0.2.10\n",
    ] {
        assert!(r.out.contains(line), "{line:?} missing from:\n{}", r.out);
    }
    let id2 = changed["version"]["sts_id"].as_str().expect("id");
    assert!(
        r.out.contains(&format!("\"v=STSv1; id={id2};\"")),
        "{}",
        r.out
    );
    assert!(r.out.contains("Host "), "{}", r.out);
    let table = r.out.split("\nHost ").nth(1).expect("table");
    assert_eq!(table.lines().count(), 1 + 5, "header + 5 rows:\n{table}");
    let records = w.json(&["records", "hosted.test"]);
    assert_eq!(
        records["served"][0]["name"],
        "_mta-sts.hosted.test.sts.provider.test."
    );

    // sync-mx: DNS has mx1 and mx2; old.hosted.test goes, with the enforce warning.
    let r = w.domain(&["sync-mx", "hosted.test"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("mx synchronised: version 3"), "{}", r.out);
    assert!(
        r.err
            .contains("warning: mx old.hosted.test dropped from an enforce policy"),
        "{}",
        r.err
    );
    assert!(r.err.contains("max_age"), "{}", r.err);
    let r = w.domain(&["sync-mx", "hosted.test"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("unchanged: version 3"), "{}", r.out);

    // Options: no new version, the rua override reaches the records.
    let r = w.domain(&[
        "set",
        "hosted.test",
        "--follow-mx",
        "on",
        "--tlsrpt-rua",
        "mailto:own@hosted.test",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains("follow mx on, tlsrpt rua mailto:own@hosted.test"),
        "{}",
        r.out
    );
    let records = w.json(&["records", "hosted.test"]);
    assert_eq!(
        records["served"][1]["value"],
        "v=TLSRPTv1; rua=mailto:own@hosted.test"
    );
    let r = w.domain(&["set", "hosted.test", "--tlsrpt-rua", "ftp://x.test"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.starts_with("stsward: tlsrpt_rua: "), "{}", r.err);
    let shown = w.json(&["show", "hosted.test"]);
    assert_eq!(shown["current"]["version"], 3, "options make no version");
    assert_eq!(shown["domain"]["follow_mx"], true);
    // The own-TXT setting: stored for the scheduler, shown with what it found so far.
    let r = w.domain(&["set", "hosted.test", "--own-txt", "on"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("own _mta-sts TXT on"), "{}", r.out);
    assert_eq!(
        w.json(&["show", "hosted.test"])["checks"]["own_sts_txt"],
        true
    );
    let r = w.domain(&["show", "hosted.test"]);
    for line in [
        "  mx follow: not checked yet\n",
        "  own _mta-sts TXT: not checked yet\n",
        "  next check: at once\n",
        "  policy fetches (last 7 days): 0 from 0 networks\n",
    ] {
        assert!(r.out.contains(line), "{line:?} in\n{}", r.out);
    }

    // Remove: mode none under a new id, gone after the old max_age.
    let r = w.domain(&["remove", "hosted.test"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains("removing (RFC 8461 §8.3): serving mode none under id "),
        "{}",
        r.out
    );
    let list = w.json(&["list"]);
    assert_eq!(list[0]["state"], "removing");
    assert_eq!(list[0]["mode"], "none");
    assert!(list[0]["gone_at"].as_i64().is_some());
    let r = w.domain(&["set", "hosted.test", "--mode", "enforce"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("is being removed"), "{}", r.err);
    let r = w.domain(&["show", "hosted.test"]);
    assert!(r.out.contains("state:    removing (gone at "), "{}", r.out);
}

#[test]
fn verify_says_which_records_are_in_place_and_how_to_fix_the_rest() {
    let w = world();
    for d in ["delegated.test", "selftxt.test"] {
        let r = w.domain(&["add", d]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    }
    let r = w.domain(&["verify", "delegated.test"]);
    assert_eq!(
        r.code, 1,
        "the _smtp._tls CNAME is missing: {}{}",
        r.out, r.err
    );
    assert!(
        r.out
            .contains("in place  mta-sts.delegated.test.  (CNAME to mta-sts.provider.test)"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("in place  _mta-sts.delegated.test.  (CNAME to _mta-sts.delegated.test.sts.provider.test)"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("missing   _smtp._tls.delegated.test.  fix: publish _smtp._tls.delegated.test. IN CNAME _smtp._tls.delegated.test.sts.provider.test."),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("delegated.test: 1 of 3 records need a fix"),
        "{}",
        r.out
    );

    let r = w.domain(&["verify", "selftxt.test", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let v: serde_json::Value = serde_json::from_str(&r.out).expect("JSON");
    let records = v["records"].as_array().expect("records");
    assert_eq!(records.len(), 3, "{v}");
    assert_eq!(records[0]["state"], "missing", "no mta-sts host: {v}");
    assert_eq!(records[1]["state"], "wrong", "{v}");
    let found = records[1]["found"].as_str().expect("found");
    let shown = w.json(&["show", "selftxt.test"]);
    let id = shown["current"]["sts_id"].as_str().expect("current id");
    assert!(
        found.contains("id=stale1") && found.contains(id),
        "names the stale and the served id: {found} / {id}"
    );
    assert_eq!(
        records[2]["state"], "in-place",
        "own TLSRPT naming our rua: {v}"
    );
}

#[test]
fn refusals_and_failures_exit_1_and_2() {
    let w = world();
    // No MX records and no --mx: refused, nothing added.
    let r = w.domain(&["add", "nomx.test"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("no MX records") && r.err.contains("--mx"),
        "{}",
        r.err
    );
    let r = w.domain(&["list"]);
    assert_eq!(r.out, "no hosted domains\n");
    // Explicit patterns work without DNS.
    let r = w.domain(&[
        "add",
        "nomx.test",
        "--mx",
        "mx.elsewhere.test",
        "--mode",
        "enforce",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    // Added twice: refused.
    let r = w.domain(&["add", "nomx.test", "--mx", "mx.elsewhere.test"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("already hosted"), "{}", r.err);
    // Not hosted, not a name.
    let r = w.domain(&["show", "other.test"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("other.test is not a hosted domain"),
        "{}",
        r.err
    );
    let r = w.domain(&["show", "192.0.2.1"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("IP address"), "{}", r.err);
    // Nothing to change is a usage error.
    let r = w.domain(&["set", "nomx.test"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("nothing to change"), "{}", r.err);
    // A bad configuration names the key.
    let bad = w.dir.path().join("bad.toml");
    std::fs::write(&bad, "[hosting]\ntxt_ttl = 0\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(["domain", "list", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hosting.txt_ttl"), "{err}");
    // --store overrides the configuration's store.
    let other = format!("sqlite://{}", w.dir.path().join("other.db").display());
    let r = w.domain(&["list", "--store", &other]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "no hosted domains\n"),
        "{}",
        r.err
    );
}

#[test]
fn import_names_the_file_line_and_field_and_skips_hosted_domains() {
    let w = world();
    let bad = w.dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "# customers\nok.test\nx.test mode=strict\nhosted.test\n",
    )
    .expect("write");
    let r = w.domain(&[
        "import",
        bad.to_str().expect("utf-8 path"),
        "--mx",
        "mx.example.net",
    ]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains(&format!("{}:3: mode:", bad.display())),
        "names the file, line and field: {}",
        r.err
    );
    assert_eq!(
        w.domain(&["list"]).out,
        "no hosted domains\n",
        "nothing written"
    );

    let r = w.domain(&["add", "hosted.test", "--mx", "mx1.hosted.test"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let good = w.dir.path().join("good.txt");
    std::fs::write(
        &good,
        "ok.test\nhosted.test\nenf.test mode=enforce mx=mx.enf.test max_age=86400\n",
    )
    .expect("write");
    let path = good.to_str().expect("utf-8 path");
    let r = w.domain(&["import", path, "--mx", "mx.example.net"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains("line 2: hosted.test: already hosted; skipped"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .ends_with("2 domain(s) imported, 1 already hosted and skipped\n"),
        "{}",
        r.out
    );
    let shown = w.json(&["show", "enf.test"]);
    assert_eq!(shown["current"]["mode"], "enforce", "{shown}");
    assert_eq!(shown["current"]["max_age"], 86400, "{shown}");
    // Again: nothing is added twice.
    let again = w.json(&["import", path, "--mx", "mx.example.net"]);
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!(
        again["skipped"].as_array().map(Vec::len),
        Some(3),
        "{again}"
    );
    // No default mx and none on the line: refused before anything is written.
    let nomx = w.dir.path().join("nomx.txt");
    std::fs::write(&nomx, "new.test\n").expect("write");
    let r = w.domain(&["import", nomx.to_str().expect("utf-8 path")]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("nomx.txt:1: mx:"), "{}", r.err);
}

#[test]
fn readiness_lists_each_criterion_and_exits_1_until_every_one_holds() {
    let w = world();
    assert_eq!(w.domain(&["add", "hosted.test"]).code, 0);
    let r = w.domain(&["readiness", "hosted.test"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(
        r.out
            .starts_with("hosted.test: not ready for enforce (mode testing)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("  FAIL  days-in-testing ")
            && r.out.contains("  pass  blocking-failures ")
            && r.out
                .contains("next step: keep the policy in testing until "),
        "{}",
        r.out
    );
    let mut all = vec!["readiness", "hosted.test", "--json"];
    let r = w.domain(&all);
    assert_eq!(r.code, 1, "{}", r.err);
    let v: serde_json::Value = serde_json::from_str(&r.out).expect("JSON");
    assert_eq!(v["verdict"], "not-ready");
    assert_eq!(v["criteria"].as_array().map(Vec::len), Some(7));

    // A [readiness] key out of range names the key and exits 2.
    let text = std::fs::read_to_string(&w.config).expect("config");
    std::fs::write(&w.config, format!("{text}[readiness]\nwindow_days = 0\n")).expect("config");
    all.pop();
    let r = w.domain(&all);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.err.contains("readiness.window_days"), "{}", r.err);
    // Not hosted: exit 1.
    std::fs::write(&w.config, text).expect("config");
    let r = w.domain(&["readiness", "unknown.test"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let _ = &w.dir;
}
