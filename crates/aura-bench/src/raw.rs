//! The raw side: hand-written tokio-postgres, the best version of each operation that keeps
//! aura-store's SQL semantics and transaction boundaries. Statements are prepared once per
//! connection; connections live in a small pool (a FIFO semaphore in front of a stack of
//! clients, the same shape as aura-db's pool without bb8) of the same size as aura's, as
//! the same role, with the same session settings.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use aura_db::Dsn;
use aura_schema::{Conversation, ConversationId, Turn, TurnId, TurnRole};
use aura_store::ConversationSummary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

/// Conversation columns, in the order of `aura_schema::Conversation`.
pub(crate) const CONVERSATION_COLUMNS: &str = "id, title, model, started_at, updated_at, turn_count, \
     input_tokens, output_tokens, last_turn_at, last_activity_at";
/// Turn columns, in the order of `aura_schema::Turn`.
pub(crate) const TURN_COLUMNS: &str =
    "conversation_id, id, seq, role, content, input_tokens, output_tokens, created_at, data";
/// Summary columns, in the order of `aura_store::ConversationSummary`.
const SUMMARY_COLUMNS: &str = "id, title, model, started_at, turn_count, input_tokens, \
     output_tokens, last_activity_at";

/// aura-store's one-statement append (`sql/turns.rs`), verbatim in meaning.
pub const APPEND_SQL: &str = "WITH c AS (UPDATE aura.conversations SET turn_count = turn_count + 1, \
     input_tokens = input_tokens + $1, output_tokens = output_tokens + $2, \
     last_turn_at = GREATEST(last_turn_at, now()), updated_at = now() WHERE id = $3 \
     RETURNING id, turn_count, last_turn_at) \
     INSERT INTO aura.turns (conversation_id, id, seq, role, content, input_tokens, \
     output_tokens, created_at, data) SELECT c.id, $4, c.turn_count, $5, $6, $7, $8, \
     c.last_turn_at, $9 FROM c RETURNING seq, created_at";

/// Statements prepared on each connection.
pub struct Statements {
    conversation: Statement,
    turns: Statement,
    list_first: Statement,
    list_after: Statement,
    append: Statement,
    naive_lock: Statement,
    naive_insert: Statement,
    naive_update: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> anyhow::Result<Self> {
        let p = async |sql: String| {
            client
                .prepare(&sql)
                .await
                .with_context(|| format!("prepare {sql}"))
        };
        Ok(Statements {
            conversation: p(format!(
                "SELECT {CONVERSATION_COLUMNS} FROM aura.conversations WHERE id = $1"
            ))
            .await?,
            turns: p(format!(
                "SELECT {TURN_COLUMNS} FROM aura.turns WHERE conversation_id = $1 ORDER BY seq"
            ))
            .await?,
            list_first: p(format!(
                "SELECT {SUMMARY_COLUMNS} FROM aura.conversations \
                 ORDER BY last_activity_at DESC, id DESC LIMIT $1"
            ))
            .await?,
            list_after: p(format!(
                "SELECT {SUMMARY_COLUMNS} FROM aura.conversations \
                 WHERE last_activity_at <= $1 AND (last_activity_at < $1 OR id < $2) \
                 ORDER BY last_activity_at DESC, id DESC LIMIT $3"
            ))
            .await?,
            // Typed like diesel's binds (Int4 tokens added to bigint totals).
            append: client
                .prepare_typed(
                    APPEND_SQL,
                    &[
                        Type::INT4,
                        Type::INT4,
                        Type::UUID,
                        Type::UUID,
                        Type::TEXT,
                        Type::TEXT,
                        Type::INT4,
                        Type::INT4,
                        Type::JSONB,
                    ],
                )
                .await
                .context("prepare the append")?,
            naive_lock: p(
                "SELECT turn_count FROM aura.conversations WHERE id = $1 FOR UPDATE".to_owned(),
            )
            .await?,
            naive_insert: p(
                "INSERT INTO aura.turns (conversation_id, id, seq, role, content, \
                 input_tokens, output_tokens, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now()) RETURNING created_at"
                    .to_owned(),
            )
            .await?,
            naive_update: p("UPDATE aura.conversations SET turn_count = $2, \
                 input_tokens = input_tokens + $3, output_tokens = output_tokens + $4, \
                 last_turn_at = $5, updated_at = now() WHERE id = $1"
                .to_owned())
            .await?,
        })
    }
}

