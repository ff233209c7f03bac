//! # A throwaway Postfix instance for tests
//!
//! [`Postfix::start`] writes a `main.cf` and a `master.cf` into a fresh temporary directory,
//! with the queue, the data directory and the mail log beside them, and runs
//! `postfix -c <dir> start`. Dropping the [`Postfix`] runs `postfix -c <dir> stop` and kills
//! whatever is left of that instance's process group, even when the test panicked. Nothing
//! under `/etc/postfix` or `/var/spool/postfix` is read or written (Debian's package, installed
//! with "No configuration", leaves the system instance stopped and without a `main.cf`).
//!
//! ```text
//! <tmp>/conf/main.cf, master.cf     written here; every path points into <tmp>
//! <tmp>/queue/                      queue_directory, and the smtp client's chroot
//! <tmp>/queue/etc/resolv.conf       "nameserver <lab DNS address>" (see below)
//! <tmp>/data/                       data_directory (owned by mail_owner, as Postfix wants)
//! <tmp>/maillog                     maillog_file, written by postlogd (Postfix >= 3.4)
//! ```
//!
//! Several instances run side by side: each has its own directories, lock and pid files,
//! and none listens on a port (there is no `smtpd` in `master.cf`; mail is injected with
//! `sendmail -C <dir>`, which goes through `postdrop` and `pickup`). They share the system's
//! `mail_owner` (`postfix`) and `setgid_group` (`postdrop`), which the package creates.
//! Starting one needs root (Postfix's master refuses anything else, and the smtp client's
//! chroot needs it too); CI runs as root. [`available`] applies the corpus-style skip rule.
//!
//! ## Pointing Postfix at a TLS policy
//!
//! [`PostfixOptions::smtp_tls_policy_maps`] is the `smtp_tls_policy_maps` value. A static
//! table works (`texthash:<file>` written with [`Postfix::write_file`], or `inline:{…}`); the
//! resolver under test is one line, [`socketmap_map`]`(addr, "postfix")`, which gives
//! `socketmap:inet:127.0.0.1:PORT:postfix`. [`postmap_q`] queries any map the same way
//! Postfix does, without an instance.
//!
//! ## DNS: the lab's server, through the smtp client's chroot
//!
//! Postfix's smtp client looks up MX and A records with the system resolver, which reads
//! `/etc/resolv.conf` and cannot be given a port. The harness runs `smtp` chrooted
//! (`chroot = y` in `master.cf`): the chroot is `queue_directory`, so the resolver reads
//! `<queue>/etc/resolv.conf`, which names the lab's DNS server. That server must then listen
//! on port 53 of its own 127.x.y.z address, which root can bind (the lab takes a fixed DNS
//! address and port in `LabOptions`: the tests try the addresses of [`lab_dns_candidates`]
//! until one binds). The MX hosts' random SMTP port is given to Postfix as `smtp_tcp_port`.
//!
//! Why not a network namespace (`ip netns` with `/etc/netns/NAME/resolv.conf`): the lab, the
//! resolver under test and the test itself run in the test process, in the host's network
//! namespace; Postfix inside another namespace would need a veth pair and addresses on both
//! sides to reach them, plus `CAP_SYS_ADMIN`, which containers often lack. A private mount
//! namespace bind-mounting a `resolv.conf` has the same capability problem. A chroot needs
//! only `CAP_SYS_CHROOT` (root in a container has it), touches nothing global, and is how
//! Debian runs Postfix's smtp client by default anyway. Only `smtp` is chrooted; the map
//! lookups (`socketmap:inet:`) and the CA file (read before the chroot) are unaffected.
//!
//! Every wait is bounded ([`Postfix::wait_for_log`], [`Postfix::wait_for_queue`]); a timeout
//! error carries the end of the mail log, so a failing test shows what Postfix said.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How often the waits look at the log and the queue.
const POLL: Duration = Duration::from_millis(100);
/// How long `postfix stop` gets before the instance's processes are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How many trailing log lines a timeout error carries.
const LOG_TAIL_LINES: usize = 30;
/// Where instances are created: unix socket paths under the queue must stay short (108
/// bytes), so a long `TMPDIR` is not used.
const INSTANCE_PARENT: &str = "/tmp";

