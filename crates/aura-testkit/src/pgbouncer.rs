//! [`Pgbouncer`]: a PgBouncer of the test's own in front of the test server, in session or
//! transaction mode, SCRAM authentication with an `auth_file` holding the roles' SCRAM
//! verifiers (read from `pg_authid`, never a plaintext password). Installed by
//! `scripts/ensure-pgbouncer.sh` when missing (Debian's package), run as the `postgres` OS
//! user when the tests run as root (pgbouncer refuses root), on a free port below the
//! ephemeral range, in a folder of its own under the temporary directory; killed and
//! removed when dropped.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use aura_db::ConfigBuilder;

use crate::admin::{connect, pg_error};
use crate::test_db::TestDb;

/// PgBouncer's `pool_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client connection, for the client's whole session.
    Session,
    /// A server connection per transaction: session state (prepared statements, `SET`,
    /// advisory locks) does not stay with the client.
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

/// The roles the auth file lists (their verifiers copied from the server).
const ROLES: [&str; 2] = ["aura_app", "aura_migrate"];
/// How long pgbouncer may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(20);

/// A running pgbouncer in front of the test server; killed when dropped.
pub struct Pgbouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
    mode: PoolMode,
}

impl Pgbouncer {
    /// Starts a pgbouncer in `mode` for `db`'s server, with `pool_size` server connections
    /// per database and role (`default_pool_size`).
    ///
    /// Panics, failing the test, when pgbouncer cannot be installed or started, saying why.
    pub async fn start(db: &TestDb, mode: PoolMode, pool_size: u32) -> Pgbouncer {
        let binary = ensure_installed();
        let userlist = userlist(db).await;
        let pg = db.superuser_url().pg_config();
        let server_port = pg.get_ports().first().copied().unwrap_or(5432);
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("aura-pgbouncer-{}-{port}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
        let ini = dir.join("pgbouncer.ini");
        // A stock configuration: `options` is not ignored (the pool SETs its session
        // settings on each new connection; PgBouncer would refuse startup `options`).
        let config = format!(
            "[databases]\n\
             * = host=127.0.0.1 port={server_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {userlist}\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 200\n\
             ignore_startup_parameters = extra_float_digits\n\
             server_reset_query = DISCARD ALL\n\
             logfile = {log}\n\
             pidfile = {pid}\n",
            userlist = dir.join("userlist.txt").display(),
            mode = mode.as_str(),
            log = dir.join("pgbouncer.log").display(),
            pid = dir.join("pgbouncer.pid").display(),
        );
        fs::write(&ini, config).unwrap_or_else(|e| fail(&format!("{}: {e}", ini.display())));
        let list = dir.join("userlist.txt");
        fs::write(&list, userlist).unwrap_or_else(|e| fail(&format!("{}: {e}", list.display())));
        fs::set_permissions(&list, fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| fail(&e.to_string()));
        let root = nix::unistd::geteuid().is_root();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap_or_else(|e| fail(&format!("chown: {e}")));
            assert!(
                status.success(),
                "aura-testkit: chown {} failed",
                dir.display()
            );
        }
        let mut cmd = if root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&binary);
            cmd
        } else {
            Command::new(&binary)
        };
        cmd.arg(&ini)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", binary.display())));
        let bouncer = Pgbouncer {
            child,
            dir,
            port,
            mode,
        };
        bouncer.wait_ready();
        bouncer
    }

    /// The port pgbouncer listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its pool mode.
    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    /// `db`'s configuration builder with every composed URL (app, migrate, bootstrap) going
    /// through pgbouncer.
    pub fn config_builder(&self, db: &TestDb) -> ConfigBuilder {
        db.config_builder().host("127.0.0.1").port(self.port)
    }

    /// pgbouncer's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// Until its own log says it listens (another process may hold the port) and the port
    /// accepts connections.
    fn wait_ready(&self) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_WAIT;
        while !self.log().contains("listening on")
            || TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "aura-testkit: pgbouncer did not listen on {addr} within {START_WAIT:?}; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        // pgbouncer itself (runuser would not pass SIGKILL on), by its pid file; then the
        // child (runuser, or pgbouncer when not switching users).
        if let Some(pid) = fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fail(what: &str) -> ! {
    panic!("aura-testkit: cannot start pgbouncer: {what}")
}

/// `scripts/ensure-pgbouncer.sh`: the binary, installed when missing.
fn ensure_installed() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-pgbouncer.sh");
    let output = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", script.display())));
    if !output.status.success() {
        fail(&format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// The auth file: each role with its SCRAM verifier, as the server stores it.
async fn userlist(db: &TestDb) -> String {
    let client = connect(db.admin_url()).await.unwrap_or_else(|e| fail(&e));
    let mut text = String::new();
    for role in ROLES {
        let row = client
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&role],
            )
            .await
            .unwrap_or_else(|e| fail(&format!("reading {role}'s verifier: {}", pg_error(&e))));
        let verifier: Option<String> = row.get(0);
        let verifier = verifier.unwrap_or_else(|| fail(&format!("{role} has no password")));
        text.push_str(&format!("\"{role}\" \"{verifier}\"\n"));
    }
    text
}

/// A free TCP port in 15000-19999 (below the ephemeral range, see FACTS), never the same
/// twice in one process.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 5000) as u16;
    (0..5000u16)
        .map(|_| 15000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 5000)
        .find(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).is_ok())
        .unwrap_or_else(|| fail("no free port in 15000-19999"))
}
