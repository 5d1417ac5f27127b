//! Editing a conversation's title and model.

use aura_schema::{ConversationId, conversations};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz, Uuid};

use super::cached_statement;

/// Sets the title and/or model, when the conversation is still at the expected version:
///
/// ```sql
/// UPDATE aura.conversations
///    SET title = CASE WHEN $1 THEN $2 ELSE title END,
///        model = COALESCE($3, model),
///        updated_at = GREATEST(now(), updated_at + interval '1 microsecond')
///  WHERE id = $4 AND ($5::timestamptz IS NULL OR updated_at = $6)
/// RETURNING <every column of conversations>
/// ```
///
/// - One statement for every combination (the flags are binds), so one prepared statement.
/// - `updated_at` strictly grows with every edit (even two in the same microsecond, or
///   after a turn stamped later), so an expected `updated_at` names one version.
/// - No row: the conversation is missing or has moved on (the caller tells which).
pub(crate) struct EditConversation<'a> {
    pub(crate) id: ConversationId,
    pub(crate) set_title: bool,
    pub(crate) title: Option<&'a str>,
    pub(crate) model: Option<&'a str>,
    pub(crate) expected: Option<DateTime<Utc>>,
}

cached_statement!(
    EditConversation<'_>,
    id = EditConversation<'static>,
    returns conversations::SqlType
);

impl QueryFragment<Pg> for EditConversation<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE aura.conversations SET title = CASE WHEN ");
        out.push_bind_param::<Bool, _>(&self.set_title)?;
        out.push_sql(" THEN ");
        out.push_bind_param::<Nullable<Text>, _>(&self.title)?;
        out.push_sql(" ELSE title END, model = COALESCE(");
        out.push_bind_param::<Nullable<Text>, _>(&self.model)?;
        out.push_sql(
            ", model), updated_at = GREATEST(now(), updated_at + interval '1 microsecond') \
             WHERE id = ",
        );
        out.push_bind_param::<Uuid, _>(&self.id)?;
        out.push_sql(" AND (");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.expected)?;
        out.push_sql("::timestamptz IS NULL OR updated_at = ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.expected)?;
        out.push_sql(") RETURNING ");
        conversations::all_columns.walk_ast(out.reborrow())
    }
}
