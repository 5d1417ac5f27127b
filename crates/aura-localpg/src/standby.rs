//! A streaming standby of another local cluster: its data directory is a base backup of the
//! primary (`pg_basebackup -R -w -X stream`), so it starts in recovery and follows the
//! primary's WAL (hot standby: read-only queries, `pg_wal_replay_pause()` / `_resume()`).
//!
//! ```text
//! <standby root>/
//!   replication.pgpass   the replication role's password (libpq passfile, mode 0600, owned
//!                        by the server user): pg_basebackup and the standby's
//!                        primary_conninfo read it, so the password is in no command line
//!   superuser.password   a copy of the primary's (the base backup has the primary's roles)
//!   data/ port server.log cluster.lock   as for any cluster (see layout.rs)
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::cluster::{HOST, LocalCluster, Status};
use crate::fsutil;
use crate::lock::ClusterLock;
use crate::server_user;
use crate::{Error, password};

/// The standby's passfile, under its root.
pub const REPLICATION_PASSFILE: &str = "replication.pgpass";

/// How many output lines an error quotes.
const OUTPUT_LINES: usize = 12;

/// Settings appended to the standby's copy of the primary's `postgresql.conf`.
const STANDBY_CONFIG: &str = "
# ---- aura-localpg: a streaming standby of a local cluster ----
hot_standby = on
# Queries on the standby are not cancelled by the primary's vacuum of rows they still see.
hot_standby_feedback = on
";

impl LocalCluster {
    /// Where this cluster's streaming standby lives by convention: `<root>-replica`, beside
    /// it (aura-testkit's `Replica`, `aura dev up --replica`).
    pub fn standby_root(&self) -> PathBuf {
        let root = self.root();
        let mut name = root.file_name().unwrap_or_default().to_os_string();
        name.push("-replica");
        root.with_file_name(name)
    }

    /// Makes this cluster a streaming standby of `primary` and makes sure it runs: when it
    /// has no data directory yet, takes a base backup of the (running) primary as
    /// `replication_user` (a role with REPLICATION and LOGIN whose password is `password`,
    /// allowed by the primary's `host replication` line of `pg_hba.conf`) with
    /// `pg_basebackup -R -w -X stream -c fast`, then starts it on its own port. A
    /// running standby is reused; a stopped one is made again from a fresh base backup
    /// (without a replication slot the primary may have recycled the WAL it would need).
    ///
    /// # Errors
    /// [`Error::BaseBackupFailed`] (quoting its output), and those of
    /// [`LocalCluster::ensure_running`].
    pub fn ensure_standby_of(
        &self,
        primary: &LocalCluster,
        replication_user: &str,
        password: &SecretString,
    ) -> Result<(), Error> {
        fsutil::create_dir_all_traversable(self.root())?;
        let _lock = ClusterLock::acquire(&self.layout().lock_file())?;
        if self.layout().is_initialized() && self.status()? == Status::Stopped {
            self.discard_stopped_standby()?;
        }
        if !self.layout().is_initialized() {
            self.base_backup(primary, replication_user, password)?;
        }
        self.settle_port()?;
        self.start_or_reuse()
    }

    /// A stopped standby is made again rather than restarted: there is no replication slot
    /// (a slot would keep the primary's WAL on disk for as long as the standby is away, for
    /// ever once it is deleted), so the primary may have recycled the WAL it would need
    /// (a test suite writes gigabytes: every `CREATE DATABASE … TEMPLATE` is WAL-logged).
    /// Only a standby's data directory (`standby.signal`) is removed.
    fn discard_stopped_standby(&self) -> Result<(), Error> {
        let data = self.layout().data_dir();
        if !data.join("standby.signal").is_file() {
            return Err(Error::ForeignDataDir { path: data });
        }
        tracing::info!(root = %self.root().display(), "re-making the stopped standby");
        std::fs::remove_dir_all(&data)
            .map_err(|e| Error::io("remove the stopped standby", &data, e))
    }

    fn base_backup(
        &self,
        primary: &LocalCluster,
        user: &str,
        replication_password: &SecretString,
    ) -> Result<(), Error> {
        let layout = self.layout();
        let data = layout.data_dir();
        if data.exists() {
            return Err(Error::ForeignDataDir { path: data });
        }
        self.server_user().check_reachable(self.root())?;
        let port = self.choose_port()?;
        tracing::info!(
            root = %self.root().display(),
            port,
            primary = primary.port(),
            "making a streaming standby of the local PostgreSQL cluster"
        );

        let passfile = self.root().join(REPLICATION_PASSFILE);
        let line = format!(
            "{HOST}:{}:*:{}:{}\n",
            primary.port(),
            pgpass_escape(user),
            pgpass_escape(replication_password.expose_secret())
        );
        fsutil::write_atomic(&passfile, line.as_bytes(), 0o600)?;
        self.server_user().hand_over(&passfile)?;
        password::write(&layout.password_file(), &primary.superuser_password()?)?;

        let staging = self.fresh_staging()?;

        // -w: never prompt (without it, and no terminal, it loops opening connections);
        // -R: standby.signal + primary_conninfo (with passfile=) in postgresql.auto.conf.
        let mut cmd = self.server_user().command(&self.binaries().pg_basebackup());
        cmd.arg("-D")
            .arg(&staging)
            .args(["-h", HOST, "-p"])
            .arg(primary.port().to_string())
            .args(["-U", user])
            .args(["-R", "-w", "-X", "stream", "-c", "fast", "--no-sync"])
            .env("PGPASSFILE", &passfile)
            .env("PGAPPNAME", "aura-localpg-standby");
        let output = server_user::run(cmd, "pg_basebackup")?;
        if !output.status.success() {
            return Err(Error::BaseBackupFailed {
                primary_port: primary.port(),
                status: server_user::describe(output.status),
                output: server_user::output_tail(&output, OUTPUT_LINES),
            });
        }
        // -R's primary_conninfo lists every option of pg_basebackup's libpq, some of which
        // the server's walreceiver libpq may not know (PostgreSQL 18's client wrote
        // `sslnegotiation`, which a system libpq 15 refuses): replace it with the few we
        // need (postgresql.auto.conf is read last; its last setting wins).
        let conninfo = format!(
            "host={HOST} port={} user={} passfile={} application_name=aura-localpg-standby",
            primary.port(),
            conninfo_value(user),
            conninfo_value(&passfile.display().to_string()),
        );
        let auto = staging.join("postgresql.auto.conf");
        OpenOptions::new()
            .append(true)
            .open(&auto)
            .and_then(|mut f| writeln!(f, "primary_conninfo = '{}'", conninfo.replace('\'', "''")))
            .map_err(|e| Error::io("append settings to", &auto, e))?;
        self.finish_staging(&staging, STANDBY_CONFIG, port)
    }
}

/// A libpq connection-string value: single-quoted, `\\` and `'` escaped with `\\`.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A `.pgpass` field: `\` and `:` escaped with `\`.
fn pgpass_escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    #[test]
    fn conninfo_values_are_quoted_and_escaped() {
        assert_eq!(super::conninfo_value(r"a'b\c"), r"'a\'b\\c'");
    }

    #[test]
    fn pgpass_fields_escape_backslash_and_colon() {
        assert_eq!(super::pgpass_escape(r"a:b\c"), r"a\:b\\c");
    }
}
