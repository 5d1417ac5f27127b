//! [`PgStore`]: the traits over the aura-db pool.
//!
//! One statement per call wherever one statement is atomic on its own; a write of several
//! statements runs inside [`aura_db::with_tx`]. Hot writes are the cached statement types
//! of `crate::sql`; reads and inserts are diesel's DSL, which diesel caches too.

mod conversations;
mod requests;
mod runs;
mod turns;

use aura_db::{AsyncPgConnection, Config, Pool, PooledConn};

use crate::error::StoreError;

/// The Postgres implementation of every store trait. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// A store over an open pool (app role).
    pub fn new(pool: Pool) -> Self {
        PgStore { pool }
    }

    /// Opens the pool `config` describes and wraps it (see [`aura_db::open`]).
    ///
    /// Errors: the database cannot be reached or refuses the credentials, as
    /// [`StoreError::Unavailable`] or [`StoreError::Database`].
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        Ok(PgStore::new(aura_db::open(config).await?))
    }

    /// The pool underneath.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn conn(&self) -> Result<PooledConn, StoreError> {
        Ok(self.pool.get().await?)
    }
}

/// Passes an operation's result through; when it failed because the connection is gone
/// ([`StoreError::Unavailable`]), first marks the connection broken ([`aura_db::mark_broken`]),
/// so the pool discards it rather than handing it out again.
fn settle<T>(conn: &mut AsyncPgConnection, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(StoreError::Unavailable(_)) = &result {
        aura_db::mark_broken(conn);
    }
    result
}