/// One raw connection and its prepared statements.
pub struct RawConn {
    /// The client.
    pub client: Client,
    st: Statements,
    /// The statements a workload prepared beside these (see [`RawPool::open_with`]), in the
    /// order it gave them.
    pub extra: Vec<Statement>,
}

/// A fixed set of raw connections behind a FIFO semaphore.
pub struct RawPool {
    gate: Arc<Semaphore>,
    conns: Mutex<VecDeque<RawConn>>,
    fifo: bool,
    /// Server process ids of the connections.
    pub backends: Arc<Vec<u32>>,
}

/// A checked-out raw connection; goes back on drop.
pub struct RawGuard {
    conn: Option<RawConn>,
    pool: Arc<RawPool>,
    // Dropped after `drop` has put the connection back, so the next waiter finds it.
    _permit: OwnedSemaphorePermit,
}

impl RawPool {
    /// Opens `size` connections to `dsn` with the session settings aura-db's pool gives its
    /// own: `application_name`, and `statement_timeout` in the startup packet.
    ///
    /// Idle connections are reused last-in first-out (the one just returned is handed out
    /// again: its backend is awake and cache-warm), unless `fifo`, which rotates through
    /// them all as bb8's default queue does (for comparison only).
    ///
    /// `extra` statements are prepared on every connection too ([`RawConn::extra`]), for
    /// workloads of their own.
    pub async fn open_with(
        dsn: &Dsn,
        size: usize,
        fifo: bool,
        extra: &[String],
    ) -> anyhow::Result<Arc<Self>> {
        // Through aura_db::connect_raw: the DSN's TLS settings (rustls, as aura's pool), a
        // plain tokio-postgres client.
        let text = dsn.expose();
        let sep = if text.contains('?') { '&' } else { '?' };
        let dsn = Dsn::parse(
            "raw side URL",
            secrecy::SecretString::from(format!("{text}{sep}application_name=aura-bench-raw")),
        )?;
        // The session settings of aura-db's pooled connections, so both sides' backends run
        // their statements under the same settings (a statement timeout and the connection
        // check each arm a server timer per statement: server CPU of the configuration, not
        // of the store).
        let session = aura_db::PoolSettings::default().session_statements();
        let mut conns = VecDeque::with_capacity(size);
        let mut backends = Vec::with_capacity(size);
        for _ in 0..size {
            let client = aura_db::connect_raw(&dsn)
                .await
                .with_context(|| format!("raw connect to {dsn}"))?;
            client
                .batch_execute(&session)
                .await
                .context("raw session settings")?;
            let st = Statements::prepare(&client).await?;
            let mut prepared = Vec::with_capacity(extra.len());
            for sql in extra {
                prepared.push(
                    client
                        .prepare(sql)
                        .await
                        .with_context(|| format!("prepare {sql}"))?,
                );
            }
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .try_get(0)?;
            backends.push(u32::try_from(pid)?);
            conns.push_back(RawConn {
                client,
                st,
                extra: prepared,
            });
        }
        Ok(Arc::new(RawPool {
            gate: Arc::new(Semaphore::new(size)),
            conns: Mutex::new(conns),
            fifo,
            backends: Arc::new(backends),
        }))
    }

    /// Checks out a connection, waiting in arrival order.
    pub async fn get(self: &Arc<Self>) -> anyhow::Result<RawGuard> {
        let permit = self.gate.clone().acquire_owned().await?;
        let mut conns = self
            .conns
            .lock()
            .map_err(|_| anyhow!("raw pool lock poisoned"))?;
        let conn = if self.fifo {
            conns.pop_front()
        } else {
            conns.pop_back()
        };
        drop(conns);
        let conn = conn.ok_or_else(|| anyhow!("raw pool: a permit without a connection"))?;
        Ok(RawGuard {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
        })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut conns) = self.pool.conns.lock()
        {
            conns.push_back(conn);
        }
    }
}

