//! A throwaway Dovecot IMAP server for one test: Debian's binary, its own configuration in a
//! temporary directory, one passwd-file user, maildirs in the same directory, listening on
//! 127.0.0.1 only; stopped and deleted when dropped.
//!
//! ```text
//! <tmp>/dovecot.conf      the whole configuration (nothing under /etc/dovecot is read)
//! <tmp>/users             passwd-file: one user, {PLAIN} password
//! <tmp>/cert.pem, key.pem a self-signed certificate for "localhost" and 127.0.0.1
//! <tmp>/mail/<user>/      the user's maildir
//! <tmp>/run/, state/      base_dir and state_dir; <tmp>/dovecot.log the log
//! ports: imap (plain, STARTTLS offered) and imaps (implicit TLS), both on 127.0.0.1
//! ```
//!
//! ```text
//! Dovecot installed               -> Some(server), ready (greeting read) on both ports
//! not installed, CI set           -> panic: CI must never pass without Dovecot
//! not installed, CI not set       -> None, and one line in <target>/corpus-skipped/<group>
//! installed but fails to start    -> panic with the log: that is a failure, not a skip
//! ```
//!
//! As root (CI), the master runs as root and drops to Debian's `dovecot` and `dovenull`
//! users like an installed Dovecot does; mail is owned by `dovecot` (root may not own mail).
//! As another user, everything runs as that user and the login processes are not chrooted.
//! The system service (`scripts/install-test-deps` installs the package) is never used.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the binary is looked for when `PATH` lacks it (`/usr/sbin` is not on every PATH).
const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
/// How long the server may take to answer on both ports.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Choices for one server.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// The login name (default `reports`).
    pub user: String,
    /// Its password (default `test-password`).
    pub password: String,
    /// Leave `MOVE` (RFC 6851) out of the advertised capabilities, so that a client takes
    /// its copy-and-expunge path (default false).
    pub without_move: bool,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            user: "reports".into(),
            password: "test-password".into(),
            without_move: false,
        }
    }
}

/// A running throwaway Dovecot; stopped and deleted on drop.
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    imap_port: u16,
    imaps_port: u16,
    options: DovecotOptions,
}

/// Whether Dovecot can be started: its binary is installed. Absent: `false` with a skip line
/// (see the module docs), or a panic when `CI` is set.
pub fn available(group: &str) -> bool {
    if dovecot_bin().is_some() {
        return true;
    }
    let why = "Dovecot not installed (no dovecot binary; run scripts/install-test-deps)";
    if crate::in_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{group}: {why}; CI is set, so a missing Dovecot is a failure");
    }
    crate::record_skip(group, why);
    false
}

fn dovecot_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("dovecot"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from(DOVECOT_BIN)).filter(|p| p.is_file()))
}

impl Dovecot {
    /// Starts a server for the test group `group`, or `None` when Dovecot is not installed
    /// (see [`available`]).
    ///
    /// # Panics
    ///
    /// When Dovecot is absent and `CI` is set, and when an installed Dovecot fails to start.
    pub fn start(group: &str, options: DovecotOptions) -> Option<Dovecot> {
        if !available(group) {
            return None;
        }
        let bin = dovecot_bin()?;
        let mut last = String::new();
        // Another process may take a probed port before Dovecot binds it: try again anew.
        for _ in 0..5 {
            let (dir, identity) = prepare(group, &options);
            let path = dir.path();
            let (imap_port, imaps_port) = (free_port(), free_port());
            let conf = config(path, &identity, imap_port, imaps_port, &options);
            fs::write(path.join("dovecot.conf"), conf)
                .unwrap_or_else(|e| panic!("{group}: dovecot.conf: {e}"));
            let stderr = fs::File::create(path.join("stderr"))
                .unwrap_or_else(|e| panic!("{group}: stderr file: {e}"));
            let child = Command::new(&bin)
                .arg("-F")
                .arg("-c")
                .arg(path.join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .spawn()
                .unwrap_or_else(|e| panic!("{group}: cannot run {}: {e}", bin.display()));
            let mut server = Dovecot {
                dir,
                child,
                imap_port,
                imaps_port,
                options: options.clone(),
            };
            match server.wait_ready() {
                Ok(()) => return Some(server),
                Err(why) => last = format!("{why}\n{}", server.log()),
            }
        }
        panic!("{group}: Dovecot did not start: {last}");
    }

    /// The plain IMAP port (STARTTLS offered).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The implicit-TLS IMAP port.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The server's certificate (self-signed, for `localhost` and `127.0.0.1`), PEM: the
    /// root a client trusts.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The login name.
    pub fn user(&self) -> &str {
        &self.options.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// The log so far (Dovecot's log file and its standard error).
    pub fn log(&self) -> String {
        let read = |name| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("dovecot.log"), read("stderr"))
    }

    /// Waits until both ports greet.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for port in [self.imap_port, self.imaps_port] {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("dovecot exited: {status}"));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "port {port} did not answer within {START_TIMEOUT:?}"
                    ));
                }
                if port == self.imaps_port {
                    // Implicit TLS: an accepted connection is enough (no TLS client here).
                    if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                        break;
                    }
                } else if greets(port) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL if it does not within 5 s.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory with the certificate, the users file and the maildir root, and who runs
