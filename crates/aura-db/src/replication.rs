//! The replication role a streaming standby connects as: LOGIN REPLICATION, its password
//! sent as a client-computed SCRAM-SHA-256 verifier (never plaintext SQL). For local and
//! test standbys (`aura dev up --replica`, aura-testkit's `Replica`); a managed service
//! makes its replicas itself.

use secrecy::SecretString;

use crate::connect::ConnectSpec;
use crate::dsn::Dsn;
use crate::error::Error;
use crate::ident::{quote_ident, validate_ident};
use crate::roles::{scram_verifier, step_error};

/// Creates `role` (LOGIN REPLICATION) on the server of `superuser` when it does not exist,
/// and sets its password either way. The server's `pg_hba.conf` must allow it a
/// `replication` connection (initdb's `host replication all 127.0.0.1/32 scram-sha-256` does
/// on a local cluster).
///
/// # Errors
/// A role name that is not a plain identifier ([`Error::Config`]), the connection's errors,
/// or the server's (as [`Error::Bootstrap`]).
pub async fn ensure_replication_role(
    superuser: &Dsn,
    role: &str,
    password: &SecretString,
) -> Result<(), Error> {
    validate_ident("replication role", role)?;
    let verifier = scram_verifier(password)?;
    let spec = ConnectSpec::single(superuser, "aura", std::time::Duration::from_secs(10));
    let client = spec.connect_raw().await?;
    let name = quote_ident(role);
    let sql = format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
             CREATE ROLE {name} LOGIN REPLICATION; \
           END IF; \
         END $$; \
         ALTER ROLE {name} LOGIN REPLICATION PASSWORD '{verifier}'"
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| step_error("create the replication role", e))
}