impl std::ops::Deref for RawGuard {
    type Target = RawConn;
    fn deref(&self) -> &RawConn {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl std::ops::DerefMut for RawGuard {
    fn deref_mut(&mut self) -> &mut RawConn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

/// A conversation and its turns (`aura_store::ConversationWithTurns`).
pub type WithTurns = (Conversation, Vec<Turn>);

impl RawConn {
    /// get_conversation: both loads pipelined in autocommit, the conversation's first, then
    /// the same consistency check as aura-store (turns cut to `turn_count`; torn is an error
    /// here, it cannot happen without concurrent deletes).
    pub async fn get_conversation(&self, id: ConversationId) -> anyhow::Result<Option<WithTurns>> {
        let uuid = id.as_uuid();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&uuid];
        let (row, rows) = tokio::try_join!(
            biased;
            self.client.query_opt(&self.st.conversation, &params),
            self.client.query(&self.st.turns, &params),
        )?;
        row.map(|row| with_turns(id, &row, &rows)).transpose()
    }

    /// get_conversation the straightforward way: the conversation, then its turns, one
    /// round trip each (not pipelined); the same statements and check.
    pub async fn get_conversation_sequential(
        &self,
        id: ConversationId,
    ) -> anyhow::Result<Option<WithTurns>> {
        let uuid = id.as_uuid();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&uuid];
        let Some(row) = self
            .client
            .query_opt(&self.st.conversation, &params)
            .await?
        else {
            return Ok(None);
        };
        let rows = self.client.query(&self.st.turns, &params).await?;
        with_turns(id, &row, &rows).map(Some)
    }

    /// list_conversations: the cursor decoded, `limit + 1` rows by the same keyset
    /// predicate as aura-store, the page and the next cursor (same encoding).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<(Vec<ConversationSummary>, Option<String>)> {
        let fetch = i64::from(limit) + 1;
        let rows = match after.map(decode_cursor).transpose()? {
            None => self.client.query(&self.st.list_first, &[&fetch]).await?,
            Some((at, id)) => {
                self.client
                    .query(&self.st.list_after, &[&at, &id, &fetch])
                    .await?
            }
        };
        let mut items = rows
            .iter()
            .map(summary)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items
                .last()
                .map(|s| cursor(s.last_activity_at, s.id.as_uuid()))
        } else {
            None
        };
        Ok((items, next))
    }

    /// append_turn as aura-store does it: one statement.
    pub async fn append(
        &self,
        conversation_id: ConversationId,
        role: TurnRole,
        content: &str,
        input_tokens: i32,
        output_tokens: i32,
    ) -> anyhow::Result<Turn> {
        let id = TurnId::new();
        let row = self
            .client
            .query_opt(
                &self.st.append,
                &[
                    &input_tokens,
                    &output_tokens,
                    &conversation_id.as_uuid(),
                    &id.as_uuid(),
                    &role.as_str(),
                    &content,
                    &input_tokens,
                    &output_tokens,
                    &None::<serde_json::Value>,
                ],
            )
            .await?
            .ok_or_else(|| anyhow!("conversation {conversation_id} not found"))?;
        Ok(Turn {
            conversation_id,
            id,
            seq: row.try_get(0)?,
            role,
            content: content.to_owned(),
            input_tokens,
            output_tokens,
            created_at: row.try_get(1)?,
            data: None,
        })
    }

    /// append_turn the naive way: one transaction of three statements (lock the
    /// conversation and read its count, insert the turn, update the aggregates).
    pub async fn append_naive(
        &mut self,
        conversation_id: ConversationId,
        role: TurnRole,
        content: &str,
        input_tokens: i32,
        output_tokens: i32,
    ) -> anyhow::Result<Turn> {
        let id = TurnId::new();
        let cid = conversation_id.as_uuid();
        let tx = self.client.transaction().await?;
        let count: i32 = tx
            .query_opt(&self.st.naive_lock, &[&cid])
            .await?
            .ok_or_else(|| anyhow!("conversation {conversation_id} not found"))?
            .try_get(0)?;
        let seq = count + 1;
        let created_at: DateTime<Utc> = tx
            .query_one(
                &self.st.naive_insert,
                &[
                    &cid,
                    &id.as_uuid(),
                    &seq,
                    &role.as_str(),
                    &content,
                    &input_tokens,
                    &output_tokens,
                ],
            )
            .await?
            .try_get(0)?;
        tx.execute(
            &self.st.naive_update,
            &[
                &cid,
                &seq,
                &i64::from(input_tokens),
                &i64::from(output_tokens),
                &created_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Turn {
            conversation_id,
            id,
            seq,
            role,
            content: content.to_owned(),
            input_tokens,
            output_tokens,
            created_at,
            data: None,
        })
    }
}

