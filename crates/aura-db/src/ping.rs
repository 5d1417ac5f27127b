//! `ping`: is the database there, how far away, and is the session encrypted.

use std::fmt;
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::error::Error;
use crate::pool::Pool;

/// Checks out a connection and times one `SELECT 1` round trip on it.
pub async fn ping(pool: &Pool) -> Result<Duration, Error> {
    let mut conn = pool.get().await?;
    let start = Instant::now();
    conn.batch_execute("SELECT 1").await?;
    Ok(start.elapsed())
}

/// Whether a session is encrypted, as the server sees it (`pg_stat_ssl` of its backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// No TLS: the session is plaintext.
    Plaintext,
    /// TLS, with the negotiated protocol and cipher suite.
    Tls {
        /// `TLSv1.3`, `TLSv1.2`.
        version: String,
        /// The cipher suite, in OpenSSL's naming (`TLS_AES_256_GCM_SHA384`).
        cipher: String,
    },
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plaintext => f.write_str("plaintext (no TLS)"),
            Self::Tls { version, cipher } => write!(f, "TLS ({version}, {cipher})"),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct SslRow {
    #[diesel(sql_type = Bool)]
    ssl: bool,
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    cipher: Option<String>,
}

/// The encryption of `conn`'s session, read from `pg_stat_ssl` for its own backend.
pub async fn encryption(conn: &mut AsyncPgConnection) -> Result<Encryption, Error> {
    let row: SslRow = diesel::sql_query(
        "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .get_result(conn)
    .await?;
    Ok(if row.ssl {
        Encryption::Tls {
            version: row.version.unwrap_or_default(),
            cipher: row.cipher.unwrap_or_default(),
        }
    } else {
        Encryption::Plaintext
    })
}
