//! The crate's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while finding, initializing, starting or stopping the local cluster.
///
/// Every message is one line that says what failed and what to do about it. No variant
/// carries the superuser password: the server log tails quoted here never contain it,
/// because the password is only ever handed to `initdb` through a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `initdb`, `pg_ctl` or `postgres` could not be found.
    #[error(
        "aura-localpg: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in {searched}: \
         install the PostgreSQL server package (Debian: apt-get install postgresql) or set AURA_PG_BIN_DIR \
         to the directory that holds them"
    )]
    BinariesNotFound {
        /// Where the binaries were looked for.
        searched: String,
    },

    /// The requested port cannot be used for the local cluster.
    #[error(
        "aura-localpg: invalid port {value:?} ({reason}): choose a free port in 1024..=32767 other than 5432"
    )]
    InvalidPort {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The cluster's port is taken by a process that is not this cluster.
    #[error(
        "aura-localpg: port {port} on 127.0.0.1 is in use by another process: stop that process, \
         or set AURA_LOCALPG_PORT to a free port below 32768"
    )]
    PortInUse {
        /// The busy port.
        port: u16,
    },

    /// Probing for a free port at first initialization found none.
    #[error(
        "aura-localpg: no free port among {tried} ports probed from {first} on 127.0.0.1: \
         set AURA_LOCALPG_PORT to a free port below 32768"
    )]
    NoFreePort {
        /// The first port probed.
        first: u16,
        /// How many ports were probed.
        tried: u16,
    },

    /// The cluster is already running on a port other than the one requested.
    #[error(
        "aura-localpg: the cluster at {} is running on port {running}, not {expected}: \
         stop it first (aura dev down) or drop the port override",
        root.display()
    )]
    PortMismatch {
        /// The cluster root.
        root: PathBuf,
        /// The port the running server listens on.
        running: u16,
        /// The port this handle was configured with.
        expected: u16,
    },

    /// A file-system operation failed.
    #[error("aura-localpg: could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A helper program could not be started at all.
    #[error("aura-localpg: could not run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Running as root, but there is no `postgres` OS user to run the server as.
    #[error(
        "aura-localpg: running as root, the server must run as the `postgres` OS user, which does not exist: \
         install the PostgreSQL server package (it creates that user) or run as a non-root user"
    )]
    NoServerUser,

    /// Running as root, the `postgres` OS user cannot reach the cluster directory.
    #[error(
        "aura-localpg: the `postgres` OS user cannot reach {}: make it and every parent directory \
         traversable (chmod o+x), or set AURA_LOCALPG_DIR to a directory under /tmp (unset, a \
         checkout's cluster moves to a reachable directory by itself)",
        path.display()
    )]
    NotReachableByServerUser {
        /// The directory the server user cannot traverse.
        path: PathBuf,
    },

    /// A data directory exists that this crate did not create.
    #[error(
        "aura-localpg: {} exists but is not a PostgreSQL data directory: move it away or remove it",
        path.display()
    )]
    ForeignDataDir {
        /// The unexpected directory.
        path: PathBuf,
    },

    /// The cluster has not been initialized yet (no data directory or no password file).
    #[error(
        "aura-localpg: the cluster at {} is not initialized: start it first (aura dev up)",
        root.display()
    )]
    NotInitialized {
        /// The cluster root.
        root: PathBuf,
    },

    /// A file this crate keeps could not be understood.
    #[error("aura-localpg: {} is corrupt ({detail}): remove it and try again", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// `initdb` failed.
    #[error("aura-localpg: initdb failed ({status}): {output}")]
    InitdbFailed {
        /// Its exit status.
        status: String,
        /// The last lines of its output, joined with ` | `.
        output: String,
    },

    /// `pg_basebackup` (making a streaming standby) failed.
    #[error("aura-localpg: pg_basebackup from port {primary_port} failed ({status}): {output}")]
    BaseBackupFailed {
        /// The primary's port.
        primary_port: u16,
        /// Its exit status.
        status: String,
        /// The last lines of its output, joined with ` | `.
        output: String,
    },

    /// The server did not start (or did not become ready in time).
    #[error(
        "aura-localpg: PostgreSQL did not start on port {port} ({reason}); {} ends: {}",
        log.display(),
        log_tail.join(" | ")
    )]
    StartFailed {
        /// The port it was to listen on.
        port: u16,
        /// What failed (pg_ctl's status, or the readiness check).
        reason: String,
        /// The server log file.
        log: PathBuf,
        /// The last lines written to the server log by this attempt (or pg_ctl's own output
        /// when the log has none).
        log_tail: Vec<String>,
    },

    /// `pg_ctl stop` failed.
    #[error("aura-localpg: PostgreSQL did not stop ({status}): {output}")]
    StopFailed {
        /// Its exit status.
        status: String,
        /// The last lines of pg_ctl's output, joined with ` | `.
        output: String,
    },

    /// Waiting for something about the server took too long.
    #[error(
        "aura-localpg: timed out after {}s waiting for {what}: see {}",
        waited.as_secs(),
        log.display()
    )]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it was waited for.
        waited: Duration,
        /// The server log file.
        log: PathBuf,
    },

    /// The TLS certificates of the cluster could not be generated (see `tls.rs`).
    #[error("aura-localpg: cannot generate the TLS certificate {what}: {reason}")]
    TlsGeneration {
        /// Which certificate or key.
        what: &'static str,
        /// rcgen's reason.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
