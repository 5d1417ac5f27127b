//! Hand-written statements for the writes and point reads that run on every call.
//!
//! diesel caches a prepared statement per connection only for queries whose type says the
//! SQL never changes (`QueryId::HAS_STATIC_QUERY_ID`) and that are safe to cache; its
//! `UPDATE` builder and `sql_query` are neither, so they are parsed on every call. Each type
//! here is one fixed SQL text with typed binds: one `Parse` per connection, then only
//! `Bind`/`Execute` (see docs/facts.md, "Performance").
//!
//! Table names are schema-qualified (`aura.turns`), like the generated `schema.rs`, so the
//! statements do not depend on `search_path`.

mod conversations;
mod decoded_turn;
mod listings;
#[cfg(test)]
mod plans;
mod reads;
mod requests;
mod runs;
mod turn_pages;
mod turns;

pub(crate) use conversations::EditConversation;
pub(crate) use decoded_turn::DecodedTurn;
pub(crate) use listings::{PendingAfter, PendingPage, RunsAfter, RunsPage};
pub(crate) use reads::{LoadConversation, LoadTurns};
pub(crate) use requests::{AnswerRequest, CreateRequest, MarkResumed};
pub(crate) use runs::{CancelPending, EndRun};
pub(crate) use turn_pages::{LatestTurns, TurnsAfter, TurnsBefore};
pub(crate) use turns::{AppendKeyedTurn, AppendTurn, TurnRow};

/// Implements `QueryId` (static: the SQL depends only on the type; `$id` is the type with
/// `'static` lifetimes) and `Query` (when the statement returns rows) for a statement type;
/// diesel-async's `RunQueryDsl` then applies through its blanket impl.
macro_rules! cached_statement {
    ($ty:ty, id = $id:ty $(, returns $sql_type:ty)?) => {
        impl diesel::query_builder::QueryId for $ty {
            type QueryId = $id;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        $(
            impl diesel::query_builder::Query for $ty {
                type SqlType = $sql_type;
            }
        )?
    };
}
pub(crate) use cached_statement;

#[cfg(test)]
mod tests {
    use aura_schema::{ConversationId, RequestId, RunId, RunStatus, TurnId, TurnRole};
    use diesel::pg::Pg;
    use diesel::query_builder::{QueryFragment, QueryId};

    use super::*;

    /// The statement's SQL, after checking that diesel-async will cache it: a static query
    /// id (the cache key) and nothing in it that forbids caching.
    fn sql<Q: QueryFragment<Pg> + QueryId>(query: &Q) -> String {
        assert!(Q::query_id().is_some(), "no static query id");
        assert!(
            query.is_safe_to_cache_prepared(&Pg).unwrap_or(false),
            "not safe to cache"
        );
        let text = diesel::debug_query::<Pg, _>(query).to_string();
        text.split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// diesel's SQL without quotes, parentheses and table qualifiers: comparable to ours.
    fn plain(diesel_sql: &str) -> String {
        diesel_sql
            .replace("\"aura\".\"conversations\".", "")
            .replace("\"aura\".\"turns\".", "")
            .replace(['"', '(', ')'], "")
    }

    #[test]
    fn reads_are_the_sql_diesel_builds_from_schema_rs() {
        use aura_schema::{Conversation, Turn, conversations, turns};
        use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};

        let c = ConversationId::new();
        let dsl = conversations::table
            .find(c)
            .select(Conversation::as_select());
        assert_eq!(sql(&LoadConversation { id: c }), plain(&sql(&dsl)));
        let dsl = turns::table
            .filter(turns::conversation_id.eq(c))
            .order(turns::seq.asc())
            .select(Turn::as_select());
        assert_eq!(sql(&LoadTurns { conversation_id: c }), plain(&sql(&dsl)));
    }

    #[test]
    fn statements_are_cacheable_and_schema_qualified() {
        let c = ConversationId::new();
        let row = TurnRow {
            conversation_id: c,
            id: TurnId::new(),
            role: TurnRole::User,
            content: "hi",
            input_tokens: 1,
            output_tokens: 2,
            data: None,
        };
        let text = sql(&AppendTurn(row));
        assert!(
            text.starts_with(
                "WITH c AS (UPDATE aura.conversations SET turn_count = turn_count + 1"
            ),
            "{text}"
        );
        assert!(text.contains("INSERT INTO aura.turns"), "{text}");
        assert!(text.ends_with("RETURNING seq, created_at, true"), "{text}");
        assert!(text.contains("$9") && !text.contains("$10"), "{text}");
        let keyed = sql(&AppendKeyedTurn(row));
        assert!(
            keyed.starts_with("WITH prior AS (SELECT seq, created_at, role = $1"),
            "{keyed}"
        );
        assert!(
            keyed.contains("WHERE id = $10 AND NOT EXISTS (SELECT 1 FROM prior) RETURNING"),
            "{keyed}"
        );
        assert!(keyed.contains("$16") && !keyed.contains("$17"), "{keyed}");
        assert!(
            keyed.ends_with("UNION ALL SELECT seq, created_at, same FROM prior"),
            "{keyed}"
        );

        let run = RunId::new();
        let ids = [RequestId::new()];
        let texts = [
            sql(&EndRun {
                conversation_id: c,
                id: run,
                status: RunStatus::Stopped,
                reason: None,
            }),
            sql(&CancelPending {
                conversation_id: c,
                run_id: run,
            }),
            sql(&CreateRequest {
                conversation_id: c,
                id: RequestId::new(),
                run_id: Some(run),
                question: "q",
            }),
            sql(&AnswerRequest {
                conversation_id: c,
                id: ids[0],
                answer: "a",
            }),
            sql(&MarkResumed {
                conversation_id: c,
                ids: &ids,
            }),
        ];
        for text in texts {
            assert!(text.contains(" aura."), "{text}");
            assert!(
                text.contains("conversation_id = $"),
                "every statement filters on the conversation: {text}"
            );
        }
    }
}
