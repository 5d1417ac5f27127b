//! The cluster handle: status, initialization, start, reuse and stop.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use crate::binaries::{self, PgBinaries};
use crate::fsutil::{self, RemoveOnDrop};
use crate::layout::Layout;
use crate::location::{self, RELOCATION_BASE};
use crate::lock::ClusterLock;
use crate::pidfile::{self, Liveness};
use crate::port::{self, PORT_ENV};
use crate::server_user::{self, ServerUser};
use crate::{Error, password};

/// Environment variable that overrides the cluster's root directory.
pub const DIR_ENV: &str = "AURA_LOCALPG_DIR";

/// The address the cluster listens on (TCP only, loopback only).
pub const HOST: &str = "127.0.0.1";

/// The cluster's superuser role (created by initdb, password in `superuser.password`).
pub const SUPERUSER: &str = "postgres";

/// How long `pg_ctl start -w` (and waiting for a starting server) may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `pg_ctl stop -w` may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped server's process may take to exit after pg_ctl returns.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the pid file is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
/// How many server log lines an error quotes.
const LOG_TAIL_LINES: usize = 12;
/// How often a start that collides with the shared memory of a just-killed server is retried.
const SHMEM_RETRIES: u32 = 5;

/// Settings appended to `postgresql.conf` at initialization.
const CONFIG: &str = "
# ---- aura-localpg: a development and test cluster, never for production data ----
listen_addresses = '127.0.0.1'
# TCP only: socket paths have a length limit, and pg_ctl -w reads readiness from
# postmaster.pid, so no socket is needed.
unix_socket_directories = ''
# Test suites open many connections in parallel.
max_connections = 200
# Durability is traded for speed: a crash of the machine may lose or corrupt this cluster.
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
";

/// What state the cluster is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// No data directory yet: [`LocalCluster::ensure_running`] will create one.
    NotInitialized,
    /// Initialized, no server running.
    Stopped,
    /// A server is running on the data directory.
    Running {
        /// The postmaster's process id.
        pid: u32,
    },
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInitialized => f.write_str("not initialized"),
            Self::Stopped => f.write_str("stopped"),
            Self::Running { pid } => write!(f, "running (pid {pid})"),
        }
    }
}

/// The project-local PostgreSQL cluster: a data directory, the server binaries that run it,
/// and the port it listens on.
///
/// Every method is synchronous and safe to call from several threads and processes at
/// once: initialization, start and stop are serialized by a file lock under the root.
/// Nothing here prints or logs the superuser password, and `Debug` does not show it.
#[derive(Debug)]
pub struct LocalCluster {
    layout: Layout,
    /// Where the cluster was asked to live; differs from the layout's root when relocated.
    wanted_root: PathBuf,
    binaries: PgBinaries,
    server_user: ServerUser,
    /// The port forced by the caller (builder or `AURA_LOCALPG_PORT`), if any.
    port_override: Option<u16>,
    /// The effective port; settled (and persisted) at first initialization.
    port: AtomicU16,
}

impl Clone for LocalCluster {
    fn clone(&self) -> Self {
        Self {
            layout: self.layout.clone(),
            wanted_root: self.wanted_root.clone(),
            binaries: self.binaries.clone(),
            server_user: self.server_user,
            port_override: self.port_override,
            port: AtomicU16::new(self.port()),
        }
    }
}

/// Configures a [`LocalCluster`] without reading `AURA_LOCALPG_DIR` or `AURA_LOCALPG_PORT`.
#[derive(Debug, Clone)]
#[must_use]
pub struct LocalClusterBuilder {
    root: PathBuf,
    port: Option<u16>,
    bin_dir: Option<PathBuf>,
    relocation_base: Option<PathBuf>,
}

impl LocalClusterBuilder {
    /// Uses this port instead of the one derived from the root (validated at
    /// [`build`](Self::build): 1024..=32767, never 5432).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Takes the server binaries from this directory only, instead of searching
    /// `$AURA_PG_BIN_DIR`, `PATH` and `/usr/lib/postgresql/*/bin`.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// When the server user (`postgres`, this process being root) cannot reach the root
    /// (a parent it may not traverse, like `/root` or a `mktemp -d`), puts the cluster in
    /// `<base>/<checkout name>-<hash of the root>/` instead, one per root; a cluster already
    /// initialized at either place stays there. See [`LocalCluster::relocated_from`].
    /// [`LocalCluster::from_env`] does this with [`RELOCATION_BASE`] for the default root.
    pub fn relocate_when_unreachable(mut self, base: impl Into<PathBuf>) -> Self {
        self.relocation_base = Some(base.into());
        self
    }

