//! The packages (issue 11, packaging; docs/packaging.md), built only with the
//! `package-tests` feature: `scripts/test` runs this target in a step of its own, after the
//! parallel test run, because it makes a release build and installs a .deb on the machine.
//!
//! - The .deb: `scripts/build-deb` builds it with cargo-deb, `dpkg -i` installs it, and the
//!   installed binary, user, conffile, secrets, completions, man pages and systemd units are
//!   checked (`systemd-analyze verify`); `dpkg --purge` removes it again, also when an
//!   assertion failed.
//! - The Dockerfile (no Docker engine here, and Debian has no hadolint): its last stage's
//!   ENTRYPOINT and CMD run against the release binary as the image would run them, with the
//!   image's config at /etc/stsward and a fresh state directory at /var/lib/stsward (bind
//!   mounts in a private mount namespace), as the image's non-root USER with
//!   cap_net_bind_service set on a copy of the binary and no other capability, in a private
//!   network namespace (loopback only: nothing reaches the internet, and ports 25/53/80/443
//!   of the machine stay free). It must answer DNS, HTTP, HTTPS and /metrics, then stop.
//!
//! Both need root; otherwise they are skipped and recorded (`stsward-testkit`'s rule).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

const GROUP_DEB: &str = "stsward/package-deb";
const GROUP_DOCKER: &str = "stsward/package-dockerfile";

/// Both tests use /etc/stsward and /var/lib/stsward of this machine (the package, or the
/// mount points of the image's paths): one at a time.
static MACHINE: Mutex<()> = Mutex::new(());