/// what.
fn prepare(group: &str, options: &DovecotOptions) -> (tempfile::TempDir, Identity) {
    let root = is_root();
    // As root, the dovecot users must reach the directory: /tmp, not a private $TMPDIR.
    let base = if root {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("stsward-dovecot-")
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("{group}: temporary directory: {e}"));
    let path = dir.path();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{group}: chmod {}: {e}", path.display()));
    let identity = if root {
        Identity {
            internal_user: "dovecot".into(),
            login_user: "dovenull".into(),
            mail: user_ids("dovecot")
                .unwrap_or_else(|| panic!("{group}: running as root, and no dovecot user")),
            chroot_login: true,
        }
    } else {
        let me = current_user().unwrap_or_else(|| panic!("{group}: who am I (id -un)?"));
        let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{group}: {e}"));
        Identity {
            internal_user: me.clone(),
            login_user: me,
            mail: (meta.uid(), meta.gid()),
            chroot_login: false,
        }
    };
    let mail = path.join("mail");
    fs::create_dir_all(&mail).unwrap_or_else(|e| panic!("{group}: mkdir mail: {e}"));
    if root {
        let (uid, gid) = identity.mail;
        std::os::unix::fs::chown(&mail, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("{group}: chown the maildir: {e}"));
    }
    write_certificate(path).unwrap_or_else(|e| panic!("{group}: test certificate: {e}"));
    fs::write(
        path.join("users"),
        format!("{}:{{PLAIN}}{}::::::\n", options.user, options.password),
    )
    .unwrap_or_else(|e| panic!("{group}: users file: {e}"));
    (dir, identity)
}

struct Identity {
    internal_user: String,
    login_user: String,
    mail: (u32, u32),
    chroot_login: bool,
}

fn config(
    dir: &Path,
    who: &Identity,
    imap_port: u16,
    imaps_port: u16,
    options: &DovecotOptions,
) -> String {
    let d = dir.display();
    let (uid, gid) = who.mail;
    let chroot = if who.chroot_login { "" } else { "  chroot =\n" };
    let anvil = if who.chroot_login {
        String::new()
    } else {
        "service anvil {\n  chroot =\n}\n".into()
    };
    let capability = if options.without_move {
        // Dovecot 2.3's post-login list without MOVE.
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
         SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND \
         URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 \
         CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS \
         BINARY SNIPPET=FUZZY LITERAL+\n"
    } else {
        ""
    };
    format!(
        "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{d}/mail/%u
{capability}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
{chroot}}}
{anvil}",
        internal = who.internal_user,
        internal_group = group_name(&who.internal_user),
        login = who.login_user,
    )
}

/// The primary group of a Debian system user is named like it; a non-root user's is looked
/// up with `id -gn`.
fn group_name(user: &str) -> String {
    if user == "dovecot" {
        return "dovecot".into();
    }
    Command::new("id")
        .arg("-gn")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| user.to_owned())
}

/// Writes a self-signed certificate for `localhost` and 127.0.0.1 and its key.
fn write_certificate(dir: &Path) -> Result<(), String> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    fs::write(dir.join("cert.pem"), certified.cert.pem()).map_err(|e| e.to_string())?;
    let key = dir.join("key.pem");
    fs::write(&key, certified.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

/// Whether a plain connection to `port` gets `* OK` within a second.
fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 256];
    let greeted = matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"* OK"));
    let _ = stream.write_all(b"a LOGOUT\r\n");
    greeted
}

/// Whether this process runs as root: `/proc/self` belongs to the effective user.
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn current_user() -> Option<String> {
    let out = Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// `(uid, gid)` of a system user, from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}