/// The Postfix commands the harness runs (Debian installs them in `/usr/sbin`).
const POSTFIX: &str = "postfix";
const POSTMAP: &str = "postmap";
const POSTQUEUE: &str = "postqueue";
const SENDMAIL: &str = "sendmail";
/// Where the commands are looked for when `PATH` lacks `/usr/sbin` (a non-login root shell).
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// A harness step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostfixError {
    /// A file or directory of the instance could not be made.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A Postfix command could not be run at all.
    #[error("running {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A Postfix command failed.
    #[error("{command} exited with {status}: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote to standard error.
        stderr: String,
    },
    /// A wait ran out of time.
    #[error("waited {waited:?} for {what}; the mail log ends with:\n{log_tail}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The last lines of the mail log.
        log_tail: String,
    },
    /// `postqueue -j` printed a line that is not a JSON object.
    #[error("postqueue -j printed {line:?}: {source}")]
    QueueJson {
        /// The line.
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The settings a test chooses; everything else in `main.cf` is fixed by the harness.
#[derive(Debug, Clone)]
pub struct PostfixOptions {
    /// `smtp_tls_security_level` (default `may`).
    pub smtp_tls_security_level: String,
    /// `smtp_tls_policy_maps`, e.g. `texthash:/…/policy` or [`socketmap_map`]'s value.
    pub smtp_tls_policy_maps: Option<String>,
    /// `smtp_tls_CAfile`: the lab's test CA.
    pub smtp_tls_ca_file: Option<PathBuf>,
    /// The DNS server the chrooted smtp client asks (port 53 of this address).
    pub nameserver: Option<Ipv4Addr>,
    /// `smtp_tcp_port`: the port of every MX host (the lab's SMTP port). Default 25.
    pub smtp_port: u16,
    /// More `main.cf` lines, `name = value`, appended last (so they win).
    pub extra_main_cf: Vec<(String, String)>,
}

impl Default for PostfixOptions {
    fn default() -> Self {
        PostfixOptions {
            smtp_tls_security_level: "may".to_owned(),
            smtp_tls_policy_maps: None,
            smtp_tls_ca_file: None,
            nameserver: None,
            smtp_port: 25,
            extra_main_cf: Vec::new(),
        }
    }
}

/// `socketmap:inet:<addr>:<name>`: the `smtp_tls_policy_maps` value for a socketmap server
/// on TCP (Postfix's socketmap_table(5); stsward's resolver serves the name `postfix`).
pub fn socketmap_map(addr: SocketAddr, name: &str) -> String {
    format!("socketmap:inet:{addr}:{name}")
}

/// Addresses for a lab DNS server that the smtp client's `resolv.conf` can name: port 53
/// of `127.S.255.53`, `S` in 64..=191 (the lab's own subnet range, so the lab takes its
/// subnet from it; the lab never hands a host a third octet of 255 in practice). `count`
/// candidates in a random order: a test tries the next when the bind fails because a lab
/// running in parallel holds that one.
pub fn lab_dns_candidates(count: usize) -> Vec<SocketAddr> {
    use std::hash::{BuildHasher as _, RandomState};
    let state = RandomState::new();
    let mut seconds: Vec<u8> = (64..=191).collect();
    seconds.sort_by_key(|s| state.hash_one((*s, std::process::id())));
    seconds
        .into_iter()
        .take(count)
        .map(|s| SocketAddr::from((Ipv4Addr::new(127, s, 255, 53), 53)))
        .collect()
}

/// What `postmap -q` printed and how it exited: status 0 with the value on stdout when the
/// key is found, 1 with empty output when it is not, and 1 with `fatal: … query error` on
/// stderr when the table failed (a socketmap `TEMP`, a refused connection).
#[derive(Debug, Clone)]
pub struct PostmapAnswer {
    /// Standard output without its final newline: the value found.
    pub stdout: String,
    /// Standard error (warnings and the fatal error, if any).
    pub stderr: String,
    /// The exit status.
    pub status: ExitStatus,
}

impl PostmapAnswer {
    /// The value, when the key was found.
    pub fn found(&self) -> Option<&str> {
        self.status.success().then_some(self.stdout.as_str())
    }

    /// Not found, without any table error.
    pub fn not_found(&self) -> bool {
        !self.status.success() && self.stdout.is_empty() && !self.stderr.contains("fatal:")
    }
}

/// One message in the queue, as `postqueue -j` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// `incoming`, `active`, `deferred`, `hold` or `maildrop`.
    pub queue_name: String,
    /// The queue id.
    pub queue_id: String,
    /// The envelope sender.
    pub sender: String,
    /// The recipients still to be delivered.
    pub recipients: Vec<QueuedRecipient>,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    /// The address.
    pub address: String,
    /// Why the last attempt failed (deferred mail), if Postfix said.
    pub delay_reason: Option<String>,
}