    /// Finds the server binaries, settles who runs them and where the cluster lives;
    /// touches no file.
    ///
    /// # Errors
    /// [`Error::BinariesNotFound`], [`Error::InvalidPort`], [`Error::NoServerUser`] (root
    /// without a `postgres` OS user), or an unreadable `<root>/port`.
    pub fn build(self) -> Result<LocalCluster, Error> {
        let wanted_root = std::path::absolute(&self.root)
            .map_err(|e| Error::io("resolve the path of", &self.root, e))?;
        let port_override = self.port.map(port::validate).transpose()?;
        let binaries = binaries::find(self.bin_dir.as_deref())?;
        let server_user = ServerUser::detect()?;
        let root = match &self.relocation_base {
            Some(base) => location::place(&wanted_root, base, &server_user)?,
            None => wanted_root.clone(),
        };
        let layout = Layout::new(root);
        let port = match port_override {
            Some(port) => port,
            None => match port::read_file(&layout.port_file())? {
                Some(port) => port,
                None => port::derived(&location::canonical(&wanted_root)),
            },
        };
        Ok(LocalCluster {
            layout,
            wanted_root,
            binaries,
            server_user,
            port_override,
            port: AtomicU16::new(port),
        })
    }
}

impl LocalCluster {
    /// The cluster of this checkout: root `$AURA_LOCALPG_DIR` if set (as given), else
    /// [`default_root`](Self::default_root), relocated under [`RELOCATION_BASE`] when the
    /// `postgres` OS user cannot reach it
    /// ([`relocate_when_unreachable`](LocalClusterBuilder::relocate_when_unreachable));
    /// port `$AURA_LOCALPG_PORT` if set.
    ///
    /// # Errors
    /// As [`LocalClusterBuilder::build`], and [`Error::InvalidPort`] for a bad
    /// `AURA_LOCALPG_PORT`.
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = match std::env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
            Some(root) => Self::builder(root),
            None => Self::builder(Self::default_root()).relocate_when_unreachable(RELOCATION_BASE),
        };
        if let Some(value) = std::env::var_os(PORT_ENV).filter(|v| !v.is_empty()) {
            let value = value.to_str().ok_or_else(|| Error::InvalidPort {
                value: value.to_string_lossy().into_owned(),
                reason: "not a port number",
            })?;
            builder = builder.port(port::parse(value)?);
        }
        builder.build()
    }

    /// A cluster rooted at `root`, with the derived (or persisted) port and the binaries
    /// found as for [`from_env`](Self::from_env). Ignores `AURA_LOCALPG_DIR` and
    /// `AURA_LOCALPG_PORT`, so tests can run their own clusters beside the workspace one.
    ///
    /// # Errors
    /// As [`LocalClusterBuilder::build`].
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::builder(root).build()
    }

    /// A builder for a cluster rooted at `root` (explicit port or binaries directory).
    pub fn builder(root: impl Into<PathBuf>) -> LocalClusterBuilder {
        LocalClusterBuilder {
            root: root.into(),
            port: None,
            bin_dir: None,
            relocation_base: None,
        }
    }

    /// `<checkout>/.aura/pg` (`.aura/` is git-ignored), the checkout being found from the
    /// current directory as git and cargo find theirs: the nearest ancestor with a
    /// `Cargo.toml` declaring `[workspace]` or a `.git` ([`find_checkout`](crate::find_checkout)).
    /// Outside any checkout: `$XDG_DATA_HOME/aura/pg`, else `$HOME/.local/share/aura/pg`,
    /// else `./.aura/pg`.
    pub fn default_root() -> PathBuf {
        let cwd = std::env::current_dir().ok();
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        location::default_root(cwd.as_deref(), var("XDG_DATA_HOME"), var("HOME"))
    }

    /// The root this cluster was asked for, when it lives elsewhere because the `postgres`
    /// OS user cannot reach that root ([`root`](Self::root) says where it lives).
    pub fn relocated_from(&self) -> Option<&Path> {
        (self.wanted_root != self.layout.root()).then_some(self.wanted_root.as_path())
    }

    /// Makes sure the cluster runs and accepts TCP connections: initializes it if needed
    /// (initdb, password, port, settings), starts it if needed (`pg_ctl start -w -t 30`),
    /// reuses it if already running. Serialized with other threads and processes by the
    /// cluster lock; a stale `postmaster.pid` left by a killed server does not block it.
    ///
    /// # Errors
    /// [`Error::InitdbFailed`] / [`Error::StartFailed`] (quoting the end of the server log,
    /// which never holds the password), [`Error::PortInUse`], [`Error::PortMismatch`],
    /// [`Error::NotReachableByServerUser`], file-system errors.
    pub fn ensure_running(&self) -> Result<(), Error> {
        fsutil::create_dir_all_traversable(self.root())?;
        let _lock = ClusterLock::acquire(&self.layout.lock_file())?;
        if !self.layout.is_initialized() {
            self.initialize()?;
        }
        self.settle_port()?;
        self.start_or_reuse()
    }

    /// Stops the server (`pg_ctl stop -m fast -w`): returns `true` if it was running.
    ///
    /// # Errors
    /// [`Error::StopFailed`], file-system errors.
    pub fn stop(&self) -> Result<bool, Error> {
        if !self.layout.is_initialized() {
            return Ok(false);
        }
        let _lock = ClusterLock::acquire(&self.layout.lock_file())?;
        let Some(pid) = self.running_pid()? else {
            return Ok(false);
        };
        tracing::info!(root = %self.root().display(), pid, "stopping local PostgreSQL cluster");
        let mut cmd = self.server_user.command(&self.binaries.pg_ctl());
        cmd.arg("stop")
            .arg("-D")
            .arg(self.layout.data_dir())
            .args(["-m", "fast", "-w", "-t"])
            .arg(STOP_TIMEOUT.as_secs().to_string());
        let output = server_user::run(cmd, "pg_ctl")?;
        if !output.status.success() {
            return Err(Error::StopFailed {
                status: server_user::describe(output.status),
                output: server_user::output_tail(&output, LOG_TAIL_LINES),
            });
        }
        // pg_ctl returns once postmaster.pid is gone; the process exits right after.
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while pidfile::liveness(pid) == Liveness::Running {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the stopped server process {pid} to exit"),
                    waited: EXIT_TIMEOUT,
                    log: self.log_path(),
                });
            }
            std::thread::sleep(POLL);
        }
        Ok(true)
    }

    /// Restarts the running server (`pg_ctl restart -m fast -w`, as the `postgres` OS user
    /// when this process is root): every session is ended, the server stops and starts
    /// again with the options of its last start, and this returns once it accepts
    /// connections. Starts the cluster first when it is not running (then nothing is
    /// restarted). Serialized with start and stop by the cluster lock.
    ///
    /// # Errors
    /// As [`ensure_running`](Self::ensure_running); [`Error::StartFailed`] when `pg_ctl
    /// restart` fails (quoting the end of the server log).
    pub fn restart(&self) -> Result<(), Error> {
        self.ensure_running()?;
        let _lock = ClusterLock::acquire(&self.layout.lock_file())?;
        tracing::info!(root = %self.root().display(), "restarting local PostgreSQL cluster");
        self.restart_locked()
    }

    /// `pg_ctl restart` (same options as the last start, from `postmaster.opts`); the
    /// caller holds the cluster lock.
    pub(crate) fn restart_locked(&self) -> Result<(), Error> {
        let log = self.log_path();
        let offset = fsutil::file_len(&log);
        let mut cmd = self.server_user.command(&self.binaries.pg_ctl());
        cmd.arg("restart")
            .arg("-D")
            .arg(self.layout.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-m", "fast", "-w", "-t", "60"]);
        let output = server_user::run(cmd, "pg_ctl")?;
        if output.status.success() {
            return self.check_accepts(self.port());
        }
        Err(Error::StartFailed {
            port: self.port(),
            reason: format!("pg_ctl restart: {}", server_user::describe(output.status)),
            log_tail: fsutil::tail_lines(&log, offset, LOG_TAIL_LINES),
            log,
        })
    }

    /// The cluster's state, from its data directory and `postmaster.pid` (no lock taken).
    ///
    /// # Errors
    /// An unreadable `postmaster.pid`.
    pub fn status(&self) -> Result<Status, Error> {
        if !self.layout.is_initialized() {
            return Ok(Status::NotInitialized);
        }
        Ok(match self.running_pid()? {
            Some(pid) => Status::Running { pid },
            None => Status::Stopped,
        })
    }

    /// The host to connect to: `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The port the cluster listens on (or will, once started).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// The superuser role: `postgres`.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password, read from `<root>/superuser.password` (mode 0600).
    ///
    /// # Errors
    /// [`Error::NotInitialized`] before the first [`ensure_running`](Self::ensure_running).
    pub fn superuser_password(&self) -> Result<SecretString, Error> {
        password::read(&self.layout.password_file())?.ok_or_else(|| Error::NotInitialized {
            root: self.root().to_path_buf(),
        })
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<database>`, a libpq-compatible URL.
    ///
    /// # Errors
    /// As [`superuser_password`](Self::superuser_password).
    pub fn superuser_url(&self, database: &str) -> Result<SecretString, Error> {
        let password = self.superuser_password()?;
        Ok(SecretString::from(format!(
            "postgres://{SUPERUSER}:{}@{HOST}:{}/{}",
            utf8_percent_encode(password.expose_secret(), NON_ALPHANUMERIC),
            self.port(),
            utf8_percent_encode(database, NON_ALPHANUMERIC),
        )))
    }

    /// The server log file (`pg_ctl -l`). It never contains the superuser password.
    pub fn log_path(&self) -> PathBuf {
        self.layout.log_file()
    }

    /// The cluster's root directory (absolute).
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The data directory, `<root>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.layout.data_dir()
    }

    /// The directory of the server binaries in use (symlinks resolved).
    pub fn bin_dir(&self) -> &Path {
        self.binaries.dir()
    }

    /// Who runs the server binaries (for [`crate::tls`], which hands it the key files).
    pub(crate) fn server_user(&self) -> &ServerUser {
        &self.server_user
    }

    /// The cluster lock file (for [`crate::tls`], which edits the configuration under it).
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.layout.lock_file()
    }

    /// The file layout (for [`crate::standby`]).
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The server binaries (for [`crate::standby`]).
    pub(crate) fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    /// The pid of the running postmaster, if one runs on the data directory.
    fn running_pid(&self) -> Result<Option<u32>, Error> {
        Ok(pidfile::read(&self.layout.pid_file())?
            .map(|file| file.pid)
            .filter(|pid| pidfile::liveness(*pid) == Liveness::Running))
    }

    /// Under the lock, after initialization: the persisted port is the port (unless
    /// overridden); another process may have chosen it since this handle was built.
    pub(crate) fn settle_port(&self) -> Result<(), Error> {
        if self.port_override.is_some() {
            return Ok(());
        }
        let port_file = self.layout.port_file();
        match port::read_file(&port_file)? {
            Some(port) => self.port.store(port, Ordering::Relaxed),
            None => port::write_file(&port_file, self.port())?,
        }
        Ok(())
    }

    /// Picks the port at first initialization and persists it: the override, else the
    /// first free one from the port persisted by an earlier, failed attempt or derived from
    /// the root.
    pub(crate) fn choose_port(&self) -> Result<u16, Error> {
        let port_file = self.layout.port_file();
        let persisted = port::read_file(&port_file)?;
        let port = match self.port_override {
            Some(port) => port,
            None => port::first_free_from(
                persisted.unwrap_or_else(|| port::derived(&location::canonical(&self.wanted_root))),
            )?,
        };
        // An override is persisted only when nothing was: it does not move a chosen port.
        if persisted.is_none() || (self.port_override.is_none() && persisted != Some(port)) {
            port::write_file(&port_file, port)?;
        }
        self.port.store(port, Ordering::Relaxed);
        Ok(port)
    }

    /// initdb into a staging directory, settings appended, then renamed into place: a
    /// crash half-way leaves nothing that looks initialized.
    fn initialize(&self) -> Result<(), Error> {
        let data = self.layout.data_dir();
        if data.exists() {
            return Err(Error::ForeignDataDir { path: data });
        }
        self.server_user.check_reachable(self.root())?;
        if let Some(wanted) = self.relocated_from() {
            let text = format!("{}\n", wanted.display());
            fsutil::write_atomic(&self.layout.origin_file(), text.as_bytes(), 0o644)?;
        }
        let port = self.choose_port()?;
        tracing::info!(root = %self.root().display(), port, "initializing local PostgreSQL cluster");

        let staging = self.fresh_staging()?;

        let password = password::generate();
        password::write(&self.layout.password_file(), &password)?;
        let pwfile = self.layout.initdb_password_file();
        let cleanup = RemoveOnDrop(pwfile.clone());
        password::write(&pwfile, &password)?;
        self.server_user.hand_over(&pwfile)?;

        let mut cmd = self.server_user.command(&self.binaries.initdb());
        cmd.arg("-D")
            .arg(&staging)
            .args([
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--username",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--pwfile",
            ])
            .arg(&pwfile);
        let output = server_user::run(cmd, "initdb")?;
        drop(cleanup);
        if !output.status.success() {
            return Err(Error::InitdbFailed {
                status: server_user::describe(output.status),
                output: server_user::output_tail(&output, LOG_TAIL_LINES),
            });
        }

        self.finish_staging(&staging, CONFIG, port)
    }

    /// An empty staging directory for a new data directory (a leftover of a crashed
    /// attempt removed), mode 0700, the server user's.
    pub(crate) fn fresh_staging(&self) -> Result<PathBuf, Error> {
        let staging = self.layout.staging_dir();
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .map_err(|e| Error::io("remove the leftover", &staging, e))?;
        }
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(|e| Error::io("create directory", &staging, e))?;
        self.server_user.hand_over(&staging)?;
        Ok(staging)
    }

    /// Appends `settings` and the port to the staging directory's `postgresql.conf`, then
    /// renames it into place as `data/`: only a complete data directory ever exists.
    pub(crate) fn finish_staging(
        &self,
        staging: &Path,
        settings: &str,
        port: u16,
    ) -> Result<(), Error> {
        let conf = staging.join("postgresql.conf");
        OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| {
                f.write_all(settings.as_bytes())?;
                writeln!(f, "port = {port}")
            })
            .map_err(|e| Error::io("append settings to", &conf, e))?;
        let data = self.layout.data_dir();
        fs::rename(staging, &data).map_err(|e| Error::io("rename into place", &data, e))
    }

    /// Under the lock, on an initialized cluster: reuse the running server, wait for one
    /// that is starting, clear the way past a stale pid file, or start it.
    pub(crate) fn start_or_reuse(&self) -> Result<(), Error> {
        let port = self.port();
        let pid_path = self.layout.pid_file();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let Some(file) = pidfile::read(&pid_path)? else {
                return self.start(port);
            };
            match pidfile::liveness(file.pid) {
                Liveness::Gone => {
                    // The server removes a pid file whose process is gone by itself.
                    tracing::debug!(pid = file.pid, "stale postmaster.pid");
                    return self.start(port);
                }
                Liveness::NotPostgres => {
                    tracing::warn!(
                        pid = file.pid,
                        "postmaster.pid names a process that is not postgres (pid reused): removing it"
                    );
                    fs::remove_file(&pid_path)
                        .map_err(|e| Error::io("remove the stale", &pid_path, e))?;
                    continue;
                }
                Liveness::Running => {
                    if let Some(running) = file.port
                        && running != port
                    {
                        return Err(Error::PortMismatch {
                            root: self.root().to_path_buf(),
                            running,
                            expected: port,
                        });
                    }
                    if file.is_ready() {
                        tracing::debug!(
                            pid = file.pid,
                            port,
                            "reusing the running local PostgreSQL cluster"
                        );
                        return self.check_accepts(port);
                    }
                    // Starting (crash recovery) or stopping: wait for it to settle.
                }
                // Killed but not yet reaped: the server would take it for alive.
                Liveness::Zombie => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("server process {} to become ready or exit", file.pid),
                    waited: START_TIMEOUT,
                    log: self.log_path(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// `pg_ctl start -w`, then a TCP connection as proof.
    fn start(&self, port: u16) -> Result<(), Error> {
        if !port::is_free(port) {
            return Err(Error::PortInUse { port });
        }
        let log = self.log_path();
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| Error::io("create", &log, e))?;
        self.server_user.hand_over(&log)?;
        let offset = fsutil::file_len(&log);
        tracing::info!(root = %self.root().display(), port, "starting local PostgreSQL cluster");

        let mut retries = 0;
        loop {
            let mut cmd = self.server_user.command(&self.binaries.pg_ctl());
            cmd.arg("start")
                .arg("-D")
                .arg(self.layout.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t"])
                .arg(START_TIMEOUT.as_secs().to_string())
                .arg("-o")
                .arg(format!("-p {port}"));
            let output = server_user::run(cmd, "pg_ctl")?;
            if output.status.success() {
                return self.check_accepts(port);
            }
            let mut tail = fsutil::tail_lines(&log, offset, LOG_TAIL_LINES);
            // Children of a just-killed server may still hold its shared memory for a moment.
            if retries < SHMEM_RETRIES
                && tail
                    .iter()
                    .any(|l| l.contains("pre-existing shared memory block"))
            {
                retries += 1;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            if tail.is_empty() {
                tail = server_user::output_lines(&output, LOG_TAIL_LINES);
            }
            return Err(Error::StartFailed {
                port,
                reason: format!("pg_ctl start: {}", server_user::describe(output.status)),
                log,
                log_tail: tail,
            });
        }
    }

    /// Proves the server accepts TCP connections on `port`.
    fn check_accepts(&self, port: u16) -> Result<(), Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map(drop)
            .map_err(|e| Error::StartFailed {
                port,
                reason: format!("no TCP connection to {addr}: {e}"),
                log: self.log_path(),
                log_tail: fsutil::tail_lines(&self.log_path(), 0, LOG_TAIL_LINES),
            })
    }
}
