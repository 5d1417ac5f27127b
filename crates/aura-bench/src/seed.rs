//! Bench data, written as the superuser with set-based SQL: conversations with UUIDv7-like,
//! time-ordered ids (the 48-bit millisecond prefix of their `started_at`), turns numbered
//! 1..=n with consistent aggregates.

use std::time::Instant;

use anyhow::Context;
use aura_schema::ConversationId;
use tokio_postgres::Client;

/// A UUIDv7 text for the timestamp expression `ts`, random bits from the md5 text `h`:
/// 48 bits of milliseconds, version 7, 12 bits, variant `10`, 62 bits.
fn uuid7(ts: &str, h: &str) -> String {
    format!(
        "(lpad(to_hex((extract(epoch FROM {ts}) * 1000)::bigint), 12, '0') || '7' || \
         substr({h}, 1, 3) || '8' || substr({h}, 4, 15))::uuid"
    )
}

/// Inserts `n` conversations without turns, started one `step_ms` apart and ending
/// `end_ago_s` seconds before now (so sets made one after the other do not interleave
/// unless asked to). Returns their ids when `returning`, oldest first.
pub async fn conversations(
    client: &Client,
    n: i64,
    step_ms: i64,
    end_ago_s: i64,
    returning: bool,
) -> anyhow::Result<Vec<ConversationId>> {
    let id = uuid7("t", "h");
    let sql = format!(
        "INSERT INTO aura.conversations (id, title, model, started_at, updated_at) \
         SELECT {id}, 'Bench conversation ' || i, 'bench-model', t, t \
         FROM (SELECT i, now() - $3::bigint * interval '1 second' \
                          - ($1::bigint - i) * $2::bigint * interval '1 millisecond' AS t, \
                      md5(random()::text || i::text) AS h \
               FROM generate_series(1, $1::bigint) AS i) AS s \
         ORDER BY i {}",
        if returning { "RETURNING id" } else { "" }
    );
    let t0 = Instant::now();
    let rows = client
        .query(&sql, &[&n, &step_ms, &end_ago_s])
        .await
        .with_context(|| format!("insert {n} conversations"))?;
    if n >= 100_000 {
        eprintln!("  inserted {n} conversations in {:.1?}", t0.elapsed());
    }
    rows.iter()
        .map(|r| Ok(ConversationId::from_uuid(r.try_get(0)?)))
        .collect()
}

/// Gives each listed conversation `per` turns (alternating user / assistant, `content`,
/// 10 input and 20 output tokens each, one second apart after its start) and sets its
/// aggregates to match, in one statement.
pub async fn turns(
    client: &Client,
    ids: &[ConversationId],
    per: i32,
    content: &str,
) -> anyhow::Result<()> {
    let turn_id = uuid7(
        "(c.started_at + s * interval '1 second')",
        "md5(random()::text)",
    );
    let sql = format!(
        "WITH t AS ( \
           INSERT INTO aura.turns (conversation_id, id, seq, role, content, input_tokens, \
                                   output_tokens, created_at) \
           SELECT c.id, {turn_id}, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END, \
                  $3, 10, 20, c.started_at + s * interval '1 second' \
           FROM aura.conversations c CROSS JOIN generate_series(1, $2::int) AS s \
           WHERE c.id = ANY($1) \
           RETURNING conversation_id, input_tokens, output_tokens, created_at) \
         UPDATE aura.conversations c \
            SET turn_count = a.n, input_tokens = a.i, output_tokens = a.o, last_turn_at = a.l \
           FROM (SELECT conversation_id, count(*)::int AS n, sum(input_tokens) AS i, \
                        sum(output_tokens) AS o, max(created_at) AS l \
                   FROM t GROUP BY conversation_id) a \
          WHERE c.id = a.conversation_id"
    );
    let uuids: Vec<uuid::Uuid> = ids.iter().map(ConversationId::as_uuid).collect();
    client
        .execute(&sql, &[&uuids, &per, &content])
        .await
        .context("insert turns")?;
    Ok(())
}

/// `VACUUM ANALYZE` of the tables the benches read: visibility map and hint bits set,
/// statistics fresh, as on a database that has been up for a while.
pub async fn vacuum(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute("VACUUM ANALYZE aura.conversations, aura.turns")
        .await
        .context("vacuum analyze")
}

/// Positions for deep pages: `count` `(last_activity_at, id)` keys spread over the older
/// half of the listing order (never within 100 rows of its end, so every page is full).
pub async fn deep_positions(client: &Client, count: i64) -> anyhow::Result<Vec<String>> {
    let rows = client
        .query(
            "WITH o AS (SELECT last_activity_at, id, \
                               row_number() OVER (ORDER BY last_activity_at DESC, id DESC) AS rn, \
                               count(*) OVER () AS total \
                          FROM aura.conversations) \
             SELECT last_activity_at, id FROM o \
              WHERE rn > total / 2 AND rn <= total - 100 \
                AND (rn - total / 2) % greatest((total / 2 - 100) / $1, 1) = 0 \
              ORDER BY rn LIMIT $1",
            &[&count],
        )
        .await
        .context("deep positions")?;
    rows.iter()
        .map(|r| Ok(crate::raw::cursor(r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
