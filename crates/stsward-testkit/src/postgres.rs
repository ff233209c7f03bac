//! A throwaway PostgreSQL server for one test: Debian's binaries, a temporary data
//! directory, loopback only, removed when dropped.
//!
//! ```text
//! PostgreSQL installed            -> Some(server): initdb, pg_ctl start on 127.0.0.1:<free port>
//! not installed, CI set           -> panic: CI must never pass without PostgreSQL
//! not installed, CI not set       -> None, and one line in <target>/corpus-skipped/<group>
//! installed but fails to start    -> panic with the server log: that is a failure, not a skip
//! ```
//!
//! The binaries are looked up in `$STSWARD_PG_BINDIR`, else in the newest
//! `/usr/lib/postgresql/<version>/bin` (`scripts/install-test-deps` installs the package).
//! PostgreSQL refuses to run as root; when the tests run as root, the server runs as the
//! `postgres` system user (which the Debian package creates) through `runuser`, and owns the
//! temporary directory. Authentication is `trust`: the server listens on loopback only, for
//! the length of one test, and holds nothing but test data.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Overrides where the PostgreSQL server binaries (`initdb`, `pg_ctl`, `createdb`) are.
pub const PG_BINDIR_ENV: &str = "STSWARD_PG_BINDIR";

/// The superuser the test server is initialised with.
const SUPERUSER: &str = "stsward";

/// A running throwaway PostgreSQL server; stopped and deleted on drop.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// Holds the data directory, the socket and the log; removed on drop.
    dir: tempfile::TempDir,
    port: u16,
    /// `Some((uid, gid))` of `postgres` when the tests run as root.
    run_as: Option<(u32, u32)>,
    next_database: AtomicU32,
}