/// Whether Postfix can be used by the test group `group`, with testkit's skip rule: present
/// and running as root -> true; otherwise, when `CI` is set, a panic (CI must not pass
/// while testing nothing); else false and one line in `<target>/corpus-skipped/<group>`,
/// printed in `scripts/test`'s summary.
///
/// # Panics
///
/// When Postfix is missing or the test does not run as root, and `CI` is set.
pub fn available(group: &str) -> bool {
    let why = if find_command(POSTFIX).is_none() {
        Some("Postfix is not installed (scripts/install-test-deps installs it)".to_owned())
    } else if !is_root() {
        Some("a throwaway Postfix instance needs root".to_owned())
    } else {
        None
    };
    let Some(why) = why else { return true };
    if crate::in_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{group}: {why}; CI is set, so this is a failure");
    }
    crate::record_skip(group, &why);
    false
}

/// `postmap -q KEY MAP` with a throwaway configuration directory (postmap reads `main.cf`,
/// and the system one may not exist).
pub fn postmap_q(map: &str, key: &str) -> Result<PostmapAnswer, PostfixError> {
    let dir = instance_dir("pfx-postmap-")?;
    let conf = dir.path().join("conf");
    make_dir(&conf)?;
    write(&conf.join("main.cf"), "compatibility_level = 3.6\n")?;
    postmap_in(&conf, map, key)
}