/// A conversation row and its turn rows, as aura-store returns them: turns cut to
/// `turn_count` (torn is an error here: it cannot happen without concurrent deletes).
fn with_turns(id: ConversationId, row: &Row, rows: &[Row]) -> anyhow::Result<WithTurns> {
    let conversation = conversation(row)?;
    let n = usize::try_from(conversation.turn_count).unwrap_or_default();
    let mut turns = rows.iter().map(turn).collect::<anyhow::Result<Vec<_>>>()?;
    if n > 0
        && turns
            .get(n - 1)
            .is_none_or(|t| t.seq != conversation.turn_count)
    {
        bail!("torn read of conversation {id}");
    }
    turns.truncate(n);
    Ok((conversation, turns))
}

/// aura-store's cursor encoding: base64url (no padding) of version `1`, microseconds since
/// the epoch (i64 BE) and the id.
pub fn cursor(at: DateTime<Utc>, id: Uuid) -> String {
    let mut bytes = [0u8; 25];
    bytes[0] = 1;
    bytes[1..9].copy_from_slice(&at.timestamp_micros().to_be_bytes());
    bytes[9..].copy_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a [`cursor`] encodes.
pub fn decode_cursor(text: &str) -> anyhow::Result<(DateTime<Utc>, Uuid)> {
    let bytes: [u8; 25] = URL_SAFE_NO_PAD
        .decode(text)?
        .try_into()
        .map_err(|_| anyhow!("cursor of the wrong length"))?;
    if bytes[0] != 1 {
        bail!("cursor of an unknown version");
    }
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&bytes[1..9]);
    let at = DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
        .ok_or_else(|| anyhow!("cursor time out of range"))?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[9..]);
    Ok((at, Uuid::from_bytes(id)))
}

pub(crate) fn conversation(row: &Row) -> anyhow::Result<Conversation> {
    Ok(Conversation {
        id: ConversationId::from_uuid(row.try_get(0)?),
        title: row.try_get(1)?,
        model: row.try_get(2)?,
        started_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        turn_count: row.try_get(5)?,
        input_tokens: row.try_get(6)?,
        output_tokens: row.try_get(7)?,
        last_turn_at: row.try_get(8)?,
        last_activity_at: row.try_get(9)?,
    })
}

pub(crate) fn turn(row: &Row) -> anyhow::Result<Turn> {
    Ok(Turn {
        conversation_id: ConversationId::from_uuid(row.try_get(0)?),
        id: TurnId::from_uuid(row.try_get(1)?),
        seq: row.try_get(2)?,
        role: TurnRole::from_str(row.try_get(3)?)?,
        content: row.try_get(4)?,
        input_tokens: row.try_get(5)?,
        output_tokens: row.try_get(6)?,
        created_at: row.try_get(7)?,
        data: row.try_get(8)?,
    })
}

fn summary(row: &Row) -> anyhow::Result<ConversationSummary> {
    Ok(ConversationSummary {
        id: ConversationId::from_uuid(row.try_get(0)?),
        title: row.try_get(1)?,
        model: row.try_get(2)?,
        started_at: row.try_get(3)?,
        turn_count: row.try_get(4)?,
        input_tokens: row.try_get(5)?,
        output_tokens: row.try_get(6)?,
        last_activity_at: row.try_get(7)?,
    })
}