fn machine() -> MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process runs as root (effective uid 0, from procfs).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether `program` can be run (`program --version`, or `--help` for those without it).
fn runnable(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The tools a test needs, each with the Debian package that has it; `false` when one is
/// missing (skipped and recorded; a failure under `CI`).
fn tools_present(group: &str, tools: &[(&str, &str, &str)]) -> bool {
    for (program, arg, package) in tools {
        if !runnable(program, arg) {
            stsward_testkit::missing(
                group,
                &format!(
                    "{program} is not installed (Debian package {package}; scripts/install-test-deps)"
                ),
            );
            return false;
        }
    }
    true
}

/// Runs `program args` under coreutils' `timeout` (killed `secs` seconds on) and returns
/// its output.
fn run(secs: u32, program: &str, args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .args(["--kill-after=10", &secs.to_string(), program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if out.status.code() == Some(124) || out.status.code() == Some(137) {
        panic!(
            "{program} {args:?} did not finish within {secs} s:\n{}",
            text(&out)
        );
    }
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs and asserts success; returns standard output.
fn ok(secs: u32, program: &str, args: &[&str]) -> String {
    let out = run(secs, program, args);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workspace() -> PathBuf {
    stsward_testkit::workspace_root()
}

/// `dpkg --purge stsward` when dropped (the test passed or an assertion failed), and the
/// user and group removed when the test created them.
struct PurgeGuard {
    user_existed: bool,
}

impl Drop for PurgeGuard {
    fn drop(&mut self) {
        let out = run(300, "dpkg", &["--purge", "stsward"]);
        if !out.status.success() {
            eprintln!("dpkg --purge stsward: {}", text(&out));
        }
        if !self.user_existed {
            let _ = run(60, "userdel", &["stsward"]);
            let _ = run(60, "groupdel", &["stsward"]);
        }
    }
}

fn installed(package: &str) -> bool {
    run(60, "dpkg-query", &["-W", "-f=${Status}", package])
        .stdout
        .starts_with(b"install ok installed")
}

/// The mode bits and the group name of `path`, from `stat`.
fn mode_owner_group(path: &str) -> String {
    ok(30, "stat", &["-c", "%a %U %G", path]).trim().to_owned()
}

#[test]
fn deb_installs_the_binary_user_conffile_completions_man_pages_and_units_then_purges() {
    if !is_root() {
        stsward_testkit::skip(
            GROUP_DEB,
            "needs root: dpkg -i installs the package on this machine",
        );
        return;
    }
    if !tools_present(
        GROUP_DEB,
        &[
            ("dpkg", "--version", "dpkg"),
            ("systemd-analyze", "--version", "systemd"),
            ("man", "--version", "man-db"),
            ("adduser", "--version", "adduser"),
            ("setpriv", "--version", "util-linux"),
        ],
    ) {
        return;
    }
    let _machine = machine();
    assert!(
        !installed("stsward"),
        "a stsward package is installed already; this test would purge it: remove it first \
         (dpkg --purge stsward)"
    );

    // Build: scripts/build-deb prints the .deb's path on its last line.
    let root = workspace();
    let script = root.join("scripts/build-deb");
    let built = ok(3600, "bash", &[script.to_str().expect("UTF-8 path")]);
    let deb = built.lines().last().unwrap_or_default().trim().to_owned();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).is_file(),
        "scripts/build-deb printed no .deb path:\n{built}"
    );
    let fields = ok(60, "dpkg-deb", &["-f", &deb, "Package", "Depends"]);
    assert!(fields.contains("Package: stsward"), "{fields}");
    assert!(fields.contains("adduser"), "{fields}");

    let user_existed = run(30, "getent", &["passwd", "stsward"]).status.success();
    let _purge = PurgeGuard { user_existed };
    let out = run(600, "dpkg", &["-i", &deb]);
    assert!(out.status.success(), "dpkg -i {deb}: {}", text(&out));

    // The binary, as installed, and without the lab.
    let version = ok(30, "/usr/bin/stsward", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("stsward {}", env!("CARGO_PKG_VERSION"))
    );
    let lab = run(30, "/usr/bin/stsward", &["lab", "--help"]);
    assert_eq!(lab.status.code(), Some(2), "the shipped binary has no lab");

    // The system user and group, and the state directory.
    let passwd = ok(30, "getent", &["passwd", "stsward"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields.get(5), Some(&"/var/lib/stsward"), "{passwd}");
    assert_eq!(fields.get(6), Some(&"/usr/sbin/nologin"), "{passwd}");
    let uid: u32 = fields.get(2).and_then(|u| u.parse().ok()).expect("uid");
    assert!(uid < 1000, "a system user: {passwd}");
    ok(30, "getent", &["group", "stsward"]);
    assert_eq!(mode_owner_group("/var/lib/stsward"), "750 stsward stsward");

    // The default configuration, as a conffile, and the secrets it names.
    let shipped = std::fs::read_to_string(root.join("dist/stsward.toml")).expect("dist config");
    let installed_config =
        std::fs::read_to_string("/etc/stsward/stsward.toml").expect("/etc/stsward/stsward.toml");
    assert_eq!(installed_config, shipped);
    let conffiles = ok(30, "dpkg-query", &["-W", "-f=${Conffiles}", "stsward"]);
    assert!(
        conffiles
            .lines()
            .any(|l| l.trim_start().starts_with("/etc/stsward/stsward.toml ")),
        "the config is a conffile: {conffiles:?}"
    );
    for secret in ["/etc/stsward/secret.key", "/etc/stsward/api-token"] {
        let value = std::fs::read_to_string(secret).unwrap_or_else(|e| panic!("{secret}: {e}"));
        assert!(
            value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "{secret}: 64 hex digits, not {value:?}"
        );
        assert_eq!(mode_owner_group(secret), "640 root stsward", "{secret}");
    }

    // The installed config works for the service user: `stsward domain list` reads it and
    // creates the SQLite store in the state directory.
    let listed = ok(
        60,
        "setpriv",
        &[
            "--reuid=stsward",
            "--regid=stsward",
            "--init-groups",
            "--",
            "/usr/bin/stsward",
            "domain",
            "list",
            "--json",
            "--config",
            "/etc/stsward/stsward.toml",
        ],
    );
    assert!(listed.trim_start().starts_with('['), "{listed}");
    assert!(Path::new("/var/lib/stsward/stsward.db").is_file());

    // Completions and man pages where the shells and man look for them.
    for path in [
        "/usr/share/bash-completion/completions/stsward",
        "/usr/share/zsh/vendor-completions/_stsward",
        "/usr/share/fish/vendor_completions.d/stsward.fish",
    ] {
        let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(body.contains("serve"), "{path}");
    }
    let bash = ok(
        30,
        "bash",
        &["-n", "/usr/share/bash-completion/completions/stsward"],
    );
    assert!(bash.is_empty(), "{bash}");
    let page = ok(30, "man", &["-w", "stsward-serve"]);
    assert_eq!(page.trim(), "/usr/share/man/man1/stsward-serve.1.gz");
    let shown = run(30, "man", &["--warnings", "-P", "cat", "stsward"]);
    assert!(shown.status.success(), "man stsward: {}", text(&shown));
    assert!(
        shown.stderr.is_empty(),
        "man stsward warns: {}",
        text(&shown)
    );
    assert!(String::from_utf8_lossy(&shown.stdout).contains("stsward-serve(1)"));
    for doc in [
        "README.md",
        "serve.md",
        "resolver.md",
        "packaging.md",
        "copyright",
    ] {
        let path = Path::new("/usr/share/doc/stsward").join(doc);
        assert!(path.is_file(), "{}", path.display());
    }

    // The units: installed, accepted by systemd-analyze, and not enabled.
    let units = [
        "/lib/systemd/system/stsward.service",
        "/lib/systemd/system/stsward-resolve.service",
    ];
    let mut verify = vec!["verify"];
    verify.extend(units);
    let out = run(120, "systemd-analyze", &verify);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&out)
    );
    for unit in ["stsward.service", "stsward-resolve.service"] {
        let wants = Path::new("/etc/systemd/system/multi-user.target.wants").join(unit);
        assert!(!wants.exists(), "{unit} is not enabled by the package");
    }
    let service = std::fs::read_to_string(units[0]).expect("stsward.service");
    for line in [
        "ExecStart=/usr/bin/stsward serve --config /etc/stsward/stsward.toml",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=stsward",
        "User=stsward",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "stsward.service: {line}"
        );
    }

    // Purge: the package, its conffile, state and secrets go.
    let out = run(300, "dpkg", &["--purge", "stsward"]);
    assert!(out.status.success(), "dpkg --purge: {}", text(&out));
    assert!(!installed("stsward"));
    for gone in [
        "/usr/bin/stsward",
        "/etc/stsward/stsward.toml",
        "/etc/stsward/secret.key",
        "/var/lib/stsward",
        units[0],
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is gone after purge");
    }
}

/// The last stage of the Dockerfile: its ENTRYPOINT + CMD, its numeric USER, and the
/// files it copies from the build context (image path, context path).
struct RuntimeStage {
    command: Vec<String>,
    uid: u32,
    gid: u32,
    copies: Vec<(String, PathBuf)>,
    exposed: Vec<String>,
}

/// Reads the Dockerfile's instructions (continuation lines joined, comments dropped) and
/// keeps those of the last stage.
fn runtime_stage(dockerfile: &Path) -> RuntimeStage {
    let text = std::fs::read_to_string(dockerfile).expect("read the Dockerfile");
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM line");
    let stage = &instructions[last_from..];
    let json_array = |keyword: &str| -> Vec<String> {
        let arg = stage
            .iter()
            .rev()
            .find_map(|i| i.strip_prefix(keyword))
            .unwrap_or_else(|| panic!("the runtime stage has {keyword}"));
        serde_json::from_str(arg.trim())
            .unwrap_or_else(|e| panic!("{keyword} in exec (JSON) form: {e}: {arg}"))
    };
    let mut command = json_array("ENTRYPOINT ");
    command.extend(json_array("CMD "));
    let user = stage
        .iter()
        .rev()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("a USER line");
    let (uid, gid) = user
        .trim()
        .split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        .unwrap_or_else(|| panic!("USER uid:gid, numeric: {user}"));
    let root = dockerfile.parent().expect("the context");
    let copies = stage
        .iter()
        .filter_map(|i| i.strip_prefix("COPY "))
        .filter(|args| !args.starts_with("--from"))
        .map(|args| {
            let parts: Vec<&str> = args.split_whitespace().collect();
            let [source, dest] = parts[..] else {
                panic!("COPY with one source and one destination: {args}");
            };
            (dest.to_owned(), root.join(source))
        })
        .collect();
    let exposed = stage
        .iter()
        .filter_map(|i| i.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().map(str::to_owned))
        .collect();
    RuntimeStage {
        command,
        uid,
        gid,
        copies,
        exposed,
    }
}

/// Runs inside the private mount and network namespaces: the image's paths bound, the
/// command started as the image's user with only CAP_NET_BIND_SERVICE in its bounding set,
/// its ports probed, then a clean stop. Every wait has a deadline. Prints `PROBE` lines.
const IMAGE_RUN: &str = r#"
set -u
ip link set lo up
mount --bind "$ETC_DIR" /etc/stsward
mount --bind "$STATE_DIR" /var/lib/stsward
cd /var/lib/stsward
setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups \
    --inh-caps=-all --bounding-set=-all,+net_bind_service -- "$@" >"$LOG" 2>&1 &
pid=$!
up=no
for _ in $(seq 1 150); do
    if (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then up=yes; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
done
echo "PROBE up $up"
grep -E '^(Uid|CapEff|CapBnd):' "/proc/$pid/status" | sed 's/^/PROBE /; s/\t/ /g'
http_get() { # port path -> status line, then the body's line count that matches $3
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
    timeout 5 cat <&3 >"$STATE_DIR/.probe" || true
    exec 3<&-
    echo "PROBE http$1 $(head -n1 "$STATE_DIR/.probe" | tr -d '\r') $(grep -c "$3" "$STATE_DIR/.probe")"
}
http_get 80 /.well-known/acme-challenge/none x
http_get 8480 /metrics '^# TYPE stsward_'
echo "PROBE dns-udp $(timeout 10 dig +time=2 +tries=2 +short @127.0.0.1 "$ZONE" SOA | head -n1)"
echo "PROBE dns-tcp $(timeout 10 dig +tcp +time=2 +tries=2 +short @127.0.0.1 "$ZONE" NS | head -n1)"
if (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then echo "PROBE https open"; fi
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null && echo "PROBE killed"
wait "$pid"
echo "PROBE exit $?"
"#;

/// Removes the mount points it created on drop.
struct MountPoints(Vec<PathBuf>);

impl Drop for MountPoints {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn dockerfile_command_serves_as_non_root_with_only_cap_net_bind_service() {
    if !is_root() {
        stsward_testkit::skip(
            GROUP_DOCKER,
            "needs root: private mount and network namespaces, and setcap on the binary",
        );
        return;
    }
    if !tools_present(
        GROUP_DOCKER,
        &[
            ("unshare", "--version", "util-linux"),
            ("setpriv", "--version", "util-linux"),
            ("setcap", "-v", "libcap2-bin"),
            ("ip", "-V", "iproute2"),
            ("dig", "-v", "bind9-dnsutils"),
        ],
    ) {
        return;
    }
    let root = workspace();
    let stage = runtime_stage(&root.join("Dockerfile"));
    assert_eq!(
        stage.command[1..],
        ["serve", "--config", "/etc/stsward/stsward.toml"],
        "the image runs stsward serve with its config"
    );
    assert!(
        stage.uid != 0 && stage.gid != 0,
        "the image's USER is not root"
    );
    for port in ["25/tcp", "53/udp", "53/tcp", "80/tcp", "443/tcp"] {
        assert!(stage.exposed.iter().any(|p| p == port), "EXPOSE {port}");
    }
    let _machine = machine();

    // The binary the builder stage makes: the release build, default features, no lab.
    ok(
        3600,
        "cargo",
        &["build", "--release", "-p", "stsward", "--locked"],
    );
    let release = stsward_testkit::target_dir().join("release/stsward");

    // The image's files: the binary with the capability, the config the Dockerfile copies,
    // the secrets an operator mounts, and an empty state volume owned by the image's user.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs = ["bin", "etc", "state"].map(|d| tmp.path().join(d));
    for d in &dirs {
        std::fs::create_dir(d).expect("mkdir");
    }
    let [bin_dir, etc_dir, state_dir] = dirs;
    let bin = bin_dir.join("stsward");
    std::fs::copy(&release, &bin).expect("copy the release binary");
    ok(
        30,
        "setcap",
        &["cap_net_bind_service=+ep", bin.to_str().expect("UTF-8")],
    );
    let mut config_text = None;
    for (dest, source) in &stage.copies {
        if let Some(name) = dest.strip_prefix("/etc/stsward/") {
            std::fs::copy(source, etc_dir.join(name))
                .unwrap_or_else(|e| panic!("COPY {} {dest}: {e}", source.display()));
            if name == "stsward.toml" {
                config_text = Some(std::fs::read_to_string(source).expect("config"));
            }
        }
    }
    let config: toml::Table = config_text
        .expect("the Dockerfile copies a config to /etc/stsward/stsward.toml")
        .parse()
        .expect("the config is TOML");
    let zone = config["hosting"]["zone"].as_str().expect("hosting.zone");
    let ns = config["hosting"]["nameservers"][0]["name"]
        .as_str()
        .expect("hosting.nameservers[0].name");
    std::fs::write(etc_dir.join("secret.key"), "5a".repeat(32)).expect("secret.key");
    std::fs::write(etc_dir.join("api-token"), "image-test-token\n").expect("api-token");
    let owner = format!("{}:{}", stage.uid, stage.gid);
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    ok(
        30,
        "chown",
        &[
            "-R",
            &owner,
            &path(&state_dir),
            &path(&etc_dir.join("secret.key")),
        ],
    );
    ok(30, "chown", &[&owner, &path(&etc_dir.join("api-token"))]);
    ok(
        30,
        "chmod",
        &["0755", &path(tmp.path()), &path(&bin_dir), &path(&etc_dir)],
    );

    // Mount points for the image's paths, when this machine has none (removed afterwards).
    let mut created = Vec::new();
    for dir in ["/etc/stsward", "/var/lib/stsward"] {
        if !Path::new(dir).exists() {
            std::fs::create_dir_all(dir).expect("mount point");
            created.push(PathBuf::from(dir));
        }
    }
    let _mount_points = MountPoints(created);

    let log = tmp.path().join("serve.log");
    let mut args = vec![
        "--mount".to_owned(),
        "--propagation".to_owned(),
        "private".to_owned(),
        "--net".to_owned(),
        "--".to_owned(),
        "bash".to_owned(),
        "-c".to_owned(),
        IMAGE_RUN.to_owned(),
        "image".to_owned(),
        path(&bin),
    ];
    args.extend(stage.command[1..].iter().cloned());
    let out = Command::new("timeout")
        .args(["--kill-after=10", "120", "unshare"])
        .args(&args)
        .env("ETC_DIR", &etc_dir)
        .env("STATE_DIR", &state_dir)
        .env("RUN_UID", stage.uid.to_string())
        .env("RUN_GID", stage.gid.to_string())
        .env("LOG", &log)
        .env("ZONE", zone)
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let shown = format!("{}\nstsward serve's log:\n{logged}", text(&out));
    assert!(out.status.success(), "{shown}");
    let probes: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .collect();
    // Shown with --nocapture: what the image's command answered.
    eprintln!("probes of the image's command: {probes:#?}");
    let has = |want: &str| probes.iter().any(|p| p.starts_with(want));
    assert!(has("up yes"), "it listens on 443:\n{shown}");
    let uid = format!("Uid: {0} {0} {0} {0}", stage.uid);
    assert!(has(&uid), "runs as {}:\n{shown}", stage.uid);
    // Bit 10: CAP_NET_BIND_SERVICE, and nothing else.
    assert!(has("CapEff: 0000000000000400"), "{shown}");
    assert!(has("CapBnd: 0000000000000400"), "{shown}");
    assert!(has("http80 HTTP/1.1 404"), "HTTP on 80:\n{shown}");
    assert!(
        probes
            .iter()
            .any(|p| p.starts_with("http8480 HTTP/1.1 200") && !p.ends_with(" 0")),
        "/metrics on the API:\n{shown}"
    );
    assert!(
        has(&format!("dns-udp {ns}. hostmaster.{zone}. ")),
        "SOA over UDP on 53:\n{shown}"
    );
    assert!(
        has(&format!("dns-tcp {ns}.")),
        "NS over TCP on 53:\n{shown}"
    );
    assert!(has("https open"), "{shown}");
    assert!(!has("killed"), "it stops on SIGTERM:\n{shown}");
    assert!(has("exit 0"), "a clean stop exits 0:\n{shown}");
    assert!(
        state_dir.join("stsward.db").is_file(),
        "the store is in the state volume:\n{shown}"
    );
}
