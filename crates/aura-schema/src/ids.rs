//! Typed ids: one newtype over [`Uuid`] per primary key, so a run id cannot be passed where
//! a turn id is expected. Each is a `diesel::sql_types::Uuid` expression (nullable too) and
//! loads from one, so it goes straight into Diesel queries and models.
//!
//! Ids are UUIDv7 made by the application ([`ConversationId::new`] and the like): time
//! ordered, so new rows land at the right edge of the primary key indexes.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow,
        )]
        #[diesel(sql_type = sql_types::Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new id: a UUIDv7 (milliseconds since the Unix epoch, then random bits).
            #[allow(
                clippy::new_without_default,
                reason = "a fresh random id is not a default value"
            )]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (read from a request, say); no version check.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl ToSql<sql_types::Uuid, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
            }
        }

        impl FromSql<sql_types::Uuid, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Primary key of `conversations`, and the distribution key of every table.
    ConversationId
);
uuid_id!(
    /// Id of a turn; a turn's key is (`ConversationId`, `TurnId`).
    TurnId
);
uuid_id!(
    /// Id of a run; a run's key is (`ConversationId`, `RunId`).
    RunId
);
uuid_id!(
    /// Id of an ask-user request; its key is (`ConversationId`, `RequestId`).
    RequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_time_ordered() {
        let a = TurnId::new();
        let b = TurnId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "{a} then {b}");
    }

    #[test]
    fn ids_print_and_parse_as_uuids() {
        let id = RunId::new();
        let text = id.to_string();
        assert_eq!(text.parse::<RunId>().ok(), Some(id));
        assert!("not-a-uuid".parse::<RunId>().is_err());
    }
}