impl Postgres {
    /// Starts a server for the test group `group` (e.g. `stsward-store/postgres`), or returns
    /// `None` when PostgreSQL is not installed and the group is skipped (see the module docs).
    ///
    /// # Panics
    ///
    /// When PostgreSQL is absent and `CI` is set, and when an installed PostgreSQL fails to
    /// initialise or start.
    pub fn start(group: &str) -> Option<Postgres> {
        let Some(bin) = find_bindir() else {
            let why = match std::env::var_os(PG_BINDIR_ENV) {
                Some(dir) => format!(
                    "PostgreSQL not found: no initdb in {PG_BINDIR_ENV}={}",
                    Path::new(&dir).display()
                ),
                None => format!(
                    "PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb; set \
                     {PG_BINDIR_ENV} or run scripts/install-test-deps)"
                ),
            };
            if crate::in_ci(std::env::var("CI").ok().as_deref()) {
                panic!("{group}: {why}; CI is set, so a missing PostgreSQL is a failure");
            }
            crate::record_skip(group, &why);
            return None;
        };
        let run_as = running_as_root().then(postgres_user);
        // As root, the server user must be able to reach the directory, so it goes under
        // /tmp rather than a $TMPDIR that may sit in root's private home.
        let base = if run_as.is_some() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("stsward-pg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("{group}: temporary directory in {}: {e}", base.display()));
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("{group}: chown the directory to postgres: {e}"));
        }
        let mut server = Postgres {
            bin,
            dir,
            port: 0,
            run_as,
            next_database: AtomicU32::new(0),
        };
        server.initdb(group);
        server.start_on_free_port(group);
        Some(server)
    }

    /// A new, empty database on this server, and its `postgres://` URL. Each call gives a
    /// different database, so that tests sharing one server do not see each other's rows.
    pub fn create_database(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        let port = self.port.to_string();
        let out = run(Command::new(self.bin.join("createdb")).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            SUPERUSER,
            &name,
        ]));
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `program` with `args`, as the server user.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match self.run_as {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    fn initdb(&self, group: &str) {
        let out = run(self
            .server_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            // Throwaway: skip initdb's fsyncs (the server itself still syncs its commits).
            .arg("--no-sync"));
        assert!(
            out.status.success(),
            "{group}: initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Picks a free port and starts the server on it; another process may take the port
    /// between the probe and the start, so a failed start is tried again on a new port.
    fn start_on_free_port(&mut self, group: &str) {
        let mut last = String::new();
        for _ in 0..5 {
            self.port = free_port();
            let options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' \
                 -c shared_buffers=16MB -c max_connections=60",
                self.port,
                self.dir.path().display()
            );
            let out = run(self
                .server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-o", &options, "start"]));
            if out.status.success() {
                return;
            }
            last = format!(
                "{}{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(self.log_file()).unwrap_or_default()
            );
        }
        panic!("{group}: PostgreSQL did not start: {last}");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate: the data is thrown away with the directory, nothing needs flushing.
        let out = run(self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"]));
        if !out.status.success() {
            eprintln!(
                "stopping the test PostgreSQL on port {} failed: {}",
                self.port,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // `dir` (a TempDir) is removed after this: data, socket and log.
    }
}

/// Runs a command to completion; a command that cannot be spawned at all is reported as a
/// failed output rather than a panic, so that `Drop` does not panic.
fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| Output {
        status: failed_status(),
        stdout: Vec::new(),
        stderr: format!("cannot run {command:?}: {e}").into_bytes(),
    })
}

fn failed_status() -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    std::process::ExitStatus::from_raw(1 << 8)
}

/// The server binaries: `$STSWARD_PG_BINDIR`, else the newest Debian version installed.
fn find_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    newest_version_bindir(Path::new("/usr/lib/postgresql"))
}

/// The `bin` folder of the highest numbered `<root>/<version>/bin/initdb`.
fn newest_version_bindir(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// Whether this process runs as root: `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of the `postgres` system user.
///
/// # Panics
///
/// When there is none: as root, PostgreSQL cannot run without it.
fn postgres_user() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd_entry(&passwd, "postgres").unwrap_or_else(|| {
        panic!("running as root, and there is no postgres user to run PostgreSQL as")
    })
}

/// `(uid, gid)` of `user` in the text of an `/etc/passwd` file.
fn passwd_entry(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn passwd_entries() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n\
                      broken:x:notanumber:1::/:/bin/false\n";
        type Ids = Option<(u32, u32)>;
        let cases: &[(&str, Ids, &str)] = &[
            ("postgres", Some((101, 104)), "the Debian package's user"),
            ("root", Some((0, 0)), "first line"),
            ("post", None, "a prefix is not the user"),
            ("broken", None, "a uid that is not a number"),
            ("nobody", None, "absent"),
        ];
        for (user, expected, why) in cases {
            assert_eq!(passwd_entry(passwd, user), *expected, "{why}");
        }
    }

    #[test]
    fn the_newest_installed_version_is_chosen() {
        let root = tempfile::tempdir().expect("tempdir");
        for version in ["9", "15", "13"] {
            let bin = root.path().join(version).join("bin");
            fs::create_dir_all(&bin).expect("mkdir");
            fs::write(bin.join("initdb"), "").expect("touch");
        }
        // A newer folder without initdb (a client-only package) does not count.
        fs::create_dir_all(root.path().join("16/bin")).expect("mkdir");
        fs::create_dir_all(root.path().join("common")).expect("mkdir");
        assert_eq!(
            newest_version_bindir(root.path()),
            Some(root.path().join("15/bin"))
        );
        assert_eq!(newest_version_bindir(&root.path().join("absent")), None);
    }

    /// Starts the server when PostgreSQL is installed: it must accept connections on its
    /// port, and be gone, directory and all, once dropped.
    #[test]
    fn a_started_server_listens_and_is_removed_on_drop() {
        let Some(server) = Postgres::start("stsward-testkit/postgres") else {
            return;
        };
        let port = server.port();
        let dir = server.dir.path().to_path_buf();
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("the server listens");
        let url = server.create_database();
        assert_eq!(url, format!("postgres://stsward@127.0.0.1:{port}/test_0"));
        assert_ne!(
            server.create_database(),
            url,
            "every call is a new database"
        );
        drop(server);
        assert!(!dir.exists(), "{} removed", dir.display());
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "the server stopped"
        );
    }
}