fn postmap_in(conf: &Path, map: &str, key: &str) -> Result<PostmapAnswer, PostfixError> {
    let output = run(command(POSTMAP)
        .arg("-c")
        .arg(conf)
        .args(["-q", key, map])
        .stdin(Stdio::null()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(PostmapAnswer {
        stdout: stdout.strip_suffix('\n').unwrap_or(&stdout).to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status,
    })
}

/// A running throwaway Postfix instance; stopped on drop.
#[derive(Debug)]
pub struct Postfix {
    dir: tempfile::TempDir,
    conf: PathBuf,
    queue: PathBuf,
    log: PathBuf,
    running: bool,
}

impl Postfix {
    /// Writes the instance's files and starts it (`postfix -c DIR start`).
    pub fn start(options: &PostfixOptions) -> Result<Postfix, PostfixError> {
        let dir = instance_dir("pfx-")?;
        let root = dir.path().to_path_buf();
        let conf = root.join("conf");
        let queue = root.join("queue");
        let data = root.join("data");
        let log = root.join("maillog");
        for d in [&conf, &queue, &data, &queue.join("etc")] {
            make_dir(d)?;
        }
        // Postfix's daemons run as mail_owner and must reach the queue; its data directory
        // must belong to mail_owner.
        set_mode(&root, 0o755)?;
        run_ok(Command::new("chown").arg(MAIL_OWNER).arg(&data))?;
        let resolv = match options.nameserver {
            Some(ns) => format!("nameserver {ns}\noptions timeout:2 attempts:2\n"),
            // No server: lookups fail fast instead of reaching the real DNS.
            None => "nameserver 127.0.0.254\noptions timeout:1 attempts:1\n".to_owned(),
        };
        write(&queue.join("etc/resolv.conf"), &resolv)?;
        write(
            &conf.join("main.cf"),
            &main_cf(options, &root, &queue, &data, &log),
        )?;
        write(&conf.join("master.cf"), MASTER_CF)?;
        let mut postfix = Postfix {
            dir,
            conf,
            queue,
            log,
            running: false,
        };
        run_ok(postfix.postfix_command().arg("check"))?;
        postfix.running = true;
        run_ok(postfix.postfix_command().arg("start"))?;
        postfix.wait_for_log(|l| l.contains("daemon started"), Duration::from_secs(15))?;
        Ok(postfix)
    }

    /// The configuration directory (`postfix -c`, `sendmail -C`, `postconf -c`).
    pub fn config_dir(&self) -> &Path {
        &self.conf
    }

    /// The queue directory, also the smtp client's chroot.
    pub fn queue_dir(&self) -> &Path {
        &self.queue
    }

    /// The mail log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The instance's temporary directory (for map files and the like).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` in the instance's directory and returns the path (for a
    /// `texthash:` policy table, say).
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf, PostfixError> {
        let path = self.dir.path().join(name);
        write(&path, contents)?;
        Ok(path)
    }

    /// The whole mail log so far (empty if not yet written).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `postmap -c DIR -q KEY MAP` with this instance's configuration.
    pub fn postmap_q(&self, map: &str, key: &str) -> Result<PostmapAnswer, PostfixError> {
        postmap_in(&self.conf, map, key)
    }

    /// Injects one small message from `from` to `to` with `sendmail -C DIR`.
    pub fn send(&self, from: &str, to: &str) -> Result<(), PostfixError> {
        let message = format!(
            "From: <{from}>\nTo: <{to}>\nSubject: stsward Postfix harness\n\n\
             A test message from stsward-testkit.\n"
        );
        let mut cmd = command(SENDMAIL);
        cmd.arg("-C")
            .arg(&self.conf)
            .args(["-i", "-f", from, "--", to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let described = describe(&cmd);
        let mut child = cmd.spawn().map_err(|source| PostfixError::Spawn {
            command: described.clone(),
            source,
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(message.as_bytes())
                .map_err(|source| PostfixError::Spawn {
                    command: described.clone(),
                    source,
                })?;
        }
        let output = child
            .wait_with_output()
            .map_err(|source| PostfixError::Spawn {
                command: described.clone(),
                source,
            })?;
        check(described, output).map(drop)
    }

    /// Waits until a line of the mail log satisfies `matches`, and returns that line.
    pub fn wait_for_log(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, PostfixError> {
        let start = Instant::now();
        loop {
            if let Some(line) = self.log().lines().find(|l| matches(l)) {
                return Ok(line.to_owned());
            }
            if start.elapsed() >= timeout {
                return Err(self.timeout("a matching mail log line", timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`Postfix::wait_for_log`] for a line containing `needle`.
    pub fn wait_for_log_containing(
        &self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, PostfixError> {
        self.wait_for_log(|l| l.contains(needle), timeout)
            .map_err(|e| match e {
                PostfixError::Timeout {
                    waited, log_tail, ..
                } => PostfixError::Timeout {
                    what: format!("a mail log line containing {needle:?}"),
                    waited,
                    log_tail,
                },
                other => other,
            })
    }

    /// The queue, from `postqueue -c DIR -j`.
    pub fn queue(&self) -> Result<Vec<QueuedMessage>, PostfixError> {
        let output = run_ok(command(POSTQUEUE).arg("-c").arg(&self.conf).arg("-j"))?;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse_queue_line)
            .collect()
    }

    /// Waits until the queue holds a message satisfying `matches`, and returns it.
    pub fn wait_for_queue(
        &self,
        matches: impl Fn(&QueuedMessage) -> bool,
        timeout: Duration,
    ) -> Result<QueuedMessage, PostfixError> {
        let start = Instant::now();
        loop {
            if let Some(m) = self.queue()?.into_iter().find(|m| matches(m)) {
                return Ok(m);
            }
            if start.elapsed() >= timeout {
                return Err(self.timeout("a matching queued message", timeout));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `recipient` sits in the `deferred` queue with a reason, and returns the
    /// reason.
    pub fn wait_for_deferred(
        &self,
        recipient: &str,
        timeout: Duration,
    ) -> Result<String, PostfixError> {
        let found = self.wait_for_queue(
            |m| {
                m.queue_name == "deferred"
                    && m.recipients
                        .iter()
                        .any(|r| r.address == recipient && r.delay_reason.is_some())
            },
            timeout,
        )?;
        Ok(found
            .recipients
            .into_iter()
            .find_map(|r| (r.address == recipient).then_some(r.delay_reason))
            .flatten()
            .unwrap_or_default())
    }

    /// Stops the instance: `postfix stop`; if its master is still alive after a grace
    /// period, `postfix abort`, then SIGKILL to the master's process group (Postfix's
    /// master runs `setsid`, so its daemons are in that group and nothing else is).
    /// Idempotent; also run on drop.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pid = self.master_pid();
        let _ = run(self.postfix_command().arg("stop"));
        let Some(pid) = pid else { return };
        let start = Instant::now();
        while process_alive(pid) && start.elapsed() < STOP_GRACE {
            std::thread::sleep(POLL);
        }
        if process_alive(pid) {
            let _ = run(self.postfix_command().arg("abort"));
            std::thread::sleep(POLL);
        }
        if process_alive(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.queue.join("pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn postfix_command(&self) -> Command {
        let mut cmd = command(POSTFIX);
        cmd.arg("-c").arg(&self.conf).stdin(Stdio::null());
        cmd
    }

    fn timeout(&self, what: &str, waited: Duration) -> PostfixError {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        PostfixError::Timeout {
            what: what.to_owned(),
            waited,
            log_tail: tail,
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The system user and group Debian's package creates.
const MAIL_OWNER: &str = "postfix";
const SETGID_GROUP: &str = "postdrop";

/// `main.cf`: loopback only, no local delivery, TLS logging on, the test's TLS settings.
fn main_cf(options: &PostfixOptions, root: &Path, queue: &Path, data: &Path, log: &Path) -> String {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let mut settings: Vec<(String, String)> = vec![
        ("compatibility_level", "3.6".to_owned()),
        ("queue_directory", queue.display().to_string()),
        ("data_directory", data.display().to_string()),
        ("mail_owner", MAIL_OWNER.to_owned()),
        ("setgid_group", SETGID_GROUP.to_owned()),
        ("syslog_name", format!("postfix-{name}")),
        ("maillog_file", log.display().to_string()),
        ("maillog_file_prefixes", root.display().to_string()),
        ("myhostname", format!("{name}.harness.invalid")),
        ("mydomain", "harness.invalid".to_owned()),
        ("myorigin", "$myhostname".to_owned()),
        ("mydestination", String::new()),
        ("inet_interfaces", "loopback-only".to_owned()),
        ("inet_protocols", "ipv4".to_owned()),
        ("alias_maps", String::new()),
        ("alias_database", String::new()),
        ("smtp_tcp_port", options.smtp_port.to_string()),
        ("smtp_dns_support_level", "enabled".to_owned()),
        ("smtp_connection_cache_on_demand", "no".to_owned()),
        (
            "smtp_tls_security_level",
            options.smtp_tls_security_level.clone(),
        ),
        ("smtp_tls_loglevel", "1".to_owned()),
        // Retries come from the test, not from the queue manager's clock.
        ("queue_run_delay", "1h".to_owned()),
        ("minimal_backoff_time", "1h".to_owned()),
        ("maximal_backoff_time", "2h".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(maps) = &options.smtp_tls_policy_maps {
        settings.push(("smtp_tls_policy_maps".to_owned(), maps.clone()));
    }
    if let Some(ca) = &options.smtp_tls_ca_file {
        settings.push(("smtp_tls_CAfile".to_owned(), ca.display().to_string()));
    }
    settings.extend(options.extra_main_cf.iter().cloned());
    let mut text = String::from("# Written by stsward-testkit's Postfix harness.\n");
    for (key, value) in settings {
        let _ = writeln!(text, "{key} = {value}");
    }
    text
}

/// `master.cf`: the daemons a queue needs to take mail from `sendmail` and deliver it with
/// `smtp`; no `smtpd`, no local delivery. Only `smtp` is chrooted (see the module docs).
const MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       y       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

fn parse_queue_line(line: &str) -> Result<QueuedMessage, PostfixError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|source| PostfixError::QueueJson {
            line: line.to_owned(),
            source,
        })?;
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let recipients = value
        .get("recipients")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .map(|r| QueuedRecipient {
                    address: text(r, "address"),
                    delay_reason: r
                        .get("delay_reason")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(QueuedMessage {
        queue_name: text(&value, "queue_name"),
        queue_id: text(&value, "queue_id"),
        sender: text(&value, "sender"),
        recipients,
    })
}

/// A fresh directory under `/tmp` (short paths: see [`INSTANCE_PARENT`]).
fn instance_dir(prefix: &str) -> Result<tempfile::TempDir, PostfixError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(INSTANCE_PARENT)
        .map_err(|source| PostfixError::Io {
            what: "creating a directory in",
            path: PathBuf::from(INSTANCE_PARENT),
            source,
        })
}

fn make_dir(path: &Path) -> Result<(), PostfixError> {
    std::fs::create_dir_all(path).map_err(|source| PostfixError::Io {
        what: "creating",
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str) -> Result<(), PostfixError> {
    std::fs::write(path, contents).map_err(|source| PostfixError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PostfixError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        PostfixError::Io {
            what: "setting the mode of",
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The path of a Postfix command: on `PATH`, else in the usual sbin directories.
fn find_command(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn command(name: &str) -> Command {
    Command::new(find_command(name).unwrap_or_else(|| PathBuf::from(name)))
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(cmd: &mut Command) -> Result<Output, PostfixError> {
    cmd.output().map_err(|source| PostfixError::Spawn {
        command: describe(cmd),
        source,
    })
}

fn run_ok(cmd: &mut Command) -> Result<Output, PostfixError> {
    let output = run(cmd)?;
    check(describe(cmd), output)
}

fn check(command: String, output: Output) -> Result<Output, PostfixError> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(PostfixError::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Whether the effective user is root, from `/proc/self/status` (no libc call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether process `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s != "Z"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lines_parse_with_and_without_a_reason() {
        let line = r#"{"queue_name": "deferred", "queue_id": "A0EAB992066", "arrival_time": 1, "message_size": 269, "forced_expire": false, "sender": "a@x.invalid", "recipients": [{"address": "b@nowhere.test", "delay_reason": "Host not found"}, {"address": "c@x.test"}]}"#;
        let m = parse_queue_line(line).expect("parses");
        assert_eq!(m.queue_name, "deferred");
        assert_eq!(m.queue_id, "A0EAB992066");
        assert_eq!(m.sender, "a@x.invalid");
        assert_eq!(
            m.recipients,
            vec![
                QueuedRecipient {
                    address: "b@nowhere.test".into(),
                    delay_reason: Some("Host not found".into())
                },
                QueuedRecipient {
                    address: "c@x.test".into(),
                    delay_reason: None
                },
            ]
        );
        assert!(parse_queue_line("not json").is_err());
    }

    #[test]
    fn main_cf_points_everything_into_the_instance_and_lets_the_test_override() {
        let options = PostfixOptions {
            smtp_tls_policy_maps: Some(socketmap_map(
                "127.0.0.1:7000".parse().expect("addr"),
                "postfix",
            )),
            smtp_tls_ca_file: Some(PathBuf::from("/lab/ca.pem")),
            smtp_port: 2525,
            extra_main_cf: vec![("smtp_tls_security_level".into(), "dane".into())],
            ..PostfixOptions::default()
        };
        let root = Path::new("/tmp/pfx-AbC");
        let text = main_cf(
            &options,
            root,
            &root.join("queue"),
            &root.join("data"),
            &root.join("maillog"),
        );
        for expected in [
            "queue_directory = /tmp/pfx-AbC/queue\n",
            "data_directory = /tmp/pfx-AbC/data\n",
            "maillog_file = /tmp/pfx-AbC/maillog\n",
            "syslog_name = postfix-pfx-abc\n",
            "smtp_tcp_port = 2525\n",
            "smtp_tls_policy_maps = socketmap:inet:127.0.0.1:7000:postfix\n",
            "smtp_tls_CAfile = /lab/ca.pem\n",
            "smtp_tls_loglevel = 1\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        // The extra line comes after the default, so Postfix takes it (last one wins).
        let default = text.find("smtp_tls_security_level = may").expect("default");
        let extra = text.find("smtp_tls_security_level = dane").expect("extra");
        assert!(extra > default);
        assert!(!text.contains("/etc/postfix"));
    }

    #[test]
    fn lab_dns_candidates_are_distinct_port_53_in_the_lab_range() {
        let list = lab_dns_candidates(200);
        assert_eq!(list.len(), 128, "64..=191");
        let mut seen = std::collections::BTreeSet::new();
        for addr in &list {
            assert_eq!(addr.port(), 53);
            let std::net::IpAddr::V4(ip) = addr.ip() else {
                panic!("{addr}")
            };
            let [a, b, c, d] = ip.octets();
            assert_eq!((a, c, d), (127, 255, 53), "{addr}");
            assert!((64..=191).contains(&b), "{addr}");
            assert!(seen.insert(b), "{addr} twice");
        }
    }

    #[test]
    fn only_smtp_is_chrooted() {
        for line in MASTER_CF.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 8, "{line}");
            let chroot = fields[4];
            assert_eq!(chroot == "y", fields[0] == "smtp", "{line}");
        }
    }
}
